# The HTTP/1.1 service against curl, wrk and raw sockets (http11_test.py).
if(TARGET vkd-http)
        find_package(Python3 COMPONENTS Interpreter REQUIRED)
        add_test(NAME http11_clients
                COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/http11_test.py
                        $<TARGET_FILE:vkd-http>)
        set_tests_properties(http11_clients PROPERTIES LABELS integration TIMEOUT 180
                SKIP_RETURN_CODE 77)
endif()
