/*
 * The Boehm (BDW) side of the spangc comparison harness (benches/ in the
 * spangc repository): the workloads of benches/src/workloads/ in C,
 * allocating with GC_MALLOC (GC_MALLOC_ATOMIC for pointer-free objects) and
 * never freeing, as a Boehm program does. Same trees, constants and
 * checksum arithmetic (uint64_t, wrapping) as the Rust and Go versions.
 *
 * GC_THREADS is defined before <gc.h> so that pthread_create is the
 * collector's wrapper and the mutator threads are registered.
 */
#ifndef SPANGC_BENCH_H
#define SPANGC_BENCH_H

#define GC_THREADS
#include <gc.h>

#include <stddef.h>
#include <stdint.h>

typedef struct Node {
    struct Node *left;
    struct Node *right;
} Node;

/* trees.c */
Node *bottom_up(unsigned depth);
Node *build(int top_down, unsigned depth);
uint64_t check(const Node *node);
uint64_t tree_size(unsigned depth);

typedef struct {
    uint64_t t_ms;
    uint64_t rss_bytes;
} RssSample;

typedef struct {
    RssSample *samples; /* malloc'd: never holds a GC pointer */
    size_t len;
} RssSeries;

typedef struct Sampler Sampler;
Sampler *sampler_start(unsigned interval_ms);
RssSeries sampler_stop(Sampler *sampler);

/* workloads.c */
uint64_t binary_trees(uint64_t size);
uint64_t gcbench(uint64_t size);
uint64_t churn(uint64_t size);
uint64_t threads(uint64_t size);
uint64_t grow_shrink(uint64_t size, RssSeries *rss);

#endif
