/*
 * Parsing one control request line (docs/control-protocol.md): exactly one
 * JSON object on the line, with a "command" string, an optional "id" echoed
 * back, "services" (an array of names) and "service" (a name). Depends on
 * json-c only, so it is fuzzed on its own (tests/fuzz/fuzz_control.c).
 */
#ifndef VKD_SUPERVISOR_CONTROL_REQUEST_H
#define VKD_SUPERVISOR_CONTROL_REQUEST_H

#include <stddef.h>

#include <json-c/json.h>

struct ctl_req {
        json_object *obj; /* owns everything below */
        const char *command;
        json_object *id;       /* NULL: none */
        json_object *services; /* NULL: none; else an array of strings */
        const char *service;   /* NULL: none */
};

/* Parses line[0..len) (no newline). Returns 0 and fills ret (free it with
 * ctl_req_free), or -EINVAL with a message for the client in err; on error
 * ret->id may still hold the request's id, to echo in the error reply. */
int ctl_parse_request(const char *line, size_t len, struct ctl_req *ret, char *err, size_t errlen);

void ctl_req_free(struct ctl_req *r);

#endif
