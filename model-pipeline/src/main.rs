//! `marginwise`: the pipeline's command line (generate, score, export, apply, demo, bench,
//! compile-policy, compile-bundles, discount, cart-transform, measure, webhooks).
//!
//! A thin edge over the library: it parses arguments, turns library errors into messages that
//! name the file, line and field, and prints tables. Everything it runs is tested in the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};
use model_pipeline::admin::{AccessToken, AdminClient, ClientOptions, Credentials};
use model_pipeline::currency::shop_currency;
use model_pipeline::generate::{self, DEFAULT_OPT_OUT_TAG, GeneratorConfig};
use model_pipeline::ingest::IngestOptions;
use model_pipeline::pipeline::{self, RunOptions};
use model_pipeline::progress::Progress;
use model_pipeline::score::ScoreOptions;
use model_pipeline::sync::install::{self, ConfigMetafield, DiscountSettings, Installed};
use model_pipeline::sync::{self, Polling, apply::ApplyOptions};
use model_pipeline::{Timing, demo, peak_memory_bytes, say};

#[derive(Parser)]
#[command(
    name = "marginwise",
    version,
    about = "Score a Shopify store's history into the metafields marginwise's checkout Functions read"
)]
struct Cli {
    /// Hide progress bars (they are hidden anyway when stderr is not a terminal).
    #[arg(long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct ScoreArgs {
    /// Skip bad lines (malformed, a second record of an id, an order dated after now or before
    /// 1990; counted in the summary, the first record of an id kept) instead of stopping at the
    /// first one.
    #[arg(long)]
    skip_bad: bool,
    /// Customer tag meaning "do not personalize" (besides dataSaleOptOut).
    #[arg(long, default_value = DEFAULT_OPT_OUT_TAG)]
    opt_out_tag: String,
    /// Shop currency (ISO code); read from the export when absent.
    #[arg(long)]
    currency: Option<String>,
    /// Minimum number of orders containing both products for a complement.
    #[arg(long, default_value_t = ScoreOptions::default().min_support)]
    min_support: u32,
    /// Monthly discount rate of the 12-month CLV, at least 0 and below 1 (0.01: about 12.7 % a
    /// year).
    #[arg(long, default_value_t = ScoreOptions::default().monthly_discount_rate)]
    monthly_discount_rate: f64,
    /// The bundle definitions `compile-bundles` reads (format: model-pipeline/src/cart_transform.rs):
    /// their parent variants get the bundle-parent flag in `$app.offer`, which keeps the discount
    /// Function's slot offers off them.
    #[arg(long)]
    bundles: Option<PathBuf>,
}

/// Which store to talk to. Without any of these, commands that can use the local stand-in do.
#[derive(clap::Args, Clone, Default)]
struct ShopArgs {
    /// Shop domain (example.myshopify.com); else $SHOPIFY_SHOP or --credentials.
    #[arg(long)]
    shop: Option<String>,
    /// Admin API access token; else $SHOPIFY_ACCESS_TOKEN or --credentials (prefer those: a
    /// flag is visible to other users of the machine). Never printed. Without a token anywhere,
    /// the app's $SHOPIFY_CLIENT_ID and $SHOPIFY_CLIENT_SECRET (or the file's client_id and
    /// client_secret) are exchanged for one (client credentials grant: a Dev Dashboard app
    /// installed on a store of its own organization).
    #[arg(long)]
    token: Option<String>,
    /// JSON file {"shop": "...", "access_token": "..."}, or with "client_id" and
    /// "client_secret" instead of "access_token".
    #[arg(long)]
    credentials: Option<PathBuf>,
    /// GraphQL endpoint of a local stand-in (loopback only), e.g. from `cargo run -p local-store`.
    #[arg(long)]
    endpoint: Option<String>,
}

impl ShopArgs {
    fn given(&self) -> bool {
        self.shop.is_some()
            || self.credentials.is_some()
            || self.endpoint.is_some()
            || std::env::var_os(model_pipeline::admin::SHOP_ENV).is_some()
    }

    fn resolve(&self) -> anyhow::Result<Credentials> {
        if let Some(endpoint) = &self.endpoint {
            return Ok(Credentials::resolve_local(
                endpoint,
                self.token.as_deref(),
                self.credentials.as_deref(),
            )?);
        }
        Ok(Credentials::resolve(
            self.shop.as_deref(),
            self.token.as_deref(),
            self.credentials.as_deref(),
        )?)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Write a deterministic sample store as bulk-operation JSONL.
    Generate {
        #[arg(long, default_value_t = 20_000)]
        customers: u32,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
    },
    /// Score an export folder (customers.jsonl, products.jsonl, orders.jsonl) into a plan.
    Score {
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        args: ScoreArgs,
        /// The state database `apply` and the privacy webhook use (default:
        /// <out>/sync-state.sqlite): customers on its suppression list (a `customers/redact`
        /// recorded them) are left out of the plan. Give it when they were given `--state`.
        #[arg(long)]
        state: Option<PathBuf>,
        /// Do not write the HTML report.
        #[arg(long)]
        no_report: bool,
        /// Print the per-stage timing table with peak memory (used by `bench`).
        #[arg(long)]
        timings: bool,
    },
    /// Export a store's customers, products and orders through bulk queries into a folder
    /// `score` reads.
    Export {
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        shop: ShopArgs,
    },
    /// Apply a plan (metafields.jsonl, deletions.jsonl) to a store: only what changed, exactly
    /// once, resuming an interrupted run.
    Apply {
        /// The folder `score` wrote.
        #[arg(long)]
        plan: PathBuf,
        #[command(flatten)]
        shop: ShopArgs,
        /// Apply to a local stand-in started in this process, seeded from --seed-store (a
        /// rehearsal: it prints what a real store would be sent, and the cost).
        #[arg(long, conflicts_with_all = ["shop", "endpoint", "credentials"])]
        local: bool,
        /// The export folder the local stand-in is seeded from (with --local).
        #[arg(long, requires = "local")]
        seed_store: Option<PathBuf>,
        /// The state database (default: <plan>/sync-state.sqlite).
        #[arg(long)]
        state: Option<PathBuf>,
        /// Changed values at or above this count go through a bulk mutation.
        #[arg(long, default_value_t = 10_000)]
        bulk_threshold: usize,
        /// Write every textual change (no tolerance for re-estimated scores).
        #[arg(long)]
        exact: bool,
        /// Seed of the retry jitter (tests); random otherwise.
        #[arg(long, hide = true)]
        jitter_seed: Option<u64>,
        /// Bulk-operation status polling interval in milliseconds (tests).
        #[arg(long, hide = true)]
        poll_ms: Option<u64>,
    },
    /// The job to run on a schedule: export the store, keep redacted customers out of the new
    /// export, score it and write what changed, all in one folder (`export/`, `plan/` with the
    /// write-back state, `last-refresh.json` saying how the run went). A run started while
    /// another holds the folder's `refresh.lock` stops within two seconds and touches nothing.
    Refresh {
        /// The refresh folder (created when missing); point `marginwise webhooks` at its
        /// `plan/` and `export/`.
        #[arg(long, required_unless_present = "shops")]
        dir: Option<PathBuf>,
        /// Refresh every shop of a shops file (the one `marginwise webhooks --shops` reads) that
        /// names a "refresh" folder, one after another, with its own credentials and "bundles";
        /// a shop that fails does not stop the others, and the run fails when any did.
        #[arg(long, conflicts_with_all = ["dir", "shop", "token", "credentials", "endpoint", "bundles"])]
        shops: Option<PathBuf>,
        /// Refresh nothing: say how each folder's last run went and when a run last succeeded
        /// (from its last-refresh.json, no request to the store), and fail when any folder has
        /// had no successful run within --max-age-hours (for monitoring the schedule).
        #[arg(long)]
        status: bool,
        /// With --status: how old the last successful run may be.
        #[arg(long, default_value_t = 48, requires = "status", value_parser = clap::value_parser!(u32).range(1..=8760))]
        max_age_hours: u32,
        #[command(flatten)]
        shop: ShopArgs,
        #[command(flatten)]
        args: ScoreArgs,
        /// Do not write the HTML report.
        #[arg(long)]
        no_report: bool,
        /// Changed values at or above this count go through a bulk mutation.
        #[arg(long, default_value_t = 10_000)]
        bulk_threshold: usize,
        /// Write every textual change (no tolerance for re-estimated scores).
        #[arg(long)]
        exact: bool,
        /// Bulk-operation status polling interval in milliseconds (tests).
        #[arg(long, hide = true)]
        poll_ms: Option<u64>,
    },
    /// The README's main job: sample store -> local store -> export -> plan + report -> apply ->
    /// read back -> checkout scenarios. With --shop/--credentials/--endpoint, the same against
    /// that store (its data is exported and the plan is written to it).
    Demo {
        #[arg(long, default_value = "out")]
        out: PathBuf,
        #[arg(long, default_value_t = 20_000)]
        customers: u32,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// The merchant policy to evaluate (default: the bundled sample policy).
        #[arg(long)]
        policy: Option<PathBuf>,
        #[command(flatten)]
        shop: ShopArgs,
    },
    /// Check a discount policy and print the `metafields` argument that sets it on a discount
    /// (discountAutomaticAppCreate/Update): the JSON and its compiled form, which the discount
    /// Function reads in a fraction of the instructions.
    CompilePolicy {
        /// The policy JSON (format: engine/src/policy.rs).
        #[arg(long)]
        policy: PathBuf,
    },
    /// Check a bundle policy and bundle definitions and print the `metafields` argument that sets
    /// them on the cart transform (cartTransformCreate with functionHandle "bundles" and
    /// blockOnFailure false, or metafieldsSet on an existing one): the policy JSON, its compiled
    /// form, and the checked definitions list.
    CompileBundles {
        /// The bundle policy JSON (format: engine/src/bundle/policy.rs).
        #[arg(long)]
        policy: PathBuf,
        /// The bundle definitions (format: model-pipeline/src/cart_transform.rs); without it only
        /// the policy is printed.
        #[arg(long)]
        bundles: Option<PathBuf>,
        /// The discount policy JSON (the file `compile-policy --policy` reads): the bundle
        /// policy's holdout must be its holdout, or shoppers held out of offers get bundle
        /// discounts. Without it the holdouts are not compared (said on stderr).
        #[arg(long)]
        offers_policy: Option<PathBuf>,
    },
    /// Create the automatic discount that runs the `offers` Function with a policy (or, with
    /// --update, set a new policy on it), using the app's own token: `$app` metafields set
    /// through another app land where the Function never reads them.
    #[command(group(clap::ArgGroup::new("what").required(true).args(["policy", "recompile", "show"])))]
    Discount {
        /// The policy JSON (format: engine/src/policy.rs), checked as `compile-policy` checks it.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Compile the policy JSON the discount (gid://shopify/DiscountAutomaticNode/<n>, or <n>;
        /// or a code discount, gid://shopify/DiscountCodeNode/<n>) holds now and store the
        /// compiled form beside it (compare-and-set: a policy changed meanwhile is refused), for
        /// a policy written without one: checkouts parse such a JSON on every run (about 0.1 M
        /// instructions more). The settings page writes both.
        #[arg(long, value_name = "GID", conflicts_with_all = ["policy", "title", "update", "combines_with"])]
        recompile: Option<String>,
        /// Print the policy the discount (automatic, or a code discount's GID) holds now (as the
        /// settings page in the admin saved it), laid out, for the commands that read a policy
        /// file (`measure --policy`, `cart-transform --offers-policy`, `compile-bundles
        /// --offers-policy`); whether its compiled form is current goes to stderr.
        #[arg(long, value_name = "GID", conflicts_with_all = ["policy", "title", "update", "combines_with", "recompile", "bundle_policy"])]
        show: Option<String>,
        /// The discount's title (default "marginwise offers"; on --update, unchanged unless given).
        #[arg(long)]
        title: Option<String>,
        /// The discount to update (gid://shopify/DiscountAutomaticNode/<n>, or just <n>), as the
        /// create printed it.
        #[arg(long)]
        update: Option<String>,
        /// Other discount classes it combines with: product, order, shipping, or none (default
        /// none; on --update, unchanged unless given).
        #[arg(long, value_enum, value_delimiter = ',')]
        combines_with: Option<Vec<CombineClass>>,
        /// The cart transform's bundle policy JSON: refused unless its holdout is this policy's,
        /// or shoppers held out of offers get bundle discounts. Without it the holdouts are not
        /// compared (said on stderr).
        #[arg(long)]
        bundle_policy: Option<PathBuf>,
        #[command(flatten)]
        shop: ShopArgs,
    },
    /// Create the cart transform that runs the `bundles` Function with a bundle policy and bundle
    /// definitions, using the app's own token; when the shop has it already (one per function),
    /// set its metafields instead.
    CartTransform {
        /// The bundle policy JSON (format: engine/src/bundle/policy.rs).
        #[arg(long)]
        policy: PathBuf,
        /// The bundle definitions (format: model-pipeline/src/cart_transform.rs).
        #[arg(long)]
        bundles: PathBuf,
        /// The discount policy JSON: the bundle policy's holdout must be its holdout (as
        /// `compile-bundles --offers-policy` checks). Without it (or --offers-discount) the
        /// holdouts are not compared (said on stderr).
        #[arg(long, conflicts_with = "offers_discount")]
        offers_policy: Option<PathBuf>,
        /// Instead of --offers-policy: the discount whose stored policy is in force (as the
        /// settings page in the admin saved it), read from the store.
        #[arg(long, value_name = "GID")]
        offers_discount: Option<String>,
        #[command(flatten)]
        shop: ShopArgs,
    },
    /// Handle Shopify's mandatory privacy webhooks (customers/data_request, customers/redact,
    /// shop/redact): serve POST /webhooks/compliance on a loopback address behind a TLS proxy,
    /// or handle one captured delivery. Signatures are checked with the app's client secret
    /// (--secret-file, else $SHOPIFY_API_SECRET, else $SHOPIFY_CLIENT_SECRET).
    Webhooks {
        /// Serve on this loopback address, e.g. 127.0.0.1:8081.
        #[arg(long, required_unless_present = "replay", conflicts_with = "replay")]
        listen: Option<String>,
        /// Handle one captured delivery: the raw body as received.
        #[arg(long, requires_all = ["topic", "hmac"])]
        replay: Option<PathBuf>,
        /// The delivery's X-Shopify-Topic (with --replay).
        #[arg(long, requires = "replay")]
        topic: Option<String>,
        /// The delivery's X-Shopify-Hmac-Sha256 (with --replay).
        #[arg(long, requires = "replay")]
        hmac: Option<String>,
        /// The folder `score` wrote and `apply` applied (its lines about a redacted customer are
        /// removed).
        #[arg(long, required_unless_present = "shops")]
        plan: Option<PathBuf>,
        /// The state database (default: <plan>/sync-state.sqlite).
        #[arg(long)]
        state: Option<PathBuf>,
        /// Where data-request files are written (default: <plan>/data-requests).
        #[arg(long)]
        data_requests: Option<PathBuf>,
        /// File holding the app's client secret (else $SHOPIFY_API_SECRET, else
        /// $SHOPIFY_CLIENT_SECRET: webhooks are signed with the same secret).
        #[arg(long)]
        secret_file: Option<PathBuf>,
        /// A bulk export folder `marginwise export --out` wrote (repeatable). customers/redact
        /// rewrites its customers.jsonl and orders.jsonl without the customer's line, their
        /// orders and those orders' line items (lines that cannot be read are kept and counted);
        /// customers/data_request includes those lines; shop/redact removes its files (and the
        /// folder when left empty). Without it the export folders keep the customer's data.
        #[arg(long = "export", value_name = "DIR")]
        export: Vec<PathBuf>,
        /// Serve several shops (Shopify sends every shop's deliveries to the app's one address):
        /// a JSON file {"shops": [{"credentials": FILE, "plan": DIR, "export": [DIR], "state":
        /// FILE, "data_requests": DIR}, ...]}, each entry one shop (named by "shop" or by its
        /// credentials file's "shop", which must agree; never by $SHOPIFY_SHOP), relative paths
        /// from the file's folder; "refresh": DIR (a `marginwise refresh` folder) instead of
        /// "plan" serves its plan/ and export/. Instead of --plan/--state/--data-requests/--export
        /// and the shop flags.
        #[arg(long, conflicts_with_all = ["plan", "state", "data_requests", "export", "shop", "token", "credentials", "endpoint"])]
        shops: Option<PathBuf>,
        #[command(flatten)]
        shop: ShopArgs,
    },
    /// Measure the incremental margin of the offers program: split the export's customers into
    /// the policy's holdout and treated groups (the Functions' own split on the customer GID) and
    /// compare their margin per customer since the program started.
    #[command(group(clap::ArgGroup::new("source").required(true).args(["policy", "discount"])))]
    Measure {
        /// The export folder `score` reads (customers.jsonl, products.jsonl, orders.jsonl).
        #[arg(long)]
        input: PathBuf,
        /// The discount policy JSON the program runs with (its `holdout` salt and share).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Instead of --policy: the discount (gid://shopify/DiscountAutomaticNode/<n>, or <n>)
        /// whose stored policy is in force, read from the store (with --shop, a token or
        /// credentials as for `apply`), so a holdout changed in the admin is the one measured.
        #[arg(long, value_name = "GID")]
        discount: Option<String>,
        /// Program start: only orders processed at or after it count (`2026-01-31`, midnight
        /// UTC, or an ISO 8601 timestamp with an offset).
        #[arg(long)]
        since: String,
        /// Where measure.json is written.
        #[arg(long)]
        out: PathBuf,
        /// The cart transform's bundle policy JSON (the file `compile-bundles --policy` reads):
        /// refused unless its holdout is the policy's, since bundle discounts given to held-out
        /// customers would contaminate the holdout group. Without it this is not checked (said in
        /// the output).
        #[arg(long)]
        bundle_policy: Option<PathBuf>,
        #[command(flatten)]
        shop: ShopArgs,
    },
    /// Say what the Functions' log lines mean: every `mw offer=...` and `mw bundles ...` line in
    /// the file (or standard input), as `shopify app logs` prints them (plain or --json) or as
    /// a run-log payload, with each reason code in words and what the merchant can do.
    Explain {
        /// The log text; standard input when absent or `-`.
        file: Option<PathBuf>,
    },
    /// Authorize marginwise on a store with the OAuth authorization code grant (a store outside
    /// the app's own organization, where the client credentials grant does not work): prints
    /// the address where the merchant approves the app, takes Shopify's callback, and writes an
    /// expiring access token and its refresh token into --credentials FILE. Every command given
    /// that file then uses the token and renews it (the file is rewritten on each renewal).
    Auth {
        /// Shop domain (example.myshopify.com); else the file's "shop" or $SHOPIFY_SHOP.
        #[arg(long)]
        shop: Option<String>,
        /// The credentials file the tokens go into: created when missing (readable by its owner
        /// only), else its tokens replaced and its other keys kept. The app's client id and
        /// secret come from its "client_id" and "client_secret", else $SHOPIFY_CLIENT_ID and
        /// $SHOPIFY_CLIENT_SECRET.
        #[arg(long)]
        credentials: PathBuf,
        /// Where Shopify sends the merchant's browser after the approval: one of the app's
        /// `[auth] redirect_urls` (shopify.app.toml). On http://127.0.0.1:<port>/... marginwise
        /// listens itself; on any other address, paste the address the browser was sent to.
        #[arg(long, default_value = "http://127.0.0.1:3457/auth/callback")]
        redirect_uri: String,
        /// Seconds to wait for the approval on a loopback redirect (at most a day).
        #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
        wait: u64,
        /// GraphQL endpoint of a local stand-in (loopback only), whose grants stand in for the shop's.
        #[arg(long)]
        endpoint: Option<String>,
        /// Do not ask for a new approval: check that the tokens in --credentials FILE still
        /// work (one read, renewing the access token when it is due) and print when they
        /// expire. For a scheduled job's first step, or after an error about the token.
        #[arg(long, conflicts_with_all = ["redirect_uri", "wait"])]
        check: bool,
        /// Ask for every scope but `read_all_orders`, for an app whose `shopify.app.toml` leaves
        /// it out until Shopify grants it on request (the export then sees the last 60 days of
        /// orders); authorize again without this flag once it is granted.
        #[arg(long, conflicts_with = "check")]
        without_all_orders: bool,
    },
    /// Generate a store of this many customers and time the pipeline to the plan.
    Bench {
        #[arg(long, default_value_t = 1_000_000)]
        customers: u32,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Where the generated store and plan go (reused when already generated).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// A discount class `--combines-with` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CombineClass {
    Product,
    Order,
    Shipping,
    /// Combines with no other discount.
    #[value(name = "none")]
    Nothing,
}

fn combines_with(classes: &[CombineClass]) -> anyhow::Result<install::CombinesWith> {
    anyhow::ensure!(
        !(classes.contains(&CombineClass::Nothing) && classes.len() > 1),
        "--combines-with: `none` cannot be given with a discount class"
    );
    Ok(install::CombinesWith {
        product: classes.contains(&CombineClass::Product),
        order: classes.contains(&CombineClass::Order),
        shipping: classes.contains(&CombineClass::Shipping),
    })
}

/// The discount node GID a flag names: the GID, or its number (an automatic discount's); a code
/// discount's GID where `codes` allows one (`--show`, `--recompile`).
fn discount_gid(flag: &str, given: &str, codes: bool) -> anyhow::Result<String> {
    const AUTOMATIC: &str = "gid://shopify/DiscountAutomaticNode/";
    const CODE: &str = "gid://shopify/DiscountCodeNode/";
    // The settings page's API types name the discount `DiscountAutomaticApp/<n>` (or
    // `DiscountCodeApp/<n>`); taken to be the number its node carries too (not seen on a real
    // store).
    let (prefix, number) = if let Some(number) = given
        .strip_prefix(CODE)
        .or_else(|| given.strip_prefix("gid://shopify/DiscountCodeApp/"))
    {
        anyhow::ensure!(
            codes,
            "{flag} {given:?}: a code discount; marginwise creates and updates automatic \
             discounts only (a code discount's policy is set in its settings page in the admin; \
             `discount --show` and `--recompile` read and recompile it)"
        );
        (CODE, number)
    } else {
        let number = given
            .strip_prefix(AUTOMATIC)
            .or_else(|| given.strip_prefix("gid://shopify/DiscountAutomaticApp/"))
            .unwrap_or(given);
        (AUTOMATIC, number)
    };
    match number.parse::<u64>() {
        Ok(number) => Ok(format!("{prefix}{number}")),
        Err(_) => anyhow::bail!(
            "{flag} {given:?}: expected the discount's GID as `marginwise discount` printed it \
             ({AUTOMATIC}<number>, or the number){}",
            if codes {
                format!(", or a code discount's ({CODE}<number>)")
            } else {
                String::new()
            }
        ),
    }
}

/// When a policy that does not compile looks like the other kind (the discount's has `offers`,
/// the cart transform's `discount`), which commands read it.
fn swapped_policy_hint(text: &str, wanted: &str) -> &'static str {
    let Ok(serde_json::Value::Object(keys)) = serde_json::from_str::<serde_json::Value>(text)
    else {
        return "";
    };
    match (
        wanted,
        keys.contains_key("offers"),
        keys.contains_key("discount"),
    ) {
        ("bundle", true, false) => {
            " (it has `offers`: it looks like the discount's policy, which `compile-policy`, \
             `discount --policy` and `--offers-policy` read)"
        }
        ("discount", false, true) => {
            " (it has `discount`: it looks like the cart transform's bundle policy, which \
             `compile-bundles --policy` and `cart-transform --policy` read)"
        }
        _ => "",
    }
}

/// Reads and compiles a discount policy as `compile-policy` does: its text and the `metafields`
/// argument that sets it.
fn compile_policy(policy: &Path) -> anyhow::Result<(String, serde_json::Value)> {
    let text = std::fs::read_to_string(policy)
        .with_context(|| format!("reading the policy {}", policy.display()))?;
    let metafields = model_pipeline::policy::policy_metafields(&text).with_context(|| {
        format!(
            "compiling {}{}",
            policy.display(),
            swapped_policy_hint(&text, "discount")
        )
    })?;
    Ok((text, metafields))
}

/// Reads and checks a bundle policy, bundle definitions and (when given) the offers policy's
/// holdout as `compile-bundles` does, notes on stderr: the cart transform's `metafields` argument.
/// The discount (offers) policy a bundle policy's holdout is compared with: where it was read
/// (for messages) and its text.
struct OffersPolicy {
    source: PathBuf,
    text: String,
}

impl OffersPolicy {
    fn read(path: &Path) -> anyhow::Result<OffersPolicy> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the offers policy {}", path.display()))?;
        Ok(OffersPolicy {
            source: path.to_path_buf(),
            text,
        })
    }
}

fn compile_bundles(
    policy: &Path,
    bundles: Option<&Path>,
    offers_policy: Option<&OffersPolicy>,
) -> anyhow::Result<serde_json::Value> {
    use model_pipeline::cart_transform::{
        BundleFile, CartTransformError, bundles_note, cart_transform_metafields,
    };
    let text = std::fs::read_to_string(policy)
        .with_context(|| format!("reading the bundle policy {}", policy.display()))?;
    let definitions = match bundles {
        None => None,
        Some(path) => {
            let file = std::fs::read_to_string(path)
                .with_context(|| format!("reading the bundles {}", path.display()))?;
            let definitions = BundleFile::parse(&file)
                .and_then(|file| file.definitions())
                .with_context(|| format!("reading the bundles {}", path.display()))?;
            Some(definitions)
        }
    };
    let metafields = cart_transform_metafields(&text, definitions.as_deref()).map_err(|error| {
        match (error, bundles) {
            // The definitions were read and checked; what is wrong is how they are stored.
            (CartTransformError::Bundles(error), Some(path)) => anyhow::Error::new(error)
                .context(format!("checking the bundles {}", path.display())),
            (error, _) => anyhow::Error::new(error).context(format!(
                "compiling the bundle policy {}{}",
                policy.display(),
                swapped_policy_hint(&text, "bundle")
            )),
        }
    })?;
    match offers_policy {
        Some(offers_policy) => {
            let offers = model_pipeline::policy::offers_policy_holdout(&offers_policy.text)
                .with_context(|| format!("reading {}", offers_policy.source.display()))?;
            check_bundle_holdout(&offers_policy.source, offers, policy, &text)?;
        }
        None => eprintln!(
            "note: the bundle policy's holdout was not compared with the offers policy's; \
             pass --offers-policy FILE (the discount policy JSON) to check that both hold \
             out the same shoppers"
        ),
    }
    if let Some(note) = bundles_note(&metafields) {
        eprintln!("note: {note}");
    }
    Ok(metafields)
}

/// The arguments of `marginwise discount`.
struct DiscountArgs {
    policy: PathBuf,
    title: Option<String>,
    update: Option<String>,
    combines_with: Option<Vec<CombineClass>>,
    bundle_policy: Option<PathBuf>,
    shop: ShopArgs,
    quiet: bool,
}

/// `marginwise discount`: everything is checked before the one request is sent.
fn discount(args: DiscountArgs) -> anyhow::Result<()> {
    let (text, metafields) = compile_policy(&args.policy)?;
    let policy = marginwise_engine::policy::parse(&text)
        .policy
        .with_context(|| format!("reading {}", args.policy.display()))?;
    compare_bundle_holdout(
        &args.policy,
        policy.holdout.clone(),
        args.bundle_policy.as_deref(),
    )?;
    let classes = install::discount_classes(&policy);
    if classes.is_empty() {
        anyhow::bail!(
            "{}: the policy has no offers, so the discount would have no discount class and give \
             nothing; add an offer, or deactivate the discount in the admin",
            args.policy.display()
        );
    }
    let update = args
        .update
        .as_deref()
        .map(|id| discount_gid("--update", id, false))
        .transpose()?;
    let settings = DiscountSettings {
        title: args.title,
        classes,
        combines_with: args
            .combines_with
            .as_deref()
            .map(combines_with)
            .transpose()?,
        metafields: ConfigMetafield::list(&metafields)?,
        starts_at: jiff::Timestamp::from_second(jiff::Timestamp::now().as_second())
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
            .to_string(),
    };
    let mut client = discounts_client(&args.shop, args.quiet)?;
    let (discount, done) = match &update {
        None => (install::create_discount(&mut client, &settings)?, "created"),
        Some(id) => (
            install::update_discount(&mut client, id, &settings)?,
            "updated",
        ),
    };
    say!("{}", discount.id)?;
    say!(
        "{done} automatic discount \"{}\" running function \"{}\": classes {}; combines with {}; \
         starts {}; metafields {}",
        discount.title,
        install::OFFERS_FUNCTION,
        discount.classes.join(", "),
        discount.combines_with,
        discount.starts_at,
        install::metafields_summary(&settings.metafields)
    )?;
    Ok(())
}

/// An Admin client for the commands that read or write a discount.
fn discounts_client(shop: &ShopArgs, quiet: bool) -> anyhow::Result<AdminClient> {
    let options = ClientOptions {
        notify_retries: !quiet,
        scopes_needed: vec!["write_discounts"],
        ..ClientOptions::default()
    };
    Ok(AdminClient::new(shop.resolve()?, options))
}

/// The policy the discount `given` (its GID or number, which `flag` named) holds now, with the
/// discount's GID.
fn discount_policy(
    client: &mut AdminClient,
    flag: &str,
    given: &str,
) -> anyhow::Result<(String, install::HeldPolicy)> {
    let id = discount_gid(flag, given, true)?;
    let held = install::held_policy(client, &id)?.with_context(|| {
        format!(
            "discount {id} holds no $app.policy: set one in the discount's settings in the admin \
             or with `marginwise discount --update`"
        )
    })?;
    Ok((id, held))
}

/// `marginwise discount --show GID`: the policy the discount holds, laid out, on stdout.
fn show_discount_policy(id: &str, shop: &ShopArgs, quiet: bool) -> anyhow::Result<()> {
    let mut client = discounts_client(shop, quiet)?;
    let (_, held) = discount_policy(&mut client, "--show", id)?;
    let laid_out = serde_json::from_str::<serde_json::Value>(&held.json)
        .ok()
        .and_then(|value| serde_json::to_string_pretty(&value).ok())
        .unwrap_or_else(|| held.json.clone());
    say!("{laid_out}")?;
    eprintln!(
        "{}",
        if held.compiled_is_current() {
            "note: its compiled form is current (checkouts read it)"
        } else {
            "note: it has no current compiled form (checkouts parse the JSON); `marginwise discount --recompile` writes one"
        }
    );
    Ok(())
}

/// `marginwise discount --recompile GID`: reads the policy the discount holds, checks it as
/// `compile-policy` does (and its holdout against `--bundle-policy`), and stores it with its
/// compiled form, compare-and-set against what was read.
fn recompile_discount(
    id: &str,
    bundle_policy: Option<&Path>,
    shop: &ShopArgs,
    quiet: bool,
) -> anyhow::Result<()> {
    let mut client = discounts_client(shop, quiet)?;
    let (id, held) = discount_policy(&mut client, "--recompile", id)?;
    let source = format!("the policy of discount {id}");
    let metafields = model_pipeline::policy::policy_metafields(&held.json)
        .with_context(|| format!("compiling {source}"))?;
    let policy = marginwise_engine::policy::parse(&held.json)
        .policy
        .with_context(|| format!("reading {source}"))?;
    compare_bundle_holdout(Path::new(&source), policy.holdout, bundle_policy)?;
    let metafields = ConfigMetafield::list(&metafields)?;
    install::store_recompiled(&mut client, &id, &held, &metafields)?;
    say!("{id}")?;
    say!(
        "stored the compiled form of the policy discount {id} holds; metafields {}",
        install::metafields_summary(&metafields)
    )?;
    Ok(())
}

/// `marginwise cart-transform`: everything is checked before the first request is sent.
fn cart_transform(
    policy: &Path,
    bundles: &Path,
    offers_policy: Option<&Path>,
    offers_discount: Option<&str>,
    shop: &ShopArgs,
    quiet: bool,
) -> anyhow::Result<()> {
    let options = ClientOptions {
        notify_retries: !quiet,
        scopes_needed: vec!["write_cart_transforms"],
        ..ClientOptions::default()
    };
    let mut client = AdminClient::new(shop.resolve()?, options);
    let offers = match (offers_policy, offers_discount) {
        (Some(path), _) => Some(OffersPolicy::read(path)?),
        (None, Some(id)) => {
            let (id, held) = discount_policy(&mut client, "--offers-discount", id)?;
            Some(OffersPolicy {
                source: PathBuf::from(format!("the policy of discount {id}")),
                text: held.json,
            })
        }
        (None, None) => None,
    };
    let metafields = compile_bundles(policy, Some(bundles), offers.as_ref())?;
    let metafields = ConfigMetafield::list(&metafields)?;
    let installed = install::install_cart_transform(&mut client, &metafields)?;
    say!("{}", installed.id)?;
    let done = match installed.installed {
        Installed::Created => "created the cart transform",
        Installed::Updated => "updated the metafields of the existing cart transform",
    };
    say!(
        "{done} running function \"{}\" (blockOnFailure {}); metafields {}",
        install::BUNDLES_FUNCTION,
        installed.block_on_failure,
        install::metafields_summary(&metafields)
    )?;
    if installed.block_on_failure {
        eprintln!(
            "note: this cart transform blocks cart and checkout when the function fails \
             (blockOnFailure true; marginwise creates it with false); to change that, delete it \
             (cartTransformDelete) and run this again"
        );
    }
    Ok(())
}

fn score_options(args: &ScoreArgs) -> anyhow::Result<RunOptions> {
    let currency = match &args.currency {
        None => None,
        Some(code) => Some(shop_currency(code).context("--currency")?),
    };
    let bundle_parents = match &args.bundles {
        None => Vec::new(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the bundles {}", path.display()))?;
            model_pipeline::cart_transform::bundle_parents(&text)
                .with_context(|| format!("reading the bundles {}", path.display()))?
        }
    };
    Ok(RunOptions {
        ingest: IngestOptions {
            skip_bad: args.skip_bad,
            opt_out_tag: Some(args.opt_out_tag.clone()).filter(|t| !t.is_empty()),
            currency,
            now: None,
        },
        score: {
            let score = ScoreOptions {
                min_support: args.min_support,
                monthly_discount_rate: args.monthly_discount_rate,
                bundle_parents,
            };
            score.validate().context("--monthly-discount-rate")?;
            score
        },
        skip_report: false,
        state_file: None,
    })
}

fn print_timings(timings: &[Timing]) -> anyhow::Result<()> {
    say!("| stage | wall s | CPU s (all threads) |")?;
    say!("|---|---:|---:|")?;
    let (mut wall, mut cpu) = (0.0, 0.0);
    for t in timings {
        say!(
            "| {} | {:.2} | {:.2} |",
            t.stage,
            t.wall_seconds,
            t.cpu_seconds
        )?;
        wall += t.wall_seconds;
        cpu += t.cpu_seconds;
    }
    say!("| **total** | **{wall:.2}** | **{cpu:.2}** |")?;
    match peak_memory_bytes() {
        Some(bytes) => say!("| peak memory (VmHWM) | {:.0} MB | |", bytes as f64 / 1e6)?,
        None => say!("| peak memory (VmHWM) | unavailable | |")?,
    }
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        say!(
            "\nload average when done (1/5/15 min, other processes included): {}",
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        )?;
    }
    Ok(())
}

fn bench(customers: u32, seed: u64, dir: Option<PathBuf>, quiet: bool) -> anyhow::Result<()> {
    let dir = dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("marginwise-bench-{customers}-{seed}"))
    });
    let store = dir.join("store");
    let marker = store.join("complete");
    if !marker.exists() {
        let started = Instant::now();
        let generated = generate::generate(
            &GeneratorConfig { customers, seed },
            &store,
            Progress::new(quiet),
        )?;
        std::fs::write(&marker, b"")?;
        say!(
            "generated {} customers, {} orders, {} line items ({:.0} MB) in {:.1} s (not part of the pipeline time)",
            generated.customers,
            generated.orders,
            generated.line_items,
            generated.bytes as f64 / 1e6,
            started.elapsed().as_secs_f64()
        )?;
    } else {
        say!("reusing the store generated in {}", store.display())?;
    }
    // The pipeline runs in a child process so that its peak memory is its own, not the
    // generator's.
    let exe = std::env::current_exe().context("locating the marginwise binary")?;
    let out = dir.join("plan");
    let status = std::process::Command::new(exe)
        .arg("--quiet")
        .arg("score")
        .arg("--input")
        .arg(&store)
        .arg("--out")
        .arg(&out)
        .arg("--no-report")
        .arg("--timings")
        .status()
        .context("running marginwise score")?;
    anyhow::ensure!(status.success(), "marginwise score failed: {status}");
    say!(
        "\ncommand: cargo run --release -p model-pipeline --bin marginwise -- bench --customers {customers} --seed {seed}"
    )?;
    say!(
        "machine: {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    )?;
    Ok(())
}

struct ApplyArgs {
    plan: PathBuf,
    shop: ShopArgs,
    local: bool,
    seed_store: Option<PathBuf>,
    state: Option<PathBuf>,
    bulk_threshold: usize,
    exact: bool,
    jitter_seed: Option<u64>,
    poll_ms: Option<u64>,
    quiet: bool,
}

fn apply(args: ApplyArgs) -> anyhow::Result<()> {
    let mut client_options = ClientOptions {
        notify_retries: !args.quiet,
        // Customer profiles and variant offer data.
        scopes_needed: vec!["write_customers", "write_products"],
        ..ClientOptions::default()
    };
    if let Some(seed) = args.jitter_seed {
        let b = &client_options.backoff;
        client_options.backoff =
            model_pipeline::admin::retry::Backoff::new(b.base, b.cap, b.max_attempts, seed);
    }
    let mut options = ApplyOptions::new(
        args.state
            .as_deref()
            .and_then(std::path::Path::parent)
            .unwrap_or(&args.plan),
        sync::apply::COMPARE_EXPONENT,
    );
    options.bulk_threshold = args.bulk_threshold;
    if args.exact {
        options.tolerance = sync::diff::Tolerance::EXACT;
    }
    if let Some(ms) = args.poll_ms {
        options.polling.first = std::time::Duration::from_millis(ms);
        options.polling.max = std::time::Duration::from_millis(ms);
    }
    anyhow::ensure!(
        !args.plan.is_file(),
        "--plan {}: a file; pass the folder that holds it ({}), as `marginwise score --out` \
         wrote it",
        args.plan.display(),
        args.plan
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .display()
    );
    let plan_file = args.plan.join(model_pipeline::plan::PLAN_FILE);
    anyhow::ensure!(
        plan_file.is_file(),
        "no plan in {}: {} is missing (`marginwise score --out {}` writes one)",
        args.plan.display(),
        plan_file.display(),
        args.plan.display()
    );
    // The local stand-in lives as long as this function.
    let local = if args.local {
        let seed = args
            .seed_store
            .context("--local needs --seed-store <export folder> (the store's owners)")?;
        Some(
            local_store::LocalStore::start(local_store::Config {
                seed_dir: Some(seed.clone()),
                ..local_store::Config::default()
            })
            .with_context(|| {
                format!("starting the local stand-in seeded from {}", seed.display())
            })?,
        )
    } else {
        None
    };
    let credentials = match &local {
        Some(store) => Credentials::for_local(&store.url(), AccessToken::new(store.token()))?,
        None => args.shop.resolve()?,
    };
    let state_file = args.state.clone().unwrap_or_else(|| {
        let file = args.plan.join(sync::state::STATE_FILE);
        // A local stand-in starts empty: a state left by another run would describe another store.
        if args.local {
            let _ = std::fs::remove_file(&file);
        }
        file
    });
    say!("applying {} to {}", args.plan.display(), credentials.shop)?;
    let mut client = AdminClient::new(credentials, client_options);
    let report = sync::apply_plan(&mut client, &args.plan, Some(&state_file), &options)
        .with_context(|| format!("applying the plan in {}", args.plan.display()))?;
    // A closed standard output stops the printing, not the verdict: refused values still make
    // the run fail.
    let printed = model_pipeline::stdout::write(format_args!("{}", sync::report_text(&report)))
        .and_then(|()| match &local {
            Some(store) => {
                let stats = store.stats();
                say!(
                    "local stand-in (not Shopify): {} writes applied, {} duplicate writes, {} metafields stored",
                    stats.writes_applied, stats.duplicate_writes, stats.metafields_stored
                )
            }
            None => Ok(()),
        });
    if report.rejected > 0 {
        anyhow::bail!(
            "the store refused {} of the plan's values (listed above; the rest of the plan was \
             applied): fix them in {} and run apply again",
            report.rejected,
            args.plan.display()
        );
    }
    printed?;
    Ok(())
}

struct RefreshArgs {
    dir: Option<PathBuf>,
    shops: Option<PathBuf>,
    /// `--status`, with `--max-age-hours`.
    status: Option<u32>,
    shop: ShopArgs,
    args: ScoreArgs,
    no_report: bool,
    bulk_threshold: usize,
    exact: bool,
    poll_ms: Option<u64>,
    quiet: bool,
    progress: Progress,
}

/// `marginwise refresh --status`: each folder's last run and last success; fails when any has
/// had no success within `max_age_hours`.
fn refresh_status(dirs: &[PathBuf], max_age_hours: u32) -> anyhow::Result<()> {
    let now = jiff::Timestamp::now();
    let max_age = i64::from(max_age_hours) * 3_600;
    let mut stale = Vec::new();
    for dir in dirs {
        // One folder's unreadable record does not hide the others.
        match model_pipeline::refresh::status(dir, max_age, now) {
            Ok(status) => {
                say!("{}", status.line())?;
                if status.stale {
                    stale.push(dir.display().to_string());
                }
            }
            Err(error) => {
                say!("{}: {error:#}: STALE", dir.display())?;
                stale.push(dir.display().to_string());
            }
        }
    }
    anyhow::ensure!(
        stale.is_empty(),
        "{} of {} refresh folders have had no successful run in the last {max_age_hours} h: {}",
        stale.len(),
        dirs.len(),
        stale.join(", ")
    );
    Ok(())
}

/// `marginwise refresh`: one folder, or every shop of a shops file that names one.
fn refresh(args: RefreshArgs) -> anyhow::Result<()> {
    use model_pipeline::refresh::{self, RECORD_FILE, RefreshOptions};
    if let Some(max_age_hours) = args.status {
        let dirs = match (&args.shops, &args.dir) {
            (Some(file), _) => {
                let dirs = model_pipeline::privacy::shops::refresh_folders(file)?;
                anyhow::ensure!(
                    !dirs.is_empty(),
                    "{}: no shop names a \"refresh\" folder",
                    file.display()
                );
                dirs
            }
            (None, Some(dir)) => vec![dir.clone()],
            (None, None) => anyhow::bail!("pass --dir DIR (the refresh folder), or --shops FILE"),
        };
        return refresh_status(&dirs, max_age_hours);
    }
    let mut polling = Polling::default();
    if let Some(ms) = args.poll_ms {
        polling.first = std::time::Duration::from_millis(ms);
        polling.max = std::time::Duration::from_millis(ms);
    }
    let client_options = ClientOptions {
        notify_retries: !args.quiet,
        scopes_needed: vec![
            "read_customers",
            "read_products",
            "read_orders",
            "write_customers",
            "write_products",
        ],
        ..ClientOptions::default()
    };
    let build = |dir: &Path, score: &ScoreArgs| -> anyhow::Result<RefreshOptions> {
        let mut run = score_options(score)?;
        run.skip_report = args.no_report;
        let mut apply = ApplyOptions::new(dir, sync::apply::COMPARE_EXPONENT);
        apply.bulk_threshold = args.bulk_threshold;
        if args.exact {
            apply.tolerance = sync::diff::Tolerance::EXACT;
        }
        apply.polling = polling;
        Ok(RefreshOptions {
            dir: dir.to_path_buf(),
            run,
            apply,
            polling,
            after_score: None,
            before_swap: None,
        })
    };
    let Some(file) = &args.shops else {
        let dir = args
            .dir
            .as_deref()
            .context("pass --dir DIR (the refresh folder), or --shops FILE")?;
        let options = build(dir, &args.args)?;
        let mut client = AdminClient::new(args.shop.resolve()?, client_options);
        let record = refresh::refresh(&mut client, &options, args.progress)?;
        say!(
            "refreshed {} in {}: record in {}",
            record.shop,
            dir.display(),
            dir.join(RECORD_FILE).display()
        )?;
        return Ok(());
    };
    let shops = model_pipeline::privacy::shops::load(file)?;
    let mut failed = Vec::new();
    let mut refreshed = 0_usize;
    for (index, served) in shops.into_iter().enumerate() {
        let name = served
            .shop_domain
            .clone()
            .unwrap_or_else(|| served.credentials.shop.clone());
        let Some(dir) = &served.refresh else {
            eprintln!(
                "note: {} shops[{index}] ({name}) names no \"refresh\" folder: not refreshed",
                file.display()
            );
            continue;
        };
        say!("== {name}: refreshing {}", dir.display())?;
        let mut score = args.args.clone();
        score.bundles = served.bundles.clone();
        let outcome = build(dir, &score).and_then(|options| {
            let mut client = AdminClient::new(served.credentials.clone(), client_options.clone());
            refresh::refresh(&mut client, &options, args.progress)
        });
        match outcome {
            Ok(_) => {
                refreshed += 1;
                say!(
                    "== {name}: refreshed; record in {}",
                    dir.join(RECORD_FILE).display()
                )?;
            }
            Err(error) => {
                eprintln!("error: {name}: {error:#}");
                failed.push(name);
            }
        }
    }
    if !failed.is_empty() {
        anyhow::bail!(
            "{} of {} shops failed to refresh ({}): the errors above say why (and each one's \
             last-refresh.json, when the run got far enough to write one); the others were \
             refreshed",
            failed.len(),
            failed.len() + refreshed,
            failed.join(", ")
        );
    }
    anyhow::ensure!(
        refreshed > 0,
        "{}: no shop names a \"refresh\" folder, so nothing was refreshed",
        file.display()
    );
    Ok(())
}

/// Refuses a bundle policy (`bundle_policy_text`, read from `bundle_policy`) whose holdout is
/// not `offers`, the holdout of the discount policy in `offers_policy`.
/// `discount`'s check of the offers policy's holdout against the cart transform's bundle policy
/// (`--bundle-policy`), or a note on stderr that it was not made.
fn compare_bundle_holdout(
    offers_policy: &Path,
    offers: Option<marginwise_engine::policy::Holdout>,
    bundle_policy: Option<&Path>,
) -> anyhow::Result<()> {
    match bundle_policy {
        Some(bundle_policy) => {
            let bundle_text = std::fs::read_to_string(bundle_policy).with_context(|| {
                format!("reading the bundle policy {}", bundle_policy.display())
            })?;
            check_bundle_holdout(offers_policy, offers, bundle_policy, &bundle_text)
        }
        None => {
            eprintln!(
                "note: the policy's holdout was not compared with the cart transform's bundle \
                 policy; pass --bundle-policy FILE to check that both hold out the same shoppers"
            );
            Ok(())
        }
    }
}

fn check_bundle_holdout(
    offers_policy: &std::path::Path,
    offers: Option<marginwise_engine::policy::Holdout>,
    bundle_policy: &std::path::Path,
    bundle_policy_text: &str,
) -> anyhow::Result<()> {
    use model_pipeline::policy::{PolicyHoldout, check_same_holdout};
    let bundle = model_pipeline::cart_transform::bundle_policy_holdout(bundle_policy_text)
        .with_context(|| format!("reading {}", bundle_policy.display()))?;
    check_same_holdout(
        PolicyHoldout {
            file: offers_policy.display().to_string(),
            holdout: offers,
        },
        PolicyHoldout {
            file: bundle_policy.display().to_string(),
            holdout: bundle,
        },
    )?;
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let progress = Progress::new(cli.quiet);
    match cli.command {
        Command::Generate {
            customers,
            seed,
            out,
        } => {
            let generated =
                generate::generate(&GeneratorConfig { customers, seed }, &out, progress)?;
            say!(
                "wrote {} customers, {} products ({} variants), {} orders, {} line items to {}",
                generated.customers,
                generated.products,
                generated.variants,
                generated.orders,
                generated.line_items,
                out.display()
            )?;
        }
        Command::Score {
            input,
            out,
            args,
            state,
            no_report,
            timings,
        } => {
            let mut options = score_options(&args)?;
            options.skip_report = no_report;
            options.state_file = state;
            let outcome = pipeline::run(&input, &out, &options, progress)?;
            model_pipeline::stdout::write(format_args!("{}", pipeline::summary_text(&outcome)))?;
            if let Some(report) = &outcome.report {
                say!("report: {}", report.display())?;
            }
            if timings {
                say!()?;
                print_timings(&outcome.timings)?;
            }
        }
        Command::Demo {
            out,
            customers,
            seed,
            policy,
            shop,
        } => {
            let store = if shop.given() {
                Some(shop.resolve()?)
            } else {
                None
            };
            demo::run(
                &demo::DemoOptions {
                    out,
                    customers,
                    seed,
                    policy,
                    store,
                },
                progress,
            )?;
        }
        Command::Export { out, shop } => {
            let options = ClientOptions {
                notify_retries: !cli.quiet,
                scopes_needed: vec!["read_customers", "read_products", "read_orders"],
                ..ClientOptions::default()
            };
            let mut client = AdminClient::new(shop.resolve()?, options);
            let files = sync::export::export(&mut client, &out, Polling::default())?;
            for file in files {
                say!(
                    "{}: {} objects, {} bytes (bulk operation {})",
                    out.join(&file.file).display(),
                    file.objects,
                    file.bytes,
                    file.operation_id
                )?;
            }
        }
        Command::Apply {
            plan,
            shop,
            local,
            seed_store,
            state,
            bulk_threshold,
            exact,
            jitter_seed,
            poll_ms,
        } => apply(ApplyArgs {
            plan,
            shop,
            local,
            seed_store,
            state,
            bulk_threshold,
            exact,
            jitter_seed,
            poll_ms,
            quiet: cli.quiet,
        })?,
        Command::Refresh {
            dir,
            shops,
            status,
            max_age_hours,
            shop,
            args,
            no_report,
            bulk_threshold,
            exact,
            poll_ms,
        } => refresh(RefreshArgs {
            dir,
            shops,
            status: status.then_some(max_age_hours),
            shop,
            args,
            no_report,
            bulk_threshold,
            exact,
            poll_ms,
            quiet: cli.quiet,
            progress,
        })?,
        Command::Bench {
            customers,
            seed,
            dir,
        } => bench(customers, seed, dir, cli.quiet)?,
        Command::Webhooks {
            listen,
            replay,
            topic,
            hmac,
            plan,
            state,
            data_requests,
            secret_file,
            export,
            shops,
            shop,
        } => {
            use model_pipeline::privacy::command::{self, Mode, WebhooksOptions};
            use model_pipeline::privacy::shops::{self as served, ServedShop};
            let mode = match (listen, replay, topic, hmac) {
                // A captured delivery is replayed by hand: a mistyped topic would be answered
                // "ignored" and the redaction silently not done.
                (_, Some(_), Some(topic), _)
                    if model_pipeline::privacy::Topic::parse(&topic).is_none() =>
                {
                    anyhow::bail!(
                        "--topic {topic:?} is not a topic marginwise acts on: customers/redact, \
                         customers/data_request or shop/redact (the delivery's X-Shopify-Topic)"
                    )
                }
                (_, Some(payload), Some(topic), Some(hmac)) => Mode::Replay {
                    payload,
                    topic,
                    hmac,
                    shop_domain: None,
                },
                (Some(address), ..) => Mode::Listen(address),
                _ => anyhow::bail!("pass --listen ADDRESS, or --replay FILE --topic T --hmac H"),
            };
            let shops = match (shops, plan) {
                (Some(file), _) => served::load(&file)?,
                (None, Some(plan)) => vec![ServedShop {
                    credentials: shop.resolve()?,
                    // Beside a local --endpoint, --shop (or $SHOPIFY_SHOP) names the shop served.
                    shop_domain: match shop.endpoint {
                        Some(_) => shop
                            .shop
                            .clone()
                            .or_else(|| std::env::var(model_pipeline::admin::SHOP_ENV).ok()),
                        None => None,
                    },
                    plan,
                    state,
                    data_requests,
                    export_dirs: export,
                    refresh: None,
                    bundles: None,
                }],
                (None, None) => anyhow::bail!("pass --plan DIR, or --shops FILE"),
            };
            command::run(WebhooksOptions {
                mode,
                secret_file,
                shops,
            })?;
        }
        Command::Auth {
            shop,
            credentials,
            redirect_uri,
            wait,
            endpoint,
            check,
            without_all_orders,
        } => {
            use model_pipeline::admin::{self, oauth};
            let scopes = oauth::scopes(!without_all_orders);
            if check {
                let given = match &endpoint {
                    Some(endpoint) => {
                        Credentials::resolve_local(endpoint, None, Some(&credentials))?
                    }
                    None => Credentials::resolve(shop.as_deref(), None, Some(&credentials))?,
                };
                let options = ClientOptions {
                    notify_retries: !cli.quiet,
                    ..ClientOptions::default()
                };
                let status = model_pipeline::authorize::check(given, options)?;
                say!("{status}")?;
                return Ok(());
            }
            let shop = admin::resolve_shop(shop.as_deref(), Some(&credentials))?;
            let client = admin::resolve_app_client(Some(&credentials))?;
            let grant_to = match &endpoint {
                Some(endpoint) => Credentials::for_local(endpoint, client.clone())?,
                None => Credentials::for_shop(&shop, client.clone())?,
            };
            let options = ClientOptions {
                notify_retries: !cli.quiet,
                scopes_needed: scopes.clone(),
                ..ClientOptions::default()
            };
            let authorized = model_pipeline::authorize::authorize(
                model_pipeline::authorize::AuthorizeRequest {
                    credentials: grant_to,
                    shop,
                    client_id: client.client_id().to_string(),
                    client_secret: client.secret().to_string(),
                    file: credentials,
                    redirect_uri,
                    scopes: scopes.join(","),
                    wait: std::time::Duration::from_secs(wait),
                    client_options: options,
                },
                &mut std::io::stdin().lock(),
                &mut std::io::stderr(),
            )?;
            say!("{authorized}")?;
        }
        Command::Explain { file } => {
            use model_pipeline::explain::{find_log_lines, render, run_without_logs};
            use std::io::BufRead as _;
            let mut found = 0;
            // The log lines in `text`, each printed in words; how many.
            let explain = |text: &str| -> anyhow::Result<usize> {
                let lines = find_log_lines(text);
                for line in &lines {
                    say!("{}", render(line))?;
                }
                Ok(lines.len())
            };
            // What came in, kept while it is small enough to be a run-log payload (one run's
            // input is at most 128 kB; pretty-printed JSON spans many lines): read whole at the
            // end to say why it had no log line.
            const KEPT: usize = 4 << 20;
            let mut kept = String::new();
            match file.as_deref() {
                Some(path) if path != Path::new("-") => {
                    kept = std::fs::read_to_string(path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    found += explain(&kept)?;
                }
                // Line by line, each explained as it comes: `shopify app logs` keeps streaming.
                _ => {
                    for line in std::io::stdin().lock().lines() {
                        let line = line.context("reading the log from standard input")?;
                        found += explain(&line)?;
                        if found == 0 && kept.len() + line.len() < KEPT {
                            kept.push_str(&line);
                            kept.push('\n');
                        }
                    }
                }
            }
            if found == 0 {
                anyhow::ensure!(
                    !run_without_logs(&kept),
                    "the input is a Function run whose logs are empty (a fixture in \
                     tests/fixtures/ keeps the run's input and output only): replay it to get \
                     its log line, `cargo run -q --release -p wasm-runner --bin mw-run -- run \
                     FILE | marginwise explain`"
                );
                anyhow::bail!(
                    "no marginwise log line (`mw offer=...` or `mw bundles ...`) in the input"
                );
            }
        }
        Command::Measure {
            input,
            policy,
            discount,
            since,
            out,
            bundle_policy,
            shop,
        } => {
            use model_pipeline::measure;
            let (policy, text) = match (policy, discount) {
                (Some(policy), _) => {
                    let text = std::fs::read_to_string(&policy)
                        .with_context(|| format!("reading the policy {}", policy.display()))?;
                    (policy, text)
                }
                (None, Some(id)) => {
                    let mut client = discounts_client(&shop, cli.quiet)?;
                    let (id, held) = discount_policy(&mut client, "--discount", &id)?;
                    (
                        PathBuf::from(format!("the policy of discount {id}")),
                        held.json,
                    )
                }
                (None, None) => anyhow::bail!("--policy FILE or --discount GID is needed"),
            };
            let holdout =
                measure::policy_holdout(&text).with_context(|| format!("{}", policy.display()))?;
            // Checked before the export is read: a contaminated holdout is not worth measuring.
            if let Some(bundle_policy) = &bundle_policy {
                let text = std::fs::read_to_string(bundle_policy).with_context(|| {
                    format!("reading the bundle policy {}", bundle_policy.display())
                })?;
                check_bundle_holdout(&policy, Some(holdout.clone()), bundle_policy, &text)?;
            }
            let since = measure::parse_since(&since)?;
            let mut measurement = measure::measure(&input, &holdout, since, progress)
                .with_context(|| format!("measuring {}", input.display()))?;
            measurement.bundle_policy = bundle_policy.map(|path| path.display().to_string());
            for line in measure::table(&measurement) {
                say!("{line}")?;
            }
            let path = measure::write(&out, &measurement)?;
            say!("\nwrote {}", path.display())?;
        }
        Command::CompilePolicy { policy } => {
            let (_, metafields) = compile_policy(&policy)?;
            say!("{}", serde_json::to_string_pretty(&metafields)?)?;
        }
        Command::CompileBundles {
            policy,
            bundles,
            offers_policy,
        } => {
            let metafields = compile_bundles(
                &policy,
                bundles.as_deref(),
                offers_policy
                    .as_deref()
                    .map(OffersPolicy::read)
                    .transpose()?
                    .as_ref(),
            )?;
            say!("{}", serde_json::to_string_pretty(&metafields)?)?;
        }
        Command::Discount {
            show: Some(id),
            shop,
            ..
        } => show_discount_policy(&id, &shop, cli.quiet)?,
        Command::Discount {
            recompile: Some(id),
            bundle_policy,
            shop,
            ..
        } => recompile_discount(&id, bundle_policy.as_deref(), &shop, cli.quiet)?,
        Command::Discount {
            policy,
            title,
            update,
            combines_with,
            bundle_policy,
            shop,
            recompile: None,
            show: None,
        } => discount(DiscountArgs {
            policy: policy.context("--policy FILE is needed (or --recompile GID)")?,
            title,
            update,
            combines_with,
            bundle_policy,
            shop,
            quiet: cli.quiet,
        })?,
        Command::CartTransform {
            policy,
            bundles,
            offers_policy,
            offers_discount,
            shop,
        } => cart_transform(
            &policy,
            &bundles,
            offers_policy.as_deref(),
            offers_discount.as_deref(),
            &shop,
            cli.quiet,
        )?,
    }
    Ok(())
}

/// The error and its causes, as `{:#}` prints them, without a cause the message before it already
/// ends with (an error whose message quotes its source would otherwise print it twice).
fn describe(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if text.ends_with(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of standard output went away (`| head`): a clean stop, as for any filter.
        Err(error) if model_pipeline::stdout::is_closed(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", describe(&error));
            ExitCode::FAILURE
        }
    }
}
