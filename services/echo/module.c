/*
 * The echo service as a daemon module. It takes no [Module] keys.
 */
#include <vk/module.h>

#include "echo.h"

VK_MODULE(.name = "echo", .version = "1.0", .main = echo_main);
