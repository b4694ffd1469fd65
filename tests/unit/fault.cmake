# check_fault: fault containment and memory isolation of virtual processes
# (vkd/kernel/fault.c, isolate.c). It reaches kernel internals (struct
# vk_proc) through "kern.h", which the kernel target exports.
vkd_add_check(NAME check_fault
        SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/check_fault.c
        LIBS vkd_kernel
        TIMEOUT 120)
