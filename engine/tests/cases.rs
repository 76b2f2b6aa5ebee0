//! The data-driven decision suite: every `cases/*.json` file is one checkout, and its snapshot is
//! the decision with all its reasons (`Decision::render_text`) plus the Function log line.
//!
//! Case file fields (all optional except `lines` and `policy`):
//! - `target`: `"cart_lines"` (default) or `"delivery_options"`
//! - `currency` (default `"USD"`), `rate` (shop -> presentment, default `"1.0"`)
//! - `classes`: allowed discount classes, default all three
//! - `profile`: `"anonymous"`, `null`/absent (a known customer without a profile metafield), or the
//!   raw `$app.profile` text
//! - `orders`: the customer's `numberOfOrders` (absent: `null`, as for an anonymous shopper)
//! - `lines`: `[{"id", "qty", "price", "variant"}]`, `variant` the raw `$app.offer` text or null
//! - `delivery`: `[{"id", "cost"}]`, `cost` decimal text or null
//! - `holdout_key` (default empty)
//! - `policy`: a JSON object (serialized as the metafield), a string (the raw metafield text, for
//!   malformed policies) or null (no policy metafield)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use marginwise_engine::{
    CustomerFacts, DeliveryGroup, DiscountClasses, Line, PolicySource, ProfileInput, Request,
    Target, VariantInput, evaluate,
};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    #[serde(default)]
    about: String,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    rate: Option<String>,
    #[serde(default)]
    classes: Option<Vec<String>>,
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    orders: Option<i64>,
    lines: Vec<CaseLine>,
    #[serde(default)]
    delivery: Vec<CaseDelivery>,
    #[serde(default)]
    holdout_key: String,
    policy: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseLine {
    id: String,
    qty: i64,
    price: String,
    variant: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseDelivery {
    id: String,
    cost: Option<String>,
    /// Costs of every option offered (used when no option is selected).
    #[serde(default)]
    options: Vec<String>,
}

fn request(case: &Case) -> Request {
    let classes = match &case.classes {
        None => DiscountClasses {
            product: true,
            order: true,
            shipping: true,
        },
        Some(list) => {
            for class in list {
                assert!(
                    ["product", "order", "shipping"].contains(&class.as_str()),
                    "unknown class {class}"
                );
            }
            let has = |name: &str| list.iter().any(|c| c == name);
            DiscountClasses {
                product: has("product"),
                order: has("order"),
                shipping: has("shipping"),
            }
        }
    };
    let target = match case.target.as_deref() {
        None | Some("cart_lines") => Target::CartLines,
        Some("delivery_options") => Target::DeliveryOptions,
        Some(other) => panic!("unknown target {other}"),
    };
    let profile = match case.profile.as_deref() {
        None => ProfileInput::Missing,
        Some("anonymous") => ProfileInput::Anonymous,
        Some(text) => ProfileInput::Text(text.to_string()),
    };
    let policy = match &case.policy {
        serde_json::Value::Null => PolicySource::Missing,
        serde_json::Value::String(text) => PolicySource::Json(text.clone()),
        object => PolicySource::Json(serde_json::to_string_pretty(object).unwrap()),
    };
    Request {
        target,
        currency_code: case.currency.clone().unwrap_or_else(|| "USD".to_string()),
        presentment_rate: case.rate.clone().unwrap_or_else(|| "1.0".to_string()),
        classes,
        profile,
        customer: CustomerFacts {
            number_of_orders: case.orders,
        },
        lines: case
            .lines
            .iter()
            .map(|l| Line {
                id: l.id.clone(),
                quantity: l.qty,
                unit_price: l.price.clone(),
                variant: l
                    .variant
                    .clone()
                    .map_or(VariantInput::Missing, VariantInput::Text),
            })
            .collect(),
        delivery_groups: case
            .delivery
            .iter()
            .map(|d| DeliveryGroup {
                id: d.id.clone(),
                shipping_cost: d.cost.clone(),
                option_costs: d.options.clone(),
            })
            .collect(),
        holdout_key: case.holdout_key.clone(),
        policy,
    }
}

#[test]
fn decisions() {
    insta::glob!("cases/*.json", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let case: Case =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let decision = evaluate(&request(&case));
        let log_line = decision.log_line();
        assert!(log_line.len() <= marginwise_engine::MAX_LOG_LINE_BYTES);
        insta::with_settings!({ description => case.about.as_str(), omit_expression => true }, {
            insta::assert_snapshot!(format!("{}log: {log_line}\n", decision.render_text()));
        });
    });
}
