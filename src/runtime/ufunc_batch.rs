//! NumPy ufunc calls of a loop made for a chunk of its iterations at once (`hir::ufunc_batch`).
//!
//! `np.tanh(a[i, i])` in a loop calls NumPy's inner loop once per element; most of its time
//! is the loop's own setup (SIMD constants, the floating-point status NumPy clears), the same
//! for one element as for eight. Where the loop runs no Python code and stores nothing, the
//! elements of its next iterations are known when the first is needed: `address + k * step`
//! for `k < remaining`. The first call of a chunk reads them (converted to float64 as NumPy
//! casts), calls NumPy's loop once on the chunk (contiguous, as each single call is, so each
//! element goes through the same code) and keeps the results; the next calls of the chunk
//! return them.
//!
//! Results are kept for one entry into the loop only: each entry takes a new generation
//! (`rjit_rt_ufunc_batch_begin`), and a result is returned only to a call of the same
//! generation, ufunc, step and address. Nothing can change the array while the loop runs (it
//! runs no Python code, stores nothing, and leaves once other threads may have run), so a kept
//! result is what the call would compute. A few chunks are kept per thread (nested loops).
//!
//! Floating-point exceptions: a chunk is computed with the flags saved, cleared, read and put
//! back, so it neither reports nor hides anything; if a flag was raised in the chunk, its
//! elements are computed one by one when reached, as `UfuncCall` does (`FLOAT_DEOPT` where
//! one raises: the interpreter redoes the call and warns).

use std::cell::UnsafeCell;

use super::arrays::{clear_fp_flags, fp_flags_raised, restore_fp_flags, run_loop, save_fp_flags, UfuncFunction};

/// Elements per chunk.
const CHUNK: usize = 32;
/// Chunks kept per thread: as many as a function may batch calls (`hir::ufunc_batch`), so that
/// the calls of the loops running at once (a loop that batches runs no other function's code)
/// do not evict each other's chunks.
pub const SLOTS: usize = 4;

/// The results of one chunk.
struct Slot {
    generation: u64,
    function: usize,
    step: isize,
    /// Address of the chunk's first element.
    first: usize,
    len: usize,
    /// Whether `out` holds the results (no flag was raised computing them).
    valid: bool,
    out: [f64; CHUNK],
}

const EMPTY: Slot = Slot { generation: 0, function: 0, step: 0, first: 0, len: 0, valid: false, out: [0.0; CHUNK] };

struct Batches {
    /// The last generation handed out (0: none yet; slots of generation 0 are empty).
    generation: u64,
    slots: [Slot; SLOTS],
    /// The slot the next chunk goes into.
    next: usize,
}

thread_local! {
    static BATCHES: UnsafeCell<Batches> = const { UnsafeCell::new(Batches { generation: 0, slots: [EMPTY; SLOTS], next: 0 }) };
}

/// A new generation, for a loop being entered. Cannot fail.
pub extern "C-unwind" fn rjit_rt_ufunc_batch_begin() -> u64 {
    // SAFETY: this thread's own state; no reference to it outlives the call.
    BATCHES.with(|b| unsafe {
        let b = &mut *b.get();
        b.generation += 1;
        b.generation
    })
}

/// An element type the compiled code reads (`numpy::DType` of the array).
trait Element: Copy {
    fn as_f64(self) -> f64;
}

impl Element for f64 {
    fn as_f64(self) -> f64 {
        self
    }
}

impl Element for i64 {
    // NumPy casts int64 to float64 rounding to nearest, as `as` does.
    fn as_f64(self) -> f64 {
        self as f64
    }
}

/// NumPy's float64 loop `function` (with `data`) of the element of type `T` at `address`,
/// whose loop has `remaining` iterations left (this one included), the next ones reading the
/// elements `step` bytes apart: the result's bits, or `FLOAT_DEOPT` (see the module doc).
///
/// # Safety
/// `function` is a ufunc's float64 loop; the `remaining` elements from `address` on, `step`
/// bytes apart, are readable elements of type `T` that nothing changes during `generation`.
unsafe fn batched<T: Element>(function: usize, data: usize, generation: u64, address: usize, step: isize, remaining: i64) -> u64 {
    let read = |k: usize| std::ptr::read_unaligned((address as isize + k as isize * step) as *const T).as_f64();
    if step == 0 || remaining < 1 {
        return run_loop(function, data, &mut [read(0)]);
    }
    BATCHES.with(|b| {
        // SAFETY: this thread's own state; NumPy's loop (the only code called while it is
        // borrowed) runs no Python code and does not call back into rjit.
        let b = unsafe { &mut *b.get() };
        let found = b.slots.iter().position(|s| {
            let offset = address as isize - s.first as isize;
            s.generation == generation
                && s.function == function
                && s.step == step
                && offset % step == 0
                && (0..s.len as isize).contains(&(offset / step))
        });
        let index = match found {
            Some(i) => i,
            None => {
                let i = b.next;
                b.next = (i + 1) % SLOTS;
                fill(&mut b.slots[i], function, data, generation, address, step, (remaining as usize).min(CHUNK), read);
                i
            }
        };
        let slot = &b.slots[index];
        if !slot.valid {
            return run_loop(function, data, &mut [read(0)]);
        }
        slot.out[((address as isize - slot.first as isize) / step) as usize].to_bits()
    })
}

/// Computes a chunk of `len` elements from `address` into `slot` (see the module doc).
#[allow(clippy::too_many_arguments)]
fn fill(slot: &mut Slot, function: usize, data: usize, generation: u64, address: usize, step: isize, len: usize, read: impl Fn(usize) -> f64) {
    let mut inputs = [0f64; CHUNK];
    for (k, x) in inputs.iter_mut().enumerate().take(len) {
        *x = read(k);
    }
    *slot = Slot { generation, function, step, first: address, len, valid: false, out: [0.0; CHUNK] };
    let mut args: [*mut u8; 2] = [inputs.as_mut_ptr().cast(), slot.out.as_mut_ptr().cast()];
    let n = len as isize;
    let steps: [isize; 2] = [8, 8];
    let saved = save_fp_flags();
    clear_fp_flags();
    // SAFETY: `function` is the ufunc's loop for one float64 argument (see
    // `numpy::float64_loop`); `len` inputs and outputs, contiguous.
    unsafe {
        let f: UfuncFunction = std::mem::transmute(function);
        f(args.as_mut_ptr(), &n, steps.as_ptr(), data as *mut std::ffi::c_void);
    }
    slot.valid = !fp_flags_raised();
    restore_fp_flags(saved);
}

/// `batched` of an int64 element.
///
/// # Safety
/// As `batched`.
pub unsafe extern "C-unwind" fn rjit_rt_ufunc_batched_i64(function: usize, data: usize, generation: u64, address: usize, step: isize, remaining: i64) -> u64 {
    batched::<i64>(function, data, generation, address, step, remaining)
}

/// `batched` of a float64 element.
///
/// # Safety
/// As `batched`.
pub unsafe extern "C-unwind" fn rjit_rt_ufunc_batched_f64(function: usize, data: usize, generation: u64, address: usize, step: isize, remaining: i64) -> u64 {
    batched::<f64>(function, data, generation, address, step, remaining)
}
