//! Recommendation slots: complement lines whose anchor product is already in the cart.
//!
//! The pipeline stores, per variant, the products most often bought with it (best first). When a
//! cart holds product A and also a product B from A's list, B's line is a slot: a discount on one
//! unit of B rewards completing the basket the model expected, without discounting A, which the
//! shopper was buying anyway.

use std::cell::OnceCell;

use crate::cart::{Cart, Discountable};
use crate::decision::{Reason, ReasonCode};
use crate::detail::Detail;
use crate::format::{MAX_COMPLEMENTS, VariantData};
use crate::min_table::MinTable;

/// The cart indices of the slot lines, best complement rank first then cart order, at most
/// `max_slots`. Only discountable lines can be slots; bundle parents never are (their price is
/// already a bundle price set by the cart transform), and each one that would have qualified gets
/// a `line_bundle_parent_excluded` reason, once per run however many slot offers the policy has
/// (once per offer, 24 offers on 2,000 such lines went over Shopify's memory limit).
///
/// `candidates` caches what the search works out from `cart` and `discountable`, so that it is
/// worked out once however many slot offers the policy has: it must come from the same two (the
/// evaluation keeps all three side by side).
pub(crate) fn find(
    cart: &Cart<'_>,
    discountable: &[Discountable],
    candidates: &OnceCell<Candidates>,
    max_slots: u32,
    reasons: &mut Vec<Reason>,
) -> Vec<usize> {
    let mut first = false;
    let candidates = candidates.get_or_init(|| {
        first = true;
        Candidates::of(cart, discountable)
    });
    if first {
        for &index in &candidates.bundle_parents {
            if let Some(line) = cart.line(index) {
                reasons.push(Reason::new(
                    ReasonCode::LineBundleParentExcluded,
                    line.id,
                    Detail::BundleParentNotSlot,
                ));
            }
        }
    }
    let limit = usize::try_from(max_slots).unwrap_or(usize::MAX);
    candidates.best_first.iter().take(limit).copied().collect()
}

/// Every line that could be a slot, and the bundle parents that would have been.
#[derive(Debug, Clone)]
pub(crate) struct Candidates {
    /// Cart indices of the discountable lines some other product recommends, best rank first,
    /// then cart order.
    best_first: Vec<usize>,
    /// Cart indices of bundle parents some other product recommends, in cart order.
    bundle_parents: Vec<usize>,
}

impl Candidates {
    fn of(cart: &Cart<'_>, discountable: &[Discountable]) -> Candidates {
        let best_ranks = BestRanks::of(cart.lines.iter().filter_map(|line| line.data.as_ref()));
        let mut ranked: Vec<(usize, usize)> = Vec::new();
        let mut bundle_parents = Vec::new();
        // INVARIANT: `discountable` is in increasing cart index (Cart::discountable keeps cart
        // order), so walking it beside the lines tells which lines are discountable, without a
        // search per line.
        let mut discountable = discountable.iter().map(|d| d.index).peekable();
        for (index, line) in cart.lines.iter().enumerate() {
            let is_discountable = {
                while discountable.next_if(|&d| d < index).is_some() {}
                discountable.peek() == Some(&index)
            };
            let Some(data) = &line.data else {
                continue;
            };
            // The best rank at which any other product in the cart lists this line's product.
            let Some(rank) = best_ranks.get(data.product_id) else {
                continue;
            };
            if data.bundle_parent {
                bundle_parents.push(index);
                continue;
            }
            if is_discountable {
                ranked.push((rank, index));
            }
        }
        // Ranks are below MAX_COMPLEMENTS: counting the lines per rank gives each rank's place in
        // the result, so two passes order the slots by rank then cart order without a sort
        // (which would cost the Function several KB of code).
        // INVARIANT: `ranked` is in cart order, so placing in that order keeps cart order within
        // each rank.
        let mut starts = [0usize; MAX_COMPLEMENTS + 1];
        for &(rank, _) in &ranked {
            if let Some(count) = starts.get_mut(rank + 1) {
                *count += 1;
            }
        }
        for rank in 1..starts.len() {
            let before = starts.get(rank - 1).copied().unwrap_or(0);
            if let Some(start) = starts.get_mut(rank) {
                *start += before;
            }
        }
        let mut best_first = vec![0; ranked.len()];
        for &(rank, index) in &ranked {
            if let Some(next) = starts.get_mut(rank)
                && let Some(slot) = best_first.get_mut(*next)
            {
                *slot = index;
                *next += 1;
            }
        }
        Candidates {
            best_first,
            bundle_parents,
        }
    }
}

/// For every product some line lists as a complement, the best (lowest) rank at which a line of
/// another product lists it.
///
/// Built once per cart so that finding a line's rank is one lookup instead of a scan of every
/// other line's list: the scan made slot offers quadratic in the number of lines (18 M
/// instructions at 200 lines, over Shopify's limit).
#[derive(Debug, Clone)]
struct BestRanks(MinTable);

impl BestRanks {
    /// The table of the complements `anchors` list (the variant data of the cart's lines).
    fn of<'a>(anchors: impl Iterator<Item = &'a VariantData> + Clone) -> BestRanks {
        let n_entries: usize = anchors.clone().map(|data| data.complements.len()).sum();
        let mut table = MinTable::with_capacity(n_entries);
        for anchor in anchors {
            // INVARIANT: at most MAX_COMPLEMENTS (8) complements, so every rank fits in a u32.
            for (rank, &product_id) in (0u32..).zip(&anchor.complements) {
                // A product listing itself is no recommendation: only other products count.
                if product_id != anchor.product_id {
                    table.lower(product_id, rank);
                }
            }
        }
        BestRanks(table)
    }

    /// The best rank at which another product lists `product_id`.
    fn get(&self, product_id: u64) -> Option<usize> {
        usize::try_from(self.0.get(product_id)?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    fn variant(product_id: u64, complements: Vec<u64>) -> VariantData {
        VariantData {
            unit_cost_minor: Some(100),
            product_id,
            complements,
            bundle_parent: false,
        }
    }

    proptest! {
        /// The table gives every product the best rank a scan of the other products' lists
        /// gives, and nothing for products no other product lists. Few distinct ids make
        /// collisions and repeated keys common.
        #[test]
        fn best_ranks_agree_with_a_scan(
            anchors in vec((0u64..24, vec(0u64..24, 0..=MAX_COMPLEMENTS)), 0..40),
            extreme in any::<u64>(),
        ) {
            let mut data: Vec<VariantData> =
                anchors.into_iter().map(|(id, list)| variant(id, list)).collect();
            data.push(variant(1, vec![extreme, u64::MAX, 0]));
            let table = BestRanks::of(data.iter());
            for product in (0..24).chain([extreme, u64::MAX]) {
                let scan = data
                    .iter()
                    .filter_map(|anchor| {
                        anchor
                            .complements
                            .iter()
                            .position(|&c| c == product && c != anchor.product_id)
                    })
                    .min();
                prop_assert_eq!(table.get(product), scan, "product {}", product);
            }
        }
    }
}
