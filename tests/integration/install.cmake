# Installed vkd, used the way docs/ tells a user to use it:
#  install_hello_module  `cmake --install` into a temporary prefix, build the example module of
#                        docs/writing-a-module.md (docs/examples/hello-module) with its Makefile
#                        against the INSTALLED headers via pkg-config, check it with the installed
#                        `vkd --check-config`, serve it and talk to it.
# The Debian package and the systemd end-to-end tests live in packaging/ (labels package, e2e).
if(NOT TARGET vkd)
        return()
endif()
find_package(Python3 COMPONENTS Interpreter)
if(NOT Python3_FOUND)
        return()
endif()
add_test(NAME install_hello_module
        COMMAND ${Python3_EXECUTABLE} -u ${CMAKE_CURRENT_LIST_DIR}/install/hello_module.py
                --build-dir ${PROJECT_BINARY_DIR} --source-dir ${PROJECT_SOURCE_DIR})
# After everything is built: it installs the whole build tree.
set_tests_properties(install_hello_module PROPERTIES LABELS integration TIMEOUT 120
        SKIP_RETURN_CODE 77)

# docs/writing-an-http-handler.md, run: the greet module built on the installed libvkd_http11.
add_test(NAME install_http_handler
        COMMAND ${Python3_EXECUTABLE} -u ${CMAKE_CURRENT_LIST_DIR}/install/http_handler.py
                --build-dir ${PROJECT_BINARY_DIR} --source-dir ${PROJECT_SOURCE_DIR})
set_tests_properties(install_http_handler PROPERTIES LABELS integration TIMEOUT 120
        SKIP_RETURN_CODE 77)
