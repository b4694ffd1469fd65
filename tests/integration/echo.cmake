# The echo service under load: echo_stress opens 1000 concurrent connections,
# pushes 64 KiB of seeded random data through each and checks every byte that
# comes back. run_with_server.sh starts the server on 127.0.0.1:0, waits for its
# "listening" line, runs the client against that address and checks that both
# exit 0 (the server on SIGTERM). echo_stress_raw runs the same test against
# raw_echo from tests/bench, which proves the tooling without vkd.
add_executable(echo_stress ${CMAKE_CURRENT_LIST_DIR}/echo_stress.c)
target_link_libraries(echo_stress PRIVATE vkd_bench_common)

find_program(VKD_BASH bash REQUIRED)
set(echo_stress_client $<TARGET_FILE:echo_stress> --connect @ADDR@ --conns 1000 --bytes 65536
        --seconds 60 --seed 1)

add_test(NAME echo_stress_raw
        COMMAND ${VKD_BASH} ${CMAKE_CURRENT_LIST_DIR}/run_with_server.sh
                $<TARGET_FILE:raw_echo> -- ${echo_stress_client})
set_tests_properties(echo_stress_raw PROPERTIES LABELS integration TIMEOUT 120)

if(TARGET vkd-echo)
        add_test(NAME echo_stress_1000
                COMMAND ${VKD_BASH} ${CMAKE_CURRENT_LIST_DIR}/run_with_server.sh
                        $<TARGET_FILE:vkd-echo> -- ${echo_stress_client})
        set_tests_properties(echo_stress_1000 PROPERTIES LABELS integration TIMEOUT 120)
endif()
