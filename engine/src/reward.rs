//! What an offer would give on this cart before cap and guard: the proposed amounts per line,
//! for the order, or as a shipping percentage.

use std::cell::OnceCell;

use crate::arith::{self, Checked};
use crate::cart::{Cart, Conversion, Discountable, Shipping};
use crate::decision::{Reason, ReasonCode};
use crate::detail::Detail;
use crate::money::{Bps, Money};
use crate::policy::Reward;
use crate::slots;

/// A discount on one cart line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LineAmount {
    /// Index into the cart's readable lines.
    pub index: usize,
    pub amount: Money,
    /// A recommendation slot discounts one unit only, so the guard checks it per unit.
    pub slot: bool,
}

/// An offer's discount, in one of the three shapes Shopify can render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Amounts {
    /// Product discounts, in cart order (rendered by the cart lines target).
    Lines(Vec<LineAmount>),
    /// One order discount, allocated by Shopify over the discountable lines.
    Order(Money),
    /// A percentage off the first `groups` delivery groups with a known cost: all of them, unless
    /// the output could not hold their candidates (rendered by the delivery target).
    Shipping { bps: Bps, groups: usize },
}

/// Why an offer gives nothing on this cart, before cap and guard.
pub(crate) struct NothingToGive {
    pub code: ReasonCode,
    pub detail: Detail,
}

impl From<arith::Overflow> for NothingToGive {
    fn from(_: arith::Overflow) -> Self {
        NothingToGive {
            code: ReasonCode::Overflow,
            detail: Detail::ProposalOverflow,
        }
    }
}

/// The delivery groups a shipping discount of `groups` groups covers: the first ones.
pub(crate) fn covered<'s, 'r>(shipping: &'s [Shipping<'r>], groups: usize) -> &'s [Shipping<'r>] {
    shipping.get(..groups).unwrap_or(shipping)
}

/// Sum of the known shipping costs.
pub(crate) fn shipping_total(shipping: &[Shipping<'_>]) -> Checked<Money> {
    arith::sum(shipping.iter().map(|s| s.cost))
}

/// What `bps` off every known shipping cost is worth: each group rounded down on its own, the way
/// the discount is applied.
pub(crate) fn shipping_value(bps: Bps, shipping: &[Shipping<'_>]) -> Checked<Money> {
    shipping.iter().try_fold(0, |total, s| {
        arith::add(total, arith::bps_floor(s.cost, bps)?)
    })
}

/// The total value of an offer's discount to the shopper.
pub(crate) fn value(amounts: &Amounts, shipping: &[Shipping<'_>]) -> Checked<Money> {
    match amounts {
        Amounts::Lines(lines) => arith::sum(lines.iter().map(|l| l.amount)),
        Amounts::Order(amount) => Ok(*amount),
        Amounts::Shipping { bps, groups } => shipping_value(*bps, covered(shipping, *groups)),
    }
}

/// An offer's proposed discount, with what it is worth before any cap.
pub(crate) struct Proposal {
    /// The amounts. A discount on every line leaves out the lines after the one that reaches the
    /// cap it was proposed under (the cap would bring them to 0), so the cap and the guard walk
    /// only the lines that can get something.
    pub amounts: Amounts,
    /// The total of every proposed amount, lines left out included: `Err` when it overflows.
    pub value: Checked<Money>,
}

/// Lines proposed under `cap` (presentment minor units; `None` for no cap): every amount counts
/// towards the value, but a line is kept only while the lines before it leave some of the cap.
struct UnderCap {
    lines: Vec<LineAmount>,
    value: Checked<Money>,
    left: Money,
}

impl UnderCap {
    fn new(capacity: usize, cap: Option<Money>) -> Self {
        Self {
            lines: Vec::with_capacity(capacity),
            value: Ok(0),
            left: cap.map_or(Money::MAX, |cap| cap.max(0)),
        }
    }

    fn push(&mut self, line: LineAmount) {
        self.value = self.value.and_then(|value| arith::add(value, line.amount));
        if self.left > 0 {
            self.left = self.left.saturating_sub(line.amount);
            self.lines.push(line);
        }
    }

    fn proposal(self) -> Proposal {
        Proposal {
            amounts: Amounts::Lines(self.lines),
            value: self.value,
        }
    }
}

/// Computes the offer's proposed discount; `cap` is the offer's cap in presentment minor units,
/// when it has one and it converts. `reasons` receives line-level notes (bundle parents left out
/// of slots); the returned error is the offer's terminal reason.
#[allow(clippy::too_many_arguments)]
pub(crate) fn propose(
    reward: &Reward,
    cart: &Cart<'_>,
    discountable: &[Discountable],
    slot_candidates: &OnceCell<slots::Candidates>,
    conversion: Conversion,
    cap: Option<Money>,
    reasons: &mut Vec<Reason>,
) -> Result<Proposal, NothingToGive> {
    let no_lines = || NothingToGive {
        code: ReasonCode::NoTargetLines,
        detail: Detail::NoLineWithKnownCost,
    };
    let price = |d: &Discountable| cart.line(d.index).map_or(0, |line| line.price);
    match *reward {
        Reward::OrderPercent { bps } => {
            if discountable.is_empty() {
                return Err(no_lines());
            }
            let subtotal = arith::sum(discountable.iter().map(price))?;
            Ok(whole(
                cart,
                Amounts::Order(arith::bps_floor(subtotal, bps)?),
            ))
        }
        Reward::OrderFixed { amount } => {
            if discountable.is_empty() {
                return Err(no_lines());
            }
            let subtotal = arith::sum(discountable.iter().map(price))?;
            Ok(whole(
                cart,
                Amounts::Order(conversion.to_presentment(amount)?.min(subtotal)),
            ))
        }
        Reward::LinesPercent { bps } => {
            if discountable.is_empty() {
                return Err(no_lines());
            }
            let mut lines = UnderCap::new(discountable.len(), cap);
            for d in discountable {
                lines.push(LineAmount {
                    index: d.index,
                    amount: arith::bps_floor(price(d), bps)?,
                    slot: false,
                });
            }
            Ok(lines.proposal())
        }
        Reward::LinesFixed { amount_per_unit } => {
            if discountable.is_empty() {
                return Err(no_lines());
            }
            let per_unit = conversion.to_presentment(amount_per_unit)?;
            let mut lines = UnderCap::new(discountable.len(), cap);
            for d in discountable {
                let Some(line) = cart.line(d.index) else {
                    continue;
                };
                // A fixed amount per unit never exceeds the line's price: Shopify would clamp it,
                // and the value the engine reports must be what the shopper actually gets.
                let amount = match arith::mul(per_unit, line.quantity) {
                    Ok(amount) => amount.min(line.price),
                    Err(_) => line.price,
                };
                lines.push(LineAmount {
                    index: d.index,
                    amount,
                    slot: false,
                });
            }
            Ok(lines.proposal())
        }
        Reward::SlotPercent { bps, max_slots } => {
            let slots = slots::find(cart, discountable, slot_candidates, max_slots, reasons);
            if slots.is_empty() {
                return Err(NothingToGive {
                    code: ReasonCode::NoSlotFound,
                    detail: Detail::NoComplement,
                });
            }
            let mut lines = Vec::with_capacity(slots.len());
            for index in slots {
                let unit_price = cart.line(index).map_or(0, |line| line.unit_price);
                lines.push(LineAmount {
                    index,
                    amount: arith::bps_floor(unit_price, bps)?,
                    slot: true,
                });
            }
            Ok(whole(cart, Amounts::Lines(lines)))
        }
        Reward::ShippingPercent { bps } => shipping(cart, bps).map(|a| whole(cart, a)),
        Reward::FreeShipping => shipping(cart, crate::money::BPS_ONE).map(|a| whole(cart, a)),
    }
}

/// A proposal that leaves nothing out: its value is its amounts'.
fn whole(cart: &Cart<'_>, amounts: Amounts) -> Proposal {
    Proposal {
        value: value(&amounts, &cart.shipping),
        amounts,
    }
}

fn shipping(cart: &Cart<'_>, bps: Bps) -> Result<Amounts, NothingToGive> {
    if cart.shipping.is_empty() {
        return Err(NothingToGive {
            code: ReasonCode::NoShippingToDiscount,
            detail: Detail::NoShippingCost,
        });
    }
    Ok(Amounts::Shipping {
        bps,
        groups: cart.shipping.len(),
    })
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;

    fn under_cap(cap: Option<Money>, amounts: &[Money]) -> (Vec<Money>, Checked<Money>) {
        let mut lines = UnderCap::new(amounts.len(), cap);
        for (index, &amount) in amounts.iter().enumerate() {
            lines.push(LineAmount {
                index,
                amount,
                slot: false,
            });
        }
        let proposal = lines.proposal();
        let Amounts::Lines(kept) = proposal.amounts else {
            panic!("lines expected");
        };
        (kept.iter().map(|l| l.amount).collect(), proposal.value)
    }

    #[test]
    fn lines_past_the_cap_are_left_out_but_counted() {
        // The line that reaches the cap is kept (the cap lowers it); the ones after it are not.
        assert_eq!(under_cap(Some(10), &[4, 6, 5, 3]), (vec![4, 6], Ok(18)));
        assert_eq!(under_cap(Some(9), &[4, 6, 5, 3]), (vec![4, 6], Ok(18)));
        // Lines worth nothing before the cap is reached are kept.
        assert_eq!(under_cap(Some(5), &[0, 4, 2, 1]), (vec![0, 4, 2], Ok(7)));
        assert_eq!(under_cap(None, &[4, 6, 5]), (vec![4, 6, 5], Ok(15)));
        assert_eq!(under_cap(Some(0), &[4, 6]), (vec![], Ok(10)));
        assert_eq!(under_cap(Some(-3), &[4]), (vec![], Ok(4)));
        // The value overflows as the sum of every amount would; the lines are still bounded.
        assert_eq!(
            under_cap(Some(1), &[Money::MAX, 1]),
            (vec![Money::MAX], Err(arith::Overflow))
        );
    }
}
