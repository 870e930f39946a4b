//! alloy as Rust's global allocator.
//!
//! ```no_run
//! use alloy_malloc::Alloy;
//!
//! #[global_allocator]
//! static GLOBAL: Alloy = Alloy;
//!
//! fn main() {
//!     let v = vec![1u8; 1 << 20];
//!     alloy_malloc::stats::epoch().unwrap();
//!     assert!(alloy_malloc::stats::allocated().unwrap() >= v.len());
//! }
//! ```
//!
//! [`Alloy`] calls alloy's prefixed API (`alloy_malloc`, `alloy_mallocx`,
//! `alloy_sdallocx`, `alloy_rallocx`, ...), which `build.rs` compiles from
//! the repository's C sources: the C library's `malloc` is left to the rest
//! of the process.  Every free passes its size, so alloy checks it as it
//! checks C's `free_sized`.  [`stats`] reads alloy's statistics through
//! jemalloc's `mallctl` names.
#![no_std]

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::c_void;
use core::fmt;

extern "C" {
    fn alloy_malloc(size: usize) -> *mut c_void;
    fn alloy_calloc(count: usize, size: usize) -> *mut c_void;
    fn alloy_realloc(ptr: *mut c_void, size: usize) -> *mut c_void;
    fn alloy_mallocx(size: usize, flags: i32) -> *mut c_void;
    fn alloy_rallocx(ptr: *mut c_void, size: usize, flags: i32) -> *mut c_void;
    fn alloy_sdallocx(ptr: *mut c_void, size: usize, flags: i32);
    fn alloy_usable_size(ptr: *const c_void) -> usize;
    fn alloy_mallctl(name: *const u8, oldp: *mut c_void, oldlenp: *mut usize, newp: *mut c_void, newlen: usize) -> i32;
}

/// Every block of alloy is aligned to 16 bytes (`max_align_t`), whatever its
/// size: smaller alignments need no flag.
const MIN_ALIGN: usize = 16;
/// jemalloc's MALLOCX_ZERO.
const MALLOCX_ZERO: i32 = 0x40;

/// jemalloc's MALLOCX_LG_ALIGN for alignments beyond what every block has.
#[inline]
fn align_flags(layout: &Layout) -> i32 {
    if layout.align() <= MIN_ALIGN {
        0
    } else {
        layout.align().trailing_zeros() as i32
    }
}

/// The alloy allocator; `#[global_allocator] static GLOBAL: Alloy = Alloy;`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Alloy;

unsafe impl GlobalAlloc for Alloy {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match align_flags(&layout) {
            0 => alloy_malloc(layout.size()) as *mut u8,
            flags => alloy_mallocx(layout.size(), flags) as *mut u8,
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match align_flags(&layout) {
            0 => alloy_calloc(1, layout.size()) as *mut u8,
            flags => alloy_mallocx(layout.size(), flags | MALLOCX_ZERO) as *mut u8,
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        alloy_sdallocx(ptr as *mut c_void, layout.size(), align_flags(&layout));
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match align_flags(&layout) {
            0 => alloy_realloc(ptr as *mut c_void, new_size) as *mut u8,
            flags => alloy_rallocx(ptr as *mut c_void, new_size, flags) as *mut u8,
        }
    }
}

/// The bytes usable at `ptr`, a block alloy returned (at least its layout's
/// size).
///
/// # Safety
/// `ptr` must be a live block of [`Alloy`]; anything else is reported by
/// alloy as a misuse, which aborts the process.
pub unsafe fn usable_size(ptr: *const u8) -> usize {
    alloy_usable_size(ptr as *const c_void)
}

/// An error of `mallctl`: jemalloc's error codes (ENOENT: no such name,
/// EINVAL: wrong length or value, EPERM, EFAULT, EAGAIN).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error(pub i32);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mallctl error {}", self.0)
    }
}

/// alloy's statistics through jemalloc's `mallctl` names.  Figures of other
/// threads are refreshed at their next 256 KiB of allocation after an
/// [`epoch`](stats::epoch); the calling thread's at once.
pub mod stats {
    use super::{alloy_mallctl, Error};
    use core::ffi::c_void;
    use core::mem::size_of;
    use core::ptr::null_mut;

    /// Reads a `size_t` (or `uint64_t`) control by name, such as
    /// `"stats.resident"` or `"arenas.page"`.
    pub fn read_usize(name: &str) -> Result<usize, Error> {
        let mut buf = [0u8; 128];
        if name.len() >= buf.len() || name.as_bytes().contains(&0) {
            return Err(Error(22)); // EINVAL
        }
        buf[..name.len()].copy_from_slice(name.as_bytes());
        let mut value: usize = 0;
        let mut len = size_of::<usize>();
        let rc = unsafe { alloy_mallctl(buf.as_ptr(), &mut value as *mut usize as *mut c_void, &mut len, null_mut(), 0) };
        if rc != 0 {
            Err(Error(rc))
        } else {
            Ok(value)
        }
    }

    /// Refreshes the statistics (writes `epoch`); returns the new epoch.
    pub fn epoch() -> Result<u64, Error> {
        let mut one: u64 = 1;
        let mut value: u64 = 0;
        let mut len = size_of::<u64>();
        let rc = unsafe {
            alloy_mallctl(
                b"epoch\0".as_ptr(),
                &mut value as *mut u64 as *mut c_void,
                &mut len,
                &mut one as *mut u64 as *mut c_void,
                size_of::<u64>(),
            )
        };
        if rc != 0 {
            Err(Error(rc))
        } else {
            Ok(value)
        }
    }

    /// Bytes in live blocks (`stats.allocated`).
    pub fn allocated() -> Result<usize, Error> {
        read_usize("stats.allocated")
    }

    /// Bytes of pages holding live blocks (`stats.active`).
    pub fn active() -> Result<usize, Error> {
        read_usize("stats.active")
    }

    /// Bytes of alloy's own metadata (`stats.metadata`).
    pub fn metadata() -> Result<usize, Error> {
        read_usize("stats.metadata")
    }

    /// Bytes resident in memory (`stats.resident`).
    pub fn resident() -> Result<usize, Error> {
        read_usize("stats.resident")
    }

    /// Bytes mapped from the system (`stats.mapped`).
    pub fn mapped() -> Result<usize, Error> {
        read_usize("stats.mapped")
    }

    /// Bytes kept mapped but given back to the system (`stats.retained`).
    pub fn retained() -> Result<usize, Error> {
        read_usize("stats.retained")
    }
}
