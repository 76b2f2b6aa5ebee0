//! The Admin API client sends the access token to the endpoint it was given and nowhere else: a
//! redirect is an error, not a request to the redirect target carrying `X-Shopify-Access-Token`
//! (ureq follows redirects by default, and removes only standard authorization headers).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::time::{Duration, Instant};

use model_pipeline::admin::ops::{self, read_metafields};
use model_pipeline::admin::retry::Backoff;
use model_pipeline::admin::{AccessToken, AdminClient, ClientOptions, Credentials, Retry};

/// Answers the first request with `status` and `Location: target` (waits 5 s at most for it).
fn redirecting(target: String, status: u16) -> (String, std::thread::JoinHandle<u32>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/admin/api/2026-04/graphql.json",
        server.server_addr()
    );
    let thread = std::thread::spawn(move || {
        let started = Instant::now();
        let mut answered = 0;
        while answered < 1 && started.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(50)) {
                answered += 1;
                let location = tiny_http::Header::from_bytes("Location", target.as_str()).unwrap();
                let _ = request.respond(
                    tiny_http::Response::from_string("")
                        .with_status_code(status)
                        .with_header(location),
                );
            }
        }
        answered
    });
    (url, thread)
}

/// Counts the requests that reach it carrying the token header within 1 s.
fn listening() -> (String, std::thread::JoinHandle<u32>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!("http://{}/elsewhere", server.server_addr());
    let thread = std::thread::spawn(move || {
        let started = Instant::now();
        let mut with_token = 0;
        while started.elapsed() < Duration::from_secs(1) {
            if let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(50)) {
                if request
                    .headers()
                    .iter()
                    .any(|h| h.field.equiv("X-Shopify-Access-Token"))
                {
                    with_token += 1;
                }
                let _ = request.respond(tiny_http::Response::from_string("{}"));
            }
        }
        with_token
    });
    (url, thread)
}

#[test]
fn a_redirect_is_an_error_and_the_token_never_reaches_its_target() {
    for status in [301, 307, 308] {
        let (target, target_thread) = listening();
        let (endpoint, redirect_thread) = redirecting(target, status);
        let credentials =
            Credentials::for_local(&endpoint, AccessToken::new("shpat_secret")).unwrap();
        let mut client = AdminClient::new(
            credentials,
            ClientOptions {
                backoff: Backoff::new(Duration::from_millis(5), Duration::from_millis(20), 2, 1),
                ..ClientOptions::default()
            },
        );
        let result = client.execute::<ops::ReadMetafields>(
            "nodes",
            read_metafields::Variables {
                ids: vec!["gid://shopify/Customer/1".to_string()],
                namespace: "$app".to_string(),
                customer_key: "profile".to_string(),
                variant_key: "profile".to_string(),
            },
            Retry::Always,
        );
        assert_eq!(
            target_thread.join().unwrap(),
            0,
            "{status}: the token was forwarded"
        );
        let error = result
            .map(|_| ())
            .expect_err("a redirect must not look like an answer")
            .to_string();
        assert!(error.contains(&status.to_string()), "{status}: {error}");
        assert!(!error.contains("shpat_secret"), "{error}");
        assert_eq!(redirect_thread.join().unwrap(), 1);
    }
}
