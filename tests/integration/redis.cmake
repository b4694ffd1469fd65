# The redis service against redis-cli, redis-benchmark and raw sockets
# (redis_test.py), including append-only-file recovery after kill -9.
if(TARGET vkd-redis)
        find_package(Python3 COMPONENTS Interpreter REQUIRED)
        add_test(NAME redis_clients
                COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/redis_test.py
                        $<TARGET_FILE:vkd-redis>)
        set_tests_properties(redis_clients PROPERTIES LABELS integration TIMEOUT 300)
endif()
