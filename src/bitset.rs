//! A set of small indices (virtual registers, HIR values) as bits: the compiler's analyses
//! ask "is v in the set" and union whole sets, over a few hundred members at most, for which
//! a few words beat a hash set by far.

#[derive(Clone, Debug, Default)]
pub struct BitSet {
    words: Vec<u64>,
}

/// Sets are equal when they have the same members, whatever length they were made for.
impl PartialEq for BitSet {
    fn eq(&self, other: &BitSet) -> bool {
        let (short, long) = if self.words.len() <= other.words.len() { (self, other) } else { (other, self) };
        short.words.iter().zip(&long.words).all(|(a, b)| a == b) && long.words[short.words.len()..].iter().all(|&w| w == 0)
    }
}

impl Eq for BitSet {}

impl BitSet {
    /// An empty set for indices `0..len`.
    pub fn new(len: usize) -> BitSet {
        BitSet { words: vec![0; len.div_ceil(64)] }
    }

    /// Adds `i`, growing the set when `i` is beyond its length.
    pub fn insert(&mut self, i: usize) {
        if i / 64 >= self.words.len() {
            self.words.resize(i / 64 + 1, 0);
        }
        self.words[i / 64] |= 1 << (i % 64);
    }

    pub fn remove(&mut self, i: usize) {
        if let Some(w) = self.words.get_mut(i / 64) {
            *w &= !(1 << (i % 64));
        }
    }

    pub fn contains(&self, i: usize) -> bool {
        self.words.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// Adds every member of `other`.
    pub fn union_with(&mut self, other: &BitSet) {
        if other.words.len() > self.words.len() {
            self.words.resize(other.words.len(), 0);
        }
        self.words.iter_mut().zip(&other.words).for_each(|(a, b)| *a |= b);
    }

    /// Removes every member of `other`.
    pub fn subtract(&mut self, other: &BitSet) {
        self.words.iter_mut().zip(&other.words).for_each(|(a, b)| *a &= !b);
    }

    /// The members, in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &word)| {
            let mut bits = word;
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let b = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                Some(i * 64 + b)
            })
        })
    }
}

impl Extend<usize> for BitSet {
    fn extend<T: IntoIterator<Item = usize>>(&mut self, iter: T) {
        iter.into_iter().for_each(|i| self.insert(i));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bit_set_holds_what_was_inserted_and_iterates_in_order() {
        let mut s = BitSet::new(200);
        for i in [130, 3, 64, 63, 199, 0] {
            s.insert(i);
        }
        s.remove(64);
        s.remove(5000); // outside: nothing to remove
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![0, 3, 63, 130, 199]);
        assert!(s.contains(130) && !s.contains(64) && !s.contains(5000));
        let mut t = BitSet::new(10);
        t.extend([3, 100, 300]); // grows past its length
        assert!(t.contains(300));
        let mut u = s.clone();
        u.union_with(&t);
        assert_eq!(u.iter().collect::<Vec<_>>(), vec![0, 3, 63, 100, 130, 199, 300]);
        u.subtract(&s);
        assert_eq!(u.iter().collect::<Vec<_>>(), vec![100, 300]);
        // Equality is by members, not by the length a set was made for.
        let (mut small, mut large) = (BitSet::new(10), BitSet::new(1000));
        small.insert(7);
        large.insert(7);
        assert_eq!(small, large);
        large.insert(900);
        assert_ne!(small, large);
        assert_ne!(large, small);
    }
}
