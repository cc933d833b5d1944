/* The physical limit of a sampler that sleeps between samples, for benches/sampler.rs.
 *
 * Per tick: one absolute-deadline clock_nanosleep, one pread of /proc/PID/status into a
 * 16 KiB buffer, one write of a CSV row. Nothing else: no parsing, no allocation.
 *
 * Usage: minimal_loop PID INTERVAL_NS SECONDS OUT.csv
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* Writes the decimal digits of v at p, returns the end. */
static char *put_u64(char *p, unsigned long long v) {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) *p++ = tmp[--n];
    return p;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s PID INTERVAL_NS SECONDS OUT.csv\n", argv[0]);
        return 2;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/%s/status", argv[1]);
    long long interval = atoll(argv[2]);
    long long ticks = atoll(argv[3]) * 1000000000LL / interval;
    int in = open(path, O_RDONLY | O_CLOEXEC);
    int out = open(argv[4], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (in < 0 || out < 0) {
        perror("open");
        return 2;
    }
    static const char header[] = "tick,status_bytes\n";
    if (write(out, header, sizeof header - 1) < 0) return 2;
    static char buf[16384];
    char row[64];
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (long long k = 0; k < ticks; k++) {
        next.tv_nsec += interval;
        while (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
        ssize_t n = pread(in, buf, sizeof buf, 0);
        if (n <= 0) return 1; /* the target is gone */
        char *p = put_u64(row, (unsigned long long)k);
        *p++ = ',';
        p = put_u64(p, (unsigned long long)n);
        *p++ = '\n';
        if (write(out, row, (size_t)(p - row)) < 0) return 1;
    }
    return 0;
}
