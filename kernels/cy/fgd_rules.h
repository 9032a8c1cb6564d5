/* fgd_rules.h: the per-parameter arithmetic of Adam, Adagrad and RMSprop (Cython
 * backend, updates.pyx), for float64 (suffix _d) and float32 (_f) parameters.
 *
 * Why C: each of these rules costs a square root and one or two divisions a
 * parameter, and a baseline x86-64 build runs those two float64 lanes wide (SSE2).
 * Here the loops are compiled twice (FGD_CLONES, fgd_simd.h: x86-64-v3 and the
 * baseline; the loader picks one per process from the CPU), which Cython cannot
 * ask of a cdef function.  Measured on the project's AMD EPYC guest, one call
 * over 101 float64 parameters: Adam 208 -> 118 ns, Adagrad 222 -> 132.
 *
 * Both clones give the same bits: the loops are compiled without reassociation and
 * without contraction into FMA (FGD_EXACT), so each parameter's arithmetic is the
 * formula's own sequence of correctly rounded +, *, / and sqrt, whatever the
 * vector width -- the order of PyTorch's and the reference's formulas.
 *
 * The caller forms the step's gradient g (loss, penalty, coupled weight decay) and
 * the per-step scalars; no flag is tested inside a loop but as a select, so GCC
 * vectorises every one of them. */
#ifndef FGD_RULES_H
#define FGD_RULES_H

#include <math.h>
#include <stddef.h>
#include "fgd_simd.h"   /* FGD_CLONES */

#if defined(__GNUC__) && !defined(__clang__)
#define FGD_EXACT __attribute__((optimize("no-associative-math", "fp-contract=off")))
#define FGD_EXACT_BODY
#elif defined(__clang__)
#define FGD_EXACT
#define FGD_EXACT_BODY _Pragma("clang fp reassociate(off) contract(off)")
#else
#define FGD_EXACT
#define FGD_EXACT_BODY
#endif

#define FGD_RULE FGD_CLONES FGD_EXACT static

#define FGD_T double
#define FGD_SQRT sqrt
#define FGD_NAME(f) f##_d
#include "fgd_rules_t.h"
#undef FGD_T
#undef FGD_SQRT
#undef FGD_NAME

#define FGD_T float
#define FGD_SQRT sqrtf
#define FGD_NAME(f) f##_f
#include "fgd_rules_t.h"
#undef FGD_T
#undef FGD_SQRT
#undef FGD_NAME

#endif /* FGD_RULES_H */
