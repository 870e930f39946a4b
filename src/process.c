/*
 * process.c - one-time process start, from whichever call comes first
 * (the dynamic loader's first malloc, a misuse report, a mallctl): the OS
 * page size, the options, the size classes, and whether memcheck runs the
 * program (vg.h).  Never allocates, takes no
 * lock of alloy's; threads that arrive while another initialises wait for
 * it.  The fork handlers and exit reports are init.c's, registered when
 * the library is loaded.
 */
#include "internal.h"

_Atomic(int) alloy__process_ready; /* 0 not started, 1 running, 2 done */
#ifdef ALLOY_VALGRIND
bool alloy__vg_memcheck; /* memcheck runs the program (vg.h) */
#endif

void process_init(void) {
  if (likely(atomic_load_explicit(&alloy__process_ready, memory_order_acquire) == 2)) return;
  int expected = 0;
  if (atomic_compare_exchange_strong(&alloy__process_ready, &expected, 1)) {
    os_init();
    options_init();
    size_class_init();
    VG_DETECT();
    atomic_store_explicit(&alloy__process_ready, 2, memory_order_release);
    return;
  }
  while (atomic_load_explicit(&alloy__process_ready, memory_order_acquire) != 2) os_yield();
}
