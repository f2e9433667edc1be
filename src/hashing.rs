//! The hash maps and sets of the compiler: keyed by small integers (value, block and exit
//! ids), which need no protection against chosen keys. The standard library's SipHash took
//! about a tenth of compile time; this multiply-rotate hash (the scheme rustc uses) costs a
//! few instructions per word.

use std::hash::{BuildHasherDefault, Hasher};

pub type HashMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<WordHasher>>;
pub type HashSet<T> = std::collections::HashSet<T, BuildHasherDefault<WordHasher>>;

/// Folds each word written into the state: rotate, xor, multiply by an odd constant.
#[derive(Default, Clone, Copy)]
pub struct WordHasher {
    state: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl WordHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.state = (self.state.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for WordHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        }
        for &b in chunks.remainder() {
            self.add(u64::from(b));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_keep_what_is_inserted() {
        let mut m: HashMap<u32, u32> = HashMap::default();
        for k in 0..10_000u32 {
            m.insert(k.wrapping_mul(2_654_435_761), k);
        }
        assert_eq!(m.len(), 10_000);
        for k in 0..10_000u32 {
            assert_eq!(m[&k.wrapping_mul(2_654_435_761)], k);
        }
    }

    #[test]
    fn nearby_keys_hash_apart() {
        let hash = |k: u32| {
            let mut h = WordHasher::default();
            h.write_u32(k);
            h.finish()
        };
        let hashes: HashSet<u64> = (0..1000).map(hash).collect();
        assert_eq!(hashes.len(), 1000);
        // The top bits (which hashbrown uses for its control bytes) differ too.
        let tops: HashSet<u64> = (0..1000).map(|k| hash(k) >> 57).collect();
        assert!(tops.len() > 64);
    }
}
