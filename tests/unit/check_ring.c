/*
 * Check suite for the byte rings of vkd/kernel/ring.c, driven directly on a
 * `struct vk_ring` over a local 16-byte buffer: data and free space split in
 * two iovecs at the wrap, partial consume, reads and writes bounded by what
 * is there, ring_find across the wrap and within a limit, ring_move between
 * rings that each wrap and with limited space, the reset to the front when a
 * ring empties, and the free-running counters crossing 2^32.
 */
#include "kernel_test.h"

#define RSIZE 16

static char buf[RSIZE], buf2[RSIZE];

static struct vk_ring ring_at(char *mem, uint32_t head, uint32_t tail)
{
        struct vk_ring r = {.buf = mem, .size = RSIZE, .head = head, .tail = tail};
        return r;
}

/* The bytes of r's data iovecs, concatenated. */
static size_t data_of(const struct vk_ring *r, char *out, uint32_t max)
{
        struct iovec iov[2];
        int n = ring_data_iov(r, iov, max);
        size_t len = 0;
        for (int i = 0; i < n; i++) {
                memcpy(out + len, iov[i].iov_base, iov[i].iov_len);
                len += iov[i].iov_len;
        }
        out[len] = 0;
        return len;
}

START_TEST(test_empty)
{
        struct vk_ring r = ring_at(buf, 0, 0);
        struct iovec iov[2];
        char out[4];
        ck_assert_uint_eq(ring_len(&r), 0);
        ck_assert_uint_eq(ring_space(&r), RSIZE);
        ck_assert_int_eq(ring_data_iov(&r, iov, UINT32_MAX), 0);
        ck_assert_int_eq(ring_space_iov(&r, iov), 1);
        ck_assert_ptr_eq(iov[0].iov_base, buf);
        ck_assert_uint_eq(iov[0].iov_len, RSIZE);
        ck_assert_uint_eq(ring_read(&r, out, sizeof out), 0);
        ck_assert_int_eq(ring_find(&r, 'x', UINT32_MAX), -1);
}
END_TEST

START_TEST(test_write_read_full)
{
        struct vk_ring r = ring_at(buf, 0, 0);
        struct iovec iov[2];
        char out[RSIZE + 1];
        /* More than fits: only the free space is taken. */
        ck_assert_uint_eq(ring_write(&r, "0123456789abcdefXYZ", 19), RSIZE);
        ck_assert_uint_eq(ring_len(&r), RSIZE);
        ck_assert_uint_eq(ring_space(&r), 0);
        ck_assert_int_eq(ring_space_iov(&r, iov), 0);
        ck_assert_uint_eq(ring_write(&r, "x", 1), 0);
        /* A read asking for more than there is gets what there is. */
        ck_assert_uint_eq(ring_read(&r, out, 10), 10);
        ck_assert_mem_eq(out, "0123456789", 10);
        ck_assert_uint_eq(ring_read(&r, out, sizeof out), 6);
        ck_assert_mem_eq(out, "abcdef", 6);
}
END_TEST

START_TEST(test_data_wraps_in_two_iovecs)
{
        struct vk_ring r = ring_at(buf, 0, 0);
        struct iovec iov[2];
        char out[RSIZE + 1];
        ck_assert_uint_eq(ring_write(&r, "............", 12), 12);
        ring_consume(&r, 10); /* head at 10, two bytes left */
        ck_assert_uint_eq(ring_write(&r, "ABCDEFGHIJ", 10), 10);
        ck_assert_uint_eq(ring_len(&r), 12);
        ck_assert_int_eq(ring_data_iov(&r, iov, UINT32_MAX), 2);
        ck_assert_ptr_eq(iov[0].iov_base, buf + 10);
        ck_assert_uint_eq(iov[0].iov_len, 6);
        ck_assert_ptr_eq(iov[1].iov_base, buf);
        ck_assert_uint_eq(iov[1].iov_len, 6);
        ck_assert_uint_eq(data_of(&r, out, UINT32_MAX), 12);
        ck_assert_str_eq(out, "..ABCDEFGHIJ");
        /* Limited to what fits before the wrap: one iovec. */
        ck_assert_int_eq(ring_data_iov(&r, iov, 6), 1);
        ck_assert_uint_eq(iov[0].iov_len, 6);
        /* One byte past the wrap. */
        ck_assert_int_eq(ring_data_iov(&r, iov, 7), 2);
        ck_assert_uint_eq(iov[1].iov_len, 1);
        /* A read across the wrap returns the bytes in order. */
        ck_assert_uint_eq(ring_read(&r, out, 12), 12);
        ck_assert_mem_eq(out, "..ABCDEFGHIJ", 12);
}
END_TEST

START_TEST(test_space_iov_at_wrap)
{
        struct vk_ring r = ring_at(buf, 10, 12); /* 2 bytes of data at 10..11 */
        struct iovec iov[2];
        ck_assert_uint_eq(ring_space(&r), 14);
        ck_assert_int_eq(ring_space_iov(&r, iov), 2);
        ck_assert_ptr_eq(iov[0].iov_base, buf + 12);
        ck_assert_uint_eq(iov[0].iov_len, 4);
        ck_assert_ptr_eq(iov[1].iov_base, buf);
        ck_assert_uint_eq(iov[1].iov_len, 10);

        /* Tail already wrapped: the free space is one piece before head. */
        r = ring_at(buf, 10, 20);
        ck_assert_uint_eq(ring_space(&r), 6);
        ck_assert_int_eq(ring_space_iov(&r, iov), 1);
        ck_assert_ptr_eq(iov[0].iov_base, buf + 4);
        ck_assert_uint_eq(iov[0].iov_len, 6);

        /* Tail exactly at the end of the buffer. */
        r = ring_at(buf, 4, 16);
        ck_assert_int_eq(ring_space_iov(&r, iov), 1);
        ck_assert_ptr_eq(iov[0].iov_base, buf);
        ck_assert_uint_eq(iov[0].iov_len, 4);

        /* Writing through both pieces lands in order after the old data. */
        char out[RSIZE + 1];
        r = ring_at(buf, 10, 12);
        memcpy(buf + 10, "<>", 2);
        ck_assert_uint_eq(ring_write(&r, "abcdefghijklmn", 14), 14);
        ck_assert_uint_eq(ring_space(&r), 0);
        ck_assert_uint_eq(data_of(&r, out, UINT32_MAX), RSIZE);
        ck_assert_str_eq(out, "<>abcdefghijklmn");
}
END_TEST

START_TEST(test_partial_consume)
{
        struct vk_ring r = ring_at(buf, 0, 0);
        char out[RSIZE + 1];
        ring_write(&r, "hello world", 11);
        ring_consume(&r, 6);
        ck_assert_uint_eq(ring_len(&r), 5);
        ck_assert_uint_eq(ring_space(&r), 11);
        ck_assert_uint_eq(data_of(&r, out, UINT32_MAX), 5);
        ck_assert_str_eq(out, "world");
        /* Produce after a manual copy into the space iovec. */
        struct iovec iov[2];
        ck_assert_int_eq(ring_space_iov(&r, iov), 2);
        memcpy(iov[0].iov_base, "!!!!!", 5);
        ring_produce(&r, 5);
        ck_assert_uint_eq(data_of(&r, out, UINT32_MAX), 10);
        ck_assert_str_eq(out, "world!!!!!");
        ck_assert_uint_eq(ring_read(&r, out, 3), 3);
        ck_assert_mem_eq(out, "wor", 3);
        ck_assert_uint_eq(ring_len(&r), 7);
}
END_TEST

START_TEST(test_reset_when_emptied)
{
        struct vk_ring r = ring_at(buf, 0, 0);
        char out[RSIZE];
        struct iovec iov[2];
        ring_write(&r, "abcdefghij", 10);
        ck_assert_uint_eq(ring_read(&r, out, 4), 4);
        ck_assert_uint_eq(r.head, 4); /* not empty: no reset */
        ck_assert_uint_eq(ring_read(&r, out, 6), 6);
        ck_assert_uint_eq(r.head, 0);
        ck_assert_uint_eq(r.tail, 0);
        /* The next write starts at the front again, in one piece. */
        ck_assert_int_eq(ring_space_iov(&r, iov), 1);
        ck_assert_ptr_eq(iov[0].iov_base, buf);
        ck_assert_uint_eq(iov[0].iov_len, RSIZE);
        /* The same through ring_consume of everything, wrapped. */
        r = ring_at(buf, 14, 19);
        ring_consume(&r, 5);
        ck_assert_uint_eq(r.head, 0);
        ck_assert_uint_eq(r.tail, 0);
}
END_TEST

START_TEST(test_find_across_wrap)
{
        struct vk_ring r = ring_at(buf, 0, 0);
        ring_write(&r, "..............", 14);
        ring_consume(&r, 12); /* head at 12 */
        ck_assert_uint_eq(ring_write(&r, "ab\ncd\nef", 8), 8);
        /* Data: ".." "ab" at 14..15, then "\ncd\nef" from the front. */
        ck_assert_int_eq(ring_find(&r, '\n', UINT32_MAX), 4);
        ck_assert_int_eq(ring_find(&r, 'a', UINT32_MAX), 2);
        ck_assert_int_eq(ring_find(&r, 'f', UINT32_MAX), 9);
        ck_assert_int_eq(ring_find(&r, 'z', UINT32_MAX), -1);
        /* Within a limit: the newline at offset 4 is the 5th byte. */
        ck_assert_int_eq(ring_find(&r, '\n', 4), -1);
        ck_assert_int_eq(ring_find(&r, '\n', 5), 4);
        ck_assert_int_eq(ring_find(&r, 'f', 9), -1);
        /* Reading the found line consumes exactly up to the newline. */
        char out[RSIZE];
        ck_assert_uint_eq(ring_read(&r, out, 5), 5);
        ck_assert_mem_eq(out, "..ab\n", 5);
        ck_assert_int_eq(ring_find(&r, '\n', UINT32_MAX), 2);
}
END_TEST

START_TEST(test_move_limited_space)
{
        /* Both rings wrapped: src data from 13 on, dst free space at 4..8. */
        struct vk_ring src = ring_at(buf, 13, 13), dst = ring_at(buf2, 9, 9);
        char out[RSIZE + 1];
        ck_assert_uint_eq(ring_write(&src, "0123456789AB", 12), 12);
        ck_assert_uint_eq(ring_write(&dst, "xxxxxxxxxxx", 11), 11); /* 5 free */
        ck_assert_uint_eq(ring_move(&dst, &src, UINT32_MAX), 5);
        ck_assert_uint_eq(ring_len(&src), 7);
        ck_assert_uint_eq(ring_space(&dst), 0);
        ck_assert_uint_eq(data_of(&dst, out, UINT32_MAX), RSIZE);
        ck_assert_str_eq(out, "xxxxxxxxxxx01234");
        ck_assert_uint_eq(data_of(&src, out, UINT32_MAX), 7);
        ck_assert_str_eq(out, "56789AB");
        /* A full destination takes nothing and leaves the source alone. */
        ck_assert_uint_eq(ring_move(&dst, &src, UINT32_MAX), 0);
        ck_assert_uint_eq(ring_len(&src), 7);
        /* Room for 4, asked for 3: the limit wins; then the rest fits. */
        ring_consume(&dst, 4 + 11);
        ck_assert_uint_eq(ring_len(&dst), 1);
        ck_assert_uint_eq(ring_move(&dst, &src, 3), 3);
        ck_assert_uint_eq(data_of(&dst, out, UINT32_MAX), 4);
        ck_assert_str_eq(out, "4567");
        ck_assert_uint_eq(ring_move(&dst, &src, UINT32_MAX), 4);
        ck_assert_uint_eq(data_of(&dst, out, UINT32_MAX), 8);
        ck_assert_str_eq(out, "456789AB");
        /* The source emptied, so it went back to the front. */
        ck_assert_uint_eq(ring_len(&src), 0);
        ck_assert_uint_eq(src.head, 0);
}
END_TEST

START_TEST(test_counters_cross_2_32)
{
        /* Free-running counters: a ring that never empties for 4 GiB sees its
         * counters wrap; lengths and positions must not care. */
        struct vk_ring r = ring_at(buf, UINT32_MAX - 3, UINT32_MAX - 3);
        struct iovec iov[2];
        char out[RSIZE + 1];
        ck_assert_uint_eq(ring_write(&r, "abcdefghij", 10), 10);
        ck_assert_uint_eq(r.tail, 6); /* wrapped */
        ck_assert_uint_eq(ring_len(&r), 10);
        ck_assert_uint_eq(ring_space(&r), 6);
        ck_assert_int_eq(ring_data_iov(&r, iov, UINT32_MAX), 2);
        ck_assert_ptr_eq(iov[0].iov_base, buf + 12);
        ck_assert_uint_eq(iov[0].iov_len, 4);
        ck_assert_uint_eq(iov[1].iov_len, 6);
        ck_assert_int_eq(ring_find(&r, 'g', UINT32_MAX), 6);
        ck_assert_uint_eq(ring_read(&r, out, 5), 5);
        ck_assert_mem_eq(out, "abcde", 5);
        ck_assert_uint_eq(r.head, 1);
        ck_assert_uint_eq(ring_len(&r), 5);
        ck_assert_uint_eq(data_of(&r, out, UINT32_MAX), 5);
        ck_assert_str_eq(out, "fghij");
}
END_TEST

static Suite *ring_suite(void)
{
        Suite *s = suite_create("ring");
        TCase *tc = kt_tcase(s, "ring");
        tcase_add_test(tc, test_empty);
        tcase_add_test(tc, test_write_read_full);
        tcase_add_test(tc, test_data_wraps_in_two_iovecs);
        tcase_add_test(tc, test_space_iov_at_wrap);
        tcase_add_test(tc, test_partial_consume);
        tcase_add_test(tc, test_reset_when_emptied);
        tcase_add_test(tc, test_find_across_wrap);
        tcase_add_test(tc, test_move_limited_space);
        tcase_add_test(tc, test_counters_cross_2_32);
        return s;
}

KT_MAIN(ring_suite)
