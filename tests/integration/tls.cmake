# TLS in the worker's kernel (tls/tls_test.py): the real daemon with TLS*= keys, and
# openssl s_client and curl as the clients.
if(NOT TARGET vkd OR NOT TARGET echo OR NOT VKD_WITH_SYSTEMD)
        return()
endif()
find_package(Python3 COMPONENTS Interpreter)
if(NOT Python3_FOUND)
        return()
endif()
foreach(case echo http static versions garbage bad_conf)
        add_test(NAME tls_${case}
                COMMAND ${Python3_EXECUTABLE} -u ${CMAKE_CURRENT_LIST_DIR}/tls/tls_test.py
                        --vkd $<TARGET_FILE:vkd> --module-dir $<TARGET_FILE_DIR:echo>
                        --source-dir ${PROJECT_SOURCE_DIR} ${case})
        set_tests_properties(tls_${case} PROPERTIES TIMEOUT 120 LABELS integration)
endforeach()
