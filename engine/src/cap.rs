//! The offer's cap: the most one offer may give on one order, all of its discounts together.

use crate::arith::{self, Checked};
use crate::cart::Shipping;
use crate::money::{BPS_ONE, Money};
use crate::reward::{Amounts, covered, shipping_total};

/// Bounds `amounts` so their total value is at most `cap` (presentment minor units).
///
/// The cap is filled in the order the offer lists its lines (cart order; best complement rank
/// first for slots), so later lines lose first; a shipping percentage is lowered to the largest that keeps the summed,
/// per-group-rounded value within the cap.
pub(crate) fn apply(amounts: &mut Amounts, cap: Money, shipping: &[Shipping<'_>]) -> Checked<()> {
    match amounts {
        Amounts::Lines(lines) => {
            let mut left = cap.max(0);
            for line in lines.iter_mut() {
                line.amount = line.amount.min(left);
                left = arith::sub(left, line.amount)?;
            }
        }
        Amounts::Order(amount) => *amount = (*amount).min(cap.max(0)),
        Amounts::Shipping { bps, groups } => {
            let total = shipping_total(covered(shipping, *groups))?;
            if total > 0 {
                // floor(sum cost_g * bps) >= sum floor(cost_g * bps), so bounding the whole by the
                // cap bounds the per-group sum too.
                let most = arith::mul_div_floor(cap.max(0), BPS_ONE, total)?;
                *bps = (*bps).min(most);
            }
        }
    }
    Ok(())
}
