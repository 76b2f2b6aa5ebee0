//! Deterministic budget carts for the offers Function, and their runs against the real Function and
//! its read floor.
//!
//! Each cart is the worst realistic case for instructions at its size: every metafield is present
//! (policy, customer profile, every line's `$app.offer` with complements), the customer has a
//! profile that several offers accept, the policy has more than six offers including
//! recommendation slots and is evaluated with `best_for_shopper` (so no offer short-circuits the
//! others), and the discount node allows every class. Metafield values are written with the
//! engine's own encoders, so the carts follow the formats wherever they go.
//!
//! The read floor (`tests/read-floor/offers-floor`) is a Function built from the same input queries
//! that reads every field of this input and decides nothing; its count is what reading the input
//! costs, and the real Function's ratio to it is what deciding costs.

use crate::host::RunReport;
use crate::project::Extension;
use crate::report::TableRow;
use crate::{Runner, RunnerError};
use marginwise_engine::{Profile, Segment, VariantData};
use serde_json::{Value, json};

/// The cart sizes of the budget suite.
pub const CART_SIZES: [u64; 6] = [1, 10, 50, 200, 500, 2_000];

/// The targets of the offers Function and their exports.
pub const OFFERS_TARGETS: [(&str, &str); 2] = [
    (
        "cart.lines.discounts.generate.run",
        "cart_lines_discounts_generate_run",
    ),
    (
        "cart.delivery-options.discounts.generate.run",
        "cart_delivery_options_discounts_generate_run",
    ),
];

/// Where the read-floor Function of the offers extension lives, relative to the checkout root.
pub const OFFERS_FLOOR_DIR: &str = "tests/read-floor/offers-floor";

/// The policy every budget cart carries: eight offers, two of them recommendation slots.
pub fn budget_policy() -> Value {
    json!({
        "version": 1,
        "currency": "USD",
        "strategy": "best_for_shopper",
        "guard": {
            "min_line_margin_bps": 1000,
            "min_order_margin_bps": 1500,
            "assumed_stack_bps": 500,
            "unknown_cost": "exclude"
        },
        "holdout": { "share_bps": 0, "salt": "budget" },
        "offers": [
            {
                "id": "vip-order-10",
                "eligibility": { "segments": ["loyal_high_value"], "clv_min": 20000, "subtotal_min": 5000, "customer": "returning" },
                "reward": { "kind": "order_percent", "bps": 1000 },
                "cap": 5000,
                "message": "10% off for our best customers"
            },
            {
                "id": "vip-lines-15",
                "eligibility": { "segments": ["loyal_high_value", "active"], "clv_min": 10000 },
                "reward": { "kind": "lines_percent", "bps": 1500 },
                "cap": 8000,
                "message": "15% off every item"
            },
            {
                "id": "winback-fixed",
                "eligibility": { "segments": ["at_risk", "lapsed"], "churn_min_bps": 4000 },
                "reward": { "kind": "order_fixed", "amount": 1500 },
                "message": "We missed you: 15 off"
            },
            {
                "id": "slot-complements-20",
                "eligibility": { "segments": ["loyal_high_value", "active"] },
                "reward": { "kind": "slot_percent", "bps": 2000, "max_slots": 3 },
                "message": "20% off a matching item"
            },
            {
                "id": "slot-complements-35",
                "eligibility": { "clv_min": 40000 },
                "reward": { "kind": "slot_percent", "bps": 3500, "max_slots": 2 },
                "cap": 4000,
                "message": "35% off a perfect match"
            },
            {
                "id": "lines-fixed-2",
                "eligibility": { "subtotal_min": 2000 },
                "reward": { "kind": "lines_fixed", "amount": 200 },
                "cap": 6000,
                "message": "2 off each item"
            },
            {
                "id": "ship-half",
                "eligibility": { "customer": "returning" },
                "reward": { "kind": "shipping_percent", "bps": 5000 },
                "message": "Half-price shipping"
            },
            {
                "id": "ship-free-vip",
                "eligibility": { "segments": ["loyal_high_value"], "subtotal_min": 10000 },
                "reward": { "kind": "free_shipping" },
                "message": "Free shipping for you"
            }
        ]
    })
}

/// The profile every budget cart's customer has: one that most offers accept.
pub fn budget_profile() -> Profile {
    Profile {
        segment: Segment::LoyalHighValue,
        clv_minor: 64_000,
        churn_bps: 1_200,
        expected_orders_12m_milli: 4_500,
        discount_share_bps: 2_500,
        p_alive_bps: 9_100,
    }
}

/// `minor` cents as Shopify's decimal text (`1234` -> `"12.34"`).
fn decimal(minor: u64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

/// A cart of `n_lines` lines, in the offers input query's shape.
pub fn budget_input(n_lines: u64) -> Value {
    let lines: Vec<Value> = (0..n_lines)
        .map(|i| {
            let price_minor = 1_000 + (i * 37) % 9_000;
            // Costs between 40 % and 70 % of the price: enough margin for most offers to pass the
            // guard on most lines, so the engine does its full work.
            let cost_minor = price_minor * (40 + (i * 7) % 31) / 100;
            let product_id = 7_000_000 + i;
            // Three complements per variant, pointing at neighbouring products in the cart.
            let complements = (1..=3)
                .map(|step| 7_000_000 + (i + step * 3) % n_lines.max(1))
                .collect();
            let offer = VariantData {
                unit_cost_minor: i64::try_from(cost_minor).ok(),
                product_id,
                complements,
                bundle_parent: false,
            };
            // The query's aliases (see `marginwise_input::line_key`).
            json!({
                "i": format!("gid://shopify/CartLine/{}", i + 1),
                "q": 1 + i % 3,
                "c": { "u": { "a": decimal(price_minor) } },
                "m": { "o": { "v": offer.encode(2) } }
            })
        })
        .collect();
    let policy = budget_policy().to_string();
    // Written beside the JSON, as `marginwise compile-policy` does; the budget policy compiles.
    let compiled = marginwise_engine::policy::compiled::compile(&policy).unwrap_or_default();
    json!({
        "discount": {
            "discountClasses": ["PRODUCT", "ORDER", "SHIPPING"],
            "metafield": { "value": policy },
            "compiled": { "value": compiled }
        },
        "presentmentCurrencyRate": "1.0",
        "cart": {
            "cost": { "totalAmount": { "currencyCode": "USD" } },
            "buyerIdentity": {
                "customer": {
                    "id": "gid://shopify/Customer/5150",
                    "numberOfOrders": 7,
                    "metafield": { "value": budget_profile().encode() }
                }
            },
            "lines": lines,
            "deliveryGroups": [
                {
                    "id": "gid://shopify/CartDeliveryGroup/1",
                    "selectedDeliveryOption": { "cost": { "amount": "9.99" } },
                    "deliveryOptions": [
                        { "cost": { "amount": "9.99" } },
                        { "cost": { "amount": "19.99" } },
                        { "cost": { "amount": "0.0" } }
                    ]
                }
            ]
        }
    })
}

/// The short name of an export in run names (`lines` / `delivery`).
pub fn export_short(export: &str) -> &str {
    if export.starts_with("cart_delivery") {
        "delivery"
    } else {
        "lines"
    }
}

/// The run name of one budget cart (also its key in the ceilings file).
pub fn budget_name(export: &str, n_lines: u64) -> String {
    if export == crate::bundle_carts::BUNDLES_TARGET.1 {
        return crate::bundle_carts::budget_name(n_lines);
    }
    format!("budget/offers-{}-{n_lines}", export_short(export))
}

/// The run name of the read floor on one budget cart.
pub fn floor_name(export: &str, n_lines: u64) -> String {
    if export == crate::bundle_carts::BUNDLES_TARGET.1 {
        return crate::bundle_carts::floor_name(n_lines);
    }
    format!("floor/offers-{}-{n_lines}", export_short(export))
}

/// One budget cart run against the Function and its read floor.
#[derive(Debug, Clone)]
pub struct BudgetRun {
    pub export: String,
    pub n_lines: u64,
    pub function: RunReport,
    pub floor: RunReport,
}

/// The offers extension and its read floor, or `None` when the checkout has no offers Function.
pub fn offers_and_floor(runner: &Runner) -> Result<Option<(Extension, Extension)>, RunnerError> {
    let (target, export) = OFFERS_TARGETS[0];
    let offers = match runner.project.extension_for(target, export) {
        Ok(extension) => extension,
        Err(crate::project::ProjectError::NoExtension { .. }) => return Ok(None),
        Err(other) => return Err(other.into()),
    };
    let floor_dir = runner.project.root.join(OFFERS_FLOOR_DIR);
    let floor = runner.project.extension_in(&floor_dir)?;
    Ok(Some((offers, floor)))
}

/// Every budget cart through its Function and read floor: the offers carts (both targets), then
/// the bundles carts ([`crate::bundle_carts`]).
pub fn run_budget_carts(runner: &Runner) -> Result<Vec<BudgetRun>, RunnerError> {
    let mut runs = run_offers_carts(runner)?;
    runs.extend(crate::bundle_carts::run_bundle_carts(runner)?);
    Ok(runs)
}

/// Every offers budget cart through the offers Function and its read floor.
pub fn run_offers_carts(runner: &Runner) -> Result<Vec<BudgetRun>, RunnerError> {
    let Some((offers, floor)) = offers_and_floor(runner)? else {
        return Ok(Vec::new());
    };
    let offers_module = runner.extension_module(&offers)?;
    let floor_module = runner.extension_module(&floor)?;
    let mut runs = Vec::new();
    for (_, export) in OFFERS_TARGETS {
        for n_lines in CART_SIZES {
            let input = budget_input(n_lines);
            let function = runner.run_module(
                &offers_module,
                export,
                &input,
                &budget_name(export, n_lines),
            )?;
            let floor =
                runner.run_module(&floor_module, export, &input, &floor_name(export, n_lines))?;
            runs.push(BudgetRun {
                export: export.to_owned(),
                n_lines,
                function,
                floor,
            });
        }
    }
    Ok(runs)
}

/// The largest decisions the offers Function can be asked for, on the largest budget cart: an
/// uncapped discount on every line (one candidate each), and an order discount that must exclude
/// every third line (their cost is unknown). Rendered whole they would be 250 kB and more, and
/// Shopify would drop the run; the engine keeps them under the output limit (`output_limit`).
/// So does free shipping on a cart of 400 delivery groups (one candidate each), through the
/// delivery target. Then the most work a policy can ask for: as many offers as a policy may have
/// (`MAX_OFFERS`), each an uncapped discount on every line, read from the JSON (no compiled
/// form), on 200 and 2,000 lines.
pub fn largest_decision_inputs() -> Vec<(String, &'static str, Value)> {
    let n_lines = 2_000;
    let one_offer = |id: &str, reward: Value| {
        json!({
            "version": 1,
            "currency": "USD",
            "strategy": "priority",
            "offers": [{ "id": id, "reward": reward, "message": "Yours: a little something off" }]
        })
    };
    let with_policy = |mut input: Value, policy: Value| {
        let text = policy.to_string();
        let compiled = marginwise_engine::policy::compiled::compile(&text).unwrap_or_default();
        for (pointer, value) in [
            ("/discount/metafield/value", text),
            ("/discount/compiled/value", compiled),
        ] {
            if let Some(slot) = input.pointer_mut(pointer) {
                *slot = Value::String(value);
            }
        }
        input
    };
    let lines = with_policy(
        budget_input(n_lines),
        one_offer(
            "every-line",
            json!({ "kind": "lines_percent", "bps": 1500 }),
        ),
    );
    let mut unknown_costs = budget_input(n_lines);
    if let Some(lines) = unknown_costs
        .pointer_mut("/cart/lines")
        .and_then(Value::as_array_mut)
    {
        for line in lines.iter_mut().step_by(3) {
            if let Some(offer) = line.pointer_mut("/m/o") {
                *offer = Value::Null;
            }
        }
    }
    let order = with_policy(
        unknown_costs,
        one_offer("order", json!({ "kind": "order_percent", "bps": 1000 })),
    );
    let most_offers = |n_lines: u64| {
        let offers: Vec<Value> = (0..marginwise_engine::policy::MAX_OFFERS)
            .map(|i| {
                json!({
                    "id": format!("every-line-{i}"),
                    "reward": { "kind": "lines_percent", "bps": 1000 + i },
                    "message": "Yours: a little something off"
                })
            })
            .collect();
        let policy = json!({
            "version": 1,
            "currency": "USD",
            "strategy": "best_for_shopper",
            "offers": offers
        });
        let mut input = budget_input(n_lines);
        if let Some(slot) = input.pointer_mut("/discount/metafield/value") {
            *slot = Value::String(policy.to_string());
        }
        if let Some(slot) = input.pointer_mut("/discount/compiled") {
            *slot = Value::Null;
        }
        (format!("budget/offers-most-offers-{n_lines}"), input)
    };
    // Free shipping on a 200-line cart of 400 delivery groups: one candidate per group, more
    // than the output can hold.
    let mut groups = with_policy(
        budget_input(200),
        one_offer("free-shipping", json!({ "kind": "free_shipping" })),
    );
    if let Some(slot) = groups.pointer_mut("/cart/deliveryGroups") {
        *slot = (0..400)
            .map(|i| {
                json!({
                    "id": format!("gid://shopify/CartDeliveryGroup/{}", 1_000_000_000_000_u64 + i),
                    "selectedDeliveryOption": { "cost": { "amount": "9.99" } },
                    "deliveryOptions": [{ "cost": { "amount": "9.99" } }]
                })
            })
            .collect();
    }
    let (lines_export, delivery_export) = (OFFERS_TARGETS[0].1, OFFERS_TARGETS[1].1);
    let (most_200, most_all) = (most_offers(200), most_offers(n_lines));
    vec![
        (
            format!("budget/offers-largest-lines-{n_lines}"),
            lines_export,
            lines,
        ),
        (
            format!("budget/offers-largest-order-{n_lines}"),
            lines_export,
            order,
        ),
        (
            "budget/offers-most-groups-400".to_string(),
            delivery_export,
            groups,
        ),
        (most_200.0, lines_export, most_200.1),
        (most_all.0, lines_export, most_all.1),
    ]
}

/// [`largest_decision_inputs`] through the offers Function, each through its target, as table
/// rows (they have no read floor of their own).
pub fn measure_largest_decisions(runner: &Runner) -> Result<Vec<TableRow>, RunnerError> {
    let Some((offers, _)) = offers_and_floor(runner)? else {
        return Ok(Vec::new());
    };
    let module = runner.extension_module(&offers)?;
    largest_decision_inputs()
        .into_iter()
        .map(|(name, export, input)| {
            let report = runner.run_module(&module, export, &input, &name)?;
            Ok(TableRow {
                fixture: name,
                floor_instructions: None,
                report,
            })
        })
        .collect()
}

/// The budget carts as table rows: the Function (with its ratio to the floor), then the floor,
/// then the largest decisions.
pub fn measure_budget_carts(runner: &Runner) -> Result<Vec<TableRow>, RunnerError> {
    let mut rows = Vec::new();
    for run in run_budget_carts(runner)? {
        rows.push(TableRow {
            fixture: budget_name(&run.export, run.n_lines),
            floor_instructions: Some(run.floor.instructions),
            report: run.function,
        });
        rows.push(TableRow {
            fixture: floor_name(&run.export, run.n_lines),
            floor_instructions: None,
            report: run.floor,
        });
    }
    rows.extend(measure_largest_decisions(runner)?);
    rows.extend(crate::bundle_carts::measure_largest_bundles(runner)?);
    Ok(rows)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn budget_metafields_decode_with_the_engine() {
        let input = budget_input(50);
        let profile = input["cart"]["buyerIdentity"]["customer"]["metafield"]["value"]
            .as_str()
            .unwrap();
        assert_eq!(Profile::decode(profile).unwrap(), budget_profile());
        for line in input["cart"]["lines"].as_array().unwrap() {
            let text = line["m"]["o"]["v"].as_str().unwrap();
            let data = VariantData::decode(text, 2).unwrap();
            assert_eq!(data.complements.len(), 3, "{text}");
            assert!(data.unit_cost_minor.unwrap() > 0, "{text}");
        }
        let policy = input["discount"]["metafield"]["value"].as_str().unwrap();
        let parsed = marginwise_engine::policy::parse(policy);
        assert!(parsed.reasons.is_empty(), "{:?}", parsed.reasons);
        let policy_read = parsed.policy.unwrap();
        assert_eq!(policy_read.offers.len(), 8);
        let compiled = input["discount"]["compiled"]["value"].as_str().unwrap();
        let decoded = marginwise_engine::policy::compiled::decode(compiled, policy).unwrap();
        assert_eq!(decoded, policy_read);
    }

    /// The generated carts use the query's aliases: the Functions' own reader finds every field.
    #[test]
    fn budget_carts_read_completely_through_the_functions_reader() {
        use marginwise_engine::{PolicySource, ProfileInput, Target, VariantInput};
        use shopify_function::wasm_api::{Context, Deserialize};
        let context = Context::new_with_input(budget_input(20));
        let input = marginwise_input::OffersInput::deserialize(&context.input_get().unwrap());
        let request = input.unwrap().request(Target::CartLines);
        assert_eq!(request.lines.len(), 20);
        for line in &request.lines {
            assert!(!line.id.is_empty() && !line.unit_price.is_empty() && line.quantity > 0);
            assert!(matches!(line.variant, VariantInput::Text(_)), "{line:?}");
        }
        assert!(matches!(request.profile, ProfileInput::Text(_)));
        assert!(matches!(request.policy, PolicySource::Compiled { .. }));
        assert_eq!(
            request.delivery_groups[0].shipping_cost.as_deref(),
            Some("9.99")
        );
    }

    #[test]
    fn budget_carts_have_the_requested_sizes() {
        for n in CART_SIZES {
            assert_eq!(crate::host::cart_line_count(&budget_input(n)), n);
        }
    }
}
