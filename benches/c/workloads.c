/* The five workloads; each mirrors benches/src/workloads/<name>.rs. */
#include "bench.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static unsigned clamp_depth(uint64_t size, unsigned lo, unsigned hi) {
    if (size < lo)
        return lo;
    if (size > hi)
        return hi;
    return (unsigned)size;
}

static void *checked(void *p) {
    if (p == NULL) {
        fputs("GC_MALLOC failed\n", stderr);
        abort();
    }
    return p;
}

uint64_t binary_trees(uint64_t size) {
    enum { MIN_DEPTH = 4 };
    unsigned max_depth = clamp_depth(size, MIN_DEPTH + 2, 40);
    uint64_t checksum = check(bottom_up(max_depth + 1));
    Node *long_lived = bottom_up(max_depth);
    for (unsigned depth = MIN_DEPTH; depth <= max_depth; depth += 2) {
        uint64_t iterations = UINT64_C(1) << (max_depth - depth + MIN_DEPTH);
        for (uint64_t i = 0; i < iterations; i++)
            checksum += check(bottom_up(depth));
    }
    return checksum + check(long_lived);
}

uint64_t gcbench(uint64_t size) {
    enum { MIN_DEPTH = 4, ARRAY_LEN = 500000, PROBE = 1000 };
    unsigned max_depth = clamp_depth(size, MIN_DEPTH, 30);
    unsigned stretch = max_depth + 2;
    uint64_t checksum = check(bottom_up(stretch));
    Node *long_lived = build(1, max_depth);
    double *array = checked(GC_MALLOC_ATOMIC(ARRAY_LEN * sizeof(double)));
    for (int i = 0; i < ARRAY_LEN; i++)
        array[i] = i < ARRAY_LEN / 2 ? 1.0 / i : 0.0;
    for (unsigned depth = MIN_DEPTH; depth <= max_depth; depth += 2) {
        uint64_t iters = 2 * tree_size(stretch) / tree_size(depth);
        for (int top_down = 1; top_down >= 0; top_down--)
            for (uint64_t i = 0; i < iters; i++)
                checksum += check(build(top_down, depth));
    }
    checksum += check(long_lived);
    if (array[PROBE] == 1.0 / PROBE)
        checksum++;
    return checksum;
}

uint64_t churn(uint64_t size) {
    enum { WINDOW = 100000 };
    uint64_t **ring = checked(GC_MALLOC(WINDOW * sizeof(uint64_t *)));
    uint64_t checksum = 0;
    size_t slot = 0;
    for (uint64_t i = 0; i < size; i++) {
        uint64_t *old = ring[slot];
        if (old != NULL)
            checksum += old[0] + old[1] + old[2] + old[3];
        uint64_t *r = checked(GC_MALLOC_ATOMIC(4 * sizeof(uint64_t)));
        r[0] = i;
        r[1] = i * 3;
        r[2] = i * 5;
        r[3] = i * 7;
        ring[slot] = r;
        if (++slot == WINDOW)
            slot = 0;
    }
    return checksum;
}

enum { THREADS = 2, RING = 4096, THREAD_DEPTH = 6 };

typedef struct {
    Node **part; /* this thread's RING slots of the shared ring */
    uint64_t iterations;
    uint64_t sum;
} Mutator;

static void *mutator(void *arg) {
    Mutator *m = arg;
    uint64_t sum = 0;
    size_t slot = 0;
    for (uint64_t i = 0; i < m->iterations; i++) {
        m->part[slot] = bottom_up(THREAD_DEPTH);
        sum += check(m->part[slot]);
        if (++slot == RING)
            slot = 0;
    }
    for (size_t s = 0; s < RING; s++)
        sum += check(m->part[s]);
    m->sum = sum;
    return NULL;
}

uint64_t threads(uint64_t size) {
    Node **ring = checked(GC_MALLOC(THREADS * RING * sizeof(Node *)));
    pthread_t ids[THREADS];
    Mutator mutators[THREADS];
    for (int t = 0; t < THREADS; t++) {
        mutators[t] = (Mutator){ring + t * RING, size, 0};
        if (pthread_create(&ids[t], NULL, mutator, &mutators[t]) != 0)
            abort();
    }
    uint64_t checksum = 0;
    for (int t = 0; t < THREADS; t++) {
        pthread_join(ids[t], NULL);
        checksum += mutators[t].sum;
    }
    return checksum;
}

uint64_t grow_shrink(uint64_t size, RssSeries *rss) {
    enum { CHUNK_DEPTH = 14, GARBAGE_PER_STEP = 4, IDLE_TICKS = 20, IDLE_DEPTH = 10, TICK_MS = 100 };
    Sampler *sampler = sampler_start(TICK_MS);
    Node **chunks = checked(GC_MALLOC(size * sizeof(Node *)));
    uint64_t checksum = 0;
    for (int phase = 0; phase < 2; phase++) {
        for (uint64_t i = 0; i < size; i++) {
            if (phase == 0) {
                chunks[i] = bottom_up(CHUNK_DEPTH);
                checksum += check(chunks[i]);
            } else {
                chunks[i] = NULL;
            }
            for (int g = 0; g < GARBAGE_PER_STEP; g++)
                checksum += check(bottom_up(CHUNK_DEPTH));
        }
    }
    for (int i = 0; i < IDLE_TICKS; i++) {
        struct timespec tick = {0, TICK_MS * 1000000L};
        while (nanosleep(&tick, &tick) == -1 && errno == EINTR) {
        }
        checksum += check(bottom_up(IDLE_DEPTH));
    }
    *rss = sampler_stop(sampler);
    return checksum;
}
