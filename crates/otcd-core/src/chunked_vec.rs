//! `ChunkedVec`: an append-mostly vector stored in fixed-size chunks, so that growing it never copies what it holds.
//!
//! Why: the desk's histories (orders, trades, ledger transactions and entries) only grow. In a `Vec` every
//! doubling copies the whole history and faults in twice its memory on the engine thread, and because these
//! histories grow in step (one order, one trade, one transaction and a few entries per fill) they double at the
//! same moment: a stall of every command that doubles with the desk's age (BENCHMARKS.md, "Engine stalls"). Here a push costs at most one fresh chunk (whose pages are touched one element at a time), and
//! an index is a division and two bounds-checked lookups.
//!
//! Written here rather than taken from a crate: the crates that do this (`segvec`, `segmented-vec`,
//! `append-only-vec`) manage raw allocations with `unsafe` and have one maintainer each; this is safe code on
//! top of `Vec`, small enough to read in one sitting, and serializes exactly like a `Vec` (a sequence), so
//! snapshots written before it existed still load.

use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Index, IndexMut, Range};

/// Elements per chunk unless a type says otherwise: large enough that the chunk list stays tiny (a million
/// elements are 245 chunks), small enough that a new chunk of even a large element is a few megabytes at most.
pub const CHUNK_LEN_DEFAULT: usize = 4096;

/// Elements the first chunk has room for before it grows.
const FIRST_CHUNK_CAPACITY: usize = 4;

/// A vector of `T` in chunks of `CHUNK_LEN` elements. Every chunk but the last is full.
#[derive(Clone, PartialEq, Eq)]
pub struct ChunkedVec<T, const CHUNK_LEN: usize = CHUNK_LEN_DEFAULT> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T, const CHUNK_LEN: usize> Default for ChunkedVec<T, CHUNK_LEN> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const CHUNK_LEN: usize> ChunkedVec<T, CHUNK_LEN> {
    pub const fn new() -> Self {
        assert!(CHUNK_LEN > 0, "a chunk holds at least one element");
        Self { chunks: Vec::new(), len: 0 }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `value`; never moves an element already stored in a full chunk. The first chunk starts small and
    /// grows like a `Vec` up to `CHUNK_LEN` (a copy bounded by one chunk): a desk keeps one list per client and
    /// per account, most of them short, and a whole chunk for each (32 KiB of `u64`) made 10,000 clients cost
    /// gigabytes (BENCHMARKS.md, "TigerBeetle-shaped"). Every later chunk is allocated whole.
    pub fn push(&mut self, value: T) {
        if self.chunks.last().is_none_or(|chunk| chunk.len() == CHUNK_LEN) {
            let capacity = if self.chunks.is_empty() { FIRST_CHUNK_CAPACITY.min(CHUNK_LEN) } else { CHUNK_LEN };
            self.chunks.push(Vec::with_capacity(capacity));
        }
        let last = self.chunks.last_mut().expect("a chunk with room was just ensured");
        debug_assert!(last.len() < CHUNK_LEN, "the last chunk has room");
        last.push(value);
        self.len += 1;
    }

    pub fn get(&self, index: usize) -> Option<&T> {
        self.chunks.get(index / CHUNK_LEN)?.get(index % CHUNK_LEN)
    }

    pub fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        self.chunks.get_mut(index / CHUNK_LEN)?.get_mut(index % CHUNK_LEN)
    }

    pub fn first(&self) -> Option<&T> {
        self.get(0)
    }

    pub fn last(&self) -> Option<&T> {
        self.chunks.last()?.last()
    }

    pub fn iter(&self) -> Iter<'_, T> {
        self.range(0..self.len)
    }

    /// The elements at `range`, in order (a chunked vector has no contiguous slice to lend).
    ///
    /// # Panics
    /// When the range is decreasing or ends past the end, as slicing a `Vec` would.
    pub fn range(&self, range: Range<usize>) -> Iter<'_, T> {
        let Range { start, end } = range;
        assert!(start <= end && end <= self.len, "range {start}..{end} out of bounds for length {}", self.len);
        if start == end {
            return Iter::empty();
        }
        let (first_chunk, last_chunk) = (start / CHUNK_LEN, (end - 1) / CHUNK_LEN);
        let (first_offset, last_end) = (start % CHUNK_LEN, (end - 1) % CHUNK_LEN + 1);
        if first_chunk == last_chunk {
            let front = self.chunks[first_chunk][first_offset..last_end].iter();
            return Iter { front, middle: [].iter(), back: [].iter(), remaining: end - start };
        }
        Iter {
            front: self.chunks[first_chunk][first_offset..].iter(),
            middle: self.chunks[first_chunk + 1..last_chunk].iter(),
            back: self.chunks[last_chunk][..last_end].iter(),
            remaining: end - start,
        }
    }

    /// The index of the first element for which `predicate` is false, the elements being partitioned
    /// (all `true` before all `false`), as [`slice::partition_point`].
    pub fn partition_point(&self, predicate: impl FnMut(&T) -> bool) -> usize {
        self.partition_point_in(0..self.len, predicate)
    }

    /// [`partition_point`](Self::partition_point) of the elements at `range`, as an index of the whole vector
    /// (`range.end` when the predicate holds for all of them).
    ///
    /// # Panics
    /// When the range is decreasing or ends past the end.
    pub fn partition_point_in(&self, range: Range<usize>, mut predicate: impl FnMut(&T) -> bool) -> usize {
        let Range { start: mut low, end: mut high } = range;
        assert!(low <= high && high <= self.len, "range {low}..{high} out of bounds for length {}", self.len);
        while low < high {
            let middle = low + (high - low) / 2;
            if predicate(&self[middle]) {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        low
    }

    /// Keeps the first `len` elements (no-op when there are fewer); frees the chunks left empty.
    pub fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        self.chunks.truncate(len.div_ceil(CHUNK_LEN));
        if let Some(last) = self.chunks.last_mut() {
            last.truncate(len - (len - 1) / CHUNK_LEN * CHUNK_LEN);
        }
        self.len = len;
    }
}

impl<T, const CHUNK_LEN: usize> Index<usize> for ChunkedVec<T, CHUNK_LEN> {
    type Output = T;

    fn index(&self, index: usize) -> &T {
        let len = self.len;
        self.get(index).unwrap_or_else(|| panic!("index {index} out of bounds for length {len}"))
    }
}

impl<T, const CHUNK_LEN: usize> IndexMut<usize> for ChunkedVec<T, CHUNK_LEN> {
    fn index_mut(&mut self, index: usize) -> &mut T {
        let len = self.len;
        self.get_mut(index).unwrap_or_else(|| panic!("index {index} out of bounds for length {len}"))
    }
}

impl<T, const CHUNK_LEN: usize> Extend<T> for ChunkedVec<T, CHUNK_LEN> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, values: I) {
        values.into_iter().for_each(|value| self.push(value));
    }
}

impl<T, const CHUNK_LEN: usize> FromIterator<T> for ChunkedVec<T, CHUNK_LEN> {
    fn from_iter<I: IntoIterator<Item = T>>(values: I) -> Self {
        let mut chunked = Self::new();
        chunked.extend(values);
        chunked
    }
}

impl<T, const CHUNK_LEN: usize> From<Vec<T>> for ChunkedVec<T, CHUNK_LEN> {
    fn from(values: Vec<T>) -> Self {
        values.into_iter().collect()
    }
}

impl<'a, T, const CHUNK_LEN: usize> IntoIterator for &'a ChunkedVec<T, CHUNK_LEN> {
    type Item = &'a T;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

/// Equal to a slice holding the same elements in the same order.
impl<T: PartialEq, const CHUNK_LEN: usize> PartialEq<[T]> for ChunkedVec<T, CHUNK_LEN> {
    fn eq(&self, other: &[T]) -> bool {
        self.len == other.len() && self.iter().eq(other.iter())
    }
}

impl<T: fmt::Debug, const CHUNK_LEN: usize> fmt::Debug for ChunkedVec<T, CHUNK_LEN> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_list().entries(self.iter()).finish()
    }
}

/// Iterator over a [`ChunkedVec`] or a range of it: the rest of the first chunk, whole chunks, then the start
/// of the last one.
#[derive(Clone, Debug)]
pub struct Iter<'a, T> {
    front: std::slice::Iter<'a, T>,
    middle: std::slice::Iter<'a, Vec<T>>,
    back: std::slice::Iter<'a, T>,
    remaining: usize,
}

impl<T> Iter<'_, T> {
    fn empty() -> Self {
        Self { front: [].iter(), middle: [].iter(), back: [].iter(), remaining: 0 }
    }
}

/// An iterator over nothing (what a missing list reads as).
impl<T> Default for Iter<'_, T> {
    fn default() -> Self {
        Self::empty()
    }
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = &'a T;

    fn next(&mut self) -> Option<&'a T> {
        loop {
            if let Some(value) = self.front.next() {
                self.remaining -= 1;
                return Some(value);
            }
            match self.middle.next() {
                Some(chunk) => self.front = chunk.iter(),
                None => {
                    let value = self.back.next()?;
                    self.remaining -= 1;
                    return Some(value);
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<T> DoubleEndedIterator for Iter<'_, T> {
    fn next_back(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(value) = self.back.next_back() {
                self.remaining -= 1;
                return Some(value);
            }
            match self.middle.next_back() {
                Some(chunk) => self.back = chunk.iter(),
                None => {
                    let value = self.front.next_back()?;
                    self.remaining -= 1;
                    return Some(value);
                }
            }
        }
    }
}

impl<T> ExactSizeIterator for Iter<'_, T> {}

impl<T> std::iter::FusedIterator for Iter<'_, T> {}

/// Serialized as a plain sequence, exactly as a `Vec<T>` is.
impl<T: Serialize, const CHUNK_LEN: usize> Serialize for ChunkedVec<T, CHUNK_LEN> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de, T: Deserialize<'de>, const CHUNK_LEN: usize> Deserialize<'de> for ChunkedVec<T, CHUNK_LEN> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SequenceVisitor<T, const CHUNK_LEN: usize>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>, const CHUNK_LEN: usize> Visitor<'de> for SequenceVisitor<T, CHUNK_LEN> {
            type Value = ChunkedVec<T, CHUNK_LEN>;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a sequence")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut sequence: A) -> Result<Self::Value, A::Error> {
                let mut values = ChunkedVec::new();
                while let Some(value) = sequence.next_element()? {
                    values.push(value);
                }
                Ok(values)
            }
        }

        deserializer.deserialize_seq(SequenceVisitor::<T, CHUNK_LEN>(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type Small = ChunkedVec<u32, 3>;

    fn small(values: &[u32]) -> Small {
        values.iter().copied().collect()
    }

    #[test]
    fn pushes_fill_chunks_in_order_and_index_finds_them() {
        let values = small(&[10, 11, 12, 13, 14, 15, 16]);
        assert_eq!(values.len(), 7);
        assert_eq!(values.chunks.len(), 3, "3 + 3 + 1");
        assert_eq!(values[0], 10);
        assert_eq!(values[3], 13);
        assert_eq!(values[6], 16);
        assert_eq!(values.get(7), None);
        assert_eq!(values.first(), Some(&10));
        assert_eq!(values.last(), Some(&16));
        assert_eq!(Small::new().last(), None);
    }

    /// A short list holds a few elements' room, not a whole chunk: a desk keeps one per client and per account.
    #[test]
    fn the_first_chunk_grows_like_a_vec_and_later_chunks_are_whole() {
        let mut values: ChunkedVec<u64> = ChunkedVec::new();
        values.push(1);
        assert!(values.chunks[0].capacity() <= FIRST_CHUNK_CAPACITY, "{}", values.chunks[0].capacity());
        values.extend(2..=(CHUNK_LEN_DEFAULT as u64 + 1));
        assert_eq!(values.chunks.len(), 2);
        assert_eq!(values.chunks[0].len(), CHUNK_LEN_DEFAULT);
        assert_eq!(values.chunks[1].capacity(), CHUNK_LEN_DEFAULT, "allocated whole: never moved");
        assert!(values.iter().copied().eq(1..=(CHUNK_LEN_DEFAULT as u64 + 1)));
    }

    #[test]
    #[should_panic(expected = "index 7 out of bounds for length 7")]
    fn indexing_past_the_end_panics_like_a_vec() {
        let values = small(&[0, 1, 2, 3, 4, 5, 6]);
        let _ = values[7];
    }

    #[test]
    fn a_push_never_moves_what_is_stored() {
        let mut values = ChunkedVec::<u64, 4>::new();
        values.push(1);
        let first_address = std::ptr::from_ref(&values[0]) as usize;
        (2..1_000).for_each(|value| values.push(value));
        assert_eq!(std::ptr::from_ref(&values[0]) as usize, first_address);
    }

    #[test]
    fn serializes_exactly_as_a_vec_and_reads_a_vec_back() {
        let values = small(&[1, 2, 3, 4, 5]);
        let text = serde_json::to_string(&values).unwrap();
        assert_eq!(text, serde_json::to_string(&vec![1, 2, 3, 4, 5]).unwrap());
        let back: Small = serde_json::from_str(&text).unwrap();
        assert_eq!(back, values);
        assert!(serde_json::from_str::<Small>("{}").is_err());
    }

    proptest! {
        #[test]
        fn behaves_as_a_vec(values in proptest::collection::vec(any::<u32>(), 0..40), start in 0usize..41, end in 0usize..41, cut in 0usize..45) {
            let chunked = small(&values);
            prop_assert_eq!(chunked.len(), values.len());
            prop_assert_eq!(chunked.iter().copied().collect::<Vec<_>>(), values.clone());
            prop_assert_eq!(chunked.iter().rev().copied().collect::<Vec<_>>(), values.iter().rev().copied().collect::<Vec<_>>());
            prop_assert_eq!(chunked.iter().len(), values.len());
            let (start, end) = (start.min(values.len()), end.min(values.len()));
            let (start, end) = (start.min(end), start.max(end));
            let range = chunked.range(start..end);
            prop_assert_eq!(range.len(), end - start);
            prop_assert_eq!(range.copied().collect::<Vec<_>>(), values[start..end].to_vec());
            // Mixed ends meet in the middle without losing or repeating an element.
            let mut both = chunked.range(start..end);
            let mut seen = Vec::new();
            let mut from_back = Vec::new();
            loop {
                match (both.next(), both.next_back()) {
                    (Some(front), Some(back)) => { seen.push(*front); from_back.push(*back); }
                    (Some(front), None) => { seen.push(*front); break; }
                    (None, _) => break,
                }
            }
            seen.extend(from_back.into_iter().rev());
            prop_assert_eq!(seen, values[start..end].to_vec());
            let threshold = values.get(start).copied().unwrap_or(0);
            let mut sorted = values.clone();
            sorted.sort_unstable();
            let sorted_chunked = small(&sorted);
            prop_assert_eq!(sorted_chunked.partition_point(|value| *value < threshold), sorted.partition_point(|value| *value < threshold));
            prop_assert_eq!(
                sorted_chunked.partition_point_in(start..end, |value| *value < threshold),
                start + sorted[start..end].partition_point(|value| *value < threshold)
            );
            let mut truncated = chunked.clone();
            truncated.truncate(cut);
            let mut expected = values.clone();
            expected.truncate(cut);
            prop_assert_eq!(truncated.iter().copied().collect::<Vec<_>>(), expected.clone());
            truncated.push(7);
            expected.push(7);
            prop_assert_eq!(truncated.iter().copied().collect::<Vec<_>>(), expected);
        }
    }
}
