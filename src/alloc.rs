//! The global allocator, with a guard for absurdly large allocations.
//!
//! The wire decoder pre-sizes arrays from the element count a client sends
//! (`Vec::with_capacity(n)`), before it knows whether the frame really holds
//! `n` elements. A forged count would ask for hundreds of gigabytes and abort
//! the process. Allocations of at least [`HUGE`] bytes are therefore served
//! by `mmap(MAP_NORESERVE)`: address space only, no memory committed until
//! touched. A forged count fails to decode long before it touches more than
//! the frame's own size, so the broker answers with an error instead of dying.
//! No legitimate allocation in the broker is this large.
//!
//! glibc keeps freed memory in its arenas; [`release_free_memory`] hands it
//! back to the OS (the listener calls it after connections close).

use std::alloc::{GlobalAlloc, Layout, System};

/// Allocations at or above this size take the reserved-address-space path.
pub const HUGE: usize = 1 << 30;

/// The system allocator, except for huge allocations (see the module doc).
pub struct GuardedAlloc;

unsafe impl GlobalAlloc for GuardedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= HUGE && layout.align() <= 4096 {
            return map_reserved(layout.size());
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.size() >= HUGE && layout.align() <= 4096 {
            // SAFETY: `ptr` came from `map_reserved` with this size.
            unsafe { libc::munmap(ptr.cast(), layout.size()) };
            return;
        }
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let huge_before = layout.size() >= HUGE && layout.align() <= 4096;
        let huge_after = new_size >= HUGE && layout.align() <= 4096;
        if !huge_before && !huge_after {
            // SAFETY: both sides are the system allocator's.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: `new_size` is non-zero (it is at least one of the sizes above
        // or the caller's contract), and the alignment is unchanged.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: allocating through our own `alloc`.
        let new_ptr = unsafe { self.alloc(new_layout) };
        if !new_ptr.is_null() {
            // SAFETY: both regions are valid for the smaller of the two sizes
            // and do not overlap.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new_ptr, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new_ptr
    }
}

fn map_reserved(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping with no address hint; the kernel
    // picks the place. MAP_NORESERVE keeps it out of the commit accounting.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        p.cast()
    }
}

/// Returns free heap memory to the OS (glibc's `malloc_trim`), e.g. after
/// many connections closed; elsewhere a no-op.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator.
    unsafe {
        libc::malloc_trim(0);
    }
}
