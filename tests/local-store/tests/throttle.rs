//! Calculated query cost, the leaky bucket and THROTTLED answers.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::{CUSTOMER_1, Client, SET, input, start, wait_for};
use serde_json::{Value, json};

fn cost(answer: &Value) -> &Value {
    &answer["extensions"]["cost"]
}

#[test]
fn every_answer_carries_the_standard_plan_throttle_status() {
    let store = start();
    let client = Client::new(&store);
    let answer = client.gql(
        "{ customer(id: \"gid://shopify/Customer/7100000000\") { id } }",
        json!({}),
    );
    let status = &cost(&answer)["throttleStatus"];
    assert_eq!(status["maximumAvailable"], 2000.0);
    assert_eq!(status["restoreRate"], 100.0);
    assert_eq!(cost(&answer)["requestedQueryCost"], 1);
    assert_eq!(cost(&answer)["actualQueryCost"], 1);
}

/// (query, requested cost, actual cost on the fixture store).
fn cost_cases() -> Vec<(&'static str, u64, u64)> {
    vec![
        // An object costs 1, scalars 0.
        (
            "{ customer(id: \"gid://shopify/Customer/7100000000\") { id numberOfOrders } }",
            1,
            1,
        ),
        (
            "{ customer(id: \"gid://shopify/Customer/7100000000\") { id metafield(key: \"profile\") { value } } }",
            2,
            2,
        ),
        // A connection costs 2 plus first x (node + its contents); actual counts what came back:
        // 3 products of 1, 3 and 3 variants.
        (
            "{ products(first: 10) { edges { node { id variants(first: 5) { edges { node { id } } } } } } }",
            2 + 10 * (1 + 2 + 5),
            2 + 3 + (2 + 1) + (2 + 3) + (2 + 3),
        ),
        (
            "{ customers(first: 2) { nodes { id } pageInfo { hasNextPage endCursor } } }",
            4,
            4,
        ),
        // A mutation costs 10 whatever it selects.
        (
            "mutation { stagedUploadsCreate(input: [{resource: BULK_MUTATION_VARIABLES, filename: \"a\", mimeType: \"text/jsonl\", httpMethod: POST}]) { stagedTargets { url parameters { name value } } userErrors { message } } }",
            10,
            10,
        ),
    ]
}

#[test]
fn requested_and_actual_cost_follow_shopifys_rules() {
    let store = start();
    let client = Client::new(&store);
    for (query, requested, actual) in cost_cases() {
        let answer = client.gql(query, json!({}));
        assert!(answer.get("errors").is_none(), "{query}: {answer}");
        assert_eq!(cost(&answer)["requestedQueryCost"], requested, "{query}");
        assert_eq!(cost(&answer)["actualQueryCost"], actual, "{query}");
    }
}

#[test]
fn a_query_over_1000_points_is_refused_with_max_cost_exceeded() {
    let store = start();
    let client = Client::new(&store);
    let answer = client.gql(
        "{ products(first: 250) { edges { node { id variants(first: 250) { edges { node { id } } } } } } }",
        json!({}),
    );
    assert!(answer.get("data").is_none());
    assert_eq!(
        answer["errors"][0]["extensions"]["code"],
        "MAX_COST_EXCEEDED"
    );
    assert_eq!(cost(&answer)["actualQueryCost"], Value::Null);
    // Refused queries cost nothing.
    assert_eq!(cost(&answer)["throttleStatus"]["currentlyAvailable"], 2000);
    assert_eq!(store.stats().max_cost_exceeded, 1);
}

#[test]
fn an_empty_bucket_throttles_and_refills_at_the_restore_rate() {
    let store = start();
    let client = Client::new(&store);
    // A small bucket (4 writes) that refills slowly enough to be seen empty.
    store.set_restore_rate(5.0, Some(40.0));
    let write = |value: &str| {
        client.gql(
            SET,
            json!({"metafields": [input(CUSTOMER_1, "profile", "single_line_text_field", value)]}),
        )
    };
    let mut available = Vec::new();
    for i in 0..4 {
        let answer = write(&format!("v{i}"));
        assert_eq!(
            answer["data"]["metafieldsSet"]["userErrors"],
            json!([]),
            "{answer}"
        );
        assert_eq!(cost(&answer)["requestedQueryCost"], 10);
        available.push(
            cost(&answer)["throttleStatus"]["currentlyAvailable"]
                .as_u64()
                .unwrap(),
        );
    }
    // Each write takes 10; the restore in between (5/s for a few milliseconds) rounds away.
    assert!(available.windows(2).all(|w| w[1] < w[0]), "{available:?}");
    assert!(available[3] < 10, "{available:?}");

    let throttled = write("v4");
    assert_eq!(throttled["errors"][0]["message"], "Throttled");
    assert_eq!(throttled["errors"][0]["extensions"]["code"], "THROTTLED");
    assert!(throttled.get("data").is_none());
    assert_eq!(cost(&throttled)["requestedQueryCost"], 10);
    assert_eq!(cost(&throttled)["actualQueryCost"], Value::Null);
    assert_eq!(cost(&throttled)["throttleStatus"]["restoreRate"], 5.0);
    assert_eq!(cost(&throttled)["throttleStatus"]["maximumAvailable"], 40.0);
    assert_eq!(
        store.metafields()[0].value,
        "v3",
        "a throttled write is not applied"
    );

    // The bucket refills: wait (bounded) until 10 points are back, then the write goes through.
    wait_for("10 points restored", || {
        let answer = client.gql("{ __typename }", json!({}));
        cost(&answer)["throttleStatus"]["currentlyAvailable"]
            .as_u64()
            .unwrap()
            >= 10
    });
    let answer = write("v5");
    assert_eq!(
        answer["data"]["metafieldsSet"]["userErrors"],
        json!([]),
        "{answer}"
    );
    let stats = store.stats();
    assert_eq!((stats.throttled, stats.writes_applied), (1, 5));
}
