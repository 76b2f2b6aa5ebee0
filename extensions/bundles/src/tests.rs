//! Runs every fixture in `tests/fixtures/bundles/` (Shopify's run-log payload shape) natively and
//! snapshots the engine's decision with its reasons and the exact output JSON, as the offers
//! Function's suite does. Every fixture is also checked for what the cart transform promises:
//! - expansions add up exactly to the parent line's price;
//! - idempotence: the fixture's operations applied to its cart (merged units replaced by a parent
//!   line carrying the merge's attributes, expanded lines by their components carrying theirs) and
//!   the transform run again on that cart gives no operation at all;
//! - no double discount: on the transformed cart, the discount engine never makes a merged bundle
//!   parent (flag `B` in its `$app.offer`) a recommendation slot.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

use marginwise_engine::money::{format_decimal_minor, parse_decimal_minor};
use marginwise_engine::{Currency, ReasonCode};
use serde_json::{Value, json};
use shopify_function::run_function_with_input;
use shopify_function::wasm_api::{Context, Serialize};

use crate::cart_transform_run::{cart_transform_run, request};

/// Shopify's output size limit per run.
const MAX_OUTPUT_BYTES: usize = 20_000;
const TARGET: &str = "cart.transform.run";
const EXPORT: &str = "cart_transform_run";

fn to_json<T: Serialize>(value: &T) -> Value {
    let mut context = Context::new_with_input(json!({}));
    value.serialize(&mut context).unwrap();
    context.finalize_output_and_return().unwrap()
}

fn run(input: &Value) -> (marginwise_engine::BundleDecision, Value) {
    let text = input.to_string();
    let output = to_json(&run_function_with_input(cart_transform_run, &text).unwrap());
    let request = run_function_with_input(|input: crate::Input| Ok(request(input)), &text).unwrap();
    (marginwise_engine::evaluate_bundles(&request), output)
}

fn load(path: &Path) -> (Value, Value) {
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
    let payload = &fixture["payload"];
    assert_eq!(payload["export"], EXPORT, "{}", path.display());
    assert_eq!(payload["target"], TARGET, "{}", path.display());
    (payload["input"].clone(), payload["output"].clone())
}

fn currency(input: &Value) -> Currency {
    let code = input["cart"]["lines"][0]["c"]["u"]["k"]
        .as_str()
        .unwrap_or("USD");
    Currency::from_code(code).unwrap_or(Currency::from_code("USD").unwrap())
}

fn minor(text: &Value, currency: Currency) -> i64 {
    parse_decimal_minor(text.as_str().unwrap(), currency.exponent).unwrap()
}

/// The cart after Shopify applied `output`: merged units leave their lines for one new parent line
/// per merge, expanded lines become their components; new lines carry the operation's attributes.
fn apply(input: &Value, output: &Value) -> Value {
    let currency = currency(input);
    let mut lines: Vec<Value> = input["cart"]["lines"].as_array().unwrap().clone();
    let mut added = Vec::new();
    for (n, operation) in output["operations"].as_array().unwrap().iter().enumerate() {
        if let Some(merge) = operation.get("linesMerge") {
            let mut price_before = 0;
            for part in merge["cartLines"].as_array().unwrap() {
                let line = lines
                    .iter_mut()
                    .find(|l| l["i"] == part["cartLineId"])
                    .expect("merge names a line of the cart");
                let units = part["quantity"].as_i64().unwrap();
                let quantity = line["q"].as_i64().unwrap();
                assert!(
                    units >= 1 && units <= quantity,
                    "merge takes {units} of {quantity}"
                );
                price_before += units * minor(&line["c"]["u"]["a"], currency);
                line["q"] = json!(quantity - units);
            }
            let decrease_bps = merge["price"]["percentageDecrease"]["value"]
                .as_str()
                .map_or(0, |v| parse_decimal_minor(v, 2).unwrap());
            let price_after = price_before - price_before * decrease_bps / 10_000;
            let parent = merge["parentVariantId"].as_str().unwrap();
            let product_id = parent.rsplit('/').next().unwrap();
            // A new line in the query's aliases (see `marginwise_input::line_key`).
            added.push(json!({
                "i": format!("gid://shopify/CartLine/merged-{n}"),
                "q": 1,
                "t": attribute(&merge["attributes"]),
                "c": { "u": {
                    "a": format_decimal_minor(price_after, currency.exponent),
                    "k": currency.code_str(),
                } },
                "m": {
                    "i": parent,
                    // What the pipeline writes for a bundle parent: flag B, cost unknown here.
                    "o": { "v": format!("mw1||{product_id}||B") },
                },
            }));
        }
        if let Some(expand) = operation.get("lineExpand") {
            let position = lines
                .iter()
                .position(|l| l["i"] == expand["cartLineId"])
                .expect("expand names a line of the cart");
            let parent = lines.remove(position);
            let parent_quantity = parent["q"].as_i64().unwrap();
            let parent_price = minor(&parent["c"]["u"]["a"], currency);
            let mut total = 0;
            for (j, item) in expand["expandedCartItems"]
                .as_array()
                .unwrap()
                .iter()
                .enumerate()
            {
                let unit_price = minor(
                    &item["price"]["adjustment"]["fixedPricePerUnit"]["amount"],
                    currency,
                );
                let quantity = item["quantity"].as_i64().unwrap();
                total += unit_price * quantity;
                added.push(json!({
                    "i": format!("gid://shopify/CartLine/expanded-{n}-{j}"),
                    "q": quantity * parent_quantity,
                    "t": attribute(&item["attributes"]),
                    "c": { "u": {
                        "a": format_decimal_minor(unit_price, currency.exponent),
                        "k": currency.code_str(),
                    } },
                    "m": { "i": item["merchandiseId"], "o": null },
                }));
            }
            assert_eq!(
                total, parent_price,
                "expanded prices must add up to the parent's"
            );
        }
    }
    lines.retain(|l| l["q"].as_i64().unwrap() > 0);
    lines.extend(added);
    let mut transformed = input.clone();
    transformed["cart"]["lines"] = Value::Array(lines);
    transformed
}

/// The `_mw_bundle` attribute as the input query reads it, from an operation's attribute list.
fn attribute(attributes: &Value) -> Value {
    attributes
        .as_array()
        .and_then(|list| list.iter().find(|a| a["key"] == "_mw_bundle"))
        .map_or(Value::Null, |a| json!({ "v": a["value"] }))
}

#[test]
fn fixtures() {
    insta::glob!("../../../tests/fixtures/bundles", "*.json", |path| {
        let (input, expected_output) = load(path);
        let (decision, output) = run(&input);
        assert!(
            output.to_string().len() <= MAX_OUTPUT_BYTES,
            "{}",
            path.display()
        );
        let log_line = decision.log_line();
        assert!(log_line.len() <= marginwise_engine::MAX_LOG_LINE_BYTES);
        if !expected_output.is_null() {
            assert_eq!(
                output,
                expected_output,
                "{}: differs from the recorded output",
                path.display()
            );
        }
        insta::assert_snapshot!(format!(
            "log: {log_line}\n\n--- decision\n{}\n--- output\n{}\n",
            decision.render_text(),
            serde_json::to_string_pretty(&output).unwrap()
        ));
    });
}

#[test]
fn running_on_its_own_output_changes_nothing() {
    insta::glob!("../../../tests/fixtures/bundles", "*.json", |path| {
        let (input, _) = load(path);
        let (first, output) = run(&input);
        let transformed = apply(&input, &output);
        let (again, output_again) = run(&transformed);
        assert_eq!(
            output_again["operations"],
            json!([]),
            "{}: second run on the transformed cart: {}",
            path.display(),
            again.render_text()
        );
        // Every line the first run created (and every marked line it already had) is recognised
        // by its marker.
        let marked_before = first
            .reasons
            .iter()
            .filter(|r| r.code == ReasonCode::BundleLineMarked)
            .count();
        let created =
            output["operations"]
                .as_array()
                .unwrap()
                .iter()
                .fold(marked_before, |n, op| {
                    n + op.get("linesMerge").map_or(0, |_| 1)
                        + op.get("lineExpand")
                            .map_or(0, |e| e["expandedCartItems"].as_array().unwrap().len())
                });
        let marked = again
            .reasons
            .iter()
            .filter(|r| r.code == ReasonCode::BundleLineMarked)
            .count();
        assert_eq!(marked, created, "{}", path.display());
    });
}

/// The discount engine, run on the transformed cart with a generous slot offer, never discounts a
/// merged bundle parent as a slot, even when its product is another line's complement.
#[test]
fn merged_parents_are_never_slots_for_the_discount_engine() {
    use marginwise_engine::{
        CustomerFacts, DiscountClasses, Line, PolicySource, ProfileInput, Request, Target,
        VariantInput, evaluate,
    };
    insta::glob!("../../../tests/fixtures/bundles", "*.json", |path| {
        let (input, _) = load(path);
        let (_, output) = run(&input);
        let transformed = apply(&input, &output);
        let lines = transformed["cart"]["lines"].as_array().unwrap();
        let merged: Vec<&Value> = lines
            .iter()
            .filter(|l| l["i"].as_str().unwrap().contains("merged-"))
            .collect();
        if merged.is_empty() {
            return;
        }
        // An anchor line whose complements list every merged parent's product.
        let complements: Vec<String> = merged
            .iter()
            .map(|l| {
                l["m"]["i"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect();
        let mut engine_lines: Vec<Line> = lines
            .iter()
            .map(|l| Line {
                id: l["i"].as_str().unwrap().to_string(),
                quantity: l["q"].as_i64().unwrap(),
                unit_price: l["c"]["u"]["a"].as_str().unwrap().to_string(),
                variant: l["m"]["o"]["v"]
                    .as_str()
                    .map_or(VariantInput::Missing, |t| VariantInput::Text(t.to_string())),
            })
            .collect();
        engine_lines.push(Line {
            id: "gid://shopify/CartLine/anchor".to_string(),
            quantity: 1,
            unit_price: "10".to_string(),
            variant: VariantInput::Text(format!("mw1|1|4242|{}|", complements.join(","))),
        });
        let policy = json!({"version": 1, "currency": currency(&input).code_str(), "offers": [
            {"id": "slot", "reward": {"kind": "slot_percent", "bps": 5000, "max_slots": 50}, "message": "m"}
        ]});
        let decision = evaluate(&Request {
            target: Target::CartLines,
            currency_code: currency(&input).code_str().to_string(),
            presentment_rate: "1.0".to_string(),
            classes: DiscountClasses {
                product: true,
                order: true,
                shipping: true,
            },
            profile: ProfileInput::Anonymous,
            customer: CustomerFacts::default(),
            lines: engine_lines,
            delivery_groups: vec![],
            holdout_key: String::new(),
            policy: PolicySource::Json(policy.to_string()),
        });
        for parent in merged {
            let id = parent["i"].as_str().unwrap();
            assert!(
                !decision.line_discounts.iter().any(|d| d.line_id == id),
                "{}: merged parent {id} got a slot discount",
                path.display()
            );
            assert!(
                decision
                    .reasons
                    .iter()
                    .any(|r| r.code == ReasonCode::LineBundleParentExcluded && r.subject == id),
                "{}: no line_bundle_parent_excluded for {id}",
                path.display()
            );
        }
    });
}
