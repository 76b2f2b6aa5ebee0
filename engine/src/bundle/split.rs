//! Splitting a bundle parent's unit price over its components so the parts add up exactly.
//!
//! Each component unit is worth `weight` shares of the parent's price. The ideal price of one
//! unit of component `c` is `P x w_c / W` with `W = sum(q_c x w_c)`; every unit first gets the
//! floor of that, and the few minor units left over (fewer than the number of units) go one per
//! unit to the units with the largest remainders, ties to the earlier component (largest-remainder
//! method, in minor units of the presentment currency, so JPY, USD and KWD all split exactly).
//!
//! When only some units of one component get the extra minor unit, that component comes back as
//! two parts with prices one minor unit apart: with `q_c > 1` there is sometimes no single
//! integer unit price that makes the sum exact (a pair of socks for 10.01).

use crate::format::BundleComponent;
use crate::money::Money;

/// `quantity` units (per parent unit) of component `component` at `unit_price` each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitPart {
    /// Index into the bundle's component list.
    pub component: usize,
    pub quantity: i64,
    pub unit_price: Money,
}

/// Splits one parent unit's price; `None` when the price is negative, there are no components or
/// a weight or quantity is not positive.
///
/// INVARIANT: `sum(part.quantity x part.unit_price) == parent_unit_price`, every part has
/// `quantity >= 1`, and the quantities of one component add up to its bundle quantity.
pub fn split_price(
    parent_unit_price: Money,
    components: &[BundleComponent],
) -> Option<Vec<SplitPart>> {
    if parent_unit_price < 0
        || components.is_empty()
        || components.iter().any(|c| c.quantity < 1 || c.weight < 1)
    {
        return None;
    }
    let price = i128::from(parent_unit_price);
    let total_weight = components.iter().try_fold(0i128, |sum, c| {
        sum.checked_add(wide_mul(c.quantity, c.weight))
    })?;
    // Per component: floor of the ideal unit price, and the remainder that ranks it.
    let mut floors = Vec::with_capacity(components.len());
    let mut allocated: i128 = 0;
    for component in components {
        let (floor, remainder) = share(parent_unit_price, component.weight, total_weight)?;
        allocated =
            allocated.checked_add(wide_mul(i64::try_from(floor).ok()?, component.quantity))?;
        floors.push((floor, remainder));
    }
    let mut left = price.checked_sub(allocated)?;
    // The leftover minor units go to the largest remainders first, ties to the earlier
    // component (repeated maximum rather than a sort: at most 16 components, and a sort would
    // cost the Function several KB of code).
    let mut extra_units = vec![0i64; components.len()];
    let mut served = vec![false; components.len()];
    while left > 0 {
        let mut best: Option<(usize, i128)> = None;
        for (index, (_, remainder)) in floors.iter().enumerate() {
            if served.get(index).copied().unwrap_or(true) {
                continue;
            }
            if best.is_none_or(|(_, top)| *remainder > top) {
                best = Some((index, *remainder));
            }
        }
        let Some((index, _)) = best else {
            break;
        };
        let (Some(component), Some(slot), Some(flag)) = (
            components.get(index),
            extra_units.get_mut(index),
            served.get_mut(index),
        ) else {
            break;
        };
        *flag = true;
        let given = left.min(i128::from(component.quantity));
        *slot = i64::try_from(given).ok()?;
        left = left.checked_sub(given)?;
    }
    // INVARIANT: the leftover is below the number of units, so it is always used up.
    if left != 0 {
        return None;
    }
    let mut parts = Vec::with_capacity(components.len() + 1);
    for (index, component) in components.iter().enumerate() {
        let floor = Money::try_from(floors.get(index)?.0).ok()?;
        let extra = *extra_units.get(index)?;
        if extra > 0 {
            parts.push(SplitPart {
                component: index,
                quantity: extra,
                unit_price: floor.checked_add(1)?,
            });
        }
        let rest = component.quantity.checked_sub(extra)?;
        if rest > 0 {
            parts.push(SplitPart {
                component: index,
                quantity: rest,
                unit_price: floor,
            });
        }
    }
    Some(parts)
}

/// `a x b`, exact: the product of two `i64`s always fits an `i128`. One plain multiply when both
/// factors are small (an `i128` multiply is a software routine on wasm32, and expanding a parent
/// line multiplies a few times per component).
fn wide_mul(a: i64, b: i64) -> i128 {
    match crate::arith::checked_mul(a, b) {
        Some(product) => i128::from(product),
        None => i128::from(a) * i128::from(b),
    }
}

/// `price x weight` divided by `total`: quotient and remainder (truncating, as `i128` division
/// does; every operand is non-negative here). In `i64` when the product and `total` fit, which
/// they do for every realistic bundle; `i128` division is a software routine on wasm32.
fn share(price: i64, weight: i64, total: i128) -> Option<(i128, i128)> {
    if let Ok(total) = i64::try_from(total)
        && total > 0
        && let Some(share) = crate::arith::checked_mul(price, weight)
    {
        return Some((i128::from(share / total), i128::from(share % total)));
    }
    let share = wide_mul(price, weight);
    Some((share.checked_div(total)?, share.checked_rem(total)?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn components(list: &[(i64, i64)]) -> Vec<BundleComponent> {
        list.iter()
            .enumerate()
            .map(|(i, &(quantity, weight))| BundleComponent {
                variant_id: 100 + i as u64,
                quantity,
                weight,
            })
            .collect()
    }

    fn total(parts: &[SplitPart]) -> Money {
        parts.iter().map(|p| p.quantity * p.unit_price).sum()
    }

    #[test]
    fn splits_add_up_exactly() {
        // 19.99 USD over weights 60/30/10: 11.994, 5.997, 1.999 -> 11.99 + 6.00 + 2.00.
        let parts = split_price(1_999, &components(&[(1, 60), (1, 30), (1, 10)])).unwrap();
        let prices: Vec<Money> = parts.iter().map(|p| p.unit_price).collect();
        assert_eq!(prices, vec![1_199, 600, 200]);
        assert_eq!(total(&parts), 1_999);
        // 1000 JPY in three equal parts: 334 + 333 + 333.
        let parts = split_price(1_000, &components(&[(1, 1), (1, 1), (1, 1)])).unwrap();
        let prices: Vec<Money> = parts.iter().map(|p| p.unit_price).collect();
        assert_eq!(prices, vec![334, 333, 333]);
        // A pair of socks for 10.01: one sock at 5.01, one at 5.00.
        let parts = split_price(1_001, &components(&[(2, 1)])).unwrap();
        assert_eq!(
            parts,
            vec![
                SplitPart {
                    component: 0,
                    quantity: 1,
                    unit_price: 501
                },
                SplitPart {
                    component: 0,
                    quantity: 1,
                    unit_price: 500
                },
            ]
        );
        // 12.345 KWD over 2 x (weight 3) + 1 x (weight 1).
        let parts = split_price(12_345, &components(&[(2, 3), (1, 1)])).unwrap();
        assert_eq!(total(&parts), 12_345);
        assert_eq!(
            split_price(0, &components(&[(3, 5), (1, 1)])).map(|p| total(&p)),
            Some(0)
        );
    }

    #[test]
    fn refuses_what_cannot_be_split() {
        assert_eq!(split_price(-1, &components(&[(1, 1)])), None);
        assert_eq!(split_price(100, &[]), None);
        assert_eq!(split_price(100, &components(&[(1, 0)])), None);
        assert_eq!(
            split_price(i64::MAX, &components(&[(100, 1_000_000), (100, 999_999)])).map(|p| p
                .iter()
                .map(|x| i128::from(x.quantity) * i128::from(x.unit_price))
                .sum::<i128>()),
            Some(i128::from(i64::MAX))
        );
    }
}
