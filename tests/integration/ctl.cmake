# The control socket and vkdctl, end to end: ctl/ctl_test.py starts the real daemon (with the
# supervisor tests' helpers), talks to it with the real vkdctl and raw sockets, and serves a
# test module (ctl/ctl_module.c: a line echo that counts requests and faults on demand).
if(NOT TARGET vkd OR NOT TARGET vkdctl OR NOT TARGET echo)
        return()
endif()
find_package(Python3 COMPONENTS Interpreter)
if(NOT Python3_FOUND)
        return()
endif()

add_library(ctltest MODULE ${CMAKE_CURRENT_LIST_DIR}/ctl/ctl_module.c)
target_include_directories(ctltest PRIVATE ${PROJECT_SOURCE_DIR}/vkd/include)
set_target_properties(ctltest PROPERTIES PREFIX "" C_VISIBILITY_PRESET hidden
        LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/ctlmodules)

# READY=1 (libsystemd) is the readiness signal every case waits for.
if(NOT VKD_WITH_SYSTEMD)
        return()
endif()
foreach(case status commands access robust slots check metrics)
        add_test(NAME ctl_${case}
                COMMAND ${Python3_EXECUTABLE} -u ${CMAKE_CURRENT_LIST_DIR}/ctl/ctl_test.py
                        --vkdctl $<TARGET_FILE:vkdctl>
                        --ctl-module $<TARGET_FILE:ctltest>
                        --hostile-module $<TARGET_FILE:testmod_hostile>
                        --vkd $<TARGET_FILE:vkd>
                        --module-dir $<TARGET_FILE_DIR:echo>
                        --source-dir ${PROJECT_SOURCE_DIR}
                        ${case})
        set_tests_properties(ctl_${case} PROPERTIES LABELS integration TIMEOUT 180
                SKIP_RETURN_CODE 77)
endforeach()
