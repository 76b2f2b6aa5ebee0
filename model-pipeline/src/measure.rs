//! `marginwise measure`: the incremental margin of the offers program, from its holdout.
//!
//! Every customer of the export is put in the holdout or the treated group by the engine's own
//! split ([`marginwise_engine::holdout`], on the customer's GID, the key the Functions use for a
//! logged-in shopper) with the policy's salt and share. Everyone assigned counts, with or without
//! orders, a profile or an opt-out (intent to treat: whoever was eligible to be held out or
//! treated, whether they came back or not), so the two groups stay comparable.
//!
//! Per customer, over the orders processed at or after `since` (cancelled and test orders left
//! out): margin = line revenue (original unit price × quantity) − discount allocations − unit
//! cost × quantity, in the shop currency's minor units. A line whose variant has no unit cost (or
//! is not in products.jsonl) is left out of revenue, discounts and cost, and counted. Guest orders,
//! orders of customers not in customers.jsonl, and orders before `since` are left out and counted.
//!
//! The result: per group, the mean margin per customer with its standard error; the difference
//! treated − holdout with a 95 % interval (Welch, normal approximation); and that difference times
//! the treated customers, the margin the program added (or cost) over the period.
//!
//! Limits, also written into the output: shipping is not in the export (a free-shipping offer's
//! cost is not counted), nor are refunds; unit costs are today's, not those at the time of each
//! order; and guest orders are left out: the Functions never hold an anonymous shopper out (they
//! have no stable key for one), so guests are all treated and belong to neither group's customers.

use std::fmt::Write as _;
use std::path::Path;

use marginwise_engine::holdout;
use marginwise_engine::money::{BPS_ONE, Bps, Currency, format_decimal_minor};
use marginwise_engine::policy::Holdout;
use rustc_hash::FxHashMap;

use crate::ingest::records::{FieldError, parse_timestamp};
use crate::ingest::{self, IngestError, IngestOptions, OrderLine};
use crate::progress::Progress;

/// File written into `--out`.
pub const MEASURE_FILE: &str = "measure.json";

/// z of a two-sided 95 % normal interval.
const Z_95: f64 = 1.959_963_984_540_054;

/// What the output says it does not count.
pub const LIMITS: [&str; 4] = [
    "shipping is not in the export: shipping revenue and shipping discounts (free-shipping offers) are not counted",
    "refunds and returns are not in the export: margin is as ordered",
    "unit costs are the current ones from products.jsonl, not those at the time of each order",
    "guest orders are left out: the Functions never hold out an anonymous shopper, so guests belong to neither group",
];

#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    #[error(
        "the policy has no usable holdout (`holdout` absent, or `share_bps` 0 or 10000): with one \
         group only there is nothing to compare; measure needs the policy the discount ran with"
    )]
    NoHoldout,
    #[error("the policy cannot be read; fix these first:{0}")]
    Policy(String),
    #[error("--since: {0}")]
    Since(String),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("cannot write {file}: {source}")]
    Write {
        file: String,
        #[source]
        source: std::io::Error,
    },
}

/// The holdout of a policy JSON, read by the engine's own parser; refused when absent or when it
/// leaves one group empty (a share of 0, which the Functions treat as no holdout, or 10000).
pub fn policy_holdout(policy_json: &str) -> Result<Holdout, MeasureError> {
    let parsed = marginwise_engine::policy::parse(policy_json);
    let Some(policy) = parsed.policy else {
        let mut reasons = String::new();
        for reason in &parsed.reasons {
            let subject = if reason.subject.is_empty() {
                "(document)"
            } else {
                &reason.subject
            };
            let _ = write!(
                reasons,
                "\n  {subject}: {} ({})",
                reason.detail,
                reason.code.code()
            );
        }
        return Err(MeasureError::Policy(reasons));
    };
    match policy.holdout {
        Some(h) if h.share_bps > 0 && h.share_bps < BPS_ONE => Ok(h),
        _ => Err(MeasureError::NoHoldout),
    }
}

/// `--since`: a date (`2026-01-31`, midnight UTC) or an ISO 8601 timestamp with an offset.
pub fn parse_since(text: &str) -> Result<i64, MeasureError> {
    let full = if text.len() == 10 {
        format!("{text}T00:00:00Z")
    } else {
        text.to_string()
    };
    parse_timestamp(&full).map_err(|why| MeasureError::Since(format!("{text:?}: {why}")))
}

/// The GID the Functions key a logged-in customer on.
pub fn customer_gid(id: u64) -> String {
    format!("gid://shopify/Customer/{id}")
}

/// Whether this customer is in the holdout group: the Functions' key and split, unchanged.
pub fn held_out(customer_id: u64, holdout_policy: &Holdout) -> bool {
    let gid = customer_gid(customer_id);
    let key = holdout::shopper_key(Some(&gid));
    holdout::is_held_out(&key, &holdout_policy.salt, holdout_policy.share_bps)
}

/// One group's totals (money in shop minor units) and its mean margin per customer.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct GroupStats {
    pub customers: u64,
    pub customers_with_orders: u64,
    pub orders: u64,
    pub revenue_minor: i64,
    pub discounts_minor: i64,
    pub cost_minor: i64,
    pub margin_minor: i64,
    /// Mean margin per customer and its standard error, in minor units.
    pub mean_margin_minor: f64,
    pub mean_margin_se_minor: f64,
}

/// An estimate with its 95 % interval, in minor units.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Estimate {
    pub value_minor: f64,
    pub se_minor: f64,
    pub low_minor: f64,
    pub high_minor: f64,
}

/// What was left out, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LeftOut {
    pub guest_orders: u64,
    pub orders_of_unknown_customers: u64,
    pub orders_before_since: u64,
    pub cancelled_or_test_orders: u64,
    pub lines_of_unknown_cost: u64,
    /// Revenue (after discounts) of those lines, in minor units.
    pub revenue_of_unknown_cost_lines_minor: i64,
}

/// The measurement `measure.json` holds.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Measurement {
    pub currency: String,
    /// Digits after the point of the minor units.
    pub exponent: u8,
    pub since: String,
    pub salt: String,
    pub share_bps: Bps,
    /// The bundle policy found to hold out the same customers (`--bundle-policy`); `None`: not
    /// checked, so bundle discounts may have reached the holdout group.
    pub bundle_policy: Option<String>,
    pub holdout: GroupStats,
    pub treated: GroupStats,
    /// Treated − holdout mean margin per customer.
    pub difference_per_customer: Estimate,
    /// The difference times the treated customers.
    pub incremental_margin: Estimate,
    pub left_out: LeftOut,
    pub limits: Vec<String>,
}

/// Per-customer sums over the period.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    orders: u64,
    revenue: i64,
    discounts: i64,
    cost: i64,
}

impl Sums {
    fn margin(&self) -> i64 {
        self.revenue
            .saturating_sub(self.discounts)
            .saturating_sub(self.cost)
    }
}

/// Reads the export folder (checked as `score` checks it) and measures.
pub fn measure(
    dir: &Path,
    holdout_policy: &Holdout,
    since: i64,
    progress: Progress,
) -> Result<Measurement, MeasureError> {
    // Every customer counts, opted out or not: the split does not look at profiles.
    let options = IngestOptions::default();
    let store = ingest::read_store(dir, &options, progress)?;
    let unit_costs: FxHashMap<u64, Option<i64>> = store
        .catalog
        .variants
        .iter()
        .map(|v| (v.id, v.unit_cost_minor))
        .collect();
    let mut sums = vec![Sums::default(); store.customers.len()];
    let mut left_out = LeftOut::default();
    // The customer (index) of the order whose lines are being read, when it counts.
    let mut current: Option<usize> = None;
    ingest::read_order_lines(dir, store.currency, progress, |line| {
        match line {
            OrderLine::Order {
                customer,
                time,
                excluded,
                ..
            } => {
                current = None;
                if excluded {
                    left_out.cancelled_or_test_orders += 1;
                } else if time < since {
                    left_out.orders_before_since += 1;
                } else {
                    match customer {
                        None => left_out.guest_orders += 1,
                        Some(id) => match store.customer_index.get(&id) {
                            None => left_out.orders_of_unknown_customers += 1,
                            Some(&index) => {
                                let index = index as usize;
                                let sum = sums
                                    .get_mut(index)
                                    .ok_or_else(|| FieldError::new("customer.id", "no index"))?;
                                sum.orders += 1;
                                current = Some(index);
                            }
                        },
                    }
                }
            }
            OrderLine::Item {
                variant,
                quantity,
                gross_minor,
                discount_minor,
                ..
            } => {
                let Some(sum) = current.and_then(|index| sums.get_mut(index)) else {
                    return Ok(());
                };
                match variant.and_then(|id| unit_costs.get(&id).copied().flatten()) {
                    Some(unit_cost) => {
                        sum.revenue = sum.revenue.saturating_add(gross_minor);
                        sum.discounts = sum.discounts.saturating_add(discount_minor);
                        sum.cost = sum.cost.saturating_add(unit_cost.saturating_mul(quantity));
                    }
                    None => {
                        left_out.lines_of_unknown_cost += 1;
                        left_out.revenue_of_unknown_cost_lines_minor = left_out
                            .revenue_of_unknown_cost_lines_minor
                            .saturating_add(gross_minor.saturating_sub(discount_minor));
                    }
                }
            }
        }
        Ok(())
    })?;

    let mut margins: [Vec<i64>; 2] = [Vec::new(), Vec::new()];
    let mut groups = [GroupStats::default(), GroupStats::default()];
    for (customer, sum) in store.customers.iter().zip(&sums) {
        let g = usize::from(!held_out(customer.id, holdout_policy));
        if let (Some(group), Some(list)) = (groups.get_mut(g), margins.get_mut(g)) {
            group.customers += 1;
            group.customers_with_orders += u64::from(sum.orders > 0);
            group.orders += sum.orders;
            group.revenue_minor = group.revenue_minor.saturating_add(sum.revenue);
            group.discounts_minor = group.discounts_minor.saturating_add(sum.discounts);
            group.cost_minor = group.cost_minor.saturating_add(sum.cost);
            group.margin_minor = group.margin_minor.saturating_add(sum.margin());
            list.push(sum.margin());
        }
    }
    let [held, treated] = groups;
    let [held_margins, treated_margins] = margins;
    let (held, held_var) = with_mean(held, &held_margins);
    let (treated, treated_var) = with_mean(treated, &treated_margins);
    let difference = treated.mean_margin_minor - held.mean_margin_minor;
    let se = (held_var + treated_var).sqrt();
    let difference_per_customer = estimate(difference, se);
    let n_treated = treated.customers as f64;
    let incremental_margin = estimate(difference * n_treated, se * n_treated);
    Ok(Measurement {
        currency: store.currency.code_str().to_string(),
        exponent: store.currency.exponent,
        since: crate::ingest::records::format_timestamp(since),
        salt: holdout_policy.salt.clone(),
        share_bps: holdout_policy.share_bps,
        // Checked by the caller, which knows the file (see `main.rs`).
        bundle_policy: None,
        holdout: held,
        treated,
        difference_per_customer,
        incremental_margin,
        left_out,
        limits: LIMITS.iter().map(|s| s.to_string()).collect(),
    })
}

/// The group with its mean margin and standard error; also the squared standard error.
fn with_mean(mut group: GroupStats, margins: &[i64]) -> (GroupStats, f64) {
    let n = margins.len() as f64;
    if margins.is_empty() {
        return (group, 0.0);
    }
    let mean = margins.iter().map(|m| *m as f64).sum::<f64>() / n;
    let variance = if margins.len() > 1 {
        margins
            .iter()
            .map(|m| (*m as f64 - mean).powi(2))
            .sum::<f64>()
            / (n - 1.0)
    } else {
        0.0
    };
    let se_squared = variance / n;
    group.mean_margin_minor = mean;
    group.mean_margin_se_minor = se_squared.sqrt();
    (group, se_squared)
}

fn estimate(value: f64, se: f64) -> Estimate {
    Estimate {
        value_minor: value,
        se_minor: se,
        low_minor: value - Z_95 * se,
        high_minor: value + Z_95 * se,
    }
}

/// Writes `measure.json` into `out` (created if needed); returns its path.
pub fn write(out: &Path, measurement: &Measurement) -> Result<std::path::PathBuf, MeasureError> {
    let path = out.join(MEASURE_FILE);
    let io = |source| MeasureError::Write {
        file: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(out).map_err(io)?;
    let text = serde_json::to_string_pretty(measurement)
        .map_err(|error| io(std::io::Error::other(error)))?;
    std::fs::write(&path, text + "\n").map_err(io)?;
    Ok(path)
}

/// Minor units as a decimal (rounded to the minor unit for the f64 statistics).
fn decimal(minor: f64, currency: Currency) -> String {
    // f64 -> i64 saturates (NaN is 0), which is fine for figures shown to a person.
    format_decimal_minor(minor.round() as i64, currency.exponent)
}

/// The table `marginwise measure` prints, one line per entry.
pub fn table(m: &Measurement) -> Vec<String> {
    let currency = Currency {
        code: m.currency.as_bytes().try_into().unwrap_or(*b"???"),
        exponent: m.exponent,
    };
    let money = |minor: i64| format_decimal_minor(minor, currency.exponent);
    let dec = |minor: f64| decimal(minor, currency);
    let mut lines = vec![
        format!(
            "holdout salt {:?}, share {} bps; orders processed since {}; amounts in {}",
            m.salt, m.share_bps, m.since, m.currency
        ),
        match &m.bundle_policy {
            Some(file) => format!("bundle policy {file}: same holdout"),
            None => "bundle policy: not checked (--bundle-policy FILE checks that the cart \
                     transform holds out the same customers)"
                .into(),
        },
        String::new(),
        "| group | customers | with orders | orders | revenue | discounts | cost | margin | margin per customer (± SE) |".into(),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|".into(),
    ];
    for (name, g) in [("holdout", &m.holdout), ("treated", &m.treated)] {
        lines.push(format!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} ± {} |",
            g.customers,
            g.customers_with_orders,
            g.orders,
            money(g.revenue_minor),
            money(g.discounts_minor),
            money(g.cost_minor),
            money(g.margin_minor),
            dec(g.mean_margin_minor),
            dec(g.mean_margin_se_minor),
        ));
    }
    let d = &m.difference_per_customer;
    let i = &m.incremental_margin;
    lines.push(String::new());
    lines.push(format!(
        "treated − holdout, per customer: {} (95 % interval {} to {}, Welch, normal approximation)",
        dec(d.value_minor),
        dec(d.low_minor),
        dec(d.high_minor)
    ));
    lines.push(format!(
        "incremental margin of the treated group ({} customers): {} (95 % interval {} to {})",
        m.treated.customers,
        dec(i.value_minor),
        dec(i.low_minor),
        dec(i.high_minor)
    ));
    let l = &m.left_out;
    lines.push(String::new());
    lines.push(format!(
        "left out: {} guest orders, {} orders of customers not in the export, {} orders before \
         --since, {} cancelled or test orders, {} lines of unknown cost ({} of revenue after \
         discounts)",
        l.guest_orders,
        l.orders_of_unknown_customers,
        l.orders_before_since,
        l.cancelled_or_test_orders,
        l.lines_of_unknown_cost,
        money(l.revenue_of_unknown_cost_lines_minor)
    ));
    lines.push("not counted:".into());
    for limit in &m.limits {
        lines.push(format!("  - {limit}"));
    }
    lines
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn assignment_is_the_engines_split() {
        let policy = Holdout {
            share_bps: 1_000,
            salt: "2026-q4".into(),
        };
        // Frozen buckets (engine/src/holdout.rs): Customer/1 -> 6816, Customer/7421 -> 1605.
        assert!(!held_out(1, &policy));
        let wide = Holdout {
            share_bps: 1_606,
            salt: "2026-q4".into(),
        };
        assert!(held_out(7421, &wide));
        for id in [1_u64, 2, 42, 7421, 100_000, u64::MAX] {
            let gid = format!("gid://shopify/Customer/{id}");
            assert_eq!(
                held_out(id, &policy),
                holdout::bucket(&gid, "2026-q4") < 1_000,
                "{gid}"
            );
        }
    }

    #[test]
    fn since_takes_a_date_or_a_timestamp() {
        assert_eq!(parse_since("2026-01-01").unwrap(), 1_767_225_600);
        assert_eq!(
            parse_since("2026-01-01T01:00:00+01:00").unwrap(),
            1_767_225_600
        );
        assert!(parse_since("yesterday").is_err());
    }

    #[test]
    fn a_policy_without_holdout_is_refused() {
        let none = r#"{"version": 1, "currency": "USD", "offers": []}"#;
        let error = policy_holdout(none).unwrap_err();
        assert!(matches!(error, MeasureError::NoHoldout), "{error}");
        assert!(error.to_string().contains("no usable holdout"));
        let zero = r#"{"version": 1, "currency": "USD", "offers": [],
            "holdout": {"share_bps": 0, "salt": "s"}}"#;
        assert!(matches!(
            policy_holdout(zero).unwrap_err(),
            MeasureError::NoHoldout
        ));
        let good = r#"{"version": 1, "currency": "USD", "offers": [],
            "holdout": {"share_bps": 2500, "salt": "s"}}"#;
        assert_eq!(
            policy_holdout(good).unwrap(),
            Holdout {
                share_bps: 2_500,
                salt: "s".into()
            }
        );
    }
}
