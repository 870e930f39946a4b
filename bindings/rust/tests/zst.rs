//! Zero-sized types never reach the allocator: Rust handles them itself.
//! Counted around alloy.  Built with `harness = false` (Cargo.toml): libtest's
//! harness runs a test on a thread of its own while its main thread goes on
//! allocating (three calls counted in one CI run), so the count would not be
//! this test's alone; here main is the only thread.

use alloy_malloc::Alloy;
use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static CALLS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        CALLS.fetch_add(1, Ordering::Relaxed);
        Alloy.alloc(l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        CALLS.fetch_add(1, Ordering::Relaxed);
        Alloy.alloc_zeroed(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        CALLS.fetch_add(1, Ordering::Relaxed);
        Alloy.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        CALLS.fetch_add(1, Ordering::Relaxed);
        Alloy.realloc(p, l, n)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Debug, PartialEq)]
struct Nothing;

fn main() {
    zero_sized_types_and_empty_collections();
    println!("test zero_sized_types_and_empty_collections ... ok");
}

fn zero_sized_types_and_empty_collections() {
    let before = CALLS.load(Ordering::Relaxed);
    let mut units: Vec<()> = Vec::new();
    for _ in 0..1_000_000 {
        units.push(());
    }
    let b = Box::new(Nothing);
    let many: Vec<Nothing> = (0..1000).map(|_| Nothing).collect();
    let empty: Vec<u64> = Vec::with_capacity(0);
    let s = String::new();
    assert_eq!(units.len(), 1_000_000);
    assert_eq!(*b, Nothing);
    assert_eq!(many.len(), 1000);
    assert!(empty.is_empty() && s.is_empty());
    drop((units, b, many, empty, s));
    assert_eq!(CALLS.load(Ordering::Relaxed), before, "a zero-sized value reached the allocator");

    // and a sized one does, through alloy
    let v = vec![1u32; 10];
    assert!(CALLS.load(Ordering::Relaxed) > before);
    assert!(unsafe { alloy_malloc::usable_size(v.as_ptr() as *const u8) } >= 40);
}
