/*
 * prof_tools.h - what the launcher (alloy.c) does with heap profiles:
 * `alloy flame` (flame.c) and the leak report of `alloy leaks` and
 * `alloy run --leaks` (leaks.c).
 */
#ifndef ALLOY_TOOLS_PROF_TOOLS_H
#define ALLOY_TOOLS_PROF_TOOLS_H

#include <stdio.h>

/* Writes the flame graph of `profile` (in-use bytes by call stack) as an
 * SVG to `svg`; 0, or -1 after a message on stderr. */
int flame_write(const char *profile, const char *svg);
/* Prints the `top` call stacks holding the most in-use bytes in `profile`,
 * with function names; 0, or -1 after a message on stderr. */
int leaks_print(const char *profile, FILE *out, int top);
/* "12.3 MiB" */
void format_bytes(char *buf, size_t cap, double bytes);

/* alloy run --prof / --leaks (run_prof.c) */
int prof_prefix_abs(const char *prefix, char *out, size_t cap);
void prof_conf(char *before, size_t bcap, char *after, size_t acap, const char *prefix, int leaks, int pid);
int prof_after(const char *prefix, int pid, int leaks, const char *cmd);

#endif
