/*
 * ctl.h - what ctl.c (the mallctl tree) offers to handlers defined in other
 * files (prof_ctl.c): the handler signature, jemalloc's read/write rules as
 * helpers, and the macros that write the common handlers.
 */
#ifndef ALLOY_CTL_H
#define ALLOY_CTL_H

#include <stdbool.h>
#include <stddef.h>

#define CTL_HANDLER_SIG(fn)                                                                 \
  int fn(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp, \
         size_t newlen)
typedef CTL_HANDLER_SIG((*ctl_handler_t));

/* Copies a value out: EINVAL unless *oldlenp is its size (jemalloc then
 * copies what fits and says how much). */
int ctl_value(void *oldp, size_t *oldlenp, const void *value, size_t size);
/* A read-only value: EPERM on any write (newp or newlen given). */
int ctl_read(void *oldp, size_t *oldlenp, const void *newp, size_t newlen, const void *value,
             size_t size);
/* A read-write value: EINVAL unless a new value is exactly `size` bytes;
 * returns the old value (if asked).  The caller stores the new one. */
int ctl_rw(void *oldp, size_t *oldlenp, const void *newp, size_t newlen, const void *old,
           size_t size);
/* A name that is an action: no value in or out (EPERM otherwise, as
 * jemalloc's). */
int ctl_action(const void *oldp, const size_t *oldlenp, const void *newp, size_t newlen);

/* A handler returning `expr` read-only; `storage` is static or empty. */
#define READ_ONLY_AS(storage, fn, type, expr)                                               \
  storage CTL_HANDLER_SIG(fn) {                                                             \
    (void)mib;                                                                              \
    (void)miblen;                                                                           \
    (void)newlen;                                                                           \
    type value = (expr);                                                                    \
    return ctl_read(oldp, oldlenp, newp, newlen, &value, sizeof value);                     \
  }
#define READ_ONLY(fn, type, expr) READ_ONLY_AS(static, fn, type, expr)
#define HANDLER(fn) static CTL_HANDLER_SIG(fn)
#define UNUSED_ARGS (void)mib, (void)miblen, (void)newlen

/* ------------------------------------------- the heap profiler's (prof_ctl.c) */
CTL_HANDLER_SIG(ctl_prof_active);
CTL_HANDLER_SIG(ctl_prof_dump);
CTL_HANDLER_SIG(ctl_prof_gdump);
CTL_HANDLER_SIG(ctl_prof_prefix);
CTL_HANDLER_SIG(ctl_prof_reset);
CTL_HANDLER_SIG(ctl_prof_lg_sample);
CTL_HANDLER_SIG(ctl_prof_interval);
CTL_HANDLER_SIG(ctl_prof_thread_active_init);
CTL_HANDLER_SIG(ctl_thread_prof_active);
CTL_HANDLER_SIG(ctl_stats_prof_samples);
CTL_HANDLER_SIG(ctl_stats_prof_dropped);
CTL_HANDLER_SIG(ctl_stats_prof_metadata);
CTL_HANDLER_SIG(ctl_opt_prof);
CTL_HANDLER_SIG(ctl_opt_prof_active);
CTL_HANDLER_SIG(ctl_opt_prof_thread_active_init);
CTL_HANDLER_SIG(ctl_opt_lg_prof_sample);
CTL_HANDLER_SIG(ctl_opt_prof_prefix);
CTL_HANDLER_SIG(ctl_opt_prof_accum);
CTL_HANDLER_SIG(ctl_opt_prof_final);
CTL_HANDLER_SIG(ctl_opt_prof_leak);
CTL_HANDLER_SIG(ctl_opt_prof_leak_error);
CTL_HANDLER_SIG(ctl_opt_lg_prof_interval);
CTL_HANDLER_SIG(ctl_opt_prof_gdump);
CTL_HANDLER_SIG(ctl_opt_prof_unwind);
CTL_HANDLER_SIG(ctl_opt_prof_pid);

#endif /* ALLOY_CTL_H */
