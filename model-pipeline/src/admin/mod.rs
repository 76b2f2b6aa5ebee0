//! A blocking client for the part of Shopify's Admin GraphQL API the pipeline uses.
//!
//! Typed operations ([`ops`]) are generated from our own schema subset; this module sends them,
//! paces them to the server's leaky bucket ([`pacing`]), and retries what may be retried
//! ([`retry`]). One request is in flight at a time: the rate limit is per app and shop, so
//! parallel requests would only queue at the server and get throttled together.
//!
//! Retries follow what an answer proves. A THROTTLED answer proves the request did not run, so
//! it is always sent again once the points are there. A 5xx, a dropped connection or a timeout
//! prove nothing: for reads and for writes guarded by `compareDigest` the request is sent again;
//! for callers that asked for [`Retry::UnlessAmbiguous`] the error is [`AdminError::Ambiguous`]
//! and the caller reads back what happened before deciding (see `sync::apply`).
//!
//! The access token never appears in `Debug` output, errors or logs.

pub mod ops;
pub mod pacing;
pub mod retry;

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use graphql_client::GraphQLQuery;

use pacing::{Pacer, QueryCost};
use retry::Backoff;

/// The Admin API version the subset and the operations are written against.
pub const API_VERSION: &str = "2026-04";
/// Environment variables read when the flags are absent.
pub const SHOP_ENV: &str = "SHOPIFY_SHOP";
pub const TOKEN_ENV: &str = "SHOPIFY_ACCESS_TOKEN";

/// An Admin API access token. Its `Debug` and `Display` never show the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    pub fn new(token: impl Into<String>) -> AccessToken {
        AccessToken(token.into())
    }

    /// Blank: no token at all.
    fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }

    /// The secret itself, for the request header only.
    fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

impl std::fmt::Display for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where to send requests and with which token.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The GraphQL endpoint (`https://<shop>.myshopify.com/admin/api/2026-04/graphql.json`).
    pub endpoint: String,
    /// What the state database is keyed by: the shop domain, or the endpoint of a local store.
    pub shop: String,
    pub token: AccessToken,
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error(
        "no shop given: pass --shop <name>.myshopify.com, set {SHOP_ENV}, or use --credentials <file>"
    )]
    MissingShop,
    #[error("no access token given: pass --token, set {TOKEN_ENV}, or use --credentials <file>")]
    MissingToken,
    #[error("credentials file {file}: {message}")]
    File { file: String, message: String },
    #[error(
        "shop `{0}`: expected the shop's myshopify domain, such as example.myshopify.com, or just its name (no scheme, no path)"
    )]
    BadShop(String),
    #[error(
        "endpoint `{0}`: only a local stand-in on a loopback address (http://127.0.0.1:<port>/...) may be given as an endpoint"
    )]
    NotLoopback(String),
    #[error("the access token is empty")]
    EmptyToken,
}

/// The credentials file: `{"shop": "example.myshopify.com", "access_token": "shpat_..."}`.
#[derive(serde::Deserialize)]
struct CredentialsFile {
    shop: Option<String>,
    access_token: Option<String>,
}

impl Credentials {
    /// For a shop domain: the Admin GraphQL endpoint of [`API_VERSION`].
    ///
    /// The token goes to Shopify only: the shop is its `<name>.myshopify.com` domain, or just
    /// `<name>` (a custom domain is the storefront, not the Admin API).
    pub fn for_shop(shop: &str, token: AccessToken) -> Result<Credentials, CredentialsError> {
        let given = shop.trim().trim_end_matches('/');
        let lower = given.to_ascii_lowercase();
        let name = lower.strip_suffix(".myshopify.com").unwrap_or(&lower);
        let valid = name
            .bytes()
            .next()
            .is_some_and(|first| first.is_ascii_alphanumeric())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid {
            return Err(CredentialsError::BadShop(given.to_string()));
        }
        if token.is_empty() {
            return Err(CredentialsError::EmptyToken);
        }
        let shop = format!("{name}.myshopify.com");
        Ok(Credentials {
            endpoint: format!("https://{shop}/admin/api/{API_VERSION}/graphql.json"),
            shop: shop.to_string(),
            token,
        })
    }

    /// For a local stand-in of the Admin API (tests, the demo): a plain-HTTP endpoint on a
    /// loopback address only, so a token is never sent in clear text over a network.
    ///
    /// The URL is parsed, and its host is what is checked: `http://127.0.0.1:1@example.com/` is
    /// refused (everything before `@` is user information, and the host is `example.com`).
    pub fn for_local(endpoint: &str, token: AccessToken) -> Result<Credentials, CredentialsError> {
        let loopback = endpoint
            .parse::<ureq::http::Uri>()
            .ok()
            .filter(|uri| uri.scheme_str() == Some("http"))
            .and_then(|uri| uri.authority().cloned())
            .is_some_and(|authority| {
                !authority.as_str().contains('@')
                    && authority.port_u16().is_some()
                    && ["127.0.0.1", "localhost", "[::1]"].contains(&authority.host())
            });
        if !loopback {
            return Err(CredentialsError::NotLoopback(endpoint.to_string()));
        }
        if token.is_empty() {
            return Err(CredentialsError::EmptyToken);
        }
        Ok(Credentials {
            endpoint: endpoint.to_string(),
            shop: endpoint.to_string(),
            token,
        })
    }

    /// Flags first, then the credentials file, then the environment.
    pub fn resolve(
        shop: Option<&str>,
        token: Option<&str>,
        file: Option<&Path>,
    ) -> Result<Credentials, CredentialsError> {
        let from_file = match file {
            None => None,
            Some(path) => {
                let error = |message: String| CredentialsError::File {
                    file: path.display().to_string(),
                    message,
                };
                let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
                // The parse error may quote the file, which holds the token: name the line only.
                let parsed: CredentialsFile = serde_json::from_str(&text).map_err(|e| {
                    error(format!(
                        "not a JSON object with \"shop\" and \"access_token\" (line {}, column {})",
                        e.line(),
                        e.column()
                    ))
                })?;
                Some(parsed)
            }
        };
        let env = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        let shop = shop
            .map(str::to_string)
            .or_else(|| from_file.as_ref().and_then(|f| f.shop.clone()))
            .or_else(|| env(SHOP_ENV))
            .ok_or(CredentialsError::MissingShop)?;
        let token = token
            .map(str::to_string)
            .or_else(|| from_file.as_ref().and_then(|f| f.access_token.clone()))
            .or_else(|| env(TOKEN_ENV))
            .ok_or(CredentialsError::MissingToken)?;
        Credentials::for_shop(&shop, AccessToken::new(token))
    }
}

/// Whether a request whose outcome is unknown may be sent again by the client itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Reads, deletes, and writes whose repetition cannot change anything: send again.
    Always,
    /// Return [`AdminError::Ambiguous`] so the caller can look before it writes again.
    UnlessAmbiguous,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{operation}: the shop refused the access token (HTTP {status})")]
    Unauthorized {
        operation: &'static str,
        status: u16,
    },
    #[error("{operation}: HTTP {status}: {body}")]
    Http {
        operation: &'static str,
        status: u16,
        body: String,
    },
    #[error("{operation} at {endpoint}: gave up after {attempts} attempts, last: {last}")]
    GaveUp {
        operation: &'static str,
        endpoint: String,
        attempts: u32,
        last: String,
    },
    #[error("{operation}: outcome unknown ({cause}); it may have been applied")]
    Ambiguous {
        operation: &'static str,
        cause: String,
    },
    #[error("{operation}: {messages}")]
    Graphql {
        operation: &'static str,
        messages: String,
    },
    #[error("{operation}: the answer is not what the operation returns: {message}")]
    Decode {
        operation: &'static str,
        message: String,
    },
    #[error("{operation}: {message}")]
    UserErrors {
        operation: &'static str,
        message: String,
    },
    #[error("{what} {url}: {message}")]
    Transfer {
        what: &'static str,
        url: String,
        message: String,
    },
}

/// What the client did, for reports and tests.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct ClientCounters {
    pub requests: u64,
    pub throttled: u64,
    pub retries_5xx: u64,
    pub retries_connection: u64,
    pub ambiguous: u64,
    pub seconds_waiting_for_points: f64,
    pub seconds_backing_off: f64,
}

/// How the client behaves; tests shorten the waits and seed the jitter.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub backoff: Backoff,
    /// Expected cost of an operation never answered yet.
    pub default_cost: f64,
    pub timeout: Duration,
    /// Say on stderr why a request is retried and how long until the next attempt (the CLI sets
    /// it unless `--quiet`): with nothing listening, backing off takes about half a minute.
    pub notify_retries: bool,
    /// How long one [`AdminClient::execute`] may take in all, throttle waits included: past it,
    /// and at once when a wait would end past it, the call gives up ([`AdminError::GaveUp`]),
    /// and each attempt's timeout is cut to what is left. `None`: only the attempt budget bounds it.
    pub deadline: Option<Duration>,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            backoff: Backoff::default(),
            default_cost: 10.0,
            timeout: Duration::from_secs(60),
            notify_retries: false,
            deadline: None,
        }
    }
}

/// One attempt's failure, classified.
enum Failure {
    /// The server proved it did not run the request (THROTTLED, 429); wait this long at least.
    NotRun(Duration, String),
    /// The request may or may not have run (5xx, dropped connection, timeout).
    Unknown(String, bool),
    /// The connection could not be opened: nothing was sent.
    NotSent(String),
    Fatal(AdminError),
}

pub struct AdminClient {
    credentials: Credentials,
    agent: ureq::Agent,
    pub pacer: Pacer,
    backoff: Backoff,
    default_cost: f64,
    notify_retries: bool,
    timeout: Duration,
    deadline: Option<Duration>,
    pub counters: ClientCounters,
}

impl std::fmt::Debug for AdminClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminClient")
            .field("credentials", &self.credentials)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

#[derive(serde::Deserialize)]
struct RawResponse {
    data: Option<serde_json::Value>,
    errors: Option<Vec<RawError>>,
    extensions: Option<Extensions>,
}

#[derive(serde::Deserialize)]
struct RawError {
    message: String,
    extensions: Option<ErrorExtensions>,
}

#[derive(serde::Deserialize)]
struct ErrorExtensions {
    code: Option<String>,
}

#[derive(serde::Deserialize)]
struct Extensions {
    cost: Option<QueryCost>,
}

impl AdminClient {
    pub fn new(credentials: Credentials, options: ClientOptions) -> AdminClient {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(options.timeout))
            .http_status_as_error(false)
            .build()
            .into();
        AdminClient {
            credentials,
            agent,
            pacer: Pacer::new(),
            backoff: options.backoff,
            default_cost: options.default_cost,
            notify_retries: options.notify_retries,
            timeout: options.timeout,
            deadline: options.deadline,
            counters: ClientCounters::default(),
        }
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Sends one operation, paced and retried; `operation` names it in errors and in the pacer.
    pub fn execute<Q: GraphQLQuery>(
        &mut self,
        operation: &'static str,
        variables: Q::Variables,
        retry: Retry,
    ) -> Result<Q::ResponseData, AdminError> {
        let body =
            serde_json::to_vec(&Q::build_query(variables)).map_err(|e| AdminError::Decode {
                operation,
                message: e.to_string(),
            })?;
        let mut attempts = 0u32;
        let mut retries = 0u32;
        let deadline = self.deadline.map(|d| Instant::now() + d);
        // Whether waiting `wait` from now would end past the deadline.
        let past = |wait: Duration| deadline.is_some_and(|end| Instant::now() + wait >= end);
        let mut last = String::new();
        loop {
            let delay = self.pacer.delay_for(
                self.pacer.expected_cost(operation, self.default_cost),
                Instant::now(),
            );
            if past(delay) {
                return Err(AdminError::GaveUp {
                    operation,
                    endpoint: redact_query(&self.credentials.endpoint),
                    attempts,
                    last: format!("{last} (deadline reached)"),
                });
            }
            if !delay.is_zero() {
                std::thread::sleep(delay);
                self.counters.seconds_waiting_for_points += delay.as_secs_f64();
                self.pacer.waited += delay;
            }
            attempts += 1;
            self.counters.requests += 1;
            let timeout = deadline.map_or(self.timeout, |end| {
                self.timeout
                    .min(end.saturating_duration_since(Instant::now()))
            });
            let failure = match self.attempt(operation, &body, timeout) {
                Ok(data) => {
                    return serde_json::from_value(data).map_err(|e| AdminError::Decode {
                        operation,
                        message: e.to_string(),
                    });
                }
                Err(failure) => failure,
            };
            let wait;
            (wait, last) = match failure {
                Failure::Fatal(error) => return Err(error),
                Failure::NotRun(wait, why) => {
                    // A throttled request did not run: always safe to send again. THROTTLED
                    // answers do not count against the attempt budget when they carry a
                    // throttle status (the wait is known), only when they do not.
                    self.counters.throttled += 1;
                    if wait.is_zero() {
                        retries += 1;
                        (self.backoff.delay(retries), why)
                    } else {
                        attempts = attempts.saturating_sub(1);
                        (wait, why)
                    }
                }
                Failure::NotSent(why) => {
                    self.counters.retries_connection += 1;
                    retries += 1;
                    (self.backoff.delay(retries), why)
                }
                Failure::Unknown(why, is_5xx) => {
                    if retry == Retry::UnlessAmbiguous {
                        self.counters.ambiguous += 1;
                        return Err(AdminError::Ambiguous {
                            operation,
                            cause: why,
                        });
                    }
                    if is_5xx {
                        self.counters.retries_5xx += 1;
                    } else {
                        self.counters.retries_connection += 1;
                    }
                    retries += 1;
                    (self.backoff.delay(retries), why)
                }
            };
            if !self.backoff.may_retry(attempts) || past(wait) {
                let last = if past(wait) {
                    format!("{last} (deadline reached)")
                } else {
                    last
                };
                return Err(AdminError::GaveUp {
                    operation,
                    endpoint: redact_query(&self.credentials.endpoint),
                    attempts,
                    last,
                });
            }
            let endpoint = redact_query(&self.credentials.endpoint);
            self.back_off(&format!("{operation} at {endpoint}"), attempts, &last, wait);
        }
    }

    fn attempt(
        &mut self,
        operation: &'static str,
        body: &[u8],
        timeout: Duration,
    ) -> Result<serde_json::Value, Failure> {
        let sent = self
            .agent
            .post(&self.credentials.endpoint)
            .config()
            .timeout_global(Some(timeout))
            .build()
            .header("X-Shopify-Access-Token", self.credentials.token.expose())
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .send(body);
        let mut response = match sent {
            Ok(response) => response,
            Err(error) => return Err(classify_transport(error)),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("Retry-After")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0);
        let text = match response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
        {
            Ok(text) => text,
            // The answer was cut: the request may have run.
            Err(error) => {
                return Err(Failure::Unknown(
                    format!("reading the answer: {error}"),
                    false,
                ));
            }
        };
        match status {
            200 => {}
            401 | 403 => {
                return Err(Failure::Fatal(AdminError::Unauthorized {
                    operation,
                    status,
                }));
            }
            429 => {
                let wait = Duration::from_secs_f64(retry_after.unwrap_or(1.0));
                return Err(Failure::NotRun(wait, "HTTP 429".to_string()));
            }
            500..=599 => return Err(Failure::Unknown(format!("HTTP {status}"), true)),
            _ => {
                return Err(Failure::Fatal(AdminError::Http {
                    operation,
                    status,
                    body: text.chars().take(300).collect(),
                }));
            }
        }
        let parsed: RawResponse = serde_json::from_str(&text)
            .map_err(|e| Failure::Unknown(format!("the answer is not GraphQL JSON: {e}"), false))?;
        let now = Instant::now();
        let cost = parsed.extensions.and_then(|e| e.cost);
        if let Some(cost) = &cost {
            self.pacer.observe(operation, cost, now);
        }
        let errors = parsed.errors.unwrap_or_default();
        let throttled = errors
            .iter()
            .any(|e| e.extensions.as_ref().and_then(|x| x.code.as_deref()) == Some("THROTTLED"));
        if throttled {
            // Wait for the points the request needs: the pacer now holds the bucket it reported.
            let wait = cost.map_or(Duration::ZERO, |c| {
                self.pacer
                    .delay_for(c.requested_query_cost.unwrap_or(self.default_cost), now)
            });
            // A throttle status that says the points are there already still needs a moment.
            let wait = if cost.is_some() {
                wait.max(Duration::from_millis(10))
            } else {
                wait
            };
            return Err(Failure::NotRun(wait, "THROTTLED".to_string()));
        }
        if !errors.is_empty() {
            let messages: Vec<String> = errors
                .iter()
                .map(
                    |e| match e.extensions.as_ref().and_then(|x| x.code.as_deref()) {
                        Some(code) => format!("{} ({code})", e.message),
                        None => e.message.clone(),
                    },
                )
                .collect();
            return Err(Failure::Fatal(AdminError::Graphql {
                operation,
                messages: messages.join("; "),
            }));
        }
        if let Some(cost) = &cost {
            self.pacer.spent(cost);
        }
        parsed.data.ok_or(Failure::Fatal(AdminError::Graphql {
            operation,
            messages: "the answer has neither data nor errors".to_string(),
        }))
    }

    /// Waits `wait` before the next attempt at `what`, saying why when asked to
    /// ([`ClientOptions::notify_retries`]).
    fn back_off(&mut self, what: &str, attempts: u32, failure: &str, wait: Duration) {
        if self.notify_retries {
            eprintln!(
                "{what}: attempt {attempts} failed ({failure}); retrying in {:.1} s",
                wait.as_secs_f64()
            );
        }
        self.counters.seconds_backing_off += wait.as_secs_f64();
        std::thread::sleep(wait);
    }

    /// Streams a file (a bulk operation's result) into `out`; returns the bytes copied.
    /// Downloads are retried from the start on failure: results are kept for a week.
    pub fn download(&mut self, url: &str, out: &mut dyn std::io::Write) -> Result<u64, AdminError> {
        let error = |message: String| AdminError::Transfer {
            what: "downloading",
            url: redact_query(url),
            message,
        };
        let mut attempts = 0;
        loop {
            attempts += 1;
            let result = self.agent.get(url).call();
            let failure = match result {
                Ok(response) if response.status().as_u16() == 200 => {
                    let mut reader = response.into_body().into_reader();
                    let mut buffer = Vec::new();
                    // The body is buffered per attempt so that a cut download is not half-written.
                    match reader.read_to_end(&mut buffer) {
                        Ok(_) => {
                            out.write_all(&buffer).map_err(|e| error(e.to_string()))?;
                            return Ok(buffer.len() as u64);
                        }
                        Err(e) => e.to_string(),
                    }
                }
                Ok(response) if response.status().is_server_error() => {
                    format!("HTTP {}", response.status().as_u16())
                }
                Ok(response) => return Err(error(format!("HTTP {}", response.status().as_u16()))),
                Err(e) => e.to_string(),
            };
            if !self.backoff.may_retry(attempts) {
                return Err(error(failure));
            }
            let wait = self.backoff.delay(attempts);
            self.back_off(
                &format!("downloading {}", redact_query(url)),
                attempts,
                &failure,
                wait,
            );
        }
    }

    /// Uploads a staged file as `multipart/form-data` (the POST targets `stagedUploadsCreate`
    /// returns): the target's parameters first, the file last, as the storage service requires.
    pub fn upload_form(
        &mut self,
        url: &str,
        parameters: &[(String, String)],
        file_name: &str,
        content: &[u8],
    ) -> Result<(), AdminError> {
        let boundary = format!("marginwise-{:016x}", rand::random::<u64>());
        let mut body = Vec::with_capacity(content.len() + 1024);
        for (name, value) in parameters {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: text/jsonl\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(content);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let error = |message: String| AdminError::Transfer {
            what: "uploading to",
            url: redact_query(url),
            message,
        };
        let mut attempts = 0;
        loop {
            attempts += 1;
            let result = self
                .agent
                .post(url)
                .header(
                    "Content-Type",
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .send(&body[..]);
            // An upload is idempotent (same key, same bytes): any failure may be retried.
            let failure = match result {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) if response.status().is_server_error() => {
                    format!("HTTP {}", response.status().as_u16())
                }
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    let text = response.body_mut().read_to_string().unwrap_or_default();
                    return Err(error(format!(
                        "HTTP {status}: {}",
                        text.chars().take(300).collect::<String>()
                    )));
                }
                Err(e) => e.to_string(),
            };
            if !self.backoff.may_retry(attempts) {
                return Err(error(failure));
            }
            let wait = self.backoff.delay(attempts);
            self.back_off(
                &format!("uploading to {}", redact_query(url)),
                attempts,
                &failure,
                wait,
            );
        }
    }
}

/// Signed URLs carry their signature in the query string: errors show the path only.
fn redact_query(url: &str) -> String {
    match url.split_once('?') {
        Some((path, _)) => format!("{path}?<redacted>"),
        None => url.to_string(),
    }
}

fn classify_transport(error: ureq::Error) -> Failure {
    match error {
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => {
            Failure::NotSent(error.to_string())
        }
        ureq::Error::Io(ref io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            Failure::NotSent(error.to_string())
        }
        other => Failure::Unknown(other.to_string(), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let credentials =
            Credentials::for_shop("example.myshopify.com", AccessToken::new("shpat_secret"))
                .unwrap_or_else(|e| unreachable!("{e}"));
        let client = AdminClient::new(credentials.clone(), ClientOptions::default());
        for text in [
            format!("{credentials:?}"),
            format!("{client:?}"),
            format!("{}", credentials.token),
        ] {
            assert!(!text.contains("shpat_secret"), "{text}");
        }
        assert_eq!(
            credentials.endpoint,
            "https://example.myshopify.com/admin/api/2026-04/graphql.json"
        );
    }

    #[test]
    fn a_shop_with_a_scheme_or_path_is_refused_with_its_name() {
        for shop in [
            "https://example.myshopify.com",
            "example.myshopify.com/admin",
            "",
        ] {
            let error = Credentials::for_shop(shop, AccessToken::new("t"))
                .err()
                .map(|e| e.to_string());
            assert!(error.is_some(), "{shop}");
        }
    }

    #[test]
    fn only_myshopify_domains_get_the_token() {
        for (shop, domain) in [
            ("example", "example.myshopify.com"),
            ("Example-2.myshopify.com", "example-2.myshopify.com"),
            (" example.myshopify.com/ ", "example.myshopify.com"),
        ] {
            let credentials = Credentials::for_shop(shop, AccessToken::new("t"))
                .unwrap_or_else(|e| unreachable!("{shop}: {e}"));
            assert_eq!(credentials.shop, domain);
        }
        for shop in [
            "example.com",
            "127.0.0.1:1",
            "example.myshopify.com:8080",
            "evil.com#.myshopify.com",
            "-example",
            ".myshopify.com",
        ] {
            assert!(
                matches!(
                    Credentials::for_shop(shop, AccessToken::new("t")),
                    Err(CredentialsError::BadShop(_))
                ),
                "{shop}"
            );
        }
        assert!(matches!(
            Credentials::for_shop("example", AccessToken::new("")),
            Err(CredentialsError::EmptyToken)
        ));
    }

    #[test]
    fn a_local_endpoint_must_be_on_a_loopback_host() {
        for endpoint in [
            "http://127.0.0.1:8080/graphql.json",
            "http://localhost:1/graphql.json",
            "http://[::1]:9/graphql.json",
        ] {
            assert!(
                Credentials::for_local(endpoint, AccessToken::new("t")).is_ok(),
                "{endpoint}"
            );
        }
        for endpoint in [
            // The host is what follows `@`.
            "http://127.0.0.1:1@127.0.0.2:18099/graphql.json",
            "http://127.0.0.1:1@example.com/graphql.json",
            "http://127.0.0.2:8080/graphql.json",
            "http://127.0.0.1.example.com:8080/",
            "https://127.0.0.1:8080/graphql.json",
            "http://127.0.0.1/graphql.json",
            "127.0.0.1:8080",
        ] {
            assert!(
                matches!(
                    Credentials::for_local(endpoint, AccessToken::new("t")),
                    Err(CredentialsError::NotLoopback(_))
                ),
                "{endpoint}"
            );
        }
    }

    #[test]
    fn flags_win_over_the_file() {
        let dir = std::env::temp_dir().join(format!("mw-cred-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join("credentials.json");
        let _ = std::fs::write(
            &file,
            r#"{"shop": "file-shop.myshopify.com", "access_token": "from-file"}"#,
        );
        let resolved = Credentials::resolve(Some("flag-shop.myshopify.com"), None, Some(&file))
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(resolved.shop, "flag-shop.myshopify.com");
        assert_eq!(resolved.token, AccessToken::new("from-file"));
        let _ = std::fs::write(&file, "{ not json shpat_leak");
        let error = Credentials::resolve(None, None, Some(&file))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.contains("line 1") && !error.contains("shpat_leak"),
            "{error}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn signed_urls_lose_their_query_in_errors() {
        assert_eq!(
            redact_query("https://storage/x.jsonl?sig=abc"),
            "https://storage/x.jsonl?<redacted>"
        );
    }
}
