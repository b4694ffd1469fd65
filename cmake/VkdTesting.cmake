# Helpers that register tests with ctest in one consistent way.

pkg_check_modules(CHECK IMPORTED_TARGET check)

# vkd_add_check(NAME check_foo SOURCES a.c b.c LIBS lib1 lib2 [TIMEOUT s])
# One Check suite binary per component, run in forking mode with a timeout
# per case, labelled "unit".
function(vkd_add_check)
        cmake_parse_arguments(A "" "NAME;TIMEOUT" "SOURCES;LIBS" ${ARGN})
        if(NOT BUILD_TESTING)
                return()
        endif()
        if(NOT CHECK_FOUND)
                message(FATAL_ERROR "Check (libcheck) is required for the unit tests")
        endif()
        if(NOT A_TIMEOUT)
                set(A_TIMEOUT 60)
        endif()
        add_executable(${A_NAME} ${A_SOURCES})
        target_link_libraries(${A_NAME} PRIVATE ${A_LIBS} PkgConfig::CHECK)
        add_test(NAME ${A_NAME} COMMAND ${A_NAME})
        set_tests_properties(${A_NAME} PROPERTIES LABELS unit TIMEOUT ${A_TIMEOUT}
                ENVIRONMENT "CK_FORK=yes;CK_DEFAULT_TIMEOUT=20")
endfunction()

find_program(VKD_CLANG NAMES clang clang-14)

# vkd_add_fuzz(NAME fuzz_foo SOURCES target.c parser.c [INCLUDES dirs] CORPUS dir [SECONDS n]
#               [PKGS pkg-config names])
# A fuzz target is LLVMFuzzerTestOneInput() in one of SOURCES. Two tests come of it:
#  - <name>_corpus: the target built with the project's compiler and a replay
#    driver, run over every file of the seed corpus (always);
#  - <name>: the target built by clang with libFuzzer, ASan and UBSan, run for a
#    bounded time starting from the corpus (when clang is installed).
function(vkd_add_fuzz)
        cmake_parse_arguments(A "" "NAME;CORPUS;SECONDS" "SOURCES;INCLUDES;PKGS" ${ARGN})
        if(NOT BUILD_TESTING)
                return()
        endif()
        if(NOT A_SECONDS)
                set(A_SECONDS 20)
        endif()
        add_executable(${A_NAME}_replay ${A_SOURCES} ${PROJECT_SOURCE_DIR}/tests/fuzz/replay_main.c)
        target_include_directories(${A_NAME}_replay PRIVATE ${A_INCLUDES})
        set(pkg_flags)
        foreach(p ${A_PKGS})
                pkg_check_modules(FUZZPKG_${p} REQUIRED IMPORTED_TARGET ${p})
                target_link_libraries(${A_NAME}_replay PRIVATE PkgConfig::FUZZPKG_${p})
                list(APPEND pkg_flags ${FUZZPKG_${p}_CFLAGS} ${FUZZPKG_${p}_LDFLAGS})
        endforeach()
        add_test(NAME ${A_NAME}_corpus COMMAND ${A_NAME}_replay ${A_CORPUS})
        set_tests_properties(${A_NAME}_corpus PROPERTIES LABELS fuzz TIMEOUT 60)
        if(NOT VKD_CLANG)
                return()
        endif()
        set(srcs)
        foreach(s ${A_SOURCES})
                get_filename_component(abs ${s} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
                list(APPEND srcs ${abs})
        endforeach()
        set(incs)
        foreach(i ${A_INCLUDES})
                list(APPEND incs -I${i})
        endforeach()
        set(out ${CMAKE_CURRENT_BINARY_DIR}/${A_NAME})
        add_custom_command(OUTPUT ${out}
                COMMAND ${VKD_CLANG} -g -O1 -std=gnu11 -fsanitize=fuzzer,address,undefined
                        -fno-sanitize-recover=undefined ${incs} ${srcs} ${pkg_flags} -o ${out}
                DEPENDS ${A_SOURCES} VERBATIM)
        add_custom_target(${A_NAME}_fuzzer ALL DEPENDS ${out})
        set(work ${CMAKE_CURRENT_BINARY_DIR}/${A_NAME}.corpus)
        add_test(NAME ${A_NAME}
                COMMAND sh -c "mkdir -p '${work}' && exec '${out}' -max_total_time=${A_SECONDS} -timeout=5 -rss_limit_mb=1024 -print_final_stats=1 '${work}' '${A_CORPUS}'")
        set_tests_properties(${A_NAME} PROPERTIES LABELS fuzz TIMEOUT 120)
endfunction()
