//! Deterministic budget carts for the bundles Function (cart transform), and its read floor.
//!
//! Every metafield the transform reads is present: the customer's `$app.profile`, every line's
//! `$app.offer` (unit costs for the margin guard), the cart transform's `$app.bundles` definitions
//! and its `$app.policy`. The cart repeats a group of four lines: two one-unit lines that are the
//! first two components of a bundle, one line holding a bundle parent sold as one line, and one
//! line no bundle knows. Bundles at even positions have two components (so each group completes
//! one and it is merged, after the guard prices it), bundles at odd positions have three (so the
//! cart holds two of three and the bundle is explained as incomplete); the parents are expanded.
//! That keeps every step of the engine busy at every size: decoding, expansion with a price split,
//! candidate pricing with the guard, merge rounds, explanations and the output cap.
//!
//! The store has [`BUDGET_BUNDLES`] bundles: a realistic catalogue of bundles for a store that
//! uses the feature (a handful of "complete the look" sets per collection), well under the 133 the
//! 10,000-byte metafield can hold. [`bundles_input`] takes any count, so the worst case can be
//! printed with `mw-run cart --function bundles --bundles 133` and run with `mw-run wasm`.
//! Variant ids have 14 digits, as real variant GIDs do today, so the definitions text has its
//! real length.
//!
//! The read floor (`tests/read-floor/bundles-floor`) reads exactly the fields the Function reads
//! and decides nothing.

use crate::carts::{BudgetRun, CART_SIZES, budget_profile};
use crate::project::Extension;
use crate::report::TableRow;
use crate::{Runner, RunnerError};
use marginwise_engine::VariantData;
use marginwise_engine::format::{
    BundleComponent, BundleDefinition, encode_bundles, encode_checked_bundles,
};
use serde_json::{Value, json};

/// The target and export of the bundles Function.
pub const BUNDLES_TARGET: (&str, &str) = ("cart.transform.run", "cart_transform_run");

/// Where the read-floor Function of the bundles extension lives, relative to the checkout root.
pub const BUNDLES_FLOOR_DIR: &str = "tests/read-floor/bundles-floor";

/// Bundles defined in the budget carts' store (see the module docs).
pub const BUDGET_BUNDLES: u64 = 40;

/// First numeric variant id: 14 digits, like today's variant GIDs.
const FIRST_VARIANT: u64 = 44_100_000_000_000;

/// The numeric id of component `component` of bundle `bundle` (four ids per bundle).
fn component_id(bundle: u64, component: u64) -> u64 {
    FIRST_VARIANT + bundle * 4 + component
}

/// The numeric id of the parent variant of bundle `bundle`.
fn parent_id(bundle: u64) -> u64 {
    FIRST_VARIANT + 1_000_000 + bundle
}

/// The numeric id of a variant no bundle names (one per group of four lines).
fn loose_id(group: u64) -> u64 {
    FIRST_VARIANT + 2_000_000 + group
}

/// The definitions of `n_bundles` bundles: even positions two components, odd positions three.
pub fn bundle_definitions(n_bundles: u64) -> Vec<BundleDefinition> {
    (0..n_bundles)
        .map(|bundle| {
            let n_components = if bundle % 2 == 0 { 2 } else { 3 };
            BundleDefinition {
                parent_variant_id: parent_id(bundle),
                components: (0..n_components)
                    .map(|component| BundleComponent {
                        variant_id: component_id(bundle, component),
                        quantity: 1,
                        weight: i64::try_from(30 + (bundle * 7 + component * 13) % 50).unwrap_or(1),
                    })
                    .collect(),
            }
        })
        .collect()
}

/// The bundle policy every budget cart carries: a default decrease raised by segment and CLV, the
/// discount policy's guard, and a holdout that this shopper is not in.
pub fn bundle_policy() -> Value {
    json!({
        "version": 1,
        "currency": "USD",
        "guard": {
            "min_line_margin_bps": 1000,
            "min_order_margin_bps": 1500,
            "assumed_stack_bps": 500,
            "unknown_cost": "exclude"
        },
        "holdout": { "share_bps": 0, "salt": "budget" },
        "discount": {
            "default_bps": 500,
            "segments": { "loyal_high_value": 1000, "at_risk": 1500, "new": 0 },
            "clv_bands": [ { "min": 20000, "bps": 800 }, { "min": 50000, "bps": 1200 } ],
            "customer": "any"
        },
        "merge_without_discount": false,
        "line_update": false
    })
}

/// `minor` cents as Shopify's decimal text (`1234` -> `"12.34"`).
fn decimal(minor: u64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

/// One cart line of the bundles input query.
fn line(index: u64, variant_id: u64, quantity: u64) -> Value {
    let price_minor = 1_000 + (index * 37) % 9_000;
    // Costs between 40 % and 70 % of the price: most bundles keep margin for some decrease and
    // the guard reduces some of them, so the guard does its full work.
    let cost_minor = price_minor * (40 + (index * 7) % 31) / 100;
    let offer = VariantData {
        unit_cost_minor: i64::try_from(cost_minor).ok(),
        product_id: 7_000_000 + index,
        complements: Vec::new(),
        bundle_parent: false,
    };
    // The query's aliases (see `marginwise_input::line_key`).
    json!({
        "i": format!("gid://shopify/CartLine/{}", index + 1),
        "q": quantity,
        "t": null,
        "c": { "u": { "a": decimal(price_minor), "k": "USD" } },
        "m": {
            "i": format!("gid://shopify/ProductVariant/{variant_id}"),
            "o": { "v": offer.encode(2) }
        }
    })
}

/// A cart of `n_lines` lines against a store with `n_bundles` bundles, in the bundles input
/// query's shape (see the module docs for its layout).
pub fn bundles_input(n_lines: u64, n_bundles: u64) -> Value {
    let n_bundles = n_bundles.max(1);
    let lines: Vec<Value> = (0..n_lines)
        .map(|index| {
            let group = index / 4;
            let bundle = group % n_bundles;
            match index % 4 {
                0 => line(index, component_id(bundle, 0), 1),
                1 => line(index, component_id(bundle, 1), 1),
                // The parent of another bundle than this group's, sold as one line.
                2 => line(index, parent_id((bundle + 1) % n_bundles), 1),
                _ => line(index, loose_id(group), 1 + index % 3),
            }
        })
        .collect();
    // Checked, as a writer that validates its list stores it. The generated bundles never clash,
    // so the plain list is only a fallback a test below rules out.
    let definitions = bundle_definitions(n_bundles);
    let bundles =
        encode_checked_bundles(&definitions).unwrap_or_else(|_| encode_bundles(&definitions));
    // The policy with its compiled form, as `marginwise compile-bundles` writes them.
    let policy = bundle_policy().to_string();
    let compiled = marginwise_engine::bundle::compiled::compile(&policy).unwrap_or_default();
    json!({
        "cartTransform": {
            "bundles": { "value": bundles },
            "policy": { "value": policy },
            "compiled": { "value": compiled }
        },
        "presentmentCurrencyRate": "1.0",
        "cart": {
            "buyerIdentity": {
                "customer": {
                    "id": "gid://shopify/Customer/5150",
                    "numberOfOrders": 7,
                    "metafield": { "value": budget_profile().encode() }
                }
            },
            "lines": lines
        }
    })
}

/// The run name of one bundles budget cart (also its key in the ceilings file).
pub fn budget_name(n_lines: u64) -> String {
    format!("budget/bundles-{n_lines}")
}

/// The run name of the bundles read floor on one budget cart.
pub fn floor_name(n_lines: u64) -> String {
    format!("floor/bundles-{n_lines}")
}

/// The bundles extension and its read floor, or `None` when the checkout has no cart transform.
pub fn bundles_and_floor(runner: &Runner) -> Result<Option<(Extension, Extension)>, RunnerError> {
    let (target, export) = BUNDLES_TARGET;
    let bundles = match runner.project.extension_for(target, export) {
        Ok(extension) => extension,
        Err(crate::project::ProjectError::NoExtension { .. }) => return Ok(None),
        Err(other) => return Err(other.into()),
    };
    let floor_dir = runner.project.root.join(BUNDLES_FLOOR_DIR);
    let floor = runner.project.extension_in(&floor_dir)?;
    Ok(Some((bundles, floor)))
}

/// Every bundles budget cart through the bundles Function and its read floor.
pub fn run_bundle_carts(runner: &Runner) -> Result<Vec<BudgetRun>, RunnerError> {
    let Some((bundles, floor)) = bundles_and_floor(runner)? else {
        return Ok(Vec::new());
    };
    let bundles_module = runner.extension_module(&bundles)?;
    let floor_module = runner.extension_module(&floor)?;
    let (_, export) = BUNDLES_TARGET;
    let mut runs = Vec::new();
    for n_lines in CART_SIZES {
        let input = bundles_input(n_lines, BUDGET_BUNDLES);
        let function = runner.run_module(&bundles_module, export, &input, &budget_name(n_lines))?;
        let floor = runner.run_module(&floor_module, export, &input, &floor_name(n_lines))?;
        runs.push(BudgetRun {
            export: export.to_owned(),
            n_lines,
            function,
            floor,
        });
    }
    Ok(runs)
}

/// The most merge work a cart can ask for: `n_bundles` bundles that all share one component,
/// on a cart of `shared_lines` separate one-unit lines of it and one line of each bundle's other
/// component. Every merge takes a line of the shared variant, so every other bundle is priced
/// again, over all those lines: without the engine's work limit, 50 bundles on 50 such lines
/// took 13.5 M instructions, over the limit.
pub fn shared_component_input(n_bundles: u64, shared_lines: u64) -> Value {
    let shared = component_id(0, 0);
    let definitions: Vec<BundleDefinition> = (0..n_bundles)
        .map(|bundle| BundleDefinition {
            parent_variant_id: parent_id(bundle),
            components: [shared, component_id(bundle, 1)]
                .into_iter()
                .map(|variant_id| BundleComponent {
                    variant_id,
                    quantity: 1,
                    weight: 50,
                })
                .collect(),
        })
        .collect();
    let lines: Vec<Value> = (0..shared_lines)
        .map(|index| line(index, shared, 1))
        .chain((0..n_bundles).map(|bundle| line(shared_lines + bundle, component_id(bundle, 1), 1)))
        .collect();
    let mut input = bundles_input(0, BUDGET_BUNDLES);
    let bundles =
        encode_checked_bundles(&definitions).unwrap_or_else(|_| encode_bundles(&definitions));
    if let Some(slot) = input.pointer_mut("/cartTransform/bundles/value") {
        *slot = Value::String(bundles);
    }
    if let Some(slot) = input.pointer_mut("/cart/lines") {
        *slot = Value::Array(lines);
    }
    input
}

/// [`shared_component_input`] through the bundles Function, as a table row (no read floor).
pub fn measure_largest_bundles(runner: &Runner) -> Result<Vec<TableRow>, RunnerError> {
    let Some((bundles, _)) = bundles_and_floor(runner)? else {
        return Ok(Vec::new());
    };
    let module = runner.extension_module(&bundles)?;
    let name = "budget/bundles-shared-component-100".to_string();
    let input = shared_component_input(50, 50);
    let report = runner.run_module(&module, BUNDLES_TARGET.1, &input, &name)?;
    Ok(vec![TableRow {
        fixture: name,
        floor_instructions: None,
        report,
    }])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use marginwise_engine::Profile;
    use marginwise_engine::format::decode_bundles;

    /// The generated carts use the query's aliases: the Function's own reader finds every field.
    #[test]
    fn bundle_carts_read_completely_through_the_functions_reader() {
        use marginwise_engine::VariantInput;
        use shopify_function::wasm_api::{Context, Deserialize};
        let context = Context::new_with_input(bundles_input(12, BUDGET_BUNDLES));
        let input = marginwise_input::BundlesInput::deserialize(&context.input_get().unwrap());
        let request = input.unwrap().request();
        assert_eq!(request.lines.len(), 12);
        assert_eq!(request.currency_code, "USD");
        assert!(request.definitions.is_some());
        for line in &request.lines {
            assert!(!line.id.is_empty() && !line.unit_price.is_empty() && line.quantity > 0);
            assert!(
                line.variant_id.is_some() && line.marker.is_none(),
                "{line:?}"
            );
            assert!(matches!(line.variant, VariantInput::Text(_)), "{line:?}");
        }
    }

    #[test]
    fn bundle_metafields_decode_with_the_engine() {
        let input = bundles_input(50, BUDGET_BUNDLES);
        let transform = &input["cartTransform"];
        let decoded = decode_bundles(transform["bundles"]["value"].as_str().unwrap()).unwrap();
        assert!(decoded.skipped.is_empty(), "{:?}", decoded.skipped);
        assert_eq!(decoded.bundles.len(), 40);
        // Checked (not the plain fallback): a small cart skims it instead of decoding it whole.
        let value = transform["bundles"]["value"].as_str().unwrap();
        let parents: Vec<u64> = decoded
            .bundles
            .iter()
            .map(|b| b.parent_variant_id)
            .collect();
        let skimmed =
            marginwise_engine::format::checked_bundles_mentioning(value, &parents).unwrap();
        assert_eq!(skimmed, decoded.bundles);
        let policy = transform["policy"]["value"].as_str().unwrap();
        let compiled = transform["compiled"]["value"].as_str().unwrap();
        let parsed = marginwise_engine::bundle::parse_bundle_policy(policy);
        assert!(parsed.reasons.is_empty(), "{:?}", parsed.reasons);
        assert!(parsed.policy.is_some());
        let decoded = marginwise_engine::bundle::compiled::decode(compiled, policy);
        assert_eq!(decoded.ok(), parsed.policy);
        let profile = input["cart"]["buyerIdentity"]["customer"]["metafield"]["value"]
            .as_str()
            .unwrap();
        assert_eq!(Profile::decode(profile).unwrap(), budget_profile());
        for line in input["cart"]["lines"].as_array().unwrap() {
            let text = line["m"]["o"]["v"].as_str().unwrap();
            assert!(
                VariantData::decode(text, 2)
                    .unwrap()
                    .unit_cost_minor
                    .unwrap()
                    > 0
            );
        }
    }

    #[test]
    fn the_largest_catalogue_fits_in_one_function_metafield() {
        let input = bundles_input(1, 133);
        let text = input["cartTransform"]["bundles"]["value"].as_str().unwrap();
        assert!(text.len() <= 10_000, "{} bytes", text.len());
        assert_eq!(decode_bundles(text).unwrap().bundles.len(), 133);
    }

    #[test]
    fn bundle_carts_have_the_requested_sizes() {
        for n in CART_SIZES {
            assert_eq!(
                crate::host::cart_line_count(&bundles_input(n, BUDGET_BUNDLES)),
                n
            );
        }
    }
}
