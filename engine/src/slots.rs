//! Recommendation slots: complement lines whose anchor product is already in the cart.
//!
//! The pipeline stores, per variant, the products most often bought with it (best first). When a
//! cart holds product A and also a product B from A's list, B's line is a slot: a discount on one
//! unit of B rewards completing the basket the model expected, without discounting A, which the
//! shopper was buying anyway.

use crate::cart::{Cart, Discountable};
use crate::decision::{Reason, ReasonCode};
use crate::detail::Detail;
use crate::format::MAX_COMPLEMENTS;

/// The cart indices of the slot lines, best complement rank first then cart order, at most
/// `max_slots`. Only discountable lines can be slots; bundle parents never are (their price is
/// already a bundle price set by the cart transform), and each one that would have qualified gets
/// a `line_bundle_parent_excluded` reason.
pub(crate) fn find(
    cart: &Cart<'_>,
    discountable: &[Discountable],
    max_slots: u32,
    offer_id: &str,
    reasons: &mut Vec<Reason>,
) -> Vec<usize> {
    let mut ranked: Vec<(usize, usize)> = Vec::new();
    for (index, line) in cart.lines.iter().enumerate() {
        let Some(data) = &line.data else {
            continue;
        };
        // The best rank at which any other product in the cart lists this line's product.
        let best_rank = cart
            .lines
            .iter()
            .filter_map(|anchor| anchor.data.as_ref())
            .filter(|anchor| anchor.product_id != data.product_id)
            .filter_map(|anchor| {
                anchor
                    .complements
                    .iter()
                    .position(|&id| id == data.product_id)
            })
            .min();
        let Some(rank) = best_rank else {
            continue;
        };
        if data.bundle_parent {
            reasons.push(Reason::new(
                ReasonCode::LineBundleParentExcluded,
                line.id,
                Detail::BundleParentNotSlot {
                    offer_id: offer_id.to_string(),
                },
            ));
            continue;
        }
        if discountable.iter().any(|d| d.index == index) {
            ranked.push((rank, index));
        }
    }
    // Ranks are below MAX_COMPLEMENTS, so one pass per rank orders the slots by rank then cart
    // order without a sort (which would cost the Function several KB of code).
    // INVARIANT: `ranked` is in cart order, so each pass keeps cart order within its rank.
    let limit = usize::try_from(max_slots).unwrap_or(usize::MAX);
    (0..MAX_COMPLEMENTS)
        .flat_map(|rank| {
            ranked
                .iter()
                .filter(move |(r, _)| *r == rank)
                .map(|(_, index)| *index)
        })
        .take(limit)
        .collect()
}
