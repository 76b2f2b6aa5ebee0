//! `marginwise webhooks`: serve the privacy webhooks, or handle one captured delivery.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use super::server::WebhookServer;
use super::shops::ServedShop;
use super::{AppSecret, Delivery, Handler, HandlerConfig, Outcome, Router, webhook_client_options};
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
    pub secret_file: Option<PathBuf>,
    /// The shops served: the one the flags name, or those of `--shops FILE`.
    pub shops: Vec<ServedShop>,
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

/// One shop's handler.
fn handler(secret: &AppSecret, shop: ServedShop) -> anyhow::Result<Handler> {
    let shop_domain = served_shop_domain(&shop.credentials, shop.shop_domain.as_deref())?;
    let mut config = HandlerConfig::new(secret.clone(), &shop_domain, &shop.plan);
    if let Some(state) = shop.state {
        config.state_file = state;
    }
    if let Some(dir) = shop.data_requests {
        config.data_requests_dir = dir;
    }
    config.export_dirs = shop.export_dirs;
    let client = AdminClient::new(shop.credentials, webhook_client_options());
    Ok(Handler::new(config, client))
}

/// What a handler serves, for the line said at start.
fn served(handler: &Handler) -> String {
    let config = handler.config();
    let exports: Vec<String> = config
        .export_dirs
        .iter()
        .map(|dir| dir.display().to_string())
        .collect();
    format!(
        "shop {}, state {}, plan {}, data requests {}, exports {}",
        config.shop_domain,
        config.state_file.display(),
        config.plan_dir.display(),
        config.data_requests_dir.display(),
        if exports.is_empty() {
            "none (pass --export DIR)".to_string()
        } else {
            exports.join(", ")
        }
    )
}

/// Runs the command; a replayed delivery that is not answered 2xx is an error.
pub fn run(options: WebhooksOptions) -> anyhow::Result<()> {
    let secret = AppSecret::load(options.secret_file.as_deref())?;
    let handlers = options
        .shops
        .into_iter()
        .map(|shop| handler(&secret, shop))
        .collect::<anyhow::Result<Vec<Handler>>>()?;
    let mut router = Router::new(handlers).map_err(|e| anyhow::anyhow!("the shops served: {e}"))?;
    match options.mode {
        Mode::Listen(address) => {
            let summary = router
                .handlers()
                .iter()
                .map(served)
                .collect::<Vec<_>>()
                .join("; ");
            // Never `eprintln!`: it panics when stderr is closed, which would stop the server.
            let log = Box::new(|line: &str| {
                let _ = writeln!(std::io::stderr(), "{line}");
            });
            let server = WebhookServer::start(&address, router, log)?;
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
            let outcome = router.handle(&Delivery {
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
