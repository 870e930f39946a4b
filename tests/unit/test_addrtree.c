/*
 * test_addrtree.c - the address-ordered first-fit tree (src/addrtree.c)
 * against a brute-force model: after every insertion or removal, in random
 * order, first fit returns the lowest-addressed extent at least as long as
 * the request (NULL when none is), the tree is in address order, every
 * node's `longest` is its subtree's longest extent, and the depth stays
 * logarithmic, also when extents come in address order (the case that
 * degenerates a plain search tree into a list).  The priorities hash the
 * real addresses, so the depth varies with where the buffer lands: 20-29
 * seen for 600 nodes; 40 leaves room, and a multiplicative hash reached 45
 * in address order, a list would be 600.
 */
#include "check.h"
#include "internal.h"

#define N 600

/* Nodes at a fixed offset in 64 KiB steps (the back end's run headers are
 * 2 MiB apart; the tree hashes addresses from the OS page up). */
#define STEP (64u << 10)
static addr_node_t *node_at(uint8_t *base, unsigned i) {
  return (addr_node_t *)(base + (size_t)i * STEP + 40);
}

static size_t model_size[N]; /* 0: not in the tree */

static unsigned depth_and_check(const addr_node_t *t, const addr_node_t *lo, const addr_node_t *hi) {
  if (t == NULL) return 0;
  CHECK(lo == NULL || t > lo);
  CHECK(hi == NULL || t < hi);
  size_t want = t->size;
  if (t->left && t->left->longest > want) want = t->left->longest;
  if (t->right && t->right->longest > want) want = t->right->longest;
  CHECK_EQ(t->longest, want);
  unsigned l = depth_and_check(t->left, lo, t), r = depth_and_check(t->right, t, hi);
  return 1 + (l > r ? l : r);
}

static unsigned check_tree(addr_node_t *root, uint8_t *base) {
  unsigned depth = depth_and_check(root, NULL, NULL);
  static const size_t asks[] = {1, 4096, 65536, 1u << 20, 3u << 20, 7u << 20, 64u << 20};
  for (unsigned a = 0; a < sizeof asks / sizeof asks[0]; a++) {
    addr_node_t *want = NULL;
    for (unsigned i = 0; i < N && want == NULL; i++)
      if (model_size[i] >= asks[a]) want = node_at(base, i);
    CHECK_EQ_PTR(addrtree_first_fit(root, asks[a]), want);
  }
  return depth;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next_random(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

int main(void) {
  uint8_t *base = malloc((size_t)N * STEP + STEP);
  REQUIRE(base != NULL);
  base = (uint8_t *)(((uintptr_t)base + STEP - 1) & ~(uintptr_t)(STEP - 1));
  addr_node_t *root = NULL;

  CHECK_NULL(addrtree_first_fit(root, 1));

  /* in address order: still balanced */
  unsigned depth = 0;
  for (unsigned i = 0; i < N; i++) {
    model_size[i] = (size_t)(i % 7 + 1) << 20;
    addrtree_insert(&root, node_at(base, i), model_size[i]);
  }
  depth = check_tree(root, base);
  CHECK_MSG(depth <= 40, "depth %u for %u nodes inserted in address order", depth, N);
  for (unsigned i = 0; i < N; i++) {
    addrtree_remove(&root, node_at(base, i));
    model_size[i] = 0;
    if (i % 50 == 0) check_tree(root, base);
  }
  CHECK_NULL(root);

  /* random insertions, removals and size changes (remove, insert again) */
  unsigned max_depth = 0;
  for (unsigned step = 0; step < 20000; step++) {
    unsigned i = (unsigned)(next_random() % N);
    if (model_size[i]) {
      addrtree_remove(&root, node_at(base, i));
      model_size[i] = 0;
    }
    if (next_random() % 3) {
      model_size[i] = (size_t)(next_random() % (8u << 20)) + 1;
      addrtree_insert(&root, node_at(base, i), model_size[i]);
    }
    if (step % 97 == 0) {
      depth = check_tree(root, base);
      if (depth > max_depth) max_depth = depth;
    }
  }
  check_tree(root, base);
  CHECK_MSG(max_depth <= 40, "depth %u with at most %u nodes", max_depth, N);
  return check_done();
}
