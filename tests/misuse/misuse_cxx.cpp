/*
 * misuse_cxx.cpp - the C++ cases of the misuse test: run by
 * `misuse_preload --cxx misuse_cxx` (under LD_PRELOAD=liballoy.so), one case
 * per process:  misuse_cxx CASE FD
 *
 *   cxx_sized_delete_wrong          ::operator delete(p, 5000) of a 100-byte block
 *   cxx_noabort_sized_delete_wrong  the same (the runner sets abort_on_error:false)
 *   cxx_sized_delete_base           `delete base` of a Derived (4016 bytes) through a
 *                                   Base* without a virtual destructor: the
 *                                   compiler passes sizeof(Base) = 16
 *   cxx_double_delete               delete p; delete p;
 *   cxx_sized_ok                    correct sized, array and aligned deletes of
 *                                   all sizes (also unsized aligned delete): never
 *                                   reported
 *
 * Writes the address it is about to misuse to FD (see misuse.c).
 * Built with -fsized-deallocation -faligned-new.
 */
#include <dlfcn.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

static int addr_fd = -1;

[[noreturn]] static void die(const char *what)
{
  std::fprintf(stderr, "misuse_cxx: %s\n", what);
  _exit(2);
}

static void tell(const void *p)
{
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  if (write(addr_fd, &a, sizeof a) != static_cast<ssize_t>(sizeof a))
    die("cannot write the address");
  close(addr_fd);
}

/* Keeps the compiler from eliding or reasoning about allocations. */
template <class T> static T *opaque(T *p)
{
  asm volatile("" : "+r"(p) : : "memory");
  return p;
}

struct Base {
  char a[16];
};
struct Derived : Base {
  char big[4000];
};

template <size_t N> struct Obj {
  unsigned char b[N];
  Obj() { std::memset(b, 0x5a, N); }
  ~Obj() { std::memset(b, 0, N); } /* non-trivial: new[] keeps a count cookie */
};

struct Plain64 {
  char c[64];
};

struct alignas(64) A64 {
  char c[100];
};
struct alignas(4096) A4K {
  char c[5000];
};
struct alignas(256) A256 {
  char c[24];
  ~A256() { c[0] = 0; }
};

static void after(void)
{
  /* Still here: fine with abort_on_error:false; the allocator must work. */
  std::fprintf(stderr, "misuse_cxx: the call returned\n");
  for (int i = 0; i < 1000; i++) {
    char *p = opaque(new char[100 + i]);
    std::memset(p, 1, 100 + i);
    delete[] p;
  }
  _exit(0);
}

template <size_t N> static void sized_ok_one(int rounds)
{
  for (int i = 0; i < rounds; i++) {
    Obj<N> *o = opaque(new Obj<N>);
    delete o; /* operator delete(void *, sizeof(Obj<N>)) */
    Obj<N> *arr = opaque(new Obj<N>[(size_t)i % 5 + 1]);
    delete[] arr; /* operator delete[](void *, n * N + cookie) */
  }
}

static void sized_ok(void)
{
  sized_ok_one<1>(50);
  sized_ok_one<8>(50);
  sized_ok_one<17>(50);
  sized_ok_one<100>(50);
  sized_ok_one<1000>(50);
  sized_ok_one<5000>(20);
  sized_ok_one<20000>(20);
  sized_ok_one<70000>(10);
  sized_ok_one<300000>(5);
  sized_ok_one<3000000>(3);
  for (size_t n = 1; n < 200000; n = n * 3 / 2 + 1) {
    void *p = opaque(::operator new(n));
    std::memset(p, 7, n);
    ::operator delete(p, n);
    p = opaque(::operator new[](n));
    ::operator delete[](p, n);
  }
  for (int i = 0; i < 50; i++) {
    A64 *a = opaque(new A64);
    delete a; /* sized aligned delete */
    A4K *b = opaque(new A4K);
    delete b;
    A256 *c = opaque(new A256[(size_t)i % 7 + 1]);
    delete[] c;
    /* Unsized aligned delete (as from code built without sized deallocation). */
    void *p = opaque(::operator new(100, std::align_val_t(64)));
    ::operator delete(p, std::align_val_t(64));
    p = opaque(::operator new[](5000, std::align_val_t(4096)));
    ::operator delete[](p, std::align_val_t(4096));
    p = opaque(::operator new(300000, std::align_val_t(128)));
    ::operator delete(p, 300000, std::align_val_t(128));
  }
  _exit(0);
}

int main(int argc, char **argv)
{
  if (argc != 3) {
    std::fprintf(stderr, "usage: misuse_cxx CASE FD\n");
    return 2;
  }
  Dl_info info;
  void *sym = dlsym(RTLD_DEFAULT, "_ZdlPvm");
  if (!sym || !dladdr(sym, &info) || !info.dli_fname || !std::strstr(info.dli_fname, "liballoy"))
    die("operator delete(void *, size_t) does not come from liballoy.so");
  addr_fd = std::atoi(argv[2]);
  const char *c = argv[1];
  if (!std::strcmp(c, "cxx_sized_delete_wrong") ||
      !std::strcmp(c, "cxx_noabort_sized_delete_wrong")) {
    void *p = opaque(::operator new(100));
    std::memset(p, 1, 100);
    tell(p);
    ::operator delete(p, 5000);
    after();
  }
  if (!std::strcmp(c, "cxx_sized_delete_base")) {
    Base *b = opaque(new Derived());
    tell(b);
    delete b; /* UB, and exactly what sized-delete checking catches */
    after();
  }
  if (!std::strcmp(c, "cxx_double_delete")) {
    Plain64 *o = opaque(new Plain64);
    delete o; /* operator delete(void *, 64): no destructor writes to the block */
    tell(o);
    delete opaque(o);
    after();
  }
  if (!std::strcmp(c, "cxx_sized_ok"))
    sized_ok();
  die("unknown case");
}
