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

# scribble: random stray writes into live connections' own heaps between
# dispatches while good pairs ping-pong beside them, in every isolation mode;
# the kernel must never fault (tests/fuzz/scribble.c). 21 s here; an hour by
# hand: build/tests/integration/scribble 3600.
add_executable(scribble ${PROJECT_SOURCE_DIR}/tests/fuzz/scribble.c)
target_link_libraries(scribble PRIVATE vkd_kernel)
target_compile_definitions(scribble PRIVATE _GNU_SOURCE)
add_test(NAME fuzz_scribble COMMAND scribble 21)
set_tests_properties(fuzz_scribble PROPERTIES LABELS fuzz TIMEOUT 90)
