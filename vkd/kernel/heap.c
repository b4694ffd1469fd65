/*
 * Micro-heaps: each virtual process gets one page-aligned slot of a pool
 * reserved with a single mmap. Inside a slot, the process header sits at the
 * start, a stack-like allocator grows upward from it, and socket rings are
 * reserved downward from the end. Pages are touched only when used, so an idle
 * process costs the pages its header and frames occupy; ending a process
 * frees everything at once by giving the slot back.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kern.h"

/* Block header of the stack allocator: boundary tags let a freed block at the
 * top release the free blocks below it. */
struct heap_block {
        uint32_t size; /* including this header */
        uint32_t prev; /* size of the block below, 0 for the first */
        uint32_t free;
        uint32_t magic;
};

#define HEAP_ALIGN 16u
#define HEAP_MAGIC 0x766b6862u

size_t heap_page_size(void)
{
        static size_t ps;
        if (!ps)
                ps = (size_t)sysconf(_SC_PAGESIZE);
        return ps;
}

static uint32_t align_up(uint32_t n, uint32_t a)
{
        return (n + a - 1) & ~(a - 1);
}

/* Slots sit one guard page apart (see heap_pool_get). */
static size_t slot_stride(const struct heap_pool *hp)
{
        return hp->slot_size + heap_page_size();
}

int heap_pool_init(struct heap_pool *hp, size_t slot_size, uint32_t nslots, uint32_t *free_stack)
{
        memset(hp, 0, sizeof *hp);
        if (slot_size % heap_page_size() || slot_size > UINT32_MAX)
                return -EINVAL;
        void *m = mmap(NULL, (slot_size + heap_page_size()) * nslots, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED)
                return -errno;
        hp->free = free_stack;
        hp->base = m;
        hp->slot_size = slot_size;
        hp->nslots = nslots;
        return 0;
}

void heap_pool_free(struct heap_pool *hp)
{
        if (hp->base)
                munmap(hp->base, slot_stride(hp) * hp->nslots);
        memset(hp, 0, sizeof *hp);
}

char *heap_pool_slot(const struct heap_pool *hp, uint32_t slot)
{
        return hp->base + (size_t)slot * slot_stride(hp);
}

char *heap_pool_get(struct heap_pool *hp, uint32_t *ret_slot)
{
        uint32_t slot;
        if (hp->nfree) {
                slot = hp->free[--hp->nfree];
                if (hp->ntrimmed > hp->nfree)
                        hp->ntrimmed = hp->nfree;
                *ret_slot = slot;
                return heap_pool_slot(hp, slot);
        }
        if (hp->used == hp->nslots)
                return NULL;
        slot = hp->used++;
        char *base = heap_pool_slot(hp, slot);
        /* The first time a slot is handed out, the page after it becomes its
         * guard: a write running off the end of the heap faults there in every
         * isolation mode, whoever owns (or nobody owns) the memory beyond.
         * Read-only rather than PROT_NONE so that it never merges with a
         * protected slot beside it: each slot stays its own mapping and a
         * switch only flips its protection (splitting a run of protected
         * heaps and merging it back costs 3 times as much: 10 us a pair on a
         * VM here). Should the guard fail (vm.max_map_count reached), the slot
         * is handed out without one. */
        mprotect(base + hp->slot_size, heap_page_size(), PROT_READ);
        *ret_slot = slot;
        return base;
}

void heap_pool_put(struct heap_pool *hp, uint32_t slot)
{
        /* LIFO: the next process reuses the pages this one warmed. */
        hp->free[hp->nfree++] = slot;
}

void heap_pool_trim(struct heap_pool *hp, uint32_t keep)
{
        /* The oldest returned slots sit at the bottom of the stack. */
        while (hp->nfree - hp->ntrimmed > keep) {
                char *base = heap_pool_slot(hp, hp->free[hp->ntrimmed]);
                madvise(base, hp->slot_size, MADV_DONTNEED);
                hp->ntrimmed++;
        }
}

/*
 * The hibernation store. A hibernating process's used front (header,
 * threads, frames: typically under a kilobyte) is copied out so that its
 * slot's pages can be given back. It goes to a file that is never mapped
 * (a memfd), written and read with pwrite and pread: kept in memory, even
 * PROT_NONE, it would have to be opened and revoked around each copy (a
 * TLB flush each time: 80-330 us of CPU per hibernated connection that
 * ends in an idle storm), and while open it would be in reach of a stray
 * pointer. Chunks come in size classes of HEAP_STORE_GRAIN bytes, carved
 * once from the front of the file; a freed chunk goes on its class's free
 * list, a stack in the kernel zone, so freeing touches no file page.
 */
int heap_store_init(struct heap_store *st, uint32_t nprocs, struct kzone *zone)
{
        memset(st, 0, sizeof *st);
        st->fd = -1;
        st->zone = zone;
#ifdef MFD_CLOEXEC
        int fd = memfd_create("vkd-hibernation-store", MFD_CLOEXEC);
#else
        char name[] = "/tmp/vkd-store-XXXXXX";
        int fd = mkostemp(name, O_CLOEXEC);
        if (fd >= 0)
                unlink(name);
#endif
        if (fd < 0)
                return -errno;
        size_t len = (size_t)nprocs * HEAP_STORE_MAX;
        if (ftruncate(fd, (off_t)len) < 0) {
                int e = errno;
                close(fd);
                return -e;
        }
        st->fd = fd;
        st->len = len;
        return 0;
}

void heap_store_free(struct heap_store *st)
{
        if (st->len) /* set only once the file was made: a kernel that failed earlier has none */
                close(st->fd);
        for (unsigned c = 0; c < HEAP_STORE_CLASSES; c++)
                kz_free(st->zone, st->free[c]);
        memset(st, 0, sizeof *st);
        st->fd = -1;
}

static uint32_t store_class(uint32_t len)
{
        return (len - 1) / HEAP_STORE_GRAIN;
}

uint32_t heap_store_put(struct heap_store *st, const void *src, uint32_t len)
{
        uint32_t c = store_class(len), ref = 0;
        size_t size = (size_t)(c + 1) * HEAP_STORE_GRAIN, off;
        if (st->nfree[c]) {
                ref = st->free[c][--st->nfree[c]];
                off = (size_t)(ref - 1) * HEAP_STORE_GRAIN;
        } else {
                if (size > st->len - st->used)
                        return 0;
                off = st->used;
        }
        if (pwrite(st->fd, src, len, (off_t)off) != (ssize_t)len) {
                if (ref)
                        st->nfree[c]++;
                return 0;
        }
        if (!ref)
                st->used += size;
        return (uint32_t)(off / HEAP_STORE_GRAIN) + 1;
}

int heap_store_take(struct heap_store *st, uint32_t ref, void *dst, uint32_t len)
{
        size_t off = (size_t)(ref - 1) * HEAP_STORE_GRAIN;
        uint32_t c = store_class(len);
        int r = 0;
        if (dst && pread(st->fd, dst, len, (off_t)off) != (ssize_t)len)
                r = -1;
        if (st->nfree[c] == st->capfree[c]) {
                uint32_t cap = st->capfree[c] ? 2 * st->capfree[c] : 256;
                uint32_t *m = kz_realloc(st->zone, st->free[c], cap * sizeof *m);
                if (!m)
                        return r; /* the chunk is not reused: memory, not correctness */
                st->free[c] = m;
                st->capfree[c] = cap;
        }
        st->free[c][st->nfree[c]++] = ref;
        return r;
}

/* Makes base[*open, end) accessible, *open growing in multiples of step up
 * to limit: 1 after an mprotect call, 0 with nothing to do, -1 if it failed.
 * The kernel zone opens its prefix this way. */
static int open_prefix(char *base, size_t *open, size_t end, size_t step, size_t limit)
{
        if (end <= *open)
                return 0;
        end = (end + step - 1) & ~(step - 1);
        if (end > limit)
                end = limit;
        if (mprotect(base + *open, end - *open, PROT_READ | PROT_WRITE) < 0)
                return -1;
        *open = end;
        return 1;
}

/*
 * The kernel zone. What the kernel keeps besides its fixed tables: messages
 * between processes waiting for their receiver, listeners, the poller's
 * tables. Carved from the arena, it is read-only to an unprivileged process
 * like the rest of the kernel's state, at no cost of its own (the arena is
 * flipped anyway). Blocks are carved
 * upward from the front, so the pages in use stay few and close together,
 * and a freed block waits on its class's free list, linked through itself.
 */
void kzone_init(struct kzone *z, char *base, size_t len)
{
        memset(z, 0, sizeof *z);
        z->base = base;
        z->len = len;
        /* Inaccessible until carved: an unprivileged dispatch then flips only
         * the arena up to the committed end, not the whole reservation (which
         * cost 0.9 us a switch more here). */
        mprotect(base, len, PROT_NONE);
}

static unsigned kzone_class(uint32_t n)
{
        unsigned c = 0;
        while (c + 1 < KZONE_CLASSES && ((size_t)1 << (KZONE_MIN_SHIFT + c)) < n)
                c++;
        return c;
}

char *kzone_alloc(struct kzone *z, uint32_t n, uint32_t *cap)
{
        unsigned c = kzone_class(n);
        size_t size = (size_t)1 << (KZONE_MIN_SHIFT + c);
        char *b;
        if (n > size)
                return NULL;
        if (z->free[c]) {
                b = z->base + ((size_t)(z->free[c] - 1) << KZONE_MIN_SHIFT);
                memcpy(&z->free[c], b, sizeof z->free[c]);
        } else {
                if (size > z->len - z->used)
                        return NULL;
                if (open_prefix(z->base, &z->committed, z->used + size, KZONE_COMMIT, z->len) < 0)
                        return NULL;
                b = z->base + z->used;
                z->used += size;
        }
        *cap = (uint32_t)size;
        return b;
}

void kzone_free(struct kzone *z, char *block, uint32_t cap)
{
        unsigned c = kzone_class(cap);
        memcpy(block, &z->free[c], sizeof z->free[c]);
        z->free[c] = (uint32_t)((size_t)(block - z->base) >> KZONE_MIN_SHIFT) + 1;
}

/* The kz_ functions put a 16-byte header before the block: its size. */
#define KZ_HEAD 16u

static void *kz_alloc(struct kzone *z, size_t n)
{
        uint32_t cap;
        if (n > ((size_t)1 << (KZONE_MIN_SHIFT + KZONE_CLASSES - 1)) - KZ_HEAD)
                return NULL;
        char *b = kzone_alloc(z, (uint32_t)n + KZ_HEAD, &cap);
        if (!b)
                return NULL;
        memcpy(b, &cap, sizeof cap);
        return b + KZ_HEAD;
}

void *kz_calloc(struct kzone *z, size_t n)
{
        void *m = kz_alloc(z, n);
        if (m)
                memset(m, 0, n);
        return m;
}

size_t kz_size(const void *ptr)
{
        uint32_t cap;
        if (!ptr)
                return 0;
        memcpy(&cap, (const char *)ptr - KZ_HEAD, sizeof cap);
        return cap - KZ_HEAD;
}

void kz_free(struct kzone *z, void *ptr)
{
        if (ptr)
                kzone_free(z, (char *)ptr - KZ_HEAD, (uint32_t)(kz_size(ptr) + KZ_HEAD));
}

/* What does not fit moves to a larger block (whose new part is undefined,
 * as with realloc). */
void *kz_realloc(struct kzone *z, void *ptr, size_t n)
{
        size_t have = kz_size(ptr);
        if (ptr && n <= have)
                return ptr;
        char *m = kz_alloc(z, n);
        if (m && ptr) {
                memcpy(m, ptr, have);
                kz_free(z, ptr);
        }
        return m;
}

void heap_init(struct vk_proc *p, size_t size)
{
        memset(p, 0, sizeof *p);
        p->size = (uint32_t)size;
        p->top = align_up(sizeof *p, HEAP_ALIGN);
        p->last = 0;
        p->low = (uint32_t)size;
}

/*
 * The allocator's own words may have been overwritten like any other heap
 * byte: what it hands out, and the headers it writes, must stay inside the
 * heap the kernel acts for, [p, p + end) (its record of the slot: a corrupt
 * p that still lies in it keeps the writes there too). A refused heap gets
 * no memory (or its free is dropped), and the dispatch ends the process for
 * it (kern_for.corrupt) once its threads yield. Not trust_fail() here: a
 * call on the path, even a cold one, costs the allocator four register
 * saves on every call, a tenth of its work.
 */
static inline int heap_holds(const struct vk_proc *p, uint32_t end)
{
        if (TRUST_LIKELY(trust_holds(p, end)))
                return 1;
        kern_for.corrupt = "heap allocator header";
        return 0;
}

char *heap_ring_alloc(struct vk_proc *p, size_t len)
{
        /* A closed socket's ring first (vk_socket_close: all of one size).
         * The chain is the heap's: a link that leaves the ring area ends it. */
        char *r = p->free_rings;
        if (r && len == p->ring_size) {
                char *lo = (char *)p + p->low, *hi = (char *)p + p->size;
                if (r >= lo && r <= hi - len && trust_holds(r, len) &&
                    !((uintptr_t)r & (heap_page_size() - 1))) {
                        memcpy(&p->free_rings, r, sizeof p->free_rings);
                        return r;
                }
                p->free_rings = NULL;
        }
        uint32_t n = align_up((uint32_t)len, (uint32_t)heap_page_size());
        if (n > p->low || p->low - n < p->top)
                return NULL;
        if (!heap_holds(p, p->low))
                return NULL;
        p->low -= n;
        return (char *)p + p->low;
}

void *vk_malloc(struct vk_proc *p, size_t n)
{
        if (n > p->size)
                return NULL;
        uint32_t need = align_up((uint32_t)n + sizeof(struct heap_block), HEAP_ALIGN);
        if (p->top + need > p->low || p->top + need < p->top)
                return NULL;
        if (!heap_holds(p, p->top + need))
                return NULL;
        struct heap_block *b = (struct heap_block *)((char *)p + p->top);
        b->size = need;
        b->prev = p->last ? ((struct heap_block *)((char *)p + p->last))->size : 0;
        b->free = 0;
        b->magic = HEAP_MAGIC;
        p->last = p->top;
        p->top += need;
        if (p->top > p->top_max)
                p->top_max = p->top;
        return b + 1;
}

void vk_free(struct vk_proc *p, void *ptr)
{
        if (!ptr)
                return;
        if (!heap_holds(p, p->top))
                return;
        if (!TRUST_LIKELY(p->last < p->top)) {
                kern_for.corrupt = "heap allocator header";
                return;
        }
        struct heap_block *b = (struct heap_block *)ptr - 1;
        if (b->magic != HEAP_MAGIC || b->free)
                __builtin_trap(); /* a double free or a wild pointer: a fault (SIGILL
                                   * on x86) ends the process, not the worker */
        b->free = 1;
        /* Pop free blocks off the top. */
        while (p->last) {
                struct heap_block *top = (struct heap_block *)((char *)p + p->last);
                if (!top->free)
                        break;
                if (top->prev > p->last) {
                        kern_for.corrupt = "heap block";
                        return;
                }
                p->top = p->last;
                p->last = top->prev ? p->last - top->prev : 0;
                top->magic = 0;
        }
}

static void scrub_ring(char *base, const char *end, const struct vk_ring *r)
{
        if (r->buf >= base && r->buf < end && r->hwm <= (size_t)(end - r->buf))
                memset(r->buf, 0, r->hwm);
}

/*
 * What an ended process wrote, wiped before its slot is reused, so that a
 * connection reading memory it never wrote (a parser running past its input,
 * say) finds zeros, not another connection's bytes. Only what was used: the
 * allocator's highest top (frames, socket and thread records, mailboxes) and
 * each socket ring up to the furthest byte it ever held, a few kilobytes for
 * a typical connection. The heap's own records say where: after a clean end
 * they are the kernel's to trust (a fault's heap is given back whole
 * instead); each pointer is still checked to stay in the slot.
 */
void heap_scrub(struct vk_proc *p, size_t slot)
{
        char *base = (char *)p, *end = base + slot;
        unsigned n = 0;
        for (struct vk_socket *s = p->sockets; s && n <= VK_SOCKETS_MAX; s = s->next, n++) {
                if ((char *)s < base || (char *)(s + 1) > end)
                        break;
                scrub_ring(base, end, &s->rx.ring);
                scrub_ring(base, end, &s->tx.ring);
        }
        memset(base, 0, p->top_max < slot ? p->top_max : slot);
}
