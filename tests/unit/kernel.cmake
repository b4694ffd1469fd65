# The virtual kernel's unit suites: one binary per component of vkd/kernel.
# They include "kern.h" (the kernel target exports its source directory) to
# reach internals such as rings, heap layout and pool counters; the poller
# suite runs peers on threads.
find_package(Threads REQUIRED)
foreach(suite coro heap ring sched poller socket)
        vkd_add_check(NAME check_${suite}
                SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/check_${suite}.c
                LIBS vkd_kernel Threads::Threads)
        if(TARGET check_${suite})
                target_compile_definitions(check_${suite} PRIVATE _GNU_SOURCE)
        endif()
endforeach()
