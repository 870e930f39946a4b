/*
 * alloy - the launcher: `alloy run [--stats] [--] CMD ARGS...` runs CMD with
 * liballoy.so preloaded and exits with CMD's status (128+N when CMD dies of
 * signal N).  With --stats the library prints a short summary when CMD
 * exits; only CMD itself prints it, not the processes CMD starts.
 *
 * The library is looked for in $ALLOY_LIB, then beside this executable
 * (build tree), then in ../lib (installed tree).
 */
#include <errno.h>
#include <limits.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void usage(FILE *to) {
  fprintf(to,
          "usage: alloy run [--stats] [--] CMD [ARGS...]\n"
          "       alloy --version\n"
          "Runs CMD with the alloy allocator preloaded (LD_PRELOAD).\n"
          "  --stats   print alloy's summary (peak and current bytes in use, bytes\n"
          "            mapped from the OS, number of allocations) when CMD exits\n"
          "Environment: ALLOY_LIB overrides the library's path; ALLOY_CONF passes\n"
          "options to the library (key:value,...).\n");
}

static int file_exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Absolute path of liballoy.so into out, or 0 when not found. */
static int find_library(char *out, size_t cap) {
  const char *env = getenv("ALLOY_LIB");
  if (env && *env) {
    if (!realpath(env, out)) return 0;
    return 1;
  }
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return 0;
  exe[n] = 0;
  const char *dir = dirname(exe);
  const char *candidates[] = {"%s/liballoy.so", "%s/../lib/liballoy.so"};
  for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, candidates[i], dir);
    if (file_exists(path) && realpath(path, out)) return 1;
  }
  (void)cap;
  return 0;
}

/* Prepends value to the ':'-separated list in environment variable name. */
static int env_prepend(const char *name, const char *value, char sep) {
  const char *old = getenv(name);
  if (!old || !*old) return setenv(name, value, 1);
  size_t n = strlen(value) + strlen(old) + 2;
  char *buf = malloc(n);
  if (!buf) return -1;
  snprintf(buf, n, "%s%c%s", value, sep, old);
  int r = setenv(name, buf, 1);
  free(buf);
  return r;
}

static int run(int argc, char **argv) {
  int stats = 0, i = 0;
  for (; i < argc; i++) {
    if (strcmp(argv[i], "--stats") == 0) stats = 1;
    else if (strcmp(argv[i], "--") == 0) { i++; break; }
    else if (argv[i][0] == '-') { fprintf(stderr, "alloy: unknown option %s\n", argv[i]); usage(stderr); return 2; }
    else break;
  }
  if (i >= argc) {
    usage(stderr);
    return 2;
  }
  char lib[PATH_MAX];
  if (!find_library(lib, sizeof lib)) {
    fprintf(stderr, "alloy: cannot find liballoy.so (set ALLOY_LIB)\n");
    return 127;
  }
  if (env_prepend("LD_PRELOAD", lib, ':') != 0) {
    perror("alloy: setenv");
    return 127;
  }
  pid_t pid = fork();
  if (pid < 0) {
    perror("alloy: fork");
    return 127;
  }
  if (pid == 0) {
    if (stats) {
      char conf[64];
      snprintf(conf, sizeof conf, "stats_summary:true,stats_summary_pid:%d", (int)getpid());
      /* Appended so the launcher's request wins over an earlier setting. */
      const char *old = getenv("ALLOY_CONF");
      if (old && *old) {
        size_t n = strlen(old) + strlen(conf) + 2;
        char *buf = malloc(n);
        if (!buf) _exit(127);
        snprintf(buf, n, "%s,%s", old, conf);
        setenv("ALLOY_CONF", buf, 1);
      } else {
        setenv("ALLOY_CONF", conf, 1);
      }
    }
    execvp(argv[i], argv + i);
    fprintf(stderr, "alloy: cannot run %s: %s\n", argv[i], strerror(errno));
    _exit(errno == ENOENT ? 127 : 126);
  }
  /* The child owns the terminal's signals; the launcher only waits. */
  signal(SIGINT, SIG_IGN);
  signal(SIGQUIT, SIG_IGN);
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) {
      perror("alloy: waitpid");
      return 127;
    }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 127;
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "run") == 0) return run(argc - 2, argv + 2);
  if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
    printf("alloy 0.1.0\n");
    return 0;
  }
  usage(argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) ? stdout : stderr);
  return argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) ? 0 : 2;
}
