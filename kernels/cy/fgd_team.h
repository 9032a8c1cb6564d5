/* fgd_team.h: the barrier of an epoch's OpenMP team (Cython backend).
 *
 * Shared by the MLP epoch (a team per epoch, blocks of units between barriers) and
 * the linear epoch (two halves of each mini-batch, one barrier per batch).  Each
 * module that includes it has its own fgd_contended_wait (a static). */
#ifndef FGD_TEAM_H
#define FGD_TEAM_H

/* A sense-reversing barrier for the epoch's OpenMP team: spin (with pause) a
   while, then yield the CPU.  Each thread times its waits within the batch; one
   that spent more than fgd_contended_wait seconds, and more than half of the
   batch so far, waiting for the others marks the team "contended" (another
   process has a CPU: a descheduled partner stalls every barrier), and the epoch
   then finishes on thread 0 alone (same bits, see _team_epoch). */
#include <omp.h>
static double fgd_contended_wait = 2e-4;  /* < 0: always contended (tests) */
typedef struct { int count; int sense; int n; int contended; } fgd_team_barrier;
typedef struct { int sense; double t0; double waited; } fgd_thread_state;
static void fgd_barrier_init(fgd_team_barrier *b, int n) {
    b->count = 0; b->sense = 0; b->n = n; b->contended = 0;
}
static void fgd_thread_init(fgd_thread_state *t) {
    t->sense = 0; t->t0 = 0.0; t->waited = 0.0;
}
static void fgd_batch_start(fgd_team_barrier *b, fgd_thread_state *t) {
    if (b->n > 1) { t->t0 = omp_get_wtime(); t->waited = 0.0; }
}
#if defined(__GNUC__) || defined(__clang__)
#include <sched.h>
static void fgd_barrier_wait(fgd_team_barrier *b, fgd_thread_state *t) {
    int s = 1 - t->sense;
    unsigned spins = 0;
    double w0, now;
    t->sense = s;
    if (b->n <= 1) return;
    if (__atomic_add_fetch(&b->count, 1, __ATOMIC_ACQ_REL) == b->n) {
        __atomic_store_n(&b->count, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&b->sense, s, __ATOMIC_RELEASE);
        return;
    }
    w0 = omp_get_wtime();
    while (__atomic_load_n(&b->sense, __ATOMIC_ACQUIRE) != s) {
        if (++spins < 4096) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        } else {
            sched_yield();
        }
    }
    now = omp_get_wtime();
    t->waited += now - w0;
    if (fgd_contended_wait < 0
            || (t->waited > fgd_contended_wait && t->waited > 0.5 * (now - t->t0)))
        __atomic_store_n(&b->contended, 1, __ATOMIC_RELAXED);
}
static int fgd_contended(fgd_team_barrier *b) {
    return __atomic_load_n(&b->contended, __ATOMIC_RELAXED);
}
#else  /* other compilers: OpenMP's own barrier (an orphaned directive) */
static void fgd_barrier_wait(fgd_team_barrier *b, fgd_thread_state *t) {
    (void)t;
    if (b->n > 1) {
        __pragma(omp barrier)
    }
}
static int fgd_contended(fgd_team_barrier *b) { (void)b; return 0; }
#endif
/* thread 0, once every other thread has left the team */
static void fgd_barrier_solo(fgd_team_barrier *b) { b->n = 1; }
static void fgd_omp_barrier(void) {
#if defined(_MSC_VER)
    __pragma(omp barrier)
#else
    _Pragma("omp barrier")
#endif
}

#endif /* FGD_TEAM_H */
