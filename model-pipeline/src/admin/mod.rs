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
//! The token is the one given, or one the client gets itself with the OAuth client credentials
//! grant: a Dev Dashboard app installed on a store of its own organization exchanges its client
//! id and secret (`POST https://<shop>.myshopify.com/admin/oauth/access_token`, the endpoint's
//! own origin and nowhere else) before the first request, and again once when a request is
//! refused with HTTP 401 (such a token lasts 24 hours; a refused request did not run).
//!
//! The access token and the client secret never appear in `Debug` output, errors or logs.

pub mod oauth;
pub mod ops;
pub mod pacing;
pub mod retry;
pub mod token_file;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use graphql_client::GraphQLQuery;

use pacing::{Pacer, QueryCost};
use retry::Backoff;
use token_file::StoredTokens;

/// The Admin API version the subset and the operations are written against.
pub const API_VERSION: &str = "2026-04";
/// Environment variables read when the flags are absent.
pub const SHOP_ENV: &str = "SHOPIFY_SHOP";
pub const TOKEN_ENV: &str = "SHOPIFY_ACCESS_TOKEN";
pub const CLIENT_ID_ENV: &str = "SHOPIFY_CLIENT_ID";
pub const CLIENT_SECRET_ENV: &str = "SHOPIFY_CLIENT_SECRET";
/// The path of the client credentials grant, on the GraphQL endpoint's origin.
pub const TOKEN_PATH: &str = "/admin/oauth/access_token";

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

/// A Dev Dashboard app's client id and secret, exchanged for an access token with the client
/// credentials grant. Its `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    client_id: String,
    client_secret: String,
}

impl ClientCredentials {
    pub fn new(
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> ClientCredentials {
        ClientCredentials {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
        }
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The secret itself, for signature checks (`marginwise auth` checks the callback's).
    pub fn secret(&self) -> &str {
        &self.client_secret
    }

    fn is_empty(&self) -> bool {
        self.client_id.trim().is_empty() || self.client_secret.trim().is_empty()
    }

    /// `text` (an answer quoted in an error) with every occurrence of the secret taken out.
    fn redact(&self, text: &str) -> String {
        if self.client_secret.is_empty() {
            return text.to_string();
        }
        text.replace(&self.client_secret, "<redacted>")
    }
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &format_args!("<redacted>"))
            .finish()
    }
}

/// How requests are authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// A token given by the user (flag, credentials file, environment).
    Token(AccessToken),
    /// The app's client id and secret: the client gets its token with the grant.
    ClientCredentials(ClientCredentials),
    /// The tokens `marginwise auth` wrote into a credentials file: the access token is renewed
    /// with the refresh token, and the new ones written back.
    Refreshing(RefreshingToken),
}

/// An expiring offline token from the authorization code grant, kept in `file`, with the app's
/// client id and secret that renew it.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshingToken {
    pub file: PathBuf,
    pub client: ClientCredentials,
    pub tokens: StoredTokens,
}

impl std::fmt::Debug for RefreshingToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshingToken")
            .field("file", &self.file)
            .field("client", &self.client)
            .field("tokens", &self.tokens)
            .finish()
    }
}

/// How long before its expiry an access token is renewed: a request sent with a token about to
/// expire could be refused halfway through a run.
const RENEW_MARGIN: jiff::SignedDuration = jiff::SignedDuration::from_secs(120);

impl From<AccessToken> for Auth {
    fn from(token: AccessToken) -> Auth {
        Auth::Token(token)
    }
}

impl From<ClientCredentials> for Auth {
    fn from(client: ClientCredentials) -> Auth {
        Auth::ClientCredentials(client)
    }
}

impl Auth {
    fn check(self) -> Result<Auth, CredentialsError> {
        match &self {
            Auth::Token(token) if token.is_empty() => Err(CredentialsError::EmptyToken),
            Auth::ClientCredentials(client) if client.is_empty() => {
                Err(CredentialsError::EmptyClientCredentials)
            }
            Auth::Refreshing(held) if held.client.is_empty() => {
                Err(CredentialsError::EmptyClientCredentials)
            }
            _ => Ok(self),
        }
    }
}

/// Where to send requests and how to authenticate them.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The GraphQL endpoint (`https://<shop>.myshopify.com/admin/api/2026-04/graphql.json`).
    pub endpoint: String,
    /// What the state database is keyed by: the shop domain, or the endpoint of a local store.
    pub shop: String,
    pub auth: Auth,
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error(
        "no shop given: pass --shop <name>.myshopify.com, set {SHOP_ENV}, or use --credentials <file>"
    )]
    MissingShop,
    #[error(
        "no access token given: pass --token, set {TOKEN_ENV}, or use --credentials <file>; or give \
         the app's client id and secret ({CLIENT_ID_ENV} and {CLIENT_SECRET_ENV}, or the file's \
         client_id and client_secret) to get one"
    )]
    MissingToken,
    #[error(
        "a client id is given but no client secret: set {CLIENT_SECRET_ENV} or the credentials file's client_secret"
    )]
    MissingClientSecret,
    #[error(
        "a client secret is given but no client id: set {CLIENT_ID_ENV} or the credentials file's client_id"
    )]
    MissingClientId,
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
    #[error("the client id or the client secret is empty")]
    EmptyClientCredentials,
    #[error(
        "credentials file {0} holds a refresh token, and renewing it takes the app's client id and \
         secret: set {CLIENT_ID_ENV} and {CLIENT_SECRET_ENV}, or the file's client_id and \
         client_secret"
    )]
    RefreshWithoutClient(String),
    #[error(
        "no client id and secret given: set {CLIENT_ID_ENV} and {CLIENT_SECRET_ENV} (the app's \
         Settings in the Dev Dashboard), or the credentials file's client_id and client_secret"
    )]
    MissingClient,
}

/// The credentials file: `{"shop": "example.myshopify.com", "access_token": "shpat_..."}`, or
/// `client_id` and `client_secret` instead of `access_token`. Blank values count as absent.
#[derive(serde::Deserialize)]
struct CredentialsFile {
    shop: Option<String>,
    access_token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    refresh_token: Option<String>,
    /// Where it was read from; the file `marginwise auth` wrote is written back on renewal.
    #[serde(skip)]
    path: PathBuf,
}

impl CredentialsFile {
    fn read(path: &Path) -> Result<CredentialsFile, CredentialsError> {
        let error = |message: String| CredentialsError::File {
            file: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        // The parse error may quote the file, which holds secrets: name the line only.
        let parsed: CredentialsFile = serde_json::from_str(&text).map_err(|e| {
            error(format!(
                "not a JSON object with \"shop\" and \"access_token\" (or \"client_id\" and \
                 \"client_secret\") (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let blank = |value: Option<String>| value.filter(|v| !v.trim().is_empty());
        Ok(CredentialsFile {
            shop: blank(parsed.shop),
            access_token: blank(parsed.access_token),
            client_id: blank(parsed.client_id),
            client_secret: blank(parsed.client_secret),
            refresh_token: blank(parsed.refresh_token),
            path: path.to_path_buf(),
        })
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A token wins wherever it comes from (flag, file, environment); only without one are the
/// app's client id and secret (file, then environment, each on its own) used to get one. A
/// file's token with a refresh token beside it is renewed with them.
fn resolve_auth(
    token: Option<&str>,
    file: Option<&CredentialsFile>,
) -> Result<Auth, CredentialsError> {
    if let Some(token) = token {
        return Ok(Auth::Token(AccessToken::new(token)));
    }
    if let Some(file) = file.filter(|f| f.access_token.is_none() && f.refresh_token.is_some()) {
        return Err(CredentialsError::File {
            file: file.path.display().to_string(),
            message: "it holds a refresh_token but no access_token: run `marginwise auth` again"
                .to_string(),
        });
    }
    if let Some(file) = file.filter(|f| f.access_token.is_some() && f.refresh_token.is_some()) {
        let client = app_client(Some(file))?.ok_or_else(|| {
            CredentialsError::RefreshWithoutClient(file.path.display().to_string())
        })?;
        let tokens = token_file::read_tokens(&file.path)
            .map_err(|e| CredentialsError::File {
                file: e.file,
                message: e.message,
            })?
            .ok_or(CredentialsError::MissingToken)?;
        return Ok(Auth::Refreshing(RefreshingToken {
            file: file.path.clone(),
            client,
            tokens,
        }));
    }
    let token = file
        .and_then(|f| f.access_token.clone())
        .or_else(|| env(TOKEN_ENV));
    if let Some(token) = token {
        return Ok(Auth::Token(AccessToken::new(token)));
    }
    app_client(file)?
        .map(Auth::ClientCredentials)
        .ok_or(CredentialsError::MissingToken)
}

/// The app's client id and secret from the file, else the environment, each on its own; `None`
/// when neither is given anywhere.
fn app_client(
    file: Option<&CredentialsFile>,
) -> Result<Option<ClientCredentials>, CredentialsError> {
    let client_id = file
        .and_then(|f| f.client_id.clone())
        .or_else(|| env(CLIENT_ID_ENV));
    let client_secret = file
        .and_then(|f| f.client_secret.clone())
        .or_else(|| env(CLIENT_SECRET_ENV));
    match (client_id, client_secret) {
        (Some(id), Some(secret)) => Ok(Some(ClientCredentials::new(id, secret))),
        (Some(_), None) => Err(CredentialsError::MissingClientSecret),
        (None, Some(_)) => Err(CredentialsError::MissingClientId),
        (None, None) => Ok(None),
    }
}

/// The app's client id and secret for `marginwise auth` (file, then environment), required.
pub fn resolve_app_client(file: Option<&Path>) -> Result<ClientCredentials, CredentialsError> {
    // The file `auth` writes may not exist yet.
    let from_file = match file {
        Some(path) if path.exists() => Some(CredentialsFile::read(path)?),
        _ => None,
    };
    let client = app_client(from_file.as_ref())?.ok_or(CredentialsError::MissingClient)?;
    if client.is_empty() {
        return Err(CredentialsError::EmptyClientCredentials);
    }
    Ok(client)
}

/// The shop's `<name>.myshopify.com` domain, from that domain or just `<name>`.
pub fn shop_domain(shop: &str) -> Result<String, CredentialsError> {
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
    Ok(format!("{name}.myshopify.com"))
}

/// The `shop` a credentials file names, if any.
pub fn file_shop(path: &Path) -> Result<Option<String>, CredentialsError> {
    Ok(CredentialsFile::read(path)?.shop)
}

/// The shop for `marginwise auth`: the flag, else the file's `shop` (when the file exists),
/// else the environment.
pub fn resolve_shop(shop: Option<&str>, file: Option<&Path>) -> Result<String, CredentialsError> {
    let from_file = match file {
        Some(path) if path.exists() => file_shop(path)?,
        _ => None,
    };
    let shop = shop
        .map(str::to_string)
        .or(from_file)
        .or_else(|| env(SHOP_ENV))
        .ok_or(CredentialsError::MissingShop)?;
    shop_domain(&shop)
}

impl Credentials {
    /// For a shop domain: the Admin GraphQL endpoint of [`API_VERSION`].
    ///
    /// The token goes to Shopify only: the shop is its `<name>.myshopify.com` domain, or just
    /// `<name>` (a custom domain is the storefront, not the Admin API).
    pub fn for_shop(shop: &str, auth: impl Into<Auth>) -> Result<Credentials, CredentialsError> {
        let shop = shop_domain(shop)?;
        let auth = auth.into().check()?;
        Ok(Credentials {
            endpoint: format!("https://{shop}/admin/api/{API_VERSION}/graphql.json"),
            shop: shop.to_string(),
            auth,
        })
    }

    /// For a local stand-in of the Admin API (tests, the demo): a plain-HTTP endpoint on a
    /// loopback address only, so a token is never sent in clear text over a network.
    ///
    /// The URL is parsed, and its host is what is checked: `http://127.0.0.1:1@example.com/` is
    /// refused (everything before `@` is user information, and the host is `example.com`).
    pub fn for_local(
        endpoint: &str,
        auth: impl Into<Auth>,
    ) -> Result<Credentials, CredentialsError> {
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
        let auth = auth.into().check()?;
        Ok(Credentials {
            endpoint: endpoint.to_string(),
            shop: endpoint.to_string(),
            auth,
        })
    }

    /// Where the client credentials grant goes: [`TOKEN_PATH`] on the endpoint's own scheme,
    /// host and port (`https://<shop>.myshopify.com`, or a local stand-in's loopback origin).
    pub fn token_url(&self) -> Option<String> {
        let uri = self.endpoint.parse::<ureq::http::Uri>().ok()?;
        let scheme = uri.scheme_str()?;
        let authority = uri.authority()?;
        Some(format!("{scheme}://{authority}{TOKEN_PATH}"))
    }

    /// For a local stand-in's endpoint, the token or client credentials from the flag, the
    /// file (its `shop` is not used) or the environment, as [`Credentials::resolve`] finds them.
    pub fn resolve_local(
        endpoint: &str,
        token: Option<&str>,
        file: Option<&Path>,
    ) -> Result<Credentials, CredentialsError> {
        let from_file = file.map(CredentialsFile::read).transpose()?;
        Credentials::for_local(endpoint, resolve_auth(token, from_file.as_ref())?)
    }

    /// Flags first, then the credentials file, then the environment; a token from any of them
    /// before the app's client id and secret.
    pub fn resolve(
        shop: Option<&str>,
        token: Option<&str>,
        file: Option<&Path>,
    ) -> Result<Credentials, CredentialsError> {
        let from_file = file.map(CredentialsFile::read).transpose()?;
        let shop = shop
            .map(str::to_string)
            .or_else(|| from_file.as_ref().and_then(|f| f.shop.clone()))
            .or_else(|| env(SHOP_ENV))
            .ok_or(CredentialsError::MissingShop)?;
        let credentials = Credentials::for_shop(&shop, resolve_auth(token, from_file.as_ref())?)?;
        // A refresh token goes to the shop that issued it and nowhere else.
        if let (Auth::Refreshing(held), Some(issued_by)) = (
            &credentials.auth,
            from_file.as_ref().and_then(|f| f.shop.as_deref()),
        ) && shop_domain(issued_by)? != credentials.shop
        {
            return Err(CredentialsError::File {
                file: held.file.display().to_string(),
                message: format!(
                    "its tokens are {issued_by}'s, not {}'s: give that shop, or run `marginwise \
                     auth` for this one with another file",
                    credentials.shop
                ),
            });
        }
        Ok(credentials)
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
    /// The shop refused a grant: `what` was sent (the app's client id and secret, a refresh
    /// token, an authorization code); `detail` is Shopify's `error` and `error_description`
    /// (never a secret), `hint` what the status usually means.
    #[error("{shop} refused {what} (HTTP {status}{detail}){hint}")]
    GrantRefused {
        shop: String,
        what: &'static str,
        status: u16,
        detail: String,
        hint: &'static str,
    },
    #[error("getting an access token from {shop} with {what}: {message}")]
    Grant {
        shop: String,
        what: &'static str,
        message: String,
    },
}

/// The three grants the client sends to the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GrantKind {
    ClientCredentials,
    RefreshToken,
    AuthorizationCode,
}

impl GrantKind {
    fn what(self) -> &'static str {
        match self {
            GrantKind::ClientCredentials => "the app's client id and secret",
            GrantKind::RefreshToken => "the refresh token",
            GrantKind::AuthorizationCode => "the authorization code",
        }
    }

    /// What a 400, 401 or 403 usually means.
    fn hint(self) -> &'static str {
        match self {
            GrantKind::ClientCredentials => GRANT_REFUSED_HINT,
            GrantKind::RefreshToken => REFRESH_REFUSED_HINT,
            GrantKind::AuthorizationCode => CODE_REFUSED_HINT,
        }
    }
}

/// What a refused client credentials grant usually means.
const GRANT_REFUSED_HINT: &str = ": the app may not be installed on that store, or the client id \
     or secret is wrong (Dev Dashboard, the app's Settings); the client credentials grant works \
     only for stores owned by the app's own organization";

/// What a refused refresh token usually means.
const REFRESH_REFUSED_HINT: &str = ": the refresh token expired or was revoked (the app was \
     uninstalled, or its secret rotated): run `marginwise auth` again to get new tokens";

/// What a refused authorization code usually means.
const CODE_REFUSED_HINT: &str = ": a code works once and for a short time, and only with the \
     client id and secret of the app that asked for it: run `marginwise auth` again";

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
    /// Scopes the command needs: when a token from the client credentials grant comes with a
    /// `scope` that lacks one (a `write_` scope also grants its `read_`), a warning names it on
    /// stderr. Nothing is refused: the requests that need it will be.
    pub scopes_needed: Vec<&'static str>,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            backoff: Backoff::default(),
            default_cost: 10.0,
            timeout: Duration::from_secs(60),
            notify_retries: false,
            deadline: None,
            scopes_needed: Vec::new(),
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
    /// The token requests carry: the given one, or the last one the grant returned (`None`
    /// until the first request when it comes from the grant).
    token: Option<AccessToken>,
    /// When `token` expires, for a token renewed with a refresh token.
    token_expires_at: Option<jiff::Timestamp>,
    /// The `scope` of the last token the grant returned.
    granted_scope: Option<String>,
    scopes_needed: Vec<&'static str>,
    /// Tokens obtained with the client credentials grant.
    pub token_exchanges: u64,
    /// Tokens renewed with a refresh token (by this client; one another process renewed and
    /// this client took from the file is not counted).
    pub token_refreshes: u64,
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
            // The token goes to the endpoint and nowhere else: ureq would follow a redirect with
            // `X-Shopify-Access-Token` (it strips only standard authorization headers), and the
            // Admin API has no reason to send one, so a 3xx is an error.
            .max_redirects(0)
            .build()
            .into();
        let (token, token_expires_at) = match &credentials.auth {
            Auth::Token(token) => (Some(token.clone()), None),
            Auth::ClientCredentials(_) => (None, None),
            Auth::Refreshing(held) => (
                Some(AccessToken::new(held.tokens.access_token.clone())),
                held.tokens.access_token_expires_at,
            ),
        };
        AdminClient {
            credentials,
            token,
            token_expires_at,
            granted_scope: None,
            scopes_needed: options.scopes_needed,
            token_exchanges: 0,
            token_refreshes: 0,
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

    /// The `scope` of the last token the client credentials grant returned.
    pub fn granted_scope(&self) -> Option<&str> {
        self.granted_scope.as_deref()
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
        let expiring = self
            .token_expires_at
            .is_some_and(|at| jiff::Timestamp::now() + RENEW_MARGIN >= at);
        if self.token.is_none() || expiring {
            self.renew(deadline)?;
        }
        // A token from a grant expires (24 hours, or one hour when renewed with a refresh
        // token): one refused with 401 is renewed, once per request (a second 401 is not about
        // age).
        let mut exchanged_again = false;
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
                Failure::Fatal(AdminError::Unauthorized { status: 401, .. })
                    if !exchanged_again
                        && matches!(
                            self.credentials.auth,
                            Auth::ClientCredentials(_) | Auth::Refreshing(_)
                        ) =>
                {
                    // INVARIANT: a request refused with 401 did not run, so sending it again
                    // with a new token cannot apply it twice.
                    exchanged_again = true;
                    attempts = attempts.saturating_sub(1);
                    self.renew(deadline)?;
                    continue;
                }
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
        // INVARIANT: `execute` got a token before the first attempt.
        let Some(token) = &self.token else {
            return Err(Failure::Fatal(AdminError::Grant {
                shop: self.credentials.shop.clone(),
                what: GrantKind::ClientCredentials.what(),
                message: format!("{operation}: no token was obtained before the request"),
            }));
        };
        let sent = self
            .agent
            .post(&self.credentials.endpoint)
            .config()
            .timeout_global(Some(timeout))
            .build()
            .header("X-Shopify-Access-Token", token.expose())
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .send(body);
        let mut response = match sent {
            Ok(response) => response,
            Err(error) => return Err(classify_transport(error)),
        };
        let status = response.status().as_u16();
        let retry_after = retry_after_seconds(&response);
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

    /// Gets a new token the way the credentials allow: the client credentials grant, or the
    /// refresh token; nothing to do with a given token.
    fn renew(&mut self, deadline: Option<Instant>) -> Result<(), AdminError> {
        match &self.credentials.auth {
            Auth::Token(_) => Ok(()),
            Auth::ClientCredentials(_) => self.exchange(deadline),
            Auth::Refreshing(_) => self.refresh(deadline),
        }
    }

    /// The token endpoint on the GraphQL endpoint's own origin.
    fn grant_url(&self, kind: GrantKind) -> Result<String, AdminError> {
        self.credentials
            .token_url()
            .ok_or_else(|| AdminError::Grant {
                shop: self.credentials.shop.clone(),
                what: kind.what(),
                message: format!(
                    "the endpoint {} has no origin to send it to",
                    redact_query(&self.credentials.endpoint)
                ),
            })
    }

    /// Gets a token with the client credentials grant.
    fn exchange(&mut self, deadline: Option<Instant>) -> Result<(), AdminError> {
        let Auth::ClientCredentials(client) = &self.credentials.auth else {
            return Ok(());
        };
        let client = client.clone();
        let shop = self.credentials.shop.clone();
        let kind = GrantKind::ClientCredentials;
        let url = self.grant_url(kind)?;
        let granted = self.grant(
            &url,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", client.client_id.as_str()),
                ("client_secret", client.client_secret.as_str()),
            ],
            &client,
            kind,
            deadline,
        )?;
        self.token_exchanges += 1;
        // Said once: a later exchange grants what the first did.
        if self.token_exchanges == 1 {
            self.warn_missing_scopes(&shop, granted.scope.as_deref());
        }
        self.token = Some(AccessToken::new(granted.access_token));
        self.granted_scope = granted.scope;
        Ok(())
    }

    /// Warns on stderr when `scope` lacks one this command needs.
    fn warn_missing_scopes(&self, shop: &str, scope: Option<&str>) {
        let missing = scope
            .map(|scope| missing_scopes(scope, &self.scopes_needed))
            .unwrap_or_default();
        if !missing.is_empty() {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "warning: the token {shop} granted lacks {}, which this command needs \
                 (granted: {}); its requests will be refused until the app's access \
                 scopes (shopify.app.toml) include it in a released version",
                missing.join(", "),
                scope.unwrap_or_default()
            );
        }
    }

    /// Renews the access token `marginwise auth` stored, under the file's lock: a token another
    /// process already renewed is taken from the file; otherwise the refresh token is spent and
    /// the new tokens are written to the file before the new access token is used (Shopify keeps
    /// the old refresh token valid until its replacement is used, so a failed write loses
    /// nothing).
    fn refresh(&mut self, deadline: Option<Instant>) -> Result<(), AdminError> {
        let Auth::Refreshing(held) = &self.credentials.auth else {
            return Ok(());
        };
        let held = held.clone();
        let shop = self.credentials.shop.clone();
        let kind = GrantKind::RefreshToken;
        let grant_error = |message: String| AdminError::Grant {
            shop: shop.clone(),
            what: kind.what(),
            message,
        };
        let _lock = token_file::lock(&held.file).map_err(|e| grant_error(e.to_string()))?;
        let current = token_file::read_tokens(&held.file)
            .map_err(|e| grant_error(e.to_string()))?
            .ok_or_else(|| {
                grant_error(format!(
                    "{} no longer holds an access token: run `marginwise auth` again",
                    held.file.display()
                ))
            })?;
        let now = jiff::Timestamp::now();
        let using = self.token.as_ref().map(AccessToken::expose);
        if using != Some(current.access_token.as_str())
            && !current.access_token_expiring(now, RENEW_MARGIN)
        {
            self.token = Some(AccessToken::new(current.access_token));
            self.token_expires_at = current.access_token_expires_at;
            self.granted_scope = current.scope;
            return Ok(());
        }
        let Some(refresh_token) = current.refresh_token.clone() else {
            return Err(grant_error(format!(
                "{} holds no refresh token to renew the access token with: run `marginwise auth` \
                 again",
                held.file.display()
            )));
        };
        if let Some(at) = current.refresh_token_expires_at.filter(|at| *at <= now) {
            return Err(grant_error(format!(
                "the refresh token in {} expired at {at}: run `marginwise auth` again",
                held.file.display()
            )));
        }
        let url = self.grant_url(kind)?;
        let client = held.client.clone();
        let granted = self.grant(
            &url,
            &[
                ("client_id", client.client_id.as_str()),
                ("client_secret", client.client_secret.as_str()),
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token.as_str()),
            ],
            &client,
            kind,
            deadline,
        )?;
        // An answer without a new refresh token (or a blank one) leaves the old one in force
        // (RFC 6749, 6).
        let mut renewed = granted.into_tokens(jiff::Timestamp::now());
        if renewed.refresh_token.is_none() {
            renewed.refresh_token = current.refresh_token;
            renewed.refresh_token_expires_at = current.refresh_token_expires_at;
        }
        token_file::write_tokens(&held.file, None, &renewed).map_err(|e| {
            grant_error(format!(
                "the renewed tokens could not be saved, so they are not used ({e}); the refresh \
                 token in the file stays valid until a renewed token is used"
            ))
        })?;
        self.token_refreshes += 1;
        self.token = Some(AccessToken::new(renewed.access_token));
        self.token_expires_at = renewed.access_token_expires_at;
        self.granted_scope = renewed.scope;
        Ok(())
    }

    /// Exchanges the code of an approved authorization code grant for an expiring offline
    /// token and its refresh token (`expiring=1`). The credentials must be the app's client id
    /// and secret. Warns on stderr when the granted scopes lack what the client was built
    /// needing.
    pub fn authorize_code(
        &mut self,
        code: &str,
        deadline: Option<Instant>,
    ) -> Result<StoredTokens, AdminError> {
        let kind = GrantKind::AuthorizationCode;
        let Auth::ClientCredentials(client) = &self.credentials.auth else {
            return Err(AdminError::Grant {
                shop: self.credentials.shop.clone(),
                what: kind.what(),
                message: "exchanging a code takes the app's client id and secret".to_string(),
            });
        };
        let client = client.clone();
        let url = self.grant_url(kind)?;
        let granted = self.grant(
            &url,
            &[
                ("client_id", client.client_id.as_str()),
                ("client_secret", client.client_secret.as_str()),
                ("code", code),
                ("expiring", "1"),
            ],
            &client,
            kind,
            deadline,
        )?;
        let shop = self.credentials.shop.clone();
        self.warn_missing_scopes(&shop, granted.scope.as_deref());
        Ok(granted.into_tokens(jiff::Timestamp::now()))
    }

    /// Sends one grant to the token endpoint, retried like a read (connection errors, 5xx,
    /// 429) within the attempt budget and `deadline`.
    fn grant(
        &mut self,
        url: &str,
        form: &[(&str, &str)],
        client: &ClientCredentials,
        kind: GrantKind,
        deadline: Option<Instant>,
    ) -> Result<Granted, AdminError> {
        let shop = self.credentials.shop.clone();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let timeout = deadline.map_or(self.timeout, |end| {
                self.timeout
                    .min(end.saturating_duration_since(Instant::now()))
            });
            let (why, wait) = match self.grant_once(url, form, client, &shop, kind, timeout) {
                Ok(granted) => return Ok(granted),
                Err(GrantFailure::Refused(error)) => return Err(error),
                Err(GrantFailure::Retry(why, wait)) => (why, wait),
            };
            let wait = wait.unwrap_or_else(|| self.backoff.delay(attempts));
            let past = deadline.is_some_and(|end| Instant::now() + wait >= end);
            if !self.backoff.may_retry(attempts) || past {
                let reached = if past { " (deadline reached)" } else { "" };
                return Err(AdminError::Grant {
                    shop,
                    what: kind.what(),
                    message: format!("gave up after {attempts} attempts, last: {why}{reached}"),
                });
            }
            self.back_off(
                &format!("getting an access token from {shop}"),
                attempts,
                &why,
                wait,
            );
        }
    }

    /// One grant: form-encoded, as Shopify's guide shows; redirects are not followed, so
    /// the secret goes to the endpoint's origin only.
    fn grant_once(
        &self,
        url: &str,
        form: &[(&str, &str)],
        client: &ClientCredentials,
        shop: &str,
        kind: GrantKind,
        timeout: Duration,
    ) -> Result<Granted, GrantFailure> {
        // Everything sent that is secret, kept out of what an error quotes.
        let secrets: Vec<&str> = form
            .iter()
            .filter(|(name, _)| ["client_secret", "code", "refresh_token"].contains(name))
            .map(|(_, value)| *value)
            .collect();
        let sent = self
            .agent
            .post(url)
            .config()
            .timeout_global(Some(timeout))
            .max_redirects(0)
            .build()
            .header("Accept", "application/json")
            .send_form(form.iter().copied());
        let mut response = match sent {
            Ok(response) => response,
            Err(error) => return Err(GrantFailure::Retry(client.redact(&error.to_string()), None)),
        };
        let status = response.status().as_u16();
        let retry_after = retry_after_seconds(&response).map(Duration::from_secs_f64);
        let text = match response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_string()
        {
            Ok(text) => text,
            Err(error) => {
                return Err(GrantFailure::Retry(
                    format!("reading the answer: {}", client.redact(&error.to_string())),
                    None,
                ));
            }
        };
        let refused = |message: String| {
            GrantFailure::Refused(AdminError::Grant {
                shop: shop.to_string(),
                what: kind.what(),
                message,
            })
        };
        match status {
            200 => {}
            429 => {
                return Err(GrantFailure::Retry(
                    "HTTP 429".to_string(),
                    Some(retry_after.unwrap_or(Duration::from_secs(1))),
                ));
            }
            500..=599 if kind == GrantKind::AuthorizationCode => {
                // A code works once: after an answer that does not say whether it was spent,
                // sending it again would only be refused.
                return Err(refused(format!(
                    "HTTP {status}; the code may have been spent: run `marginwise auth` again"
                )));
            }
            500..=599 => return Err(GrantFailure::Retry(format!("HTTP {status}"), None)),
            _ => {
                return Err(GrantFailure::Refused(AdminError::GrantRefused {
                    shop: shop.to_string(),
                    what: kind.what(),
                    status,
                    detail: grant_error_detail(&text, &secrets),
                    hint: if matches!(status, 400 | 401 | 403) {
                        kind.hint()
                    } else {
                        ""
                    },
                }));
            }
        }
        // A parse error may quote the answer, which holds the token: say where only.
        let granted: Granted = serde_json::from_str(&text).map_err(|e| {
            refused(format!(
                "the answer is not JSON with an access_token (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        if granted.access_token.trim().is_empty() {
            return Err(refused("the answer's access_token is empty".to_string()));
        }
        Ok(granted)
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
            // No token goes with a download (the URL is signed), so storage redirects are
            // followed here, unlike on the Admin API.
            let result = self
                .agent
                .get(url)
                .config()
                .max_redirects(10)
                .build()
                .call();
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

/// The answer of a grant. The client credentials grant's `expires_in` is not used (a 401 is what
/// says such a token expired); the refresh token's and the code's are kept in the file.
#[derive(serde::Deserialize)]
struct Granted {
    access_token: String,
    scope: Option<String>,
    expires_in: Option<u64>,
    refresh_token: Option<String>,
    refresh_token_expires_in: Option<u64>,
}

impl Granted {
    fn into_tokens(self, now: jiff::Timestamp) -> StoredTokens {
        StoredTokens::from_answer(
            self.access_token,
            self.expires_in,
            self.refresh_token,
            self.refresh_token_expires_in,
            self.scope,
            now,
        )
    }
}

enum GrantFailure {
    /// Worth another attempt, after the wait when the answer said how long.
    Retry(String, Option<Duration>),
    Refused(AdminError),
}

/// `: <error>: <error_description>` from an OAuth error answer, cleaned for a terminal, cut
/// short, and without any secret that was sent (`secrets`: the client secret, a code, a refresh
/// token); empty when the answer has neither.
fn grant_error_detail(text: &str, secrets: &[&str]) -> String {
    #[derive(serde::Deserialize)]
    struct OauthError {
        error: Option<serde_json::Value>,
        error_description: Option<serde_json::Value>,
    }
    let Ok(answer) = serde_json::from_str::<OauthError>(text) else {
        return String::new();
    };
    let shown = |value: Option<serde_json::Value>| {
        let text = match value? {
            serde_json::Value::String(text) => text,
            other => other.to_string(),
        };
        let redacted = secrets
            .iter()
            .filter(|secret| !secret.is_empty())
            .fold(text, |text, secret| text.replace(secret, "<redacted>"));
        let clean: String = redacted
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(200)
            .collect();
        Some(clean).filter(|c| !c.trim().is_empty())
    };
    [shown(answer.error), shown(answer.error_description)]
        .into_iter()
        .flatten()
        .map(|part| format!(": {part}"))
        .collect()
}

/// The scopes of `needed` that `granted` (comma-separated) lacks; a `write_` scope grants its
/// `read_` scope too, as Shopify's access scopes do.
fn missing_scopes<'a>(granted: &str, needed: &[&'a str]) -> Vec<&'a str> {
    let granted: Vec<&str> = granted.split(',').map(str::trim).collect();
    needed
        .iter()
        .copied()
        .filter(|scope| {
            let by_write = scope
                .strip_prefix("read_")
                .is_some_and(|rest| granted.contains(&format!("write_{rest}").as_str()));
            !granted.contains(scope) && !by_write
        })
        .collect()
}

/// Signed URLs carry their signature in the query string: errors show the path only.
fn redact_query(url: &str) -> String {
    match url.split_once('?') {
        Some((path, _)) => format!("{path}?<redacted>"),
        None => url.to_string(),
    }
}

/// The seconds a `Retry-After` header asks to wait, when it holds a usable number.
fn retry_after_seconds(response: &ureq::http::Response<ureq::Body>) -> Option<f64> {
    response
        .headers()
        .get("Retry-After")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
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
            format!("{}", AccessToken::new("shpat_secret")),
        ] {
            assert!(!text.contains("shpat_secret"), "{text}");
        }
        let credentials = Credentials::for_shop(
            "example",
            ClientCredentials::new("client-id", "client-secret-value"),
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        let client = AdminClient::new(credentials.clone(), ClientOptions::default());
        for text in [format!("{credentials:?}"), format!("{client:?}")] {
            assert!(
                text.contains("client-id") && !text.contains("client-secret-value"),
                "{text}"
            );
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
        assert_eq!(resolved.auth, Auth::Token(AccessToken::new("from-file")));
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
    fn a_file_token_wins_over_the_file_client_credentials() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
        let file = dir.path().join("credentials.json");
        let write =
            |text: &str| std::fs::write(&file, text).unwrap_or_else(|e| unreachable!("{e}"));
        write(r#"{"shop": "s", "client_id": "id", "client_secret": "secret"}"#);
        let resolved =
            Credentials::resolve(None, None, Some(&file)).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            resolved.auth,
            Auth::ClientCredentials(ClientCredentials::new("id", "secret"))
        );
        write(r#"{"shop": "s", "access_token": "t", "client_id": "id", "client_secret": "x"}"#);
        let resolved =
            Credentials::resolve(None, None, Some(&file)).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(resolved.auth, Auth::Token(AccessToken::new("t")));
        write(r#"{"shop": "s", "access_token": " ", "client_id": "id", "client_secret": "x"}"#);
        let resolved = Credentials::resolve(None, Some("flag"), Some(&file))
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(resolved.auth, Auth::Token(AccessToken::new("flag")));
        assert!(matches!(
            Credentials::for_shop("s", ClientCredentials::new("id", " ")),
            Err(CredentialsError::EmptyClientCredentials)
        ));
    }

    #[test]
    fn the_grant_goes_to_the_endpoints_own_origin() {
        let shop = Credentials::for_shop("example", AccessToken::new("t"))
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            shop.token_url().as_deref(),
            Some("https://example.myshopify.com/admin/oauth/access_token")
        );
        let local = Credentials::for_local(
            "http://127.0.0.1:8080/admin/api/2026-04/graphql.json",
            AccessToken::new("t"),
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            local.token_url().as_deref(),
            Some("http://127.0.0.1:8080/admin/oauth/access_token")
        );
    }

    #[test]
    fn a_write_scope_grants_its_read_scope() {
        let needed = ["read_customers", "write_products", "read_orders"];
        assert_eq!(
            missing_scopes("write_customers, read_products,read_orders", &needed),
            vec!["write_products"]
        );
        assert!(missing_scopes("write_customers,write_products,read_orders", &needed).is_empty());
    }

    /// A file `marginwise auth` wrote is renewed with its own shop's endpoint only, and a file
    /// with a refresh token but no access token is named, not taken for client credentials.
    #[test]
    fn a_refreshing_file_is_its_own_shops() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
        let file = dir.path().join("c.json");
        let write = |json: serde_json::Value| {
            std::fs::write(&file, json.to_string()).unwrap_or_else(|e| unreachable!("{e}"));
        };
        let tokens = serde_json::json!({
            "shop": "first.myshopify.com", "client_id": "id", "client_secret": "s3cret",
            "access_token": "shpat_a", "refresh_token": "shprt_a",
        });
        write(tokens.clone());
        let held =
            Credentials::resolve(None, None, Some(&file)).unwrap_or_else(|e| unreachable!("{e}"));
        assert!(matches!(held.auth, Auth::Refreshing(_)), "{held:?}");
        assert_eq!(held.shop, "first.myshopify.com");
        let error = Credentials::resolve(Some("second"), None, Some(&file))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.contains("its tokens are first.myshopify.com's, not second.myshopify.com's"),
            "{error}"
        );
        // A given token is the user's choice, whatever the file's shop.
        assert!(Credentials::resolve(Some("second"), Some("shpat_given"), Some(&file)).is_ok());
        let mut without_access = tokens;
        if let Some(object) = without_access.as_object_mut() {
            object.remove("access_token");
        }
        write(without_access);
        let error = Credentials::resolve(None, None, Some(&file))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.contains("a refresh_token but no access_token: run `marginwise auth` again"),
            "{error}"
        );
    }

    #[test]
    fn a_refusal_quotes_shopify_but_never_the_secret() {
        let client = ClientCredentials::new("id", "s3cret");
        assert_eq!(
            grant_error_detail(
                r#"{"error": "invalid_grant", "error_description": "bad s3cret\nhere, c0de"}"#,
                &[client.secret(), "c0de"]
            ),
            ": invalid_grant: bad <redacted> here, <redacted>"
        );
        assert_eq!(
            grant_error_detail("<html>s3cret</html>", &[client.secret()]),
            ""
        );
    }

    #[test]
    fn signed_urls_lose_their_query_in_errors() {
        assert_eq!(
            redact_query("https://storage/x.jsonl?sig=abc"),
            "https://storage/x.jsonl?<redacted>"
        );
    }
}
