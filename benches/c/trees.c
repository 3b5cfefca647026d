/* Trees of two-pointer nodes and the RSS sampler; see bench.h. */
#include "bench.h"

#include <errno.h>
#include <pthread.h>
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
    pthread_mutex_t lock; /* guards stop */
    pthread_cond_t wake;  /* signalled when stop is set */
    int stop;
    unsigned interval_ms;
    uint64_t start_ms;
    RssSeries series; /* written by the sampler thread, then by sampler_stop after the join */
    size_t cap;
};

static void take_sample(Sampler *s) {
    uint64_t rss;
    if (!current_rss(&rss))
        return;
    if (s->series.len == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->series.samples = realloc(s->series.samples, s->cap * sizeof(RssSample));
        if (s->series.samples == NULL)
            abort();
    }
    s->series.samples[s->series.len++] = (RssSample){now_ms() - s->start_ms, rss};
}

/* Waits one interval on a monotonic clock, or until stopped (a condition
 * variable rather than a sleep: stopping must not wait out the interval,
 * and the collector's signals must not shorten it). */
static void *sampler_main(void *arg) {
    Sampler *s = arg;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    pthread_mutex_lock(&s->lock);
    for (;;) {
        next.tv_nsec += (long)s->interval_ms * 1000000L;
        next.tv_sec += next.tv_nsec / 1000000000L;
        next.tv_nsec %= 1000000000L;
        while (!s->stop && pthread_cond_timedwait(&s->wake, &s->lock, &next) != ETIMEDOUT) {
        }
        if (s->stop)
            break;
        take_sample(s);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* Samples now, then every interval_ms until sampler_stop, which samples
 * once more: even a run shorter than one interval has its start and end
 * (as benches/src/rss.rs). */
Sampler *sampler_start(unsigned interval_ms) {
    Sampler *s = calloc(1, sizeof(Sampler));
    pthread_condattr_t attr;
    if (s == NULL || pthread_condattr_init(&attr) != 0 ||
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&s->wake, &attr) != 0 || pthread_mutex_init(&s->lock, NULL) != 0)
        abort();
    pthread_condattr_destroy(&attr);
    s->interval_ms = interval_ms;
    s->start_ms = now_ms();
    take_sample(s);
    if (pthread_create(&s->thread, NULL, sampler_main, s) != 0)
        abort();
    return s;
}

RssSeries sampler_stop(Sampler *s) {
    pthread_mutex_lock(&s->lock);
    s->stop = 1;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    take_sample(s);
    RssSeries series = s->series;
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
    free(s);
    return series;
}
