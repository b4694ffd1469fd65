/*
 * Glob-style matching for KEYS and SCAN MATCH, with the answers Redis 7.0's
 * stringmatchlen gives: * ? [abc] [^abc] [a-z] and \ escapes, byte for byte,
 * the same reading of malformed patterns ("[]" matches nothing, "[a-]" is
 * the range ']'..'a', an unclosed class runs to the end), and no match once
 * a pattern nests more than 1000 stars.
 *
 * One pass with a single backtrack point, the last star, instead of a
 * recursion per star: a later star can absorb whatever an earlier one would
 * have, so retrying only the last one loses no match. The work is at most
 * pattern length times string length, so a pattern like a*a*a*...*b costs
 * microseconds where trying every split for every star took exponential time.
 */
#include "db_int.h"

/* Stars Redis nests before it gives up (and answers no match). */
#define STAR_LIMIT 1000

/* Whether the class at p (after its '[', n bytes to the pattern's end)
 * matches c; *ret_len gets the bytes it spans, its ']' included. */
static bool class_match(const char *p, size_t n, char c, size_t *ret_len)
{
        bool not = n > 0 && p[0] == '^', hit = false;
        size_t i = not ;
        for (;; i++) {
                if (i + 1 < n && p[i] == '\\') {
                        i++;
                        hit |= p[i] == c;
                } else if (i >= n) {
                        break; /* unclosed: the class takes the rest */
                } else if (p[i] == ']') {
                        i++;
                        break;
                } else if (i + 2 < n && p[i + 1] == '-') {
                        /* plain char, as Redis compares: signed where char is */
                        int lo = p[i], hi = p[i + 2];
                        if (lo > hi) {
                                int t = lo;
                                lo = hi;
                                hi = t;
                        }
                        hit |= c >= lo && c <= hi;
                        i += 2;
                } else {
                        hit |= p[i] == c;
                }
        }
        *ret_len = i;
        return hit != not ;
}

/* Whether the pattern element at p (not a star; n bytes left) matches c;
 * *ret_len gets its length. */
static bool element_match(const char *p, size_t n, char c, size_t *ret_len)
{
        *ret_len = 1;
        switch (p[0]) {
        case '?':
                return true;
        case '[': {
                bool hit = class_match(p + 1, n - 1, c, ret_len);
                ++*ret_len;
                return hit;
        }
        case '\\':
                if (n >= 2) {
                        *ret_len = 2;
                        return p[1] == c;
                }
                return c == '\\';
        default:
                return p[0] == c;
        }
}

bool glob_match(const char *p, size_t pn, const char *s, size_t sn)
{
        size_t pi = 0, si = 0, star_p = 0, star_s = 0, len;
        unsigned stars = 0;
        if (!sn) /* Redis matches nothing against an empty string, a star included */
                return !pn;
        while (si < sn) {
                if (pi < pn && p[pi] == '*') {
                        while (pi < pn && p[pi] == '*')
                                pi++;
                        if (pi == pn)
                                return true;
                        if (++stars > STAR_LIMIT)
                                return false;
                        star_p = pi;
                        star_s = si;
                } else if (pi < pn && element_match(p + pi, pn - pi, s[si], &len)) {
                        pi += len;
                        si++;
                } else if (stars) {
                        /* the last star takes one more byte; retry after it */
                        pi = star_p;
                        si = ++star_s;
                } else {
                        return false;
                }
        }
        while (pi < pn && p[pi] == '*')
                pi++;
        return pi == pn;
}
