// larson_sized - larson_like built as C++: blocks come from ::operator new(n)
// and go back through the sized ::operator delete(p, n) (compiled with
// -fsized-deallocation), so an allocator that uses the size it is given
// can skip looking it up.  See larson_like.c for the workload itself.
#include "larson_like.c"
