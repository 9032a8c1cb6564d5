/* fgd_pcg64.h: NumPy's PCG64 generator and Generator.shuffle, inlined.
 *
 * rng.permutation(n) costs about 9 ns a row in NumPy (a call through the bit
 * generator's function pointer for every 32-bit draw): 0.9 ms for 100,000 rows,
 * a sixth of a mini-batch epoch of W1.  The same steps written out here, with
 * the state in registers, take a third of that.  They are NumPy's, step for
 * step, so the permutation and the generator's final state are bit for bit
 * those of rng.permutation(n):
 *   - PCG64 (XSL-RR 128/64): state = state * M + inc, then the output of the
 *     new state: rotr64(hi ^ lo, state >> 122);
 *   - next_uint32 hands out the low half of a 64-bit draw and keeps the high
 *     half for the next call (has_uint32, uinteger); next_uint64 bypasses it;
 *   - random_interval(max): the smallest all-ones mask >= max, draws (32-bit
 *     for max <= 0xffffffff, else 64-bit) masked until one is <= max;
 *   - shuffle: for i = n-1 down to 1, swap x[i] and x[random_interval(i)].
 * The Python side checks this against NumPy once per process before using it
 * (fastgd.batching), so a NumPy that changed its algorithm gets NumPy's.
 * Needs a 128-bit integer type (GCC, Clang); FGD_HAVE_PCG64 says whether it is here. */
#ifndef FGD_PCG64_H
#define FGD_PCG64_H

#include <stdint.h>

#if defined(__SIZEOF_INT128__)
#define FGD_HAVE_PCG64 1
typedef unsigned __int128 fgd_u128;

typedef struct {
    fgd_u128 state, inc;
    int has_uint32;
    uint32_t uinteger;
} fgd_pcg64;

static inline uint64_t fgd_pcg64_next64(fgd_pcg64 *g)
{
    const fgd_u128 mult = ((fgd_u128)0x2360ED051FC65DA4ULL << 64) | 0x4385DF649FCCF645ULL;
    uint64_t v;
    unsigned rot;
    g->state = g->state * mult + g->inc;
    v = (uint64_t)(g->state >> 64) ^ (uint64_t)g->state;
    rot = (unsigned)(g->state >> 122);
    return (v >> rot) | (v << ((-rot) & 63));
}

static inline uint32_t fgd_pcg64_next32(fgd_pcg64 *g)
{
    uint64_t next;
    if (g->has_uint32) {
        g->has_uint32 = 0;
        return g->uinteger;
    }
    next = fgd_pcg64_next64(g);
    g->has_uint32 = 1;
    g->uinteger = (uint32_t)(next >> 32);
    return (uint32_t)next;
}

/* the smallest all-ones mask >= max (max >= 1) */
static inline uint64_t fgd_pcg64_mask(uint64_t max)
{
    return ~(uint64_t)0 >> __builtin_clzll(max);
}

static inline uint64_t fgd_pcg64_interval(fgd_pcg64 *g, uint64_t max)
{
    uint64_t mask, value;
    if (max == 0) return 0;
    mask = fgd_pcg64_mask(max);
    if (max <= 0xffffffffULL) {
        while ((value = (fgd_pcg64_next32(g) & mask)) > max) {}
    } else {
        while ((value = (fgd_pcg64_next64(g) & mask)) > max) {}
    }
    return value;
}

/* the state from and to 64-bit halves (Cython has no 128-bit type) */
static inline void fgd_pcg64_load(fgd_pcg64 *g, const uint64_t *s, int has_uint32, uint32_t uinteger)
{
    g->state = ((fgd_u128)s[0] << 64) | s[1];
    g->inc = ((fgd_u128)s[2] << 64) | s[3];
    g->has_uint32 = has_uint32;
    g->uinteger = uinteger;
}

static inline void fgd_pcg64_store(const fgd_pcg64 *g, uint64_t *s)
{
    s[0] = (uint64_t)(g->state >> 64); s[1] = (uint64_t)g->state;
    s[2] = (uint64_t)(g->inc >> 64); s[3] = (uint64_t)g->inc;
}

/* One draw at a time, as NumPy writes it (any n; the blocked loop below handles
 * n - 1 <= 0xffffffff and is tested against this and NumPy). */
static void fgd_pcg64_permutation_simple(fgd_pcg64 *g, int64_t *x, int64_t n)
{
    int64_t i, j, t;
    for (i = 0; i < n; i++) x[i] = i;
    for (i = n - 1; i >= 1; i--) {
        j = (int64_t)fgd_pcg64_interval(g, (uint64_t)i);
        t = x[j]; x[j] = x[i]; x[i] = t;
    }
}

/* The shuffle's draws for x[i], i = n-1 down to 1, when every draw is a 32-bit one
 * (n - 1 <= 0xffffffff): the generator's 64-bit outputs are made FGD_PCG64_BLOCK at a
 * time (the 128-bit multiply chain runs on without waiting for the swaps), then taken
 * as 32-bit halves, low first, in runs of i with one mask, where a rejected draw costs
 * a compare and not a mispredicted branch.  The same draws, in the same order, as the
 * one-at-a-time loop; the state is then rewound to just after the last output used. */
#define FGD_PCG64_BLOCK 256

static void fgd_pcg64_permutation(fgd_pcg64 *g, int64_t *x, int64_t n)
{
    uint64_t out[FGD_PCG64_BLOCK];
    int64_t i, t, used;
    fgd_u128 start;
    if (n - 1 > 0xffffffffLL) {
        fgd_pcg64_permutation_simple(g, x, n);
        return;
    }
    for (i = 0; i < n; i++) x[i] = i;
    i = n - 1;
    if (i >= 1 && g->has_uint32) {          /* half of a draw kept back: it comes first */
        uint64_t v = g->uinteger & fgd_pcg64_mask((uint64_t)i);
        g->has_uint32 = 0;
        if ((int64_t)v <= i) {
            t = x[v]; x[v] = x[i]; x[i] = t;
            i--;
        }
    }
    while (i >= 1) {
        int k, m = 2 * FGD_PCG64_BLOCK;
        start = g->state;
        for (k = 0; k < FGD_PCG64_BLOCK; k++) out[k] = fgd_pcg64_next64(g);
        k = 0;
        while (k < m && i >= 1) {
            /* i in [lo, 2 lo): one mask, 2 lo - 1 */
            uint64_t mask = fgd_pcg64_mask((uint64_t)i), lo = (mask >> 1) + 1;
            for (; k < m && (uint64_t)i >= lo; k++) {
                uint64_t v = (uint32_t)(out[k >> 1] >> (32 * (k & 1))) & mask;
                int64_t c = (int64_t)v <= i ? (int64_t)v : i;   /* rejected: swap x[i] with itself */
                int64_t a = x[i], b = x[c];
                x[c] = a;
                x[i] = b;
                i -= (int64_t)v <= i;
            }
        }
        if (i < 1) {                           /* rewind to just after the last output used */
            used = (k + 1) / 2;
            g->state = start;
            for (t = 0; t < used; t++) (void)fgd_pcg64_next64(g);
            g->has_uint32 = k & 1;            /* NumPy keeps the last high half, used or not */
            g->uinteger = (uint32_t)(out[used - 1] >> 32);
        }
    }
}
#else
#define FGD_HAVE_PCG64 0
typedef struct { int has_uint32; uint32_t uinteger; } fgd_pcg64;
static inline void fgd_pcg64_load(fgd_pcg64 *g, const uint64_t *s, int has_uint32, uint32_t uinteger)
{ (void)s; g->has_uint32 = has_uint32; g->uinteger = uinteger; }
static inline void fgd_pcg64_store(const fgd_pcg64 *g, uint64_t *s) { (void)g; (void)s; }
static void fgd_pcg64_permutation(fgd_pcg64 *g, int64_t *x, int64_t n) { (void)g; (void)x; (void)n; }
static void fgd_pcg64_permutation_simple(fgd_pcg64 *g, int64_t *x, int64_t n) { (void)g; (void)x; (void)n; }
#endif

#endif
