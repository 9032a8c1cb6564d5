/* fgd_simd.h: the few hot primitives of the Cython backend, in plain C.
 *
 * dot products and axpy over one row of X, for the dtype pairs (X, theta):
 *   dd = (double, double), ff = (float, float), fd = (float, double),
 *   df = (double, float: x is rounded to float first, as the reference does).
 * and a software prefetch of a row.
 *
 * Determinism: every function sums in a fixed order that depends only on n
 * (explicit vector accumulators, unaligned loads; the dots are compiled without
 * reassociation so the compiler cannot re-vectorise their tails with an
 * alignment-dependent peel), so a row gives the same bits wherever it sits in
 * memory (X, or a copy) and whichever thread computes it.
 *
 * Speed without -march=native: on x86-64 Linux with GCC the functions are
 * compiled twice (target_clones), for x86-64-v3 (AVX2 + FMA) and the baseline,
 * and the loader picks one clone per process from the CPU (ifunc).  The choice
 * depends on the machine only, never on the thread count.  Define
 * FGD_NO_CLONES to build the baseline only.
 */
#ifndef FGD_SIMD_H
#define FGD_SIMD_H

#include <stddef.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) \
    && !defined(FGD_NO_CLONES) && (__GNUC__ >= 11)
#define FGD_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define FGD_CLONES
#endif

/* Software prefetch into L2 (prefetcht1: leaves the L1 miss buffers to the
 * demand loads, which measured best for rows fetched 8 ahead).  Written as
 * volatile asm: GCC's dead-code elimination deletes __builtin_prefetch in
 * loops that do nothing else (the row loop below), at -O1 and up. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define FGD_PREFETCH(p) __asm__ volatile("prefetcht1 %0" : : "m"(*(const char *)(p)))
#elif defined(__GNUC__) && defined(__aarch64__)
#define FGD_PREFETCH(p) __asm__ volatile("prfm pldl2keep, %0" : : "Q"(*(const char *)(p)))
#elif defined(__GNUC__) || defined(__clang__)
#define FGD_PREFETCH(p) __builtin_prefetch((const void *)(p), 0, 2)
#else
#define FGD_PREFETCH(p) ((void)(p))
#endif

#if defined(__GNUC__) || defined(__clang__)
#define FGD_VEC 1
#else
#define FGD_VEC 0
#endif

/* Functions whose accuracy depends on the order of operations are compiled
 * without -fassociative-math. */
#if defined(__GNUC__) && !defined(__clang__)
#define FGD_NOREASSOC __attribute__((optimize("no-associative-math")))
#define FGD_NOREASSOC_BODY
#elif defined(__clang__)
#define FGD_NOREASSOC
#define FGD_NOREASSOC_BODY _Pragma("clang fp reassociate(off)")
#else
#define FGD_NOREASSOC
#define FGD_NOREASSOC_BODY
#endif

/* Prefetch the first `bytes` bytes of a row (capped: long rows are streamed
 * well by the hardware prefetcher once their first lines are requested). */
static inline void fgd_prefetch_row(const void *p, size_t bytes)
{
    const char *c = (const char *)p;
    size_t off;
    if (bytes > 2048) bytes = 2048;
    for (off = 0; off < bytes; off += 64) FGD_PREFETCH(c + off);
    FGD_PREFETCH(c + bytes - 1);
}


#if FGD_VEC
typedef double fgd_v4d __attribute__((vector_size(32)));
typedef float fgd_v8f __attribute__((vector_size(32)));
typedef float fgd_v4f __attribute__((vector_size(16)));
typedef long long fgd_v4i __attribute__((vector_size(32)));
/* unaligned, alias-safe views for loads and stores */
typedef double fgd_v4du __attribute__((vector_size(32), aligned(8), may_alias));
typedef float fgd_v8fu __attribute__((vector_size(32), aligned(4), may_alias));
typedef float fgd_v4fu __attribute__((vector_size(16), aligned(4), may_alias));

/* 16-byte-aligned halves (natural alignment of the 16-byte type) */
typedef double fgd_v2da __attribute__((vector_size(16), may_alias));

#define fgd_ld4d(p) (*(const fgd_v4du *)(p))
/* x[0..3] from two 16-byte-aligned loads, for p = 16 (mod 32).  NumPy's large
 * arrays start 16 bytes past a 64-byte boundary (malloc's header), so every row
 * of X with d*8 a multiple of 32 starts at 16 (mod 32), and every other 32-byte
 * load of it straddles two cache lines.  For rows that miss the cache such
 * split loads cost: a shuffled pass over X (W1, 100,000 x 100) took 7.7-7.8 ms
 * with them and 5.9-6.1 ms with two aligned halves (same data, same machine,
 * interleaved runs; 5.7-6.0 ms for rows on a 32-byte boundary).  Same values,
 * same arithmetic: the results do not change. */
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
#if defined(__x86_64__) || defined(__i386__)
/* the empty asm keeps the compiler from fusing the halves into one unaligned load */
#define FGD_OPAQUE_X(v) __asm__("" : "+x"(v))
#else
#define FGD_OPAQUE_X(v) ((void)0)
#endif
#define fgd_ld4d_h(p) __extension__({                                               \
    fgd_v2da lo_ = *(const fgd_v2da *)(p), hi_ = *(const fgd_v2da *)((p) + 2);       \
    FGD_OPAQUE_X(hi_);                                                               \
    __builtin_shufflevector(lo_, hi_, 0, 1, 2, 3); })
#else
#define fgd_ld4d_h(p) fgd_ld4d(p)
#endif
#define fgd_ld8f(p) (*(const fgd_v8fu *)(p))
#define fgd_ld4f_as_d(p) __builtin_convertvector(*(const fgd_v4fu *)(p), fgd_v4d)
#define fgd_st4d(p, v) (*(fgd_v4du *)(p) = (v))
#define fgd_st8f(p, v) (*(fgd_v8fu *)(p) = (v))

/* ---- dot products: sum_j x[j] * w[j] --------------------------------- */
/* The body of a dot product of 4-wide vectors; LDX loads x[j..j+3]. */
#define FGD_DOT4D_BODY(LDX)                                                          \
    fgd_v4d a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};                                  \
    ptrdiff_t j = 0;                                                                 \
    double s;                                                                        \
    for (; j + 16 <= n; j += 16) {                                                   \
        a0 += LDX(x + j) * fgd_ld4d(w + j);                                          \
        a1 += LDX(x + j + 4) * fgd_ld4d(w + j + 4);                                  \
        a2 += LDX(x + j + 8) * fgd_ld4d(w + j + 8);                                  \
        a3 += LDX(x + j + 12) * fgd_ld4d(w + j + 12);                                \
    }                                                                                \
    for (; j + 4 <= n; j += 4) a0 += LDX(x + j) * fgd_ld4d(w + j);                   \
    a0 = (a0 + a1) + (a2 + a3);                                                      \
    s = (a0[0] + a0[1]) + (a0[2] + a0[3]);                                           \
    for (; j < n; j++) s += x[j] * w[j];                                             \
    return s;

FGD_CLONES FGD_NOREASSOC static double fgd_dot_dd(const double *x, const double *w, ptrdiff_t n)
{
    FGD_NOREASSOC_BODY
    if (((size_t)x & 31) == 16) { FGD_DOT4D_BODY(fgd_ld4d_h) }
    else { FGD_DOT4D_BODY(fgd_ld4d) }
}

/* fgd_dot_dd for rows streamed in storage order (BGD): plain unaligned loads whatever
 * the alignment, the same sums in the same order (the same bits).  With the rows
 * requested 8 ahead and the gradient pass in fgd_axpy4_dd_l1's aligned form, the BGD
 * epoch over rows at 16 (mod 32) ran 12-16 % faster in a C model of the loop on two
 * threads (2.91-3.00 against 3.39-3.57 ms, W1, a slow-memory period; level on aligned
 * rows); any one of the three alone gained 0-5 %. */
FGD_CLONES FGD_NOREASSOC static double fgd_dot_dd_stream(const double *x, const double *w,
                                                         ptrdiff_t n)
{
    FGD_NOREASSOC_BODY
    FGD_DOT4D_BODY(fgd_ld4d)
}

FGD_CLONES FGD_NOREASSOC static float fgd_dot_ff(const float *x, const float *w, ptrdiff_t n)
{
    FGD_NOREASSOC_BODY
    fgd_v8f a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    ptrdiff_t j = 0;
    float s;
    for (; j + 32 <= n; j += 32) {
        a0 += fgd_ld8f(x + j) * fgd_ld8f(w + j);
        a1 += fgd_ld8f(x + j + 8) * fgd_ld8f(w + j + 8);
        a2 += fgd_ld8f(x + j + 16) * fgd_ld8f(w + j + 16);
        a3 += fgd_ld8f(x + j + 24) * fgd_ld8f(w + j + 24);
    }
    for (; j + 8 <= n; j += 8) a0 += fgd_ld8f(x + j) * fgd_ld8f(w + j);
    a0 = (a0 + a1) + (a2 + a3);
    s = ((a0[0] + a0[1]) + (a0[2] + a0[3])) + ((a0[4] + a0[5]) + (a0[6] + a0[7]));
    for (; j < n; j++) s += x[j] * w[j];
    return s;
}

FGD_CLONES FGD_NOREASSOC static double fgd_dot_fd(const float *x, const double *w, ptrdiff_t n)
{
    FGD_NOREASSOC_BODY
    fgd_v4d a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    ptrdiff_t j = 0;
    double s;
    for (; j + 16 <= n; j += 16) {
        a0 += fgd_ld4f_as_d(x + j) * fgd_ld4d(w + j);
        a1 += fgd_ld4f_as_d(x + j + 4) * fgd_ld4d(w + j + 4);
        a2 += fgd_ld4f_as_d(x + j + 8) * fgd_ld4d(w + j + 8);
        a3 += fgd_ld4f_as_d(x + j + 12) * fgd_ld4d(w + j + 12);
    }
    for (; j + 4 <= n; j += 4) a0 += fgd_ld4f_as_d(x + j) * fgd_ld4d(w + j);
    a0 = (a0 + a1) + (a2 + a3);
    s = (a0[0] + a0[1]) + (a0[2] + a0[3]);
    for (; j < n; j++) s += (double)x[j] * w[j];
    return s;
}

/* Four rows' dots against one w: out[r] = x_r . w.  For rows already in cache (a
 * reader thread's, or a small X): w is loaded once for the four, and the four
 * horizontal sums share their shuffles.  (From DRAM, interleaving four rows defeats
 * the hardware stream prefetcher; see below.) */
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
#define FGD_HADD4D(u, v) (__builtin_shufflevector(u, v, 0, 4, 2, 6) \
                          + __builtin_shufflevector(u, v, 1, 5, 3, 7))
#define FGD_FOLD4D(u, v) (__builtin_shufflevector(u, v, 0, 1, 4, 5) \
                          + __builtin_shufflevector(u, v, 2, 3, 6, 7))
#else
#define FGD_HADD4D(u, v) ((fgd_v4d){u[0] + u[1], v[0] + v[1], u[2] + u[3], v[2] + v[3]})
#define FGD_FOLD4D(u, v) ((fgd_v4d){u[0] + u[2], u[1] + u[3], v[0] + v[2], v[1] + v[3]})
#endif
/* 32-byte-aligned loads (fgd_axpy4_dd_l1, after its peel) */
typedef double fgd_v4da __attribute__((vector_size(32), aligned(32), may_alias));
#define fgd_lda4d(p) (*(const fgd_v4da *)(p))

/* True when the four rows start 16 bytes past a 32-byte boundary, as every row of a
 * NumPy float64 array with d * 8 a multiple of 32 does (see fgd_ld4d_h). */
static inline int fgd_rows4_at16(const void *x0, const void *x1, const void *x2, const void *x3)
{
    return (((size_t)x0 & 31) == 16) & (((size_t)x1 & 31) == 16)
         & (((size_t)x2 & 31) == 16) & (((size_t)x3 & 31) == 16);
}

#define FGD_HSUM4(v) ((v[0] + v[1]) + (v[2] + v[3]))
#define FGD_HSUM8(v) (((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7])))

/* The body of fgd_dot4_dd and fgd_dot4_fd; LDX loads x[j..j+3] as doubles. */
#define FGD_DOT4ROWS_D_BODY(LDX)                                                         \
    fgd_v4d a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, b0 = {0}, b1 = {0}, b2 = {0}, b3 = {0}; \
    fgd_v4d w0, w1, s;                                                                   \
    ptrdiff_t j = 0;                                                                     \
    for (; j + 8 <= n; j += 8) {                                                         \
        w0 = fgd_ld4d(w + j);                                                            \
        w1 = fgd_ld4d(w + j + 4);                                                        \
        a0 += LDX(x0 + j) * w0; b0 += LDX(x0 + j + 4) * w1;                              \
        a1 += LDX(x1 + j) * w0; b1 += LDX(x1 + j + 4) * w1;                              \
        a2 += LDX(x2 + j) * w0; b2 += LDX(x2 + j + 4) * w1;                              \
        a3 += LDX(x3 + j) * w0; b3 += LDX(x3 + j + 4) * w1;                              \
    }                                                                                    \
    if (j + 4 <= n) {                                                                    \
        w0 = fgd_ld4d(w + j);                                                            \
        a0 += LDX(x0 + j) * w0; a1 += LDX(x1 + j) * w0;                                  \
        a2 += LDX(x2 + j) * w0; a3 += LDX(x3 + j) * w0;                                  \
        j += 4;                                                                          \
    }                                                                                    \
    a0 += b0; a1 += b1; a2 += b2; a3 += b3;                                              \
    s = FGD_FOLD4D(FGD_HADD4D(a0, a1), FGD_HADD4D(a2, a3));   /* {x_r . w} */            \
    for (; j < n; j++) {                                                                 \
        s[0] += x0[j] * w[j]; s[1] += x1[j] * w[j];                                      \
        s[2] += x2[j] * w[j]; s[3] += x3[j] * w[j];                                      \
    }                                                                                    \
    fgd_st4d(out, s);

FGD_CLONES FGD_NOREASSOC static void fgd_dot4_dd(const double *x0, const double *x1,
                                                  const double *x2, const double *x3,
                                                  const double *w, ptrdiff_t n, double *out)
{ FGD_NOREASSOC_BODY FGD_DOT4ROWS_D_BODY(fgd_ld4d) }

/* float32 rows, float64 weights and sums (accumulate="float64") */
FGD_CLONES FGD_NOREASSOC static void fgd_dot4_fd(const float *x0, const float *x1,
                                                  const float *x2, const float *x3,
                                                  const double *w, ptrdiff_t n, double *out)
{ FGD_NOREASSOC_BODY FGD_DOT4ROWS_D_BODY(fgd_ld4f_as_d) }

/* float32 rows and weights: the same loop on 8-wide vectors.  The four horizontal sums
 * are scalar: they come once a call, after d / 8 vector steps a row. */
FGD_CLONES FGD_NOREASSOC static void fgd_dot4_ff(const float *x0, const float *x1,
                                                  const float *x2, const float *x3,
                                                  const float *w, ptrdiff_t n, float *out)
{
    FGD_NOREASSOC_BODY
    fgd_v8f a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, b0 = {0}, b1 = {0}, b2 = {0}, b3 = {0};
    fgd_v8f w0, w1;
    ptrdiff_t j = 0, k;
    int r;
    for (; j + 16 <= n; j += 16) {
        w0 = fgd_ld8f(w + j);
        w1 = fgd_ld8f(w + j + 8);
        a0 += fgd_ld8f(x0 + j) * w0; b0 += fgd_ld8f(x0 + j + 8) * w1;
        a1 += fgd_ld8f(x1 + j) * w0; b1 += fgd_ld8f(x1 + j + 8) * w1;
        a2 += fgd_ld8f(x2 + j) * w0; b2 += fgd_ld8f(x2 + j + 8) * w1;
        a3 += fgd_ld8f(x3 + j) * w0; b3 += fgd_ld8f(x3 + j + 8) * w1;
    }
    if (j + 8 <= n) {
        w0 = fgd_ld8f(w + j);
        a0 += fgd_ld8f(x0 + j) * w0; a1 += fgd_ld8f(x1 + j) * w0;
        a2 += fgd_ld8f(x2 + j) * w0; a3 += fgd_ld8f(x3 + j) * w0;
        j += 8;
    }
    a0 += b0; a1 += b1; a2 += b2; a3 += b3;
    {
        const float *xr[4] = {x0, x1, x2, x3};
        fgd_v8f acc[4] = {a0, a1, a2, a3};
        for (r = 0; r < 4; r++) {
            float s = FGD_HSUM8(acc[r]);
            for (k = j; k < n; k++) s += xr[r][k] * w[k];
            out[r] = s;
        }
    }
}

/* ---- fused update and dot: w[j] += a * xp[j], then return x . w -------
 * The b = 1 SGD step: the previous row's update and the next row's margin in
 * one pass over w (w is read and written once, and the margin is formed
 * straight from the updated values held in registers).  Same bits as
 * fgd_axpy_* followed by fgd_dot_* (same per-element update, same summation
 * order). */
#define FGD_AXPY_DOT_BODY(LDX, LDP, LDW, STW, VT, NL, HSUM, ST)                         \
    VT av, a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, t0, t1, t2, t3;                    \
    ptrdiff_t j = 0; int q;                                                            \
    ST s;                                                                              \
    for (q = 0; q < NL; q++) av[q] = a;                                                \
    for (; j + 4 * NL <= n; j += 4 * NL) {                                             \
        t0 = LDW(w + j) + av * LDP(xp + j); STW(w + j, t0);                            \
        t1 = LDW(w + j + NL) + av * LDP(xp + j + NL); STW(w + j + NL, t1);             \
        t2 = LDW(w + j + 2 * NL) + av * LDP(xp + j + 2 * NL); STW(w + j + 2 * NL, t2); \
        t3 = LDW(w + j + 3 * NL) + av * LDP(xp + j + 3 * NL); STW(w + j + 3 * NL, t3); \
        a0 += LDX(x + j) * t0;                                                         \
        a1 += LDX(x + j + NL) * t1;                                                    \
        a2 += LDX(x + j + 2 * NL) * t2;                                                \
        a3 += LDX(x + j + 3 * NL) * t3;                                                \
    }                                                                                  \
    for (; j + NL <= n; j += NL) {                                                     \
        t0 = LDW(w + j) + av * LDP(xp + j); STW(w + j, t0);                            \
        a0 += LDX(x + j) * t0;                                                         \
    }                                                                                  \
    a0 = (a0 + a1) + (a2 + a3);                                                        \
    s = HSUM(a0);                                                                      \
    for (; j < n; j++) { w[j] += a * (ST)xp[j]; s += (ST)x[j] * w[j]; }                \
    return s;


FGD_CLONES FGD_NOREASSOC static double fgd_axpy_dot_dd(double a, const double *xp, double *w,
                                                       const double *x, ptrdiff_t n)
{
    FGD_NOREASSOC_BODY
    if (((size_t)x & 31) == 16) {
        FGD_AXPY_DOT_BODY(fgd_ld4d_h, fgd_ld4d, fgd_ld4d, fgd_st4d, fgd_v4d, 4, FGD_HSUM4, double)
    } else {
        FGD_AXPY_DOT_BODY(fgd_ld4d, fgd_ld4d, fgd_ld4d, fgd_st4d, fgd_v4d, 4, FGD_HSUM4, double)
    }
}

FGD_CLONES FGD_NOREASSOC static float fgd_axpy_dot_ff(float a, const float *xp, float *w,
                                                      const float *x, ptrdiff_t n)
{
    FGD_NOREASSOC_BODY
    FGD_AXPY_DOT_BODY(fgd_ld8f, fgd_ld8f, fgd_ld8f, fgd_st8f, fgd_v8f, 8, FGD_HSUM8, float)
}

FGD_CLONES FGD_NOREASSOC static double fgd_axpy_dot_fd(double a, const float *xp, double *w,
                                                       const float *x, ptrdiff_t n)
{
    FGD_NOREASSOC_BODY
    FGD_AXPY_DOT_BODY(fgd_ld4f_as_d, fgd_ld4f_as_d, fgd_ld4d, fgd_st4d, fgd_v4d, 4, FGD_HSUM4,
                      double)
}

/* ---- axpy: y[j] += a * x[j] ----------------------------------------- */
FGD_CLONES static void fgd_axpy_dd(double a, const double *x, double *y, ptrdiff_t n)
{
    fgd_v4d av = {a, a, a, a};
    ptrdiff_t j = 0;
    for (; j + 8 <= n; j += 8) {
        fgd_st4d(y + j, fgd_ld4d(y + j) + av * fgd_ld4d(x + j));
        fgd_st4d(y + j + 4, fgd_ld4d(y + j + 4) + av * fgd_ld4d(x + j + 4));
    }
    for (; j + 4 <= n; j += 4) fgd_st4d(y + j, fgd_ld4d(y + j) + av * fgd_ld4d(x + j));
    for (; j < n; j++) y[j] += a * x[j];
}

FGD_CLONES static void fgd_axpy_ff(float a, const float *x, float *y, ptrdiff_t n)
{
    fgd_v8f av = {a, a, a, a, a, a, a, a};
    ptrdiff_t j = 0;
    for (; j + 16 <= n; j += 16) {
        fgd_st8f(y + j, fgd_ld8f(y + j) + av * fgd_ld8f(x + j));
        fgd_st8f(y + j + 8, fgd_ld8f(y + j + 8) + av * fgd_ld8f(x + j + 8));
    }
    for (; j + 8 <= n; j += 8) fgd_st8f(y + j, fgd_ld8f(y + j) + av * fgd_ld8f(x + j));
    for (; j < n; j++) y[j] += a * x[j];
}

FGD_CLONES static void fgd_axpy_fd(double a, const float *x, double *y, ptrdiff_t n)
{
    fgd_v4d av = {a, a, a, a};
    ptrdiff_t j = 0;
    for (; j + 8 <= n; j += 8) {
        fgd_st4d(y + j, fgd_ld4d(y + j) + av * fgd_ld4f_as_d(x + j));
        fgd_st4d(y + j + 4, fgd_ld4d(y + j + 4) + av * fgd_ld4f_as_d(x + j + 4));
    }
    for (; j + 4 <= n; j += 4) fgd_st4d(y + j, fgd_ld4d(y + j) + av * fgd_ld4f_as_d(x + j));
    for (; j < n; j++) y[j] += a * (double)x[j];
}

/* ---- four rows at once: y += a0 x0 + a1 x1 + a2 x2 + a3 x3 -------------
 * (y is loaded and stored once; the rows are read after their dots, from L1.
 * No dot4: interleaving the loads of four rows read from DRAM defeats the
 * hardware stream prefetcher and was 2-4x slower than four dots in a row.) */
/* y[j] += (a[0] x0[j] + a[1] x1[j]) + (a[2] x2[j] + a[3] x3[j]), in that order (the
 * functions are compiled without reassociation, so every element gets the same
 * rounding wherever the vectors start).  A tree, not four axpys in a row: y is one add
 * deep, so consecutive calls on the same y (a batch's rows, four at a time) do not
 * wait on each other; the chain of four fused multiply-adds slowed the BGD epoch from
 * DRAM by 10 % (fewer of the next rows' misses in flight). */
#define FGD_AXPY4_BODY(LOADX, LOADY, STY, VT, NL, ST)                                  \
    VT c0, c1, c2, c3;                                                                 \
    ptrdiff_t j = 0; int q;                                                            \
    for (q = 0; q < NL; q++) { c0[q] = a[0]; c1[q] = a[1]; c2[q] = a[2]; c3[q] = a[3]; } \
    for (; j + NL <= n; j += NL) {                                                     \
        VT u = c0 * LOADX(x0 + j) + c1 * LOADX(x1 + j);                                \
        VT v = c2 * LOADX(x2 + j) + c3 * LOADX(x3 + j);                                \
        STY(y + j, LOADY(y + j) + (u + v));                                            \
    }                                                                                  \
    for (; j < n; j++) {                                                               \
        ST u = a[0] * (ST)x0[j] + a[1] * (ST)x1[j];                                    \
        ST v = a[2] * (ST)x2[j] + a[3] * (ST)x3[j];                                    \
        y[j] = y[j] + (u + v);                                                         \
    }

FGD_CLONES FGD_NOREASSOC static void fgd_axpy4_dd(const double *a, const double *x0, const double *x1,
                                    const double *x2, const double *x3, double *y, ptrdiff_t n)
{ FGD_NOREASSOC_BODY FGD_AXPY4_BODY(fgd_ld4d, fgd_ld4d, fgd_st4d, fgd_v4d, 4, double) }

/* fgd_axpy4_dd for rows already in L1 (the mid-sized batches' gradient pass, right
 * after their margins), the same bits.  Rows at 16 mod 32 (NumPy's float64 rows with
 * d * 8 a multiple of 32) make every other unaligned 32-byte load straddle two cache
 * lines, which costs even in L1 (4 rows x 100: 8.1 against 6.4 ns a row); so the first
 * two elements are done alone and the rest with aligned row loads.  Also the streamed
 * (BGD) rows' gradient pass since the twentieth session: alone it had measured 4-11 %
 * slower there, with the streamed dot and the rows requested ahead (fgd_dot_dd_stream)
 * 12 % faster. */
FGD_CLONES FGD_NOREASSOC static void fgd_axpy4_dd_l1(const double *a, const double *x0,
                                                      const double *x1, const double *x2,
                                                      const double *x3, double *y, ptrdiff_t n)
{
    FGD_NOREASSOC_BODY
    if (n >= 6 && fgd_rows4_at16(x0, x1, x2, x3)) {
        ptrdiff_t q;
        for (q = 0; q < 2; q++) {
            double u = a[0] * x0[q] + a[1] * x1[q], v = a[2] * x2[q] + a[3] * x3[q];
            y[q] = y[q] + (u + v);
        }
        x0 += 2; x1 += 2; x2 += 2; x3 += 2; y += 2; n -= 2;
        { FGD_AXPY4_BODY(fgd_lda4d, fgd_ld4d, fgd_st4d, fgd_v4d, 4, double) }
    } else {
        FGD_AXPY4_BODY(fgd_ld4d, fgd_ld4d, fgd_st4d, fgd_v4d, 4, double)
    }
}

FGD_CLONES FGD_NOREASSOC static void fgd_axpy4_ff(const float *a, const float *x0, const float *x1,
                                    const float *x2, const float *x3, float *y, ptrdiff_t n)
{ FGD_NOREASSOC_BODY FGD_AXPY4_BODY(fgd_ld8f, fgd_ld8f, fgd_st8f, fgd_v8f, 8, float) }

FGD_CLONES FGD_NOREASSOC static void fgd_axpy4_fd(const double *a, const float *x0, const float *x1,
                                    const float *x2, const float *x3, double *y, ptrdiff_t n)
{ FGD_NOREASSOC_BODY FGD_AXPY4_BODY(fgd_ld4f_as_d, fgd_ld4d, fgd_st4d, fgd_v4d, 4, double) }

/* ---- the logistic loss of four samples ---------------------------------- */

/* The logistic loss and its derivative for 4 samples (|p| <= 700), vectorised:
 *   e = exp(-|p|), loss = (p >= 0 ? (1 - y) p : -y p) + log1p(e)
 *   (= max(p, 0) - p y + log1p(e), written as a sum of two terms so that no
 *   reassociation can cancel the small log1p term against p),
 *   dl = (p >= 0 ? 1 : e) / (1 + e) - y
 * exp: round-to-nearest range reduction by ln 2 (two-part constant),
 * degree-13 Taylor polynomial, 2^k from the exponent bits; log1p(e) =
 * 2 atanh(e / (2 + e)), a 17-term series in u^2 <= 1/9.  Within a few ulps of
 * glibc's exp and log1p.  Compiled without reassociation (the range reduction
 * and the rounding trick depend on the order of operations). */
#if defined(__GNUC__) || defined(__clang__)
#define FGD_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define FGD_ALWAYS_INLINE inline
#endif
/* exp(r): 1/13!, 1/12!, ..., 1/2, 1, 1 (Horner, highest degree first); log1p(e) =
 * 2u (1 + v/3 + v^2/5 + ...), u = e / (2 + e), v = u^2: 1/33, 1/31, ..., 1/3, 1 */
static const double fgd_exp_coef[14] = {
    1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0,
    1.0 / 362880.0, 1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0,
    1.0 / 6.0, 0.5, 1.0, 1.0};
static const double fgd_atanh_coef[17] = {
    1.0 / 33.0, 1.0 / 31.0, 1.0 / 29.0, 1.0 / 27.0, 1.0 / 25.0, 1.0 / 23.0, 1.0 / 21.0,
    1.0 / 19.0, 1.0 / 17.0, 1.0 / 15.0, 1.0 / 13.0, 1.0 / 11.0, 1.0 / 9.0, 1.0 / 7.0,
    1.0 / 5.0, 1.0 / 3.0, 1.0};

/* exp(x) of four lanes (an fgd_v4d), -700 <= x <= 0 (the normal range): round-to-nearest
 * range reduction by ln 2 (two-part constant), fgd_exp_coef's polynomial (Horner), 2^k
 * from the exponent bits.  fgd_logistic4 (x = -|p|) and fgd_softmax4_dd (x = s_k - max)
 * share it.  (A statement expression, not a function: a function returning a 32-byte
 * vector has no fixed ABI in the baseline clone.) */
#define fgd_exp4d_nonpositive(x_) __extension__({                                       \
    const fgd_v4d z_ = {0}, sh_ = z_ + 0x1.8p52;                                        \
    fgd_v4d x0_ = (x_);                                                                  \
    fgd_v4d t_ = x0_ * 1.4426950408889634 + sh_;  /* k = round(x / ln2) in the low bits */ \
    fgd_v4d k_ = t_ - sh_;                                                               \
    fgd_v4d r_ = (x0_ - k_ * 0x1.62e42fefa3800p-1) - k_ * 0x1.ef35793c76730p-45;        \
    fgd_v4d q_ = (z_ + 1.0) * fgd_exp_coef[0];                                           \
    int c0_;                                                                             \
    for (c0_ = 1; c0_ < 14; c0_++) q_ = q_ * r_ + fgd_exp_coef[c0_];                     \
    q_ * (fgd_v4d)((((fgd_v4i)t_ - (fgd_v4i)sh_) + 1023) << 52); })

/* The body, for VD = fgd_v4d (VI: fgd_v4i, VDU: VD unaligned), on p_[0..4), y_[0..4)
 * into loss[0..4), dl[0..4); every lane computes the same operations in the same order. */
#define FGD_LOGISTIC_BODY(VD, VI, VDU, p_, y_, loss, dl)                                   \
    const VD zero = {0}, one = zero + 1.0, two = zero + 2.0;                              \
    VD p = *(const VDU *)(p_), y = *(const VDU *)(y_);                                    \
    VI pos = (VI)(p >= zero);                                                             \
    VD a = (VD)((VI)p & 0x7fffffffffffffffLL);                                            \
    VD e = fgd_exp4d_nonpositive(zero - a);   /* exp(-|p|) */                             \
    int c_;                                                                               \
    VD u = e / (two + e);                                                                 \
    VD v = u * u;                                                                         \
    VD s = one * fgd_atanh_coef[0];                                                       \
    for (c_ = 1; c_ < 17; c_++) s = s * v + fgd_atanh_coef[c_];                           \
    VD l1p = (two * u) * s;                                                               \
    VD num = (VD)((pos & (VI)one) | (~pos & (VI)e));                                      \
    VD lin = (VD)((pos & (VI)((one - y) * p)) | (~pos & (VI)(zero - y * p)));             \
    *(VDU *)(loss) = lin + l1p;                                                           \
    *(VDU *)(dl) = num / (one + e) - y;

/* One text for the body (a macro): the 4-sample function and the loop below expand it. */
FGD_CLONES FGD_NOREASSOC static void fgd_logistic4(const double *p_, const double *y_,
                                                    double *loss, double *dl)
{
    FGD_NOREASSOC_BODY
    FGD_LOGISTIC_BODY(fgd_v4d, fgd_v4i, fgd_v4du, p_, y_, loss, dl)
}

/* fgd_logistic4 on rows [0, n) in blocks of 4 (n a multiple of 4), one after the other,
 * in one call (one call per block cost 48 ns a block, 1.2 ms of a W1 epoch).  Compact
 * code, which the BGD epoch (rows streaming from DRAM, one block of 16 rows at a time)
 * ran about 10 % faster than the lockstep form below; the same bits. */
FGD_CLONES FGD_NOREASSOC static void fgd_logistic_rows(const double *p, const double *y,
                                                        ptrdiff_t n, double *loss, double *dl)
{
    FGD_NOREASSOC_BODY
    ptrdiff_t r;
    for (r = 0; r + 4 <= n; r += 4) {
        /* (named first: the body's own locals include p, y and r) */
        const double *pb_ = p + r, *yb_ = y + r;
        double *lb_ = loss + r, *db_ = dl + r;
        FGD_LOGISTIC_BODY(fgd_v4d, fgd_v4i, fgd_v4du, pb_, yb_, lb_, db_)
    }
}

/* Sixteen samples a step: four 4-wide blocks, statement by statement (each block
 * computes what fgd_logistic4 computes, the same bits).  One block's 40-odd dependent
 * vector operations fill the scheduler while they wait on each other's latency, so
 * blocks issued one after the other barely overlapped (4.4 ns a sample); in lockstep
 * every step has four independent operations (2.9 ns a sample).  Then blocks of 4. */
#define FGD_X4(stmt) do { int u_; for (u_ = 0; u_ < 4; u_++) { stmt; } } while (0)
FGD_CLONES FGD_NOREASSOC static void fgd_logistic_rows_x4(const double *p, const double *y,
                                                           ptrdiff_t n, double *loss, double *dl)
{
    FGD_NOREASSOC_BODY
    ptrdiff_t r;
    const fgd_v4d zero = {0}, one = zero + 1.0, two = zero + 2.0, shifter = zero + 0x1.8p52;
    for (r = 0; r + 16 <= n; r += 16) {
        fgd_v4d P[4], Y[4], X[4], T[4], K[4], R[4], Q[4], E[4], U[4], V[4], S[4];
        fgd_v4i POS[4], KI[4];
        int c;
        FGD_X4(P[u_] = fgd_ld4d(p + r + 4 * u_); Y[u_] = fgd_ld4d(y + r + 4 * u_));
        FGD_X4(POS[u_] = (fgd_v4i)(P[u_] >= zero));
        FGD_X4(X[u_] = zero - (fgd_v4d)((fgd_v4i)P[u_] & 0x7fffffffffffffffLL));
        FGD_X4(T[u_] = X[u_] * 1.4426950408889634 + shifter);
        FGD_X4(K[u_] = T[u_] - shifter);
        FGD_X4(R[u_] = (X[u_] - K[u_] * 0x1.62e42fefa3800p-1) - K[u_] * 0x1.ef35793c76730p-45);
        FGD_X4(Q[u_] = one * fgd_exp_coef[0]);
        for (c = 1; c < 14; c++) FGD_X4(Q[u_] = Q[u_] * R[u_] + fgd_exp_coef[c]);
        FGD_X4(KI[u_] = (fgd_v4i)T[u_] - (fgd_v4i)shifter);
        FGD_X4(E[u_] = Q[u_] * (fgd_v4d)((KI[u_] + 1023) << 52));
        FGD_X4(U[u_] = E[u_] / (two + E[u_]));
        FGD_X4(V[u_] = U[u_] * U[u_]);
        FGD_X4(S[u_] = one * fgd_atanh_coef[0]);
        for (c = 1; c < 17; c++) FGD_X4(S[u_] = S[u_] * V[u_] + fgd_atanh_coef[c]);
        FGD_X4(fgd_st4d(loss + r + 4 * u_,
                        (fgd_v4d)((POS[u_] & (fgd_v4i)((one - Y[u_]) * P[u_]))
                                  | (~POS[u_] & (fgd_v4i)(zero - Y[u_] * P[u_])))
                        + (two * U[u_]) * S[u_]));
        FGD_X4(fgd_st4d(dl + r + 4 * u_,
                        (fgd_v4d)((POS[u_] & (fgd_v4i)one) | (~POS[u_] & (fgd_v4i)E[u_]))
                        / (one + E[u_]) - Y[u_]));
    }
    fgd_logistic_rows(p + r, y + r, n - r, loss + r, dl + r);
}

/* ---- the softmax cross-entropy of four rows ------------------------------
 * s[4 k + r] holds row r's score for class k (k < K) on entry and softmax_k - [k == cls[r]]
 * on return; loss[r] its loss.  The operations of softmax_loss_dloss (losses.pxd) in
 * the same order, one row a lane: m = max_k s_k, e_k = exp(s_k - m), sum = e_0 + ... +
 * e_{K-1} (in that order), loss = (m + log sum) - s_cls, dl_k = e_k / sum, dl_cls -= 1.
 * exp is fgd_logistic4's; log sum = j ln 2 + 2 atanh((f - 1) / (f + 1)) with sum = 2^j f,
 * f in [1, 2) (u <= 1/3: fgd_atanh_coef's series); both within a few ulps of glibc's.
 * Returns 0, with s untouched, where a score is not finite or some s_k - m < -700
 * (exp would leave the normal range): the caller then takes the scalar path, so
 * non-finite losses and underflows are the reference's. */
FGD_CLONES FGD_NOREASSOC static int fgd_softmax4_dd(double *s, ptrdiff_t K, const ptrdiff_t *cls,
                                                     double *loss)
{
    FGD_NOREASSOC_BODY
    const fgd_v4d zero = {0}, one = zero + 1.0;
    fgd_v4d m = fgd_ld4d(s), sum = zero, v, e, f, kk, u, w, ser, lg;
    fgd_v4i bad = (fgd_v4i)(m - m != zero), gt, bits;
    double pc[4];
    ptrdiff_t k;
    int c;
    for (k = 1; k < K; k++) {
        v = fgd_ld4d(s + 4 * k);
        bad |= (fgd_v4i)(v - v != zero);            /* inf or NaN */
        gt = (fgd_v4i)(v > m);
        m = (fgd_v4d)((gt & (fgd_v4i)v) | (~gt & (fgd_v4i)m));
    }
    for (k = 0; k < K; k++)
        bad |= (fgd_v4i)(fgd_ld4d(s + 4 * k) - m < zero - 700.0);
    if (bad[0] | bad[1] | bad[2] | bad[3]) return 0;
    for (c = 0; c < 4; c++) pc[c] = s[4 * cls[c] + c];
    for (k = 0; k < K; k++) {
        e = fgd_exp4d_nonpositive(fgd_ld4d(s + 4 * k) - m);
        fgd_st4d(s + 4 * k, e);
        sum = sum + e;
    }
    bits = (fgd_v4i)sum;                          /* sum in [1, K]: positive, normal */
    f = (fgd_v4d)((bits & 0x000fffffffffffffLL) | 0x3ff0000000000000LL);
    kk = __builtin_convertvector((bits >> 52) - 1023, fgd_v4d);
    u = (f - one) / (f + one);
    w = u * u;
    ser = one * fgd_atanh_coef[0];
    for (c = 1; c < 17; c++) ser = ser * w + fgd_atanh_coef[c];
    lg = kk * 0x1.62e42fefa3800p-1 + (kk * 0x1.ef35793c76730p-45 + (u + u) * ser);
    for (c = 0; c < 4; c++) loss[c] = (m[c] + lg[c]) - pc[c];
    for (k = 0; k < K; k++) fgd_st4d(s + 4 * k, fgd_ld4d(s + 4 * k) / sum);
    for (c = 0; c < 4; c++) s[4 * cls[c] + c] -= 1.0;
    return 1;
}

#else /* plain C for other compilers: same results up to rounding order */

static double fgd_dot_dd(const double *x, const double *w, ptrdiff_t n)
{ double s = 0; ptrdiff_t j; for (j = 0; j < n; j++) s += x[j] * w[j]; return s; }
#define fgd_dot_dd_stream fgd_dot_dd
static float fgd_dot_ff(const float *x, const float *w, ptrdiff_t n)
{ float s = 0; ptrdiff_t j; for (j = 0; j < n; j++) s += x[j] * w[j]; return s; }
static double fgd_dot_fd(const float *x, const double *w, ptrdiff_t n)
{ double s = 0; ptrdiff_t j; for (j = 0; j < n; j++) s += (double)x[j] * w[j]; return s; }
static void fgd_axpy_dd(double a, const double *x, double *y, ptrdiff_t n)
{ ptrdiff_t j; for (j = 0; j < n; j++) y[j] += a * x[j]; }
static void fgd_axpy_ff(float a, const float *x, float *y, ptrdiff_t n)
{ ptrdiff_t j; for (j = 0; j < n; j++) y[j] += a * x[j]; }
static void fgd_axpy_fd(double a, const float *x, double *y, ptrdiff_t n)
{ ptrdiff_t j; for (j = 0; j < n; j++) y[j] += a * (double)x[j]; }
static double fgd_axpy_dot_dd(double a, const double *xp, double *w, const double *x,
                              ptrdiff_t n)
{ fgd_axpy_dd(a, xp, w, n); return fgd_dot_dd(x, w, n); }
static float fgd_axpy_dot_ff(float a, const float *xp, float *w, const float *x, ptrdiff_t n)
{ fgd_axpy_ff(a, xp, w, n); return fgd_dot_ff(x, w, n); }
static double fgd_axpy_dot_fd(double a, const float *xp, double *w, const float *x,
                              ptrdiff_t n)
{ fgd_axpy_fd(a, xp, w, n); return fgd_dot_fd(x, w, n); }


static void fgd_axpy4_dd(const double *a, const double *x0, const double *x1, const double *x2,
                         const double *x3, double *y, ptrdiff_t n)
{ fgd_axpy_dd(a[0], x0, y, n); fgd_axpy_dd(a[1], x1, y, n);
  fgd_axpy_dd(a[2], x2, y, n); fgd_axpy_dd(a[3], x3, y, n); }
#define fgd_axpy4_dd_l1 fgd_axpy4_dd
static void fgd_axpy4_ff(const float *a, const float *x0, const float *x1, const float *x2,
                         const float *x3, float *y, ptrdiff_t n)
{ fgd_axpy_ff(a[0], x0, y, n); fgd_axpy_ff(a[1], x1, y, n);
  fgd_axpy_ff(a[2], x2, y, n); fgd_axpy_ff(a[3], x3, y, n); }
static void fgd_axpy4_fd(const double *a, const float *x0, const float *x1, const float *x2,
                         const float *x3, double *y, ptrdiff_t n)
{ fgd_axpy_fd(a[0], x0, y, n); fgd_axpy_fd(a[1], x1, y, n);
  fgd_axpy_fd(a[2], x2, y, n); fgd_axpy_fd(a[3], x3, y, n); }

#include <math.h>
/* logistic loss of four samples (|p| <= 700), as losses.pxd computes one */
static void fgd_logistic4(const double *p, const double *y, double *loss, double *dl)
{
    int q;
    for (q = 0; q < 4; q++) {
        double e = exp(-fabs(p[q]));
        double a = p[q] >= 0 ? (1.0 - y[q]) * p[q] : 0.0 - y[q] * p[q];
        loss[q] = a + log1p(e);
        dl[q] = (p[q] >= 0 ? 1.0 : e) / (1.0 + e) - y[q];
    }
}
static void fgd_dot4_dd(const double *x0, const double *x1, const double *x2,
                        const double *x3, const double *w, ptrdiff_t n, double *out)
{ out[0] = fgd_dot_dd(x0, w, n); out[1] = fgd_dot_dd(x1, w, n);
  out[2] = fgd_dot_dd(x2, w, n); out[3] = fgd_dot_dd(x3, w, n); }
static void fgd_dot4_fd(const float *x0, const float *x1, const float *x2,
                        const float *x3, const double *w, ptrdiff_t n, double *out)
{ out[0] = fgd_dot_fd(x0, w, n); out[1] = fgd_dot_fd(x1, w, n);
  out[2] = fgd_dot_fd(x2, w, n); out[3] = fgd_dot_fd(x3, w, n); }
static void fgd_dot4_ff(const float *x0, const float *x1, const float *x2,
                        const float *x3, const float *w, ptrdiff_t n, float *out)
{ out[0] = fgd_dot_ff(x0, w, n); out[1] = fgd_dot_ff(x1, w, n);
  out[2] = fgd_dot_ff(x2, w, n); out[3] = fgd_dot_ff(x3, w, n); }
static void fgd_logistic_rows(const double *p, const double *y, ptrdiff_t n, double *loss,
                              double *dl)
{ ptrdiff_t r; for (r = 0; r + 4 <= n; r += 4) fgd_logistic4(p + r, y + r, loss + r, dl + r); }
#define fgd_logistic_rows_x4 fgd_logistic_rows
/* the scalar path does it (see above) */
static int fgd_softmax4_dd(double *s, ptrdiff_t K, const ptrdiff_t *cls, double *loss)
{ (void)s; (void)K; (void)cls; (void)loss; return 0; }
#endif /* FGD_VEC */

/* (double X, float theta): x is rounded to float first, as the reference's
 * X[rows].astype(float32) does.  A rare combination; plain loops. */
FGD_NOREASSOC static float fgd_dot_df(const double *x, const float *w, ptrdiff_t n)
{
    FGD_NOREASSOC_BODY float s = 0; ptrdiff_t j; for (j = 0; j < n; j++) s += (float)x[j] * w[j]; return s; }
static void fgd_axpy_df(float a, const double *x, float *y, ptrdiff_t n)
{ ptrdiff_t j; for (j = 0; j < n; j++) y[j] += a * (float)x[j]; }
FGD_NOREASSOC static float fgd_axpy_dot_df(float a, const double *xp, float *w,
                                           const double *x, ptrdiff_t n)
{
    FGD_NOREASSOC_BODY float s = 0; ptrdiff_t j;
    for (j = 0; j < n; j++) { w[j] += a * (float)xp[j]; s += (float)x[j] * w[j]; }
    return s;
}

#endif /* FGD_SIMD_H */
