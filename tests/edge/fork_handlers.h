/*
 * fork_handlers.h - what libfork_handlers.so's fork handlers count, for
 * edge test fork_handlers.
 */
#ifndef ALLOY_TESTS_FORK_HANDLERS_H
#define ALLOY_TESTS_FORK_HANDLERS_H

#include <stdatomic.h>

#define HANDLER_BLOCKS 12
#define HANDLER_INBOX 64

/* Handlers that ran and found every block right. */
struct fork_handler_counts {
  unsigned prepare, parent, child;
};
extern struct fork_handler_counts fork_handler_counts;
/* Blocks other threads leave for the prepare handler to free. */
extern _Atomic(unsigned char *) handler_inbox[HANDLER_INBOX];

#endif
