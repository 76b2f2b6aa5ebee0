//! `local-store`: runs the local stand-in for the Shopify Admin API (not Shopify) until stopped.
//!
//! Prints one line with the GraphQL URL and the access token, then serves. Faults can be set
//! here or later through `POST /_control`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use local_store::{
    AppCredentials, AppFunction, Burst, Config, Faults, FunctionApi, LocalStore, Plan,
};

#[derive(Debug, Parser)]
#[command(
    name = "local-store",
    about = "A local stand-in for the Shopify Admin GraphQL API (not Shopify)"
)]
struct Args {
    /// Folder with customers.jsonl, products.jsonl, orders.jsonl (`marginwise generate --out`).
    #[arg(long)]
    seed: Option<PathBuf>,
    /// Loopback address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    bind: SocketAddr,
    #[arg(long, default_value = "shpat_local_store_token")]
    token: String,
    /// The app id `$app` namespaces expand to.
    #[arg(long, default_value_t = 7_700_000)]
    app_id: u64,
    /// Plan whose restore rate the bucket uses: standard, advanced, plus, enterprise.
    #[arg(long, default_value = "standard", value_parser = parse_plan)]
    plan: Plan,
    /// Restore rate in points per second (overrides --plan).
    #[arg(long)]
    restore_rate: Option<f64>,
    /// Bucket size (default: 20 seconds of restore).
    #[arg(long)]
    maximum_available: Option<f64>,
    /// 5xx bursts: EVERY:LENGTH[:STATUS], e.g. 10:2:503.
    #[arg(long, value_parser = parse_burst)]
    error_5xx: Option<Burst>,
    /// Drop the connection before doing anything: EVERY:LENGTH.
    #[arg(long, value_parser = parse_burst)]
    drop_before: Option<Burst>,
    /// Apply the request, then drop the connection without an answer: EVERY:LENGTH (writes only).
    #[arg(long, value_parser = parse_burst)]
    drop_after_write: Option<Burst>,
    /// Slow answers: EVERY:LENGTH:DELAY_MS.
    #[arg(long, value_parser = parse_burst)]
    slow: Option<Burst>,
    /// Answer the next N GraphQL requests with THROTTLED.
    #[arg(long, default_value_t = 0)]
    throttle_storm: u64,
    /// A function of the app, HANDLE=discount or HANDLE=cart_transform (repeat for more); the
    /// default is marginwise's offers=discount and bundles=cart_transform.
    #[arg(long = "function", value_parser = parse_function)]
    functions: Vec<(String, FunctionApi)>,
    /// The app's client id for the client credentials grant (POST /admin/oauth/access_token);
    /// without it and --client-secret, every exchange is refused as for an app not installed.
    #[arg(long, requires = "client_secret")]
    client_id: Option<String>,
    #[arg(long, requires = "client_id")]
    client_secret: Option<String>,
    /// The scopes a granted token has (default: those marginwise's shopify.app.toml declares).
    #[arg(long, requires = "client_id")]
    granted_scope: Option<String>,
}

fn parse_function(text: &str) -> Result<(String, FunctionApi), String> {
    let (handle, api) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}`: expected HANDLE=discount or HANDLE=cart_transform"))?;
    let api = FunctionApi::parse(api)
        .ok_or_else(|| format!("`{api}`: expected discount or cart_transform"))?;
    Ok((handle.to_string(), api))
}

fn parse_plan(text: &str) -> Result<Plan, String> {
    Plan::parse(text).ok_or_else(|| format!("unknown plan `{text}`"))
}

fn parse_burst(text: &str) -> Result<Burst, String> {
    let numbers: Result<Vec<u64>, _> = text.split(':').map(str::parse::<u64>).collect();
    let numbers = numbers.map_err(|e| format!("`{text}`: {e}"))?;
    let (every, length, third) = match numbers.as_slice() {
        [every] => (*every, 1, None),
        [every, length] => (*every, *length, None),
        [every, length, third] => (*every, *length, Some(*third)),
        _ => return Err(format!("`{text}`: expected EVERY[:LENGTH[:N]]")),
    };
    if every == 0 || length > every {
        return Err(format!("`{text}`: need EVERY >= LENGTH and EVERY > 0"));
    }
    Ok(Burst {
        every,
        length,
        writes_only: false,
        status: third.and_then(|s| u16::try_from(s).ok()),
        delay_ms: third,
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut drop_after = args.drop_after_write;
    if let Some(burst) = drop_after.as_mut() {
        burst.writes_only = true;
    }
    let config = Config {
        bind: args.bind,
        token: args.token,
        app_id: args.app_id,
        seed_dir: args.seed.clone(),
        data: None,
        restore_rate: args.restore_rate.unwrap_or(args.plan.restore_rate()),
        maximum_available: args.maximum_available,
        faults: Faults {
            error_5xx: args.error_5xx,
            drop_before: args.drop_before,
            drop_after,
            slow: args.slow,
            throttle_storm: args.throttle_storm,
            bulk_fail_after: None,
        },
        functions: if args.functions.is_empty() {
            AppFunction::marginwise()
        } else {
            (1..)
                .zip(&args.functions)
                .map(|(number, (handle, api))| AppFunction::new(handle, *api, number))
                .collect()
        },
        client_credentials: match (args.client_id, args.client_secret) {
            (Some(id), Some(secret)) => {
                let mut app = AppCredentials::new(id, secret);
                if let Some(scope) = args.granted_scope {
                    app.scope = scope;
                }
                Some(app)
            }
            _ => None,
        },
        ..Config::default()
    };
    let store = LocalStore::start(config).with_context(|| match &args.seed {
        Some(dir) => format!("starting the local store seeded from {}", dir.display()),
        None => "starting the local store".to_string(),
    })?;
    println!(
        "local-store (a local stand-in for the Shopify Admin API, not Shopify) listening: url={} token={} app_namespace={} control={}/_control",
        store.url(),
        store.token(),
        store.app_namespace(),
        store.base_url()
    );
    loop {
        std::thread::park();
    }
}
