//! The margin guard: no discount may take a line or the order below the merchant's floor.
//!
//! Floors and stacks are rounded up and discounts down, so every rounding step is in the
//! merchant's favour. The guard runs after the cap, on the amounts that would really be given.

use crate::arith::{self, Checked};
use crate::cart::{Cart, Discountable, Shipping};
use crate::money::{BPS_ONE, Money};
use crate::policy::Guard;
use crate::reward::{Amounts, covered, shipping_total};

/// How much discount each discountable line and the order as a whole can take.
#[derive(Debug, Clone)]
pub(crate) struct Headroom {
    pub lines: Vec<LineHeadroom>,
    /// `max(0, sum price - sum stack - order floor)` over the discountable lines.
    pub order: Money,
    /// Sum of the discountable lines' prices (the base Shopify allocates an order discount over).
    pub discountable_price: Money,
    /// The rules the rooms were computed with, for the unit rooms worked out on demand.
    guard: Guard,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct LineHeadroom {
    /// Index into the cart's readable lines.
    pub index: usize,
    pub price: Money,
    /// `max(0, price - stack - floor)` for the whole line.
    pub line: Money,
    /// Price and guard cost of one unit: a slot discounts one unit, and its room is worked out
    /// only for the few slot lines (see [`Headroom::unit`]).
    unit_price: Money,
    unit_cost: Money,
}

impl Headroom {
    /// The headroom of the line with cart index `index`: the one at `position` in
    /// [`Headroom::lines`] when it is that line, else found by binary search. `position` moves
    /// past the line found.
    ///
    /// Amounts are mostly in cart order, as the headroom lines are, so walking both side by side
    /// finds each line with one comparison instead of a search per line (measured: the search
    /// cost 1.5 M instructions at 2,000 lines).
    fn find(&self, index: usize, position: &mut usize) -> Option<&LineHeadroom> {
        let found = match self.lines.get(*position) {
            Some(line) if line.index == index => *position,
            // INVARIANT: `lines` is in increasing cart index (built in discountable order).
            _ => self.lines.binary_search_by_key(&index, |h| h.index).ok()?,
        };
        *position = found + 1;
        self.lines.get(found)
    }

    /// The headroom of one unit of `line`, which is what a slot discounts. It cannot overflow
    /// when the whole line's did not: every term is at most the line's.
    fn unit(&self, line: &LineHeadroom) -> Checked<Money> {
        room(line.unit_price, line.unit_cost, &self.guard)
    }
}

/// The headroom of one amount: `max(0, price - ceil(price x stack) - ceil(cost x (1 + margin)))`.
pub(crate) fn room(price: Money, cost: Money, guard: &Guard) -> Checked<Money> {
    Ok(room_and_stack(price, cost, guard)?.0)
}

/// [`room`], and the stack it assumed on `price` (the order's headroom sums the lines' stacks).
fn room_and_stack(price: Money, cost: Money, guard: &Guard) -> Checked<(Money, Money)> {
    let stack = arith::bps_ceil(price, guard.assumed_stack_bps)?;
    let floor = arith::margin_floor(cost, guard.min_line_margin_bps)?;
    Ok((arith::sub(arith::sub(price, stack)?, floor)?.max(0), stack))
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
        let (room, stack) = room_and_stack(line.price, d.cost, guard)?;
        lines.push(LineHeadroom {
            index: d.index,
            price: line.price,
            line: room,
            unit_price: line.unit_price,
            unit_cost: d.unit_cost,
        });
        total_price = arith::add(total_price, line.price)?;
        total_stack = arith::add(total_stack, stack)?;
        total_cost = arith::add(total_cost, d.cost)?;
    }
    let order_floor = arith::margin_floor(total_cost, guard.min_order_margin_bps)?;
    let order = arith::sub(arith::sub(total_price, total_stack)?, order_floor)?.max(0);
    Ok(Headroom {
        lines,
        order,
        discountable_price: total_price,
        guard: *guard,
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
            let mut position = 0;
            for line in lines.iter_mut() {
                let room = match headroom.find(line.index, &mut position) {
                    None => 0,
                    Some(h) if line.slot => headroom.unit(h)?.min(h.line),
                    Some(h) => h.line,
                };
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
        Amounts::Shipping { bps, groups } => {
            let total = shipping_total(covered(shipping, *groups))?;
            if total > 0 {
                let most = arith::mul_div_floor(headroom.order, BPS_ONE, total)?;
                *bps = (*bps).min(most);
            }
        }
    }
    Ok(())
}
