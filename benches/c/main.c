/*
 * spangc-bench-boehm: runs one workload of the spangc comparison harness on
 * the Boehm-Demers-Weiser collector. Usage: spangc-bench-boehm <workload> <size>
 *
 * Output follows benches/src/report.rs:
 *   rss t_ms=<ms> rss_bytes=<bytes>      (grow-shrink only)
 *   result checksum=<n> gc_count=<n> max_pause_ns=<n>
 * gc_count is GC_get_gc_no(); max_pause_ns is the longest stop-the-world
 * interval (GC_EVENT_PRE_STOP_WORLD to GC_EVENT_POST_START_WORLD) seen by a
 * collection-event callback.
 */
#include "bench.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Written only by the collection-event callback, which runs with the GC
 * lock held, and read after the workload's threads have been joined. */
static uint64_t stop_started_ns;
static uint64_t max_pause_ns;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void GC_CALLBACK on_collection_event(GC_EventType event) {
    if (event == GC_EVENT_PRE_STOP_WORLD) {
        stop_started_ns = now_ns();
    } else if (event == GC_EVENT_POST_START_WORLD) {
        uint64_t pause = now_ns() - stop_started_ns;
        if (pause > max_pause_ns)
            max_pause_ns = pause;
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fputs("usage: spangc-bench-boehm <workload> <size>\n", stderr);
        return 2;
    }
    char *end;
    uint64_t size = strtoull(argv[2], &end, 10);
    if (*argv[2] == '\0' || *end != '\0') {
        fprintf(stderr, "size %s is not a number\n", argv[2]);
        return 2;
    }
    GC_INIT();
    GC_set_on_collection_event(on_collection_event);

    const char *w = argv[1];
    RssSeries rss = {NULL, 0};
    uint64_t checksum;
    if (strcmp(w, "binary-trees") == 0)
        checksum = binary_trees(size);
    else if (strcmp(w, "gcbench") == 0)
        checksum = gcbench(size);
    else if (strcmp(w, "churn") == 0)
        checksum = churn(size);
    else if (strcmp(w, "threads") == 0)
        checksum = threads(size);
    else if (strcmp(w, "grow-shrink") == 0)
        checksum = grow_shrink(size, &rss);
    else {
        fprintf(stderr, "unknown workload %s\n", w);
        return 2;
    }

    for (size_t i = 0; i < rss.len; i++)
        printf("rss t_ms=%" PRIu64 " rss_bytes=%" PRIu64 "\n", rss.samples[i].t_ms,
               rss.samples[i].rss_bytes);
    free(rss.samples);
    printf("result checksum=%" PRIu64 " gc_count=%lu max_pause_ns=%" PRIu64 "\n", checksum,
           (unsigned long)GC_get_gc_no(), max_pause_ns);
    return 0;
}
