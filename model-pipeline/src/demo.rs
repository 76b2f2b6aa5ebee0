//! The README's main job: generate the sample store, run the whole pipeline, then ask the engine
//! what a set of checkouts would get.
//!
//! Every request is built from the plan's metafield values, exactly the text the Functions would
//! read (`$app.profile` of the customer, `$app.offer` of each variant), not from the pipeline's
//! in-memory scores: the demo therefore also exercises the writer/reader contract end to end.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use marginwise_engine::format::{PROFILE_KEY, VARIANT_KEY};
use marginwise_engine::money::format_decimal_minor;
use marginwise_engine::{
    CustomerFacts, Decision, DeliveryGroup, DiscountClasses, Line, PolicySource, Profile,
    ProfileInput, Request, Segment, Target, VariantData, VariantInput, evaluate, holdout,
};

use crate::generate::{self, DEFAULT_OPT_OUT_TAG, GeneratorConfig};
use crate::ingest::IngestOptions;
use crate::pipeline::{self, Outcome, RunOptions};
use crate::plan::{self, PLAN_FILE, customer_gid};
use crate::progress::Progress;

/// The bundled sample policy (seven offers, including a slot offer and free shipping).
pub const SAMPLE_POLICY: &str = include_str!("../sample/policy.json");
/// File with every scenario's full decision text.
pub const SCENARIOS_FILE: &str = "scenarios.txt";
/// The delivery cost every scenario's cart carries (presentment currency).
const SHIPPING_COST: &str = "7.50";

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub out: PathBuf,
    pub customers: u32,
    pub seed: u64,
    pub policy: Option<PathBuf>,
}

/// One evaluated scenario.
#[derive(Debug, Clone)]
pub struct ScenarioResult {
    pub name: String,
    pub segment: String,
    pub offer: String,
    pub discount: String,
    pub margin_kept: String,
    pub reasons: String,
    pub cart_lines: Decision,
    pub delivery: Decision,
}

#[derive(Debug)]
pub struct DemoOutcome {
    pub scenarios: Vec<ScenarioResult>,
    pub report: Option<PathBuf>,
    pub table: String,
}

/// A variant as the demo needs it: its plan value and its price.
#[derive(Debug, Clone)]
struct PlanVariant {
    value: String,
    data: VariantData,
    price_minor: i64,
}

struct Scenario {
    name: String,
    customer: Option<(u64, i64)>,
    lines: Vec<(PlanVariant, i64)>,
}

/// Runs the demo and prints the table.
pub fn run(options: &DemoOptions, progress: Progress) -> anyhow::Result<DemoOutcome> {
    let store = options.out.join("sample-store");
    let generated = generate::generate(
        &GeneratorConfig {
            customers: options.customers,
            seed: options.seed,
        },
        &store,
        progress,
    )
    .with_context(|| format!("generating the sample store in {}", store.display()))?;
    println!(
        "sample store: {} customers, {} products, {} orders in {}",
        generated.customers,
        generated.products,
        generated.orders,
        store.display()
    );
    let run_options = RunOptions {
        ingest: IngestOptions {
            opt_out_tag: Some(DEFAULT_OPT_OUT_TAG.to_string()),
            ..IngestOptions::default()
        },
        ..RunOptions::default()
    };
    let outcome = pipeline::run(&store, &options.out, &run_options, progress)?;
    print!("{}", pipeline::summary_text(&outcome));
    let policy = match &options.policy {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the policy {}", path.display()))?,
        None => SAMPLE_POLICY.to_string(),
    };
    let scenarios = evaluate_scenarios(&outcome, &policy)?;
    let table = table(&scenarios);
    println!("\ncheckout scenarios (policy: {}):", policy_name(options));
    print!("{table}");
    let mut details = String::new();
    for s in &scenarios {
        let _ = writeln!(
            details,
            "== {}\n-- cart lines target\n{}-- delivery options target\n{}",
            s.name,
            s.cart_lines.render_text(),
            s.delivery.render_text()
        );
    }
    let details_path = options.out.join(SCENARIOS_FILE);
    std::fs::write(&details_path, details)
        .with_context(|| format!("writing {}", details_path.display()))?;
    println!(
        "\nfull decisions with every reason: {}",
        details_path.display()
    );
    if let Some(report) = &outcome.report {
        println!("report: {}", report.display());
    }
    Ok(DemoOutcome {
        scenarios,
        report: outcome.report.clone(),
        table,
    })
}

fn policy_name(options: &DemoOptions) -> String {
    options.policy.as_ref().map_or_else(
        || "model-pipeline/sample/policy.json".to_string(),
        |p| p.display().to_string(),
    )
}

/// Holdout settings read from the policy JSON, to pick treated and held-out customers.
fn holdout_settings(policy: &str) -> (String, i64) {
    let value: serde_json::Value = serde_json::from_str(policy).unwrap_or_default();
    let holdout = value.get("holdout");
    let salt = holdout
        .and_then(|h| h.get("salt"))
        .and_then(serde_json::Value::as_str)
        .unwrap_or("")
        .to_string();
    let share = holdout
        .and_then(|h| h.get("share_bps"))
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(0);
    (salt, share)
}

/// Builds the scenarios from the plan file and evaluates each for both Function targets.
pub fn evaluate_scenarios(outcome: &Outcome, policy: &str) -> anyhow::Result<Vec<ScenarioResult>> {
    let plan_path = outcome.out_dir.join(PLAN_FILE);
    let records = plan::read_plan(&plan_path)?;
    let exponent = outcome.data.currency.exponent;
    let prices: HashMap<u64, i64> = outcome
        .data
        .catalog
        .variants
        .iter()
        .map(|v| (v.id, v.price_minor))
        .collect();
    let orders: HashMap<u64, i64> = outcome
        .data
        .customers
        .iter()
        .map(|c| (c.id, c.number_of_orders))
        .collect();
    let mut profiles: Vec<(u64, String, Profile)> = Vec::new();
    let mut variants: Vec<PlanVariant> = Vec::new();
    for record in records {
        let number = marginwise_engine::format::gid_number(&record.owner_id).unwrap_or(0);
        if record.key == PROFILE_KEY {
            let profile = Profile::decode(&record.value).map_err(|e| {
                anyhow::anyhow!(
                    "{}: profile of {}: {e}",
                    plan_path.display(),
                    record.owner_id
                )
            })?;
            profiles.push((number, record.value, profile));
        } else if record.key == VARIANT_KEY {
            let data = VariantData::decode(&record.value, exponent).map_err(|e| {
                anyhow::anyhow!("{}: variant {}: {e}", plan_path.display(), record.owner_id)
            })?;
            variants.push(PlanVariant {
                value: record.value,
                data,
                price_minor: prices.get(&number).copied().unwrap_or(0),
            });
        }
    }
    let (salt, share) = holdout_settings(policy);
    let treated = |id: u64| !holdout::is_held_out(&customer_gid(id), &salt, share);
    let pick_where = |segment: Segment, extra: &dyn Fn(&Profile) -> bool| {
        profiles
            .iter()
            .find(|(id, _, p)| {
                p.segment == segment
                    && treated(*id)
                    && orders.get(id).copied().unwrap_or(0) > 0
                    && extra(p)
            })
            .map(|(id, _, _)| (*id, orders.get(id).copied().unwrap_or(0)))
    };
    let pick = |segment: Segment, _returning: bool| pick_where(segment, &|_| true);

    // Carts: an anchor with its top complement, a basket of two unrelated products, and a cart
    // with a line whose unit cost the store does not know.
    let known = |v: &&PlanVariant| v.data.unit_cost_minor.is_some() && v.price_minor > 0;
    let by_product = |product: u64| {
        variants
            .iter()
            .filter(known)
            .find(|v| v.data.product_id == product)
            .cloned()
    };
    let pair = variants.iter().filter(known).find_map(|anchor| {
        anchor
            .data
            .complements
            .first()
            .and_then(|p| by_product(*p))
            .map(|complement| (anchor.clone(), complement))
    });
    // Two products that are not complements of each other (searched among the first few hundred
    // variants: enough for any catalog, and bounded).
    let candidates: Vec<&PlanVariant> = variants.iter().filter(known).take(400).collect();
    let basket = candidates.iter().enumerate().find_map(|(i, f)| {
        candidates.iter().skip(i + 1).find_map(|v| {
            let unrelated = v.data.product_id != f.data.product_id
                && !f.data.complements.contains(&v.data.product_id)
                && !v.data.complements.contains(&f.data.product_id);
            unrelated.then(|| ((*f).clone(), (*v).clone()))
        })
    });
    let unknown_cost = variants
        .iter()
        .find(|v| v.data.unit_cost_minor.is_none() && v.price_minor > 0)
        .cloned();
    let (Some((anchor, complement)), Some((first, second))) = (pair, basket) else {
        anyhow::bail!("the plan has no complementary pair or no two products with known cost");
    };
    // Quantities that put the basket above the policies' usual subtotal minimums.
    let basket_lines = vec![(first.clone(), 2), (second.clone(), 1)];
    let pair_lines = vec![(anchor.clone(), 1), (complement.clone(), 1)];

    let mut scenarios = Vec::new();
    let mut add = |name: &str, customer: Option<(u64, i64)>, lines: &[(PlanVariant, i64)]| {
        scenarios.push(Scenario {
            name: name.to_string(),
            customer,
            lines: lines.to_vec(),
        });
    };
    if let Some(c) = pick(Segment::LoyalHighValue, true) {
        add("loyal customer, basket", Some(c), &basket_lines);
        add("loyal customer, anchor + complement", Some(c), &pair_lines);
    }
    if let Some(c) = pick(Segment::Active, true) {
        add("active customer, anchor + complement", Some(c), &pair_lines);
        add("active customer, basket", Some(c), &basket_lines);
    }
    // At risk: a repeat buyer whose P(alive) is falling, and a one-time buyer past the new
    // window (BG/NBD gives one-time buyers P(alive) = 1, so churn rules do not reach them).
    if let Some(c) = pick_where(Segment::AtRisk, &|p| p.churn_bps > 0) {
        add("at-risk repeat buyer, basket", Some(c), &basket_lines);
    }
    if let Some(c) = pick_where(Segment::AtRisk, &|p| p.churn_bps == 0) {
        add("at-risk one-time buyer, basket", Some(c), &basket_lines);
    }
    if let Some(c) = pick(Segment::Lapsed, true) {
        add("lapsed customer, basket", Some(c), &basket_lines);
    }
    if let Some(c) = pick(Segment::New, true) {
        add("new customer (1 order), basket", Some(c), &basket_lines);
    }
    add("anonymous shopper, anchor + complement", None, &pair_lines);
    add("anonymous shopper, basket", None, &basket_lines);
    if let Some((id, _, _)) = profiles.iter().find(|(id, _, _)| !treated(*id)) {
        add(
            "held-out customer, basket",
            Some((*id, orders.get(id).copied().unwrap_or(0))),
            &basket_lines,
        );
    }
    if let Some(opted) = outcome.scored.opted_out.iter().find(|id| treated(**id)) {
        add(
            "opted-out customer (no profile), basket",
            Some((*opted, orders.get(opted).copied().unwrap_or(0))),
            &basket_lines,
        );
    }
    if let (Some(unknown), Some(c)) = (unknown_cost, pick(Segment::Active, true)) {
        add(
            "active customer, line of unknown cost",
            Some(c),
            &[(unknown, 1), (first.clone(), 1)],
        );
    }

    let profile_text: HashMap<u64, &str> = profiles
        .iter()
        .map(|(id, text, _)| (*id, text.as_str()))
        .collect();
    let results = scenarios
        .into_iter()
        .map(|scenario| {
            let profile = match scenario.customer {
                None => ProfileInput::Anonymous,
                Some((id, _)) => match profile_text.get(&id) {
                    Some(text) => ProfileInput::Text((*text).to_string()),
                    None => ProfileInput::Missing,
                },
            };
            let segment = match &profile {
                ProfileInput::Text(text) => Profile::decode(text)
                    .map_or("(malformed)".to_string(), |p| p.segment.code().to_string()),
                ProfileInput::Missing => "(no profile)".to_string(),
                ProfileInput::Anonymous => "(anonymous)".to_string(),
            };
            let lines: Vec<Line> = scenario
                .lines
                .iter()
                .enumerate()
                .map(|(i, (variant, quantity))| Line {
                    id: format!("gid://shopify/CartLine/{}", i + 1),
                    quantity: *quantity,
                    unit_price: format_decimal_minor(variant.price_minor, exponent),
                    variant: VariantInput::Text(variant.value.clone()),
                })
                .collect();
            let holdout_key = match scenario.customer {
                Some((id, _)) => customer_gid(id),
                None => lines.iter().map(|l| l.id.clone()).min().unwrap_or_default(),
            };
            let request = |target| Request {
                target,
                currency_code: outcome.data.currency.code_str().to_string(),
                presentment_rate: "1.0".to_string(),
                classes: DiscountClasses {
                    product: true,
                    order: true,
                    shipping: true,
                },
                profile: profile.clone(),
                customer: CustomerFacts {
                    number_of_orders: scenario.customer.map(|(_, n)| n),
                },
                lines: lines.clone(),
                delivery_groups: vec![DeliveryGroup {
                    id: "gid://shopify/CartDeliveryGroup/1".to_string(),
                    shipping_cost: Some(SHIPPING_COST.to_string()),
                }],
                holdout_key: holdout_key.clone(),
                policy: PolicySource::Json(policy.to_string()),
            };
            let cart_lines = evaluate(&request(Target::CartLines));
            let delivery = evaluate(&request(Target::DeliveryOptions));
            summarize(scenario.name, segment, cart_lines, delivery, exponent)
        })
        .collect();
    Ok(results)
}

fn summarize(
    name: String,
    segment: String,
    cart_lines: Decision,
    delivery: Decision,
    exponent: u8,
) -> ScenarioResult {
    let line_total: i64 = cart_lines
        .line_discounts
        .iter()
        .map(|d| d.amount_minor)
        .sum();
    let order_total = cart_lines
        .order_discount
        .as_ref()
        .map_or(0, |d| d.amount_minor);
    let mut parts = Vec::new();
    if line_total > 0 {
        parts.push(format!(
            "{} on lines",
            format_decimal_minor(line_total, exponent)
        ));
    }
    if order_total > 0 {
        parts.push(format!(
            "{} on order",
            format_decimal_minor(order_total, exponent)
        ));
    }
    for shipping in &delivery.shipping_discounts {
        parts.push(if shipping.percent_bps >= 10_000 {
            "free shipping".to_string()
        } else {
            format!("{}% off shipping", shipping.percent_bps as f64 / 100.0)
        });
    }
    let discount = if parts.is_empty() {
        "-".to_string()
    } else {
        parts.join(" + ")
    };
    // The margin picture of the run that rendered the winner.
    let rendering = if delivery.shipping_discounts.is_empty() {
        &cart_lines
    } else {
        &delivery
    };
    let margin = &rendering.margin;
    let margin_kept = if margin.revenue_minor > 0 {
        format!("{:.1}%", margin.margin_kept_bps as f64 / 100.0)
    } else {
        "-".to_string()
    };
    let log = rendering.log_line();
    let reasons = log
        .split_once(' ')
        .and_then(|(_, rest)| rest.split_once(' ').map(|(_, r)| r.to_string()))
        .unwrap_or_default();
    ScenarioResult {
        name,
        segment,
        offer: cart_lines
            .offer_id
            .clone()
            .unwrap_or_else(|| "-".to_string()),
        discount,
        margin_kept,
        reasons,
        cart_lines,
        delivery,
    }
}

/// The readable table: scenario, segment, offer chosen, discount, margin kept, reasons.
pub fn table(rows: &[ScenarioResult]) -> String {
    let headers = [
        "scenario",
        "segment",
        "offer",
        "discount",
        "margin kept",
        "reasons",
    ];
    let cells: Vec<[&str; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.name.as_str(),
                r.segment.as_str(),
                r.offer.as_str(),
                r.discount.as_str(),
                r.margin_kept.as_str(),
                r.reasons.as_str(),
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    let mut line = |row: &[&str; 6]| {
        let padded: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        let _ = writeln!(out, "{}", padded.join("  ").trim_end());
    };
    line(&headers);
    let rule = widths.map(|w| "-".repeat(w));
    line(&std::array::from_fn(|i| {
        rule.get(i).map_or("", String::as_str)
    }));
    for row in &cells {
        line(row);
    }
    out
}
