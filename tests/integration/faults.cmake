# faults: fault containment under load, and no leak per fault. One kernel
# serves echo_stress (100 connections over loopback TCP, every byte checked)
# while 11,000 misbehaving processes fault, loop or exhaust their heaps beside
# it; RSS and the descriptor count must come back to their warm-up baseline.
# Run once per protecting isolation mode. echo_stress comes from echo.cmake.
add_executable(faults ${CMAKE_CURRENT_LIST_DIR}/faults.c)
target_link_libraries(faults PRIVATE vkd_kernel)
target_compile_definitions(faults PRIVATE _GNU_SOURCE)

if(TARGET echo_stress)
        foreach(mode unprivileged isolated)
                add_test(NAME faults_${mode}
                        COMMAND faults $<TARGET_FILE:echo_stress> ${mode})
                set_tests_properties(faults_${mode} PROPERTIES LABELS integration TIMEOUT 90)
        endforeach()
else()
        message(WARNING "tests/integration/faults.cmake: no echo_stress target; "
                "the faults_* tests are not registered")
endif()
