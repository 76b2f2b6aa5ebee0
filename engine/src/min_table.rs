//! A small table from ids (product or variant ids) to the least value recorded for each.
//!
//! The Functions look ids up once per cart line or bundle; `HashMap` (its hasher and table code)
//! would cost each Function several KB of its 128 KB, and a sorted list needs a sort, which costs
//! code size too. Ids are already well spread, and a multiplicative hash spreads them over the
//! table. Keys and values are two zeroed arrays, which the allocator hands out in one
//! `memory.fill` instead of writing an empty marker per slot.

/// Open addressing with linear probing; the table never grows, so it is sized for every key it
/// will hold up front.
#[derive(Debug, Clone)]
pub(crate) struct MinTable {
    /// The id in each slot; meaningful only where `values` is not 0.
    keys: Vec<u64>,
    /// `least value + 1` of the id in each slot; 0 marks an empty slot. The length of both is a
    /// power of two at least twice the number of keys, so probing always ends at an empty slot.
    values: Vec<u32>,
}

impl MinTable {
    /// A table for at most `keys` distinct ids.
    pub fn with_capacity(keys: usize) -> MinTable {
        let size = keys.saturating_mul(2).max(8).next_power_of_two();
        MinTable {
            keys: vec![0; size],
            values: vec![0; size],
        }
    }

    /// The slot holding `id`, or the empty slot where it would go.
    fn position(&self, id: u64) -> usize {
        let mask = self.values.len().wrapping_sub(1);
        // Fibonacci hashing: the high bits of the product are well mixed even for sequential
        // ids. 24 bits cover any table a Function's input can fill.
        let mut position = (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize & mask;
        while let (Some(&value), Some(&key)) = (self.values.get(position), self.keys.get(position))
        {
            if value == 0 || key == id {
                break;
            }
            position = (position + 1) & mask;
        }
        position
    }

    /// Records `value` for `id`, keeping the least value recorded. A `value` of `u32::MAX` is
    /// not recorded (no caller comes near it: values are ranks and list positions).
    pub fn lower(&mut self, id: u64, value: u32) {
        let Some(stored) = value.checked_add(1) else {
            return;
        };
        let position = self.position(id);
        if let (Some(least), Some(key)) =
            (self.values.get_mut(position), self.keys.get_mut(position))
        {
            if *least == 0 || stored < *least {
                *least = stored;
            }
            *key = id;
        }
    }

    /// The value recorded for `id`; when there is none, records `value` and returns it. One probe
    /// where [`MinTable::get`] then [`MinTable::lower`] would take two.
    pub fn get_or_insert(&mut self, id: u64, value: u32) -> u32 {
        let position = self.position(id);
        match (self.values.get_mut(position), self.keys.get_mut(position)) {
            (Some(stored), Some(key)) => match stored.checked_sub(1) {
                Some(existing) => existing,
                None => {
                    // `u32::MAX` cannot be stored (see `lower`); it is returned unrecorded.
                    if let Some(new) = value.checked_add(1) {
                        *stored = new;
                        *key = id;
                    }
                    value
                }
            },
            _ => value,
        }
    }

    /// The least value recorded for `id`.
    pub fn get(&self, id: u64) -> Option<u32> {
        self.values.get(self.position(id))?.checked_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    proptest! {
        /// The table answers as a scan of everything recorded does; few distinct ids make
        /// collisions and repeated keys common, and the extreme ids are always in play.
        #[test]
        fn least_values_agree_with_a_scan(
            records in vec((prop_oneof![0u64..24, Just(u64::MAX), any::<u64>()], 0u32..50), 0..60),
            extra in any::<u64>(),
        ) {
            let mut table = MinTable::with_capacity(records.len());
            for &(id, value) in &records {
                table.lower(id, value);
            }
            for id in (0..24).chain([u64::MAX, extra]).chain(records.iter().map(|r| r.0)) {
                let scan = records.iter().filter(|r| r.0 == id).map(|r| r.1).min();
                prop_assert_eq!(table.get(id), scan, "id {}", id);
            }
        }

        /// `get_or_insert` answers with the first value given for an id, as a list of first
        /// values does, and leaves the table answering `get` the same way.
        #[test]
        fn get_or_insert_keeps_the_first_value(
            records in vec((prop_oneof![0u64..24, Just(u64::MAX), any::<u64>()], 0u32..50), 0..60),
        ) {
            let mut table = MinTable::with_capacity(records.len());
            for (n, &(id, value)) in records.iter().enumerate() {
                let first = records.iter().take(n + 1).find(|r| r.0 == id).map(|r| r.1);
                prop_assert_eq!(Some(table.get_or_insert(id, value)), first, "id {}", id);
            }
            for &(id, _) in &records {
                let first = records.iter().find(|r| r.0 == id).map(|r| r.1);
                prop_assert_eq!(table.get(id), first, "id {}", id);
            }
        }
    }
}
