/*
 * alloy - the launcher: `alloy run [--stats] [--prof] [--leaks] [-o
 * KEY:VALUE]... [--] CMD ARGS...` runs CMD with liballoy.so preloaded and
 * exits with CMD's status (128+N when CMD dies of signal N).  With --stats
 * the library prints a short summary when CMD exits; only CMD itself prints
 * it, not the processes CMD starts.  -o adds an option to ALLOY_CONF (later
 * ones win).  --prof and --leaks run CMD under the heap profiler
 * (run_prof.c); `alloy flame` and `alloy leaks` read a heap profile
 * (flame.c, leaks.c).  `alloy help [COMMAND]`, `alloy --help`,
 * `alloy --version`; man/alloy.1.
 *
 * The library is looked for in $ALLOY_LIB, then beside this executable
 * (build tree), then in ALLOY_LIBDIR (set by `make install`), then in
 * ../lib (an installed tree moved elsewhere).
 */
#include "prof_tools.h"

#include <alloy.h>
#include <errno.h>
#include <stdbool.h>
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
          "usage: alloy run [--stats] [--prof] [--leaks] [--prefix P] [-o KEY:VALUE]...\n"
          "                 [--] CMD [ARGS...]\n"
          "       alloy flame PROFILE [-o OUT.svg]\n"
          "       alloy leaks PROFILE [-n N]\n"
          "       alloy help [COMMAND]\n"
          "       alloy --help | --version\n"
          "run: runs CMD with the alloy allocator preloaded (LD_PRELOAD).\n"
          "  --stats   print alloy's summary (peak and current bytes in use, bytes\n"
          "            mapped from the OS, number of allocations) when CMD exits\n"
          "  --prof    profile CMD's heap: its profile at exit is written to\n"
          "            P.<pid>.<seq>.f.heap (P: --prefix, default ./alloy), with a\n"
          "            flame graph beside it (.svg)\n"
          "  --leaks   as --prof, sampling 1 in 4 KiB, and print the call stacks that\n"
          "            still hold memory when CMD exits\n"
          "  -o KEY:VALUE  a configuration option, as in ALLOY_CONF; repeatable\n"
          "flame: writes a flame graph of the bytes in use by call stack (default\n"
          "       OUT: PROFILE.svg).\n"
          "leaks: prints the N (default 10) call stacks holding the most bytes.\n"
          "Environment: ALLOY_LIB overrides the library's path; ALLOY_CONF passes\n"
          "options to the library (key:value,...).  See alloy(1) and alloy(3).\n");
}
static void usage_run(FILE *to) {
  fprintf(to,
          "usage: alloy run [--stats] [--prof] [--leaks] [--prefix P] [-o KEY:VALUE]...\n"
          "                 [--] CMD [ARGS...]\n"
          "Runs CMD with the alloy allocator preloaded (LD_PRELOAD) and exits with\n"
          "its status (128+N when it dies of signal N).\n"
          "  --stats          print alloy's summary (peak and current bytes in use,\n"
          "                   bytes mapped from the OS, number of allocations) when\n"
          "                   CMD exits; only CMD prints it, not what it starts\n"
          "  --prof           profile CMD's heap: its profile at exit is written to\n"
          "                   P.<pid>.<seq>.f.heap (P: --prefix, default ./alloy),\n"
          "                   with a flame graph beside it (.svg)\n"
          "  --leaks          as --prof, sampling 1 in 4 KiB, and print the call\n"
          "                   stacks that still hold memory when CMD exits\n"
          "  -o KEY:VALUE     a configuration option, as in ALLOY_CONF (KEY:VALUE,...\n"
          "                   also accepted); repeatable, later ones win\n"
          "  -h, --help       this text\n"
          "Examples:\n"
          "  alloy run -- redis-server --port 7000\n"
          "  alloy run --stats -- python3 script.py\n"
          "  alloy run -o dirty_decay_ms:0 -o background_thread:true -- ./server\n"
          "  alloy run -o guard_sample:1048576 -- ./app     # sampled guard pages\n");
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
#ifdef ALLOY_LIBDIR
  const char *libdir = ALLOY_LIBDIR;
#else
  const char *libdir = NULL;
#endif
  char lib_in_libdir[PATH_MAX];
  snprintf(lib_in_libdir, sizeof lib_in_libdir, "%s/liballoy.so.%d", libdir ? libdir : ".", ALLOY_VERSION_MAJOR);
  char build_tree[PATH_MAX], moved_tree[PATH_MAX];
  snprintf(build_tree, sizeof build_tree, "%s/liballoy.so", dir);
  snprintf(moved_tree, sizeof moved_tree, "%s/../lib/liballoy.so.%d", dir, ALLOY_VERSION_MAJOR);
  const char *candidates[] = {build_tree, libdir ? lib_in_libdir : NULL, moved_tree};
  for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++)
    if (candidates[i] && file_exists(candidates[i]) && realpath(candidates[i], out)) return 1;
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

/* CMD as found in PATH (for the jeprof command line we print). */
static void resolve_cmd(const char *cmd, char *out, size_t cap) {
  snprintf(out, cap, "%s", cmd);
  const char *path = getenv("PATH");
  if (strchr(cmd, '/') || path == NULL) return;
  for (const char *p = path; *p;) {
    size_t n = strcspn(p, ":");
    char cand[PATH_MAX];
    snprintf(cand, sizeof cand, "%.*s/%s", (int)n, p, cmd);
    if (access(cand, X_OK) == 0 && file_exists(cand)) {
      snprintf(out, cap, "%s", cand);
      return;
    }
    p += n + (p[n] == ':');
  }
}

/* ALLOY_CONF for the child: `before` items, the user's, then `after` items
 * (a later item wins). */
static int conf_set(const char *before, const char *after) {
  const char *user = getenv("ALLOY_CONF");
  size_t n = strlen(before) + (user ? strlen(user) : 0) + strlen(after) + 3;
  char *buf = malloc(n);
  if (!buf) return -1;
  snprintf(buf, n, "%s%s%s%s%s", before, before[0] && user && *user ? "," : "", user ? user : "",
           (before[0] || (user && *user)) ? "," : "", after);
  int r = setenv("ALLOY_CONF", buf, 1);
  free(buf);
  return r;
}

/* Appends "KEY:VALUE[,...]" to ALLOY_CONF, after what is there (later
 * options win in the library). */
static int conf_append(const char *opt) {
  if (!strchr(opt, ':')) {
    fprintf(stderr, "alloy: -o wants KEY:VALUE, not '%s'\n", opt);
    return -1;
  }
  const char *old = getenv("ALLOY_CONF");
  if (!old || !*old) return setenv("ALLOY_CONF", opt, 1);
  size_t n = strlen(old) + strlen(opt) + 2;
  char *buf = malloc(n);
  if (!buf) return -1;
  snprintf(buf, n, "%s,%s", old, opt);
  int r = setenv("ALLOY_CONF", buf, 1);
  free(buf);
  return r;
}

static int run(int argc, char **argv) {
  int stats = 0, prof = 0, leaks = 0, i = 0;
  const char *prefix_arg = "alloy";
  for (; i < argc; i++) {
    if (strcmp(argv[i], "--stats") == 0) stats = 1;
    else if (strcmp(argv[i], "--prof") == 0) prof = 1;
    else if (strcmp(argv[i], "--leaks") == 0) prof = leaks = 1;
    else if (strcmp(argv[i], "--prefix") == 0 && i + 1 < argc) prefix_arg = argv[++i];
    else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) { usage_run(stdout); return 0; }
    else if (strncmp(argv[i], "-o", 2) == 0) {
      const char *opt = argv[i][2] ? argv[i] + 2 : (i + 1 < argc ? argv[++i] : NULL);
      if (!opt) { fprintf(stderr, "alloy: -o needs KEY:VALUE\n"); usage_run(stderr); return 2; }
      if (conf_append(opt) != 0) { usage_run(stderr); return 2; }
    }
    else if (strcmp(argv[i], "--") == 0) { i++; break; }
    else if (argv[i][0] == '-') { fprintf(stderr, "alloy: unknown option '%s'\n", argv[i]); usage_run(stderr); return 2; }
    else break;
  }
  if (i >= argc) {
    fprintf(stderr, "alloy: run needs a command\n");
    usage_run(stderr);
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
  char prefix[PATH_MAX], cmd[PATH_MAX];
  if (prof && prof_prefix_abs(prefix_arg, prefix, sizeof prefix) != 0) {
    fprintf(stderr, "alloy: bad --prefix %s\n", prefix_arg);
    return 2;
  }
  resolve_cmd(argv[i], cmd, sizeof cmd);
  pid_t pid = fork();
  if (pid < 0) {
    perror("alloy: fork");
    return 127;
  }
  if (pid == 0) {
    /* Appended so the launcher's requests win over an earlier setting. */
    char before[64] = "", after[PATH_MAX + 256] = "";
    if (prof) prof_conf(before, sizeof before, after, sizeof after, prefix, leaks, (int)getpid());
    if (stats)
      snprintf(after + strlen(after), sizeof after - strlen(after), "%sstats_summary:true,stats_summary_pid:%d",
               after[0] ? "," : "", (int)getpid());
    if ((prof || stats) && conf_set(before, after) != 0) _exit(127);
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
  if (prof) prof_after(prefix, (int)pid, leaks, cmd);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 127;
}

/* alloy flame PROFILE [-o OUT] / alloy leaks PROFILE [-n N] */
static int profile_command(int argc, char **argv, bool flame) {
  const char *profile = NULL, *out = NULL;
  int top = 10;
  for (int i = 0; i < argc; i++) {
    if (flame && strcmp(argv[i], "-o") == 0 && i + 1 < argc) out = argv[++i];
    else if (!flame && strcmp(argv[i], "-n") == 0 && i + 1 < argc) top = atoi(argv[++i]);
    else if (profile == NULL && argv[i][0] != '-') profile = argv[i];
    else { usage(stderr); return 2; }
  }
  if (profile == NULL) { usage(stderr); return 2; }
  if (!flame) return leaks_print(profile, stdout, top) == 0 ? 0 : 1;
  char def[PATH_MAX + 8];
  if (out == NULL) {
    snprintf(def, sizeof def, "%s.svg", profile);
    out = def;
  }
  if (flame_write(profile, out) != 0) return 1;
  fprintf(stderr, "alloy flame: %s\n", out);
  return 0;
}

/* alloy help [COMMAND] */
static int help(int argc, char **argv) {
  if (argc == 0) usage(stdout);
  else if (strcmp(argv[0], "run") == 0) usage_run(stdout);
  else if (strcmp(argv[0], "help") == 0 || strcmp(argv[0], "flame") == 0 || strcmp(argv[0], "leaks") == 0) usage(stdout);
  else {
    fprintf(stderr, "alloy: no help for unknown command '%s'\n", argv[0]);
    usage(stderr);
    return 2;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "run") == 0) return run(argc - 2, argv + 2);
  if (argc >= 2 && strcmp(argv[1], "flame") == 0) return profile_command(argc - 2, argv + 2, true);
  if (argc >= 2 && strcmp(argv[1], "leaks") == 0) return profile_command(argc - 2, argv + 2, false);
  if (argc >= 2 && strcmp(argv[1], "help") == 0) return help(argc - 2, argv + 2);
  if (argc >= 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)) {
    printf("alloy %s\n", ALLOY_VERSION_STRING);
    return 0;
  }
  if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
    usage(stdout);
    return 0;
  }
  if (argc >= 2)
    fprintf(stderr, argv[1][0] == '-' ? "alloy: unknown option '%s'\n" : "alloy: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
