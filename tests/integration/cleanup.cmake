# A failing or killed integration test leaves no server running (cleanup_test.py): the
# processes the Python helpers start end with the test (tests/lib/vkdproc.py).
find_package(Python3 COMPONENTS Interpreter)
if(Python3_FOUND)
        add_test(NAME integration_cleanup
                COMMAND ${Python3_EXECUTABLE} -u ${CMAKE_CURRENT_LIST_DIR}/cleanup_test.py
                        ${PROJECT_SOURCE_DIR})
        set_tests_properties(integration_cleanup PROPERTIES LABELS integration TIMEOUT 600)
endif()
