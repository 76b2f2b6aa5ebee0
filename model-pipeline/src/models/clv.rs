//! Discounted customer lifetime value over a horizon: expected repeat purchases month by month
//! (BG/NBD) times the expected value per transaction (Gamma-Gamma), each month discounted.

use super::{BgNbd, CustomerSummary, GammaGamma, ModelError};

/// Weeks in an average month (365.25 / 12 / 7): the models' clock is in weeks.
pub const WEEKS_PER_MONTH: f64 = 365.25 / 12.0 / 7.0;

/// Discounted value of the customer's repeat purchases over the next `months`, in the money unit of
/// the summaries (the shop's minor units).
///
/// Month m contributes (E[Y(m)] - E[Y(m-1)]) E[M] / (1 + d)^m: purchases are discounted at the end
/// of the month they fall in, the convention of the lifetimes package, so figures are comparable.
pub fn clv(
    bgnbd: &BgNbd,
    gg: &GammaGamma,
    c: &CustomerSummary,
    months: u32,
    monthly_discount_rate: f64,
) -> Result<f64, ModelError> {
    let value_per_transaction = gg.expected_average_value(c)?;
    clv_at_value(
        bgnbd,
        value_per_transaction,
        c,
        months,
        monthly_discount_rate,
    )
}

/// [`clv`] with the expected value per transaction given: for a customer the spend model has
/// nothing to say about (repeat orders that were all free), the population mean.
pub fn clv_at_value(
    bgnbd: &BgNbd,
    value_per_transaction: f64,
    c: &CustomerSummary,
    months: u32,
    monthly_discount_rate: f64,
) -> Result<f64, ModelError> {
    if !(monthly_discount_rate.is_finite() && monthly_discount_rate > -1.0) {
        return Err(ModelError::InvalidParameter {
            model: "CLV",
            name: "monthly discount rate",
            value: monthly_discount_rate,
            reason: "must be a finite rate above -1",
        });
    }
    let mut total = 0.0;
    let mut previous = 0.0;
    let mut discount = 1.0;
    for month in 1..=months {
        let expected =
            bgnbd.conditional_expected_purchases(f64::from(month) * WEEKS_PER_MONTH, c)?;
        discount /= 1.0 + monthly_discount_rate;
        total += (expected - previous) * discount;
        previous = expected;
    }
    let value = total * value_per_transaction;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(ModelError::NonFiniteResult {
            what: "customer lifetime value",
            customer: Some(*c),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const BGNBD: BgNbd = BgNbd {
        r: 0.243,
        alpha: 4.414,
        a: 0.793,
        b: 2.426,
    };
    const GG: GammaGamma = GammaGamma {
        p: 6.25,
        q: 3.74,
        gamma: 15.44,
    };

    #[test]
    fn undiscounted_clv_is_expected_purchases_times_expected_value() {
        let c = CustomerSummary {
            frequency: 3.0,
            recency: 30.0,
            age: 38.0,
            monetary: 4_250.0,
        };
        let purchases = BGNBD
            .conditional_expected_purchases(12.0 * WEEKS_PER_MONTH, &c)
            .unwrap();
        let value = GG.expected_average_value(&c).unwrap();
        let got = clv(&BGNBD, &GG, &c, 12, 0.0).unwrap();
        assert!(
            (got - purchases * value).abs() < 1e-9 * got,
            "{got} vs {}",
            purchases * value
        );
    }

    #[test]
    fn discounting_lowers_value_and_a_longer_horizon_raises_it() {
        let c = CustomerSummary {
            frequency: 3.0,
            recency: 30.0,
            age: 38.0,
            monetary: 4_250.0,
        };
        let plain = clv(&BGNBD, &GG, &c, 12, 0.0).unwrap();
        let discounted = clv(&BGNBD, &GG, &c, 12, 0.01).unwrap();
        let longer = clv(&BGNBD, &GG, &c, 24, 0.01).unwrap();
        assert!(
            discounted < plain && discounted > 0.8 * plain,
            "{discounted} vs {plain}"
        );
        assert!(longer > discounted);
        assert_eq!(clv(&BGNBD, &GG, &c, 0, 0.01).unwrap(), 0.0);
        assert!(clv(&BGNBD, &GG, &c, 12, f64::NAN).is_err());
    }
}
