//! The scoring pipeline: histories -> RFM summaries -> BG/NBD and Gamma-Gamma -> per-customer
//! P(alive), expected orders and CLV -> segments and profiles; co-purchases -> complements;
//! unit costs and the bundle definitions' parents -> per-variant data.
//!
//! Gamma-Gamma needs a positive mean value per repeat buyer; a repeat buyer whose repeat orders
//! were all free is left out of its fit (counted and named in the summary) and valued at the
//! fitted population mean, rather than stopping the run. Errors name customers by id.

use marginwise_engine::{Profile, Segment, VariantData};
use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::complements::{self, Complements};
use crate::ingest::{History, StoreData};
use crate::models::{self, BgNbd, CustomerSummary, Fit, GammaGamma, ModelError, WEEKS_PER_MONTH};
use crate::progress::Progress;
use crate::segments::{Scores, Thresholds};

/// The CLV horizon the profile carries.
pub const CLV_MONTHS: u32 = 12;
/// At most this many customers calibrate the fit-check plot: the plot's means are stable long
/// before that, and a second full fit on a million customers would double the model time.
const FIT_CHECK_MAX_CUSTOMERS: usize = 200_000;
/// Calibration frequencies shown separately in the fit-check plot; higher ones are pooled.
const FIT_CHECK_MAX_FREQUENCY: usize = 7;
/// Customer ids quoted in the summary for each kind of customer left out of something.
const EXAMPLES: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    #[error("no customer with an order to fit the models on")]
    NoCustomers,
    #[error("fitting {model}")]
    Fit {
        model: &'static str,
        #[source]
        source: ModelError,
    },
    #[error("fitting {model}: customer {customer_id}: {reason}")]
    Customer {
        model: &'static str,
        customer_id: u64,
        reason: String,
    },
    #[error(
        "{value} is not a monthly discount rate: it must be at least 0 and below 1 (0.01 a month \
         is about 12.7 % a year; a negative rate would value future orders above today's, and 1 \
         would halve each month's value)"
    )]
    DiscountRate { value: f64 },
}

/// Scoring settings.
#[derive(Debug, Clone)]
pub struct ScoreOptions {
    /// Minimum orders containing both products for a complement.
    pub min_support: u32,
    /// Monthly discount rate of the CLV (0.01 = about 12.7 % a year).
    pub monthly_discount_rate: f64,
    /// Variant ids of the bundle parents the cart transform's definitions name: their `$app.offer`
    /// carries the `B` flag, which keeps the discount Function's slot offers off them.
    pub bundle_parents: Vec<u64>,
}

impl ScoreOptions {
    /// Refuses settings no run should use, before any file is read.
    pub fn validate(&self) -> Result<(), ScoreError> {
        let rate = self.monthly_discount_rate;
        if !(rate.is_finite() && (0.0..1.0).contains(&rate)) {
            return Err(ScoreError::DiscountRate { value: rate });
        }
        Ok(())
    }
}

impl Default for ScoreOptions {
    fn default() -> ScoreOptions {
        ScoreOptions {
            // Three orders is the least evidence that is not a coincidence in a small store; the
            // offline evaluation in the report shows what it costs.
            min_support: 3,
            monthly_discount_rate: 0.01,
            bundle_parents: Vec::new(),
        }
    }
}

/// One scored customer.
#[derive(Debug, Clone)]
pub struct CustomerScore {
    pub customer_id: u64,
    pub scores: Scores,
    pub profile: Profile,
}

/// One row of the fit-check: customers grouped by repeat transactions in the calibration period.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct FitCheckRow {
    /// Calibration repeat transactions (the last row pools this value and above).
    pub frequency: usize,
    pub customers: u64,
    pub actual_mean: f64,
    pub predicted_mean: f64,
}

/// Predicted vs actual repeat transactions in a holdout period, by calibration frequency.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FitCheck {
    pub calibration_weeks_end_day: i32,
    pub holdout_weeks: f64,
    pub customers: u64,
    pub rows: Vec<FitCheckRow>,
}

/// Everything the plan and the report are made of.
#[derive(Debug, Clone)]
pub struct Scored {
    pub bgnbd: Fit<BgNbd>,
    pub gamma_gamma: Fit<GammaGamma>,
    pub thresholds: Thresholds,
    pub customers: Vec<CustomerScore>,
    /// Customers who opted out: no profile, and any existing one is deleted.
    pub opted_out: Vec<u64>,
    pub customers_without_orders: u64,
    /// Customers whose model evaluation failed (non-finite value), with the first message.
    pub unscored: u64,
    pub unscored_example: Option<String>,
    /// Repeat buyers whose repeat orders were all free: Gamma-Gamma needs a positive mean value,
    /// so they are left out of its fit and valued at its population mean. Their count and the
    /// first few ids.
    pub spend_fit_excluded: u64,
    pub spend_fit_excluded_examples: Vec<u64>,
    /// Variants flagged as bundle parents, and the parents named in the definitions that are not
    /// in the catalog (no `$app.offer` is written for them).
    pub bundle_parents_flagged: u64,
    pub bundle_parents_not_in_catalog: Vec<u64>,
    pub complements: Complements,
    /// (variant id, data) for every variant in the catalog.
    pub variants: Vec<(u64, VariantData)>,
    pub fit_check: Option<FitCheck>,
    /// Stage name and seconds.
    pub timings: Vec<crate::Timing>,
}

impl Scored {
    pub fn segment_counts(&self) -> Vec<(Segment, u64)> {
        Segment::ALL
            .iter()
            .map(|&s| {
                let n = self
                    .customers
                    .iter()
                    .filter(|c| c.profile.segment == s)
                    .count();
                (s, n as u64)
            })
            .collect()
    }
}

/// The RFM summary of a history, time in weeks up to the end of `end_day` (exclusive day index).
pub fn summary(history: &History, end_day: i32) -> CustomerSummary {
    let frequency = f64::from(history.n_transactions.saturating_sub(1));
    let monetary = if frequency > 0.0 {
        (history.total_value_minor - history.first_value_minor).max(0) as f64 / frequency
    } else {
        0.0
    };
    CustomerSummary {
        frequency,
        recency: f64::from(history.last_day - history.first_day) / 7.0,
        age: f64::from(end_day - history.first_day) / 7.0,
        monetary,
    }
}

fn to_bps(p: f64) -> i64 {
    (p.clamp(0.0, 1.0) * 10_000.0).round() as i64
}

/// Whether Gamma-Gamma can use this customer's spend: a repeat buyer with a positive mean value
/// of their repeat transactions. Customers without repeats carry no spend information (the model
/// skips them); repeat buyers whose repeats were all free would make its likelihood undefined.
fn spend_is_modelled(c: &CustomerSummary) -> bool {
    c.frequency == 0.0 || c.monetary > 0.0
}

/// Scores one customer: the model figures, then the profile without a segment yet.
fn evaluate_customer(
    bgnbd: &BgNbd,
    gg: &GammaGamma,
    c: &CustomerSummary,
    rate: f64,
) -> Result<(f64, f64, f64), ModelError> {
    let p_alive = bgnbd.p_alive(c);
    let horizon_weeks = f64::from(CLV_MONTHS) * WEEKS_PER_MONTH;
    let expected = bgnbd.conditional_expected_purchases(horizon_weeks, c)?;
    let clv = if spend_is_modelled(c) {
        models::clv(bgnbd, gg, c, CLV_MONTHS, rate)?
    } else {
        models::clv_at_value(bgnbd, gg.population_mean()?, c, CLV_MONTHS, rate)?
    };
    Ok((p_alive, expected, clv))
}

/// A fit's error, with a customer named by their id instead of their position in the fit's input.
fn fit_error(model: &'static str, source: ModelError, ids: &[u64]) -> ScoreError {
    match source {
        ModelError::InvalidCustomer { index, reason } => match ids.get(index) {
            Some(&customer_id) => ScoreError::Customer {
                model,
                customer_id,
                reason,
            },
            None => ScoreError::Fit {
                model,
                source: ModelError::InvalidCustomer { index, reason },
            },
        },
        source => ScoreError::Fit { model, source },
    }
}

/// Runs the models, segments and complements over what was read.
pub fn score(
    data: &StoreData,
    options: &ScoreOptions,
    progress: Progress,
) -> Result<Scored, ScoreError> {
    options.validate()?;
    let mut timings = Vec::new();
    let end_day = i32::try_from(data.last_order_time.div_euclid(86_400))
        .unwrap_or(i32::MAX - 1)
        .saturating_add(1);

    let mut opted_out = Vec::new();
    let mut customers_without_orders = 0u64;
    let mut eligible: Vec<(u64, &History)> = Vec::new();
    for (record, history) in data.customers.iter().zip(&data.histories) {
        if record.opted_out {
            opted_out.push(record.id);
        } else if history.n_transactions == 0 {
            customers_without_orders += 1;
        } else {
            eligible.push((record.id, history));
        }
    }
    if eligible.is_empty() {
        return Err(ScoreError::NoCustomers);
    }
    let summaries: Vec<CustomerSummary> =
        eligible.iter().map(|(_, h)| summary(h, end_day)).collect();
    let ids: Vec<u64> = eligible.iter().map(|(id, _)| *id).collect();
    // Gamma-Gamma's input: everyone but the repeat buyers whose repeat orders were all free.
    let mut spend_summaries = Vec::with_capacity(summaries.len());
    let mut spend_ids = Vec::with_capacity(summaries.len());
    let mut spend_fit_excluded = 0u64;
    let mut spend_fit_excluded_examples = Vec::new();
    for (id, c) in ids.iter().zip(&summaries) {
        if spend_is_modelled(c) {
            spend_summaries.push(*c);
            spend_ids.push(*id);
        } else {
            spend_fit_excluded += 1;
            if spend_fit_excluded_examples.len() < EXAMPLES {
                spend_fit_excluded_examples.push(*id);
            }
        }
    }

    let started = crate::Stopwatch::start();
    let spinner = progress.spinner("fit");
    let bgnbd = BgNbd::fit(&summaries).map_err(|source| fit_error("BG/NBD", source, &ids))?;
    let gamma_gamma = GammaGamma::fit(&spend_summaries)
        .map_err(|source| fit_error("Gamma-Gamma", source, &spend_ids))?;
    drop(spend_summaries);
    drop(spend_ids);
    spinner.finish_and_clear();
    timings.push(started.stop("fit BG/NBD + Gamma-Gamma"));

    let started = crate::Stopwatch::start();
    // Customers with identical summaries get identical scores: every one-time buyer whose first
    // order fell on the same day shares one, so the models run once per distinct summary (about
    // a third of the customers on the sample store).
    let mut distinct: FxHashMap<[u64; 4], u32> = FxHashMap::default();
    let mut unique: Vec<CustomerSummary> = Vec::new();
    let slots: Vec<u32> = summaries
        .iter()
        .map(|c| {
            let key = [
                c.frequency.to_bits(),
                c.recency.to_bits(),
                c.age.to_bits(),
                c.monetary.to_bits(),
            ];
            *distinct.entry(key).or_insert_with(|| {
                unique.push(*c);
                (unique.len() - 1) as u32
            })
        })
        .collect();
    drop(distinct);
    let bar = progress.items("score", unique.len() as u64);
    let unique_results: Vec<Result<(f64, f64, f64), ModelError>> = unique
        .par_iter()
        .enumerate()
        .map(|(i, c)| {
            if i % 8192 == 0 {
                bar.inc(8192);
            }
            evaluate_customer(
                &bgnbd.model,
                &gamma_gamma.model,
                c,
                options.monthly_discount_rate,
            )
        })
        .collect();
    let evaluated = slots.iter().map(|slot| {
        unique_results
            .get(*slot as usize)
            .cloned()
            .unwrap_or(Err(ModelError::NonFiniteResult {
                what: "score",
                customer: None,
            }))
    });
    bar.finish_and_clear();
    let mut unscored = 0u64;
    let mut unscored_example = None;
    let mut scored: Vec<(u64, Scores, &History)> = Vec::with_capacity(eligible.len());
    for (((id, history), c), result) in eligible.iter().zip(&summaries).zip(evaluated) {
        match result {
            Ok((p_alive, expected_orders_12m, clv_12m)) => scored.push((
                *id,
                Scores {
                    summary: *c,
                    p_alive,
                    expected_orders_12m,
                    clv_12m,
                },
                history,
            )),
            Err(error) => {
                unscored += 1;
                if unscored_example.is_none() {
                    unscored_example = Some(format!("customer {id}: {error}"));
                }
            }
        }
    }
    timings.push(started.stop("score customers (P(alive), E[orders], CLV)"));

    let started = crate::Stopwatch::start();
    let all_scores: Vec<Scores> = scored.iter().map(|(_, s, _)| *s).collect();
    let thresholds = Thresholds::from_scores(&all_scores);
    let customers: Vec<CustomerScore> = scored
        .iter()
        .map(|(id, s, history)| {
            let p_alive_bps = to_bps(s.p_alive);
            let discount_share_bps = i64::from(history.n_discounted_orders) * 10_000
                / i64::from(history.n_orders.max(1));
            CustomerScore {
                customer_id: *id,
                scores: *s,
                profile: Profile {
                    segment: thresholds.segment(s),
                    clv_minor: s.clv_12m.max(0.0).round() as i64,
                    churn_bps: 10_000 - p_alive_bps,
                    expected_orders_12m_milli: (s.expected_orders_12m.max(0.0) * 1000.0).round()
                        as i64,
                    discount_share_bps,
                    p_alive_bps,
                },
            }
        })
        .collect();
    timings.push(started.stop("segments + profiles"));

    let started = crate::Stopwatch::start();
    let bundle_parents: FxHashSet<u64> = options.bundle_parents.iter().copied().collect();
    let mut bundle_parents_flagged = 0u64;
    let complements = complements::compute(
        &data.co_purchase,
        &data.histories,
        options.min_support,
        marginwise_engine::format::MAX_COMPLEMENTS,
    );
    let variants = data
        .catalog
        .variants
        .iter()
        .map(|v| {
            let product_id = data
                .catalog
                .products
                .get(v.product as usize)
                .copied()
                .unwrap_or(0);
            let list = complements
                .per_product
                .get(v.product as usize)
                .map(|l| {
                    l.iter()
                        .filter_map(|c| data.catalog.products.get(c.product as usize).copied())
                        .collect()
                })
                .unwrap_or_default();
            let bundle_parent = bundle_parents.contains(&v.id);
            bundle_parents_flagged += u64::from(bundle_parent);
            (
                v.id,
                VariantData {
                    unit_cost_minor: v.unit_cost_minor,
                    product_id,
                    complements: list,
                    bundle_parent,
                },
            )
        })
        .collect();
    let in_catalog: FxHashSet<u64> = data.catalog.variants.iter().map(|v| v.id).collect();
    let mut bundle_parents_not_in_catalog: Vec<u64> = bundle_parents
        .iter()
        .copied()
        .filter(|id| !in_catalog.contains(id))
        .collect();
    bundle_parents_not_in_catalog.sort_unstable();
    timings.push(started.stop("complements + offline eval"));

    let started = crate::Stopwatch::start();
    let fit_check = fit_check(data, end_day);
    timings.push(started.stop("fit check (calibration/holdout)"));

    Ok(Scored {
        bgnbd,
        gamma_gamma,
        thresholds,
        customers,
        opted_out,
        customers_without_orders,
        unscored,
        unscored_example,
        spend_fit_excluded,
        spend_fit_excluded_examples,
        bundle_parents_flagged,
        bundle_parents_not_in_catalog,
        complements,
        variants,
        fit_check,
        timings,
    })
}

/// The standard BG/NBD check: fit on the calibration period, predict each customer's repeat
/// transactions in the holdout, and compare means by calibration frequency. `None` when the
/// history is too short for a holdout or the calibration fit fails (the report then says so).
fn fit_check(data: &StoreData, end_day: i32) -> Option<FitCheck> {
    let cutoff = data.cutoff_day;
    if cutoff >= end_day {
        return None;
    }
    let holdout_weeks = f64::from(end_day - cutoff) / 7.0;
    let calibration: Vec<(CustomerSummary, u32)> = data
        .customers
        .iter()
        .zip(&data.histories)
        .filter(|(record, h)| !record.opted_out && h.n_transactions > 0 && h.first_day < cutoff)
        .map(|(_, h)| {
            let frequency = f64::from(h.calibration_transactions.saturating_sub(1));
            let summary = CustomerSummary {
                frequency,
                recency: f64::from(h.calibration_last_day.max(h.first_day) - h.first_day) / 7.0,
                age: f64::from(cutoff - h.first_day) / 7.0,
                monetary: 0.0,
            };
            (summary, h.holdout_transactions)
        })
        .collect();
    let stride = calibration.len().div_ceil(FIT_CHECK_MAX_CUSTOMERS).max(1);
    let sample: Vec<(CustomerSummary, u32)> = calibration.into_iter().step_by(stride).collect();
    let summaries: Vec<CustomerSummary> = sample.iter().map(|(s, _)| *s).collect();
    let fit = BgNbd::fit(&summaries).ok()?;
    let predictions: Vec<f64> = summaries
        .par_iter()
        .map(|c| {
            fit.model
                .conditional_expected_purchases(holdout_weeks, c)
                .unwrap_or(f64::NAN)
        })
        .collect();
    let mut rows: Vec<FitCheckRow> = (0..=FIT_CHECK_MAX_FREQUENCY)
        .map(|frequency| FitCheckRow {
            frequency,
            customers: 0,
            actual_mean: 0.0,
            predicted_mean: 0.0,
        })
        .collect();
    for ((summary, actual), predicted) in sample.iter().zip(&predictions) {
        if !predicted.is_finite() {
            continue;
        }
        let bucket = (summary.frequency as usize).min(FIT_CHECK_MAX_FREQUENCY);
        if let Some(row) = rows.get_mut(bucket) {
            row.customers += 1;
            row.actual_mean += f64::from(*actual);
            row.predicted_mean += predicted;
        }
    }
    for row in &mut rows {
        if row.customers > 0 {
            row.actual_mean /= row.customers as f64;
            row.predicted_mean /= row.customers as f64;
        }
    }
    Some(FitCheck {
        calibration_weeks_end_day: cutoff,
        holdout_weeks,
        customers: sample.len() as u64,
        rows,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A fit names a customer by their position in its input; the run's message names their id.
    #[test]
    fn fit_errors_name_the_customer_id_not_a_position() {
        let ids = [7_100_000_003, 7_100_000_105];
        let error = fit_error(
            "Gamma-Gamma",
            ModelError::InvalidCustomer {
                index: 1,
                reason: "frequency is 1.5, not a whole number of repeat transactions".into(),
            },
            &ids,
        );
        assert_eq!(
            error.to_string(),
            "fitting Gamma-Gamma: customer 7100000105: frequency is 1.5, not a whole number of \
             repeat transactions"
        );
        // Errors about no single customer keep the model's message as their source.
        let error = fit_error(
            "Gamma-Gamma",
            ModelError::TooFewCustomers {
                model: "Gamma-Gamma",
                needed: 3,
                what: "with a repeat purchase and a positive mean value",
                got: 0,
            },
            &ids,
        );
        assert_eq!(error.to_string(), "fitting Gamma-Gamma");
        assert!(std::error::Error::source(&error).is_some());
    }
}
