/*
 * addrtree.c - free extents in address order, for address-ordered first fit
 * in O(log n): the lowest-addressed extent at least as long as a request.
 *
 * Why address order: the back end's free runs were chosen by length (the
 * shortest that fits, any address), so blocks of random sizes wandered over
 * the whole pool and every frame of it ended up touched and resident
 * (bench/workloads/big_random.c: 240 MB resident for at most 176 MB of
 * blocks).  Taking the lowest run that fits keeps reuse at the bottom of the
 * pool; the top is left alone, where decay can purge it for good.  jemalloc
 * chooses its extents the same way, for the same reason.
 *
 * A treap: a binary search tree by node address whose heap priority is a
 * hash of the address (no random state, no allocation), so the expected
 * depth is O(log n) whatever order extents come and go in.  Each node also
 * keeps the longest extent of its subtree, which steers the first-fit
 * descent and is repaired on the way back up from every change.  The nodes
 * live inside the extents themselves (the caller embeds addr_node_t); the
 * tree takes no lock and calls nothing: the caller's lock covers it.
 */
#include "internal.h"

/* A full mix of the address (MurmurHash3's finalizer): extents often come
 * in address order, and a plain multiplicative hash gives an arithmetic
 * sequence of addresses priorities so regular that the tree grows deep. */
static uint64_t priority(const addr_node_t *n) {
  uint64_t x = (uint64_t)(uintptr_t)n;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

static size_t longest(const addr_node_t *n) { return n ? n->longest : 0; }

static void repair(addr_node_t *n) {
  size_t l = longest(n->left), r = longest(n->right);
  n->longest = n->size;
  if (l > n->longest) n->longest = l;
  if (r > n->longest) n->longest = r;
}

/* Splits t into the nodes below `key` and those above it. */
static void split(addr_node_t *t, const addr_node_t *key, addr_node_t **below, addr_node_t **above) {
  if (t == NULL) {
    *below = *above = NULL;
  } else if (t < key) {
    split(t->right, key, &t->right, above);
    repair(t);
    *below = t;
  } else {
    split(t->left, key, below, &t->left);
    repair(t);
    *above = t;
  }
}

/* Joins two trees, every node of `a` below every node of `b`. */
static addr_node_t *join(addr_node_t *a, addr_node_t *b) {
  if (a == NULL) return b;
  if (b == NULL) return a;
  if (priority(a) > priority(b)) {
    a->right = join(a->right, b);
    repair(a);
    return a;
  }
  b->left = join(a, b->left);
  repair(b);
  return b;
}

void addrtree_insert(addr_node_t **root, addr_node_t *node, size_t size) {
  node->size = size;
  uint64_t p = priority(node);
  addr_node_t **at = root;
  /* down to where the node's priority puts it; the subtrees passed on the
   * way will hold it, so their longest extent grows now */
  while (*at && priority(*at) >= p) {
    if ((*at)->longest < size) (*at)->longest = size;
    at = node < *at ? &(*at)->left : &(*at)->right;
  }
  split(*at, node, &node->left, &node->right);
  repair(node);
  *at = node;
}

static addr_node_t *remove_from(addr_node_t *t, const addr_node_t *node) {
  if (t == node) return join(t->left, t->right);
  if (node < t) t->left = remove_from(t->left, node);
  else t->right = remove_from(t->right, node);
  repair(t);
  return t;
}

void addrtree_remove(addr_node_t **root, addr_node_t *node) {
  *root = remove_from(*root, node);
  node->left = node->right = NULL;
}

addr_node_t *addrtree_first_fit(addr_node_t *t, size_t size) {
  if (longest(t) < size) return NULL;
  for (;;) { /* the subtree at t holds a fit: the leftmost one wins */
    if (longest(t->left) >= size) t = t->left;
    else if (t->size >= size) return t;
    else t = t->right;
  }
}
