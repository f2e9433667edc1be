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

/// Whether NumPy's float64 loop `function` (with `data`) gives each element of a chunk the
/// bits it gives the element alone, on probes of every kind (signs, zeros, subnormals,
/// infinities, NaNs, small and large magnitudes): a loop that computed a chunk's tail (or its
/// vectors) by other means would not, and is not batched. Checked once per loop and process.
///
/// # Safety
/// `function` is a ufunc's float64 loop of one argument.
pub unsafe fn lanes_agree(function: usize, data: usize) -> bool {
    static CHECKED: std::sync::Mutex<Vec<(usize, usize, bool)>> = std::sync::Mutex::new(Vec::new());
    let mut checked = CHECKED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(&(_, _, agree)) = checked.iter().find(|(f, d, _)| *f == function && *d == data) {
        return agree;
    }
    let mut probes: Vec<f64> = vec![
        0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, 3.0, 10.0, -10.0, 100.0, 710.0, -745.0, 1e300, -1e300, 1e-300, 5e-324,
        -5e-324, 2.2250738585072014e-308, f64::MAX, f64::MIN, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, -f64::NAN,
        std::f64::consts::PI, std::f64::consts::FRAC_PI_2, 1e22, 0.7853981633974483, 0.999999, 1.000001,
    ];
    probes.extend((0..66).map(|k| (k as f64 - 33.0) * 0.37 + 0.011 * k as f64));
    let f: UfuncFunction = std::mem::transmute(function);
    let call = |inputs: &mut [f64], out: &mut [f64]| {
        let mut args: [*mut u8; 2] = [inputs.as_mut_ptr().cast(), out.as_mut_ptr().cast()];
        let n = inputs.len() as isize;
        let steps: [isize; 2] = [8, 8];
        f(args.as_mut_ptr(), &n, steps.as_ptr(), data as *mut std::ffi::c_void);
    };
    let saved = save_fp_flags();
    let mut agree = true;
    // Each length up to a chunk, from several places of the probes, with the input and the
    // output at every alignment to 64 bytes (a loop may treat elements before an aligned
    // address apart).
    let mut inputs = vec![0f64; CHUNK + 8];
    let mut outputs = vec![0f64; CHUNK + 8];
    for len in 1..=CHUNK {
        for (n, start) in (0..probes.len() - len).step_by(len.max(7)).enumerate() {
            let (i, o) = (n % 8, (n * 3 + len) % 8);
            inputs[i..i + len].copy_from_slice(&probes[start..start + len]);
            call(&mut inputs[i..i + len], &mut outputs[o..o + len]);
            for k in 0..len {
                let mut one = [probes[start + k]];
                let mut out = [0f64];
                call(&mut one, &mut out);
                agree &= out[0].to_bits() == outputs[o + k].to_bits();
            }
        }
    }
    restore_fp_flags(saved);
    checked.push((function, data, agree));
    agree
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
