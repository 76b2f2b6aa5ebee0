//! The reader asks for exactly what the queries select, and reads what Shopify sends, natively.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::path::Path;

use graphql_parser::query::{Definition, OperationDefinition, Selection, SelectionSet};
use marginwise_engine::{PolicySource, ProfileInput, Target, VariantInput};
use marginwise_input::{BundlesInput, OffersInput, bundles, offers};
use serde_json::json;
use shopify_function::wasm_api::{Context, Deserialize};

/// Every leaf of a query as the path of response keys (alias, else field name) from the root.
fn leaf_paths(file: &str) -> BTreeSet<Vec<String>> {
    fn walk(
        set: &SelectionSet<'_, String>,
        path: &mut Vec<String>,
        out: &mut BTreeSet<Vec<String>>,
    ) {
        for selection in &set.items {
            match selection {
                Selection::Field(field) => {
                    path.push(field.alias.clone().unwrap_or_else(|| field.name.clone()));
                    if field.selection_set.items.is_empty() {
                        out.insert(path.clone());
                    } else {
                        walk(&field.selection_set, path, out);
                    }
                    path.pop();
                }
                Selection::InlineFragment(fragment) => walk(&fragment.selection_set, path, out),
                Selection::FragmentSpread(spread) => {
                    panic!(
                        "named fragment `{}` (the reader expects inline ones)",
                        spread.fragment_name
                    )
                }
            }
        }
    }
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap();
    let document = graphql_parser::parse_query::<String>(&text).unwrap();
    let mut out = BTreeSet::new();
    for definition in &document.definitions {
        match definition {
            Definition::Operation(OperationDefinition::Query(query)) => {
                walk(&query.selection_set, &mut Vec::new(), &mut out);
            }
            other => panic!("{file}: expected one query, found {other:?}"),
        }
    }
    out
}

fn read_paths(paths: &[&[&str]]) -> BTreeSet<Vec<String>> {
    paths
        .iter()
        .map(|path| path.iter().map(|key| (*key).to_string()).collect())
        .collect()
}

#[test]
fn the_offers_reader_reads_every_field_both_queries_select_and_nothing_else() {
    for file in [
        "offers/cart_lines_discounts_generate_run.graphql",
        "offers/cart_delivery_options_discounts_generate_run.graphql",
    ] {
        assert_eq!(leaf_paths(file), read_paths(offers::READ_PATHS), "{file}");
    }
}

#[test]
fn the_bundles_reader_reads_every_field_the_query_selects_and_nothing_else() {
    let file = "bundles/cart_transform_run.graphql";
    assert_eq!(leaf_paths(file), read_paths(bundles::READ_PATHS), "{file}");
}

fn read<T: Deserialize>(input: serde_json::Value) -> T {
    let context = Context::new_with_input(input);
    T::deserialize(&context.input_get().unwrap()).unwrap()
}

#[test]
fn offers_input_reads_into_the_engine_request() {
    let input: OffersInput = read(json!({
        "discount": {
            "discountClasses": ["PRODUCT", "SHIPPING", "SOMETHING_NEW"],
            "metafield": { "value": "{\"version\":1}" }
        },
        "presentmentCurrencyRate": "1.25",
        "cart": {
            "cost": { "totalAmount": { "currencyCode": "EUR" } },
            "buyerIdentity": { "customer": {
                "id": "gid://shopify/Customer/9", "numberOfOrders": 3, "metafield": null
            } },
            "lines": [
                { "i": "gid://shopify/CartLine/2", "q": 2, "c": { "u": { "a": "19.99" } },
                  "m": { "o": { "v": "mw1|4.00|7|8|" } } },
                // A custom product: its merchandise has none of the ProductVariant fields.
                { "i": "gid://shopify/CartLine/1", "q": 1.5, "c": { "u": { "a": "5.00" } }, "m": {} }
            ],
            "deliveryGroups": [
                { "id": "gid://shopify/CartDeliveryGroup/1", "selectedDeliveryOption": null,
                  "deliveryOptions": [ { "cost": { "amount": "4.99" } }, { "cost": { "amount": "9.99" } } ] },
                { "id": "gid://shopify/CartDeliveryGroup/2",
                  "selectedDeliveryOption": { "cost": { "amount": "0.0" } },
                  "deliveryOptions": [ { "cost": { "amount": "0.0" } } ] }
            ]
        }
    }));
    let request = input.request(Target::DeliveryOptions);
    assert_eq!(request.target, Target::DeliveryOptions);
    assert!(request.classes.product && request.classes.shipping && !request.classes.order);
    assert_eq!(
        request.policy,
        PolicySource::Json("{\"version\":1}".to_string())
    );
    assert_eq!(request.presentment_rate, "1.25");
    assert_eq!(request.currency_code, "EUR");
    assert_eq!(request.profile, ProfileInput::Missing);
    assert_eq!(request.customer.number_of_orders, Some(3));
    assert_eq!(request.holdout_key, "gid://shopify/Customer/9");
    assert_eq!(request.lines.len(), 2);
    assert_eq!(request.lines[0].id, "gid://shopify/CartLine/2");
    assert_eq!(request.lines[0].quantity, 2);
    assert_eq!(request.lines[0].unit_price, "19.99");
    assert_eq!(
        request.lines[0].variant,
        VariantInput::Text("mw1|4.00|7|8|".to_string())
    );
    // A fractional quantity is unreadable: 0, which the engine reports as a reason.
    assert_eq!(request.lines[1].quantity, 0);
    assert_eq!(request.lines[1].variant, VariantInput::Missing);
    // Options are read only where no option is selected.
    assert_eq!(request.delivery_groups[0].shipping_cost, None);
    assert_eq!(request.delivery_groups[0].option_costs, ["4.99", "9.99"]);
    assert_eq!(
        request.delivery_groups[1].shipping_cost.as_deref(),
        Some("0.0")
    );
    assert!(request.delivery_groups[1].option_costs.is_empty());
}

/// The compiled policy travels with its JSON; without the JSON there is no policy at all.
#[test]
fn the_compiled_policy_is_read_only_beside_its_json() {
    let discount = |metafield: serde_json::Value, compiled: serde_json::Value| {
        let input: OffersInput = read(json!({
            "discount": { "discountClasses": [], "metafield": metafield, "compiled": compiled },
            "presentmentCurrencyRate": "1.0",
            "cart": { "cost": { "totalAmount": { "currencyCode": "USD" } }, "lines": [] }
        }));
        input.request(Target::CartLines).policy
    };
    assert_eq!(
        discount(json!({ "value": "{}" }), json!({ "value": "mwp1," })),
        PolicySource::Compiled {
            json: "{}".to_string(),
            compiled: "mwp1,".to_string()
        }
    );
    assert_eq!(
        discount(json!({ "value": "{}" }), json!(null)),
        PolicySource::Json("{}".to_string())
    );
    assert_eq!(
        discount(json!(null), json!({ "value": "mwp1," })),
        PolicySource::Missing
    );
}

#[test]
fn an_anonymous_shopper_is_keyed_by_the_smallest_line_id() {
    let input: OffersInput = read(json!({
        "discount": { "discountClasses": [], "metafield": null },
        "presentmentCurrencyRate": "1.0",
        "cart": {
            "cost": { "totalAmount": { "currencyCode": "USD" } },
            "buyerIdentity": null,
            "lines": [
                { "i": "gid://shopify/CartLine/b", "q": 1, "c": { "u": { "a": "1.00" } }, "m": {} },
                { "i": "gid://shopify/CartLine/a", "q": 1, "c": { "u": { "a": "1.00" } }, "m": {} }
            ],
            "deliveryGroups": []
        }
    }));
    let request = input.request(Target::CartLines);
    assert_eq!(request.profile, ProfileInput::Anonymous);
    assert_eq!(request.customer.number_of_orders, None);
    assert_eq!(request.policy, PolicySource::Missing);
    assert_eq!(request.holdout_key, "gid://shopify/CartLine/a");
}

#[test]
fn a_malformed_input_reads_as_absent_values_never_a_panic() {
    for input in [
        json!({}),
        json!(null),
        json!({ "cart": { "lines": "not a list" }, "discount": 7 }),
        json!({ "cart": { "lines": [ null, 3, { "q": "2" } ] } }),
    ] {
        let request = read::<OffersInput>(input.clone()).request(Target::CartLines);
        assert_eq!(request.policy, PolicySource::Missing, "{input}");
        assert!(request.currency_code.is_empty(), "{input}");
        assert!(
            request
                .lines
                .iter()
                .all(|line| line.quantity == 0 && line.unit_price.is_empty())
        );
        let bundles = read::<BundlesInput>(input.clone()).request();
        assert_eq!(bundles.definitions, None, "{input}");
        assert!(bundles.lines.iter().all(|line| line.variant_id.is_none()));
    }
}

#[test]
fn bundles_input_reads_into_the_engine_request() {
    let request = read::<BundlesInput>(json!({
        "cartTransform": {
            "bundles": { "value": "mwb1|..." },
            "policy": { "value": "{}" }
        },
        "presentmentCurrencyRate": "1.0",
        "cart": {
            "buyerIdentity": { "customer": {
                "id": "gid://shopify/Customer/5", "numberOfOrders": 0,
                "metafield": { "value": "mwp1|..." }
            } },
            "lines": [
                { "i": "gid://shopify/CartLine/1", "q": 3, "t": { "v": "merged" },
                  "c": { "u": { "a": "1000", "k": "JPY" } },
                  "m": { "i": "gid://shopify/ProductVariant/44", "o": { "v": "mw1|400|44||" } } },
                { "i": "gid://shopify/CartLine/2", "q": 1, "t": null,
                  "c": { "u": { "a": "500", "k": "JPY" } }, "m": {} }
            ]
        }
    }))
    .request();
    assert_eq!(request.currency_code, "JPY");
    assert_eq!(request.definitions.as_deref(), Some("mwb1|..."));
    assert_eq!(request.policy, PolicySource::Json("{}".to_string()));
    assert_eq!(request.profile, ProfileInput::Text("mwp1|...".to_string()));
    assert_eq!(request.customer.number_of_orders, Some(0));
    assert_eq!(request.holdout_key, "gid://shopify/Customer/5");
    let [first, second] = &request.lines[..] else {
        panic!("two lines expected, got {:?}", request.lines);
    };
    assert_eq!(
        (first.id.as_str(), first.quantity),
        ("gid://shopify/CartLine/1", 3)
    );
    assert_eq!(first.unit_price, "1000");
    assert_eq!(
        first.variant_id.as_deref(),
        Some("gid://shopify/ProductVariant/44")
    );
    assert_eq!(
        first.variant,
        VariantInput::Text("mw1|400|44||".to_string())
    );
    assert_eq!(first.marker.as_deref(), Some("merged"));
    assert_eq!(second.variant_id, None);
    assert_eq!(second.variant, VariantInput::Missing);
    assert_eq!(second.marker, None);
}
