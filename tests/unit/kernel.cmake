# The virtual kernel's unit suites: one binary per component of vkd/kernel.
# They include "kern.h" (the kernel target exports its source directory) to
# reach internals such as rings, heap layout and pool counters; the poller
# suite runs peers on threads.
find_package(Threads REQUIRED)
foreach(suite coro heap ring sched poller socket trust)
        vkd_add_check(NAME check_${suite}
                SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/check_${suite}.c
                LIBS vkd_kernel Threads::Threads)
        if(TARGET check_${suite})
                target_compile_definitions(check_${suite} PRIVATE _GNU_SOURCE)
        endif()
endforeach()

# The kqueue backend is built only on BSD and macOS; here it is compiled
# against a stand-in <sys/event.h> (tests/unit/kqueue/) so that a change to
# the poller interface cannot leave it broken unseen.
add_test(NAME kqueue_builds
        COMMAND ${CMAKE_C_COMPILER} -std=gnu11 -Wall -Wextra -Werror -fsyntax-only
                -DVKD_KQUEUE_BUILD_TEST -isystem ${CMAKE_CURRENT_SOURCE_DIR}/kqueue
                -I${PROJECT_SOURCE_DIR}/vkd/kernel -I${PROJECT_SOURCE_DIR}/vkd/include
                ${PROJECT_SOURCE_DIR}/vkd/kernel/poll_kqueue.c)
set_tests_properties(kqueue_builds PROPERTIES LABELS unit)
