# isolation_bench: the pipelined echo load and the process-switch timing that
# tests/bench/isolation.sh uses to price each isolation mode.
add_executable(isolation_bench ${CMAKE_CURRENT_LIST_DIR}/isolation_bench.c)
target_link_libraries(isolation_bench PRIVATE vkd_bench_common vkd_kernel)
