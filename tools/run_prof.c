/*
 * run_prof.c - what `alloy run --prof` and `alloy run --leaks` add to the
 * launcher: the profiler's configuration for the program (profile only that
 * process, write its final profile), and once it has exited, finding that
 * profile, writing its flame graph beside it, and for --leaks printing the
 * call stacks that still held memory.
 */
#include "prof_tools.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* An absolute prefix (the program may change directory). */
int prof_prefix_abs(const char *prefix, char *out, size_t cap) {
  if (prefix[0] == '/') return snprintf(out, cap, "%s", prefix) < (int)cap ? 0 : -1;
  char cwd[PATH_MAX];
  if (getcwd(cwd, sizeof cwd) == NULL) return -1;
  return snprintf(out, cap, "%s/%s", cwd, prefix) < (int)cap ? 0 : -1;
}

/* The ALLOY_CONF items the profiled program gets, before and after the
 * user's own: --leaks samples 1 in 4 KiB unless the user says otherwise,
 * so smaller leaks show; the rest is not negotiable. */
void prof_conf(char *before, size_t bcap, char *after, size_t acap, const char *prefix, int leaks, int pid) {
  snprintf(before, bcap, "%s", leaks ? "lg_prof_sample:12" : "");
  snprintf(after, acap, "prof:true,prof_final:true,prof_leak:false,prof_prefix:%s,prof_pid:%d", prefix, pid);
}

/* <prefix>.<pid>.<seq>.f.heap with the highest seq, into out. */
static int find_final(const char *prefix, int pid, char *out, size_t cap) {
  char dir[PATH_MAX], head[PATH_MAX];
  const char *slash = strrchr(prefix, '/');
  snprintf(dir, sizeof dir, "%.*s", (int)(slash - prefix), prefix);
  snprintf(head, sizeof head, "%s.%d.", slash + 1, pid);
  DIR *d = opendir(dir[0] ? dir : "/");
  if (d == NULL) return -1;
  long best = -1;
  size_t hl = strlen(head);
  char name[NAME_MAX + 1] = "";
  for (struct dirent *e; (e = readdir(d));) {
    char *end;
    if (strncmp(e->d_name, head, hl) != 0) continue;
    long seq = strtol(e->d_name + hl, &end, 10);
    if (end == e->d_name + hl || strcmp(end, ".f.heap") != 0 || seq <= best) continue;
    best = seq;
    memcpy(name, e->d_name, strlen(e->d_name) + 1);
  }
  closedir(d);
  if (best < 0 || strlen(dir) + strlen(name) + 2 > cap) return -1;
  memcpy(out, dir, strlen(dir));
  out[strlen(dir)] = '/';
  memcpy(out + strlen(dir) + 1, name, strlen(name) + 1);
  return 0;
}

/* After the program (pid, run as `cmd`) exited. */
int prof_after(const char *prefix, int pid, int leaks, const char *cmd) {
  char profile[PATH_MAX], svg[PATH_MAX + 8];
  if (find_final(prefix, pid, profile, sizeof profile) != 0) {
    fprintf(stderr, "alloy: no final heap profile %s.%d.*.f.heap (did the program end with _exit or a signal?)\n",
            prefix, pid);
    return -1;
  }
  if (leaks) leaks_print(profile, stderr, 5);
  snprintf(svg, sizeof svg, "%s.svg", profile);
  fprintf(stderr, "alloy: heap profile: %s (jeprof --text %s %s)\n", profile, cmd, profile);
  if (flame_write(profile, svg) == 0) fprintf(stderr, "alloy: flame graph: %s\n", svg);
  return 0;
}
