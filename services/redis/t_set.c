/*
 * The redis service's set commands. A set is a dict of fields without values,
 * walked and changed by the field functions of t_hash.c.
 */
#include <string.h>

#include "cmd_int.h"

void cmd_sadd(struct ctx *x)
{
        bool bad;
        struct dent *e = db_lookup_type(x, &x->argv[1], RT_SET, &bad);
        if (bad)
                return;
        if (!e && !(e = db_new_key(x, &x->argv[1], RT_SET)))
                return r_oom(x);
        if (!fields_set(x, e, 2, false))
                return;
        if (x->job->n)
                x->db->dirty++;
        r_int(x, x->job->n);
}

void cmd_smembers(struct ctx *x)
{
        fields_walk(x, RT_SET, WANT_KEYS);
}

void cmd_srem(struct ctx *x)
{
        fields_del(x, RT_SET);
}

void cmd_scard(struct ctx *x)
{
        fields_len(x, RT_SET);
}

void cmd_sismember(struct ctx *x)
{
        fields_exists(x, RT_SET);
}
