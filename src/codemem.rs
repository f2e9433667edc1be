//! The registry of live machine code: the address range of every compiled function's buffer,
//! for `rjit.stats()["code_memory_in_use"]` and for checking perf map entries against rjit's
//! code memory (tests). Touched once per compilation and once per freed function.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Start address -> length of each live machine-code buffer.
static REGIONS: Mutex<BTreeMap<usize, usize>> = Mutex::new(BTreeMap::new());

fn regions() -> std::sync::MutexGuard<'static, BTreeMap<usize, usize>> {
    // A poisoned lock only means a panic happened while updating; the map is still whole.
    REGIONS.lock().unwrap_or_else(|e| e.into_inner())
}

/// A buffer of machine code, registered while this value lives (it lives as long as the
/// `Compiled` that owns the buffer).
#[derive(Debug)]
pub struct Region {
    start: usize,
}

impl Region {
    /// Registers `len` bytes of machine code at `start`.
    pub fn register(start: usize, len: usize) -> Region {
        regions().insert(start, len);
        Region { start }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        regions().remove(&self.start);
    }
}

/// The live machine-code buffers: (start address, length), by address.
pub fn live_regions() -> Vec<(usize, usize)> {
    regions().iter().map(|(s, l)| (*s, *l)).collect()
}

/// Bytes of machine code in live buffers.
pub fn bytes_in_use() -> usize {
    regions().values().sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_live_while_registered() {
        let before = bytes_in_use();
        let region = Region::register(0x1000_0000, 64);
        assert!(live_regions().contains(&(0x1000_0000, 64)));
        assert_eq!(bytes_in_use(), before + 64);
        drop(region);
        assert!(!live_regions().contains(&(0x1000_0000, 64)));
    }
}
