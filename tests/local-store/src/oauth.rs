//! The app's grants at `POST /admin/oauth/access_token`, as Shopify serves them:
//! - the client credentials grant (`grant_type=client_credentials`): an app's client id and secret
//!   for an Admin API access token, for a Dev Dashboard app installed on a store of its own
//!   organization;
//! - the authorization code grant: `GET /admin/oauth/authorize` plays the merchant approving the
//!   app at once, and redirects to the `redirect_uri` with `code`, `host`, `shop`, `state`,
//!   `timestamp` and the `hmac` that signs them (HMAC-SHA256 with the client secret over the
//!   others, sorted and form-encoded); the code (single use, 60 seconds) is exchanged for a token,
//!   an expiring one with a refresh token when the exchange says `expiring=1`. The redirect URI
//!   is not checked against an allow list (Shopify checks it against the app's);
//! - the refresh (`grant_type=refresh_token`): a new access token and a new refresh token. The old
//!   refresh token stays valid until the new access token is first used, as Shopify has kept it
//!   since August 2026, so a lost answer can be asked for again.
//!
//! A store started without [`AppCredentials`] plays a store the app is not installed on: every
//! grant is refused with HTTP 400. Issued tokens are accepted beside the static
//! [`crate::Config::token`] until they expire: after `expires_in` seconds, after
//! [`AppCredentials::requests_per_token`] GraphQL requests when set, or at once when a test
//! expires them ([`crate::Handle::expire_tokens`], `POST /_control {"expire_tokens": true}`), so a
//! client's renewal can be tested without waiting a day. Expiring tokens leaves refresh tokens
//! valid.

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;

/// Where the grants are served.
pub const TOKEN_PATH: &str = "/admin/oauth/access_token";
/// Where the merchant approves the app (played at once here).
pub const AUTHORIZE_PATH: &str = "/admin/oauth/authorize";
/// The `host` parameter of a callback: base64 of the admin's address, as Shopify sends it.
const CALLBACK_HOST: &str = "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvbG9jYWwtc3RvcmU=";

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
    /// The shop the callback names (`shop=`).
    pub shop: String,
    /// An expiring token's `expires_in` (Shopify: 3600).
    pub expiring_expires_in: u64,
    /// A refresh token's `refresh_token_expires_in`.
    pub refresh_expires_in: u64,
    /// Whether the store is in the app's own organization, where the client credentials grant
    /// works (default); `false` plays any other store: only the authorization code grant.
    pub same_organization: bool,
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
            shop: "local-store.myshopify.com".to_string(),
            expiring_expires_in: 3600,
            refresh_expires_in: 7_776_000,
            same_organization: true,
        }
    }
}

struct Issued {
    token: String,
    expires_at: Instant,
    requests_left: Option<u64>,
    /// The refresh token this token's refresh spent: revoked when this token is first used.
    spent_refresh: Option<String>,
}

struct Code {
    code: String,
    expires_at: Instant,
}

struct Refresh {
    token: String,
    expires_at: Instant,
}

/// The installed app and the tokens issued to it.
pub struct Grants {
    app: Option<AppCredentials>,
    issued: Vec<Issued>,
    codes: Vec<Code>,
    refresh_tokens: Vec<Refresh>,
    next: u64,
}

/// What the answer to an exchange is: the status and its JSON body.
pub struct GrantAnswer {
    pub status: u16,
    pub body: String,
    pub issued: bool,
    /// Issued by a refresh.
    pub refreshed: bool,
}

#[derive(Deserialize)]
struct JsonForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    code: Option<String>,
    expiring: Option<serde_json::Value>,
    refresh_token: Option<String>,
}

/// What the approval page answers: a redirect to the app's callback, or an error page.
pub enum Approval {
    Redirect(String),
    Refused(String),
}

/// The grant an exchange asks for.
enum Kind {
    ClientCredentials,
    Code { code: String, expiring: bool },
    Refresh(String),
}

impl Grants {
    pub fn new(app: Option<AppCredentials>) -> Grants {
        Grants {
            app,
            issued: Vec::new(),
            codes: Vec::new(),
            refresh_tokens: Vec::new(),
            next: 1,
        }
    }

    /// `GET /admin/oauth/authorize?<query>`: the merchant approves at once, and the answer sends
    /// the browser to the app's `redirect_uri` with a signed callback. `unix_now` is the
    /// callback's `timestamp`.
    pub fn approve(&mut self, query: &str, now: Instant, unix_now: i64) -> Approval {
        let pairs = parse_form(query.as_bytes());
        let field = |name: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        let Some(app) = self.app.clone() else {
            return Approval::Refused("This app is not available to this shop.".into());
        };
        if field("client_id").as_deref() != Some(app.client_id.as_str()) {
            return Approval::Refused("Oauth error invalid_request: unknown client_id".into());
        }
        let (Some(redirect_uri), Some(state)) = (field("redirect_uri"), field("state")) else {
            return Approval::Refused(
                "Oauth error invalid_request: redirect_uri and state are required".into(),
            );
        };
        if !(redirect_uri.starts_with("http://") || redirect_uri.starts_with("https://")) {
            return Approval::Refused(
                "Oauth error invalid_request: The redirect_uri is missing or not whitelisted"
                    .into(),
            );
        }
        let code = format!("local_store_code_{}", self.next);
        self.next += 1;
        self.codes.retain(|c| c.expires_at > now);
        self.codes.push(Code {
            code: code.clone(),
            expires_at: now + Duration::from_secs(60),
        });
        let timestamp = unix_now.to_string();
        let mut parameters = vec![
            ("code", code.as_str()),
            ("host", CALLBACK_HOST),
            ("shop", app.shop.as_str()),
            ("state", state.as_str()),
            ("timestamp", timestamp.as_str()),
        ];
        let hmac = sign(&parameters, &app.client_secret);
        parameters.push(("hmac", hmac.as_str()));
        let mut query = form_urlencoded_pairs(&parameters);
        query.insert(0, if redirect_uri.contains('?') { '&' } else { '?' });
        Approval::Redirect(format!("{redirect_uri}{query}"))
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
                    code: field("code"),
                    expiring: field("expiring").map(serde_json::Value::String),
                    refresh_token: field("refresh_token"),
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
        let (Some(client_id), Some(client_secret)) = (form.client_id, form.client_secret) else {
            return refused(
                "invalid_request",
                "Required parameters missing: client_id, client_secret.",
            );
        };
        let expiring = form
            .expiring
            .is_some_and(|v| v == json!(1) || v == json!("1") || v == json!(true));
        let kind = match (form.grant_type.as_deref(), form.code, form.refresh_token) {
            (Some("client_credentials"), _, _) => Kind::ClientCredentials,
            (Some("refresh_token"), _, Some(refresh)) => Kind::Refresh(refresh),
            (Some("refresh_token"), _, None) => {
                return refused(
                    "invalid_request",
                    "Required parameter missing: refresh_token.",
                );
            }
            (None | Some("authorization_code"), Some(code), _) => Kind::Code { code, expiring },
            (None, None, _) => {
                return refused(
                    "invalid_request",
                    "Required parameters missing: grant_type or code.",
                );
            }
            (Some(_), _, _) => {
                return refused(
                    "unsupported_grant_type",
                    "Served here: client_credentials, refresh_token, and codes.",
                );
            }
        };
        let Some(app) = self.app.clone().filter(|app| app.client_id == client_id) else {
            return refused("invalid_client", "This app is not installed on this shop.");
        };
        if app.client_secret != client_secret {
            return refused("invalid_client", "Client authentication failed.");
        }
        self.issued.retain(|issued| issued.expires_at > now);
        self.refresh_tokens.retain(|r| r.expires_at > now);
        match kind {
            Kind::ClientCredentials if !app.same_organization => refused(
                "invalid_client",
                "The client credentials grant is only for stores of the app's organization.",
            ),
            Kind::ClientCredentials => {
                let token = self.issue(app.expires_in, app.requests_per_token, None, now);
                granted(
                    json!({"access_token": token, "scope": app.scope, "expires_in": app.expires_in}),
                )
            }
            Kind::Code { code, expiring } => {
                let Some(at) = self
                    .codes
                    .iter()
                    .position(|c| c.code == code && c.expires_at > now)
                else {
                    return refused(
                        "invalid_grant",
                        "The authorization code is invalid, expired or already used.",
                    );
                };
                self.codes.remove(at);
                if !expiring {
                    // A token that does not expire (kept here for ten years).
                    let token = self.issue(315_360_000, app.requests_per_token, None, now);
                    return granted(json!({"access_token": token, "scope": app.scope}));
                }
                let token = self.issue(app.expiring_expires_in, app.requests_per_token, None, now);
                let refresh = self.new_refresh(app.refresh_expires_in, now);
                granted(json!({
                    "access_token": token,
                    "scope": app.scope,
                    "expires_in": app.expiring_expires_in,
                    "refresh_token": refresh,
                    "refresh_token_expires_in": app.refresh_expires_in,
                }))
            }
            Kind::Refresh(refresh) => {
                if !self.refresh_tokens.iter().any(|r| r.token == refresh) {
                    return refused(
                        "invalid_grant",
                        "The refresh token is invalid, expired or revoked.",
                    );
                }
                let token = self.issue(
                    app.expiring_expires_in,
                    app.requests_per_token,
                    Some(refresh),
                    now,
                );
                let renewed = self.new_refresh(app.refresh_expires_in, now);
                let mut answer = granted(json!({
                    "access_token": token,
                    "scope": app.scope,
                    "expires_in": app.expiring_expires_in,
                    "refresh_token": renewed,
                    "refresh_token_expires_in": app.refresh_expires_in,
                }));
                answer.refreshed = true;
                answer
            }
        }
    }

    fn issue(
        &mut self,
        expires_in: u64,
        requests_left: Option<u64>,
        spent_refresh: Option<String>,
        now: Instant,
    ) -> String {
        let token = format!("shpat_local_store_granted_{}", self.next);
        self.next += 1;
        self.issued.push(Issued {
            token: token.clone(),
            expires_at: now + Duration::from_secs(expires_in),
            requests_left,
            spent_refresh,
        });
        token
    }

    fn new_refresh(&mut self, expires_in: u64, now: Instant) -> String {
        let token = format!("shprt_local_store_{}", self.next);
        self.next += 1;
        self.refresh_tokens.push(Refresh {
            token: token.clone(),
            expires_at: now + Duration::from_secs(expires_in),
        });
        token
    }

    /// Whether `refresh_token` would be taken now (tests).
    pub fn refresh_token_valid(&self, refresh_token: &str, now: Instant) -> bool {
        self.refresh_tokens
            .iter()
            .any(|r| r.token == refresh_token && r.expires_at > now)
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
        // The refresh token spent for this token is revoked once this token is used.
        if let Some(spent) = issued.spent_refresh.take() {
            self.refresh_tokens.retain(|r| r.token != spent);
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
        refreshed: false,
    }
}

fn granted(body: serde_json::Value) -> GrantAnswer {
    GrantAnswer {
        status: 200,
        body: body.to_string(),
        issued: true,
        refreshed: false,
    }
}

/// The callback's signature: HMAC-SHA256 with the client secret over the parameters sorted by
/// name, form-encoded and joined with `&`, in lowercase hex.
pub fn sign(parameters: &[(&str, &str)], client_secret: &str) -> String {
    use hmac::Mac;
    let mut sorted = parameters.to_vec();
    sorted.sort();
    // HMAC takes keys of any length: the error arm cannot be taken.
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(client_secret.as_bytes()) else {
        return String::new();
    };
    mac.update(form_urlencoded_pairs(&sorted).as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `a=1&b=x+y%21`: the WHATWG form encoding (bytes other than ASCII letters, digits and `*-._`
/// percent-encoded, spaces as `+`).
fn form_urlencoded_pairs(pairs: &[(&str, &str)]) -> String {
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_string(),
                other => format!("%{other:02X}"),
            })
            .collect()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
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
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
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

    #[test]
    fn a_code_works_once_and_a_spent_refresh_token_lasts_until_its_replacement_is_used() {
        let mut grants = Grants::new(Some(AppCredentials::new("id", "secret")));
        let now = Instant::now();
        let Approval::Redirect(location) = grants.approve(
            "client_id=id&scope=read_products&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&state=s%201",
            now,
            1_763_769_600,
        ) else {
            panic!("not approved");
        };
        assert!(
            location.starts_with("http://127.0.0.1:9/cb?code=local_store_code_1&host="),
            "{location}"
        );
        assert!(
            location.contains("&state=s+1&timestamp=1763769600&hmac="),
            "{location}"
        );
        let form = "application/x-www-form-urlencoded";
        let code = b"client_id=id&client_secret=secret&code=local_store_code_1&expiring=1";
        let first = grants.exchange(Some(form), code, now);
        assert_eq!(first.status, 200, "{}", first.body);
        let answer: serde_json::Value = serde_json::from_str(&first.body).unwrap();
        assert_eq!(answer["expires_in"], 3600);
        let refresh = answer["refresh_token"].as_str().unwrap().to_string();
        assert_eq!(
            grants.exchange(Some(form), code, now).status,
            400,
            "used once"
        );
        let body = format!(
            "client_id=id&client_secret=secret&grant_type=refresh_token&refresh_token={refresh}"
        );
        let renewed = grants.exchange(Some(form), body.as_bytes(), now);
        assert!(renewed.refreshed, "{}", renewed.body);
        // Its answer lost, the refresh is asked for again with the same token, and works.
        let again = grants.exchange(Some(form), body.as_bytes(), now);
        assert_eq!(again.status, 200, "{}", again.body);
        let token: serde_json::Value = serde_json::from_str(&again.body).unwrap();
        assert!(grants.authorize(token["access_token"].as_str().unwrap(), now));
        assert!(!grants.refresh_token_valid(&refresh, now));
        assert_eq!(
            grants.exchange(Some(form), body.as_bytes(), now).status,
            400
        );
        // A wrong client id gets no approval.
        assert!(matches!(
            grants.approve(
                "client_id=other&redirect_uri=http%3A%2F%2Fx&state=s",
                now,
                0
            ),
            Approval::Refused(_)
        ));
    }
}
