/* fgd_team.h: the barrier of an epoch's OpenMP team (Cython backend).
 *
 * Shared by the MLP epoch (a team per epoch, blocks of units between barriers) and
 * the linear epoch (two halves of each mini-batch, one barrier per batch).  Each
 * module that includes it has its own fgd_contended_wait (a static). */
#ifndef FGD_TEAM_H
#define FGD_TEAM_H

/* The barrier of an epoch's team: each thread counts the barriers it has reached in
   a cache line of its own, and a thread passes barrier e once every other thread's
   count is at least e: plain stores and loads, no read-modify-write, so one barrier
   costs about one cache-line transfer each way (measured here: 0.09 us for two
   threads, against 0.6-0.85 us for a central counter with a sense flag, whose locked
   add and shared line bounced between the cores).  Waiting spins (with pause) a
   while, then yields the CPU.  Each thread times its waits within the batch; one
   that spent more than fgd_contended_wait seconds, and more than half of the batch
   so far, waiting for the others marks the team "contended" (another process has a
   CPU: a descheduled partner stalls every barrier), and the epoch then finishes on
   thread 0 alone (same bits, see _team_epoch and _pair_epoch). */
#include <omp.h>
#define FGD_TEAM_MAX 64   /* threads in a team at most (callers cap their teams) */
static double fgd_contended_wait = 2e-4;  /* < 0: always contended (tests) */
#if defined(__GNUC__) || defined(__clang__)
#define FGD_LINE_ALIGNED __attribute__((aligned(64)))
#else
#define FGD_LINE_ALIGNED
#endif
typedef struct { long long v; char pad[64 - sizeof(long long)]; } FGD_LINE_ALIGNED fgd_team_flag;
typedef struct {
    fgd_team_flag arrived[FGD_TEAM_MAX];  /* barriers reached, per thread */
    int n;                                /* threads still in the team */
    int contended;
} FGD_LINE_ALIGNED fgd_team_barrier;
typedef struct { long long epoch; int tid; double t0; double waited; } fgd_thread_state;
static void fgd_barrier_init(fgd_team_barrier *b, int n) {
    int i;
    for (i = 0; i < FGD_TEAM_MAX; i++) b->arrived[i].v = 0;
    b->n = n < FGD_TEAM_MAX ? n : FGD_TEAM_MAX; b->contended = 0;
}
static void fgd_thread_init(fgd_thread_state *t) {
    t->epoch = 0; t->tid = omp_get_thread_num(); t->t0 = 0.0; t->waited = 0.0;
}
static void fgd_batch_start(fgd_team_barrier *b, fgd_thread_state *t) {
    if (b->n > 1) { t->t0 = omp_get_wtime(); t->waited = 0.0; }
}
#if defined(__GNUC__) || defined(__clang__)
#include <sched.h>
static int fgd_all_arrived(fgd_team_barrier *b, int n, int tid, long long e) {
    int j;
    for (j = 0; j < n; j++)
        if (j != tid && __atomic_load_n(&b->arrived[j].v, __ATOMIC_ACQUIRE) < e) return 0;
    return 1;
}
static void fgd_barrier_wait(fgd_team_barrier *b, fgd_thread_state *t) {
    long long e = ++t->epoch;
    int n = b->n;
    unsigned spins = 0;
    double w0, now;
    if (n <= 1) return;
    __atomic_store_n(&b->arrived[t->tid].v, e, __ATOMIC_RELEASE);
    if (fgd_all_arrived(b, n, t->tid, e)) return;
    w0 = omp_get_wtime();
    while (!fgd_all_arrived(b, n, t->tid, e)) {
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
