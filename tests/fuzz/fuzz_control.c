/*
 * Fuzz target for the control socket's request parser: any line a client
 * may send. It must parse or refuse with a message, never crash or leak; a
 * parsed request always has its command, and "services" only as an array of
 * strings.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct ctl_req r;
        char err[160];
        if (size > 65536)
                return 0; /* the socket refuses longer lines before parsing */
        int rc = ctl_parse_request((const char *)data, size, &r, err, sizeof err);
        if (rc == 0) {
                if (!r.command)
                        abort();
                if (r.services)
                        for (size_t i = 0; i < json_object_array_length(r.services); i++)
                                if (!json_object_is_type(json_object_array_get_idx(r.services, i),
                                                         json_type_string))
                                        abort();
        } else if (rc != -22 || !err[0]) {
                abort();
        }
        ctl_req_free(&r);
        return 0;
}
