//! Bulk queries, staged uploads and bulk mutations.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::{CUSTOMER_1, CUSTOMER_2, Client, VARIANT_1, fixture_dir, input, start, wait_for};
use local_store::BulkHold;
use serde_json::{Value, json};

const RUN_QUERY: &str = "mutation($q: String!, $g: Boolean!) {
  bulkOperationRunQuery(query: $q, groupObjects: $g) { bulkOperation { id status } userErrors { field message code } }
}";

const POLL: &str = "query($id: ID!) {
  bulkOperation(id: $id) { id status errorCode objectCount rootObjectCount fileSize url partialDataUrl type }
}";

/// The queries the pipeline's ingest documents (model-pipeline/src/ingest/mod.rs).
const CUSTOMERS: &str = "{ customers { edges { node { id createdAt numberOfOrders amountSpent { amount currencyCode } tags dataSaleOptOut } } } }";
const PRODUCTS: &str = "{ products { edges { node { id variants { edges { node { id price inventoryItem { unitCost { amount currencyCode } } } } } } } } }";
const ORDERS: &str = "{ orders(sortKey: PROCESSED_AT, query: \"status:any\") { edges { node { id createdAt processedAt cancelledAt test currencyCode customer { id } lineItems { edges { node { id quantity variant { id } product { id } originalUnitPriceSet { shopMoney { amount currencyCode } } discountAllocations { allocatedAmountSet { shopMoney { amount currencyCode } } } } } } } } } }";

fn run_bulk_query(client: &Client, query: &str, group: bool) -> Value {
    let answer = client.gql(RUN_QUERY, json!({"q": query, "g": group}));
    let payload = &answer["data"]["bulkOperationRunQuery"];
    assert_eq!(payload["userErrors"], json!([]), "{answer}");
    payload["bulkOperation"].clone()
}

fn wait_done(client: &Client, id: &str) -> Value {
    let mut last = Value::Null;
    wait_for("the bulk operation to finish", || {
        last = client.gql(POLL, json!({"id": id}))["data"]["bulkOperation"].clone();
        matches!(
            last["status"].as_str(),
            Some("COMPLETED" | "FAILED" | "CANCELED")
        )
    });
    last
}

fn download(client: &Client, op: &Value) -> String {
    let (status, body) = client.get(op["url"].as_str().unwrap());
    assert_eq!(status, 200);
    body
}

#[test]
fn bulk_exports_of_the_pipelines_queries_reproduce_the_seed_files() {
    let store = start();
    let client = Client::new(&store);
    for (query, file, group) in [
        (CUSTOMERS, "customers.jsonl", false),
        (ORDERS, "orders.jsonl", true),
    ] {
        let op = run_bulk_query(&client, query, group);
        assert_eq!(op["status"], "CREATED");
        let done = wait_done(&client, op["id"].as_str().unwrap());
        assert_eq!(done["status"], "COMPLETED", "{done}");
        let body = download(&client, &done);
        let seed = std::fs::read_to_string(fixture_dir().join(file)).unwrap();
        // Byte for byte, including Shopify's escaped slashes and key order.
        assert_eq!(body, seed, "{file}");
        assert_eq!(done["objectCount"], seed.lines().count().to_string());
        assert_eq!(done["fileSize"], seed.len().to_string());
    }
}

#[test]
fn children_carry_parent_id_and_follow_their_parent_only_when_grouped() {
    let store = start();
    let client = Client::new(&store);
    let seed = std::fs::read_to_string(fixture_dir().join("products.jsonl")).unwrap();
    let mut seed_lines: Vec<&str> = seed.lines().collect();
    seed_lines.sort_unstable();
    for group in [true, false] {
        let op = run_bulk_query(&client, PRODUCTS, group);
        let done = wait_done(&client, op["id"].as_str().unwrap());
        assert_eq!(done["rootObjectCount"], "3");
        assert_eq!(done["objectCount"], "10");
        let body = download(&client, &done);
        let mut lines: Vec<&str> = body.lines().collect();
        let parsed: Vec<Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let mut current_parent = None;
        let mut seen_child = false;
        for line in &parsed {
            match line.get("__parentId") {
                None => {
                    assert!(
                        !seen_child || group,
                        "ungrouped: every parent comes before the children"
                    );
                    current_parent = line["id"].as_str();
                }
                Some(parent) => {
                    seen_child = true;
                    if group {
                        assert_eq!(
                            parent.as_str(),
                            current_parent,
                            "grouped: a child follows its parent"
                        );
                    }
                    assert!(
                        line["id"]
                            .as_str()
                            .unwrap()
                            .starts_with("gid://shopify/ProductVariant/")
                    );
                }
            }
        }
        lines.sort_unstable();
        assert_eq!(lines, seed_lines, "same lines, group={group}");
    }
}

#[test]
fn bulk_query_limits_and_errors_are_user_errors() {
    let store = start();
    let client = Client::new(&store);
    let cases = [
        (
            "{ customer(id: \"gid://shopify/Customer/7100000000\") { id } }",
            "connection",
        ),
        (
            "{ customers { edges { node { id email } } } }",
            "doesn't exist on type 'Customer'",
        ),
        (
            "{ orders(query: \"financial_status:paid\") { edges { node { id } } } }",
            "status:any",
        ),
        (
            "{ products { edges { node { id variants { edges { node { id metafields { edges { node { id } } } } } } } } } }",
            "nesting depth",
        ),
        ("{ customers { edges { node { id ", "Invalid bulk query"),
    ];
    for (query, expected) in cases {
        let answer = client.gql(RUN_QUERY, json!({"q": query, "g": false}));
        let errors = &answer["data"]["bulkOperationRunQuery"]["userErrors"];
        assert_eq!(errors[0]["code"], "INVALID", "{query}: {answer}");
        assert!(
            errors[0]["message"].as_str().unwrap().contains(expected),
            "{query}: {answer}"
        );
        assert_eq!(
            answer["data"]["bulkOperationRunQuery"]["bulkOperation"],
            Value::Null
        );
    }
    assert_eq!(store.stats().bulk_operations, 0);
}

#[test]
fn at_most_five_bulk_operations_run_at_once() {
    let store = start();
    let client = Client::new(&store);
    store.set_bulk_hold(BulkHold::Created);
    for _ in 0..5 {
        run_bulk_query(&client, CUSTOMERS, false);
    }
    let answer = client.gql(RUN_QUERY, json!({"q": CUSTOMERS, "g": false}));
    let errors = &answer["data"]["bulkOperationRunQuery"]["userErrors"];
    assert_eq!(errors[0]["code"], "LIMIT_REACHED", "{answer}");
    store.set_bulk_hold(BulkHold::None);
    let list = "{ bulkOperations(first: 10, query: \"status:completed\") { nodes { id status } } }";
    wait_for("five completed operations", || {
        client.gql(list, json!({}))["data"]["bulkOperations"]["nodes"]
            .as_array()
            .unwrap()
            .len()
            == 5
    });
    run_bulk_query(&client, CUSTOMERS, false);
}

const STAGE: &str = "mutation { stagedUploadsCreate(input: [{resource: BULK_MUTATION_VARIABLES, filename: \"vars.jsonl\", mimeType: \"text/jsonl\", httpMethod: POST}]) {
  stagedTargets { url resourceUrl parameters { name value } } userErrors { field message } } }";

const RUN_MUTATION: &str = "mutation($m: String!, $p: String!) {
  bulkOperationRunMutation(mutation: $m, stagedUploadPath: $p) { bulkOperation { id status type } userErrors { field message code } }
}";

const SET_FOR_BULK: &str = "mutation call($metafields: [MetafieldsSetInput!]!) { metafieldsSet(metafields: $metafields) { metafields { key value } userErrors { field message code } } }";

/// Uploads `jsonl` the way Shopify's staged upload targets take it: a multipart form with every
/// parameter first and the file last. Returns the staged upload path (the `key` parameter).
fn stage(client: &Client, jsonl: &str) -> String {
    let answer = client.gql(STAGE, json!({}));
    let target = &answer["data"]["stagedUploadsCreate"]["stagedTargets"][0];
    assert_eq!(target["resourceUrl"], Value::Null);
    let boundary = "local-store-test-boundary";
    let mut body = String::new();
    let mut key = String::new();
    for parameter in target["parameters"].as_array().unwrap() {
        let (name, value) = (
            parameter["name"].as_str().unwrap(),
            parameter["value"].as_str().unwrap(),
        );
        if name == "key" {
            key = value.to_string();
        }
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"vars.jsonl\"\r\nContent-Type: text/jsonl\r\n\r\n{jsonl}\r\n--{boundary}--\r\n"
    ));
    let mut response = client
        .agent
        .post(target["url"].as_str().unwrap())
        .header(
            "Content-Type",
            &format!("multipart/form-data; boundary={boundary}"),
        )
        .send(body.as_bytes())
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let xml = response.body_mut().read_to_string().unwrap();
    assert!(xml.contains(&format!("<Key>{key}</Key>")), "{xml}");
    key
}

#[test]
fn a_staged_upload_feeds_a_bulk_mutation_through_its_whole_lifecycle() {
    let store = start();
    let client = Client::new(&store);
    let lines = [
        json!({"metafields": [input(CUSTOMER_1, "profile", "single_line_text_field", "p1"), input(VARIANT_1, "offer", "single_line_text_field", "o1")]}),
        json!({"metafields": [input(CUSTOMER_2, "profile", "json", "{not json")]}),
        json!({"metafields": [input(CUSTOMER_2, "profile", "single_line_text_field", "p2")]}),
    ];
    let jsonl: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let path = stage(&client, &jsonl);
    assert_eq!(store.stats().staged_uploads, 1);

    store.set_bulk_hold(BulkHold::Created);
    let answer = client.gql(RUN_MUTATION, json!({"m": SET_FOR_BULK, "p": path}));
    let op = &answer["data"]["bulkOperationRunMutation"]["bulkOperation"];
    assert_eq!(op["status"], "CREATED", "{answer}");
    assert_eq!(op["type"], "MUTATION");
    let id = op["id"].as_str().unwrap().to_string();
    let status = |client: &Client| {
        client.gql(POLL, json!({"id": id}))["data"]["bulkOperation"]["status"].clone()
    };
    assert_eq!(status(&client), "CREATED");
    store.set_bulk_hold(BulkHold::Running);
    wait_for("RUNNING", || status(&client) == "RUNNING");
    assert!(store.metafields().is_empty(), "held before the first line");
    let current = client.gql(
        "{ currentBulkOperation(type: MUTATION) { id status } }",
        json!({}),
    );
    assert_eq!(current["data"]["currentBulkOperation"]["id"], id.as_str());
    store.set_bulk_hold(BulkHold::None);
    let done = wait_done(&client, &id);
    assert_eq!(done["status"], "COMPLETED");
    assert_eq!(done["objectCount"], "3");

    let body = download(&client, &done);
    let results: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), 3);
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result["__lineNumber"], i);
    }
    assert_eq!(results[0]["data"]["metafieldsSet"]["userErrors"], json!([]));
    assert_eq!(
        results[1]["data"]["metafieldsSet"]["userErrors"][0]["code"],
        "INVALID_VALUE"
    );
    assert_eq!(
        results[2]["data"]["metafieldsSet"]["metafields"][0]["value"],
        "p2"
    );
    let values: Vec<String> = store.metafields().iter().map(|m| m.value.clone()).collect();
    assert_eq!(values, ["p1", "p2", "o1"]);
    let stats = store.stats();
    assert_eq!(
        (
            stats.write_calls,
            stats.writes_applied,
            stats.rejected_calls
        ),
        (3, 3, 1)
    );
}

#[test]
fn a_bulk_mutation_without_its_file_or_with_another_mutation_is_refused() {
    let store = start();
    let client = Client::new(&store);
    let answer = client.gql(
        RUN_MUTATION,
        json!({"m": SET_FOR_BULK, "p": "tmp/1/bulk/none/vars.jsonl"}),
    );
    assert_eq!(
        answer["data"]["bulkOperationRunMutation"]["userErrors"][0]["code"],
        "NO_SUCH_FILE"
    );
    let path = stage(&client, "{\"metafields\": []}\n");
    let answer = client.gql(RUN_MUTATION, json!({"m": "mutation { productDelete(input: {id: \"x\"}) { deletedProductId } }", "p": path}));
    assert_eq!(
        answer["data"]["bulkOperationRunMutation"]["userErrors"][0]["code"],
        "INVALID_MUTATION"
    );
    let bad_path = stage(&client, "{\"metafields\": []}\nnot json\n");
    let answer = client.gql(RUN_MUTATION, json!({"m": SET_FOR_BULK, "p": bad_path}));
    assert_eq!(
        answer["data"]["bulkOperationRunMutation"]["userErrors"][0]["code"],
        "INVALID_STAGED_UPLOAD_FILE"
    );
}

#[test]
fn a_failing_bulk_operation_leaves_partial_data() {
    let store = start();
    let client = Client::new(&store);
    store.set_faults(local_store::Faults {
        bulk_fail_after: Some(2),
        ..Default::default()
    });
    let op = run_bulk_query(&client, CUSTOMERS, false);
    let done = wait_done(&client, op["id"].as_str().unwrap());
    assert_eq!(done["status"], "FAILED");
    assert_eq!(done["errorCode"], "INTERNAL_SERVER_ERROR");
    assert_eq!(done["url"], Value::Null);
    let (status, partial) = client.get(done["partialDataUrl"].as_str().unwrap());
    assert_eq!(status, 200);
    assert_eq!(partial.lines().count(), 2);
}
