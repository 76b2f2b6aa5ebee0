//! Shopify's mandatory privacy webhooks (`customers/data_request`, `customers/redact`,
//! `shop/redact`), declared in `shopify.app.toml` at `/webhooks/compliance`.
//!
//! What marginwise holds about a customer is their `$app.profile` metafield in the store, the
//! rows the write-back state database keeps about it, their lines in the plan folder
//! ([`local`]), and the store's history `score` reads: their record, their orders and those
//! orders' line items in the bulk export folders `export --out` wrote ([`exports`]), which the
//! handler knows only when given (`--export DIR`, [`HandlerConfig::export_dirs`]). A delivery is
//! handled in this order:
//! 1. the signature is checked against the raw body ([`signature`]); a bad or missing one is
//!    refused (401) before the body is even parsed, and nothing is done;
//! 2. the topic decides: an unknown topic is acknowledged (200) and nothing is done;
//! 3. the shop named by the delivery must be the shop this handler serves (one handler serves one
//!    shop: one set of credentials, one state database; a process serving several shops,
//!    `--shops FILE` ([`shops`]), gives each delivery to the handler of the shop it names,
//!    [`Router`]);
//! 4. the work is done, then the answer is 200. Anything that failed answers 5xx so that Shopify
//!    sends the delivery again (it retries 8 times over 4 hours), which is safe because every
//!    action is idempotent: deleting what is gone, forgetting rows that are not there and
//!    rewriting the same data-request file change nothing.
//!
//! - `customers/redact`: the customer's GID goes on the state database's suppression list first
//!   (so `apply` writes none of their values from then on; the database is created for it when no
//!   `apply` has run yet), then the local rows, plan lines, export lines and
//!   the customer's data-request files go (the state database is opened with `secure_delete` so
//!   the rows are overwritten), then
//!   the metafield through `metafieldsDelete`. Local first, so that a store that keeps failing
//!   cannot keep the local copies alive; the delete runs on every retry anyway. In each export
//!   folder, `customers.jsonl` and `orders.jsonl` are rewritten (streamed, through a temporary
//!   renamed over the file, permissions kept) without the customer's line, every order naming
//!   them or named by `orders_to_redact`, and every line nested under a removed one; a file
//!   without any is read once and not rewritten. The new export a `marginwise refresh` is
//!   writing (or left, when killed) in a folder's `.next` is scrubbed the same way, the plan
//!   temporaries a killed `score` left are removed (a live one's are locked by it and kept),
//!   and every rewrite holds the folder's lock (`folder_lock`), so it never renames a copy of
//!   an old file over a new one. A line that cannot be read is kept and counted
//!   in the outcome (whose it is cannot be known), never a reason to fail. The suppression list
//!   still matters for an export taken before the redaction and kept elsewhere. An orders export
//!   of gigabytes takes longer than Shopify's 5 seconds to rewrite: the delivery is then answered
//!   late and sent again, and the retry reads the files once, finds nothing and answers.
//! - `customers/data_request`: the profile as the store holds it now (read through the same
//!   `nodes` query the write-back reads with), the state rows, plan lines and the customer's
//!   lines in each export folder (their record, their orders and the orders named by
//!   `orders_requested`, with their line items), written as one JSON file under the
//!   data-requests folder for the merchant to send on. Nothing is sent to the customer by this
//!   module.
//! - `shop/redact`: the shop's state database, its plan files, `summary.json`, `report.html`,
//!   leftover redaction temporaries, the plan temporaries of a `score` killed while writing,
//!   its data-request files and the export folders' three files (with an interrupted export's
//!   `.part` files, and the new export an interrupted `marginwise refresh` left in a folder's
//!   `.next`) are deleted (each by name or by the pattern of the names the pipeline gives them;
//!   the data-requests folder and an export folder only when left empty). The store is not asked for anything:
//!   Shopify sends this 48 hours after the app was uninstalled, when the app's access token no
//!   longer works.
//!
//! What it deliberately does not do: it never logs or stores the payload (it carries the
//! customer's email and phone; a parse error names the JSON path and the expected type, never the
//! value), it does not log which customer a request was about, and it keeps no record of
//! deliveries (Shopify's retries and the idempotent actions make one unnecessary).

pub mod command;
pub mod exports;
pub mod local;
pub mod server;
pub mod shops;
pub mod signature;

use std::path::{Path, PathBuf};
use std::time::Duration;

use marginwise_engine::Profile;
use marginwise_engine::format::{NAMESPACE, PROFILE_KEY};

use crate::admin::ops::{self, metafields_delete, read_metafields};
use crate::admin::retry::Backoff;
use crate::admin::{AdminClient, AdminError, ClientOptions, Retry};
use crate::plan::customer_gid;

pub use signature::{AppSecret, SECRET_ENV, SecretError, SignatureError, sign, verify};

/// The path `shopify.app.toml` subscribes the compliance topics to.
pub const COMPLIANCE_PATH: &str = "/webhooks/compliance";
/// The largest body accepted. Compliance payloads are a few hundred bytes; the longest part is
/// the list of order ids (`orders_to_redact`), about 15 bytes each.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// The folder data-request files go to, inside the plan folder, unless given.
pub const DATA_REQUESTS_DIR: &str = "data-requests";

/// Header names, as Shopify sends them (HTTP header names are case-insensitive).
pub const HMAC_HEADER: &str = "X-Shopify-Hmac-Sha256";
pub const TOPIC_HEADER: &str = "X-Shopify-Topic";
pub const SHOP_HEADER: &str = "X-Shopify-Shop-Domain";
pub const WEBHOOK_ID_HEADER: &str = "X-Shopify-Webhook-Id";

#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error("state database {file}: {source}")]
    Sqlite {
        file: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "state database {file} belongs to {recorded}, not {expected}: this process serves another shop's state"
    )]
    OtherShop {
        file: String,
        recorded: String,
        expected: String,
    },
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
}

impl PrivacyError {
    /// 503 when the Admin API failed (it may work on Shopify's next attempt), 500 otherwise.
    pub fn status(&self) -> u16 {
        match self {
            PrivacyError::Admin(_) => 503,
            _ => 500,
        }
    }
}

/// The compliance topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    CustomersDataRequest,
    CustomersRedact,
    ShopRedact,
}

impl Topic {
    pub fn parse(name: &str) -> Option<Topic> {
        match name.trim() {
            "customers/data_request" => Some(Topic::CustomersDataRequest),
            "customers/redact" => Some(Topic::CustomersRedact),
            "shop/redact" => Some(Topic::ShopRedact),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Topic::CustomersDataRequest => "customers/data_request",
            Topic::CustomersRedact => "customers/redact",
            Topic::ShopRedact => "shop/redact",
        }
    }
}

/// One delivery as received: the headers that matter and the raw body.
#[derive(Debug, Clone, Copy, Default)]
pub struct Delivery<'a> {
    pub topic: Option<&'a str>,
    pub shop_domain: Option<&'a str>,
    pub hmac: Option<&'a str>,
    pub webhook_id: Option<&'a str>,
    pub body: &'a [u8],
}

/// What a `customers/redact` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted {
    pub customer_gid: String,
    /// Whether the store held the profile metafield (false: it was gone already).
    pub metafield_deleted: bool,
    pub state_rows_removed: u64,
    pub plan_lines_removed: u64,
    /// The customer's data-request files (of any request) removed from the data-requests folder.
    pub data_request_files_removed: u64,
    /// Orders named by the request (their lines in the export folders go with the customer's).
    pub orders_named: usize,
    /// What went from the export folders given (`--export`).
    pub exports: exports::ExportsScrubbed,
}

/// What a `customers/data_request` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRequestWritten {
    pub customer_gid: String,
    /// Shopify's id of the request, when the payload carries one.
    pub request_id: Option<u64>,
    pub file: PathBuf,
    /// Whether the store holds a profile for the customer.
    pub profile_found: bool,
}

/// What a `shop/redact` removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopRedacted {
    pub files_removed: Vec<PathBuf>,
}

/// The result of handling one delivery; [`Outcome::status`] is the HTTP answer.
#[derive(Debug)]
pub enum Outcome {
    /// The signature is missing or wrong: nothing was read or done.
    Unauthorized(SignatureError),
    /// Signed, but not a payload of its topic: nothing was done.
    Malformed(String),
    /// Signed for a shop this process does not serve: nothing was done.
    OtherShop {
        shop: String,
        served: String,
    },
    /// A topic this handler does not act on: acknowledged, nothing done.
    Ignored {
        topic: String,
    },
    Redacted(Redacted),
    DataRequestWritten(DataRequestWritten),
    ShopRedacted(ShopRedacted),
    /// The work failed; Shopify will send the delivery again.
    Failed(PrivacyError),
}

impl Outcome {
    pub fn status(&self) -> u16 {
        match self {
            Outcome::Unauthorized(_) => 401,
            Outcome::Malformed(_) => 400,
            // Not 2xx, so the delivery shows as failed in the Partner Dashboard: a shop's
            // request nobody handled must not look handled.
            Outcome::OtherShop { .. } => 422,
            Outcome::Ignored { .. }
            | Outcome::Redacted(_)
            | Outcome::DataRequestWritten(_)
            | Outcome::ShopRedacted(_) => 200,
            Outcome::Failed(error) => error.status(),
        }
    }

    /// A short answer body: never any personal data.
    pub fn answer_text(&self) -> &'static str {
        match self {
            Outcome::Unauthorized(_) => "unauthorized",
            Outcome::Malformed(_) => "malformed payload",
            Outcome::OtherShop { .. } => "shop not served here",
            Outcome::Ignored { .. } => "ignored",
            Outcome::Redacted(_) | Outcome::DataRequestWritten(_) | Outcome::ShopRedacted(_) => {
                "ok"
            }
            Outcome::Failed(_) => "failed, retry later",
        }
    }
}

/// The log line: what was done, with counts, Shopify's request ids and folders, never the
/// payload's personal data nor which customer it was about (the server's line names the shop and
/// the webhook id, which is how a delivery is found again).
impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Unauthorized(why) => write!(f, "refused: {why}"),
            Outcome::Malformed(why) => write!(f, "refused: {why}"),
            Outcome::OtherShop { shop, served } => write!(
                f,
                "NOT HANDLED: the delivery is for {shop}, this process serves {served}"
            ),
            Outcome::Ignored { topic } => write!(f, "ignored topic `{topic}`"),
            Outcome::Redacted(r) => {
                write!(
                    f,
                    "redacted a customer: profile metafield {}, {} state rows, {} plan lines and {} data-request files removed ({} orders named)",
                    if r.metafield_deleted {
                        "deleted"
                    } else {
                        "already absent"
                    },
                    r.state_rows_removed,
                    r.plan_lines_removed,
                    r.data_request_files_removed,
                    r.orders_named
                )?;
                let e = &r.exports;
                if e.files_read == 0 {
                    return write!(f, "; no export file read");
                }
                write!(
                    f,
                    "; exports: {} customer lines, {} orders and {} nested lines removed ({} of {} files rewritten)",
                    e.customer_lines_removed,
                    e.order_lines_removed,
                    e.nested_lines_removed,
                    e.files_rewritten,
                    e.files_read
                )?;
                if e.unreadable_lines_kept > 0 {
                    write!(
                        f,
                        "; {} unreadable export lines kept: whose they are is unknown, check them",
                        e.unreadable_lines_kept
                    )?;
                }
                Ok(())
            }
            Outcome::DataRequestWritten(d) => write!(
                f,
                "data request {} written to {} ({}); send it to the customer",
                d.request_id
                    .map_or_else(|| "without an id".to_string(), |id| id.to_string()),
                d.file.parent().unwrap_or(Path::new("")).display(),
                if d.profile_found {
                    "profile found"
                } else {
                    "the store holds no profile"
                }
            ),
            Outcome::ShopRedacted(s) => {
                // Data-request file names carry customer ids: those are counted, not named.
                let (requests, others): (Vec<&PathBuf>, Vec<&PathBuf>) = s
                    .files_removed
                    .iter()
                    .partition(|file| file.to_string_lossy().contains("--customer-"));
                write!(f, "shop data removed: {} files", s.files_removed.len())?;
                for file in others {
                    write!(f, " {}", file.display())?;
                }
                if !requests.is_empty() {
                    write!(f, " and {} data-request files", requests.len())?;
                }
                Ok(())
            }
            Outcome::Failed(error) => write!(f, "FAILED (Shopify will retry): {error}"),
        }
    }
}

/// Where the handler reads and writes.
#[derive(Debug, Clone)]
pub struct HandlerConfig {
    pub secret: AppSecret,
    /// The myshopify domain of the shop served (deliveries for any other are refused).
    pub shop_domain: String,
    /// The plan folder `score` wrote and `apply` applies.
    pub plan_dir: PathBuf,
    /// The write-back state database.
    pub state_file: PathBuf,
    /// Where data-request files go.
    pub data_requests_dir: PathBuf,
    /// The bulk export folders (`export --out`) the customer's lines are removed from and read
    /// for a data request, and whose files `shop/redact` removes. None unless given.
    pub export_dirs: Vec<PathBuf>,
}

impl HandlerConfig {
    /// The defaults `apply` uses: the state in the plan folder, data requests beside it.
    /// The export folders, and the `.next` folder in each where `marginwise refresh` writes a
    /// new export (or left one, when it was killed), where there is one.
    pub fn export_dirs_and_staging(&self) -> Vec<PathBuf> {
        let mut dirs = self.export_dirs.clone();
        for dir in &self.export_dirs {
            let staging = dir.join(crate::refresh::NEXT_EXPORT_DIR);
            if staging.is_dir() {
                dirs.push(staging);
            }
        }
        dirs
    }

    pub fn new(secret: AppSecret, shop_domain: &str, plan_dir: &Path) -> HandlerConfig {
        HandlerConfig {
            secret,
            shop_domain: shop_domain.to_ascii_lowercase(),
            plan_dir: plan_dir.to_path_buf(),
            state_file: plan_dir.join(crate::sync::state::STATE_FILE),
            data_requests_dir: plan_dir.join(DATA_REQUESTS_DIR),
            export_dirs: Vec::new(),
        }
    }
}

/// How long the Admin API work of one delivery may take in all, throttle waits included, so
/// that the answer (503 when it ran out: Shopify sends the delivery again) goes out within
/// Shopify's 5 seconds.
pub const WEBHOOK_ADMIN_DEADLINE: Duration = Duration::from_secs(4);

/// Admin client settings that fit Shopify's 5-second answer limit: one request of at most
/// 2 s, one retry after a quarter of a second, and [`WEBHOOK_ADMIN_DEADLINE`] for everything
/// (a throttled answer whose wait would end past it gives up at once). A delivery that needs
/// longer fails and comes again.
pub fn webhook_client_options() -> ClientOptions {
    ClientOptions {
        backoff: Backoff::new(
            Duration::from_millis(250),
            Duration::from_millis(500),
            2,
            rand::random(),
        ),
        timeout: Duration::from_secs(2),
        deadline: Some(WEBHOOK_ADMIN_DEADLINE),
        // Deleting and reading customers' profile metafields; a token granted without it gets a
        // warning on stderr (the deliveries would fail with the store's access error).
        scopes_needed: vec!["write_customers"],
        ..ClientOptions::default()
    }
}

/// Handles deliveries for one shop.
#[derive(Debug)]
pub struct Handler {
    config: HandlerConfig,
    client: AdminClient,
}

#[derive(serde::Deserialize)]
struct CustomerPayload {
    shop_domain: Option<String>,
    customer: CustomerRef,
    #[serde(default)]
    orders_to_redact: Vec<serde_json::Value>,
    #[serde(default)]
    orders_requested: Vec<serde_json::Value>,
    data_request: Option<DataRequestRef>,
}

/// Only the id is read: the email and phone are never kept.
#[derive(serde::Deserialize)]
struct CustomerRef {
    id: Id,
}

#[derive(serde::Deserialize)]
struct DataRequestRef {
    id: Option<Id>,
}

#[derive(serde::Deserialize)]
struct ShopPayload {
    shop_domain: Option<String>,
}

/// A numeric id, as a JSON number or a string of digits.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Id {
    Number(u64),
    Text(String),
}

impl Id {
    fn value(&self) -> Option<u64> {
        match self {
            Id::Number(n) => Some(*n),
            Id::Text(text) => text.trim().parse().ok(),
        }
        .filter(|n| *n > 0)
    }
}

/// The handlers of every shop a process serves (one, or those of `--shops FILE`), each delivery
/// given to the one of the shop it names.
#[derive(Debug)]
pub struct Router {
    handlers: Vec<Handler>,
}

impl From<Handler> for Router {
    fn from(handler: Handler) -> Router {
        Router {
            handlers: vec![handler],
        }
    }
}

impl Router {
    /// Handlers of distinct shops, at least one.
    pub fn new(handlers: Vec<Handler>) -> Result<Router, String> {
        if handlers.is_empty() {
            return Err("no shop to serve".to_string());
        }
        for (index, handler) in handlers.iter().enumerate() {
            let shop = &handler.config.shop_domain;
            if handlers
                .iter()
                .skip(index + 1)
                .any(|other| other.config.shop_domain == *shop)
            {
                return Err(format!("{shop} is served twice"));
            }
        }
        Ok(Router { handlers })
    }

    pub fn handlers(&self) -> &[Handler] {
        &self.handlers
    }

    /// Handles one delivery: with one shop served, exactly as its handler does; with several,
    /// the signature is checked first (every shop's deliveries are signed with the app's one
    /// secret), then the delivery goes to the handler of the shop its header (else its
    /// payload's `shop_domain`) names, which checks both again.
    pub fn handle(&mut self, delivery: &Delivery<'_>) -> Outcome {
        match self.routes().route(delivery) {
            Ok(index) => match self.handlers.get_mut(index) {
                Some(handler) => handler.handle(delivery),
                None => Outcome::Malformed("no shop is served".to_string()),
            },
            Err(outcome) => outcome,
        }
    }

    /// What routing needs, apart from the handlers.
    pub fn routes(&self) -> Routes {
        Routes {
            secret: self.handlers.first().map(|h| h.config.secret.clone()),
            shops: self
                .handlers
                .iter()
                .map(|h| h.config.shop_domain.clone())
                .collect(),
        }
    }

    /// The routes and the handlers, for a server that gives each handler a thread of its own.
    pub fn into_parts(self) -> (Routes, Vec<Handler>) {
        (self.routes(), self.handlers)
    }
}

/// Which handler of a [`Router`] a delivery goes to.
#[derive(Clone)]
pub struct Routes {
    secret: Option<AppSecret>,
    /// The shop of each handler, in order.
    shops: Vec<String>,
}

impl Routes {
    /// The index of the handler a delivery goes to, or the answer when none takes it (a bad
    /// signature, a topic not acted on, a shop not served). With one shop, always its handler,
    /// which does every check itself.
    pub fn route(&self, delivery: &Delivery<'_>) -> Result<usize, Outcome> {
        let (Some(secret), [_, _, ..]) = (&self.secret, self.shops.as_slice()) else {
            return Ok(0);
        };
        if let Err(why) = verify(secret, delivery.body, delivery.hmac) {
            return Err(Outcome::Unauthorized(why));
        }
        // As one handler does: a topic not acted on is acknowledged, whatever shop it names.
        match delivery.topic.map(|name| (name, Topic::parse(name))) {
            Some((name, None)) => {
                return Err(Outcome::Ignored {
                    topic: name.chars().take(100).collect(),
                });
            }
            None => return Err(Outcome::Malformed(format!("no {TOPIC_HEADER} header"))),
            Some((_, Some(_))) => {}
        }
        let named = match delivery.shop_domain {
            Some(shop) => Some(shop.to_string()),
            None => parse::<ShopPayload>(delivery.body)
                .ok()
                .and_then(|p| p.shop_domain),
        };
        let Some(named) = named.map(|s| s.trim().to_ascii_lowercase()) else {
            return Err(Outcome::Malformed(format!(
                "neither a {SHOP_HEADER} header nor a shop_domain in the payload"
            )));
        };
        self.shops
            .iter()
            .position(|shop| *shop == named)
            .ok_or_else(|| Outcome::OtherShop {
                shop: named.chars().take(255).collect(),
                served: self.shops.join(", ").chars().take(1_000).collect(),
            })
    }

    /// The shop of handler `index`.
    pub fn shop(&self, index: usize) -> &str {
        self.shops.get(index).map_or("-", String::as_str)
    }
}

impl Handler {
    pub fn new(config: HandlerConfig, client: AdminClient) -> Handler {
        Handler { config, client }
    }

    pub fn config(&self) -> &HandlerConfig {
        &self.config
    }

    /// Handles one delivery; never panics, and does nothing before the signature is checked.
    pub fn handle(&mut self, delivery: &Delivery<'_>) -> Outcome {
        if let Err(why) = verify(&self.config.secret, delivery.body, delivery.hmac) {
            return Outcome::Unauthorized(why);
        }
        let Some(topic_name) = delivery.topic else {
            return Outcome::Malformed(format!("no {TOPIC_HEADER} header"));
        };
        let Some(topic) = Topic::parse(topic_name) else {
            return Outcome::Ignored {
                topic: topic_name.chars().take(100).collect(),
            };
        };
        match topic {
            Topic::CustomersRedact | Topic::CustomersDataRequest => {
                let payload: CustomerPayload = match parse(delivery.body) {
                    Ok(payload) => payload,
                    Err(why) => return Outcome::Malformed(format!("{}: {why}", topic.name())),
                };
                if let Some(refused) = self.check_shop(delivery, payload.shop_domain.as_deref()) {
                    return refused;
                }
                let Some(customer_id) = payload.customer.id.value() else {
                    return Outcome::Malformed(format!(
                        "{}: customer.id is not a positive integer",
                        topic.name()
                    ));
                };
                let result = if topic == Topic::CustomersRedact {
                    self.redact_customer(customer_id, &payload.orders_to_redact)
                        .map(Outcome::Redacted)
                } else {
                    let request_id = payload
                        .data_request
                        .as_ref()
                        .and_then(|r| r.id.as_ref())
                        .and_then(Id::value);
                    self.data_request(customer_id, request_id, &payload.orders_requested)
                        .map(Outcome::DataRequestWritten)
                };
                result.unwrap_or_else(Outcome::Failed)
            }
            Topic::ShopRedact => {
                let payload: ShopPayload = match parse(delivery.body) {
                    Ok(payload) => payload,
                    Err(why) => return Outcome::Malformed(format!("shop/redact: {why}")),
                };
                if let Some(refused) = self.check_shop(delivery, payload.shop_domain.as_deref()) {
                    return refused;
                }
                self.redact_shop()
                    .map(Outcome::ShopRedacted)
                    .unwrap_or_else(Outcome::Failed)
            }
        }
    }

    /// The header and the payload must name the shop served (at least one of them must name it).
    fn check_shop(&self, delivery: &Delivery<'_>, payload_shop: Option<&str>) -> Option<Outcome> {
        let named: Vec<String> = [delivery.shop_domain, payload_shop]
            .into_iter()
            .flatten()
            .map(|s| s.trim().to_ascii_lowercase())
            .collect();
        let Some(first) = named.first() else {
            return Some(Outcome::Malformed(format!(
                "neither a {SHOP_HEADER} header nor a shop_domain in the payload"
            )));
        };
        if named.iter().any(|s| s != first) {
            return Some(Outcome::Malformed(format!(
                "the {SHOP_HEADER} header and the payload's shop_domain differ"
            )));
        }
        if *first != self.config.shop_domain {
            return Some(Outcome::OtherShop {
                shop: first.chars().take(255).collect(),
                served: self.config.shop_domain.clone(),
            });
        }
        None
    }

    /// The key the state database is recorded under (what `apply` opens it with).
    fn state_shop(&self) -> String {
        self.client.credentials().shop.clone()
    }

    /// What a killed `marginwise refresh` left in a refresh folder this handler serves (the new
    /// export in `export/.next`, `.part` files included, and plan temporaries), removed while no
    /// run is under way there ([`crate::refresh::when_idle`]); a live run's are its own to scrub.
    fn clear_idle_refresh_leftovers(&self) -> Result<(), PrivacyError> {
        for export in &self.config.export_dirs {
            let Some(refresh_dir) = export
                .parent()
                .filter(|_| export.file_name() == Some(crate::refresh::EXPORT_DIR.as_ref()))
            else {
                continue;
            };
            let plan_dir = refresh_dir.join(crate::refresh::PLAN_DIR);
            let cleared = crate::refresh::when_idle(refresh_dir, || {
                let staging = export.join(crate::refresh::NEXT_EXPORT_DIR);
                match std::fs::remove_dir_all(&staging) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => {
                        return Err(PrivacyError::Io {
                            file: staging.display().to_string(),
                            source,
                        });
                    }
                }
                // Every plan temporary, whether this process may open it or not (a webhook server
                // running as another user cannot tell a live writer's lock on it): no run is under
                // way, and a plain `score` writing here meanwhile fails at its rename.
                if plan_dir == self.config.plan_dir {
                    for file in local::plan_temporaries(&plan_dir)? {
                        local::remove_if_present(&file)?;
                    }
                }
                Ok(())
            });
            match cleared {
                Ok(cleared) => cleared.transpose().map(drop)?,
                // Not a reason to fail the delivery (a retry would meet the same lock): said on
                // stderr, the server's log, for whoever runs it to fix.
                Err(error) => eprintln!(
                    "warning: {error}: cannot tell whether a `marginwise refresh` is running \
                     there, so what a killed run left (export/.next, plan temporaries) was not \
                     cleared; give this server read access to the lock file"
                ),
            }
        }
        Ok(())
    }

    fn redact_customer(
        &mut self,
        customer_id: u64,
        orders_to_redact: &[serde_json::Value],
    ) -> Result<Redacted, PrivacyError> {
        let gid = customer_gid(customer_id);
        let state_file = self.config.state_file.clone();
        // On the suppression list first, before anything is removed: an `apply` running now
        // sends no later batch with this customer's value, and a plan line a later `score` brings
        // back is never written. With no state database yet, one is created to hold the list.
        let mut connection = local::open_or_create_state(&state_file, &self.state_shop())?;
        // The orders named as theirs go on it too (ids only), in the same transaction: a later
        // export may hold them without their customer, and `marginwise refresh` leaves them
        // out of it by these ids.
        let named = exports::Owner::new(customer_id, orders_to_redact);
        let mut owners = vec![gid.clone()];
        let mut orders: Vec<u64> = named.order_ids.iter().copied().collect();
        orders.sort_unstable();
        owners.extend(
            orders
                .iter()
                .map(|order| format!("gid://shopify/Order/{order}")),
        );
        local::suppress_owners(&mut connection, &state_file, &owners)?;
        // The local copies next. A failure here (a full disk, an export folder that cannot be
        // written) does not stop the store's copy from being deleted below: the delivery then
        // answers 5xx and Shopify's retry does the local part again.
        let local = (|| {
            let state_rows_removed = local::forget_owner(&mut connection, &state_file, &gid)?;
            let plan_lines_removed = local::scrub_plan(&self.config.plan_dir, &gid)?;
            local::remove_abandoned_plan_temporaries(&self.config.plan_dir)?;
            self.clear_idle_refresh_leftovers()?;
            let exports = exports::scrub_exports(
                &self.config.export_dirs_and_staging(),
                &exports::Owner::new(customer_id, orders_to_redact),
            )?;
            let mut data_request_files_removed = 0u64;
            for file in local::customer_data_request_files(
                &self.config.data_requests_dir,
                &self.config.shop_domain,
                customer_id,
            )? {
                if local::remove_if_present(&file)? {
                    data_request_files_removed += 1;
                }
            }
            Ok::<_, PrivacyError>((
                state_rows_removed,
                plan_lines_removed,
                exports,
                data_request_files_removed,
            ))
        })();
        drop(connection);
        let deleted = self.delete_profile(&gid);
        let (state_rows_removed, plan_lines_removed, exports, data_request_files_removed) = local?;
        let metafield_deleted = deleted?;
        Ok(Redacted {
            customer_gid: gid,
            metafield_deleted,
            state_rows_removed,
            plan_lines_removed,
            data_request_files_removed,
            orders_named: orders_to_redact.len(),
            exports,
        })
    }

    /// Deletes the customer's profile metafield in the store; whether there was one.
    fn delete_profile(&mut self, gid: &str) -> Result<bool, PrivacyError> {
        let data = self.client.execute::<ops::MetafieldsDelete>(
            "metafieldsDelete",
            metafields_delete::Variables {
                metafields: vec![metafields_delete::MetafieldIdentifierInput {
                    owner_id: gid.to_string(),
                    namespace: NAMESPACE.to_string(),
                    key: PROFILE_KEY.to_string(),
                }],
            },
            // Deleting twice is deleting once.
            Retry::Always,
        )?;
        let payload = data.metafields_delete;
        if let Some(error) = payload.as_ref().and_then(|p| p.user_errors.first()) {
            return Err(PrivacyError::Admin(AdminError::UserErrors {
                operation: "metafieldsDelete",
                message: error.message.clone(),
            }));
        }
        Ok(payload
            .and_then(|p| p.deleted_metafields)
            .is_some_and(|deleted| deleted.iter().any(Option::is_some)))
    }

    fn read_profile(&mut self, gid: &str) -> Result<Option<String>, PrivacyError> {
        let data = self.client.execute::<ops::ReadMetafields>(
            "nodes",
            read_metafields::Variables {
                ids: vec![gid.to_string()],
                namespace: NAMESPACE.to_string(),
                customer_key: PROFILE_KEY.to_string(),
                variant_key: PROFILE_KEY.to_string(),
            },
            Retry::Always,
        )?;
        Ok(data
            .nodes
            .into_iter()
            .flatten()
            .find_map(|node| match node {
                read_metafields::ReadMetafieldsNodes::Customer(c) if c.id == gid => {
                    c.metafield.map(|m| m.value)
                }
                _ => None,
            }))
    }

    fn data_request(
        &mut self,
        customer_id: u64,
        request_id: Option<u64>,
        orders_requested: &[serde_json::Value],
    ) -> Result<DataRequestWritten, PrivacyError> {
        let gid = customer_gid(customer_id);
        let profile = self.read_profile(&gid)?;
        let state_file = self.config.state_file.clone();
        let state_rows = match local::open_state(&state_file, &self.state_shop())? {
            Some(connection) => local::owner_rows(&connection, &state_file, &gid)?,
            None => Vec::new(),
        };
        let plan_lines: Vec<serde_json::Value> = local::plan_lines(&self.config.plan_dir, &gid)?
            .into_iter()
            .map(|(file, line)| serde_json::json!({ "file": file, "line": line }))
            .collect();
        let bulk_exports = exports::customer_lines(
            &self.config.export_dirs_and_staging(),
            &exports::Owner::new(customer_id, orders_requested),
        )?;
        let file = self.config.data_requests_dir.join(format!(
            "{}--customer-{customer_id}--request-{}.json",
            self.config.shop_domain,
            request_id.map_or_else(|| "none".to_string(), |id| id.to_string())
        ));
        let written_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let document = serde_json::json!({
            "about": "What the marginwise app holds about this customer, for the merchant to send on (customers/data_request).",
            "shop_domain": self.config.shop_domain,
            "customer_id": customer_id,
            "customer_gid": gid,
            "data_request_id": request_id,
            "orders_requested": orders_requested.len(),
            "written_at_unix_seconds": written_at,
            "profile_metafield": profile.as_ref().map(|value| serde_json::json!({
                "namespace": NAMESPACE,
                "key": PROFILE_KEY,
                "value": value,
                "meaning": profile_meaning(value),
            })),
            "write_back_state": state_rows,
            "plan": plan_lines,
            "bulk_exports": bulk_exports,
            "orders_note": "bulk_exports holds, for each store export marginwise scores from, the customer's record (customers.jsonl) and their orders with their line items (orders.jsonl), as the store exported them; the scores above are derived from that order history.",
        });
        let bytes = serde_json::to_vec_pretty(&document).map_err(|e| PrivacyError::Io {
            file: file.display().to_string(),
            source: std::io::Error::other(e),
        })?;
        local::write_private(&file, &bytes)?;
        Ok(DataRequestWritten {
            customer_gid: gid,
            request_id,
            file,
            profile_found: profile.is_some(),
        })
    }

    fn redact_shop(&mut self) -> Result<ShopRedacted, PrivacyError> {
        let state_file = self.config.state_file.clone();
        let shop = self.state_shop();
        if !local::state_belongs_to(&state_file, &shop)? {
            // Report the recorded shop through the same error `open_state` gives.
            local::open_state(&state_file, &shop)?;
        }
        let mut candidates = local::state_files(&state_file);
        candidates.extend(
            local::PLAN_FILES
                .iter()
                .map(|name| self.config.plan_dir.join(name)),
        );
        // What `score` writes beside the plan, and the temporaries an interrupted
        // `customers/redact` leaves: named one by one, so that nobody else's file goes.
        candidates.extend(
            [crate::pipeline::SUMMARY_FILE, crate::pipeline::REPORT_FILE]
                .iter()
                .map(|name| self.config.plan_dir.join(name)),
        );
        candidates.extend(
            local::PLAN_FILES
                .iter()
                .map(|name| self.config.plan_dir.join(local::redacting_name(name))),
        );
        // The temporaries of a `score` that was killed while writing the plan (it writes each
        // plan file under a unique name beginning with its own, then renames it).
        candidates.extend(local::plan_temporaries(&self.config.plan_dir)?);
        // The export folders' files, the temporaries of an interrupted export (`.part`) and of
        // an interrupted redaction, and the new export an interrupted `marginwise refresh` left
        // in the folder's `.next`: named one by one too.
        let staging: Vec<PathBuf> = self
            .config
            .export_dirs
            .iter()
            .map(|dir| dir.join(crate::refresh::NEXT_EXPORT_DIR))
            .collect();
        for dir in self.config.export_dirs.iter().chain(&staging) {
            for name in exports::EXPORT_FILES {
                candidates.push(dir.join(name));
                candidates.push(dir.join(format!("{name}.part")));
                candidates.push(dir.join(local::redacting_name(name)));
            }
        }
        let prefix = format!("{}--", self.config.shop_domain);
        match std::fs::read_dir(&self.config.data_requests_dir) {
            Ok(entries) => {
                for entry in entries.flatten() {
                    if entry.file_name().to_string_lossy().starts_with(&prefix) {
                        candidates.push(entry.path());
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(PrivacyError::Io {
                    file: self.config.data_requests_dir.display().to_string(),
                    source,
                });
            }
        }
        let mut files_removed = Vec::new();
        for file in candidates {
            if local::remove_if_present(&file)? {
                files_removed.push(file);
            }
        }
        // The data-requests folder goes too once empty (another shop's files keep it), and so
        // does an export folder (a file the pipeline did not write keeps it).
        for dir in std::iter::once(&self.config.data_requests_dir)
            .chain(&staging)
            .chain(&self.config.export_dirs)
        {
            if local::remove_dir_if_empty(dir)? {
                files_removed.push(dir.clone());
            }
        }
        Ok(ShopRedacted { files_removed })
    }
}

/// Reads a signed payload; a failure says where and what was expected, never the value found
/// (serde's messages quote it, and it may be the customer's email or phone).
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let parsed: Result<T, _> = serde_path_to_error::deserialize(&mut deserializer);
    let value = parsed.map_err(|error| {
        let path = error.path().to_string();
        let inner = error.inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let message = inner.to_string();
                // "invalid type: string \"...\", expected u64 at line 1 column 9": keep what
                // follows `expected` (from the payload's type, not its value).
                let what = if message.starts_with("missing field") {
                    message
                        .split(" at line")
                        .next()
                        .unwrap_or_default()
                        .to_string()
                } else if let Some((_, expected)) = message.rsplit_once(", expected ") {
                    format!(
                        "expected {}",
                        expected.split(" at line").next().unwrap_or_default()
                    )
                } else {
                    "a value of the wrong type".to_string()
                };
                format!("at `{path}`: {what}")
            }
            _ => format!(
                "not a JSON document (line {}, column {})",
                inner.line(),
                inner.column()
            ),
        }
    })?;
    deserializer.end().map_err(|e| {
        format!(
            "not a JSON document (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    Ok(value)
}

/// The profile's fields in words, for the customer; `None` when the value does not decode.
fn profile_meaning(value: &str) -> Option<serde_json::Value> {
    let profile = Profile::decode(value).ok()?;
    Some(serde_json::json!({
        "segment": profile.segment.code(),
        "predicted_12_month_value_minor_units": profile.clv_minor,
        "churn_risk_basis_points": profile.churn_bps,
        "expected_orders_next_12_months_thousandths": profile.expected_orders_12m_milli,
        "share_of_orders_with_a_discount_basis_points": profile.discount_share_bps,
        "probability_still_a_customer_basis_points": profile.p_alive_bps,
    }))
}
