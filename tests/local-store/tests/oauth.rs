//! The client credentials grant (`POST /admin/oauth/access_token`): refused where the app is not
//! installed or the secret is wrong, issued tokens accepted on GraphQL until they expire.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::{Client, agent, start, start_with};
use local_store::{AppCredentials, Config, Handle, MARGINWISE_SCOPES, TOKEN_PATH};
use serde_json::{Value, json};

const QUERY: &str = "{ customer(id: \"gid://shopify/Customer/7100000000\") { id } }";

fn installed(app: AppCredentials) -> Handle {
    start_with(Config {
        client_credentials: Some(app),
        ..Config::default()
    })
}

/// Sends the form; the status and the JSON answer.
fn exchange(store: &Handle, form: &[(&str, &str)]) -> (u16, Value) {
    let mut response = agent()
        .post(format!("{}{TOKEN_PATH}", store.base_url()))
        .send_form(form.iter().copied())
        .unwrap();
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap())
}

fn grant(secret: &str) -> [(&'static str, &str); 3] {
    [
        ("grant_type", "client_credentials"),
        ("client_id", "id"),
        ("client_secret", secret),
    ]
}

/// The GraphQL status a request with `token` gets.
fn status_with(store: &Handle, token: &str) -> u16 {
    let client = Client {
        token: token.to_string(),
        ..Client::new(store)
    };
    client.try_gql(QUERY, json!({})).unwrap().0
}

#[test]
fn a_store_without_the_app_refuses_every_exchange() {
    let store = start();
    let (status, answer) = exchange(&store, &grant("secret"));
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"], "invalid_client", "{answer}");
    assert_eq!(store.stats().grants_refused, 1);
}

#[test]
fn a_granted_token_works_until_expired() {
    let store = installed(AppCredentials::new("id", "s3cret+/&"));
    let (status, answer) = exchange(&store, &grant("wrong"));
    assert_eq!(status, 400, "{answer}");
    assert!(!answer.to_string().contains("wrong"), "{answer}");
    // The secret's `+`, `/` and `&` survive form encoding.
    let (status, answer) = exchange(&store, &grant("s3cret+/&"));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["scope"], MARGINWISE_SCOPES);
    assert_eq!(answer["expires_in"], 86_399);
    let token = answer["access_token"].as_str().unwrap().to_string();
    assert_ne!(token, store.token());
    assert_eq!(status_with(&store, &token), 200);
    assert_eq!(status_with(&store, "shpat_made_up"), 401);
    // Through `/_control`, as a test driving the binary would.
    let (status, _) = {
        let mut response = agent()
            .post(format!("{}/_control", store.base_url()))
            .send(json!({"expire_tokens": true}).to_string())
            .unwrap();
        (
            response.status().as_u16(),
            response.body_mut().read_to_string().unwrap(),
        )
    };
    assert_eq!(status, 200);
    assert_eq!(status_with(&store, &token), 401);
    // The static token is not the grant's: it keeps working.
    assert_eq!(status_with(&store, store.token()), 200);
    let (_, answer) = exchange(&store, &grant("s3cret+/&"));
    let renewed = answer["access_token"].as_str().unwrap().to_string();
    assert_ne!(renewed, token);
    assert_eq!(status_with(&store, &renewed), 200);
    store.expire_tokens();
    assert_eq!(status_with(&store, &renewed), 401);
    let stats = store.stats();
    assert_eq!(
        (
            stats.tokens_granted,
            stats.grants_refused,
            stats.unauthorized
        ),
        (2, 1, 3),
        "{stats:?}"
    );
}

#[test]
fn a_token_can_be_limited_to_a_number_of_requests() {
    let store = installed(AppCredentials {
        requests_per_token: Some(2),
        ..AppCredentials::new("id", "secret")
    });
    let (_, answer) = exchange(&store, &grant("secret"));
    let token = answer["access_token"].as_str().unwrap().to_string();
    let statuses: Vec<u16> = (0..3).map(|_| status_with(&store, &token)).collect();
    assert_eq!(statuses, vec![200, 200, 401]);
}

#[test]
fn a_json_body_is_taken_and_another_grant_type_is_not() {
    let store = installed(AppCredentials::new("id", "secret"));
    let url = format!("{}{TOKEN_PATH}", store.base_url());
    let mut response = agent()
        .post(&url)
        .header("Content-Type", "application/json")
        .send(
            json!({"grant_type": "client_credentials", "client_id": "id", "client_secret": "secret"})
                .to_string(),
        )
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let answer: Value =
        serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    assert!(answer["access_token"].is_string(), "{answer}");
    let (status, answer) = exchange(
        &store,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "id"),
            ("client_secret", "secret"),
        ],
    );
    assert_eq!(
        (status, &answer["error"]),
        (400, &json!("unsupported_grant_type"))
    );
}
