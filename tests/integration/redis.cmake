# The redis service against redis-cli, redis-benchmark and raw sockets
# (redis_test.py), including append-only-file recovery after kill -9.
if(TARGET vkd-redis)
        find_package(Python3 COMPONENTS Interpreter REQUIRED)
        add_test(NAME redis_clients
                COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/redis_test.py
                        $<TARGET_FILE:vkd-redis>)
        set_tests_properties(redis_clients PROPERTIES LABELS integration TIMEOUT 300
                SKIP_RETURN_CODE 77)
        if(VKD_SANITIZE)
                # Under ASan one 100,000-member SADD (a single command: no slice
                # can split it) takes longer than the 60 ms budget the slices are
                # tested under, and a budget kill that lands inside malloc
                # deadlocks (docs/security.md: a runaway loop interrupted in libc).
                set_tests_properties(redis_clients PROPERTIES
                        ENVIRONMENT VKD_TEST_CPU_BUDGET_MS=200)
        endif()

        # Side by side with a real redis-server 7 (redis_compat.py): glob
        # patterns, sizes at the edges of long long, INFO's layout.
        add_test(NAME redis_compat
                COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/redis_compat.py
                        $<TARGET_FILE:vkd-redis>)
        set_tests_properties(redis_compat PROPERTIES LABELS integration TIMEOUT 120
                SKIP_RETURN_CODE 77)
endif()

# The module under the daemon: the store as a service process, data kept by
# the append-only file across restart, reload and a daemon restart.
if(TARGET vkd AND TARGET vkdctl AND TARGET redis)
        add_test(NAME redis_daemon
                COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/redis_daemon.py
                        $<TARGET_FILE:vkd> $<TARGET_FILE:vkdctl> ${PROJECT_BINARY_DIR}/modules)
        set_tests_properties(redis_daemon PROPERTIES LABELS integration TIMEOUT 180
                SKIP_RETURN_CODE 77)
endif()
