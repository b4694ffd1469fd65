/*
 * The control protocol's request parser (see control_request.h): the JSON is
 * json-c's; what is ours is insisting on one object per line, no NUL bytes,
 * and the types of the fields vkd reads.
 */
#include "control_request.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int fail(struct ctl_req *r, char *err, size_t errlen, const char *msg, const char *detail)
{
        snprintf(err, errlen, "%s%s", msg, detail ? detail : "");
        if (r->id)
                json_object_get(r->id); /* survives the request for the error reply */
        json_object_put(r->obj);
        r->obj = NULL;
        r->command = r->service = NULL;
        r->services = NULL;
        return -EINVAL;
}

int ctl_parse_request(const char *line, size_t len, struct ctl_req *r, char *err, size_t errlen)
{
        json_object *v;
        memset(r, 0, sizeof *r);
        if (memchr(line, 0, len))
                return fail(r, err, errlen, "request holds a NUL byte", NULL);
        struct json_tokener *tok = json_tokener_new_ex(16);
        if (!tok)
                return fail(r, err, errlen, "out of memory", NULL);
        r->obj = json_tokener_parse_ex(tok, line, (int)len);
        size_t end = json_tokener_get_parse_end(tok);
        enum json_tokener_error te = json_tokener_get_error(tok);
        json_tokener_free(tok);
        if (!r->obj || te != json_tokener_success)
                return fail(r, err, errlen, "not a JSON object: ",
                            r->obj ? "incomplete" : json_tokener_error_desc(te));
        while (end < len && strchr(" \t\r", line[end]))
                end++;
        if (end != len || !json_object_is_type(r->obj, json_type_object))
                return fail(r, err, errlen, "a request is one JSON object on one line", NULL);
        if (json_object_object_get_ex(r->obj, "id", &v))
                r->id = v;
        if (!json_object_object_get_ex(r->obj, "command", &v) ||
            !json_object_is_type(v, json_type_string))
                return fail(r, err, errlen, "no \"command\" string in the request", NULL);
        r->command = json_object_get_string(v);
        if (json_object_object_get_ex(r->obj, "services", &v)) {
                if (!json_object_is_type(v, json_type_array))
                        return fail(r, err, errlen, "\"services\" must be an array of names", NULL);
                for (size_t i = 0; i < json_object_array_length(v); i++)
                        if (!json_object_is_type(json_object_array_get_idx(v, i), json_type_string))
                                return fail(r, err, errlen,
                                            "\"services\" must be an array of names", NULL);
                r->services = v;
        }
        if (json_object_object_get_ex(r->obj, "service", &v) &&
            json_object_is_type(v, json_type_string))
                r->service = json_object_get_string(v);
        return 0;
}

void ctl_req_free(struct ctl_req *r)
{
        if (!r->obj && r->id)
                json_object_put(r->id); /* the reference fail() kept */
        json_object_put(r->obj);
        memset(r, 0, sizeof *r);
}
