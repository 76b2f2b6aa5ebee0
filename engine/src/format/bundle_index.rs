//! The index of a checked bundle list: where the list mentions each variant id.
//!
//! A cart transform on a small cart needs only the bundles that mention one of its variants.
//! Searching the list for them costs about ten instructions a byte (30 K for a 40-bundle list),
//! however few the cart's lines; the index finds them with a few lookups per variant.
//!
//! Layout, lower-case hex throughout (so it holds no `|`):
//! `<postings: 4 digits each><2^bits bucket ends: 4 digits each><bits: 1 digit>`, written after
//! the list and a `|`. Read from its end, the index gives its own length (the last bucket end is
//! the number of postings), so finding where the list ends takes no search.
//! An id's bucket is the top `bits` bits of `id x 0x9E3779B97F4A7C15` (Fibonacci hashing: ids
//! that differ in their low digits, as a store's variants do, spread over the buckets). Bucket
//! `b` holds postings `ends[b - 1]..ends[b]` (`0..ends[0]` for the first); a posting is the byte
//! offset in the list of the `=` or `x` that ends one mention of an id of that bucket, in list
//! order. Several ids share a bucket, so each posting is checked against the id wanted.

/// The multiplier of the bucket hash (2^64 divided by the golden ratio). Frozen with the format.
const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

/// Most bucket bits: 4,096 buckets (16 KB of bucket ends) is beyond any list a Function reads.
pub(super) const MAX_BITS: u32 = 12;

/// Digits of one bucket end or posting.
const ENTRY: usize = 4;

/// Most postings (and largest list offset) an entry can hold.
const MAX_ENTRY: usize = 0xFFFF;

/// The bucket of `id` among `2^bits`.
fn bucket(id: u64, bits: u32) -> usize {
    match bits {
        0 => 0,
        // INVARIANT: bits <= MAX_BITS, so the shift is in range and the bucket fits a usize.
        _ => (id.wrapping_mul(MULTIPLIER) >> (64 - bits)) as usize,
    }
}

/// The bucket bits the writer aims for with `mentions` postings: two to four postings a bucket,
/// which keeps a lookup to a few checks while the bucket ends take at most half the postings'
/// bytes (every byte of the index is hashed on every run).
pub(super) fn bits_for(mentions: usize) -> u32 {
    let mut bits = 0;
    while bits < MAX_BITS && (4usize << bits) < mentions {
        bits += 1;
    }
    bits
}

/// Every id mention of `list` (a list every bundle of which was read and accepted) as
/// `(id, offset of its end)`, in list order. Only an id ends at a `=` or an `x`.
fn mentions(list: &[u8]) -> Vec<(u64, usize)> {
    let mut found = Vec::new();
    let mut id: u64 = 0;
    for (at, &byte) in list.iter().enumerate() {
        match byte {
            b'0'..=b'9' => id = id.wrapping_mul(10).wrapping_add(u64::from(byte - b'0')),
            b'=' | b'x' => {
                found.push((id, at));
                id = 0;
            }
            _ => id = 0,
        }
    }
    found
}

/// The index of `list` with `2^bits` buckets; `None` when an offset or a count does not fit in
/// an entry (a list far beyond what a Function reads).
pub(super) fn encode(list: &[u8], bits: u32) -> Option<String> {
    use std::fmt::Write as _;
    let bits = bits.min(MAX_BITS);
    let mut postings: Vec<(usize, usize)> = mentions(list)
        .into_iter()
        .map(|(id, end)| (bucket(id, bits), end))
        .collect();
    if postings.len() > MAX_ENTRY || list.len() > MAX_ENTRY {
        return None;
    }
    postings.sort_unstable();
    let buckets = 1usize << bits;
    let mut text = String::with_capacity(ENTRY * (buckets + postings.len()) + 1);
    for (_, offset) in &postings {
        let _ = write!(text, "{offset:04x}");
    }
    let mut end = 0;
    for bucket in 0..buckets {
        while postings.get(end).is_some_and(|(b, _)| *b == bucket) {
            end += 1;
        }
        let _ = write!(text, "{end:04x}");
    }
    let _ = write!(text, "{bits:x}");
    Some(text)
}

/// A read index. Its entries are read as they are needed: a malformed one makes a lookup fail,
/// and the cart transform then reads the list whole.
pub(super) struct BundleIndex<'t> {
    bits: u32,
    ends: &'t [u8],
    postings: &'t [u8],
}

impl<'t> BundleIndex<'t> {
    /// `text` split into what comes before its index and the index, when it ends with one of the
    /// right shape (a bits digit within range, bucket ends, as many postings as the last end
    /// says, and a `|` before them). The entries themselves are read when they are needed.
    pub(super) fn split(text: &'t str) -> Option<(&'t str, BundleIndex<'t>)> {
        let (&bits, before) = text.as_bytes().split_last()?;
        let bits = u32::try_from(super::fingerprint_value(&[bits])?).ok()?;
        if bits > MAX_BITS {
            return None;
        }
        let before = before.len().checked_sub(ENTRY << bits)?;
        let (rest, ends) = text
            .as_bytes()
            .get(..text.len() - 1)?
            .split_at_checked(before)?;
        let count = entry(ends, (1 << bits) - 1)?;
        let at = rest.len().checked_sub(count.checked_mul(ENTRY)?)?;
        let (rest, postings) = rest.split_at_checked(at)?;
        let head = text.get(..rest.len().checked_sub(1)?)?;
        (rest.last() == Some(&b'|')).then_some((
            head,
            BundleIndex {
                bits,
                ends,
                postings,
            },
        ))
    }

    /// How many postings the index holds: the id mentions of its list.
    pub(super) fn postings(&self) -> usize {
        self.postings.len() / ENTRY
    }

    /// The list offsets of the postings in `id`'s bucket: the ends of every mention of `id` and
    /// of the other ids that share its bucket. `None` when an entry is malformed.
    pub(super) fn candidates(&self, id: u64) -> Option<impl Iterator<Item = Option<usize>> + '_> {
        let bucket = bucket(id, self.bits);
        let first = match bucket.checked_sub(1) {
            Some(before) => entry(self.ends, before)?,
            None => 0,
        };
        let last = entry(self.ends, bucket)?;
        Some((first..last).map(|slot| entry(self.postings, slot)))
    }
}

/// Entry `slot` of `entries`, `None` when it is beyond them or not hex.
fn entry(entries: &[u8], slot: usize) -> Option<usize> {
    let at = slot.checked_mul(ENTRY)?;
    let digits = entries.get(at..at.checked_add(ENTRY)?)?;
    usize::try_from(super::fingerprint_value(digits)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_found_where_they_end() {
        let list = b"900=11x1:60+12x1:40;44100000000000=11x2:1+7x1:1";
        assert_eq!(
            mentions(list),
            vec![
                (900, 3),
                (11, 6),
                (12, 14),
                (44_100_000_000_000, 34),
                (11, 37),
                (7, 43)
            ]
        );
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn every_mention_is_in_its_ids_bucket() {
        let list = "900=11x1:60+12x1:40;901=11x1:50+13x1:50;902=14x2:30+15x1:40";
        for bits in 0..=3 {
            let text = format!("{list}|{}", encode(list.as_bytes(), bits).unwrap());
            let (head, index) = BundleIndex::split(&text).unwrap();
            assert_eq!(head, list);
            let mut all = 0;
            for bucket in 0..1usize << bits {
                let first = bucket
                    .checked_sub(1)
                    .map_or(0, |b| entry(index.ends, b).unwrap());
                all += entry(index.ends, bucket).unwrap() - first;
            }
            assert_eq!(
                all,
                mentions(list.as_bytes()).len(),
                "every posting in one bucket"
            );
            for (id, end) in mentions(list.as_bytes()) {
                let found: Vec<usize> = index.candidates(id).unwrap().map(Option::unwrap).collect();
                assert!(
                    found.contains(&end),
                    "bits {bits}: {id} at {end} in {found:?}"
                );
                assert!(found.is_sorted(), "{found:?}");
            }
        }
    }

    #[test]
    fn bucket_bits_aim_at_two_to_four_postings_a_bucket() {
        assert_eq!(bits_for(0), 0);
        assert_eq!(bits_for(4), 0);
        assert_eq!(bits_for(5), 1);
        assert_eq!(bits_for(140), 6);
        assert_eq!(bits_for(1_000_000), MAX_BITS);
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn malformed_indexes_are_refused_or_fail_their_lookups() {
        let lookup = |text: &str| -> Vec<Option<usize>> {
            let (_, index) = BundleIndex::split(text).unwrap();
            index.candidates(1).unwrap().collect()
        };
        assert_eq!(
            BundleIndex::split("l|00000").map(|(head, _)| head),
            Some("l")
        );
        assert_eq!(lookup("l|00000"), vec![]);
        assert_eq!(lookup("l|000300010"), vec![Some(3)]);
        assert_eq!(
            lookup("l|00zz00010"),
            vec![None],
            "a posting that is not hex"
        );
        for bad in ["", "l|d", "l|0000", "l|00010", "l00000", "l|0003000110"] {
            assert!(BundleIndex::split(bad).is_none(), "{bad:?}");
        }
    }
}
