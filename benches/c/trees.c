/* Trees of two-pointer nodes and the RSS sampler; see bench.h. */
#include "bench.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static Node *new_node(Node *left, Node *right) {
    Node *n = GC_MALLOC(sizeof(Node));
    if (n == NULL) {
        fputs("GC_MALLOC failed\n", stderr);
        abort();
    }
    n->left = left;
    n->right = right;
    return n;
}

Node *bottom_up(unsigned depth) {
    if (depth == 0)
        return new_node(NULL, NULL);
    Node *left = bottom_up(depth - 1);
    Node *right = bottom_up(depth - 1);
    return new_node(left, right);
}

/* GCBench's Populate: both children are stored into the existing parent
 * before either is populated. */
static void populate(Node *node, unsigned depth) {
    if (depth == 0)
        return;
    node->left = new_node(NULL, NULL);
    node->right = new_node(NULL, NULL);
    populate(node->left, depth - 1);
    populate(node->right, depth - 1);
}

Node *build(int top_down, unsigned depth) {
    if (!top_down)
        return bottom_up(depth);
    Node *root = new_node(NULL, NULL);
    populate(root, depth);
    return root;
}

uint64_t check(const Node *node) {
    if (node == NULL)
        return 0;
    return 1 + check(node->left) + check(node->right);
}

uint64_t tree_size(unsigned depth) { return (UINT64_C(1) << (depth + 1)) - 1; }

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int current_rss(uint64_t *bytes) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size, resident;
    if (f == NULL)
        return 0;
    int ok = fscanf(f, "%lu %lu", &size, &resident) == 2;
    fclose(f);
    if (ok)
        *bytes = (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
    return ok;
}

struct Sampler {
    pthread_t thread;
    atomic_int stop;
    unsigned interval_ms;
    RssSeries series;
    size_t cap;
};

static void *sampler_main(void *arg) {
    Sampler *s = arg;
    uint64_t start = now_ms();
    struct timespec interval = {s->interval_ms / 1000, (long)(s->interval_ms % 1000) * 1000000L};
    while (!atomic_load(&s->stop)) {
        uint64_t rss;
        if (current_rss(&rss)) {
            if (s->series.len == s->cap) {
                s->cap = s->cap ? 2 * s->cap : 256;
                s->series.samples = realloc(s->series.samples, s->cap * sizeof(RssSample));
                if (s->series.samples == NULL)
                    abort();
            }
            s->series.samples[s->series.len++] = (RssSample){now_ms() - start, rss};
        }
        /* The collector's stop-the-world signals interrupt the sleep;
         * finish it so the interval stays what was asked. */
        struct timespec left = interval;
        while (nanosleep(&left, &left) == -1 && errno == EINTR) {
        }
    }
    return NULL;
}

Sampler *sampler_start(unsigned interval_ms) {
    Sampler *s = calloc(1, sizeof(Sampler));
    if (s == NULL)
        abort();
    s->interval_ms = interval_ms;
    if (pthread_create(&s->thread, NULL, sampler_main, s) != 0)
        abort();
    return s;
}

RssSeries sampler_stop(Sampler *s) {
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
    RssSeries series = s->series;
    free(s);
    return series;
}
