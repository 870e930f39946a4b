/*
 * unwind.c - stack capture for the heap profiler, from inside malloc.
 *
 * It must never allocate, never take an allocator lock, and be cheap: a
 * sample is taken every 512 KiB of allocation by default, and glibc's
 * backtrace() (libgcc's unwinder) costs 3 us for 15 frames and 17 us for 65
 * on the development machine, several percent of a busy allocation loop.
 * Debian's binaries (python3, redis-server) have no frame pointers, so the
 * frame-pointer chain alone gives wrong stacks there.  Three methods,
 * opt.prof_unwind:
 *
 *   cfi     (default) alloy's own walker of the DWARF call-frame information
 *           every x86-64 object carries (.eh_frame, found through the
 *           loader's lock-free look-up, os_code_find).  The rule of each return address
 *           (where the caller's frame and registers are) is computed once and
 *           kept in a cache, so a frame costs a few loads once warm.  Stops
 *           at code without CFI (JIT code) and at signal frames.
 *   fp      cfi through alloy's own frames, then the frame-pointer chain of
 *           the program: for programs built with -fno-omit-frame-pointer
 *           only (elsewhere it reads garbage and may fault).
 *   libgcc  glibc's backtrace() (os_backtrace): correct everywhere, the
 *           slowest.  Its first call dlopens libgcc_s (which mallocs), so
 *           unwind_init calls it once outside any allocator path; a
 *           re-entrancy guard in prof.c keeps an allocation made inside the
 *           unwinder from recursing.  The only method off x86-64 (the
 *           walker reads x86-64 registers) and where the loader has no
 *           lock-free look-up (glibc before 2.35).
 *
 * The cfi walker tracks only what x86-64 code needs to find the next frame:
 * the CFA (rsp or rbp plus an offset, or *(rbp + k) in functions that
 * realign their stack), the return address (saved at CFA + k) and rbp.
 * Anything else (a CFA in another register, expressions beyond those
 * forms) ends the walk there: the stack is truncated, never wrong.
 *
 * The rule cache is read without a lock under a sequence counter (a reader
 * that overlaps a writer treats the entry as a miss); writers take
 * cache_lock, a leaf (only ever try-locked inside malloc).  Entries carry
 * the loader's count of unloaded objects (os_code_generation): after a
 * dlclose every rule is recomputed.  The loader is asked through os.h
 * only: nothing here knows glibc.
 *
 * alloy's own frames are cut from the result: every frame inside alloy's
 * object when alloy is a shared library (preload, -lalloy), or, when it is
 * linked into the executable, every frame through the profiler's hook and
 * the allocation functions that called it, recognised by the function start
 * the CFI gives (libgcc cannot tell: nothing is cut there).
 */
#include "internal.h"
#include "unwind.h"

#include <stddef.h>
#include <string.h>

#if defined(__clang__) || __GNUC__ >= 8
#define NO_ASAN __attribute__((no_sanitize("address")))
#else
#define NO_ASAN
#endif

#if defined(__x86_64__)
#define HAVE_CFI_WALKER 1
#else
#define HAVE_CFI_WALKER 0
#endif

static unwind_method_t method = UNWIND_LIBGCC;
static _Atomic(bool) ready;
static uintptr_t self_lo, self_hi; /* alloy's object, when it is not the executable */
static bool self_shared;

/* ------------------------------------------------------------ the rules */

/* Where the caller's frame is, for one return address. */
#define RULE_CFA_BP 1u    /* CFA = rbp + cfa_off (else rsp + cfa_off) */
#define RULE_CFA_DEREF 2u /* CFA = *(that) (stack realignment) */
#define RULE_BP_SAVED 4u  /* the caller's rbp is at (CFA or rbp) + bp_off */
#define RULE_BP_REL_BP 8u /* ... relative to rbp, not the CFA */
#define RULE_RA_UNDEF 16u /* no return address: the outermost frame */
typedef struct {
  int32_t cfa_off;
  int16_t ra_off; /* the return address is at CFA + ra_off */
  int16_t bp_off;
  uint8_t flags;
  uintptr_t func; /* start of the function (the FDE's first address) */
} rule_t;

/* A register's rule while the CFA program runs. */
enum { REG_SAME, REG_AT_CFA, REG_AT_BP, REG_UNDEF, REG_BAD };
typedef struct {
  uint8_t how;
  int64_t off;
} reg_rule_t;
typedef struct {
  unsigned cfa_reg;
  int64_t cfa_off;
  bool cfa_deref, cfa_bad;
  reg_rule_t bp, ra;
} row_t;

#define DW_REG_RBP 6
#define DW_REG_RSP 7

typedef struct {
  uint64_t code_align;
  int64_t data_align;
  uint64_t ra_reg;
  uint8_t fde_enc;
  bool has_z, signal;
  const uint8_t *ins, *ins_end;
} cie_t;

static bool read_uleb(const uint8_t **p, const uint8_t *end, uint64_t *out) {
  uint64_t v = 0;
  for (unsigned shift = 0; *p < end && shift < 64; shift += 7) {
    uint8_t b = *(*p)++;
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) return *out = v, true;
  }
  return false;
}

static bool read_sleb(const uint8_t **p, const uint8_t *end, int64_t *out) {
  uint64_t v = 0;
  unsigned shift = 0;
  for (; *p < end && shift < 64;) {
    uint8_t b = *(*p)++;
    v |= (uint64_t)(b & 0x7f) << shift;
    shift += 7;
    if (!(b & 0x80)) {
      if (shift < 64 && (b & 0x40)) v |= ~(uint64_t)0 << shift;
      return *out = (int64_t)v, true;
    }
  }
  return false;
}

/* A value of `size` bytes, unaligned, sign-extended when `sign`. */
static uint64_t read_fixed(const uint8_t *p, unsigned size, bool sign) {
  switch (size) {
  case 2: { uint16_t v; memcpy(&v, p, 2); return sign ? (uint64_t)(int64_t)(int16_t)v : v; }
  case 4: { uint32_t v; memcpy(&v, p, 4); return sign ? (uint64_t)(int64_t)(int32_t)v : v; }
  default: { uint64_t v; memcpy(&v, p, 8); return v; }
  }
}

/* A DW_EH_PE-encoded pointer.  `apply` false: the format only (pc_range). */
static bool read_encoded(const uint8_t **p, const uint8_t *end, uint8_t enc, uintptr_t datarel,
                         bool apply, uintptr_t *out) {
  if (enc == 0xff) return false; /* DW_EH_PE_omit */
  uintptr_t base = 0;
  if (apply) {
    switch (enc & 0x70) {
    case 0x00: break;
    case 0x10: base = (uintptr_t)*p; break; /* pcrel */
    case 0x30: base = datarel; break;       /* datarel */
    default: return false;                  /* textrel, funcrel, aligned: not on x86-64 Linux */
    }
  }
  uint64_t v;
  unsigned size = 0;
  bool sign = false;
  switch (enc & 0x0f) {
  case 0x00: case 0x04: size = 8; break;
  case 0x02: size = 2; break;
  case 0x03: size = 4; break;
  case 0x0a: size = 2; sign = true; break;
  case 0x0b: size = 4; sign = true; break;
  case 0x0c: size = 8; sign = true; break;
  case 0x01: if (!read_uleb(p, end, &v)) return false; break;
  case 0x09: { int64_t s; if (!read_sleb(p, end, &s)) return false; v = (uint64_t)s; break; }
  default: return false;
  }
  if (size) {
    if (*p + size > end) return false;
    v = read_fixed(*p, size, sign);
    *p += size;
  }
  uintptr_t r = base + (uintptr_t)v;
  if (apply && (enc & 0x80)) r = *(const uintptr_t *)r; /* indirect */
  *out = r;
  return true;
}

static bool cie_parse(const uint8_t *cie, cie_t *out) {
  uint32_t len;
  memcpy(&len, cie, 4);
  if (len == 0 || len == 0xffffffffu) return false; /* 64-bit DWARF: not produced on x86-64 */
  const uint8_t *p = cie + 4, *end = p + len;
  uint32_t id;
  memcpy(&id, p, 4);
  p += 4;
  if (id != 0) return false;
  uint8_t version = *p++;
  const char *aug = (const char *)p;
  size_t aug_len = strnlen(aug, (size_t)(end - p));
  p += aug_len + 1;
  if (p > end || strstr(aug, "eh")) return false;
  memset(out, 0, sizeof *out);
  out->fde_enc = 0; /* absptr */
  if (!read_uleb(&p, end, &out->code_align) || !read_sleb(&p, end, &out->data_align)) return false;
  if (version == 1) out->ra_reg = *p++;
  else if (!read_uleb(&p, end, &out->ra_reg)) return false;
  if (aug[0] == 'z') {
    uint64_t n;
    if (!read_uleb(&p, end, &n)) return false;
    const uint8_t *aug_end = p + n;
    out->has_z = true;
    for (const char *a = aug + 1; *a && p < aug_end; a++) {
      if (*a == 'R') out->fde_enc = *p++;
      else if (*a == 'L') p++;
      else if (*a == 'S') out->signal = true;
      else if (*a == 'P') {
        uintptr_t ignored;
        uint8_t enc = *p++;
        if (!read_encoded(&p, aug_end, enc & 0x7f, 0, false, &ignored)) return false;
      } else if (*a != 'B') break;
    }
    p = aug_end;
  }
  if (p > end) return false;
  out->ins = p;
  out->ins_end = end;
  return true;
}

/* The FDE covering pc, through the object's sorted .eh_frame_hdr table. */
static const uint8_t *fde_find(uintptr_t pc) {
  os_code_object_t obj;
  if (!os_code_find(pc, &obj) || obj.eh_frame_hdr == NULL) return NULL;
  const uint8_t *hdr = obj.eh_frame_hdr;
  if (hdr[0] != 1 || hdr[3] != 0x3b) return NULL; /* version 1, table datarel|sdata4 */
  const uint8_t *p = hdr + 4, *end = hdr + 4 + 16;
  uintptr_t eh_frame, count;
  if (!read_encoded(&p, end, hdr[1], (uintptr_t)hdr, true, &eh_frame) ||
      !read_encoded(&p, end, hdr[2], (uintptr_t)hdr, true, &count) || count == 0)
    return NULL;
  const uint8_t *table = p;
  size_t lo = 0, hi = count; /* the last entry whose start is <= pc */
  while (hi - lo > 1) {
    size_t mid = (lo + hi) / 2;
    int32_t start;
    memcpy(&start, table + mid * 8, 4);
    if ((uintptr_t)hdr + (intptr_t)start <= pc) lo = mid;
    else hi = mid;
  }
  int32_t start, fde;
  memcpy(&start, table + lo * 8, 4);
  memcpy(&fde, table + lo * 8 + 4, 4);
  if ((uintptr_t)hdr + (intptr_t)start > pc) return NULL;
  return hdr + fde;
}

static void reg_set(row_t *row, uint64_t reg, uint64_t ra_reg, uint8_t how, int64_t off) {
  reg_rule_t r = {how, off};
  if (reg == DW_REG_RBP) row->bp = r;
  else if (reg == ra_reg) row->ra = r;
}

static void reg_restore(row_t *row, uint64_t reg, uint64_t ra_reg, const row_t *initial) {
  if (reg == DW_REG_RBP) row->bp = initial->bp;
  else if (reg == ra_reg) row->ra = initial->ra;
}

/* DW_OP_breg6/7 k [DW_OP_deref]: the only expressions walked (the CFA of a
 * function that realigns its stack; where such a function saved rbp). */
static bool expr_breg(const uint8_t *p, const uint8_t *end, unsigned *reg, int64_t *off, bool *deref) {
  if (p >= end || (*p != 0x70 + DW_REG_RBP && *p != 0x70 + DW_REG_RSP)) return false;
  *reg = (unsigned)(*p++ - 0x70);
  if (!read_sleb(&p, end, off)) return false;
  *deref = p < end && *p == 0x06;
  if (*deref) p++;
  return p == end;
}

/* Runs CFA instructions [p, end) from location *loc until it passes
 * `target`; false on an instruction it does not know. */
static bool cfa_run(const uint8_t *p, const uint8_t *end, const cie_t *cie, uintptr_t *loc,
                    uintptr_t target, row_t *row, const row_t *initial) {
  row_t saved[8];
  unsigned nsaved = 0;
  uint64_t ra = cie->ra_reg;
  while (p < end) {
    uint8_t op = *p++;
    uint64_t reg, u;
    int64_t s;
    uintptr_t delta = 0;
    switch (op & 0xc0) {
    case 0x40: delta = (uintptr_t)(op & 0x3f) * cie->code_align; goto advance;
    case 0x80:
      if (!read_uleb(&p, end, &u)) return false;
      reg_set(row, op & 0x3f, ra, REG_AT_CFA, (int64_t)u * cie->data_align);
      continue;
    case 0xc0: reg_restore(row, op & 0x3f, ra, initial); continue;
    }
    switch (op) {
    case 0x00: continue; /* nop */
    case 0x01:           /* set_loc */
      if (!read_encoded(&p, end, cie->fde_enc, 0, true, loc)) return false;
      if (*loc > target) return true;
      continue;
    case 0x02: if (p + 1 > end) return false; delta = *p * cie->code_align; p += 1; goto advance;
    case 0x03: if (p + 2 > end) return false; delta = read_fixed(p, 2, false) * cie->code_align; p += 2; goto advance;
    case 0x04: if (p + 4 > end) return false; delta = read_fixed(p, 4, false) * cie->code_align; p += 4; goto advance;
    case 0x05: /* offset_extended */
      if (!read_uleb(&p, end, &reg) || !read_uleb(&p, end, &u)) return false;
      reg_set(row, reg, ra, REG_AT_CFA, (int64_t)u * cie->data_align);
      continue;
    case 0x06: if (!read_uleb(&p, end, &reg)) return false; reg_restore(row, reg, ra, initial); continue;
    case 0x07: if (!read_uleb(&p, end, &reg)) return false; reg_set(row, reg, ra, REG_UNDEF, 0); continue;
    case 0x08: if (!read_uleb(&p, end, &reg)) return false; reg_set(row, reg, ra, REG_SAME, 0); continue;
    case 0x09: /* register: a value kept in another register */
      if (!read_uleb(&p, end, &reg) || !read_uleb(&p, end, &u)) return false;
      if (reg != u) reg_set(row, reg, ra, REG_BAD, 0);
      continue;
    case 0x0a: if (nsaved == 8) return false; saved[nsaved++] = *row; continue;
    case 0x0b: if (nsaved == 0) return false; *row = saved[--nsaved]; continue;
    case 0x0c: /* def_cfa */
      if (!read_uleb(&p, end, &reg) || !read_uleb(&p, end, &u)) return false;
      row->cfa_reg = (unsigned)reg, row->cfa_off = (int64_t)u, row->cfa_deref = row->cfa_bad = false;
      continue;
    case 0x0d: /* def_cfa_register */
      if (!read_uleb(&p, end, &reg)) return false;
      row->cfa_reg = (unsigned)reg, row->cfa_deref = row->cfa_bad = false;
      continue;
    case 0x0e: if (!read_uleb(&p, end, &u)) return false; row->cfa_off = (int64_t)u; continue;
    case 0x0f: /* def_cfa_expression */
      if (!read_uleb(&p, end, &u) || u > (uint64_t)(end - p)) return false;
      row->cfa_bad = !expr_breg(p, p + u, &row->cfa_reg, &row->cfa_off, &row->cfa_deref);
      p += u;
      continue;
    case 0x10: { /* expression: the register is saved at the address it computes */
      if (!read_uleb(&p, end, &reg) || !read_uleb(&p, end, &u) || u > (uint64_t)(end - p)) return false;
      unsigned base;
      bool deref;
      if (expr_breg(p, p + u, &base, &s, &deref) && base == DW_REG_RBP && !deref)
        reg_set(row, reg, ra, REG_AT_BP, s);
      else
        reg_set(row, reg, ra, REG_BAD, 0);
      p += u;
      continue;
    }
    case 0x11: /* offset_extended_sf */
      if (!read_uleb(&p, end, &reg) || !read_sleb(&p, end, &s)) return false;
      reg_set(row, reg, ra, REG_AT_CFA, s * cie->data_align);
      continue;
    case 0x12: /* def_cfa_sf */
      if (!read_uleb(&p, end, &reg) || !read_sleb(&p, end, &s)) return false;
      row->cfa_reg = (unsigned)reg, row->cfa_off = s * cie->data_align, row->cfa_deref = row->cfa_bad = false;
      continue;
    case 0x13: if (!read_sleb(&p, end, &s)) return false; row->cfa_off = s * cie->data_align; continue;
    case 0x14: case 0x15: /* val_offset: a register whose value is an address */
      if (!read_uleb(&p, end, &reg) || !read_uleb(&p, end, &u)) return false;
      reg_set(row, reg, ra, REG_BAD, 0);
      continue;
    case 0x16: /* val_expression */
      if (!read_uleb(&p, end, &reg) || !read_uleb(&p, end, &u) || u > (uint64_t)(end - p)) return false;
      reg_set(row, reg, ra, REG_BAD, 0);
      p += u;
      continue;
    case 0x2e: if (!read_uleb(&p, end, &u)) return false; continue; /* GNU_args_size */
    case 0x2f: /* GNU_negative_offset_extended */
      if (!read_uleb(&p, end, &reg) || !read_uleb(&p, end, &u)) return false;
      reg_set(row, reg, ra, REG_AT_CFA, -(int64_t)u * cie->data_align);
      continue;
    default: return false;
    }
  advance:
    *loc += delta;
    if (*loc > target) return true;
  }
  return true;
}

/* Computes the rule for pc from the CFI; false when there is none usable. */
static bool rule_compute(uintptr_t pc, rule_t *out) {
  const uint8_t *fde = fde_find(pc);
  if (fde == NULL) return false;
  uint32_t len, cie_off;
  memcpy(&len, fde, 4);
  if (len == 0 || len == 0xffffffffu) return false;
  const uint8_t *p = fde + 4, *end = p + len;
  memcpy(&cie_off, p, 4);
  cie_t cie;
  if (!cie_parse(p - cie_off, &cie) || cie.signal) return false;
  p += 4;
  uintptr_t start, range;
  if (!read_encoded(&p, end, cie.fde_enc, 0, true, &start) ||
      !read_encoded(&p, end, cie.fde_enc & 0x0f, 0, false, &range))
    return false;
  if (pc < start || pc >= start + range) return false;
  if (cie.has_z) {
    uint64_t n;
    if (!read_uleb(&p, end, &n) || n > (uint64_t)(end - p)) return false;
    p += n;
  }
  row_t row = {.cfa_reg = DW_REG_RSP};
  uintptr_t loc = start;
  if (!cfa_run(cie.ins, cie.ins_end, &cie, &loc, UINTPTR_MAX, &row, &row)) return false;
  row_t initial = row;
  loc = start;
  if (!cfa_run(p, end, &cie, &loc, pc, &row, &initial)) return false;
  if (row.cfa_bad || (row.cfa_reg != DW_REG_RSP && row.cfa_reg != DW_REG_RBP)) return false;
  if (row.cfa_off < INT32_MIN || row.cfa_off > INT32_MAX) return false;
  memset(out, 0, sizeof *out);
  out->func = start;
  out->cfa_off = (int32_t)row.cfa_off;
  out->flags = (row.cfa_reg == DW_REG_RBP ? RULE_CFA_BP : 0) | (row.cfa_deref ? RULE_CFA_DEREF : 0);
  if (row.ra.how == REG_UNDEF) out->flags |= RULE_RA_UNDEF;
  else if (row.ra.how != REG_AT_CFA || row.ra.off < INT16_MIN || row.ra.off > INT16_MAX) return false;
  out->ra_off = (int16_t)row.ra.off;
  if (row.bp.how == REG_AT_CFA || row.bp.how == REG_AT_BP) {
    if (row.bp.off < INT16_MIN || row.bp.off > INT16_MAX) return false;
    out->flags |= RULE_BP_SAVED | (row.bp.how == REG_AT_BP ? RULE_BP_REL_BP : 0);
    out->bp_off = (int16_t)row.bp.off;
  } else if (row.bp.how != REG_SAME) {
    return false;
  }
  return true;
}

/* ------------------------------------------------------- the rule cache */

#define CACHE_ENTRIES 8192 /* 256 KiB, mapped when the profiler starts */
typedef struct {
  uintptr_t pc;    /* 0: empty */
  uintptr_t func;
  uint64_t rule;   /* cfa_off | ra_off << 32 | bp_off << 48 */
  uint64_t meta;   /* flags | gen << 8 */
} cache_entry_t;

static cache_entry_t *cache;
static _Atomic(uint64_t) cache_seq; /* odd while a writer is changing an entry */
static os_lock_t cache_lock = OS_LOCK_INIT;

static size_t cache_slot(uintptr_t pc) { return (size_t)((pc * 0x9E3779B97F4A7C15ull) >> 51); }

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

static bool cache_get(uintptr_t pc, uint64_t gen, rule_t *r) {
  uint64_t s1 = atomic_load_explicit(&cache_seq, memory_order_acquire);
  if (s1 & 1) return false;
  cache_entry_t *e = &cache[cache_slot(pc)];
  uintptr_t epc = LOAD(e->pc), func = LOAD(e->func);
  uint64_t rule = LOAD(e->rule), meta = LOAD(e->meta);
  atomic_thread_fence(memory_order_acquire);
  if (atomic_load_explicit(&cache_seq, memory_order_relaxed) != s1) return false;
  if (epc != pc || meta >> 8 != gen) return false;
  r->func = func;
  r->cfa_off = (int32_t)(uint32_t)rule;
  r->ra_off = (int16_t)(uint16_t)(rule >> 32);
  r->bp_off = (int16_t)(uint16_t)(rule >> 48);
  r->flags = (uint8_t)meta;
  return true;
}

/* A writer that finds the lock taken skips caching: the rule was computed
 * anyway, and no thread waits inside malloc for another's cache write. */
static void cache_put(uintptr_t pc, uint64_t gen, const rule_t *r) {
  if (!os_trylock(&cache_lock)) return;
  cache_entry_t *e = &cache[cache_slot(pc)];
  uint64_t s = atomic_load_explicit(&cache_seq, memory_order_relaxed);
  atomic_store_explicit(&cache_seq, s + 1, memory_order_relaxed);
  atomic_thread_fence(memory_order_release);
  STORE(e->pc, pc);
  STORE(e->func, r->func);
  STORE(e->rule, (uint64_t)(uint32_t)r->cfa_off | (uint64_t)(uint16_t)r->ra_off << 32 |
                     (uint64_t)(uint16_t)r->bp_off << 48);
  STORE(e->meta, (uint64_t)r->flags | gen << 8);
  atomic_store_explicit(&cache_seq, s + 2, memory_order_release);
  os_unlock(&cache_lock);
}

static bool rule_get(uintptr_t pc, uint64_t gen, rule_t *r) {
  if (cache_get(pc, gen, r)) return true;
  if (!rule_compute(pc, r)) return false;
  cache_put(pc, gen, r);
  return true;
}

void unwind_fork_prepare(void) { os_lock(&cache_lock); }
void unwind_fork_release(void) { os_unlock(&cache_lock); }

/* Cached rules are valid while no object was unloaded (the cache keeps 56
 * bits of the count). */
static uint64_t loader_generation(void) { return os_code_generation() & ((UINT64_C(1) << 56) - 1); }

/* --------------------------------------------------- alloy's own frames */

/* When alloy is linked into the executable, its frames cannot be told apart
 * by address.  The CFI gives each frame's function, and the path from the
 * program to the recorder is known (unwind_path_t, named by the caller of
 * unwind_init): an anchor, then alloy functions that can call on towards
 * it without a tail call.  Frames are cut through the anchor and the alloy
 * functions right after it. */
static uintptr_t anchors[8], path_fns[64];
static unsigned nanchors, npath_fns;

static bool in_set(const uintptr_t *set, unsigned n, uintptr_t func) {
  for (unsigned i = 0; i < n; i++)
    if (set[i] == func) return true;
  return false;
}

/* 0: a name that is not in this build (override.c's are not in
 * liballoy_core.a). */
static void set_fill(uintptr_t *set, unsigned *n, unsigned cap, const uintptr_t *from, size_t count) {
  for (size_t i = 0; i < count && *n < cap; i++)
    if (from[i]) set[(*n)++] = from[i];
}

static bool in_self(uintptr_t pc) { return pc >= self_lo && pc < self_hi; }

/* Finds alloy's object, and whether it is the executable; false when the
 * loader cannot tell (then only backtrace() can walk). */
static bool self_locate(const unwind_path_t *path) {
  set_fill(anchors, &nanchors, sizeof anchors / sizeof anchors[0], path->anchors, path->nanchors);
  set_fill(path_fns, &npath_fns, sizeof path_fns / sizeof path_fns[0], path->path, path->npath);
  os_code_object_t self;
  if (!os_code_find((uintptr_t)unwind_capture, &self)) return false;
  self_shared = self.id != os_code_executable();
  self_lo = self.start;
  self_hi = self.end;
  return true;
}

typedef struct {
  uintptr_t pc, func; /* func 0: not known */
} frame_t;

/* How many leading frames are alloy's.  Static case: through the anchor,
 * then through the outermost path function among the next PATH_WINDOW
 * frames (static functions of alloy, heap_malloc_slow say, sit between
 * path functions: a path function is always what called them). */
#define PATH_WINDOW 16
static int self_frames(const frame_t *f, int n) {
  int i = 0;
  if (self_shared) {
    while (i < n && in_self(f[i].pc)) i++;
    return i;
  }
  while (i < n && i < 48 && !(f[i].func && in_set(anchors, nanchors, f[i].func))) i++;
  if (i == n || i == 48) return 0; /* no anchor (libgcc gives no function starts): keep all */
  int last = i;
  for (int j = i + 1; j < n && j <= i + PATH_WINDOW; j++)
    if (f[j].func && in_set(path_fns, npath_fns, f[j].func)) last = j;
  return last + 1;
}

/* For the fp method: may frame `index` (just walked by CFI) still be
 * alloy's?  Then the walk goes on with CFI. */
typedef struct {
  int anchor; /* index of the static case's anchor, -1 before it */
} cut_t;

static bool frame_is_self(const frame_t *f, int index, cut_t *c) {
  if (self_shared) return in_self(f->pc);
  if (c->anchor < 0) {
    if (f->func && in_set(anchors, nanchors, f->func)) c->anchor = index;
    return true;
  }
  return index <= c->anchor + PATH_WINDOW;
}

/* Walks the CFI from the registers of the current frame; frames after the
 * first are recorded.  With `fp_after_self`, the walk switches to the
 * frame-pointer chain at the first frame that is not alloy's. */
static NO_ASAN int walk(uintptr_t pc, uintptr_t sp, uintptr_t bp, frame_t *out, int max, bool fp_after_self) {
  uint64_t gen = loader_generation();
  bool first = true;
  cut_t cut = {-1};
  int n = 0;
  while (n < max) {
    rule_t r;
    bool known = rule_get(first ? pc : pc - 1, gen, &r);
    if (!first) {
      out[n] = (frame_t){pc, known ? r.func : 0};
      if (fp_after_self && !frame_is_self(&out[n], n, &cut)) break;
      n++;
    }
    if (!known || (r.flags & RULE_RA_UNDEF)) return n;
    uintptr_t cfa = ((r.flags & RULE_CFA_BP) ? bp : sp) + (intptr_t)r.cfa_off;
    if (r.flags & RULE_CFA_DEREF) cfa = *(const uintptr_t *)cfa;
    if (cfa <= sp || cfa - sp > ((uintptr_t)1 << 30)) return n;
    uintptr_t ra = *(const uintptr_t *)(cfa + (intptr_t)r.ra_off);
    if (r.flags & RULE_BP_SAVED)
      bp = *(const uintptr_t *)(((r.flags & RULE_BP_REL_BP) ? bp : cfa) + (intptr_t)r.bp_off);
    sp = cfa;
    pc = ra;
    first = false;
    if (pc < 4096) return n;
  }
  if (n == max) return n;
  /* The frame-pointer chain from the first program frame (out[n]): each
   * frame's rbp points at the caller's rbp, the return address above it. */
  out[n++] = (frame_t){pc, 0};
  for (uintptr_t fp = bp; n < max;) {
    if (fp < sp || fp - sp > ((uintptr_t)1 << 26) || (fp & 7)) break;
    uintptr_t next = ((const uintptr_t *)fp)[0], ra = ((const uintptr_t *)fp)[1];
    if (ra < 4096) break;
    out[n++] = (frame_t){ra, 0};
    sp = fp + 16; /* the caller's frame lies above the two saved words */
    fp = next;
  }
  return n;
}

static NOINLINE int capture_cfi(frame_t *out, int max, bool fp_after_self) {
#if HAVE_CFI_WALKER
  uintptr_t pc, sp, bp;
  /* rbp first: the compiler may have given pc's output register that name. */
  __asm__ volatile("movq %%rbp, %0\n\tmovq %%rsp, %1\n\tleaq 0(%%rip), %2"
                   : "=&r"(bp), "=&r"(sp), "=&r"(pc));
  int n = walk(pc, sp, bp, out, max, fp_after_self);
  __asm__ volatile("" ::: "memory"); /* no tail call: this frame is the walk's first */
  return n;
#else
  (void)max; /* never chosen here (unwind_init); the walker stays compiled and checked */
  return walk(0, 0, 0, out, 0, fp_after_self);
#endif
}

static NOINLINE int capture_libgcc(frame_t *out, int max) {
  void *buf[160];
  int n = os_backtrace(buf, max < 160 ? max : 160);
  for (int i = 0; i < n; i++) out[i] = (frame_t){(uintptr_t)buf[i], 0};
  return n;
}

/* ----------------------------------------------------------------- API */

#define CAPTURE_MAX 160 /* the profile's 128 frames, plus alloy's own */

void unwind_init(unwind_method_t want, const unwind_path_t *path) {
  method = want;
  if (!self_locate(path) || !HAVE_CFI_WALKER) method = UNWIND_LIBGCC;
  if (method != UNWIND_LIBGCC) {
    size_t mapped;
    cache = os_map_aligned(CACHE_ENTRIES * sizeof(cache_entry_t), os_page_size(), &mapped);
    if (cache == NULL) method = UNWIND_LIBGCC;
  }
  if (method == UNWIND_LIBGCC) {
    frame_t warm[4];
    capture_libgcc(warm, 4); /* dlopens libgcc_s now, not inside a malloc */
  }
  atomic_store_explicit(&ready, true, memory_order_release);
}

const char *unwind_method_name(void) {
  static const char *const names[] = {"cfi", "fp", "libgcc"};
  return names[method];
}

int unwind_capture(uintptr_t *pcs, int max) {
  if (!atomic_load_explicit(&ready, memory_order_acquire)) return 0;
  frame_t frames[CAPTURE_MAX];
  int n = method == UNWIND_LIBGCC ? capture_libgcc(frames, CAPTURE_MAX)
                                  : capture_cfi(frames, CAPTURE_MAX, method == UNWIND_FP);
  int skip = self_frames(frames, n);
  int m = 0;
  for (int i = skip; i < n && m < max; i++) pcs[m++] = frames[i].pc;
  return m;
}
