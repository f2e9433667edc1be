//! `GilCell`: interior mutability for global state that is only touched with the GIL held.

use std::cell::Cell;

/// A `Cell` that may live in a `static` because every access happens with the GIL held
/// (the GIL serialises all of rjit's state changes, as it does CPython's own).
pub struct GilCell<T>(Cell<T>);

// SAFETY: all uses are from code that holds the GIL (the eval-frame hook and Python-called
// functions), so no two threads access the cell at the same time.
unsafe impl<T: Send> Sync for GilCell<T> {}

impl<T: Copy> GilCell<T> {
    /// A cell holding `value`.
    pub const fn new(value: T) -> Self {
        GilCell(Cell::new(value))
    }

    /// The current value. Caller holds the GIL.
    #[inline(always)]
    pub fn get(&self) -> T {
        self.0.get()
    }

    /// Replaces the value. Caller holds the GIL.
    #[inline(always)]
    pub fn set(&self, value: T) {
        self.0.set(value)
    }
}
