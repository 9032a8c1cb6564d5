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

static inline uint64_t fgd_pcg64_interval(fgd_pcg64 *g, uint64_t max)
{
    uint64_t mask = max, value;
    if (max == 0) return 0;
    mask |= mask >> 1; mask |= mask >> 2; mask |= mask >> 4;
    mask |= mask >> 8; mask |= mask >> 16; mask |= mask >> 32;
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

/* x = a permutation of 0..n-1: np.arange(n) shuffled by Generator.shuffle. */
static void fgd_pcg64_permutation(fgd_pcg64 *g, int64_t *x, int64_t n)
{
    int64_t i, j, t;
    for (i = 0; i < n; i++) x[i] = i;
    for (i = n - 1; i >= 1; i--) {
        j = (int64_t)fgd_pcg64_interval(g, (uint64_t)i);
        t = x[j]; x[j] = x[i]; x[i] = t;
    }
}
#else
#define FGD_HAVE_PCG64 0
typedef struct { int has_uint32; uint32_t uinteger; } fgd_pcg64;
static inline void fgd_pcg64_load(fgd_pcg64 *g, const uint64_t *s, int has_uint32, uint32_t uinteger)
{ (void)s; g->has_uint32 = has_uint32; g->uinteger = uinteger; }
static inline void fgd_pcg64_store(const fgd_pcg64 *g, uint64_t *s) { (void)g; (void)s; }
static void fgd_pcg64_permutation(fgd_pcg64 *g, int64_t *x, int64_t n) { (void)g; (void)x; (void)n; }
#endif

#endif
