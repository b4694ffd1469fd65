/*
 * Byte rings over `struct iovec`: free-running 32-bit counters over a
 * power-of-two buffer, so the used and free parts are each at most two
 * segments and readv/writev move them in one call.
 */
#include <string.h>

#include "kern.h"

#if UINTPTR_MAX > 0xffffffffu
/* hwm took what was padding: modules built before it see the same layout. */
_Static_assert(sizeof(struct vk_ring) == 24, "struct vk_ring grew: the module ABI changed");
#endif

/* The len bytes from counter `from` on, as one or two segments. */
static int segments(const struct vk_ring *r, uint32_t from, uint32_t len, struct iovec iov[2])
{
        if (!len)
                return 0;
        uint32_t at = from & (r->size - 1), first = r->size - at;
        iov[0].iov_base = r->buf + at;
        if (len <= first) {
                iov[0].iov_len = len;
                return 1;
        }
        iov[0].iov_len = first;
        iov[1].iov_base = r->buf;
        iov[1].iov_len = len - first;
        return 2;
}

int ring_data_iov(const struct vk_ring *r, struct iovec iov[2], uint32_t max)
{
        uint32_t len = ring_len(r);
        return segments(r, r->head, len < max ? len : max, iov);
}

int ring_space_iov(const struct vk_ring *r, struct iovec iov[2])
{
        return segments(r, r->tail, ring_space(r), iov);
}

void ring_consume(struct vk_ring *r, uint32_t n)
{
        r->head += n;
        /* An empty ring starts over at the front: small messages keep reusing
         * the first page instead of walking through the whole buffer. */
        if (r->head == r->tail)
                r->head = r->tail = 0;
}

void ring_produce(struct vk_ring *r, uint32_t n)
{
        uint32_t end = (r->tail & (r->size - 1)) + n;
        r->tail += n;
        if (end > r->hwm)
                r->hwm = end < r->size ? end : r->size;
}

uint32_t ring_read(struct vk_ring *r, void *dst, uint32_t n)
{
        struct iovec iov[2];
        int k = ring_data_iov(r, iov, n);
        uint32_t done = 0;
        for (int i = 0; i < k; i++) {
                memcpy((char *)dst + done, iov[i].iov_base, iov[i].iov_len);
                done += (uint32_t)iov[i].iov_len;
        }
        ring_consume(r, done);
        return done;
}

uint32_t ring_write(struct vk_ring *r, const void *src, uint32_t n)
{
        struct iovec iov[2];
        int k = ring_space_iov(r, iov);
        uint32_t done = 0;
        for (int i = 0; i < k && done < n; i++) {
                uint32_t m = (uint32_t)iov[i].iov_len;
                if (m > n - done)
                        m = n - done;
                memcpy(iov[i].iov_base, (const char *)src + done, m);
                done += m;
        }
        ring_produce(r, done);
        return done;
}

int64_t ring_find(const struct vk_ring *r, char c, uint32_t max)
{
        struct iovec iov[2];
        int k = ring_data_iov(r, iov, max);
        int64_t off = 0;
        for (int i = 0; i < k; i++) {
                const char *hit = memchr(iov[i].iov_base, c, iov[i].iov_len);
                if (hit)
                        return off + (hit - (const char *)iov[i].iov_base);
                off += (int64_t)iov[i].iov_len;
        }
        return -1;
}

uint32_t ring_move(struct vk_ring *dst, struct vk_ring *src, uint32_t n)
{
        struct iovec iov[2];
        uint32_t space = ring_space(dst);
        if (n > space)
                n = space;
        int k = ring_data_iov(src, iov, n);
        uint32_t done = 0;
        for (int i = 0; i < k; i++)
                done += ring_write(dst, iov[i].iov_base, (uint32_t)iov[i].iov_len);
        ring_consume(src, done);
        return done;
}

static void reverse(char *a, uint32_t n)
{
        for (uint32_t i = 0, j = n ? n - 1 : 0; i < j; i++, j--) {
                char t = a[i];
                a[i] = a[j];
                a[j] = t;
        }
}

void ring_linearize(struct vk_ring *r)
{
        uint32_t len = ring_len(r), at = r->head & (r->size - 1);
        if (at == 0) {
                r->tail = len;
                r->head = 0;
                return;
        }
        if (at + len <= r->size) {
                /* one segment already: only move it when it would wrap soon */
                return;
        }
        /* Rotate the whole buffer left by `at`: three reversals, in place. */
        reverse(r->buf, at);
        reverse(r->buf + at, r->size - at);
        reverse(r->buf, r->size);
        r->head = 0;
        r->tail = len;
}
