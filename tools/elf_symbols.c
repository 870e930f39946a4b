/*
 * elf_symbols.c - address -> function name, from ELF files alone (see
 * elf_symbols.h).  Each file is mapped once and its function symbols
 * sorted; a profile's address becomes a file offset through its mapping
 * (start, offset), then a link-time address through the file's PT_LOAD
 * headers, then a name by binary search.  Stripped Debian binaries keep
 * their dynamic symbols (python3 exports most of its C API, redis-server
 * everything); static functions of such files are named only when their
 * debug file is installed.
 */
#include "elf_symbols.h"

#include <elf.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
  uintptr_t addr, size;
  const char *name;
  bool global;
} sym_t;

typedef struct elf_file {
  char *path;
  const char *base;
  bool ok;
  void *map, *dmap; /* the file, and its debug file */
  size_t size, dsize;
  Elf64_Phdr loads[16];
  int nloads;
  sym_t *syms;
  size_t nsyms;
  struct elf_file *next;
} elf_file_t;

typedef struct {
  uintptr_t pc;
  const char *name, *file;
} cache_t;

struct symbolizer {
  const hp_map_t *maps;
  size_t nmaps;
  elf_file_t *files;
  cache_t *cache;
  size_t ncache, capcache;
  char **owned; /* names made up for unknown addresses */
  size_t nowned, capowned;
};

static void *map_file(const char *path, size_t *size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  struct stat st;
  void *p = NULL;
  if (fstat(fd, &st) == 0 && st.st_size >= (off_t)sizeof(Elf64_Ehdr)) {
    p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) p = NULL;
    else *size = (size_t)st.st_size;
  }
  close(fd);
  if (p && (memcmp(p, ELFMAG, SELFMAG) != 0 || ((unsigned char *)p)[EI_CLASS] != ELFCLASS64)) {
    munmap(p, *size);
    p = NULL;
  }
  return p;
}

static const Elf64_Shdr *sections(const void *elf, size_t size, unsigned *n) {
  const Elf64_Ehdr *eh = elf;
  *n = eh->e_shnum;
  if (eh->e_shoff == 0 || eh->e_shoff + (uint64_t)*n * sizeof(Elf64_Shdr) > size) *n = 0;
  return (const Elf64_Shdr *)((const char *)elf + eh->e_shoff);
}

/* /usr/lib/debug/.build-id/ab/cdef....debug, from the GNU build-id note. */
static bool debug_path(const void *elf, size_t size, char *out, size_t cap) {
  unsigned n;
  const Elf64_Shdr *sh = sections(elf, size, &n);
  for (unsigned i = 0; i < n; i++) {
    if (sh[i].sh_type != SHT_NOTE || sh[i].sh_offset + sh[i].sh_size > size) continue;
    const unsigned char *p = (const unsigned char *)elf + sh[i].sh_offset, *end = p + sh[i].sh_size;
    while (p + 12 <= end) {
      uint32_t namesz, descsz, type;
      memcpy(&namesz, p, 4);
      memcpy(&descsz, p + 4, 4);
      memcpy(&type, p + 8, 4);
      const unsigned char *name = p + 12, *desc = name + ((namesz + 3) & ~3u);
      if (desc + descsz > end) break;
      if (type == NT_GNU_BUILD_ID && namesz == 4 && memcmp(name, "GNU", 4) == 0 && descsz > 1) {
        size_t at = (size_t)snprintf(out, cap, "/usr/lib/debug/.build-id/%02x/", desc[0]);
        for (uint32_t k = 1; k < descsz && at + 3 < cap; k++) at += (size_t)snprintf(out + at, cap - at, "%02x", desc[k]);
        snprintf(out + at, cap - at, ".debug");
        return true;
      }
      p = desc + ((descsz + 3) & ~3u);
    }
  }
  return false;
}

/* GCC's names for pieces and clones of a function ("f.part.0",
 * "f.constprop.0", "f.cold", ...) read as the function. */
static const char *clean_name(const char *name, char **owned) {
  const char *at = strchr(name, '@'); /* a version in a debug file: "f@@GLIBC_2.34" */
  if (at && at != name) return *owned = strndup(name, (size_t)(at - name));
  const char *dot = strchr(name, '.');
  if (dot == NULL || dot == name) return name;
  static const char *const suffixes[] = {".part.", ".constprop.", ".isra.", ".cold", ".localalias", ".lto_priv.", ".lto.", ".llvm."};
  for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++)
    if (strncmp(dot, suffixes[i], strlen(suffixes[i])) == 0) {
      *owned = strndup(name, (size_t)(dot - name));
      return *owned;
    }
  return name;
}

static int sym_cmp(const void *a, const void *b) {
  const sym_t *x = a, *y = b;
  if (x->addr != y->addr) return x->addr < y->addr ? -1 : 1;
  return (int)y->global - (int)x->global; /* a global name first among aliases */
}

/* Adds the function symbols of the table of type `type` (SHT_SYMTAB or
 * SHT_DYNSYM); false when the file has none. */
static bool load_symbols(elf_file_t *f, const void *elf, size_t size, uint32_t type, symbolizer_t *s) {
  unsigned n;
  const Elf64_Shdr *sh = sections(elf, size, &n);
  bool found = false;
  for (unsigned i = 0; i < n; i++) {
    if (sh[i].sh_type != type || sh[i].sh_link >= n) continue;
    const Elf64_Shdr *strs = &sh[sh[i].sh_link];
    if (sh[i].sh_offset + sh[i].sh_size > size || strs->sh_offset + strs->sh_size > size) continue;
    const Elf64_Sym *sym = (const Elf64_Sym *)((const char *)elf + sh[i].sh_offset);
    const char *names = (const char *)elf + strs->sh_offset;
    size_t count = sh[i].sh_size / sizeof *sym;
    f->syms = realloc(f->syms, (f->nsyms + count) * sizeof *f->syms);
    for (size_t k = 0; k < count; k++) {
      unsigned t = ELF64_ST_TYPE(sym[k].st_info);
      if ((t != STT_FUNC && t != STT_GNU_IFUNC) || sym[k].st_shndx == SHN_UNDEF || sym[k].st_value == 0 ||
          sym[k].st_name >= strs->sh_size)
        continue;
      char *owned = NULL;
      const char *name = clean_name(names + sym[k].st_name, &owned);
      if (owned) {
        if (s->nowned == s->capowned) {
          s->capowned = s->capowned ? 2 * s->capowned : 64;
          s->owned = realloc(s->owned, s->capowned * sizeof *s->owned);
        }
        s->owned[s->nowned++] = owned;
      }
      f->syms[f->nsyms++] = (sym_t){sym[k].st_value, sym[k].st_size, name,
                                    ELF64_ST_BIND(sym[k].st_info) != STB_LOCAL};
      found = true;
    }
  }
  return found;
}

static void file_load(elf_file_t *f, symbolizer_t *s) {
  f->map = map_file(f->path, &f->size);
  if (f->map == NULL) return;
  const Elf64_Ehdr *eh = f->map;
  const Elf64_Phdr *ph = (const Elf64_Phdr *)((const char *)f->map + eh->e_phoff);
  if (eh->e_phoff + (uint64_t)eh->e_phnum * sizeof *ph <= f->size)
    for (unsigned i = 0; i < eh->e_phnum && f->nloads < 16; i++)
      if (ph[i].p_type == PT_LOAD) f->loads[f->nloads++] = ph[i];
  char dbg[512];
  bool have = load_symbols(f, f->map, f->size, SHT_SYMTAB, s);
  if (!have && debug_path(f->map, f->size, dbg, sizeof dbg) && (f->dmap = map_file(dbg, &f->dsize)))
    have = load_symbols(f, f->dmap, f->dsize, SHT_SYMTAB, s);
  load_symbols(f, f->map, f->size, SHT_DYNSYM, s); /* exported names, when nothing better */
  qsort(f->syms, f->nsyms, sizeof *f->syms, sym_cmp);
  size_t out = 0; /* one symbol per address: the first (global) alias */
  for (size_t i = 0; i < f->nsyms; i++)
    if (out == 0 || f->syms[out - 1].addr != f->syms[i].addr) f->syms[out++] = f->syms[i];
  f->nsyms = out;
  f->ok = true;
}

static elf_file_t *file_get(symbolizer_t *s, const char *path) {
  for (elf_file_t *f = s->files; f; f = f->next)
    if (strcmp(f->path, path) == 0) return f;
  elf_file_t *f = calloc(1, sizeof *f);
  f->path = strdup(path);
  const char *slash = strrchr(f->path, '/');
  f->base = slash ? slash + 1 : f->path;
  f->next = s->files;
  s->files = f;
  file_load(f, s);
  return f;
}

symbolizer_t *symbolizer_new(const hp_map_t *maps, size_t nmaps) {
  symbolizer_t *s = calloc(1, sizeof *s);
  s->maps = maps;
  s->nmaps = nmaps;
  return s;
}

static const char *own(symbolizer_t *s, char *str) {
  if (s->nowned == s->capowned) {
    s->capowned = s->capowned ? 2 * s->capowned : 64;
    s->owned = realloc(s->owned, s->capowned * sizeof *s->owned);
  }
  return s->owned[s->nowned++] = str;
}

static const char *lookup(symbolizer_t *s, uintptr_t pc, const char **file) {
  const hp_map_t *m = NULL;
  for (size_t i = 0; i < s->nmaps && !m; i++)
    if (pc >= s->maps[i].start && pc < s->maps[i].end) m = &s->maps[i];
  char buf[600];
  if (m == NULL) {
    *file = "?";
    snprintf(buf, sizeof buf, "0x%llx", (unsigned long long)pc);
    return own(s, strdup(buf));
  }
  elf_file_t *f = file_get(s, m->path);
  *file = f->base;
  uintptr_t off = pc - m->start + m->offset, vaddr = off;
  for (int i = 0; i < f->nloads; i++)
    if (off >= f->loads[i].p_offset && off < f->loads[i].p_offset + f->loads[i].p_filesz)
      vaddr = off - f->loads[i].p_offset + f->loads[i].p_vaddr;
  size_t lo = 0, hi = f->nsyms;
  while (lo < hi) { /* the first symbol above vaddr */
    size_t mid = (lo + hi) / 2;
    if (f->syms[mid].addr <= vaddr) lo = mid + 1;
    else hi = mid;
  }
  if (lo > 0) {
    const sym_t *y = &f->syms[lo - 1];
    if (vaddr < y->addr + y->size || (y->size == 0 && lo < f->nsyms)) return y->name;
  }
  snprintf(buf, sizeof buf, "%s+0x%llx", f->base, (unsigned long long)vaddr);
  return own(s, strdup(buf));
}

const char *symbolize(symbolizer_t *s, uintptr_t pc, const char **file) {
  if (s->capcache && s->ncache * 2 < s->capcache) {
    for (size_t i = (pc * 0x9E3779B97F4A7C15ull) >> 40 & (s->capcache - 1);; i = (i + 1) & (s->capcache - 1)) {
      if (s->cache[i].name == NULL) break;
      if (s->cache[i].pc == pc) {
        *file = s->cache[i].file;
        return s->cache[i].name;
      }
    }
  } else { /* grow the cache (open addressing, half full at most) */
    size_t cap = s->capcache ? 2 * s->capcache : 1024;
    cache_t *old = s->cache;
    size_t oldcap = s->capcache;
    s->cache = calloc(cap, sizeof *s->cache);
    s->capcache = cap;
    s->ncache = 0;
    for (size_t i = 0; i < oldcap; i++)
      if (old[i].name) {
        size_t j = (old[i].pc * 0x9E3779B97F4A7C15ull) >> 40 & (cap - 1);
        while (s->cache[j].name) j = (j + 1) & (cap - 1);
        s->cache[j] = old[i];
        s->ncache++;
      }
    free(old);
    return symbolize(s, pc, file);
  }
  const char *name = lookup(s, pc, file);
  size_t j = (pc * 0x9E3779B97F4A7C15ull) >> 40 & (s->capcache - 1);
  while (s->cache[j].name) j = (j + 1) & (s->capcache - 1);
  s->cache[j] = (cache_t){pc, name, *file};
  s->ncache++;
  return name;
}

void symbolizer_free(symbolizer_t *s) {
  for (elf_file_t *f = s->files, *next; f; f = next) {
    next = f->next;
    if (f->map) munmap(f->map, f->size);
    if (f->dmap) munmap(f->dmap, f->dsize);
    free(f->syms);
    free(f->path);
    free(f);
  }
  for (size_t i = 0; i < s->nowned; i++) free(s->owned[i]);
  free(s->owned);
  free(s->cache);
  free(s);
}
