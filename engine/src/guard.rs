//! The margin guard: no discount may take a line or the order below the merchant's floor.
//!
//! Floors and stacks are rounded up and discounts down, so every rounding step is in the
//! merchant's favour. The guard runs after the cap, on the amounts that would really be given.

use crate::arith::{self, Checked};
use crate::cart::{Cart, Discountable, Shipping};
use crate::money::{BPS_ONE, Money};
use crate::policy::Guard;
use crate::reward::{Amounts, shipping_total};

/// How much discount each discountable line and the order as a whole can take.
#[derive(Debug, Clone)]
pub(crate) struct Headroom {
    pub lines: Vec<LineHeadroom>,
    /// `max(0, sum price - sum stack - order floor)` over the discountable lines.
    pub order: Money,
    /// Sum of the discountable lines' prices (the base Shopify allocates an order discount over).
    pub discountable_price: Money,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct LineHeadroom {
    /// Index into the cart's readable lines.
    pub index: usize,
    pub price: Money,
    /// `max(0, price - stack - floor)` for the whole line.
    pub line: Money,
    /// The same for one unit, which is what a slot discounts.
    pub unit: Money,
}

/// The headroom of one amount: `max(0, price - ceil(price x stack) - ceil(cost x (1 + margin)))`.
pub(crate) fn room(price: Money, cost: Money, guard: &Guard) -> Checked<Money> {
    let stack = arith::bps_ceil(price, guard.assumed_stack_bps)?;
    let floor = arith::margin_floor(cost, guard.min_line_margin_bps)?;
    Ok(arith::sub(arith::sub(price, stack)?, floor)?.max(0))
}

/// Computes the headroom of every discountable line and of the order.
pub(crate) fn headroom(
    cart: &Cart<'_>,
    discountable: &[Discountable],
    guard: &Guard,
) -> Checked<Headroom> {
    let mut lines = Vec::with_capacity(discountable.len());
    let (mut total_price, mut total_stack, mut total_cost) = (0, 0, 0);
    for d in discountable {
        let Some(line) = cart.line(d.index) else {
            continue;
        };
        lines.push(LineHeadroom {
            index: d.index,
            price: line.price,
            line: room(line.price, d.cost, guard)?,
            unit: room(line.unit_price, d.unit_cost, guard)?,
        });
        total_price = arith::add(total_price, line.price)?;
        total_stack = arith::add(
            total_stack,
            arith::bps_ceil(line.price, guard.assumed_stack_bps)?,
        )?;
        total_cost = arith::add(total_cost, d.cost)?;
    }
    let order_floor = arith::margin_floor(total_cost, guard.min_order_margin_bps)?;
    let order = arith::sub(arith::sub(total_price, total_stack)?, order_floor)?.max(0);
    Ok(Headroom {
        lines,
        order,
        discountable_price: total_price,
    })
}

/// Lowers `amounts` until every line and the order keep their floors.
///
/// The guard only ever lowers an amount, never raises one, so it cannot undo the cap that ran
/// before it; the property tests check both bounds on the final decision.
pub(crate) fn apply(
    amounts: &mut Amounts,
    headroom: &Headroom,
    shipping: &[Shipping<'_>],
) -> Checked<()> {
    match amounts {
        Amounts::Lines(lines) => {
            for line in lines.iter_mut() {
                // INVARIANT: `headroom.lines` is in increasing cart index (built from the
                // discountable lines in cart order), so a binary search finds the line; a scan
                // made the guard quadratic in the number of lines.
                let room = headroom
                    .lines
                    .binary_search_by_key(&line.index, |h| h.index)
                    .ok()
                    .and_then(|position| headroom.lines.get(position))
                    .map_or(0, |h| {
                        if line.slot {
                            h.unit.min(h.line)
                        } else {
                            h.line
                        }
                    });
                line.amount = line.amount.min(room);
            }
            // INVARIANT: from here on every amount is at most its line's headroom; the loop below
            // only lowers amounts, so that stays true while the sum is brought under the order's.
            // The lines together must also leave the order its floor; later lines give way first.
            let mut excess =
                arith::sub(arith::sum(lines.iter().map(|l| l.amount))?, headroom.order)?;
            for line in lines.iter_mut().rev() {
                if excess <= 0 {
                    break;
                }
                let cut = line.amount.min(excess);
                line.amount = arith::sub(line.amount, cut)?;
                excess = arith::sub(excess, cut)?;
            }
        }
        Amounts::Order(amount) => {
            let mut most = headroom.order;
            let total = headroom.discountable_price;
            for line in &headroom.lines {
                if line.price > 0 {
                    // Shopify gives each line about amount x price / total, rounding per line; the
                    // one unit kept back absorbs that rounding.
                    let share_room = arith::sub(line.line, 1)?.max(0);
                    most = most.min(arith::mul_div_floor(share_room, total, line.price)?);
                }
            }
            *amount = (*amount).min(most.max(0));
        }
        Amounts::Shipping { bps } => {
            let total = shipping_total(shipping)?;
            if total > 0 {
                let most = arith::mul_div_floor(headroom.order, BPS_ONE, total)?;
                *bps = (*bps).min(most);
            }
        }
    }
    Ok(())
}
