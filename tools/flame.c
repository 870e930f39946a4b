/*
 * flame.c - `alloy flame PROFILE [-o OUT.svg]`: a flame graph of the bytes
 * in use by call stack, as a static SVG (no script: it opens in any
 * browser and hovering a frame shows its name, bytes and share through the
 * SVG <title>).  The root ("all") is at the bottom, callers below callees;
 * a frame's width is the estimated bytes allocated beneath it and still in
 * use; siblings are in alphabetical order, so two graphs of one program
 * compare side by side.  Names come from elf_symbols.c: no other tool.
 */
#include "elf_symbols.h"
#include "heap_profile.h"
#include "prof_tools.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define WIDTH 1200.0
#define MARGIN 10.0
#define FRAME_H 17
#define TOP 58     /* title and subtitle */
#define BOTTOM 24
#define CHAR_W 6.6 /* of the 12 px monospace labels */
#define MIN_W 1.0  /* narrower frames are not drawn */
#define TALL_W 12.0 /* the picture is as tall as the frames this wide need; a
                     * thin tower of deeper frames (one sample's import chain)
                     * is cut at the top */

typedef struct node {
  const char *name, *file;
  double bytes;
  struct node *child, *next;
} node_t;

static node_t *node_child(node_t *parent, const char *name, const char *file) {
  node_t **link = &parent->child;
  for (; *link; link = &(*link)->next)
    if (strcmp((*link)->name, name) == 0) return *link;
  node_t *n = calloc(1, sizeof *n);
  n->name = name;
  n->file = file;
  *link = n;
  return n;
}

/* Levels of frames wide enough to be drawn: a thin tower of deep frames
 * (an import chain) does not make the picture tall. */
static int depth_of(const node_t *n, double min_bytes) {
  if (n->bytes < min_bytes) return 0;
  int d = 0;
  for (const node_t *c = n->child; c; c = c->next) {
    int cd = depth_of(c, min_bytes);
    if (cd > d) d = cd;
  }
  return d + 1;
}

static int by_name(const void *a, const void *b) {
  return strcmp((*(node_t *const *)a)->name, (*(node_t *const *)b)->name);
}

static void sort_children(node_t *n) {
  size_t k = 0;
  for (node_t *c = n->child; c; c = c->next) k++;
  if (k > 1) {
    node_t **v = malloc(k * sizeof *v);
    size_t i = 0;
    for (node_t *c = n->child; c; c = c->next) v[i++] = c;
    qsort(v, k, sizeof *v, by_name);
    for (i = 0; i + 1 < k; i++) v[i]->next = v[i + 1];
    v[k - 1]->next = NULL;
    n->child = v[0];
    free(v);
  }
  for (node_t *c = n->child; c; c = c->next) sort_children(c);
}

static void free_tree(node_t *n) {
  for (node_t *c = n->child, *next; c; c = next) {
    next = c->next;
    free_tree(c);
  }
  free(n);
}

static void xml_text(FILE *f, const char *s, size_t max) {
  for (size_t i = 0; s[i] && i < max; i++) {
    switch (s[i]) {
    case '&': fputs("&amp;", f); break;
    case '<': fputs("&lt;", f); break;
    case '>': fputs("&gt;", f); break;
    case '"': fputs("&quot;", f); break;
    default: fputc(s[i], f);
    }
  }
}

/* A warm colour per name, the same in every graph; grey for an address no
 * symbol names ("file+0x..."). */
static void color(const char *name, unsigned *r, unsigned *g, unsigned *b) {
  uint32_t h = 2166136261u;
  for (const char *p = name; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
  if (strstr(name, "+0x")) {
    *r = *g = *b = 190 + h % 30;
    return;
  }
  *r = 205 + h % 50;
  *g = 90 + (h >> 8) % 140;
  *b = 30 + (h >> 16) % 50;
}

typedef struct {
  FILE *f;
  double total, scale;
  int height;
} draw_t;

static void draw(const draw_t *d, const node_t *n, double x, int level) {
  double w = n->bytes * d->scale;
  double y = d->height - BOTTOM - (level + 1) * FRAME_H;
  if (w < MIN_W || y < TOP) return;
  unsigned r, g, b;
  color(n->name, &r, &g, &b);
  char size[32];
  format_bytes(size, sizeof size, n->bytes);
  fprintf(d->f, "<g><title>");
  xml_text(d->f, n->name, 4096);
  if (n->file) {
    fputs(" (", d->f);
    xml_text(d->f, n->file, 256);
    fputs(")", d->f);
  }
  fprintf(d->f, ": %s, %.1f%%</title><rect x=\"%.1f\" y=\"%.0f\" width=\"%.1f\" height=\"%d\" rx=\"2\" fill=\"rgb(%u,%u,%u)\"/>",
          size, 100.0 * n->bytes / d->total, x, y, w, FRAME_H - 1, r, g, b);
  size_t fit = (size_t)((w - 6) / CHAR_W);
  if (fit >= 3) {
    fprintf(d->f, "<text x=\"%.1f\" y=\"%.0f\">", x + 3, y + FRAME_H - 5);
    size_t len = strlen(n->name);
    xml_text(d->f, n->name, len <= fit ? len : fit - 2);
    if (len > fit) fputs("..", d->f);
    fputs("</text>", d->f);
  }
  fputs("</g>\n", d->f);
  for (const node_t *c = n->child; c; c = c->next) {
    draw(d, c, x, level + 1);
    x += c->bytes * d->scale;
  }
}

static node_t *build_tree(const heap_profile_t *p, symbolizer_t *sym) {
  node_t *root = calloc(1, sizeof *root);
  root->name = "all";
  for (size_t i = 0; i < p->nentries; i++) {
    const hp_entry_t *e = &p->entries[i];
    node_t *n = root;
    root->bytes += e->bytes;
    for (unsigned k = e->depth; k-- > 0;) {
      const char *file;
      const char *name = symbolize(sym, e->pcs[k], &file);
      n = node_child(n, name, file);
      n->bytes += e->bytes;
    }
  }
  sort_children(root);
  return root;
}

static void write_svg(FILE *f, const heap_profile_t *p, const node_t *root, const char *profile) {
  double all = root->bytes > 0 ? root->bytes : 1, scale = (WIDTH - 2 * MARGIN) / all;
  int height = TOP + BOTTOM + depth_of(root, TALL_W / scale) * FRAME_H;
  draw_t d = {f, all, scale, height};
  char total[32], rate[32];
  format_bytes(total, sizeof total, p->bytes);
  format_bytes(rate, sizeof rate, (double)p->rate);
  fprintf(f, "<?xml version=\"1.0\" standalone=\"no\"?>\n"
             "<svg version=\"1.1\" width=\"%.0f\" height=\"%d\" viewBox=\"0 0 %.0f %d\" "
             "xmlns=\"http://www.w3.org/2000/svg\">\n"
             "<style>text { font-family: monospace; font-size: 12px; fill: #000; } "
             ".title { font-size: 17px; font-family: sans-serif; } .sub { font-size: 12px; fill: #444; font-family: sans-serif; }</style>\n"
             "<rect width=\"100%%\" height=\"100%%\" fill=\"#f8f8f0\"/>\n",
          WIDTH, height, WIDTH, height);
  fprintf(f, "<text class=\"title\" x=\"%.0f\" y=\"24\" text-anchor=\"middle\">Heap in use by call stack (alloy flame)</text>\n",
          WIDTH / 2);
  fprintf(f, "<text class=\"sub\" x=\"%.0f\" y=\"44\" text-anchor=\"middle\">", WIDTH / 2);
  xml_text(f, profile, 300);
  fprintf(f, ": %s in ~%.0f blocks, estimated from %llu samples (1 per %s allocated); width = bytes in use, callers below callees</text>\n",
          total, p->blocks, (unsigned long long)p->samples, rate);
  draw(&d, root, MARGIN, 0);
  fprintf(f, "</svg>\n");
}

int flame_write(const char *profile, const char *svg) {
  heap_profile_t p;
  char err[512];
  if (heap_profile_load(profile, &p, err, sizeof err) != 0) {
    fprintf(stderr, "alloy flame: %s\n", err);
    return -1;
  }
  FILE *f = fopen(svg, "w");
  if (f == NULL) {
    fprintf(stderr, "alloy flame: cannot write %s\n", svg);
    heap_profile_free(&p);
    return -1;
  }
  symbolizer_t *sym = symbolizer_new(p.maps, p.nmaps);
  node_t *root = build_tree(&p, sym);
  write_svg(f, &p, root, profile);
  int rc = fclose(f) == 0 ? 0 : -1;
  if (rc) fprintf(stderr, "alloy flame: cannot write %s\n", svg);
  free_tree(root);
  symbolizer_free(sym);
  heap_profile_free(&p);
  return rc;
}
