//! The allocator of rjit's own (Rust) allocations: mimalloc. The compiler's passes make many
//! small vectors and maps; with glibc's malloc, allocating and freeing them was a fifth of
//! compile time (perf on repeated compiles of the `dot` kernel), with mimalloc a fraction of
//! that (median compile 1.18 -> 0.74 ms). Python's and NumPy's memory does not go through it.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// Alignment every `mi_malloc` block of at least this size has (`MI_MAX_ALIGN_SIZE`).
const MALLOC_ALIGN: usize = 16;

/// mimalloc behind Rust's allocator interface. The `mimalloc` crate's wrapper sends every
/// request through `mi_malloc_aligned`, whose extra checks were 7% of a compile's
/// instructions (callgrind); nearly all of rjit's requests need no more than `mi_malloc`'s
/// own alignment, and go straight to it.
struct MiMalloc;

/// Whether `mi_malloc(layout.size())` is aligned enough for `layout` (as glibc's rule for
/// `malloc` in Rust's own `System` allocator: a block smaller than 16 bytes may be aligned to
/// its size only).
fn plain(layout: &Layout) -> bool {
    layout.align() <= MALLOC_ALIGN && layout.align() <= layout.size()
}

// SAFETY: mimalloc's functions are thread-safe and return NULL on failure, as GlobalAlloc
// requires; blocks from any of them are freed by `mi_free`, and `mi_realloc_aligned` keeps the
// alignment a block was made with.
unsafe impl GlobalAlloc for MiMalloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if plain(&layout) {
            mi::mi_malloc(layout.size()).cast()
        } else {
            mi::mi_malloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if plain(&layout) {
            mi::mi_zalloc(layout.size()).cast()
        } else {
            mi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        mi::mi_free(ptr.cast::<c_void>());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let grown = Layout::from_size_align_unchecked(new_size, layout.align());
        if plain(&layout) && plain(&grown) {
            mi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
        } else {
            mi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
        }
    }
}

#[global_allocator]
static ALLOCATOR: MiMalloc = MiMalloc;

/// `mi_option_arena_eager_commit` in mimalloc.h's `mi_option_t` (the crate names no constant
/// for it).
const ARENA_EAGER_COMMIT: mi::mi_option_t = 4;

/// Run by the loader when the extension is loaded, before its first allocation: by default
/// mimalloc commits its first arena (1 GiB of address space) eagerly on systems that
/// overcommit, which made the first compile of a process 3 ms slower; committed on demand, the
/// memory rjit never touches costs nothing.
extern "C" fn configure() {
    // SAFETY: sets a global option (an atomic store in mimalloc); called once, before any
    // other code of the extension runs.
    unsafe { mi::mi_option_set(ARENA_EAGER_COMMIT, 0) };
}

#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static CONFIGURE: extern "C" fn() = configure;
