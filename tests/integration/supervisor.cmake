# The vkd supervisor, end to end: supervisor/supervisor_test.py starts the real daemon with
# configs made from conf/ on ports it picks on 127.0.0.1, and talks to the echo module with real
# clients (see the list of cases at the top of that file). The broken modules of
# supervisor/test_modules.c exercise each way a module is refused.
if(NOT TARGET vkd OR NOT TARGET echo)
        return()
endif()
find_package(Python3 COMPONENTS Interpreter)
if(NOT Python3_FOUND)
        message(WARNING "python3 not found: the supervisor's integration tests are not built")
        return()
endif()

set(testmod_dir ${CMAKE_CURRENT_BINARY_DIR}/testmodules)
foreach(kind abi2 minor flags nosym nomain small initfail execve hostile)
        add_library(testmod_${kind} MODULE ${CMAKE_CURRENT_LIST_DIR}/supervisor/test_modules.c)
        string(TOUPPER ${kind} upper)
        target_compile_definitions(testmod_${kind} PRIVATE TESTMOD_${upper})
        target_include_directories(testmod_${kind} PRIVATE ${PROJECT_SOURCE_DIR}/vkd/include)
        set_target_properties(testmod_${kind} PROPERTIES PREFIX "" C_VISIBILITY_PRESET hidden
                LIBRARY_OUTPUT_DIRECTORY ${testmod_dir})
endforeach()

# Without libsystemd vkd sends no READY=1 and takes no passed sockets, and those are the
# readiness signals and the subject of most cases; what remains is checked either way.
set(cases check_config check_all_errors units)
if(VKD_WITH_SYSTEMD)
        list(APPEND cases standalone journal_log nofile start_errors socket_activation reload reload_all_errors
                restart stop idle privileges syscall_filter containment one_worker)
endif()
set(timeout_reload 300)
foreach(case ${cases})
        add_test(NAME supervisor_${case}
                COMMAND ${Python3_EXECUTABLE} -u
                        ${CMAKE_CURRENT_LIST_DIR}/supervisor/supervisor_test.py
                        --vkd $<TARGET_FILE:vkd>
                        --module-dir $<TARGET_FILE_DIR:echo>
                        --test-module-dir ${testmod_dir}
                        --source-dir ${PROJECT_SOURCE_DIR}
                        ${case})
        if(DEFINED timeout_${case})
                set(t ${timeout_${case}})
        else()
                set(t 120)
        endif()
        set_tests_properties(supervisor_${case} PROPERTIES LABELS integration TIMEOUT ${t}
                SKIP_RETURN_CODE 77)
endforeach()
