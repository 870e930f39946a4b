/*
 * prof_ctl.c - the heap profiler's mallctl names, with jemalloc 5.3's types
 * and error codes; ctl.c's tree points at these handlers.
 *
 *   prof.active, prof.gdump, prof.thread_active_init, thread.prof.active
 *       bool rw: read false without opt.prof; a write needs opt.prof
 *       (ENOENT, except prof.active <- false), exactly a bool (EINVAL)
 *   prof.dump    const char * -w: a file name, or NULL for
 *       <prefix>.<pid>.<seq>.m<mseq>.heap; EFAULT when it cannot be written
 *   prof.prefix  const char * -w: EFAULT for NULL or a name too long
 *   prof.reset   size_t -w: forget every sample, sample 1 in 2^value bytes
 *       from now on (NULL: the current rate; above 63: 63)
 *   prof.lg_sample (size_t), prof.interval (uint64_t): r-
 *   opt.prof* (and opt.prof_unwind): r-
 *   stats.prof.{samples,dropped} (uint64_t), stats.prof.metadata (size_t):
 *       alloy's own: live samples, samples lost to full tables, bytes of
 *       profiler memory
 * The -w names (dump, prefix, reset) need opt.prof (ENOENT) and refuse a
 * read (EPERM).
 */
#include "ctl.h"
#include "prof.h"

#include <errno.h>
#include <sys/types.h>

/* jemalloc's "write only" names. */
static int write_only(const void *oldp, const size_t *oldlenp) {
  if (!alloy__options.prof) return ENOENT;
  return oldp != NULL || oldlenp != NULL ? EPERM : 0;
}

/* A bool that reads false without opt.prof and can only be written with
 * it; `off_ok`: writing false is accepted then (prof.active). */
static int bool_rw(void *oldp, size_t *oldlenp, const void *newp, size_t newlen,
                   bool (*get)(void), void (*set)(bool), bool off_ok) {
  bool old = alloy__options.prof ? get() : false;
  if (newp != NULL) {
    if (newlen != sizeof(bool)) return EINVAL;
    bool v = *(const bool *)newp;
    if (!alloy__options.prof) {
      if (v || !off_ok) return ENOENT;
    } else {
      set(v);
    }
  }
  return ctl_value(oldp, oldlenp, &old, sizeof old);
}

CTL_HANDLER_SIG(ctl_prof_active) {
  UNUSED_ARGS;
  return bool_rw(oldp, oldlenp, newp, newlen, prof_sample_active, prof_active_set, true);
}

CTL_HANDLER_SIG(ctl_prof_gdump) {
  UNUSED_ARGS;
  return bool_rw(oldp, oldlenp, newp, newlen, prof_gdump_get, prof_gdump_set, false);
}

CTL_HANDLER_SIG(ctl_prof_thread_active_init) {
  UNUSED_ARGS;
  return bool_rw(oldp, oldlenp, newp, newlen, prof_thread_active_init_get,
                 prof_thread_active_init_set, false);
}

CTL_HANDLER_SIG(ctl_thread_prof_active) {
  UNUSED_ARGS;
  return bool_rw(oldp, oldlenp, newp, newlen, prof_thread_active_get, prof_thread_active_set, false);
}

CTL_HANDLER_SIG(ctl_prof_dump) {
  (void)mib, (void)miblen;
  int err = write_only(oldp, oldlenp);
  if (err) return err;
  const char *name = NULL;
  if (newp != NULL) {
    if (newlen != sizeof name) return EINVAL;
    name = *(const char *const *)newp;
  }
  return prof_dump_manual(name) ? 0 : EFAULT;
}

CTL_HANDLER_SIG(ctl_prof_prefix) {
  (void)mib, (void)miblen;
  int err = write_only(oldp, oldlenp);
  if (err) return err;
  if (newp == NULL) return EFAULT;
  if (newlen != sizeof(const char *)) return EINVAL;
  const char *prefix = *(const char *const *)newp;
  return prefix != NULL && prof_prefix_set(prefix) ? 0 : EFAULT;
}

CTL_HANDLER_SIG(ctl_prof_reset) {
  (void)mib, (void)miblen;
  int err = write_only(oldp, oldlenp);
  if (err) return err;
  size_t lg = prof_sample_lg();
  if (newp != NULL) {
    if (newlen != sizeof lg) return EINVAL;
    lg = *(const size_t *)newp;
  }
  prof_reset(lg > 63 ? 63 : (unsigned)lg);
  return 0;
}

static uint64_t table_stat(int which) {
  prof_table_stats_t st;
  prof_table_stats(&st);
  return which == 0 ? st.samples : which == 1 ? st.dropped : st.metadata;
}

READ_ONLY_AS(, ctl_prof_lg_sample, size_t, prof_sample_lg())
READ_ONLY_AS(, ctl_prof_interval, uint64_t, prof_interval())
READ_ONLY_AS(, ctl_stats_prof_samples, uint64_t, table_stat(0))
READ_ONLY_AS(, ctl_stats_prof_dropped, uint64_t, table_stat(1))
READ_ONLY_AS(, ctl_stats_prof_metadata, size_t, table_stat(2))
READ_ONLY_AS(, ctl_opt_prof, bool, alloy__options.prof)
READ_ONLY_AS(, ctl_opt_prof_active, bool, alloy__options.prof_active)
READ_ONLY_AS(, ctl_opt_prof_thread_active_init, bool, alloy__options.prof_thread_active_init)
READ_ONLY_AS(, ctl_opt_lg_prof_sample, size_t, (size_t)alloy__options.lg_prof_sample)
READ_ONLY_AS(, ctl_opt_prof_prefix, const char *, alloy__options.prof_prefix)
READ_ONLY_AS(, ctl_opt_prof_accum, bool, alloy__options.prof_accum)
READ_ONLY_AS(, ctl_opt_prof_final, bool, alloy__options.prof_final)
READ_ONLY_AS(, ctl_opt_prof_leak, bool, alloy__options.prof_leak)
READ_ONLY_AS(, ctl_opt_prof_leak_error, bool, alloy__options.prof_leak_error)
READ_ONLY_AS(, ctl_opt_lg_prof_interval, ssize_t, (ssize_t)alloy__options.lg_prof_interval)
READ_ONLY_AS(, ctl_opt_prof_gdump, bool, alloy__options.prof_gdump)
READ_ONLY_AS(, ctl_opt_prof_unwind, const char *, alloy__unwind_names[alloy__options.prof_unwind])
READ_ONLY_AS(, ctl_opt_prof_pid, ssize_t, (ssize_t)alloy__options.prof_pid)
