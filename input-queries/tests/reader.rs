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

/// The response keys an object at `path` (response keys from the root) gets, in the query's order,
/// inline fragments included.
fn keys_in_order(file: &str, path: &[&str]) -> Vec<String> {
    fn children<'a>(
        set: &SelectionSet<'a, String>,
        out: &mut Vec<(String, SelectionSet<'a, String>)>,
    ) {
        for selection in &set.items {
            match selection {
                Selection::Field(field) => out.push((
                    field.alias.clone().unwrap_or_else(|| field.name.clone()),
                    field.selection_set.clone(),
                )),
                Selection::InlineFragment(fragment) => children(&fragment.selection_set, out),
                Selection::FragmentSpread(_) => panic!("named fragment"),
            }
        }
    }
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap();
    let document = graphql_parser::parse_query::<String>(&text).unwrap();
    let Some(Definition::Operation(OperationDefinition::Query(query))) =
        document.definitions.first()
    else {
        panic!("{file}: expected a query first");
    };
    let mut set = query.selection_set.clone();
    for key in path {
        let mut fields = Vec::new();
        children(&set, &mut fields);
        set = fields
            .into_iter()
            .find(|(name, _)| name == key)
            .unwrap_or_else(|| panic!("{file}: no `{key}` on the way to {path:?}"))
            .1;
    }
    let mut fields = Vec::new();
    children(&set, &mut fields);
    fields.into_iter().map(|(name, _)| name).collect()
}

/// The layouts the reader reads lines by position with are the queries' own orders.
#[test]
fn the_line_layouts_are_the_queries_orders() {
    let cases = [
        (
            "offers/cart_lines_discounts_generate_run.graphql",
            &offers::LAYOUT,
        ),
        (
            "offers/cart_delivery_options_discounts_generate_run.graphql",
            &offers::LAYOUT,
        ),
        ("bundles/cart_transform_run.graphql", &bundles::LAYOUT),
    ];
    for (file, layout) in cases {
        let lines = ["cart", "lines"];
        assert_eq!(keys_in_order(file, &lines), layout.line, "{file}: line");
        assert_eq!(
            keys_in_order(file, &["cart", "lines", "c", "u"]),
            layout.unit,
            "{file}: amountPerQuantity"
        );
        assert_eq!(
            keys_in_order(file, &["cart", "lines", "m"]),
            layout.merchandise,
            "{file}: merchandise"
        );
        // Every other per-line object selects one field, which needs no layout.
        for object in [&["cart", "lines", "c"][..], &["cart", "lines", "m", "o"]] {
            assert_eq!(keys_in_order(file, object).len(), 1, "{file}: {object:?}");
        }
    }
    assert_eq!(
        keys_in_order(
            "bundles/cart_transform_run.graphql",
            &["cart", "lines", "t"]
        )
        .len(),
        1
    );
}

/// An offers input of `n` lines whose objects list their keys in query order, or reversed.
fn offers_lines_input(n: usize, reversed: bool, first_is_custom: bool) -> serde_json::Value {
    let lines: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let id = json!(format!("gid://shopify/CartLine/{i}"));
            let cost = json!({ "u": { "a": format!("{}.50", 10 + i) } });
            let merchandise = if first_is_custom && i == 0 {
                json!({})
            } else {
                json!({ "o": { "v": format!("mw1|4.00|{i}||") } })
            };
            if reversed {
                json!({ "m": merchandise, "c": cost, "q": 1 + i % 3, "i": id })
            } else {
                json!({ "i": id, "q": 1 + i % 3, "c": cost, "m": merchandise })
            }
        })
        .collect();
    json!({
        "discount": { "discountClasses": [], "metafield": null },
        "presentmentCurrencyRate": "1.0",
        "cart": {
            "cost": { "totalAmount": { "currencyCode": "USD" } },
            "lines": lines,
            "deliveryGroups": []
        }
    })
}

/// Lines read by position (enough lines, query order) and by key (reordered keys, or too few
/// lines) read the same.
#[test]
fn lines_read_the_same_by_position_and_by_key() {
    for n in [1, 3, 4, 9] {
        for first_is_custom in [false, true] {
            let expected: Vec<_> = (0..n)
                .map(|i| {
                    let variant = if first_is_custom && i == 0 {
                        VariantInput::Missing
                    } else {
                        VariantInput::Text(format!("mw1|4.00|{i}||"))
                    };
                    (
                        format!("gid://shopify/CartLine/{i}"),
                        1 + i64::try_from(i % 3).unwrap(),
                        format!("{}.50", 10 + i),
                        variant,
                    )
                })
                .collect();
            for reversed in [false, true] {
                let request = read::<OffersInput>(offers_lines_input(n, reversed, first_is_custom))
                    .request(Target::CartLines);
                let lines: Vec<_> = request
                    .lines
                    .into_iter()
                    .map(|l| (l.id, l.quantity, l.unit_price, l.variant))
                    .collect();
                assert_eq!(lines, expected, "{n} lines, reversed {reversed}");
            }
        }
    }
}

/// The cart transform's lines, with a product variant's or a unit price's two keys in either
/// order, and the first line's merchandise empty or not.
#[test]
fn bundle_lines_read_the_same_by_position_and_by_key() {
    let input = |n: usize, (swapped, unit_swapped): (bool, bool), first_is_custom: bool| {
        let lines: Vec<serde_json::Value> = (0..n)
            .map(|i| {
                let variant = format!("gid://shopify/ProductVariant/{i}");
                let offer = json!({ "v": format!("mw1|4.00|{i}||") });
                let merchandise = if first_is_custom && i == 0 {
                    json!({})
                } else if swapped {
                    json!({ "o": offer, "i": variant })
                } else {
                    json!({ "i": variant, "o": offer })
                };
                let marker = if i % 2 == 0 {
                    json!(null)
                } else {
                    json!({ "v": "m" })
                };
                let unit = if unit_swapped {
                    json!({ "k": "EUR", "a": "3.00" })
                } else {
                    json!({ "a": "3.00", "k": "EUR" })
                };
                json!({
                    "i": format!("gid://shopify/CartLine/{i}"), "q": 2, "t": marker,
                    "c": { "u": unit }, "m": merchandise
                })
            })
            .collect();
        read::<BundlesInput>(json!({
            "cartTransform": { "bundles": null, "policy": null },
            "presentmentCurrencyRate": "1.0",
            "cart": { "lines": lines }
        }))
        .request()
    };
    for n in [3, 6] {
        for first_is_custom in [false, true] {
            for swapped in [(false, false), (true, false), (false, true)] {
                let request = input(n, swapped, first_is_custom);
                assert_eq!(request.currency_code, "EUR");
                for (i, line) in request.lines.iter().enumerate() {
                    let custom = first_is_custom && i == 0;
                    let case = format!("{n} lines, swapped {swapped:?}, line {i}");
                    assert_eq!(line.id, format!("gid://shopify/CartLine/{i}"), "{case}");
                    assert_eq!(
                        (line.quantity, line.unit_price.as_str()),
                        (2, "3.00"),
                        "{case}"
                    );
                    assert_eq!(
                        line.variant_id,
                        (!custom).then(|| format!("gid://shopify/ProductVariant/{i}")),
                        "{case}"
                    );
                    assert_eq!(
                        line.variant,
                        if custom {
                            VariantInput::Missing
                        } else {
                            VariantInput::Text(format!("mw1|4.00|{i}||"))
                        },
                        "{case}"
                    );
                    assert_eq!(
                        line.marker.as_deref(),
                        (i % 2 == 1).then_some("m"),
                        "{case}"
                    );
                }
            }
        }
    }
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
    // Nothing about an anonymous shopper is stable across carts: no key, never held out.
    assert_eq!(request.holdout_key, "");
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
