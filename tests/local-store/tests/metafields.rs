//! metafieldsSet / metafieldsDelete / reading back, against the running server.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::{CUSTOMER_1, CUSTOMER_2, Client, SET, VARIANT_1, input, start};
use serde_json::{Value, json};

#[test]
fn requests_without_the_access_token_are_refused_with_401() {
    let store = start();
    let client = Client::new(&store);
    for token in [None, Some("wrong")] {
        let mut request = client.agent.post(&client.url);
        if let Some(token) = token {
            request = request.header("X-Shopify-Access-Token", token);
        }
        let mut response = request
            .send_json(json!({"query": "{ __typename }"}))
            .unwrap();
        assert_eq!(response.status().as_u16(), 401);
        let body = response.body_mut().read_to_string().unwrap();
        assert!(body.contains("Invalid API key or access token"), "{body}");
    }
    assert_eq!(store.stats().graphql_requests, 0);
}

#[test]
fn more_than_25_metafields_is_a_top_level_error_and_writes_nothing() {
    let store = start();
    let client = Client::new(&store);
    let inputs: Vec<Value> = (0..26)
        .map(|i| {
            input(
                CUSTOMER_1,
                &format!("k{i:02}"),
                "single_line_text_field",
                "x",
            )
        })
        .collect();
    let answer = client.gql(SET, json!({"metafields": inputs}));
    assert!(answer.get("data").is_none(), "{answer}");
    let error = &answer["errors"][0];
    assert_eq!(error["extensions"]["code"], "MAX_INPUT_SIZE_EXCEEDED");
    assert_eq!(
        error["message"],
        "The input array size of 26 is greater than the maximum allowed of 25."
    );
    assert!(store.metafields().is_empty());
    let stats = store.stats();
    assert_eq!(
        (
            stats.write_calls,
            stats.rejected_calls,
            stats.writes_applied
        ),
        (1, 1, 0)
    );

    let answer = client.gql(SET, json!({"metafields": inputs[..25]}));
    assert_eq!(answer["data"]["metafieldsSet"]["userErrors"], json!([]));
    assert_eq!(
        answer["data"]["metafieldsSet"]["metafields"]
            .as_array()
            .unwrap()
            .len(),
        25
    );
    assert_eq!(store.metafields().len(), 25);
}

/// One invalid input per case: (what, input, expected field, expected code).
fn invalid_cases() -> Vec<(&'static str, Value, &'static str, &'static str)> {
    let big_json = format!("\"{}\"", "a".repeat(local_store::JSON_VALUE_LIMIT - 1));
    let big_text = "a".repeat(local_store::DEFAULT_VALUE_LIMIT + 1);
    vec![
        (
            "invalid json",
            input(CUSTOMER_1, "profile", "json", "{not json"),
            "value",
            "INVALID_VALUE",
        ),
        (
            "newline in single line text",
            input(CUSTOMER_1, "profile", "single_line_text_field", "a\nb"),
            "value",
            "INVALID_VALUE",
        ),
        (
            "json over 128 KB",
            input(CUSTOMER_1, "profile", "json", &big_json),
            "value",
            "TOO_LONG",
        ),
        (
            "text over 64 KB",
            input(CUSTOMER_1, "profile", "single_line_text_field", &big_text),
            "value",
            "TOO_LONG",
        ),
        (
            "integer that is not",
            input(CUSTOMER_1, "profile", "number_integer", "1.5"),
            "value",
            "INVALID_VALUE",
        ),
        (
            "no type and no metafield",
            json!({"ownerId": CUSTOMER_1, "namespace": "$app", "key": "profile", "value": "x"}),
            "type",
            "BLANK",
        ),
        (
            "unsupported type",
            input(
                CUSTOMER_1,
                "profile",
                "product_reference",
                "gid://shopify/Product/1",
            ),
            "type",
            "INVALID_TYPE",
        ),
        (
            "owner that does not exist",
            input(
                "gid://shopify/Customer/1",
                "profile",
                "single_line_text_field",
                "x",
            ),
            "ownerId",
            "INVALID",
        ),
        (
            "owner id that is not a gid",
            input("customer-1", "profile", "single_line_text_field", "x"),
            "ownerId",
            "INVALID",
        ),
        (
            "key too short",
            input(CUSTOMER_1, "p", "single_line_text_field", "x"),
            "key",
            "TOO_SHORT",
        ),
        (
            "key with a dot",
            input(CUSTOMER_1, "pro.file", "single_line_text_field", "x"),
            "key",
            "INVALID",
        ),
        (
            "namespace with a space",
            json!({"ownerId": CUSTOMER_1, "namespace": "my app", "key": "profile", "type": "single_line_text_field", "value": "x"}),
            "namespace",
            "INVALID",
        ),
    ]
}

#[test]
fn invalid_values_give_user_errors_and_the_batch_writes_nothing() {
    let store = start();
    let client = Client::new(&store);
    for (what, bad, field, code) in invalid_cases() {
        // The bad input sits second, after a valid one: atomicity means neither is written.
        let good = input(CUSTOMER_2, "profile", "single_line_text_field", "ok");
        let answer = client.gql(SET, json!({"metafields": [good, bad]}));
        let payload = &answer["data"]["metafieldsSet"];
        let errors = payload["userErrors"].as_array().unwrap();
        assert_eq!(errors.len(), 1, "{what}: {answer}");
        assert_eq!(errors[0]["code"], code, "{what}: {answer}");
        assert_eq!(
            errors[0]["field"],
            json!(["metafields", "1", field]),
            "{what}"
        );
        assert_eq!(errors[0]["elementIndex"], 1, "{what}");
        assert_eq!(payload["metafields"], json!([]), "{what}");
        assert!(
            store.metafields().is_empty(),
            "{what}: something was written"
        );
    }
    let stats = store.stats();
    assert_eq!(stats.rejected_calls, invalid_cases().len() as u64);
    assert_eq!(stats.writes_applied, 0);
}

#[test]
fn valid_values_of_each_validated_type_are_stored() {
    let store = start();
    let client = Client::new(&store);
    let inputs = json!([
        input(CUSTOMER_1, "a_json", "json", "{\"v\":1,\"s\":[1,2]}"),
        input(CUSTOMER_1, "a_text", "single_line_text_field", "1|seg|0.5"),
        input(CUSTOMER_1, "a_int", "number_integer", "-42"),
        input(CUSTOMER_1, "a_dec", "number_decimal", "12.50"),
        input(CUSTOMER_1, "a_bool", "boolean", "true"),
        input(
            CUSTOMER_1,
            "a_list",
            "list.single_line_text_field",
            "[\"a\",\"b\"]"
        ),
        input(VARIANT_1, "offer", "single_line_text_field", "v1"),
    ]);
    let answer = client.gql(SET, json!({"metafields": inputs}));
    assert_eq!(
        answer["data"]["metafieldsSet"]["userErrors"],
        json!([]),
        "{answer}"
    );
    let written = answer["data"]["metafieldsSet"]["metafields"]
        .as_array()
        .unwrap();
    assert_eq!(written.len(), 7);
    // `$app` is answered as the app's reserved namespace.
    assert_eq!(written[0]["namespace"], store.app_namespace());
    assert!(
        written[0]["id"]
            .as_str()
            .unwrap()
            .starts_with("gid://shopify/Metafield/")
    );
    assert_eq!(store.metafields().len(), 7);
}

const READ_CUSTOMER: &str = "query Read($id: ID!) {
  customer(id: $id) { id metafield(namespace: \"$app\", key: \"profile\") { value compareDigest type } }
}";

fn read_digest(client: &Client, owner: &str) -> Option<String> {
    let answer = client.gql(READ_CUSTOMER, json!({"id": owner}));
    answer["data"]["customer"]["metafield"]["compareDigest"]
        .as_str()
        .map(str::to_string)
}

fn set_with_digest(client: &Client, value: &str, digest: Option<Option<&str>>) -> Value {
    let mut one = input(CUSTOMER_1, "profile", "single_line_text_field", value);
    match digest {
        None => {}
        Some(None) => one["compareDigest"] = Value::Null,
        Some(Some(digest)) => one["compareDigest"] = json!(digest),
    }
    client.gql(SET, json!({"metafields": [one]}))["data"]["metafieldsSet"].clone()
}

#[test]
fn compare_digest_is_compare_and_set() {
    let store = start();
    let client = Client::new(&store);
    assert_eq!(read_digest(&client, CUSTOMER_1), None);

    // `null` means "must not exist yet": accepted once, refused after.
    let first = set_with_digest(&client, "v1", Some(None));
    assert_eq!(first["userErrors"], json!([]));
    let d1 = read_digest(&client, CUSTOMER_1).unwrap();
    assert_eq!(first["metafields"][0]["compareDigest"], d1.as_str());
    let again = set_with_digest(&client, "v1b", Some(None));
    assert_eq!(again["userErrors"][0]["code"], "STALE_OBJECT");

    // The current digest updates; the old one is stale afterwards.
    let second = set_with_digest(&client, "v2", Some(Some(&d1)));
    assert_eq!(second["userErrors"], json!([]));
    let d2 = read_digest(&client, CUSTOMER_1).unwrap();
    assert_ne!(d1, d2);
    let stale = set_with_digest(&client, "v3", Some(Some(&d1)));
    assert_eq!(stale["userErrors"][0]["code"], "STALE_OBJECT");
    assert_eq!(
        stale["userErrors"][0]["field"],
        json!(["metafields", "0", "compareDigest"])
    );

    let garbage = set_with_digest(&client, "v3", Some(Some("not-a-digest")));
    assert_eq!(garbage["userErrors"][0]["code"], "INVALID_COMPARE_DIGEST");

    // Without compareDigest the write is unconditional.
    let blind = set_with_digest(&client, "v4", None);
    assert_eq!(blind["userErrors"], json!([]));
    let answer = client.gql(READ_CUSTOMER, json!({"id": CUSTOMER_1}));
    assert_eq!(answer["data"]["customer"]["metafield"]["value"], "v4");
    assert_eq!(store.stats().writes_applied, 3);
}

#[test]
fn metafields_read_back_through_nodes_fragments_and_aliases() {
    let store = start();
    let client = Client::new(&store);
    client.gql(
        SET,
        json!({"metafields": [
            input(CUSTOMER_1, "profile", "single_line_text_field", "p1"),
            input(VARIANT_1, "offer", "single_line_text_field", "o1"),
        ]}),
    );
    let answer = client.gql(
        "query($ids: [ID!]!) {
          nodes(ids: $ids) {
            __typename
            ... on Customer { id p: metafield(key: \"profile\") { value } }
            ...V
          }
        }
        fragment V on ProductVariant { id price o: metafield(namespace: \"$app\", key: \"offer\") { value jsonValue } }",
        json!({"ids": [CUSTOMER_1, VARIANT_1, "gid://shopify/Customer/1"]}),
    );
    let nodes = &answer["data"]["nodes"];
    assert_eq!(
        nodes[0],
        json!({"__typename": "Customer", "id": CUSTOMER_1, "p": {"value": "p1"}})
    );
    assert_eq!(
        nodes[1],
        json!({"__typename": "ProductVariant", "id": VARIANT_1, "price": "42.99", "o": {"value": "o1", "jsonValue": "o1"}})
    );
    assert_eq!(nodes[2], Value::Null);
}

#[test]
fn metafields_delete_removes_what_exists_and_answers_null_for_the_rest() {
    let store = start();
    let client = Client::new(&store);
    client.gql(
        SET,
        json!({"metafields": [input(CUSTOMER_1, "profile", "single_line_text_field", "p1")]}),
    );
    let answer = client.gql(
        "mutation($m: [MetafieldIdentifierInput!]!) { metafieldsDelete(metafields: $m) { deletedMetafields { ownerId namespace key } userErrors { field message } } }",
        json!({"m": [
            {"ownerId": CUSTOMER_1, "namespace": "$app", "key": "profile"},
            {"ownerId": CUSTOMER_2, "namespace": "$app", "key": "profile"},
        ]}),
    );
    let deleted = &answer["data"]["metafieldsDelete"]["deletedMetafields"];
    assert_eq!(deleted[0]["ownerId"], CUSTOMER_1);
    assert_eq!(deleted[0]["namespace"], store.app_namespace());
    assert_eq!(deleted[1], Value::Null);
    assert!(store.metafields().is_empty());
    assert_eq!(store.stats().deletes_applied, 1);
}

#[test]
fn an_unknown_field_in_the_payload_is_an_error_and_the_write_does_not_happen() {
    let store = start();
    let client = Client::new(&store);
    let answer = client.gql(
        "mutation($m: [MetafieldsSetInput!]!) { metafieldsSet(metafields: $m) { metafields { id nope } userErrors { message } } }",
        json!({"m": [input(CUSTOMER_1, "profile", "single_line_text_field", "p1")]}),
    );
    assert!(answer.get("data").is_none(), "{answer}");
    assert_eq!(answer["errors"][0]["extensions"]["code"], "undefinedField");
    assert_eq!(
        answer["errors"][0]["message"],
        "Field 'nope' doesn't exist on type 'Metafield'"
    );
    assert!(store.metafields().is_empty());

    let answer = client.gql(
        "{ customer(id: \"gid://shopify/Customer/7100000000\") { email } }",
        json!({}),
    );
    assert_eq!(
        answer["errors"][0]["message"],
        "Field 'email' doesn't exist on type 'Customer'"
    );
}
