/*
 * check.h - alloy's tiny assertion harness for the C tests.
 *
 *   CHECK(cond)            records a failure (file:line, the expression) and goes on
 *   CHECK_EQ/NE/LT/LE/GT/GE(a, b)   compare as unsigned integers (uintmax_t),
 *                          printing both values in decimal and hex
 *   CHECK_EQ_INT(a, b)     compare as signed integers (intmax_t)
 *   CHECK_NULL(p), CHECK_NOT_NULL(p), CHECK_EQ_PTR(a, b)
 *   CHECK_ALIGNED(p, a)    p is a multiple of a
 *   CHECK_ERRNO(e)         errno == e (prints both values)
 *   REQUIRE(cond)          like CHECK, but a failure ends the test at once
 *   CHECK_MSG(cond, fmt, ...)  CHECK with an extra printf-style explanation
 *
 * A test's main ends with `return check_done();`, which prints a one-line
 * summary and returns non-zero when any check failed.  Only the first
 * CHECK_MAX_REPORTS failures are printed (all are counted), so a check inside a
 * loop of 70000 iterations cannot flood the log.
 */
#ifndef ALLOY_TESTS_CHECK_H
#define ALLOY_TESTS_CHECK_H

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef CHECK_MAX_REPORTS
#define CHECK_MAX_REPORTS 40
#endif

static unsigned long check_count_ = 0;
static unsigned long check_fail_ = 0;

static inline int check_report_(const char *file, int line)
{
  check_fail_++;
  if (check_fail_ > CHECK_MAX_REPORTS) {
    if (check_fail_ == CHECK_MAX_REPORTS + 1)
      fprintf(stderr, "(further failures are counted, not printed)\n");
    return 0;
  }
  fprintf(stderr, "%s:%d: FAILED ", file, line);
  return 1;
}

#define CHECK_MSG(cond, ...)                                                  \
  do {                                                                        \
    check_count_++;                                                           \
    if (!(cond) && check_report_(__FILE__, __LINE__)) {                       \
      fprintf(stderr, "CHECK(%s): ", #cond);                                  \
      fprintf(stderr, __VA_ARGS__);                                           \
      fputc('\n', stderr);                                                    \
    }                                                                         \
  } while (0)

#define CHECK(cond)                                                           \
  do {                                                                        \
    check_count_++;                                                           \
    if (!(cond) && check_report_(__FILE__, __LINE__))                         \
      fprintf(stderr, "CHECK(%s)\n", #cond);                                  \
  } while (0)

#define REQUIRE(cond)                                                         \
  do {                                                                        \
    check_count_++;                                                           \
    if (!(cond)) {                                                            \
      check_fail_++;                                                          \
      fprintf(stderr, "%s:%d: FAILED REQUIRE(%s); stopping\n", __FILE__,      \
              __LINE__, #cond);                                               \
      fprintf(stderr, "%lu checks, %lu failed\n", check_count_, check_fail_); \
      exit(1);                                                                \
    }                                                                         \
  } while (0)

#define CHECK_CMP_(a, op, b)                                                  \
  do {                                                                        \
    uintmax_t check_a_ = (uintmax_t)(a), check_b_ = (uintmax_t)(b);           \
    check_count_++;                                                           \
    if (!(check_a_ op check_b_) && check_report_(__FILE__, __LINE__))         \
      fprintf(stderr,                                                         \
              "%s %s %s: left = %" PRIuMAX " (0x%" PRIxMAX "), right = %"     \
              PRIuMAX " (0x%" PRIxMAX ")\n",                                  \
              #a, #op, #b, check_a_, check_a_, check_b_, check_b_);           \
  } while (0)

#define CHECK_EQ(a, b) CHECK_CMP_(a, ==, b)
#define CHECK_NE(a, b) CHECK_CMP_(a, !=, b)
#define CHECK_LT(a, b) CHECK_CMP_(a, <, b)
#define CHECK_LE(a, b) CHECK_CMP_(a, <=, b)
#define CHECK_GT(a, b) CHECK_CMP_(a, >, b)
#define CHECK_GE(a, b) CHECK_CMP_(a, >=, b)

#define CHECK_EQ_INT(a, b)                                                    \
  do {                                                                        \
    intmax_t check_a_ = (intmax_t)(a), check_b_ = (intmax_t)(b);              \
    check_count_++;                                                           \
    if (check_a_ != check_b_ && check_report_(__FILE__, __LINE__))            \
      fprintf(stderr, "%s == %s: left = %" PRIdMAX ", right = %" PRIdMAX "\n",\
              #a, #b, check_a_, check_b_);                                    \
  } while (0)

#define CHECK_EQ_PTR(a, b)                                                    \
  do {                                                                        \
    const void *check_a_ = (const void *)(a), *check_b_ = (const void *)(b);  \
    check_count_++;                                                           \
    if (check_a_ != check_b_ && check_report_(__FILE__, __LINE__))            \
      fprintf(stderr, "%s == %s: left = %p, right = %p\n", #a, #b, check_a_,  \
              check_b_);                                                      \
  } while (0)

#define CHECK_NULL(p)                                                         \
  do {                                                                        \
    const void *check_p_ = (const void *)(p);                                 \
    check_count_++;                                                           \
    if (check_p_ != NULL && check_report_(__FILE__, __LINE__))                \
      fprintf(stderr, "%s is NULL: got %p\n", #p, check_p_);                  \
  } while (0)

#define CHECK_NOT_NULL(p)                                                     \
  do {                                                                        \
    check_count_++;                                                           \
    if ((const void *)(p) == NULL && check_report_(__FILE__, __LINE__))       \
      fprintf(stderr, "%s is not NULL\n", #p);                                \
  } while (0)

#define CHECK_ALIGNED(p, a)                                                   \
  do {                                                                        \
    uintptr_t check_p_ = (uintptr_t)(p);                                      \
    uintmax_t check_al_ = (uintmax_t)(a);                                     \
    check_count_++;                                                           \
    if (check_p_ % check_al_ != 0 && check_report_(__FILE__, __LINE__))       \
      fprintf(stderr, "%s = %p is not %" PRIuMAX "-aligned\n", #p,            \
              (void *)check_p_, check_al_);                                   \
  } while (0)

#define CHECK_ERRNO(e)                                                        \
  do {                                                                        \
    int check_errno_ = errno, check_want_ = (e);                              \
    check_count_++;                                                           \
    if (check_errno_ != check_want_ && check_report_(__FILE__, __LINE__))     \
      fprintf(stderr, "errno == %s: errno = %d (%s), want %d (%s)\n", #e,     \
              check_errno_, strerror(check_errno_), check_want_,              \
              strerror(check_want_));                                         \
  } while (0)

/* Prints the summary; returns the process exit status for main. */
static inline int check_done(void)
{
  fprintf(stderr, "%lu checks, %lu failed\n", check_count_, check_fail_);
  return check_fail_ ? 1 : 0;
}

/* Number of failures so far (lets a test skip work after a hard failure). */
static inline unsigned long check_failures(void) { return check_fail_; }

/* Sanitizer builds (tests/tests.mk builds every unit test with ASan+UBSan
 * and with TSan): CHECK_SANITIZED is 1 under either, CHECK_TSAN under
 * TSan.  Tests leave out what a sanitizer's own memory or threads would
 * falsify (RSS and page-fault counts, threads started after fork). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CHECK_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define CHECK_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define CHECK_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CHECK_TSAN 1
#endif
#endif

#endif /* ALLOY_TESTS_CHECK_H */
