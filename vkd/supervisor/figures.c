/*
 * Shared figures (see figures.h). The slot protocol is a seqlock with one writer: the worker
 * makes the counter odd, stores every value, and makes it even again; the supervisor copies the
 * slot between two reads of the counter and retries when they differ or are odd. Every value is
 * stored and loaded with relaxed atomics (plain moves on the machines we run on) so that the
 * racy copy is not undefined behaviour, and the fences order the counter around the data.
 */
#include "figures.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

const char *const fig_counter_names[FIG_N_COUNTERS] = {
        [FIG_ACCEPTED] = "accepted",
        [FIG_ACTIVE] = "active",
        [FIG_CLOSED] = "closed",
        [FIG_REQUESTS] = "requests",
        [FIG_BYTES_IN] = "bytes_in",
        [FIG_BYTES_OUT] = "bytes_out",
        [FIG_ERRORS] = "errors",
        [FIG_FAULTS] = "faults",
        [FIG_CPU_KILLS] = "cpu_kills",
        [FIG_NOMEM] = "nomem",
        [FIG_TIMEOUTS] = "timeouts",
        [FIG_SERVICE_PROCS] = "service_procs",
        [FIG_SERVICE_ENDS] = "service_ends",
        [FIG_PROTECTS] = "protects",
};

#define FIG_READ_TRIES 64

struct fig_region {
        struct fig_region *next; /* in the registry of this process */
        char *base;
        size_t len;
        size_t stride; /* bytes per slot: a multiple of the page size */
        size_t n;
};

/* Every region this process mapped, for fig_child_keep(). */
static struct fig_region *fig_regions;

static size_t fig_stride(void)
{
        long page = sysconf(_SC_PAGESIZE);
        size_t p = page > 0 ? (size_t)page : 4096;

        return (sizeof(struct fig_slot) + p - 1) / p * p;
}

int fig_region_new(size_t n, struct fig_region **ret)
{
        struct fig_region *r = calloc(1, sizeof(*r));
        void *p;

        if (!r)
                return -ENOMEM;
        r->stride = fig_stride();
        r->n = n;
        r->len = (n ? n : 1) * r->stride;
        p = mmap(NULL, r->len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
                int e = errno;
                free(r);
                return -e;
        }
        r->base = p;
        r->next = fig_regions;
        fig_regions = r;
        *ret = r;
        return 0;
}

struct fig_region *fig_region_free(struct fig_region *r)
{
        if (!r)
                return NULL;
        for (struct fig_region **p = &fig_regions; *p; p = &(*p)->next)
                if (*p == r) {
                        *p = r->next;
                        break;
                }
        munmap(r->base, r->len);
        free(r);
        return NULL;
}

struct fig_slot *fig_region_slot(struct fig_region *r, size_t i)
{
        return (struct fig_slot *)(void *)(r->base + i * r->stride);
}

void fig_child_keep(struct fig_slot *keep)
{
        for (struct fig_region *r = fig_regions; r; r = r->next) {
                char *k = (char *)keep;

                if (k >= r->base && k < r->base + r->len) {
                        size_t off = (size_t)(k - r->base);
                        if (off)
                                munmap(r->base, off);
                        if (off + r->stride < r->len)
                                munmap(k + r->stride, r->len - off - r->stride);
                } else {
                        munmap(r->base, r->len);
                }
        }
        /* The registry's memory is the child's own copy; it is not used again. */
        fig_regions = NULL;
}

static void fig_store(uint64_t *dst, const uint64_t *src, size_t n)
{
        for (size_t i = 0; i < n; i++)
                __atomic_store_n(&dst[i], src[i], __ATOMIC_RELAXED);
}

static void fig_load(uint64_t *dst, const uint64_t *src, size_t n)
{
        for (size_t i = 0; i < n; i++)
                dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

#define FIG_WORDS (sizeof(struct fig_values) / sizeof(uint64_t))

void fig_publish(struct fig_slot *s, const struct fig_values *v)
{
        uint32_t seq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);

        __atomic_store_n(&s->seq, seq + 1, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_RELEASE);
        fig_store((uint64_t *)&s->v, (const uint64_t *)v, FIG_WORDS);
        __atomic_store_n(&s->published, 1, __ATOMIC_RELAXED);
        __atomic_store_n(&s->seq, seq + 2, __ATOMIC_RELEASE);
}

void fig_set_module(struct fig_slot *s, const char *name, const char *version)
{
        uint32_t seq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
        char n[FIG_NAME_MAX] = "", v[FIG_VERSION_MAX] = "";

        if (name)
                strncpy(n, name, sizeof(n) - 1);
        if (version)
                strncpy(v, version, sizeof(v) - 1);
        __atomic_store_n(&s->seq, seq + 1, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_RELEASE);
        for (size_t i = 0; i < sizeof(n); i++)
                __atomic_store_n(&s->module_name[i], n[i], __ATOMIC_RELAXED);
        for (size_t i = 0; i < sizeof(v); i++)
                __atomic_store_n(&s->module_version[i], v[i], __ATOMIC_RELAXED);
        __atomic_store_n(&s->seq, seq + 2, __ATOMIC_RELEASE);
}

bool fig_read(const struct fig_slot *s, struct fig_values *ret)
{
        for (int i = 0; i < FIG_READ_TRIES; i++) {
                uint32_t a = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE), b;

                if (a & 1)
                        continue;
                fig_load((uint64_t *)ret, (const uint64_t *)&s->v, FIG_WORDS);
                __atomic_thread_fence(__ATOMIC_ACQUIRE);
                b = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
                if (a == b)
                        return true;
        }
        fig_load((uint64_t *)ret, (const uint64_t *)&s->v, FIG_WORDS);
        return false;
}

static void fig_copy_text(char *dst, const char *src, size_t size)
{
        size_t i;

        for (i = 0; i + 1 < size; i++) {
                char c = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
                if (!c)
                        break;
                dst[i] = c >= 0x20 && c < 0x7f ? c : '?';
        }
        dst[i] = 0;
}

void fig_read_module(const struct fig_slot *s, char *name, char *version)
{
        for (int i = 0; i < FIG_READ_TRIES; i++) {
                uint32_t a = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);

                if (a & 1)
                        continue;
                fig_copy_text(name, s->module_name, FIG_NAME_MAX);
                fig_copy_text(version, s->module_version, FIG_VERSION_MAX);
                __atomic_thread_fence(__ATOMIC_ACQUIRE);
                if (__atomic_load_n(&s->seq, __ATOMIC_RELAXED) == a)
                        return;
        }
        name[0] = version[0] = 0;
}

void fig_clear(struct fig_slot *s)
{
        memset(s, 0, sizeof(*s));
}

void fig_add(struct fig_values *sum, const struct fig_values *v, bool with_gauges)
{
        for (int i = 0; i < FIG_N_COUNTERS; i++)
                if (!fig_is_gauge(i) || with_gauges)
                        sum->c[i] += v->c[i];
        for (int i = 0; i < VK_LATENCY_BUCKETS; i++)
                sum->latency[i] += v->latency[i];
        sum->latency_sum_us += v->latency_sum_us;
}

uint64_t fig_latency_quantile_us(const struct fig_values *v, double q)
{
        uint64_t total = 0, seen = 0, want;

        for (int i = 0; i < VK_LATENCY_BUCKETS; i++)
                total += v->latency[i];
        if (!total)
                return 0;
        want = (uint64_t)(q * (double)total);
        if (want >= total)
                want = total - 1;
        for (int i = 0; i < VK_LATENCY_BUCKETS; i++) {
                seen += v->latency[i];
                if (seen > want)
                        return UINT64_C(1) << i; /* bucket i ends at 2^i us */
        }
        return UINT64_C(1) << (VK_LATENCY_BUCKETS - 1);
}

int fig_book_add(struct fig_book *b, const char *name, const struct fig_values *v)
{
        struct fig_book_entry *e = NULL;

        for (size_t i = 0; i < b->n && !e; i++)
                if (strcmp(b->items[i].name, name) == 0)
                        e = &b->items[i];
        if (!e) {
                struct fig_book_entry *p = realloc(b->items, (b->n + 1) * sizeof(*p));
                if (!p)
                        return -ENOMEM;
                b->items = p;
                e = &p[b->n];
                *e = (struct fig_book_entry){.name = strdup(name)};
                if (!e->name)
                        return -ENOMEM;
                b->n++;
        }
        fig_add(&e->v, v, false);
        return 0;
}

const struct fig_values *fig_book_get(const struct fig_book *b, const char *name)
{
        for (size_t i = 0; i < b->n; i++)
                if (strcmp(b->items[i].name, name) == 0)
                        return &b->items[i].v;
        return NULL;
}

void fig_book_done(struct fig_book *b)
{
        if (!b)
                return;
        for (size_t i = 0; i < b->n; i++)
                free(b->items[i].name);
        free(b->items);
        b->items = NULL;
        b->n = 0;
}
