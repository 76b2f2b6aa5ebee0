//! `marginwise auth`: the authorization code grant, for a store outside the app's own
//! organization (where the client credentials grant does not work).
//!
//! 1. It makes a `state`, prints the approval address (offline access, the app's scopes) and
//!    waits for the callback: on a loopback redirect URI (`http://127.0.0.1:<port>/...`) it
//!    listens there itself; on any other it asks for the address the browser was sent to,
//!    pasted from the address bar.
//! 2. It takes the callback only when its `hmac` is the app's signature, its `state` this run's
//!    and its `shop` the store asked for ([`crate::admin::oauth::verify_callback`]).
//! 3. It exchanges the code for an expiring offline token and its refresh token
//!    ([`AdminClient::authorize_code`]) and writes both into the credentials file (readable by
//!    its owner only), which every other command then takes with `--credentials` and renews.
//!
//! Nothing it prints or logs holds a token, the code or the client secret.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::admin::oauth::{self, CallbackError};
use crate::admin::token_file::{self, StoredTokens};
use crate::admin::{AdminClient, ClientOptions, Credentials};

/// The callback's path on the redirect URIs shopify.app.toml lists: `marginwise auth` listens on
/// it on the loopback one, and `marginwise webhooks` serves the page that says to paste the
/// address on the proxy's host.
pub const CALLBACK_PATH: &str = "/auth/callback";

/// What `marginwise auth` is given.
pub struct AuthorizeRequest {
    /// Where the grant goes: the shop's endpoint (or a local stand-in's), with the app's client
    /// id and secret as its auth.
    pub credentials: Credentials,
    /// The `<name>.myshopify.com` the callback must name.
    pub shop: String,
    pub client_secret: String,
    pub client_id: String,
    /// The credentials file the tokens go into.
    pub file: PathBuf,
    pub redirect_uri: String,
    pub scopes: String,
    /// How long to wait for the merchant's approval.
    pub wait: Duration,
    pub client_options: ClientOptions,
}

/// What was granted (no secrets).
#[derive(Debug)]
pub struct Authorized {
    pub shop: String,
    pub file: PathBuf,
    pub tokens: StoredTokens,
}

impl std::fmt::Display for Authorized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "authorized: {}", self.shop)?;
        writeln!(f, "  tokens written to {}", self.file.display())?;
        writeln!(
            f,
            "  scopes: {}",
            self.tokens.scope.as_deref().unwrap_or("(not said)")
        )?;
        match self.tokens.access_token_expires_at {
            Some(at) => writeln!(
                f,
                "  access token expires at {at}; commands given --credentials {} renew it",
                self.file.display()
            )?,
            None => writeln!(f, "  access token does not expire")?,
        }
        match (
            &self.tokens.refresh_token,
            self.tokens.refresh_token_expires_at,
        ) {
            (Some(_), Some(at)) => writeln!(
                f,
                "  refresh token expires at {at}: run `marginwise auth` again before then, or use \
                 the store at least that often"
            ),
            (Some(_), None) => writeln!(f, "  refresh token: no expiry said"),
            (None, _) => writeln!(f, "  no refresh token"),
        }
    }
}

/// What `marginwise auth --check` found (no secrets).
#[derive(Debug)]
pub struct Checked {
    pub shop: String,
    /// Where the tokens came from, when from a file `marginwise auth` wrote.
    pub file: Option<PathBuf>,
    /// Whether the check renewed the access token.
    pub renewed: bool,
    /// The tokens the file holds after the check.
    pub tokens: Option<StoredTokens>,
    /// How the token is got, when not from such a file.
    pub source: &'static str,
}

impl std::fmt::Display for Checked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let renewed = if self.renewed {
            " (renewed with the refresh token)"
        } else {
            ""
        };
        writeln!(f, "the token works for {}{renewed}", self.shop)?;
        let Some(tokens) = &self.tokens else {
            return writeln!(f, "  ({})", self.source);
        };
        if let Some(file) = &self.file {
            writeln!(f, "  tokens in {}", file.display())?;
        }
        if let Some(at) = tokens.access_token_expires_at {
            writeln!(f, "  access token expires at {at}")?;
        }
        match tokens.refresh_token_expires_at {
            Some(at) => writeln!(
                f,
                "  refresh token expires at {at}: run `marginwise auth` again before then"
            ),
            None => Ok(()),
        }
    }
}

/// Sends one read with `credentials` (renewing a stored token when it is due, as every command
/// does) and says what the file now holds.
pub fn check(credentials: Credentials, options: ClientOptions) -> anyhow::Result<Checked> {
    use crate::admin::{Auth, Retry, ops};
    let (file, source) = match &credentials.auth {
        Auth::Refreshing(held) => (Some(held.file.clone()), "a token `marginwise auth` stored"),
        Auth::ClientCredentials(_) => (
            None,
            "a token from the client credentials grant, got again when it expires",
        ),
        Auth::Token(_) => (None, "a token given as it is: marginwise does not renew it"),
    };
    let shop = credentials.shop.clone();
    let mut client = AdminClient::new(credentials, options);
    // The cheapest read there is: no nodes asked for.
    use marginwise_engine::format::{NAMESPACE, PROFILE_KEY, VARIANT_KEY};
    let variables = ops::read_metafields::Variables {
        ids: Vec::new(),
        namespace: NAMESPACE.to_string(),
        customer_key: PROFILE_KEY.to_string(),
        variant_key: VARIANT_KEY.to_string(),
    };
    client
        .execute::<ops::ReadMetafields>("nodes", variables, Retry::Always)
        .with_context(|| format!("checking the token with {shop}"))?;
    let tokens = file
        .as_deref()
        .map(token_file::read_tokens)
        .transpose()?
        .flatten();
    Ok(Checked {
        shop,
        file,
        renewed: client.token_refreshes > 0,
        tokens,
        source,
    })
}

/// The loopback address and path a redirect URI names, when marginwise can listen there itself.
fn loopback(redirect_uri: &str) -> Option<(String, String)> {
    let uri = redirect_uri.parse::<ureq::http::Uri>().ok()?;
    if uri.scheme_str() != Some("http") {
        return None;
    }
    let authority = uri.authority()?;
    let port = authority.port_u16()?;
    let host = authority.host();
    if authority.as_str().contains('@') || !["127.0.0.1", "localhost", "[::1]"].contains(&host) {
        return None;
    }
    let host = if host == "localhost" {
        "127.0.0.1"
    } else {
        host
    };
    Some((format!("{host}:{port}"), uri.path().to_string()))
}

/// Runs the grant. `input` is where a pasted callback address is read from; `progress` gets the
/// approval address and what is awaited.
pub fn authorize(
    request: AuthorizeRequest,
    input: &mut dyn BufRead,
    progress: &mut dyn Write,
) -> anyhow::Result<Authorized> {
    let state = oauth::new_state();
    let origin = request
        .credentials
        .token_url()
        .and_then(|url| {
            url.strip_suffix(crate::admin::TOKEN_PATH)
                .map(str::to_string)
        })
        .context("the endpoint has no origin to send the merchant to")?;
    let url = oauth::authorize_url(
        &origin,
        &request.client_id,
        &request.scopes,
        &request.redirect_uri,
        &state,
    );
    let verify = |callback: &str| {
        oauth::verify_callback(callback, &state, &request.shop, &request.client_secret)
    };
    // Before the merchant approves: the file's lock (held until the tokens are written, so a
    // command renewing the file's old tokens meanwhile cannot overwrite the new ones), and a
    // folder that takes the file, so that an approval is never spent on tokens that cannot be
    // kept.
    let _lock = token_file::lock(&request.file)?;
    token_file::check_writable(&request.file)?;
    let code = match loopback(&request.redirect_uri) {
        Some((address, path)) => {
            // Bound before the address is shown, so a busy port is said at once.
            let server = tiny_http::Server::http(&address)
                .map_err(|e| anyhow::anyhow!("listening on {address} for the callback: {e}"))?;
            writeln!(
                progress,
                "Open this address in a browser signed in to {}'s admin, and approve the app:\n\n  \
                 {url}\n\nWaiting for Shopify's redirect to {} (at most {} s; Ctrl-C stops)...",
                request.shop,
                request.redirect_uri,
                request.wait.as_secs()
            )?;
            listen(&server, &path, request.wait, &verify, progress)?
        }
        None => {
            writeln!(
                progress,
                "Open this address in a browser signed in to {}'s admin, and approve the app:\n\n  \
                 {url}\n\nThe browser is then sent to {}. Paste that whole address (from the \
                 address bar) here, then press Enter:",
                request.shop, request.redirect_uri
            )?;
            read_pasted(input, &verify, progress)?
        }
    };
    writeln!(progress, "Approved; exchanging the code for tokens...")?;
    let mut client = AdminClient::new(request.credentials, request.client_options);
    let tokens = client
        .authorize_code(&code, Some(Instant::now() + Duration::from_secs(120)))
        .context("exchanging the authorization code")?;
    token_file::write_tokens(&request.file, Some(&request.shop), &tokens).with_context(|| {
        "the store approved the app, but its tokens could not be kept: run `marginwise auth` \
         again once the file can be written"
    })?;
    Ok(Authorized {
        shop: request.shop,
        file: request.file,
        tokens,
    })
}

/// How many pasted addresses are checked before giving up.
const PASTE_ATTEMPTS: u32 = 3;

/// Reads pasted callback addresses (blank lines skipped) until one verifies; one that does not
/// is said and asked for again, up to [`PASTE_ATTEMPTS`] (a mis-copied address need not cost the
/// approval), except a refusal by the store, which ends the run.
fn read_pasted(
    input: &mut dyn BufRead,
    verify: &dyn Fn(&str) -> Result<String, CallbackError>,
    progress: &mut dyn Write,
) -> anyhow::Result<String> {
    let mut line = String::new();
    let mut attempts = 0;
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            anyhow::bail!("no callback address was pasted (standard input ended)");
        }
        if line.trim().is_empty() {
            continue;
        }
        attempts += 1;
        match verify(line.trim()) {
            Ok(code) => return Ok(code),
            Err(error @ CallbackError::Denied(_)) => {
                return Err(error).context("the pasted address");
            }
            Err(error) if attempts >= PASTE_ATTEMPTS => {
                return Err(error).context(format!("the pasted address (attempt {attempts})"));
            }
            Err(error) => writeln!(
                progress,
                "that address was refused ({error}); paste the whole address again:"
            )?,
        }
    }
}

/// Serves the loopback redirect until a callback verifies, the merchant declines, or `wait`
/// passes. A callback that fails its checks is answered with why and waited past (it may be a
/// stale tab or a forgery); other paths get 404.
fn listen(
    server: &tiny_http::Server,
    path: &str,
    wait: Duration,
    verify: &dyn Fn(&str) -> Result<String, CallbackError>,
    progress: &mut dyn Write,
) -> anyhow::Result<String> {
    // `--wait` is bounded by its parser; a larger one would wait for ever.
    let end = Instant::now().checked_add(wait);
    loop {
        let left = end.map_or(Duration::MAX, |end| {
            end.saturating_duration_since(Instant::now())
        });
        if left.is_zero() {
            anyhow::bail!(
                "no approval came within {} s: run `marginwise auth` again (with --wait SECONDS \
                 for longer)",
                wait.as_secs()
            );
        }
        let Some(request) = server.recv_timeout(left)? else {
            continue;
        };
        let url = request.url().to_string();
        let asked = url.split('?').next().unwrap_or_default();
        if asked != path || *request.method() != tiny_http::Method::Get {
            let _ = request
                .respond(tiny_http::Response::from_string("Not Found").with_status_code(404));
            continue;
        }
        match verify(&url) {
            Ok(code) => {
                let _ = request.respond(page(
                    200,
                    "marginwise has the store's approval",
                    "The terminal running marginwise auth finishes the rest. You can close this tab.",
                ));
                return Ok(code);
            }
            Err(error @ CallbackError::Denied(_)) => {
                let _ = request.respond(page(400, "The app was not approved", &error.to_string()));
                return Err(error).context("the callback");
            }
            Err(error) => {
                writeln!(
                    progress,
                    "a callback was refused ({error}); still waiting..."
                )?;
                let _ = request.respond(page(400, "This callback was refused", &error.to_string()));
            }
        }
    }
}

/// A small HTML page for the browser.
pub(crate) fn page(
    status: u16,
    title: &str,
    text: &str,
) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let body = format!(
        "<!doctype html><meta charset=\"utf-8\"><title>{0}</title><h1>{0}</h1><p>{1}</p>",
        escape(title),
        escape(text)
    );
    let response = tiny_http::Response::from_string(body).with_status_code(status);
    // A constant, valid header: the error arm cannot be taken.
    match tiny_http::Header::from_bytes("Content-Type", "text/html; charset=utf-8") {
        Ok(content_type) => response.with_header(content_type),
        Err(()) => response,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;

    #[test]
    fn only_plain_http_loopback_redirects_are_listened_on() {
        assert_eq!(
            loopback("http://127.0.0.1:3457/auth/callback"),
            Some(("127.0.0.1:3457".into(), "/auth/callback".into()))
        );
        assert_eq!(
            loopback("http://localhost:9/cb"),
            Some(("127.0.0.1:9".into(), "/cb".into()))
        );
        for uri in [
            "https://127.0.0.1:3457/auth/callback",
            "http://127.0.0.1/auth/callback",
            "http://example.com:80/auth/callback",
            "http://127.0.0.1:1@example.com:80/cb",
            "https://hooks.example.com/auth/callback",
            "not a uri",
        ] {
            assert_eq!(loopback(uri), None, "{uri}");
        }
    }
}
