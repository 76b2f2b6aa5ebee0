//! Runs every fixture in `tests/fixtures/offers/` (Shopify's run-log payload shape) through the
//! export it names, natively, and snapshots the decision and the exact output JSON.
//!
//! The output JSON is produced by the same `Serialize` implementation the Wasm module uses, written
//! into the Wasm API's native context (`Context::finalize_output_and_return`), so the snapshot is
//! byte-for-byte what the module hands Shopify, key order included. When a fixture carries a
//! non-null `output` (for example a run copied from `shopify app logs`), the output must equal it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

use shopify_function::run_function_with_input;
use shopify_function::wasm_api::{Context, Serialize};

use crate::cart_delivery_options_discounts_generate_run as delivery;
use crate::cart_lines_discounts_generate_run as lines;

/// Shopify's output size limit per run.
const MAX_OUTPUT_BYTES: usize = 20_000;

fn to_json<T: Serialize>(value: &T) -> serde_json::Value {
    let mut context = Context::new_with_input(serde_json::json!({}));
    value.serialize(&mut context).unwrap();
    context.finalize_output_and_return().unwrap()
}

struct Run {
    decision: marginwise_engine::Decision,
    output: serde_json::Value,
}

fn run(export: &str, input: &str) -> Run {
    match export {
        "cart_lines_discounts_generate_run" => {
            let output =
                run_function_with_input(lines::cart_lines_discounts_generate_run, input).unwrap();
            let output = to_json(&output);
            let request =
                run_function_with_input(|input: crate::Input| Ok(lines::request(input)), input)
                    .unwrap();
            Run {
                decision: marginwise_engine::evaluate(&request),
                output,
            }
        }
        "cart_delivery_options_discounts_generate_run" => {
            let output = run_function_with_input(
                delivery::cart_delivery_options_discounts_generate_run,
                input,
            )
            .unwrap();
            let output = to_json(&output);
            let request =
                run_function_with_input(|input: crate::Input| Ok(delivery::request(input)), input)
                    .unwrap();
            Run {
                decision: marginwise_engine::evaluate(&request),
                output,
            }
        }
        other => panic!("unknown export `{other}`"),
    }
}

fn expected_target(export: &str) -> &'static str {
    match export {
        "cart_lines_discounts_generate_run" => "cart.lines.discounts.generate.run",
        "cart_delivery_options_discounts_generate_run" => {
            "cart.delivery-options.discounts.generate.run"
        }
        other => panic!("unknown export `{other}`"),
    }
}

fn load(path: &Path) -> (String, String, serde_json::Value) {
    let text = std::fs::read_to_string(path).unwrap();
    let fixture: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
    let payload = &fixture["payload"];
    let export = payload["export"]
        .as_str()
        .unwrap_or_else(|| panic!("{}: payload.export missing", path.display()))
        .to_string();
    let target = payload["target"].as_str().unwrap_or_default();
    assert_eq!(
        target,
        expected_target(&export),
        "{}: target does not match export",
        path.display()
    );
    let input = serde_json::to_string(&payload["input"]).unwrap();
    (export, input, payload["output"].clone())
}

#[test]
fn fixtures() {
    insta::glob!("../../../tests/fixtures/offers", "*.json", |path| {
        let (export, input, expected_output) = load(path);
        let run = run(&export, &input);

        let output_text = serde_json::to_string_pretty(&run.output).unwrap();
        assert!(
            serde_json::to_string(&run.output).unwrap().len() <= MAX_OUTPUT_BYTES,
            "{}: output over Shopify's 20,000-byte limit",
            path.display()
        );
        let log_line = run.decision.log_line();
        assert!(
            log_line.len() <= marginwise_engine::MAX_LOG_LINE_BYTES && !log_line.contains('\n'),
            "{}: log line must be one short line, got {log_line:?}",
            path.display()
        );
        if !expected_output.is_null() {
            assert_eq!(
                run.output,
                expected_output,
                "{}: output differs from the fixture's recorded output",
                path.display()
            );
        }

        insta::assert_snapshot!(format!(
            "export: {export}\nlog: {log_line}\n\n--- decision\n{}\n--- output\n{output_text}\n",
            run.decision.render_text()
        ));
    });
}

/// Both targets read the same facts, so for every fixture input both must pick the same winner:
/// otherwise an offer could be rendered twice (or by neither target).
#[test]
fn both_targets_agree_on_the_winner() {
    insta::glob!("../../../tests/fixtures/offers", "*.json", |path| {
        let (_, input, _) = load(path);
        let lines_run = run("cart_lines_discounts_generate_run", &input);
        let delivery_run = run("cart_delivery_options_discounts_generate_run", &input);
        assert_eq!(
            lines_run.decision.offer_id,
            delivery_run.decision.offer_id,
            "{}",
            path.display()
        );
        // Exactly one target renders the winner's operations.
        let lines_ops = lines_run.output["operations"].as_array().unwrap().len();
        let delivery_ops = delivery_run.output["operations"].as_array().unwrap().len();
        if lines_run.decision.offer_id.is_none() {
            assert_eq!((lines_ops, delivery_ops), (0, 0), "{}", path.display());
        } else {
            assert!(
                (lines_ops == 0) != (delivery_ops == 0),
                "{}: the winner must be rendered by exactly one target",
                path.display()
            );
        }
    });
}

/// Both exports read through one reader (see `crate::Input`), which is only right while both
/// query files select exactly the same fields. Comments may differ.
#[test]
fn input_queries_select_the_same_fields() {
    let read = |name: &str| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../input-queries/offers")
            .join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        text.lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        read("cart_lines_discounts_generate_run.graphql"),
        read("cart_delivery_options_discounts_generate_run.graphql")
    );
}

/// The budget suite's cart of `n_lines` lines with `policy` instead of its own (and no compiled
/// form); every `unknown_every`-th line, from the first, has no `$app.offer` value, so its cost is
/// unknown (0: every line has one).
fn large_cart(n_lines: u64, policy: &serde_json::Value, unknown_every: usize) -> String {
    let mut input = wasm_runner::carts::budget_input(n_lines);
    *input.pointer_mut("/discount/metafield/value").unwrap() = policy.to_string().into();
    *input.pointer_mut("/discount/compiled").unwrap() = serde_json::Value::Null;
    if unknown_every > 0 {
        let lines = input.pointer_mut("/cart/lines").unwrap();
        for line in lines
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .step_by(unknown_every)
        {
            *line.pointer_mut("/m/o").unwrap() = serde_json::Value::Null;
        }
    }
    input.to_string()
}

fn one_offer_policy(reward: serde_json::Value, message: &str) -> serde_json::Value {
    serde_json::json!({
        "version": 1,
        "currency": "USD",
        "strategy": "priority",
        "offers": [{ "id": "big", "reward": reward, "message": message }]
    })
}

/// The largest decisions a policy can make: an uncapped discount on every line of a long cart,
/// and an order discount that must exclude hundreds of lines. Without the engine's output limit
/// they render 250 kB and more, and Shopify would drop the whole run. Each product candidate must
/// also take no more than the engine's estimate of it, with a message that needs escaping.
#[test]
fn the_largest_decisions_stay_under_the_output_limit() {
    use marginwise_engine::output;
    // Quotes, a backslash and characters outside ASCII: every kind of escape a writer may use.
    let message = "Save \"15%\" \\ today 🎁 é";
    // Plain ASCII, written byte for byte: the estimate is exact but for the amount's 2 spare bytes.
    let plain = "15% off every item";
    for (reward, message) in [
        (
            serde_json::json!({ "kind": "lines_percent", "bps": 1500 }),
            message,
        ),
        (
            serde_json::json!({ "kind": "lines_percent", "bps": 1500 }),
            plain,
        ),
        (
            serde_json::json!({ "kind": "lines_fixed", "amount": 100 }),
            message,
        ),
    ] {
        for n_lines in [200, 2_000] {
            let input = large_cart(n_lines, &one_offer_policy(reward.clone(), message), 0);
            let run = run("cart_lines_discounts_generate_run", &input);
            let bytes = serde_json::to_string(&run.output).unwrap().len();
            assert!(
                bytes <= MAX_OUTPUT_BYTES,
                "{reward} on {n_lines} lines: {bytes} bytes"
            );
            // The limit leaves out only what does not fit: most of the room is used.
            assert!(
                bytes > 15_000,
                "{reward} on {n_lines} lines: only {bytes} bytes"
            );
            let codes: Vec<&str> = run.decision.reasons.iter().map(|r| r.code.code()).collect();
            assert!(codes.contains(&"output_limit"), "{codes:?}");
            let candidates = run.output["operations"][0]["productDiscountsAdd"]["candidates"]
                .as_array()
                .unwrap();
            assert_eq!(candidates.len(), run.decision.line_discounts.len());
            let message_bytes = output::json_string_bytes(message);
            for (candidate, discount) in candidates.iter().zip(&run.decision.line_discounts) {
                let written = serde_json::to_string(candidate).unwrap().len() + 1;
                let estimate = output::line_candidate_bytes(
                    message_bytes,
                    output::json_string_bytes(&discount.line_id),
                    discount.amount_minor,
                    2,
                );
                assert!(written <= estimate, "{candidate}: {written} > {estimate}");
                if message == plain {
                    assert!(estimate <= written + 2, "{candidate}: estimate {estimate}");
                }
            }
        }
    }

    // Every third line of unknown cost: an order discount must exclude them. 60 fit (and are
    // written within the estimate); 700 do not, and the offer is dropped rather than rendered
    // without them.
    let order = serde_json::json!({ "kind": "order_percent", "bps": 1000 });
    let fits = run(
        "cart_lines_discounts_generate_run",
        &large_cart(180, &one_offer_policy(order.clone(), plain), 3),
    );
    let candidate = &fits.output["operations"][0]["orderDiscountsAdd"]["candidates"][0];
    let excluded = candidate["targets"][0]["orderSubtotal"]["excludedCartLineIds"]
        .as_array()
        .unwrap();
    assert_eq!(excluded.len(), 60);
    let discount = fits.decision.order_discount.as_ref().unwrap();
    let estimate = output::order_candidate_bytes(
        output::json_string_bytes(plain),
        discount.amount_minor,
        2,
        &discount.excluded_line_ids,
    );
    // Exact but for the amount's 2 spare bytes and the comma after the last id.
    let written = serde_json::to_string(candidate).unwrap().len();
    assert!(
        written <= estimate && estimate <= written + 3,
        "{written} against {estimate}"
    );

    let dropped = run(
        "cart_lines_discounts_generate_run",
        &large_cart(2_100, &one_offer_policy(order, message), 3),
    );
    assert_eq!(dropped.decision.offer_id, None);
    assert_eq!(dropped.output["operations"], serde_json::json!([]));
    let codes: Vec<&str> = dropped
        .decision
        .reasons
        .iter()
        .map(|r| r.code.code())
        .collect();
    assert!(codes.contains(&"output_limit"), "{codes:?}");
}

/// A shipping discount renders one candidate per delivery group: on a cart of very many groups
/// (a message that needs escaping, long group ids) the groups that do not fit are left out, and
/// the decision's figures count only the groups rendered.
#[test]
fn shipping_discounts_on_very_many_delivery_groups_stay_under_the_output_limit() {
    for message in ["Free \"shipping\" \\ on us 🚚", "Half-price shipping"] {
        shipping_on_400_groups(message);
    }
}

fn shipping_on_400_groups(message: &str) {
    use marginwise_engine::output;
    let reward = serde_json::json!({ "kind": "shipping_percent", "bps": 5000 });
    let mut input: serde_json::Value =
        serde_json::from_str(&large_cart(10, &one_offer_policy(reward, message), 0)).unwrap();
    let groups: Vec<serde_json::Value> = (0..400)
        .map(|i| {
            serde_json::json!({
                "id": format!("gid://shopify/CartDeliveryGroup/{}", 1_000_000_000_000_u64 + i),
                "selectedDeliveryOption": { "cost": { "amount": "9.99" } },
                "deliveryOptions": [{ "cost": { "amount": "9.99" } }]
            })
        })
        .collect();
    *input.pointer_mut("/cart/deliveryGroups").unwrap() = groups.into();
    let run = run(
        "cart_delivery_options_discounts_generate_run",
        &input.to_string(),
    );
    let bytes = serde_json::to_string(&run.output).unwrap().len();
    assert!(bytes <= MAX_OUTPUT_BYTES, "{bytes} bytes");
    assert!(bytes > 15_000, "only {bytes} bytes");
    let codes: Vec<&str> = run.decision.reasons.iter().map(|r| r.code.code()).collect();
    assert!(codes.contains(&"output_limit"), "{codes:?}");
    let candidates = run.output["operations"][0]["deliveryDiscountsAdd"]["candidates"]
        .as_array()
        .unwrap();
    let kept = run.decision.shipping_discounts.len();
    assert!(kept > 50 && kept < 400, "{kept} groups kept");
    assert_eq!(candidates.len(), kept);
    // The first groups, in cart order.
    assert_eq!(
        run.decision.shipping_discounts[kept - 1].delivery_group_id,
        format!(
            "gid://shopify/CartDeliveryGroup/{}",
            1_000_000_000_000_u64 + kept as u64 - 1
        )
    );
    let message_bytes = output::json_string_bytes(message);
    for (candidate, discount) in candidates.iter().zip(&run.decision.shipping_discounts) {
        let written = serde_json::to_string(candidate).unwrap().len() + 1;
        let estimate = output::shipping_candidate_bytes(
            message_bytes,
            output::json_string_bytes(&discount.delivery_group_id),
        );
        assert!(written <= estimate, "{candidate}: {written} > {estimate}");
        // Plain ASCII is written byte for byte: exact but for the percentage, which may be
        // shorter than "100.00".
        if message.is_ascii() {
            let percent = candidate["value"]["percentage"]["value"].as_str().unwrap();
            assert_eq!(
                estimate,
                written + output::MAX_PERCENT_BYTES - (percent.len() + 2),
                "{candidate}"
            );
        }
    }
    // The percentage (the guard may have lowered it) of 9.99 on each group rendered, rounded
    // down, and nothing for the groups left out.
    let bps = run.decision.shipping_discounts[0].percent_bps;
    assert_eq!(
        run.decision.margin.shipping_discount_minor,
        999 * bps / 10_000 * kept as i64
    );
}
