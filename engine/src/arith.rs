//! Checked integer arithmetic for money and basis points.
//!
//! Every product of an amount and a rate is taken in `i128`, where two `i64` factors cannot
//! overflow, and only the final result must fit back into an `i64`. That keeps realistic amounts
//! from overflowing spuriously while still turning every genuinely unrepresentable result into
//! [`Overflow`], which the engine reports as the `overflow` reason instead of panicking.

use crate::money::{BPS_ONE, Bps, Money};

/// A result did not fit into `i64` (or a divisor was zero): the caller drops what it was computing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Overflow;

pub(crate) type Checked<T> = Result<T, Overflow>;

pub(crate) fn add(a: Money, b: Money) -> Checked<Money> {
    a.checked_add(b).ok_or(Overflow)
}

pub(crate) fn sub(a: Money, b: Money) -> Checked<Money> {
    a.checked_sub(b).ok_or(Overflow)
}

pub(crate) fn mul(a: Money, b: i64) -> Checked<Money> {
    checked_mul(a, b).ok_or(Overflow)
}

/// `a * b`, or `None` when it overflows. On wasm32 `i64::checked_mul` calls a 128-bit multiply
/// routine (about 70 instructions, thousands of calls per 200-line cart); when both factors are
/// below 2^31 in magnitude the product is below 2^62, so one plain multiply is exact.
#[inline]
pub(crate) fn checked_mul(a: i64, b: i64) -> Option<i64> {
    const SMALL: u64 = 1 << 31;
    if a.unsigned_abs() < SMALL && b.unsigned_abs() < SMALL {
        Some(a.wrapping_mul(b))
    } else {
        a.checked_mul(b)
    }
}

/// Sums amounts, failing on the first overflow.
pub(crate) fn sum<I: IntoIterator<Item = Money>>(amounts: I) -> Checked<Money> {
    amounts.into_iter().try_fold(0, add)
}

fn narrow(value: i128) -> Checked<Money> {
    i64::try_from(value).map_err(|_| Overflow)
}

/// `floor(a * b / c)` (rounded toward negative infinity), exact for every `i64` input; `c` must
/// be positive.
pub(crate) fn mul_div_floor(a: i64, b: i64, c: i64) -> Checked<Money> {
    if c <= 0 {
        return Err(Overflow);
    }
    // The same result in i64 when the product fits, which it does for every realistic amount:
    // i128 division is a software routine in wasm, and this runs several times per cart line.
    if let Some(product) = checked_mul(a, b) {
        return Ok(product.div_euclid(c));
    }
    let product = i128::from(a).checked_mul(i128::from(b)).ok_or(Overflow)?;
    narrow(product.div_euclid(i128::from(c)))
}

/// `ceil(a * b / c)`, exact for every `i64` input; `c` must be positive.
pub(crate) fn mul_div_ceil(a: i64, b: i64, c: i64) -> Checked<Money> {
    if c <= 0 {
        return Err(Overflow);
    }
    // See `mul_div_floor`: i64 when the product fits. With a positive divisor the quotient and
    // the increment cannot overflow.
    if let Some(product) = checked_mul(a, b) {
        let floor = product.div_euclid(c);
        return Ok(if product.rem_euclid(c) == 0 {
            floor
        } else {
            floor + 1
        });
    }
    let product = i128::from(a).checked_mul(i128::from(b)).ok_or(Overflow)?;
    let c = i128::from(c);
    let floor = product.div_euclid(c);
    let ceil = if product.rem_euclid(c) == 0 {
        floor
    } else {
        floor.checked_add(1).ok_or(Overflow)?
    };
    narrow(ceil)
}

/// `floor(amount * bps / 10_000)`: a percentage of an amount, in the merchant's favour.
pub(crate) fn bps_floor(amount: Money, bps: Bps) -> Checked<Money> {
    mul_div_floor(amount, bps, BPS_ONE)
}

/// `ceil(amount * bps / 10_000)`: a floor or stack estimate, in the merchant's favour.
pub(crate) fn bps_ceil(amount: Money, bps: Bps) -> Checked<Money> {
    mul_div_ceil(amount, bps, BPS_ONE)
}

/// `ceil(cost * (10_000 + margin_bps) / 10_000)`: the least a price may fall to and keep a margin
/// of `margin_bps` over `cost`.
pub(crate) fn margin_floor(cost: Money, margin_bps: Bps) -> Checked<Money> {
    mul_div_ceil(cost, add(BPS_ONE, margin_bps)?, BPS_ONE)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn rounding_directions() {
        assert_eq!(bps_floor(999, 1000), Ok(99));
        assert_eq!(bps_ceil(999, 1000), Ok(100));
        assert_eq!(bps_ceil(1000, 1000), Ok(100));
        assert_eq!(margin_floor(1000, 1500), Ok(1150));
        assert_eq!(margin_floor(1001, 1500), Ok(1152));
        assert_eq!(mul_div_floor(-7, 1, 2), Ok(-4));
        assert_eq!(mul_div_ceil(-7, 1, 2), Ok(-3));
    }

    #[test]
    fn the_fast_multiply_agrees_with_i128() {
        let edges = [
            0,
            1,
            -1,
            (1 << 31) - 1,
            1 << 31,
            -(1 << 31),
            -(1 << 31) + 1,
            (1 << 32) + 7,
            3_037_000_499,
            3_037_000_500,
            i64::MAX,
            i64::MIN,
            i64::MIN + 1,
        ];
        for &a in &edges {
            for &b in &edges {
                let exact = i64::try_from(i128::from(a) * i128::from(b)).ok();
                assert_eq!(checked_mul(a, b), exact, "{a} * {b}");
            }
        }
    }

    #[test]
    fn overflow_is_reported_not_panicked() {
        assert_eq!(bps_floor(i64::MAX, 10_000), Ok(i64::MAX));
        assert_eq!(margin_floor(i64::MAX, 1), Err(Overflow));
        assert_eq!(mul(i64::MAX, 2), Err(Overflow));
        assert_eq!(mul_div_floor(1, 1, 0), Err(Overflow));
        assert_eq!(sum([i64::MAX, 1]), Err(Overflow));
    }
}
