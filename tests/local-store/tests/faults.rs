//! Injected faults and the counters that expose what they did.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::{CUSTOMER_1, Client, SET, input, start};
use local_store::{Burst, Faults};
use serde_json::{Value, json};

fn burst(every: u64, length: u64) -> Burst {
    Burst {
        every,
        length,
        writes_only: false,
        status: None,
        delay_ms: None,
    }
}

fn write(client: &Client, value: &str) -> Result<(u16, Value), ureq::Error> {
    client.try_gql(
        SET,
        json!({"metafields": [input(CUSTOMER_1, "profile", "single_line_text_field", value)]}),
    )
}

#[test]
fn five_xx_bursts_hit_the_configured_requests_and_change_nothing() {
    let store = start();
    let client = Client::new(&store);
    store.set_faults(Faults {
        error_5xx: Some(Burst {
            status: Some(502),
            ..burst(3, 2)
        }),
        ..Faults::default()
    });
    let statuses: Vec<u16> = (0..6)
        .map(|i| write(&client, &format!("v{i}")).unwrap().0)
        .collect();
    assert_eq!(statuses, [200, 502, 502, 200, 502, 502]);
    let stats = store.stats();
    assert_eq!((stats.injected_5xx, stats.writes_applied), (4, 2));
    assert_eq!(store.metafields()[0].value, "v3");
}

#[test]
fn a_connection_dropped_after_the_write_leaves_the_write_applied() {
    let store = start();
    let client = Client::new(&store);
    store.set_faults(Faults {
        drop_after: Some(Burst {
            writes_only: true,
            ..burst(2, 1)
        }),
        ..Faults::default()
    });
    assert_eq!(write(&client, "v1").unwrap().0, 200);
    // Reads do not advance a writes-only clock.
    client.gql("{ __typename }", json!({}));
    // The second write is applied, then the socket closes without an answer.
    assert!(write(&client, "v2").is_err(), "no answer expected");
    assert_eq!(store.metafields()[0].value, "v2");
    // A client that retries blindly writes the same value again: counted as a duplicate.
    assert_eq!(write(&client, "v2").unwrap().0, 200);
    let stats = store.stats();
    assert_eq!(stats.dropped_after, 1);
    assert_eq!((stats.writes_applied, stats.duplicate_writes), (3, 1));
    assert_eq!(stats.metafields_written_more_than_once, 1);
    let counts = store.write_counts();
    assert_eq!((counts[0].writes, counts[0].duplicate_writes), (3, 1));
}

#[test]
fn a_connection_dropped_before_the_request_changes_nothing() {
    let store = start();
    let client = Client::new(&store);
    store.set_faults(Faults {
        drop_before: Some(burst(1, 1)),
        ..Faults::default()
    });
    assert!(write(&client, "v1").is_err());
    assert!(store.metafields().is_empty());
    let stats = store.stats();
    assert_eq!((stats.dropped_before, stats.write_calls), (1, 0));
}

#[test]
fn slow_answers_still_answer() {
    let store = start();
    let client = Client::new(&store);
    store.set_faults(Faults {
        slow: Some(Burst {
            delay_ms: Some(50),
            ..burst(1, 1)
        }),
        ..Faults::default()
    });
    assert_eq!(write(&client, "v1").unwrap().0, 200);
    assert_eq!(store.stats().slowed, 1);
}

#[test]
fn a_throttle_storm_throttles_the_next_requests_with_an_empty_bucket() {
    let store = start();
    let client = Client::new(&store);
    store.set_faults(Faults {
        throttle_storm: 3,
        ..Faults::default()
    });
    for i in 0..3 {
        let (_, answer) = write(&client, &format!("v{i}")).unwrap();
        assert_eq!(
            answer["errors"][0]["extensions"]["code"], "THROTTLED",
            "{answer}"
        );
        let available = answer["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"]
            .as_u64()
            .unwrap();
        assert!(available < 10, "the storm drains the bucket: {available}");
    }
    assert!(store.metafields().is_empty());
    assert_eq!(store.stats().throttled, 3);
}

#[test]
fn the_control_endpoint_sets_faults_and_reports_counters() {
    let store = start();
    let client = Client::new(&store);
    let control = format!("{}/_control", client.base);
    let mut response = client
        .agent
        .post(&control)
        .send_json(json!({"faults": {"error_5xx": {"every": 1}}, "restore_rate": 1000.0}))
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let settings: Value = response.body_mut().read_json().unwrap();
    assert_eq!(settings["maximum_available"], 20000.0);
    assert_eq!(write(&client, "v1").unwrap().0, 503);
    let (status, stats) = client.get(&format!("{control}/stats"));
    assert_eq!(status, 200);
    let stats: Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["injected_5xx"], 1);
    // An unknown control field is refused rather than ignored.
    let response = client
        .agent
        .post(&control)
        .send_json(json!({"fault": {}}))
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    // Clearing the faults lets writes through; the metafields dump lists them.
    client
        .agent
        .post(&control)
        .send_json(json!({"faults": {}}))
        .unwrap();
    assert_eq!(write(&client, "v2").unwrap().0, 200);
    let (_, dump) = client.get(&format!("{control}/metafields"));
    let record: Value = serde_json::from_str(dump.lines().next().unwrap()).unwrap();
    assert_eq!(record["ownerId"], CUSTOMER_1);
    assert_eq!(record["value"], "v2");
    assert_eq!(
        record["compareDigest"],
        local_store::metafield_digest("single_line_text_field", "v2")
    );
}
