//! The client credentials grant: `POST /admin/oauth/access_token` exchanges an app's client id
//! and secret for an Admin API access token, as Shopify does for a Dev Dashboard app installed on
//! a store of its own organization.
//!
//! A store started without [`AppCredentials`] plays a store the app is not installed on: every
//! exchange is refused with HTTP 400. Issued tokens are accepted beside the static
//! [`crate::Config::token`] until they expire: after `expires_in` seconds, after
//! [`AppCredentials::requests_per_token`] GraphQL requests when set, or at once when a test
//! expires them ([`crate::Handle::expire_tokens`], `POST /_control {"expire_tokens": true}`), so a
//! client's renewal can be tested without waiting a day.

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;

/// Where the grant is served.
pub const TOKEN_PATH: &str = "/admin/oauth/access_token";

/// The scopes marginwise's `shopify.app.toml` declares: what a store that installed it grants.
pub const MARGINWISE_SCOPES: &str = "read_customers,write_customers,read_products,write_products,read_orders,read_all_orders,write_discounts,write_cart_transforms";

/// The app installed on the stand-in, for the client credentials grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppCredentials {
    pub client_id: String,
    pub client_secret: String,
    /// The answer's `scope`: what the installed app was granted, comma-separated.
    pub scope: String,
    /// The answer's `expires_in` in seconds; a token is refused after it (Shopify: 86399).
    pub expires_in: u64,
    /// When set, a token is refused after it authorized this many GraphQL requests.
    pub requests_per_token: Option<u64>,
}

impl AppCredentials {
    /// marginwise's scopes, tokens that last a day less one second, no request limit.
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> AppCredentials {
        AppCredentials {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            scope: MARGINWISE_SCOPES.to_string(),
            expires_in: 86_399,
            requests_per_token: None,
        }
    }
}

struct Issued {
    token: String,
    expires_at: Instant,
    requests_left: Option<u64>,
}

/// The installed app and the tokens issued to it.
pub struct Grants {
    app: Option<AppCredentials>,
    issued: Vec<Issued>,
    next: u64,
}

/// What the answer to an exchange is: the status and its JSON body.
pub struct GrantAnswer {
    pub status: u16,
    pub body: String,
    pub issued: bool,
}

#[derive(Deserialize)]
struct JsonForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

impl Grants {
    pub fn new(app: Option<AppCredentials>) -> Grants {
        Grants {
            app,
            issued: Vec::new(),
            next: 1,
        }
    }

    /// Answers one exchange. The body is `application/x-www-form-urlencoded` (what Shopify's
    /// guide shows) or JSON (what Shopify's Node library sends). No answer quotes the secret.
    pub fn exchange(
        &mut self,
        content_type: Option<&str>,
        body: &[u8],
        now: Instant,
    ) -> GrantAnswer {
        let media = content_type
            .and_then(|ct| ct.split(';').next())
            .map(|m| m.trim().to_ascii_lowercase());
        let form = match media.as_deref() {
            Some("application/x-www-form-urlencoded") => {
                let pairs = parse_form(body);
                let field = |name: &str| {
                    pairs
                        .iter()
                        .find(|(key, _)| key == name)
                        .map(|(_, value)| value.clone())
                };
                JsonForm {
                    grant_type: field("grant_type"),
                    client_id: field("client_id"),
                    client_secret: field("client_secret"),
                }
            }
            Some("application/json") => match serde_json::from_slice::<JsonForm>(body) {
                Ok(form) => form,
                Err(_) => return refused("invalid_request", "The request body is not valid JSON."),
            },
            _ => {
                return refused(
                    "invalid_request",
                    "Expected an application/x-www-form-urlencoded body.",
                );
            }
        };
        let (Some(grant_type), Some(client_id), Some(client_secret)) =
            (form.grant_type, form.client_id, form.client_secret)
        else {
            return refused(
                "invalid_request",
                "Required parameters missing: grant_type, client_id, client_secret.",
            );
        };
        if grant_type != "client_credentials" {
            return refused(
                "unsupported_grant_type",
                "Only client_credentials is served here.",
            );
        }
        let Some(app) = self.app.as_ref().filter(|app| app.client_id == client_id) else {
            return refused("invalid_client", "This app is not installed on this shop.");
        };
        if app.client_secret != client_secret {
            return refused("invalid_client", "Client authentication failed.");
        }
        let token = format!("shpat_local_store_granted_{}", self.next);
        self.next += 1;
        let (scope, expires_in, requests_left) =
            (app.scope.clone(), app.expires_in, app.requests_per_token);
        self.issued.retain(|issued| issued.expires_at > now);
        self.issued.push(Issued {
            token: token.clone(),
            expires_at: now + Duration::from_secs(expires_in),
            requests_left,
        });
        GrantAnswer {
            status: 200,
            body: json!({"access_token": token, "scope": scope, "expires_in": expires_in})
                .to_string(),
            issued: true,
        }
    }

    /// Whether `token` is an issued token still valid at `now`; counts the request against it.
    pub fn authorize(&mut self, token: &str, now: Instant) -> bool {
        let Some(issued) = self.issued.iter_mut().find(|issued| issued.token == token) else {
            return false;
        };
        if issued.expires_at <= now || issued.requests_left == Some(0) {
            return false;
        }
        if let Some(left) = issued.requests_left.as_mut() {
            *left -= 1;
        }
        true
    }

    /// Every token issued so far is refused from now on; later exchanges issue valid ones.
    pub fn expire_all(&mut self) {
        self.issued.clear();
    }
}

fn refused(error: &str, description: &str) -> GrantAnswer {
    GrantAnswer {
        status: 400,
        body: json!({"error": error, "error_description": description}).to_string(),
        issued: false,
    }
}

/// `a=1&b=x+y%21` into pairs, `+` as a space and `%XX` decoded; a bad escape is kept as is.
fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    body.split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let mut parts = pair.splitn(2, |b| *b == b'=');
            let key = parts.next().unwrap_or_default();
            let value = parts.next().unwrap_or_default();
            (decode(key), decode(value))
        })
        .collect()
}

fn decode(text: &[u8]) -> String {
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text;
    while let Some((&first, tail)) = rest.split_first() {
        match first {
            b'+' => {
                out.push(b' ');
                rest = tail;
            }
            b'%' => {
                let byte = tail
                    .get(..2)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok());
                match byte {
                    Some(byte) => {
                        out.push(byte);
                        rest = tail.get(2..).unwrap_or_default();
                    }
                    None => {
                        out.push(b'%');
                        rest = tail;
                    }
                }
            }
            other => {
                out.push(other);
                rest = tail;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_bodies_are_decoded() {
        assert_eq!(
            parse_form(b"grant_type=client_credentials&client_secret=a+b%2Fc%zz&x"),
            vec![
                ("grant_type".to_string(), "client_credentials".to_string()),
                ("client_secret".to_string(), "a b/c%zz".to_string()),
                ("x".to_string(), String::new()),
            ]
        );
    }

    #[test]
    fn tokens_are_refused_once_used_up_or_expired() {
        let mut grants = Grants::new(Some(AppCredentials {
            requests_per_token: Some(1),
            ..AppCredentials::new("id", "secret")
        }));
        let now = Instant::now();
        let form = "application/x-www-form-urlencoded";
        let wrong = grants.exchange(
            Some(form),
            b"grant_type=client_credentials&client_id=id&client_secret=nope",
            now,
        );
        assert_eq!(wrong.status, 400);
        assert!(!wrong.body.contains("nope"), "{}", wrong.body);
        let answer = grants.exchange(
            Some(form),
            b"grant_type=client_credentials&client_id=id&client_secret=secret",
            now,
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
        let token = "shpat_local_store_granted_1";
        assert!(grants.authorize(token, now));
        assert!(!grants.authorize(token, now), "one request per token");
        assert!(!grants.authorize("shpat_other", now));
        let later = now + Duration::from_secs(86_399);
        grants.exchange(
            Some(form),
            b"grant_type=client_credentials&client_id=id&client_secret=secret",
            now,
        );
        assert!(!grants.authorize("shpat_local_store_granted_2", later));
    }
}
