/*
 * Small helpers shared by vkd's test and benchmark tools (the raw peer servers,
 * echo_stress, echo_bench): parsing and printing HOST:PORT, a monotonic clock,
 * raising RLIMIT_NOFILE, a seeded byte stream that can be regenerated at any
 * offset (so a verifier never stores what it sent), and reading the resident
 * memory and open descriptors of a process tree from /proc. Functions return
 * >= 0 on success and -errno on failure and never print.
 */
#ifndef VKD_TESTS_BENCH_H
#define VKD_TESTS_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

struct bench_addr {
        struct sockaddr_storage ss;
        socklen_t len;
};

/* Longest text bench_addr_format() writes, with its NUL: "[v6%scope]:65535". */
#define BENCH_ADDR_MAX 80

/*
 * Parses "HOST:PORT" or "[V6HOST]:PORT" into *ret. HOST may be a name; the first
 * address found is used. passive asks for an address to bind (an empty HOST
 * then means the wildcard). Returns 0, or -EINVAL if the text is malformed or
 * the name does not resolve.
 */
int bench_addr_parse(const char *text, bool passive, struct bench_addr *ret);

/* Writes "a.b.c.d:port" or "[v6]:port" into buf (BENCH_ADDR_MAX bytes suffice). */
void bench_addr_format(const struct bench_addr *addr, char *buf, size_t size);

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t bench_now_ns(void);

/* Raises the soft RLIMIT_NOFILE to the hard one; stores the new soft limit. */
int bench_raise_nofile(uint64_t *ret_limit);

/*
 * Parses a decimal number in [min, max] (the whole string must be digits).
 * Returns 0 or -EINVAL / -ERANGE and leaves *ret alone on failure.
 */
int bench_parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *ret);

/* The splitmix64 finaliser: a cheap bijective scrambler of 64-bit values. */
uint64_t bench_mix64(uint64_t x);

/* A seeded xorshift64* generator; any seed is fine (it is scrambled first). */
struct bench_rng {
        uint64_t s;
};
void bench_rng_seed(struct bench_rng *rng, uint64_t seed);
uint64_t bench_rng_next(struct bench_rng *rng);
/* Uniform enough in [0, n) for test data; n must not be 0. */
uint64_t bench_rng_below(struct bench_rng *rng, uint64_t n);

/*
 * Fills buf with bytes [off, off + len) of the pseudo-random stream named by
 * key. Byte i of a stream depends only on (key, i), so the same bytes come
 * back for any split of the range into calls.
 */
void bench_stream_fill(uint64_t key, uint64_t off, uint8_t *buf, size_t len);

/*
 * Sums VmRSS (kB) over pid and all its descendants, so a server that forks
 * workers is measured whole. Returns 0, or -errno if pid itself is unreadable.
 */
int bench_proc_rss_kb(pid_t pid, uint64_t *ret_kb);

/* Counts open descriptors over pid and all its descendants. */
int bench_proc_nfds(pid_t pid, uint64_t *ret_count);

#endif
