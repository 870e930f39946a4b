/*
 * launch - run a command and report its wall time, exit status and peak RSS.
 *
 * usage: launch RESULT_FILE COMMAND [ARGS...]
 *
 * Forks, execs COMMAND (with LD_PRELOAD set to $BENCH_PRELOAD in the child
 * only, when that is set and non-empty), waits with wait4 and writes
 *     wall_s=... cpu_s=... maxrss_kb=... status=... signal=...
 * to RESULT_FILE (cpu_s: user + system time of the child and its children).  The harness starts programs through this small launcher
 * instead of directly because Linux folds the RSS high-water mark of the
 * process image that calls exec into the child's ru_maxrss: started from the
 * Python harness every program would report at least the harness's RSS.
 * Exits with the child's exit status (128+signal when it was killed).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: launch RESULT_FILE COMMAND [ARGS...]\n");
        return 2;
    }
    const char *pre = getenv("BENCH_PRELOAD");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) {
        perror("launch: fork");
        return 2;
    }
    if (pid == 0) {
        unsetenv("BENCH_PRELOAD");
        if (pre && *pre)
            setenv("LD_PRELOAD", pre, 1);
        execvp(argv[2], argv + 2);
        fprintf(stderr, "launch: exec %s: %s\n", argv[2], strerror(errno));
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR) {
            perror("launch: wait4");
            return 2;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    FILE *f = fopen(argv[1], "w");
    if (!f) {
        perror("launch: result file");
        return 2;
    }
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
                 (double)ru.ru_stime.tv_usec * 1e-6;
    fprintf(f, "wall_s=%.6f cpu_s=%.6f maxrss_kb=%ld status=%d signal=%d core=%d\n", wall, cpu, ru.ru_maxrss,
            WIFEXITED(status) ? WEXITSTATUS(status) : -1, WIFSIGNALED(status) ? WTERMSIG(status) : 0,
            WIFSIGNALED(status) ? (WCOREDUMP(status) ? 1 : 0) : 0);
    fclose(f);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 2;
}
