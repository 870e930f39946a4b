//! alloy as the global allocator of this test program: many threads, every
//! alignment up to 4096, sizes from one byte to big blocks, realloc both
//! ways, zeroed memory, and the statistics through mallctl.

use alloy_malloc::{stats, Alloy};
use std::alloc::{GlobalAlloc, Layout};
use std::collections::HashMap;
use std::thread;

#[global_allocator]
static GLOBAL: Alloy = Alloy;

const ALIGNS: [usize; 13] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096];
const SIZES: [usize; 12] = [1, 3, 8, 24, 100, 1000, 4096, 5000, 65536, 70000, 300_000, 3 << 20];

fn fill(p: *mut u8, n: usize, seed: u8) {
    for i in (0..n).step_by(61) {
        unsafe { *p.add(i) = seed.wrapping_add(i as u8) };
    }
}

fn check(p: *const u8, n: usize, seed: u8) {
    for i in (0..n).step_by(61) {
        assert_eq!(unsafe { *p.add(i) }, seed.wrapping_add(i as u8), "byte {} of {}", i, n);
    }
}

fn layouts(seed: u8) {
    for &align in ALIGNS.iter() {
        for &size in SIZES.iter() {
            let layout = Layout::from_size_align(size, align).unwrap();
            unsafe {
                let p = GLOBAL.alloc(layout);
                assert!(!p.is_null(), "alloc {:?}", layout);
                assert_eq!(p as usize % align, 0, "alignment of {:?}", layout);
                assert!(alloy_malloc::usable_size(p) >= size);
                fill(p, size, seed);
                // grow, then shrink, keeping the alignment and the bytes
                let q = GLOBAL.realloc(p, layout, size * 2 + 1);
                assert!(!q.is_null());
                assert_eq!(q as usize % align, 0, "alignment after growing {:?}", layout);
                check(q, size, seed);
                let grown = Layout::from_size_align(size * 2 + 1, align).unwrap();
                let r = GLOBAL.realloc(q, grown, size / 2 + 1);
                assert!(!r.is_null());
                assert_eq!(r as usize % align, 0, "alignment after shrinking {:?}", layout);
                check(r, size / 2 + 1, seed);
                GLOBAL.dealloc(r, Layout::from_size_align(size / 2 + 1, align).unwrap());

                let z = GLOBAL.alloc_zeroed(layout);
                assert!(!z.is_null());
                assert_eq!(z as usize % align, 0);
                let zero = |i: usize| *z.add(i) == 0;
                assert!((0..size).step_by(61).all(zero) && zero(size - 1), "alloc_zeroed {:?} not zero", layout);
                GLOBAL.dealloc(z, layout);
            }
        }
    }
}

#[test]
fn threads_with_varied_layouts() {
    let workers: Vec<_> = (0..4u8)
        .map(|t| {
            thread::spawn(move || {
                for round in 0..3u8 {
                    layouts(t.wrapping_mul(31).wrapping_add(round));
                }
                // ordinary collections on the same allocator
                let mut map = HashMap::new();
                for i in 0..20_000u32 {
                    map.insert(i, format!("value {} of thread {}", i, t));
                }
                let mut v: Vec<u64> = Vec::new();
                for i in 0..100_000u64 {
                    v.push(i * i);
                }
                assert_eq!(map[&777], format!("value 777 of thread {}", t));
                assert_eq!(v[999], 999 * 999);
                v.len() + map.len()
            })
        })
        .collect();
    for w in workers {
        assert_eq!(w.join().unwrap(), 120_000);
    }
}

#[test]
fn blocks_cross_threads() {
    // allocated here, freed there: alloy's remote frees
    let boxes: Vec<Box<[u8; 200]>> = (0..5000).map(|i| Box::new([i as u8; 200])).collect();
    let strings: Vec<String> = (0..5000).map(|i| "x".repeat(i % 300)).collect();
    let handle = thread::spawn(move || {
        let sum: usize = boxes.iter().map(|b| b[199] as usize).sum::<usize>() + strings.iter().map(|s| s.len()).sum::<usize>();
        drop(boxes);
        drop(strings);
        sum
    });
    assert!(handle.join().unwrap() > 0);
}

#[test]
fn statistics_through_mallctl() {
    let before = {
        stats::epoch().unwrap();
        stats::allocated().unwrap()
    };
    let big = vec![7u8; 64 << 20];
    stats::epoch().unwrap();
    let during = stats::allocated().unwrap();
    // other tests' threads may free meanwhile, by less than this
    assert!(during >= before + (48 << 20), "stats.allocated {} then {}", before, during);
    assert!(stats::active().unwrap() >= 64 << 20);
    assert!(stats::mapped().unwrap() >= stats::active().unwrap());
    assert!(stats::resident().unwrap() > 0);
    assert!(stats::metadata().unwrap() > 0);
    assert!(stats::retained().is_ok());
    assert_eq!(big[12345], 7);
    drop(big);
    stats::epoch().unwrap();
    let after = stats::allocated().unwrap();
    assert!(after + (48 << 20) <= during, "stats.allocated {} after freeing 64 MiB of {}", after, during);
    assert_eq!(stats::read_usize("no.such.name"), Err(alloy_malloc::Error(2))); // ENOENT
    assert_eq!(stats::read_usize("arenas.quantum"), Ok(16));
}
