/* fgd_reader.h: a second thread (or, where the cores are there, more: reader r of R
 * takes the positions r mod R) that reads an epoch's rows ahead of the thread that
 * trains on them (Cython backend).
 *
 * Why: a shuffled epoch of small batches reads one random row of X after another
 * on one serial chain (margin, loss, update).  Each row misses the caches and the
 * TLB, and one core keeps only so many misses in flight, so the trainer's own
 * software prefetches leave it at about the random-read floor plus its compute
 * (W1 b = 1: 10.5-10.8 ms against 5.2-5.5 ms with the rows in storage order).  A
 * reader on the other core that touches the rows a few dozen positions ahead (one
 * load per cache line, nothing written) takes the misses and page walks off the
 * trainer's core: 7.2-7.5 ms (docs/cython.md; the gain depends on the host's
 * placement of the two vCPUs, and some periods showed none).  A gatherer
 * that *copied* the rows to a buffer measured no gain: the trainer's reads of lines
 * the other core had just written cost as much as the misses they replaced.
 *
 * The reader never changes anything the trainer reads or writes, and the trainer
 * never waits for it, so results are the same bits with or without it and on any
 * schedule.  With another process on a core there are three threads for two
 * cores, and a reader only takes time from the trainer (measured on W1 b = 1 with
 * a busy process on the other core: the median epoch doubled): the reader checks
 * the clock every 32 steps and leaves for the rest of the epoch when the trainer's
 * position or its own steps show a pause of FGD_READER_GAP seconds (one of the two
 * was descheduled), so the epoch's end does not wait for a descheduled reader
 * either.  With the busy process the median epoch is then 18 % slower than without
 * a reader; a gap of 0.5 ms made that 5 %, but was also set off by the driver's
 * background shuffle (1.2 ms on W1) and cost the reader's gain in many epochs.
 *
 * Protocol: the trainer tells its position in the order at every batch start
 * (fgd_reader_at), which publishes it when it is at least FGD_READER_PUBLISH rows
 * past the last one published (each store moves the line to the trainer's core and
 * back), and sets `done` when it leaves the epoch; the reader keeps the rows from position + FGD_READER_LEAD up to position +
 * FGD_READER_WINDOW touched (the window bounds how far ahead it runs, so the rows
 * are still in cache when the trainer gets there: 96 rows of 800 bytes are 77 KB). */
#ifndef FGD_READER_H
#define FGD_READER_H

#include <stddef.h>
#include <stdint.h>
#include <omp.h>
#include "fgd_simd.h"   /* fgd_prefetch_row */

#define FGD_READER_PUBLISH 16
#define FGD_READER_LEAD 16
#define FGD_READER_WINDOW 112
#define FGD_READER_GAP 2e-3
#define FGD_READER_PREFETCH 16

#if defined(__GNUC__) || defined(__clang__)
#define FGD_READER_LINE __attribute__((aligned(64)))
#define FGD_RD_LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define FGD_RD_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#else
#define FGD_READER_LINE
#define FGD_RD_LOAD(p) (*(volatile const long long *)(p))
#define FGD_RD_STORE(p, v) (*(volatile long long *)(p) = (v))
#endif

#if defined(__x86_64__) || defined(__i386__)
#define FGD_RD_PAUSE() __builtin_ia32_pause()
#else
#define FGD_RD_PAUSE() ((void)0)
#endif

/* the trainer's published position, its done flag, and the trainer's own record of
   what it last published, each on a cache line of its own */
typedef struct {
    FGD_READER_LINE long long pos;
    FGD_READER_LINE long long done;
    FGD_READER_LINE long long published;
    char pad[64 - sizeof(long long)];
} fgd_reader;

static void fgd_reader_init(fgd_reader *r)
{
    r->pos = 0; r->done = 0; r->published = -FGD_READER_PUBLISH;
}

/* trainer: at position k of the order (a batch start) */
static inline void fgd_reader_at(fgd_reader *r, ptrdiff_t k)
{
    if (k - r->published >= FGD_READER_PUBLISH) {
        FGD_RD_STORE(&r->pos, (long long)k);
        r->published = k;
    }
}

static inline void fgd_reader_done(fgd_reader *r) { FGD_RD_STORE(&r->done, 1LL); }

/* reader `part` of `parts`: loads the rows order[k] of X, k = part (mod parts), (row_bytes
 * each, rows `stride` bytes apart), and their entries of y and sw (item bytes each; sw may
 * be NULL), ahead of the trainer until it is done or the order is exhausted.  Several
 * readers, where the machine has the cores, each keep their own misses in flight: one
 * core's reads are what limits a shuffled epoch on two (docs/w1-b32.md). */
static void fgd_read_ahead(fgd_reader *r, const char *X, size_t stride, size_t row_bytes,
                           const char *y, const char *sw, size_t item,
                           const int64_t *order, ptrdiff_t m, int part, int parts)
{
    long long pos, last_pos = -1;
    ptrdiff_t k = part, ahead = (ptrdiff_t)FGD_READER_PREFETCH * parts;
    size_t off, i;
    unsigned steps = 0;
    double t_seen = omp_get_wtime(), now;
    while (!FGD_RD_LOAD(&r->done)) {
        pos = FGD_RD_LOAD(&r->pos);
        if ((++steps & 31) == 0) {
            /* contention: leave when the trainer, or this thread, has not run for
               FGD_READER_GAP seconds (see above) */
            now = omp_get_wtime();
            if (now - t_seen > FGD_READER_GAP) return;
            if (pos != last_pos) {
                last_pos = pos;
                t_seen = now;
            }
        }
        if (k < pos + FGD_READER_LEAD)  /* the first of this reader's positions from there */
            k = pos + FGD_READER_LEAD + ((part - (pos + FGD_READER_LEAD)) % parts + parts) % parts;
        if (k >= m) break;
        if (k >= pos + FGD_READER_WINDOW) {
            FGD_RD_PAUSE();
            continue;
        }
        /* the row FGD_READER_PREFETCH of this reader's rows further on is requested
           now, so that this thread's own loads find more misses in flight (into L2:
           prefetcht1) */
        if (k + ahead < m)
            fgd_prefetch_row(X + (size_t)order[k + ahead] * stride, row_bytes);
        i = (size_t)order[k];
        {
            /* volatile: loads whose values are unused are otherwise dead code */
            const volatile char *row = X + i * stride;
            for (off = 0; off < row_bytes; off += 64) (void)row[off];
            (void)row[row_bytes - 1];
            (void)((const volatile char *)y)[i * item];
            if (sw != NULL) (void)((const volatile char *)sw)[i * item];
        }
        k += parts;
    }
}

#endif /* FGD_READER_H */
