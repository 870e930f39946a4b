/*
 * elf_symbols.h - names the addresses of a heap profile from the ELF symbol
 * tables of the files mapped in the profiled process (its MAPPED_LIBRARIES
 * section), with no other tool: .symtab when the file has one, else a
 * separate debug file found by build id (/usr/lib/debug/.build-id), else
 * the dynamic symbols.  An address no symbol covers is named
 * "<file>+0x<offset>".
 */
#ifndef ALLOY_TOOLS_ELF_SYMBOLS_H
#define ALLOY_TOOLS_ELF_SYMBOLS_H

#include "heap_profile.h"

typedef struct symbolizer symbolizer_t;

symbolizer_t *symbolizer_new(const hp_map_t *maps, size_t nmaps);
/* The function containing pc (a name owned by the symbolizer); *file gets
 * the mapped file's base name (or "?"). */
const char *symbolize(symbolizer_t *s, uintptr_t pc, const char **file);
void symbolizer_free(symbolizer_t *s);

#endif
