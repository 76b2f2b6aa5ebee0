//! discountAutomaticAppCreate / discountAutomaticAppUpdate / cartTransformCreate, and the
//! `cartTransforms` and `shopifyFunctions` queries, against the running server.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::{Client, SET, input, start};
use serde_json::{Value, json};

const CREATE: &str = "mutation Create($input: DiscountAutomaticAppInput!) {
  discountAutomaticAppCreate(automaticAppDiscount: $input) {
    automaticAppDiscount { discountId title discountClasses status startsAt
      combinesWith { productDiscounts orderDiscounts shippingDiscounts } }
    userErrors { field message code }
  }
}";

const UPDATE: &str = "mutation Update($id: ID!, $input: DiscountAutomaticAppInput!) {
  discountAutomaticAppUpdate(id: $id, automaticAppDiscount: $input) {
    automaticAppDiscount { discountId title discountClasses
      combinesWith { productDiscounts orderDiscounts shippingDiscounts } }
    userErrors { field message code }
  }
}";

const CART_TRANSFORM: &str = "mutation Create($handle: String, $metafields: [MetafieldInput!]) {
  cartTransformCreate(functionHandle: $handle, metafields: $metafields) {
    cartTransform { id functionId blockOnFailure }
    userErrors { field message code }
  }
}";

fn json_metafield(key: &str, value: &str) -> Value {
    json!({"namespace": "$app", "key": key, "type": "json", "value": value})
}

fn discount_input(handle: &str) -> Value {
    json!({
        "functionHandle": handle,
        "title": "offers",
        "startsAt": "2026-01-01T00:00:00Z",
        "discountClasses": ["PRODUCT", "ORDER"],
        "metafields": [json_metafield("policy", "{\"version\":1}")],
    })
}

#[test]
fn a_discount_keeps_its_metafields_readable_through_node() {
    let store = start();
    let client = Client::new(&store);
    let answer = client.gql(CREATE, json!({"input": discount_input("offers")}));
    let payload = &answer["data"]["discountAutomaticAppCreate"];
    assert_eq!(payload["userErrors"], json!([]), "{answer}");
    let discount = &payload["automaticAppDiscount"];
    let id = discount["discountId"].as_str().unwrap();
    assert!(
        id.starts_with("gid://shopify/DiscountAutomaticNode/"),
        "{id}"
    );
    assert_eq!(discount["discountClasses"], json!(["PRODUCT", "ORDER"]));
    assert_eq!(discount["status"], "ACTIVE");
    assert_eq!(
        discount["combinesWith"],
        json!({"productDiscounts": false, "orderDiscounts": false, "shippingDiscounts": false})
    );

    let read = "query Read($id: ID!) { node(id: $id) { __typename id
      ... on HasMetafields { metafield(namespace: \"$app\", key: \"policy\") { value type } }
      ... on DiscountAutomaticNode { automaticDiscount { ... on DiscountAutomaticApp { title } } }
    } }";
    let answer = client.gql(read, json!({"id": id}));
    assert_eq!(
        answer["data"]["node"],
        json!({
            "__typename": "DiscountAutomaticNode",
            "id": id,
            "metafield": {"value": "{\"version\":1}", "type": "json"},
            "automaticDiscount": {"title": "offers"},
        }),
        "{answer}"
    );
    let stored = store.metafields();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (stored[0].owner_id.as_str(), stored[0].namespace.clone()),
        (id, store.app_namespace())
    );

    // An update changes only what it names; `combinesWith` booleans it leaves out are false.
    let answer = client.gql(
        UPDATE,
        json!({"id": id, "input": {
            "discountClasses": ["SHIPPING"],
            "combinesWith": {"orderDiscounts": true},
            "metafields": [json_metafield("policy", "{\"version\":2}")],
        }}),
    );
    let payload = &answer["data"]["discountAutomaticAppUpdate"];
    assert_eq!(payload["userErrors"], json!([]), "{answer}");
    assert_eq!(payload["automaticAppDiscount"]["title"], "offers");
    assert_eq!(
        payload["automaticAppDiscount"]["discountClasses"],
        json!(["SHIPPING"])
    );
    assert_eq!(
        payload["automaticAppDiscount"]["combinesWith"]["orderDiscounts"],
        true
    );
    let stored = store.metafields();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].value, "{\"version\":2}");
    // ... and metafieldsSet reaches the same metafield through the discount's id.
    let answer = client.gql(
        SET,
        json!({"metafields": [input(id, "policy", "json", "{\"version\":3}")]}),
    );
    assert_eq!(answer["data"]["metafieldsSet"]["userErrors"], json!([]));
    assert_eq!(store.metafields()[0].value, "{\"version\":3}");
}

#[test]
fn an_unknown_function_handle_is_a_user_error_and_creates_nothing() {
    let store = start();
    let client = Client::new(&store);
    let answer = client.gql(CREATE, json!({"input": discount_input("nope")}));
    assert_eq!(
        answer["data"]["discountAutomaticAppCreate"],
        json!({
            "automaticAppDiscount": null,
            "userErrors": [{
                "field": ["automaticAppDiscount", "functionHandle"],
                "message": "Function with handle \"nope\" not found.",
                "code": "INVALID",
            }],
        })
    );
    // The cart transform's handle does not run a discount either.
    let answer = client.gql(CREATE, json!({"input": discount_input("bundles")}));
    let errors = &answer["data"]["discountAutomaticAppCreate"]["userErrors"];
    assert_eq!(
        errors[0]["field"],
        json!(["automaticAppDiscount", "functionHandle"])
    );
    let answer = client.gql(CART_TRANSFORM, json!({"handle": "nope"}));
    assert_eq!(
        answer["data"]["cartTransformCreate"],
        json!({
            "cartTransform": null,
            "userErrors": [{
                "field": ["functionHandle"],
                "message": "Function with handle \"nope\" not found.",
                "code": "FUNCTION_NOT_FOUND",
            }],
        })
    );
    let answer = client.gql(CART_TRANSFORM, json!({"handle": "offers"}));
    assert_eq!(
        answer["data"]["cartTransformCreate"]["userErrors"][0]["code"],
        "FUNCTION_DOES_NOT_IMPLEMENT"
    );
    let answer = client.gql(CART_TRANSFORM, json!({}));
    assert_eq!(
        answer["data"]["cartTransformCreate"]["userErrors"][0]["code"],
        "MISSING_FUNCTION_IDENTIFIER"
    );
    assert!(store.discounts().is_empty() && store.cart_transforms().is_empty());
    assert!(store.metafields().is_empty());
}

#[test]
fn required_arguments_and_input_fields_are_checked() {
    let store = start();
    let client = Client::new(&store);
    let answer = client.gql(
        "mutation { discountAutomaticAppCreate { userErrors { message } } }",
        json!({}),
    );
    assert_eq!(
        answer["errors"][0]["extensions"]["code"], "missingRequiredArguments",
        "{answer}"
    );
    let answer = client.gql(
        "mutation($input: DiscountAutomaticAppInput!) { discountAutomaticAppUpdate(automaticAppDiscount: $input) { userErrors { message } } }",
        json!({"input": {"title": "x"}}),
    );
    assert_eq!(
        answer["errors"][0]["message"],
        "Field 'discountAutomaticAppUpdate' is missing required arguments: id"
    );
    let mut bad = discount_input("offers");
    bad["discountClass"] = json!("PRODUCT");
    let answer = client.gql(CREATE, json!({"input": bad}));
    assert_eq!(
        answer["errors"][0]["extensions"]["code"], "argumentLiteralsIncompatible",
        "{answer}"
    );
    let mut untitled = discount_input("offers");
    untitled.as_object_mut().unwrap().remove("title");
    let answer = client.gql(CREATE, json!({"input": untitled}));
    assert_eq!(
        answer["data"]["discountAutomaticAppCreate"]["userErrors"],
        json!([{"field": ["automaticAppDiscount", "title"], "message": "Title can't be blank", "code": "BLANK"}])
    );
    // A metafield the type check refuses: the discount is not created either (all or nothing).
    let mut bad_value = discount_input("offers");
    bad_value["metafields"] = json!([json_metafield("policy", "{not json")]);
    let answer = client.gql(CREATE, json!({"input": bad_value}));
    let errors = &answer["data"]["discountAutomaticAppCreate"]["userErrors"];
    assert_eq!(
        errors[0]["field"],
        json!(["automaticAppDiscount", "metafields", "0", "value"]),
        "{answer}"
    );
    assert!(store.discounts().is_empty() && store.metafields().is_empty());
    assert_eq!(store.stats().graphql_requests, 5);
}

#[test]
fn one_cart_transform_per_function_found_through_cart_transforms() {
    let store = start();
    let client = Client::new(&store);
    let metafields = json!([json_metafield("bundle_policy", "{}")]);
    let answer = client.gql(
        CART_TRANSFORM,
        json!({"handle": "bundles", "metafields": metafields}),
    );
    let payload = &answer["data"]["cartTransformCreate"];
    assert_eq!(payload["userErrors"], json!([]), "{answer}");
    let id = payload["cartTransform"]["id"].as_str().unwrap().to_string();
    assert_eq!(payload["cartTransform"]["blockOnFailure"], false);

    let answer = client.gql(CART_TRANSFORM, json!({"handle": "bundles"}));
    assert_eq!(
        answer["data"]["cartTransformCreate"],
        json!({
            "cartTransform": null,
            "userErrors": [{
                "field": ["functionHandle"],
                "message": "A cart transform already exists for this function.",
                "code": "FUNCTION_ALREADY_REGISTERED",
            }],
        })
    );
    assert_eq!(store.cart_transforms().len(), 1);

    let list = "query { shopifyFunctions(first: 10) { nodes { id handle apiType } }
      cartTransforms(first: 10) { nodes { id functionId
        metafields(first: 5, namespace: \"$app\") { nodes { key value } } } } }";
    let answer = client.gql(list, json!({}));
    let functions = answer["data"]["shopifyFunctions"]["nodes"]
        .as_array()
        .unwrap();
    let handles: Vec<&str> = functions
        .iter()
        .map(|f| f["handle"].as_str().unwrap())
        .collect();
    assert_eq!(handles, ["offers", "bundles"]);
    let bundles_id = functions[1]["id"].clone();
    assert_eq!(
        answer["data"]["cartTransforms"]["nodes"],
        json!([{
            "id": id,
            "functionId": bundles_id,
            "metafields": {"nodes": [{"key": "bundle_policy", "value": "{}"}]},
        }]),
        "{answer}"
    );
    let answer = client.gql(
        SET,
        json!({"metafields": [input(&id, "bundle_policy", "json", "{\"v\":2}")]}),
    );
    assert_eq!(answer["data"]["metafieldsSet"]["userErrors"], json!([]));
    let read = "query($id: ID!) { node(id: $id) { ... on CartTransform { metafield(key: \"bundle_policy\") { value } } } }";
    let answer = client.gql(read, json!({"id": id}));
    assert_eq!(
        answer["data"]["node"]["metafield"]["value"], "{\"v\":2}",
        "{answer}"
    );
}
