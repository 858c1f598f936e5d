/*
 * spawn.c: runs a program and measures it from the outside, for the
 * benchmark: `spawn RESULT PROG ARGS...` forks, execs PROG with ARGS (its
 * stdout and stderr are this program's), waits, and writes one line to
 * RESULT: `wall_ms W maxrss_kb R status S`, where W is the time from just
 * before fork to the child's exit (the whole run, start-up included), R
 * the child's peak resident set (wait4's ru_maxrss) and S its exit status
 * (128 + N for signal N). Exits with the child's status.
 *
 * A C program and not the Python driver, for two reasons: ru_maxrss of a
 * child counts the memory of the process it was forked from (Linux keeps
 * the old mm's high-water mark across exec), which for this program is
 * under 2 MB; and nothing but fork and exec sits inside the timing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* wait4 is not POSIX; declared here so -std=c11 with _POSIX_C_SOURCE builds. */
pid_t wait4(pid_t pid, int *status, int options, struct rusage *usage);

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: spawn RESULT PROG [ARGS...]\n");
        return 2;
    }
    FILE *out = fopen(argv[1], "w");
    if (!out) {
        fprintf(stderr, "spawn: %s: %s\n", argv[1], strerror(errno));
        return 2;
    }
    fflush(NULL);
    double t0 = now_ms();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "spawn: fork: %s\n", strerror(errno));
        return 2;
    }
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        fprintf(stderr, "spawn: cannot run %s: %s\n", argv[2], strerror(errno));
        _exit(127);
    }
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0)
        if (errno != EINTR) {
            fprintf(stderr, "spawn: wait4: %s\n", strerror(errno));
            return 2;
        }
    double wall = now_ms() - t0;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    fprintf(out, "wall_ms %.3f maxrss_kb %ld status %d\n", wall, ru.ru_maxrss, code);
    if (fclose(out) != 0) {
        fprintf(stderr, "spawn: %s: %s\n", argv[1], strerror(errno));
        return 2;
    }
    return code;
}
