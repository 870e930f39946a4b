/*
 * cxx.cpp - edge test (f): a C++ program on alloy (run under LD_PRELOAD).
 *
 * Checks that the C++ allocation operators resolve into liballoy.so, then
 * exercises new/delete, new[]/delete[], sized delete (-fsized-deallocation),
 * aligned new (alignas(64) and alignas(4096) types, arrays of them), nothrow
 * new (nullptr on an impossible size), throwing new (std::bad_alloc, after
 * the new-handler ran), and churn of std::vector, std::string and std::map,
 * also in threads with thread_local containers whose destructors free at
 * thread exit.  Contents are verified throughout.
 */
#include <dlfcn.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <new>
#include <string>
#include <thread>
#include <vector>

static int failures;
#define CHECK(cond)                                                             \
  do {                                                                          \
    if (!(cond)) {                                                              \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                               \
    }                                                                           \
  } while (0)

static void require_from_alloy(const char *sym)
{
  void *p = dlsym(RTLD_DEFAULT, sym);
  Dl_info info;
  if (!p || !dladdr(p, &info) || !info.dli_fname || !std::strstr(info.dli_fname, "liballoy")) {
    std::fprintf(stderr, "%s does not resolve into liballoy.so (%s)\n", sym,
                 p && info.dli_fname ? info.dli_fname : "unresolved");
    std::exit(1);
  }
}

template <size_t N> struct Obj {
  unsigned char bytes[N];
  explicit Obj(unsigned char v) { std::memset(bytes, v, N); }
  bool ok(unsigned char v) const
  {
    for (size_t i = 0; i < N; i++)
      if (bytes[i] != v)
        return false;
    return true;
  }
};

struct alignas(64) A64 {
  char c[100];
  int tag = 64;
};
struct alignas(4096) A4096 {
  char c[5000];
  int tag = 4096;
};

/* Has a destructor, so new[] stores the count and delete[] gets the size. */
struct Counted {
  static int live;
  std::string s;
  Counted() : s(40, 'c') { live++; }
  ~Counted() { live--; }
};
int Counted::live = 0;

template <size_t N> static void one_size()
{
  std::vector<Obj<N> *> v;
  for (int i = 0; i < 200; i++)
    v.push_back(new Obj<N>(static_cast<unsigned char>(i)));
  for (int i = 0; i < 200; i++) {
    CHECK(v[i]->ok(static_cast<unsigned char>(i)));
    delete v[i]; /* sized delete */
  }
  unsigned char *raw = static_cast<unsigned char *>(::operator new[](N * 7));
  std::memset(raw, 0x3c, N * 7);
  CHECK(raw[N * 7 - 1] == 0x3c);
  ::operator delete[](raw, N * 7);
}

static void basic_new_delete()
{
  one_size<1>();
  one_size<24>();
  one_size<200>();
  one_size<3000>();
  one_size<70000>();
  one_size<(3u << 20)>();
  int *ints = new int[1000]();
  for (int i = 0; i < 1000; i++)
    CHECK(ints[i] == 0);
  delete[] ints;
  Counted *c = new Counted[37];
  CHECK(Counted::live == 37);
  CHECK(c[36].s == std::string(40, 'c'));
  delete[] c;
  CHECK(Counted::live == 0);
}

static void aligned_new()
{
  std::vector<A64 *> a;
  std::vector<A4096 *> b;
  for (int i = 0; i < 100; i++) {
    a.push_back(new A64);
    CHECK(reinterpret_cast<uintptr_t>(a.back()) % 64 == 0);
    std::memset(a.back()->c, i, sizeof a.back()->c);
  }
  for (int i = 0; i < 20; i++) {
    b.push_back(new A4096);
    CHECK(reinterpret_cast<uintptr_t>(b.back()) % 4096 == 0);
    std::memset(b.back()->c, i, sizeof b.back()->c);
  }
  for (int i = 0; i < 100; i++) {
    CHECK(a[i]->c[99] == static_cast<char>(i) && a[i]->tag == 64);
    delete a[i];
  }
  for (int i = 0; i < 20; i++) {
    CHECK(b[i]->c[4999] == static_cast<char>(i) && b[i]->tag == 4096);
    delete b[i];
  }
  A64 *arr = new A64[33];
  CHECK(reinterpret_cast<uintptr_t>(arr) % 64 == 0);
  delete[] arr;
  A4096 *arr2 = new A4096[3];
  CHECK(reinterpret_cast<uintptr_t>(arr2) % 4096 == 0);
  CHECK(arr2[2].tag == 4096);
  delete[] arr2;
  void *p = ::operator new(100, std::align_val_t{256}, std::nothrow);
  CHECK(p && reinterpret_cast<uintptr_t>(p) % 256 == 0);
  ::operator delete(p, std::align_val_t{256});
}

static int handler_calls;
static void new_handler()
{
  handler_calls++;
  std::set_new_handler(nullptr); /* give up: the next failure throws */
}

static void failing_new()
{
  volatile size_t huge = static_cast<size_t>(1) << 62;
  char *p = new (std::nothrow) char[huge];
  CHECK(p == nullptr);
  void *q = ::operator new(huge, std::nothrow);
  CHECK(q == nullptr);
  void *r = ::operator new(huge, std::align_val_t{64}, std::nothrow);
  CHECK(r == nullptr);
  char *ok = new (std::nothrow) char[1000];
  CHECK(ok != nullptr);
  delete[] ok;

  bool threw = false;
  std::set_new_handler(new_handler);
  try {
    char *x = new char[huge];
    x[0] = 1;
    delete[] x;
  } catch (const std::bad_alloc &) {
    threw = true;
  }
  CHECK(threw);
  CHECK(handler_calls == 1);
  threw = false;
  try {
    void *x = ::operator new(huge, std::align_val_t{4096});
    ::operator delete(x, std::align_val_t{4096});
  } catch (const std::bad_alloc &) {
    threw = true;
  }
  CHECK(threw);
}

/* Deterministic container churn; returns a checksum of what it saw. */
static uint64_t churn(unsigned seed, int rounds)
{
  std::map<std::string, std::vector<int>> m;
  uint64_t sum = 0, x = seed;
  for (int r = 0; r < rounds; r++) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    std::string key = "key-" + std::to_string(x % 5000) + std::string(x % 40, 'k');
    std::vector<int> &v = m[key];
    for (unsigned i = 0; i < (x >> 40) % 100; i++)
      v.push_back(static_cast<int>(i ^ r));
    if (r % 3 == 0) {
      auto it = m.lower_bound("key-" + std::to_string((x >> 20) % 5000));
      if (it != m.end()) {
        for (int e : it->second)
          sum += static_cast<unsigned>(e);
        sum += it->first.size();
        m.erase(it);
      }
    }
    std::string s;
    for (int i = 0; i < 20; i++)
      s += std::to_string(i * r);
    sum += s.size();
  }
  for (auto &kv : m)
    sum += kv.second.size() * 31 + kv.first.size();
  return sum;
}

thread_local std::vector<std::string> tl_strings;
thread_local std::map<int, std::string> tl_map;
static std::atomic<int> threads_done{0};

static void thread_body(unsigned id, uint64_t *out)
{
  for (int i = 0; i < 500; i++) {
    tl_strings.push_back(std::string(static_cast<size_t>(i % 300), static_cast<char>('a' + id)));
    tl_map[i] = tl_strings.back();
  }
  *out = churn(id, 20000);
  threads_done++;
  /* tl_strings and tl_map are destroyed (freed) as the thread exits. */
}

int main()
{
  require_from_alloy("malloc");
  const char *ops[] = {"_Znwm", "_Znam", "_ZdlPv", "_ZdaPv", "_ZdlPvm", "_ZdaPvm",
                       "_ZnwmRKSt9nothrow_t", "_ZnwmSt11align_val_t", "_ZdlPvSt11align_val_t",
                       "_ZdlPvmSt11align_val_t"};
  for (const char *op : ops)
    require_from_alloy(op);

  basic_new_delete();
  aligned_new();
  failing_new();
  uint64_t single = churn(1, 20000);
  CHECK(single == churn(1, 20000)); /* deterministic */

  for (int wave = 0; wave < 4; wave++) {
    std::vector<std::thread> ts;
    std::vector<uint64_t> sums(8);
    for (unsigned i = 0; i < 8; i++)
      ts.emplace_back(thread_body, i + 1, &sums[i]);
    for (auto &t : ts)
      t.join();
    CHECK(sums[0] == churn(1, 20000));
  }
  CHECK(threads_done == 32);
  std::printf("cxx: checksum %llu, %d failures\n", static_cast<unsigned long long>(single),
              failures);
  return failures ? 1 : 0;
}
