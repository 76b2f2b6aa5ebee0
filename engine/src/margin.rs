//! The margin picture after the decision: what the lines of known cost bring in, cost, and what
//! this run gives away on them.

use crate::arith::{self, Checked};
use crate::cart::{Cart, Discountable};
use crate::decision::{Decision, MarginSummary};
use crate::money::BPS_ONE;
use crate::reward::{covered, shipping_value};

/// Summarizes the margin of the discountable lines whose cost is known, counting only the
/// discounts this run renders (a run that leaves the winner to the other target gives nothing).
///
/// An order discount is spread by Shopify over every discountable line; the part on lines of
/// known cost is estimated as its price share, rounded up. Shipping given away counts against
/// the margin too: `margin_kept_bps = (revenue - discount - shipping discount - cost) / revenue`.
///
/// `line_discount_indices` holds the cart index of each of `decision.line_discounts`, in order.
pub(crate) fn summarize(
    cart: &Cart<'_>,
    discountable: &[Discountable],
    decision: &Decision,
    line_discount_indices: &[usize],
) -> Checked<MarginSummary> {
    // The discountable lines whose cost is known.
    let known = || {
        discountable
            .iter()
            .filter_map(|d| cart.line(d.index))
            .filter(|line| line.unit_cost.is_some())
    };
    // One pass over the lines for the three sums (they ran as three, over a collected list).
    let (mut revenue, mut cost, mut all_discountable_price) = (0, 0, 0);
    for d in discountable {
        let Some(line) = cart.line(d.index) else {
            continue;
        };
        all_discountable_price = arith::add(all_discountable_price, line.price)?;
        if line.unit_cost.is_some() {
            revenue = arith::add(revenue, line.price)?;
            cost = arith::add(cost, d.cost)?;
        }
    }

    let mut discount = 0;
    for (position, line_discount) in decision.line_discounts.iter().enumerate() {
        // A discount counts when a line of known cost carries its line id. Its own line is found
        // by index (INVARIANT: `discountable` is in increasing index); only when that line's cost
        // is unknown (`unknown_cost: allow`) are the other lines' ids compared, which keeps the
        // rule for carts that repeat a line id without making every run quadratic.
        let own_line_known = line_discount_indices.get(position).is_some_and(|&index| {
            discountable
                .binary_search_by_key(&index, |d| d.index)
                .is_ok()
                && cart
                    .line(index)
                    .is_some_and(|line| line.unit_cost.is_some())
        });
        let on_known_line = own_line_known || known().any(|line| line.id == line_discount.line_id);
        if on_known_line {
            discount = arith::add(discount, line_discount.amount_minor)?;
        }
    }
    if let Some(order) = &decision.order_discount
        && all_discountable_price > 0
    {
        let share = arith::mul_div_ceil(order.amount_minor, revenue, all_discountable_price)?;
        discount = arith::add(discount, share)?;
    }
    // INVARIANT: every shipping discount of one decision carries the winner's single percentage,
    // so the first one describes them all, and they cover the cart's first delivery groups.
    let shipping_discount = match decision.shipping_discounts.first() {
        Some(first) => shipping_value(
            first.percent_bps,
            covered(&cart.shipping, decision.shipping_discounts.len()),
        )?,
        None => 0,
    };
    let kept = arith::sub(
        arith::sub(arith::sub(revenue, discount)?, shipping_discount)?,
        cost,
    )?;
    let margin_kept_bps = if revenue > 0 {
        arith::mul_div_floor(kept, BPS_ONE, revenue)?
    } else {
        0
    };
    Ok(MarginSummary {
        revenue_minor: revenue,
        cost_minor: cost,
        discount_minor: discount,
        shipping_discount_minor: shipping_discount,
        margin_kept_bps,
    })
}
