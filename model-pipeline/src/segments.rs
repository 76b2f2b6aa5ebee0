//! Segments from the value model's outputs, with every threshold read off the store's own data.
//!
//! The rules, applied in this order to a customer with at least one order:
//! 1. `new`: one transaction so far, and younger than the store's typical gap between purchases
//!    (the median of recency / repeat transactions over repeat buyers). Such a customer has not yet
//!    had a fair chance to come back, so their silence says nothing.
//! 2. `lapsed`: expected orders over the next 12 months in the bottom quarter of the non-new
//!    customers. BG/NBD gives P(alive) = 1 to every one-time buyer, so the expected orders (which
//!    do fall with the time since the single purchase) are the signal that works for both one-time
//!    and repeat buyers.
//! 3. `at_risk`: a one-time buyer past the new window, or a repeat buyer whose P(alive) is below
//!    the median P(alive) of repeat buyers.
//! 4. `loyal_high_value`: a repeat buyer with 12-month CLV in the top fifth of the remaining
//!    repeat buyers (those not lapsed or at risk).
//! 5. `active`: every other repeat buyer.
//!
//! The quantile levels (a quarter, a half, a fifth) are the only fixed choices: they set the share
//! of the base each segment addresses, the same way Shopify's and Klaviyo's tiers are quantiles.
//! The thresholds themselves move with the store and are printed in the summary and report.

use marginwise_engine::Segment;

use crate::models::CustomerSummary;

/// Quantile levels: the shares described in the module documentation.
pub const LAPSED_QUANTILE: f64 = 0.25;
pub const AT_RISK_QUANTILE: f64 = 0.50;
pub const LOYAL_QUANTILE: f64 = 0.80;

/// The thresholds found in one store's data.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Thresholds {
    /// A one-time buyer younger than this many weeks is `new`.
    pub new_max_age_weeks: f64,
    /// Expected 12-month orders below this: `lapsed`.
    pub lapsed_max_expected_orders: f64,
    /// A repeat buyer with P(alive) below this: `at_risk`.
    pub at_risk_max_p_alive: f64,
    /// A likely-alive repeat buyer with 12-month CLV (minor units) at or above this:
    /// `loyal_high_value`.
    pub loyal_min_clv: f64,
}

/// What segmentation needs of one customer.
#[derive(Debug, Clone, Copy)]
pub struct Scores {
    pub summary: CustomerSummary,
    pub p_alive: f64,
    pub expected_orders_12m: f64,
    pub clv_12m: f64,
}

/// The `q`-quantile (nearest rank) of `values`; `None` when empty.
pub fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let rank = ((values.len() as f64 - 1.0) * q.clamp(0.0, 1.0)).round() as usize;
    let (_, value, _) = values.select_nth_unstable_by(rank, f64::total_cmp);
    Some(*value)
}

impl Thresholds {
    /// Reads the thresholds off the scored customers.
    pub fn from_scores(scores: &[Scores]) -> Thresholds {
        let mut gaps: Vec<f64> = scores
            .iter()
            .filter(|s| s.summary.frequency > 0.0)
            .map(|s| s.summary.recency / s.summary.frequency)
            .collect();
        let new_max_age_weeks = quantile(&mut gaps, 0.5).unwrap_or(0.0);
        let is_new = |s: &Scores| s.summary.frequency == 0.0 && s.summary.age < new_max_age_weeks;
        let mut expected: Vec<f64> = scores
            .iter()
            .filter(|s| !is_new(s))
            .map(|s| s.expected_orders_12m)
            .collect();
        let lapsed_max_expected_orders = quantile(&mut expected, LAPSED_QUANTILE).unwrap_or(0.0);
        let mut alive: Vec<f64> = scores
            .iter()
            .filter(|s| s.summary.frequency > 0.0)
            .map(|s| s.p_alive)
            .collect();
        let at_risk_max_p_alive = quantile(&mut alive, AT_RISK_QUANTILE).unwrap_or(0.0);
        let mut clv: Vec<f64> = scores
            .iter()
            .filter(|s| {
                s.summary.frequency > 0.0
                    && s.p_alive >= at_risk_max_p_alive
                    && s.expected_orders_12m >= lapsed_max_expected_orders
            })
            .map(|s| s.clv_12m)
            .collect();
        let loyal_min_clv = quantile(&mut clv, LOYAL_QUANTILE).unwrap_or(f64::INFINITY);
        Thresholds {
            new_max_age_weeks,
            lapsed_max_expected_orders,
            at_risk_max_p_alive,
            loyal_min_clv,
        }
    }

    /// The segment of one customer (rules in the module documentation).
    pub fn segment(&self, s: &Scores) -> Segment {
        let one_time = s.summary.frequency == 0.0;
        if one_time && s.summary.age < self.new_max_age_weeks {
            Segment::New
        } else if s.expected_orders_12m < self.lapsed_max_expected_orders {
            Segment::Lapsed
        } else if one_time || s.p_alive < self.at_risk_max_p_alive {
            Segment::AtRisk
        } else if s.clv_12m >= self.loyal_min_clv {
            Segment::LoyalHighValue
        } else {
            Segment::Active
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn scores(frequency: f64, recency: f64, age: f64, p_alive: f64, e12: f64, clv: f64) -> Scores {
        Scores {
            summary: CustomerSummary {
                frequency,
                recency,
                age,
                monetary: 0.0,
            },
            p_alive,
            expected_orders_12m: e12,
            clv_12m: clv,
        }
    }

    #[test]
    fn quantiles_use_nearest_rank() {
        let mut v = vec![5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(quantile(&mut v, 0.0), Some(1.0));
        assert_eq!(quantile(&mut v, 0.5), Some(3.0));
        assert_eq!(quantile(&mut v, 1.0), Some(5.0));
        assert_eq!(quantile(&mut [], 0.5), None);
    }

    #[test]
    fn thresholds_come_from_the_data_and_rules_apply_in_order() {
        // Repeat buyers with gaps 4, 8, 12 weeks: median gap 8.
        let data = vec![
            scores(1.0, 4.0, 30.0, 0.9, 2.0, 9_000.0),
            scores(2.0, 16.0, 40.0, 0.6, 1.5, 4_000.0),
            scores(3.0, 36.0, 50.0, 0.3, 0.8, 3_000.0),
            scores(0.0, 0.0, 3.0, 1.0, 1.2, 1_000.0),
            scores(0.0, 0.0, 60.0, 1.0, 0.1, 100.0),
        ];
        let t = Thresholds::from_scores(&data);
        assert_eq!(t.new_max_age_weeks, 8.0);
        assert_eq!(t.at_risk_max_p_alive, 0.6);
        let segments: Vec<Segment> = data.iter().map(|s| t.segment(s)).collect();
        assert_eq!(segments[3], Segment::New);
        assert_eq!(segments[4], Segment::Lapsed);
        assert_eq!(segments[2], Segment::AtRisk);
        assert_eq!(segments[0], Segment::LoyalHighValue);
        // Halving every value halves the CLV threshold: nothing is a fixed amount.
        let halved: Vec<Scores> = data
            .iter()
            .map(|s| Scores {
                clv_12m: s.clv_12m / 2.0,
                ..*s
            })
            .collect();
        assert_eq!(
            Thresholds::from_scores(&halved).loyal_min_clv,
            t.loyal_min_clv / 2.0
        );
    }
}
