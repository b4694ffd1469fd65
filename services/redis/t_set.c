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

void cmd_smismember(struct ctx *x)
{
        bool bad;
        struct dent *e = db_lookup_type(x, &x->argv[1], RT_SET, &bad);
        if (bad)
                return;
        if (!x->resumed)
                r_array(x, x->argc - 2);
        for (size_t j = slice_resume_at(x, 2); j < x->argc; j++) {
                if (slice_pause(x, j))
                        return;
                r_int(x, e && dict_find(fields_dict(e), x->argv[j].ptr, x->argv[j].len));
        }
}

/* SMOVE in Redis's order: a missing source answers 0 before any type is looked at. */
void cmd_smove(struct ctx *x)
{
        const struct resp_arg *m = &x->argv[3];
        struct dent *se = db_lookup(x, &x->argv[1]);
        struct dent *de = db_lookup(x, &x->argv[2]);
        if (!se)
                return r_int(x, 0);
        if (se->type != RT_SET || (de && de->type != RT_SET))
                return r_error(x, E_WRONGTYPE, strlen(E_WRONGTYPE));
        struct dent *f = dict_find(fields_dict(se), m->ptr, m->len);
        if (!f || se == de)
                return r_int(x, f != NULL);
        if (!de && !(de = db_new_key(x, &x->argv[2], RT_SET)))
                return r_oom(x);
        if (field_set(fields_dict(de), m, NULL) < 0) {
                db_drop_if_empty(x, de);
                return r_oom(x);
        }
        field_free(dict_unlink(fields_dict(se), m->ptr, m->len), NULL);
        db_drop_if_empty(x, se);
        x->db->dirty++;
        r_int(x, 1);
}
