//! The data-driven bundle suite: every `bundle_cases/*.json` file is one cart transform run, and
//! its snapshot is the bundle decision with all its reasons (`BundleDecision::render_text`) plus
//! the Function log line. Every case is also checked against the decision's invariants (no line
//! in two operations, expansions that add up exactly, at most one merge per parent).
//!
//! Case file fields (all optional except `lines`):
//! - `currency` (default `"USD"`), `rate` (shop -> presentment, default `"1.0"`)
//! - `profile`: `"anonymous"`, `null`/absent (a customer without a profile metafield) or the raw
//!   `$app.profile` text; `orders`: the customer's `numberOfOrders`
//! - `definitions`: the raw `$app.bundles` text, or null (no metafield)
//! - `policy`: a JSON object (serialized as the metafield), a string (raw text) or null
//! - `compiled`: the `$app.policy_compiled` beside the policy: `true` for the policy's own
//!   compiled form (as `marginwise compile-bundles` writes it), a string for a raw value
//! - `holdout_key` (default `"gid://shopify/Customer/1"`)
//! - `lines`: `[{"id", "qty", "price", "variant", "offer", "marker"}]`; `variant` a number (the
//!   variant GID's numeric part), a string (a raw GID) or null (not a product variant); `offer`
//!   the raw `$app.offer` text or null; `marker` the `_mw_bundle` attribute or null

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;

use marginwise_engine::bundle::VARIANT_GID_PREFIX;
use marginwise_engine::{
    BundleDecision, BundleLine, BundleRequest, CustomerFacts, PolicySource, ProfileInput,
    VariantInput, evaluate_bundles,
};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    #[serde(default)]
    about: String,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    rate: Option<String>,
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    orders: Option<i64>,
    #[serde(default)]
    definitions: Option<String>,
    #[serde(default)]
    policy: serde_json::Value,
    #[serde(default)]
    compiled: serde_json::Value,
    #[serde(default)]
    holdout_key: Option<String>,
    lines: Vec<CaseLine>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseLine {
    id: String,
    qty: i64,
    price: String,
    #[serde(default)]
    variant: serde_json::Value,
    #[serde(default)]
    offer: Option<String>,
    #[serde(default)]
    marker: Option<String>,
}

fn request(case: &Case) -> BundleRequest {
    let profile = match case.profile.as_deref() {
        Some("anonymous") => ProfileInput::Anonymous,
        None => ProfileInput::Missing,
        Some(text) => ProfileInput::Text(text.to_string()),
    };
    let json = match &case.policy {
        serde_json::Value::Null => None,
        serde_json::Value::String(text) => Some(text.clone()),
        other => Some(other.to_string()),
    };
    let policy = match (json, &case.compiled) {
        (None, _) => PolicySource::Missing,
        (Some(json), serde_json::Value::Null) => PolicySource::Json(json),
        (Some(json), serde_json::Value::Bool(true)) => PolicySource::Compiled {
            compiled: marginwise_engine::bundle::compiled::compile(&json).unwrap(),
            json,
        },
        (Some(json), serde_json::Value::String(compiled)) => PolicySource::Compiled {
            json,
            compiled: compiled.clone(),
        },
        (_, other) => panic!("compiled must be true, a string or null: {other}"),
    };
    BundleRequest {
        currency_code: case.currency.clone().unwrap_or_else(|| "USD".to_string()),
        presentment_rate: case.rate.clone().unwrap_or_else(|| "1.0".to_string()),
        profile,
        customer: CustomerFacts {
            number_of_orders: case.orders,
        },
        lines: case
            .lines
            .iter()
            .map(|line| BundleLine {
                id: line.id.clone(),
                quantity: line.qty,
                unit_price: line.price.clone(),
                variant_id: match &line.variant {
                    serde_json::Value::Number(n) => Some(format!("{VARIANT_GID_PREFIX}{n}")),
                    serde_json::Value::String(gid) => Some(gid.clone()),
                    serde_json::Value::Null => None,
                    other => panic!("variant must be a number, a string or null: {other}"),
                },
                variant: line
                    .offer
                    .clone()
                    .map_or(VariantInput::Missing, VariantInput::Text),
                marker: line.marker.clone(),
            })
            .collect(),
        definitions: case.definitions.clone(),
        policy,
        holdout_key: case
            .holdout_key
            .clone()
            .unwrap_or_else(|| "gid://shopify/Customer/1".to_string()),
    }
}

/// The invariants every decision keeps, whatever the input.
fn check_invariants(request: &BundleRequest, decision: &BundleDecision) {
    let mut uses: BTreeMap<&str, usize> = BTreeMap::new();
    for merge in &decision.merges {
        for line in &merge.lines {
            *uses.entry(line.line_id.as_str()).or_default() += 1;
            let source = request.lines.iter().find(|l| l.id == line.line_id).unwrap();
            assert!(line.quantity >= 1 && line.quantity <= source.quantity);
        }
        assert!((0..=10_000).contains(&merge.percent_decrease_bps));
    }
    for expand in &decision.expands {
        *uses.entry(expand.line_id.as_str()).or_default() += 1;
        let total: i64 = expand
            .items
            .iter()
            .map(|item| item.quantity * item.unit_price_minor)
            .sum();
        assert_eq!(total, expand.parent_unit_price_minor, "{}", expand.line_id);
    }
    for (line, count) in uses {
        assert_eq!(count, 1, "line {line} is in {count} operations");
    }
    let mut parents: Vec<&str> = decision
        .merges
        .iter()
        .map(|m| m.parent_variant_id.as_str())
        .collect();
    let n_merges = parents.len();
    parents.sort_unstable();
    parents.dedup();
    assert_eq!(parents.len(), n_merges, "two merges for one parent");
    assert!(decision.log_line().len() <= marginwise_engine::MAX_LOG_LINE_BYTES);
}

#[test]
fn bundle_decisions() {
    insta::glob!("bundle_cases/*.json", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let case: Case =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let request = request(&case);
        let decision = evaluate_bundles(&request);
        check_invariants(&request, &decision);
        assert_eq!(evaluate_bundles(&request), decision, "not deterministic");
        insta::assert_snapshot!(format!(
            "{}\nlog: {}\n\n{}",
            case.about,
            decision.log_line(),
            decision.render_text()
        ));
    });
}

/// `n_bundles` bundles `n = A x1 + B_n x1` all sharing component A, on a cart of `a_lines`
/// separate lines of A (one unit each) and one line of each B_n.
fn shared_component_case(n_bundles: u64, a_lines: u64) -> Case {
    let mut definitions = String::from("mw1|");
    for n in 0..n_bundles {
        if n > 0 {
            definitions.push(';');
        }
        definitions.push_str(&format!("{}=11x1:50+{}x1:50", 9_000 + n, 1_000 + n));
    }
    let line = |id: u64, variant: u64| CaseLine {
        id: format!("gid://shopify/CartLine/{id}"),
        qty: 1,
        price: "20.00".to_string(),
        variant: variant.into(),
        offer: Some("mw1|5.00|7000||".to_string()),
        marker: None,
    };
    let lines = (0..a_lines)
        .map(|i| line(i, 11))
        .chain((0..n_bundles).map(|n| line(a_lines + n, 1_000 + n)))
        .collect();
    Case {
        about: String::new(),
        currency: None,
        rate: None,
        profile: Some("mw1|active|15000|2000|2000|1000|8000".to_string()),
        orders: Some(3),
        definitions: Some(definitions),
        policy: serde_json::json!({
            "version": 1, "currency": "USD", "discount": { "default_bps": 500 }
        }),
        compiled: serde_json::Value::Null,
        holdout_key: None,
        lines,
    }
}

/// Bundles that share a variant are priced again after every merge that takes a line of it: on
/// many lines of that variant the rounds would go over Shopify's instruction limit (13.5 M for
/// 50 bundles on 50 lines of it), and the run would be lost. The engine stops merging at its
/// work limit instead, keeps the merges made so far, and says so; a smaller cart of the same
/// shape merges every bundle.
#[test]
fn merging_stops_at_the_work_limit_and_keeps_what_it_merged() {
    let codes = |decision: &BundleDecision| -> Vec<&'static str> {
        decision.reasons.iter().map(|r| r.code.code()).collect()
    };
    let small = request(&shared_component_case(10, 10));
    let decision = evaluate_bundles(&small);
    check_invariants(&small, &decision);
    assert_eq!(decision.merges.len(), 10);
    assert!(!codes(&decision).contains(&"bundle_work_limit"));

    let large = request(&shared_component_case(50, 50));
    let decision = evaluate_bundles(&large);
    check_invariants(&large, &decision);
    let n_merges = decision.merges.len();
    assert!((1..50).contains(&n_merges), "{n_merges} merges");
    let limit = decision
        .reasons
        .iter()
        .filter(|r| r.code.code() == "bundle_work_limit")
        .collect::<Vec<_>>();
    assert_eq!(limit.len(), 1, "{:?}", codes(&decision));
    assert!(
        limit[0]
            .detail
            .to_string()
            .contains(&format!("after {n_merges} merge(s)")),
        "{}",
        limit[0].detail
    );
    assert_eq!(decision, evaluate_bundles(&large), "not deterministic");
}
