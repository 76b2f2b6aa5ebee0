//! A tiny blocking client for the protocol tests, and the fixture store.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use local_store::{Config, Handle, LocalStore};
use serde_json::{Value, json};

pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store")
}

pub fn start() -> Handle {
    start_with(Config::default())
}

pub fn start_with(config: Config) -> Handle {
    LocalStore::start(Config {
        seed_dir: Some(fixture_dir()),
        ..config
    })
    .unwrap()
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

pub struct Client {
    pub agent: ureq::Agent,
    pub url: String,
    pub base: String,
    pub token: String,
}

impl Client {
    pub fn new(store: &Handle) -> Client {
        Client {
            agent: agent(),
            url: store.url(),
            base: store.base_url().to_string(),
            token: store.token().to_string(),
        }
    }

    /// Sends a GraphQL request; the HTTP status and the JSON answer.
    pub fn try_gql(&self, query: &str, variables: Value) -> Result<(u16, Value), ureq::Error> {
        let mut response = self
            .agent
            .post(&self.url)
            .header("X-Shopify-Access-Token", &self.token)
            .send_json(json!({"query": query, "variables": variables}))?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string()?;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }

    pub fn gql(&self, query: &str, variables: Value) -> Value {
        let (status, value) = self.try_gql(query, variables).unwrap();
        assert_eq!(status, 200, "{value}");
        value
    }

    pub fn get(&self, url: &str) -> (u16, String) {
        let mut response = self.agent.get(url).call().unwrap();
        let status = response.status().as_u16();
        (status, response.body_mut().read_to_string().unwrap())
    }
}

pub const SET: &str = "mutation Set($metafields: [MetafieldsSetInput!]!) {
  metafieldsSet(metafields: $metafields) {
    metafields { id namespace key value compareDigest updatedAt }
    userErrors { field message code elementIndex }
  }
}";

pub fn input(owner: &str, key: &str, kind: &str, value: &str) -> Value {
    json!({"ownerId": owner, "namespace": "$app", "key": key, "type": kind, "value": value})
}

pub const CUSTOMER_1: &str = "gid://shopify/Customer/7100000000";
pub const CUSTOMER_2: &str = "gid://shopify/Customer/7100000001";
pub const VARIANT_1: &str = "gid://shopify/ProductVariant/44000000000";

/// Polls until `done` holds, for at most ten seconds.
pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
