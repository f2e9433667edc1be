//! The allocator of rjit's own (Rust) allocations: mimalloc. The compiler's passes make many
//! small vectors and maps; with glibc's malloc, allocating and freeing them was a fifth of
//! compile time (perf on repeated compiles of the `dot` kernel), with mimalloc a fraction of
//! that (median compile 1.18 -> 0.74 ms). Python's and NumPy's memory does not go through it.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_arena_eager_commit` in mimalloc.h's `mi_option_t` (the crate names no constant
/// for it).
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

/// Run by the loader when the extension is loaded, before its first allocation: by default
/// mimalloc commits its first arena (1 GiB of address space) eagerly on systems that
/// overcommit, which made the first compile of a process 3 ms slower; committed on demand, the
/// memory rjit never touches costs nothing.
extern "C" fn configure() {
    // SAFETY: sets a global option (an atomic store in mimalloc); called once, before any
    // other code of the extension runs.
    unsafe { libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0) };
}

#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static CONFIGURE: extern "C" fn() = configure;
