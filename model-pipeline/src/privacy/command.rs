//! `marginwise webhooks`: serve the privacy webhooks, or handle one captured delivery.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use super::server::WebhookServer;
use super::{AppSecret, Delivery, Handler, HandlerConfig, Outcome, webhook_client_options};
use crate::admin::{AccessToken, AdminClient, Credentials};
use crate::say;

/// How the deliveries arrive.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Serve `POST /webhooks/compliance` on this (loopback) address until stopped.
    Listen(String),
    /// Handle one captured delivery: its body as received, and its headers.
    Replay {
        payload: PathBuf,
        topic: String,
        hmac: String,
        shop_domain: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub struct WebhooksOptions {
    pub mode: Mode,
    pub credentials: Credentials,
    /// The shop's myshopify domain when the credentials are a local stand-in's (whose key is
    /// its endpoint, not a shop).
    pub shop_domain: Option<String>,
    pub secret_file: Option<PathBuf>,
    pub plan: PathBuf,
    pub state: Option<PathBuf>,
    pub data_requests: Option<PathBuf>,
    /// Bulk export folders (`marginwise export --out`) that redactions reach too.
    pub export_dirs: Vec<PathBuf>,
}

/// The shop deliveries must name: the credentials' shop, or, against a local stand-in, the
/// domain given beside it.
pub fn served_shop_domain(
    credentials: &Credentials,
    given: Option<&str>,
) -> anyhow::Result<String> {
    let local = credentials.shop == credentials.endpoint;
    match (local, given) {
        (false, None) => Ok(credentials.shop.clone()),
        (false, Some(given)) => {
            let normalized = Credentials::for_shop(given, AccessToken::new("-"))?.shop;
            anyhow::ensure!(
                normalized == credentials.shop,
                "the shop domain {normalized} is not the credentials' shop {}",
                credentials.shop
            );
            Ok(normalized)
        }
        (true, Some(given)) => Ok(Credentials::for_shop(given, AccessToken::new("-"))?.shop),
        (true, None) => anyhow::bail!(
            "with --endpoint, pass --shop <name>.myshopify.com: the shop whose deliveries this serves"
        ),
    }
}

/// Runs the command; a replayed delivery that is not answered 2xx is an error.
pub fn run(options: WebhooksOptions) -> anyhow::Result<()> {
    let secret = AppSecret::load(options.secret_file.as_deref())?;
    let shop_domain = served_shop_domain(&options.credentials, options.shop_domain.as_deref())?;
    let mut config = HandlerConfig::new(secret, &shop_domain, &options.plan);
    if let Some(state) = options.state {
        config.state_file = state;
    }
    if let Some(dir) = options.data_requests {
        config.data_requests_dir = dir;
    }
    config.export_dirs = options.export_dirs;
    let client = AdminClient::new(options.credentials, webhook_client_options());
    let mut handler = Handler::new(config, client);
    match options.mode {
        Mode::Listen(address) => {
            let exports: Vec<String> = handler
                .config()
                .export_dirs
                .iter()
                .map(|dir| dir.display().to_string())
                .collect();
            let summary = format!(
                "shop {shop_domain}, state {}, plan {}, data requests {}, exports {}",
                handler.config().state_file.display(),
                handler.config().plan_dir.display(),
                handler.config().data_requests_dir.display(),
                if exports.is_empty() {
                    "none (pass --export DIR)".to_string()
                } else {
                    exports.join(", ")
                }
            );
            // Never `eprintln!`: it panics when stderr is closed, which would stop the server.
            let log = Box::new(|line: &str| {
                let _ = writeln!(std::io::stderr(), "{line}");
            });
            let server = WebhookServer::start(&address, handler, log)?;
            say!(
                "serving the privacy webhooks at {} ({summary}); stop with Ctrl-C",
                server.url()
            )?;
            server.wait()?;
            Ok(())
        }
        Mode::Replay {
            payload,
            topic,
            hmac,
            shop_domain,
        } => {
            let body = std::fs::read(&payload)
                .with_context(|| format!("reading the payload {}", payload.display()))?;
            anyhow::ensure!(
                body.len() <= super::MAX_BODY_BYTES,
                "{}: over {} bytes, which the server refuses too",
                payload.display(),
                super::MAX_BODY_BYTES
            );
            let outcome = handler.handle(&Delivery {
                topic: Some(&topic),
                shop_domain: shop_domain.as_deref(),
                hmac: Some(&hmac),
                webhook_id: None,
                body: &body,
            });
            say!("{} {outcome}", outcome.status())?;
            match outcome {
                Outcome::Ignored { .. }
                | Outcome::Redacted(_)
                | Outcome::DataRequestWritten(_)
                | Outcome::ShopRedacted(_) => Ok(()),
                other => Err(anyhow::anyhow!(
                    "{}: answered {} ({other})",
                    payload.display(),
                    other.status()
                )),
            }
        }
    }
}
