//! A counting allocator, so that checks can bound the memory a target
//! holds (the stateful targets' "memory bounded" invariant).
//!
//! Counts are per thread: `cargo test` replays the corpora on several
//! threads at once, and each check only wants what its own run allocates.
//! A block freed on another thread than the one that allocated it skews
//! both threads' counts; the checks that use this are single-threaded.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    // Const-initialised and without Drop: no lazy set-up and no destructor,
    // so the allocator can touch them at any time, even while the thread
    // is being torn down.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn add(n: isize) {
    let _ = LIVE.try_with(|live| {
        let v = live.get() + n;
        live.set(v);
        let _ = PEAK.try_with(|p| {
            if v > p.get() {
                p.set(v);
            }
        });
    });
}

/// The system allocator, counting this thread's live bytes.
pub struct Counting;

// SAFETY: every call is passed to `System` unchanged; the counting only
// touches thread-local cells.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on.
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            add(l.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on.
        let p = unsafe { System.alloc_zeroed(l) };
        if !p.is_null() {
            add(l.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(p, l) };
        add(-(l.size() as isize));
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        // SAFETY: the caller's contract is passed on.
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            add(new as isize - l.size() as isize);
        }
        q
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Bytes this thread holds now.
pub fn live() -> isize {
    LIVE.try_with(Cell::get).unwrap_or(0)
}

/// Starts a new high-water mark at what this thread holds now.
pub fn reset_peak() {
    let v = live();
    let _ = PEAK.try_with(|p| p.set(v));
}

/// The most this thread held at once since [`reset_peak`].
pub fn peak() -> isize {
    PEAK.try_with(Cell::get).unwrap_or(0)
}
