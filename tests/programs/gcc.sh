#!/bin/sh
# gcc.sh - `gcc -O2 -c` of a generated C file with thousands of functions
# (loops, switches, structs, string tables) under glibc and under alloy (the
# preload reaches cc1 too); the objects' disassembly of .text and `size`
# output must be identical.
. "$(dirname "$0")/lib.sh"
skip_unless gcc
skip_unless objdump
skip_unless awk
awk -v NFUNC=2000 'BEGIN {
  print "#include <string.h>";
  print "struct s { int a, b; double d; char name[16]; };";
  for (i = 0; i < 100; i++) printf "int ext%d(int, struct s *);\n", i;
  for (i = 0; i < NFUNC; i++) {
    printf "static const char *tab%d[] = {\"%x\", \"%d\", \"f%d\"};\n", i, i * 2654435761 % 65536, i, i;
    printf "int f%d(int x, struct s *p) {\n", i;
    printf "  int acc = %d;\n", i;
    if (i % 4 == 0) {
      printf "  for (int k = 0; k < (x & %d) + 3; k++)\n", i % 31 + 1;
      printf "    acc += (k * %d) ^ (acc >> %d);\n", i % 97 + 1, i % 7 + 1;
    }
    printf "  if (acc & %d) acc -= p->a * %d; else acc += p->b;\n", i % 64 + 1, i % 11;
    printf "  switch (x %% %d) {\n", i % 9 + 2;
    for (c = 0; c < i % 9 + 2; c++)
      printf "  case %d: acc = acc * %d + %d; p->d += acc * 0.%d; break;\n", c, c + 3, i, c + 1;
    print  "  default: break; }";
    printf "  memcpy(p->name, tab%d[x & 1], 4);\n", i;
    if (i > 0) printf "  if (x > %d) acc += ext%d(x - %d, p);\n", i % 50 + 10, i % 100, i % 50 + 11;
    print  "  return acc + (int)strlen(p->name);";
    print  "}";
  }
}' >"$T/big.c"
echo "source: $(wc -l <"$T/big.c") lines"
mkdir -p "$T/ref" "$T/alloy"
# Same file names in both runs, so the tools' outputs can be compared whole.
ref gcc sh -c "cd '$T/ref' && gcc -O2 -c ../big.c -o big.o"
on_alloy gcc sh -c "cd '$T/alloy' && gcc -O2 -c ../big.c -o big.o"
for d in ref alloy; do
  (cd "$T/$d" && objdump -d -j .text big.o >text.dis && size big.o >size.txt) ||
    bad "objdump/size failed on the $d object"
done
if cmp -s "$T/ref/text.dis" "$T/alloy/text.dis"; then
  echo "gcc: .text disassembly identical ($(wc -l <"$T/ref/text.dis") lines)"
else
  bad "gcc: .text differs between the glibc and alloy compilations"
  diff "$T/ref/text.dis" "$T/alloy/text.dis" | head -n 20
fi
if cmp -s "$T/ref/size.txt" "$T/alloy/size.txt"; then
  echo "gcc: size identical: $(tail -n 1 "$T/ref/size.txt")"
else
  bad "gcc: size output differs"
  cat "$T/ref/size.txt" "$T/alloy/size.txt"
fi
finish
