//! The README's main job, end to end against a store: generate the sample store, start the local
//! stand-in of the Admin API seeded with it, export it through bulk queries, score it into a
//! plan, apply the plan, read the metafields back from the store, and ask the engine what a set
//! of checkouts would get. With credentials, the same runs against that store instead (nothing
//! is generated; its own history is exported and the plan is written to it).
//!
//! Every request is built from the metafield values read back from the store, exactly the text
//! the Functions would read there (`$app.profile` of the customer, `$app.offer` of each
//! variant), not from the pipeline's in-memory scores: the demo therefore exercises the writer,
//! the write-back and the reader end to end.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use marginwise_engine::format::{self, BundleComponent, BundleDefinition};
use marginwise_engine::format::{PROFILE_KEY, VARIANT_KEY};
use marginwise_engine::money::format_decimal_minor;
use marginwise_engine::{
    BundleDecision, BundleLine, BundleRequest, CustomerFacts, Decision, DeliveryGroup,
    DiscountClasses, Line, PolicySource, Profile, ProfileInput, Request, Segment, Target,
    VariantData, VariantInput, evaluate, evaluate_bundles, holdout,
};

use crate::admin::{AccessToken, AdminClient, ClientOptions, Credentials};
use crate::cart_transform::{BundleFile, cart_transform_metafields};
use crate::generate::{self, DEFAULT_OPT_OUT_TAG, GeneratorConfig};
use crate::ingest::IngestOptions;
use crate::pipeline::{self, Outcome, RunOptions};
use crate::plan::{self, MetafieldsSetInput, PLAN_FILE, customer_gid};
use crate::progress::Progress;
use crate::say;
use crate::sync::{self, Polling, apply::ApplyOptions};

/// The bundled sample policy (seven offers, including a slot offer and free shipping).
pub const SAMPLE_POLICY: &str = include_str!("../sample/policy.json");
/// The cart transform's `$app.policy` in the demo: bundle discounts by segment and value.
pub const SAMPLE_BUNDLE_POLICY: &str = include_str!("../sample/bundle-policy.json");
/// File with every scenario's full decision text.
pub const SCENARIOS_FILE: &str = "scenarios.txt";
/// Folder (inside the output folder) the store's export goes to.
pub const EXPORT_DIR: &str = "export";
/// The delivery cost every scenario's cart carries (presentment currency).
const SHIPPING_COST: &str = "7.50";

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub out: PathBuf,
    pub customers: u32,
    pub seed: u64,
    pub policy: Option<PathBuf>,
    /// A real store (or an external stand-in); `None` runs the embedded local stand-in.
    pub store: Option<Credentials>,
}

/// One evaluated scenario.
#[derive(Debug, Clone)]
pub struct ScenarioResult {
    pub name: String,
    pub segment: String,
    pub offer: String,
    pub discount: String,
    pub margin_kept: String,
    pub reasons: String,
    pub cart_lines: Decision,
    pub delivery: Decision,
    /// The cart transform's decision, for the bundle scenario (its offer decisions are empty).
    pub bundle: Option<BundleDecision>,
}

#[derive(Debug)]
pub struct DemoOutcome {
    pub scenarios: Vec<ScenarioResult>,
    pub report: Option<PathBuf>,
    pub table: String,
    pub apply: sync::apply::ApplyReport,
    /// Metafields read back from the store (profiles and variant data).
    pub read_back: usize,
    /// The local stand-in's write counters, when it ran.
    pub local_writes: Option<local_store::Stats>,
}

/// A variant as the demo needs it: its metafield value and its price.
#[derive(Debug, Clone)]
struct PlanVariant {
    /// Numeric part of the variant's GID.
    id: u64,
    value: String,
    data: VariantData,
    price_minor: i64,
}

struct Scenario {
    name: String,
    customer: Option<(u64, i64)>,
    lines: Vec<(PlanVariant, i64)>,
}

/// Runs the demo and prints the table.
pub fn run(options: &DemoOptions, progress: Progress) -> anyhow::Result<DemoOutcome> {
    // The policy is checked as `compile-policy` checks it before any work: a policy the
    // Functions would skip offers of would make the scenarios show only why.
    let policy = match &options.policy {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the policy {}", path.display()))?,
        None => SAMPLE_POLICY.to_string(),
    };
    crate::policy::policy_metafields(&policy)
        .with_context(|| format!("the policy {}", policy_name(options)))?;
    // The local stand-in, when used, lives until the scenarios are read back.
    // The sample store's bundles (a store given by the user has none here).
    let mut bundles_text = None;
    let (credentials, local, polling) = match &options.store {
        Some(credentials) => (credentials.clone(), None, Polling::default()),
        None => {
            let store = options.out.join("sample-store");
            let generated = generate::generate(
                &GeneratorConfig {
                    customers: options.customers,
                    seed: options.seed,
                },
                &store,
                progress,
            )
            .with_context(|| format!("generating the sample store in {}", store.display()))?;
            let bundles_file = store.join(generate::BUNDLES_FILE);
            say!(
                "sample store: {} customers, {} products ({} of them bundles, defined in {}), {} \
                 orders in {}",
                generated.customers,
                generated.products,
                generated.bundles,
                bundles_file.display(),
                generated.orders,
                store.display()
            )?;
            bundles_text = Some(
                std::fs::read_to_string(&bundles_file)
                    .with_context(|| format!("reading {}", bundles_file.display()))?,
            );
            let handle = local_store::LocalStore::start(local_store::Config {
                seed_dir: Some(store.clone()),
                ..local_store::Config::default()
            })
            .with_context(|| {
                format!(
                    "starting the local stand-in seeded from {}",
                    store.display()
                )
            })?;
            let credentials =
                Credentials::for_local(&handle.url(), AccessToken::new(handle.token()))?;
            say!(
                "local stand-in of the Admin API (not Shopify) at {}, Standard plan rate limits",
                handle.url()
            )?;
            // The stand-in answers bulk operations in milliseconds: poll accordingly.
            let polling = Polling {
                first: Duration::from_millis(20),
                max: Duration::from_millis(200),
                ..Polling::default()
            };
            (credentials, Some(handle), polling)
        }
    };
    let mut client = AdminClient::new(credentials, ClientOptions::default());

    let export_dir = options.out.join(EXPORT_DIR);
    let exported = sync::export::export(&mut client, &export_dir, polling)
        .with_context(|| format!("exporting the store into {}", export_dir.display()))?;
    let objects: Vec<String> = exported
        .iter()
        .map(|f| format!("{} {} objects", f.file, f.objects))
        .collect();
    say!(
        "exported through bulk queries: {} into {}",
        objects.join(", "),
        export_dir.display()
    )?;

    // The bundle parents are flagged in their `$app.offer` (`score --bundles`), so that slot
    // offers stay off them, and the bundle scenario prices the first bundle.
    let bundles = match &bundles_text {
        Some(text) => BundleFile::parse(text)
            .and_then(|file| file.definitions())
            .context("the sample store's bundles")?,
        None => Vec::new(),
    };
    let mut run_options = RunOptions {
        ingest: IngestOptions {
            opt_out_tag: Some(DEFAULT_OPT_OUT_TAG.to_string()),
            ..IngestOptions::default()
        },
        ..RunOptions::default()
    };
    run_options.score.bundle_parents = bundles.iter().map(|b| b.parent_variant_id).collect();
    let outcome = pipeline::run(&export_dir, &options.out, &run_options, progress)?;
    crate::stdout::write(format_args!("{}", pipeline::summary_text(&outcome)))?;

    let state_file = options.out.join(sync::state::STATE_FILE);
    if local.is_some() {
        // A fresh stand-in holds nothing: a state file of an earlier demo describes another store.
        remove_state(&state_file)?;
    }
    let mut apply_options = ApplyOptions::new(&options.out, sync::apply::COMPARE_EXPONENT);
    apply_options.polling = polling;
    let applied = sync::apply_plan(&mut client, &options.out, Some(&state_file), &apply_options)
        .with_context(|| format!("applying the plan in {}", options.out.display()))?;
    crate::stdout::write(format_args!("{}", sync::report_text(&applied)))?;

    let records = sync::read_store_metafields(&mut client, polling)
        .context("reading the metafields back from the store")?;
    say!(
        "read back {} metafields from the store; the scenarios below use those values",
        records.len()
    )?;
    let scenarios = evaluate_records(
        &outcome,
        &records,
        &policy,
        &bundles,
        "the store's metafields",
    )?;
    let table = table(&scenarios);
    say!("\ncheckout scenarios (policy: {}):", policy_name(options))?;
    crate::stdout::write(format_args!("{table}"))?;
    let mut details = String::new();
    for s in &scenarios {
        match &s.bundle {
            Some(bundle) => {
                let _ = writeln!(
                    details,
                    "== {}\n-- cart transform\n{}",
                    s.name,
                    bundle.render_text()
                );
            }
            None => {
                let _ = writeln!(
                    details,
                    "== {}\n-- cart lines target\n{}-- delivery options target\n{}",
                    s.name,
                    s.cart_lines.render_text(),
                    s.delivery.render_text()
                );
            }
        }
    }
    let details_path = options.out.join(SCENARIOS_FILE);
    std::fs::write(&details_path, details)
        .with_context(|| format!("writing {}", details_path.display()))?;
    say!(
        "\nfull decisions with every reason: {}",
        details_path.display()
    )?;
    if let Some(report) = &outcome.report {
        say!("report: {}", report.display())?;
    }
    let local_writes = local.map(|handle| {
        let stats = handle.stats();
        handle.shutdown();
        stats
    });
    Ok(DemoOutcome {
        scenarios,
        report: outcome.report.clone(),
        table,
        apply: applied,
        read_back: records.len(),
        local_writes,
    })
}

fn remove_state(file: &Path) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let path = PathBuf::from(format!("{}{suffix}", file.display()));
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
        }
    }
    Ok(())
}

fn policy_name(options: &DemoOptions) -> String {
    options.policy.as_ref().map_or_else(
        || "model-pipeline/sample/policy.json".to_string(),
        |p| p.display().to_string(),
    )
}

/// Holdout settings read from the policy JSON, to pick treated and held-out customers.
fn holdout_settings(policy: &str) -> (String, i64) {
    let value: serde_json::Value = serde_json::from_str(policy).unwrap_or_default();
    let holdout = value.get("holdout");
    let salt = holdout
        .and_then(|h| h.get("salt"))
        .and_then(serde_json::Value::as_str)
        .unwrap_or("")
        .to_string();
    let share = holdout
        .and_then(|h| h.get("share_bps"))
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(0);
    (salt, share)
}

/// Builds the scenarios from the plan file and evaluates each for both Function targets.
pub fn evaluate_scenarios(outcome: &Outcome, policy: &str) -> anyhow::Result<Vec<ScenarioResult>> {
    let plan_path = outcome.out_dir.join(PLAN_FILE);
    let records = plan::read_plan(&plan_path)?;
    evaluate_records(
        outcome,
        &records,
        policy,
        &[],
        &plan_path.display().to_string(),
    )
}

/// Builds the scenarios from metafield records (`source` names where they came from in errors)
/// and evaluates each for both Function targets; the bundle scenario prices the first of
/// `bundles` whose components the records hold, else the complementary pair as a bundle.
pub fn evaluate_records(
    outcome: &Outcome,
    records: &[MetafieldsSetInput],
    policy: &str,
    bundles: &[BundleDefinition],
    source: &str,
) -> anyhow::Result<Vec<ScenarioResult>> {
    let plan_path = source;
    let records = records.to_vec();
    let exponent = outcome.data.currency.exponent;
    let prices: HashMap<u64, i64> = outcome
        .data
        .catalog
        .variants
        .iter()
        .map(|v| (v.id, v.price_minor))
        .collect();
    let orders: HashMap<u64, i64> = outcome
        .data
        .customers
        .iter()
        .map(|c| (c.id, c.number_of_orders))
        .collect();
    let mut profiles: Vec<(u64, String, Profile)> = Vec::new();
    let mut variants: Vec<PlanVariant> = Vec::new();
    for record in records {
        let number = marginwise_engine::format::gid_number(&record.owner_id).unwrap_or(0);
        if record.key == PROFILE_KEY {
            let profile = Profile::decode(&record.value).map_err(|e| {
                anyhow::anyhow!("{}: profile of {}: {e}", plan_path, record.owner_id)
            })?;
            profiles.push((number, record.value, profile));
        } else if record.key == VARIANT_KEY {
            let data = VariantData::decode(&record.value, exponent)
                .map_err(|e| anyhow::anyhow!("{}: variant {}: {e}", plan_path, record.owner_id))?;
            variants.push(PlanVariant {
                id: number,
                value: record.value,
                data,
                price_minor: prices.get(&number).copied().unwrap_or(0),
            });
        }
    }
    let (salt, share) = holdout_settings(policy);
    let treated = |id: u64| !holdout::is_held_out(&customer_gid(id), &salt, share);
    let pick_where = |segment: Segment, extra: &dyn Fn(&Profile) -> bool| {
        profiles
            .iter()
            .find(|(id, _, p)| {
                p.segment == segment
                    && treated(*id)
                    && orders.get(id).copied().unwrap_or(0) > 0
                    && extra(p)
            })
            .map(|(id, _, _)| (*id, orders.get(id).copied().unwrap_or(0)))
    };
    let pick = |segment: Segment, _returning: bool| pick_where(segment, &|_| true);

    // Carts: an anchor with its top complement, a basket of two unrelated products, and a cart
    // with a line whose unit cost the store does not know.
    let known = |v: &&PlanVariant| v.data.unit_cost_minor.is_some() && v.price_minor > 0;
    let by_product = |product: u64| {
        variants
            .iter()
            .filter(known)
            .find(|v| v.data.product_id == product)
            .cloned()
    };
    let pair = variants.iter().filter(known).find_map(|anchor| {
        anchor
            .data
            .complements
            .first()
            .and_then(|p| by_product(*p))
            .map(|complement| (anchor.clone(), complement))
    });
    // Two products that are not complements of each other (searched among the first few hundred
    // variants: enough for any catalog, and bounded).
    let candidates: Vec<&PlanVariant> = variants.iter().filter(known).take(400).collect();
    let basket = candidates.iter().enumerate().find_map(|(i, f)| {
        candidates.iter().skip(i + 1).find_map(|v| {
            let unrelated = v.data.product_id != f.data.product_id
                && !f.data.complements.contains(&v.data.product_id)
                && !v.data.complements.contains(&f.data.product_id);
            unrelated.then(|| ((*f).clone(), (*v).clone()))
        })
    });
    let unknown_cost = variants
        .iter()
        .find(|v| v.data.unit_cost_minor.is_none() && v.price_minor > 0)
        .cloned();
    let (Some((anchor, complement)), Some((first, second))) = (pair, basket) else {
        anyhow::bail!("the plan has no complementary pair or no two products with known cost");
    };
    // Quantities that put the basket above the policies' usual subtotal minimums.
    let basket_lines = vec![(first.clone(), 2), (second.clone(), 1)];
    let pair_lines = vec![(anchor.clone(), 1), (complement.clone(), 1)];

    let mut scenarios = Vec::new();
    let mut add = |name: &str, customer: Option<(u64, i64)>, lines: &[(PlanVariant, i64)]| {
        scenarios.push(Scenario {
            name: name.to_string(),
            customer,
            lines: lines.to_vec(),
        });
    };
    if let Some(c) = pick(Segment::LoyalHighValue, true) {
        add("loyal customer, basket", Some(c), &basket_lines);
        add("loyal customer, anchor + complement", Some(c), &pair_lines);
    }
    if let Some(c) = pick(Segment::Active, true) {
        add("active customer, anchor + complement", Some(c), &pair_lines);
        add("active customer, basket", Some(c), &basket_lines);
    }
    // At risk: a repeat buyer whose P(alive) is falling, and a one-time buyer past the new
    // window (BG/NBD gives one-time buyers P(alive) = 1, so churn rules do not reach them).
    if let Some(c) = pick_where(Segment::AtRisk, &|p| p.churn_bps > 0) {
        add("at-risk repeat buyer, basket", Some(c), &basket_lines);
    }
    if let Some(c) = pick_where(Segment::AtRisk, &|p| p.churn_bps == 0) {
        add("at-risk one-time buyer, basket", Some(c), &basket_lines);
    }
    if let Some(c) = pick(Segment::Lapsed, true) {
        add("lapsed customer, basket", Some(c), &basket_lines);
    }
    if let Some(c) = pick(Segment::New, true) {
        add("new customer (1 order), basket", Some(c), &basket_lines);
    }
    add("anonymous shopper, anchor + complement", None, &pair_lines);
    add("anonymous shopper, basket", None, &basket_lines);
    if let Some((id, _, _)) = profiles.iter().find(|(id, _, _)| !treated(*id)) {
        add(
            "held-out customer, basket",
            Some((*id, orders.get(id).copied().unwrap_or(0))),
            &basket_lines,
        );
    }
    if let Some(opted) = outcome.scored.opted_out.iter().find(|id| treated(**id)) {
        add(
            "opted-out customer (no profile), basket",
            Some((*opted, orders.get(opted).copied().unwrap_or(0))),
            &basket_lines,
        );
    }
    if let (Some(unknown), Some(c)) = (unknown_cost, pick(Segment::Active, true)) {
        add(
            "active customer, line of unknown cost",
            Some(c),
            &[(unknown, 1), (first.clone(), 1)],
        );
    }

    let profile_text: HashMap<u64, &str> = profiles
        .iter()
        .map(|(id, text, _)| (*id, text.as_str()))
        .collect();
    let mut results = scenarios
        .into_iter()
        .map(|scenario| {
            let profile = match scenario.customer {
                None => ProfileInput::Anonymous,
                Some((id, _)) => match profile_text.get(&id) {
                    Some(text) => ProfileInput::Text((*text).to_string()),
                    None => ProfileInput::Missing,
                },
            };
            let segment = match &profile {
                ProfileInput::Text(text) => Profile::decode(text)
                    .map_or("(malformed)".to_string(), |p| p.segment.code().to_string()),
                ProfileInput::Missing => "(no profile)".to_string(),
                ProfileInput::Anonymous => "(anonymous)".to_string(),
            };
            let lines: Vec<Line> = scenario
                .lines
                .iter()
                .enumerate()
                .map(|(i, (variant, quantity))| Line {
                    id: format!("gid://shopify/CartLine/{}", i + 1),
                    quantity: *quantity,
                    unit_price: format_decimal_minor(variant.price_minor, exponent),
                    variant: VariantInput::Text(variant.value.clone()),
                })
                .collect();
            let holdout_key = marginwise_engine::holdout::shopper_key(
                scenario.customer.map(|(id, _)| customer_gid(id)).as_deref(),
            );
            let request = |target| Request {
                target,
                currency_code: outcome.data.currency.code_str().to_string(),
                presentment_rate: "1.0".to_string(),
                classes: DiscountClasses {
                    product: true,
                    order: true,
                    shipping: true,
                },
                profile: profile.clone(),
                customer: CustomerFacts {
                    number_of_orders: scenario.customer.map(|(_, n)| n),
                },
                lines: lines.clone(),
                delivery_groups: vec![DeliveryGroup {
                    id: "gid://shopify/CartDeliveryGroup/1".to_string(),
                    shipping_cost: Some(SHIPPING_COST.to_string()),
                    option_costs: Vec::new(),
                }],
                holdout_key: holdout_key.clone(),
                policy: PolicySource::Json(policy.to_string()),
            };
            let cart_lines = evaluate(&request(Target::CartLines));
            let delivery = evaluate(&request(Target::DeliveryOptions));
            summarize(scenario.name, segment, cart_lines, delivery, exponent)
        })
        .collect::<Vec<_>>();
    // The cart transform, in the cart of a loyal customer: a defined bundle whose components the
    // store has, else the anchor and its complement defined as a bundle (of a parent the store
    // does not have: the next free variant id).
    let defined = bundles.iter().find_map(|bundle| {
        let components: Option<Vec<(PlanVariant, i64)>> = bundle
            .components
            .iter()
            .map(|c| {
                variants
                    .iter()
                    .filter(known)
                    .find(|v| v.id == c.variant_id)
                    .map(|v| (v.clone(), c.quantity))
            })
            .collect();
        components.map(|components| (bundle.clone(), components))
    });
    let (bundle, components, name) = match defined {
        Some((bundle, components)) => (
            bundle,
            components,
            "loyal customer, a bundle's components in the cart (cart transform)",
        ),
        None => {
            let parent = variants.iter().map(|v| v.id).max().unwrap_or(0) + 1;
            let components = [anchor, complement];
            let bundle = BundleDefinition {
                parent_variant_id: parent,
                components: components
                    .iter()
                    .map(|v| BundleComponent {
                        variant_id: v.id,
                        quantity: 1,
                        weight: v
                            .price_minor
                            .clamp(1, marginwise_engine::format::MAX_BUNDLE_WEIGHT),
                    })
                    .collect(),
            };
            (
                bundle,
                components.into_iter().map(|v| (v, 1)).collect(),
                "loyal customer, anchor + complement as a bundle (cart transform)",
            )
        }
    };
    if let Some((customer, profile_text)) = pick(Segment::LoyalHighValue, true)
        .and_then(|c| profile_text.get(&c.0).map(|text| (c, (*text).to_string())))
    {
        results.push(bundle_scenario(
            outcome,
            &demo_bundle_policy(policy)?,
            customer,
            profile_text,
            name,
            &bundle,
            &components,
        )?);
    }
    Ok(results)
}

/// The sample bundle policy holding out the shoppers `offers_policy` holds out: the two
/// Functions must split shoppers alike (`compile-bundles --offers-policy` refuses otherwise), and
/// the demo runs with whatever offers policy it was given.
fn demo_bundle_policy(offers_policy: &str) -> anyhow::Result<String> {
    let mut bundle: serde_json::Value =
        serde_json::from_str(SAMPLE_BUNDLE_POLICY).context("the sample bundle policy")?;
    let offers: serde_json::Value = serde_json::from_str(offers_policy).unwrap_or_default();
    let object = bundle
        .as_object_mut()
        .context("the sample bundle policy is not a JSON object")?;
    match offers.get("holdout") {
        Some(holdout) => object.insert("holdout".to_string(), holdout.clone()),
        None => object.remove("holdout"),
    };
    Ok(serde_json::to_string(&bundle)?)
}

/// The bundle scenario: the cart holds exactly `bundle`'s components (each with its quantity).
/// The cart transform reads the metafields `marginwise compile-bundles` writes (policy, compiled
/// policy, checked list).
fn bundle_scenario(
    outcome: &Outcome,
    bundle_policy: &str,
    customer: (u64, i64),
    profile_text: String,
    name: &str,
    bundle: &BundleDefinition,
    components: &[(PlanVariant, i64)],
) -> anyhow::Result<ScenarioResult> {
    let exponent = outcome.data.currency.exponent;
    let parent = bundle.parent_variant_id;
    let metafields = cart_transform_metafields(bundle_policy, Some(std::slice::from_ref(bundle)))
        .context("the demo's bundle")?;
    let value = |key: &str| {
        metafields
            .as_array()
            .and_then(|all| all.iter().find(|m| m["key"] == key))
            .and_then(|m| m["value"].as_str())
            .map(str::to_string)
            .with_context(|| format!("no {key} metafield"))
    };
    let policy = PolicySource::Compiled {
        json: value(format::POLICY_KEY)?,
        compiled: value(format::COMPILED_POLICY_KEY)?,
    };
    let definitions = value(format::BUNDLES_KEY)?;
    let segment = Profile::decode(&profile_text)
        .map_or("(malformed)".to_string(), |p| p.segment.code().to_string());
    let request = BundleRequest {
        currency_code: outcome.data.currency.code_str().to_string(),
        presentment_rate: "1.0".to_string(),
        profile: ProfileInput::Text(profile_text),
        customer: CustomerFacts {
            number_of_orders: Some(customer.1),
        },
        lines: components
            .iter()
            .enumerate()
            .map(|(i, (v, quantity))| BundleLine {
                id: format!("gid://shopify/CartLine/{}", i + 1),
                quantity: *quantity,
                unit_price: format_decimal_minor(v.price_minor, exponent),
                variant_id: Some(format!("gid://shopify/ProductVariant/{}", v.id)),
                variant: VariantInput::Text(v.value.clone()),
                marker: None,
            })
            .collect(),
        definitions: Some(definitions),
        policy,
        holdout_key: customer_gid(customer.0),
    };
    let decision = evaluate_bundles(&request);
    let (discount, margin_kept) = match decision.merges.first() {
        Some(merge) => {
            let price = merge.price_before_minor;
            // As for offers: (revenue - discount - cost) / revenue; "-" when a cost is unknown
            // (or the sums do not fit).
            let kept = components
                .iter()
                .try_fold(0_i64, |sum, (v, quantity)| {
                    sum.checked_add(v.data.unit_cost_minor?.checked_mul(*quantity)?)
                })
                .and_then(|cost| price.checked_sub(merge.discount_minor)?.checked_sub(cost))
                .filter(|_| price > 0)
                .map(|kept| format!("{:.1}%", kept as f64 * 100.0 / price as f64));
            (
                format!(
                    "{} off the set ({}%)",
                    format_decimal_minor(merge.discount_minor, exponent),
                    merge.percent_decrease_bps as f64 / 100.0
                ),
                kept.unwrap_or_else(|| "-".to_string()),
            )
        }
        None => ("-".to_string(), "-".to_string()),
    };
    // `mw bundles merge=<n> expand=<n> <codes>`
    let reasons = log_codes(&decision.log_line(), 4);
    Ok(ScenarioResult {
        name: name.to_string(),
        segment,
        offer: match decision.merges.first() {
            Some(_) => format!("bundle {parent}"),
            None => "-".to_string(),
        },
        discount,
        margin_kept,
        reasons,
        cart_lines: Decision::default(),
        delivery: Decision::default(),
        bundle: Some(decision),
    })
}

fn summarize(
    name: String,
    segment: String,
    cart_lines: Decision,
    delivery: Decision,
    exponent: u8,
) -> ScenarioResult {
    let line_total: i64 = cart_lines
        .line_discounts
        .iter()
        .map(|d| d.amount_minor)
        .sum();
    let order_total = cart_lines
        .order_discount
        .as_ref()
        .map_or(0, |d| d.amount_minor);
    let mut parts = Vec::new();
    if line_total > 0 {
        parts.push(format!(
            "{} on lines",
            format_decimal_minor(line_total, exponent)
        ));
    }
    if order_total > 0 {
        parts.push(format!(
            "{} on order",
            format_decimal_minor(order_total, exponent)
        ));
    }
    for shipping in &delivery.shipping_discounts {
        parts.push(if shipping.percent_bps >= 10_000 {
            "free shipping".to_string()
        } else {
            format!("{}% off shipping", shipping.percent_bps as f64 / 100.0)
        });
    }
    let discount = if parts.is_empty() {
        "-".to_string()
    } else {
        parts.join(" + ")
    };
    // The margin picture of the run that rendered the winner.
    let rendering = if delivery.shipping_discounts.is_empty() {
        &cart_lines
    } else {
        &delivery
    };
    let margin = &rendering.margin;
    let margin_kept = if margin.revenue_minor > 0 {
        format!("{:.1}%", margin.margin_kept_bps as f64 / 100.0)
    } else {
        "-".to_string()
    };
    // `mw offer=<id> <codes>`
    let reasons = log_codes(&rendering.log_line(), 2);
    ScenarioResult {
        name,
        segment,
        offer: cart_lines
            .offer_id
            .clone()
            .unwrap_or_else(|| "-".to_string()),
        discount,
        margin_kept,
        reasons,
        cart_lines,
        delivery,
        bundle: None,
    }
}

/// The reason codes of a Function log line: what follows its first `head_words` words.
fn log_codes(log_line: &str, head_words: usize) -> String {
    log_line
        .splitn(head_words + 1, ' ')
        .nth(head_words)
        .unwrap_or_default()
        .to_string()
}

/// The readable table: scenario, segment, offer chosen, discount, margin kept, reasons.
pub fn table(rows: &[ScenarioResult]) -> String {
    let headers = [
        "scenario",
        "segment",
        "offer",
        "discount",
        "margin kept",
        "reasons",
    ];
    let cells: Vec<[&str; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.name.as_str(),
                r.segment.as_str(),
                r.offer.as_str(),
                r.discount.as_str(),
                r.margin_kept.as_str(),
                r.reasons.as_str(),
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    let mut line = |row: &[&str; 6]| {
        let padded: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        let _ = writeln!(out, "{}", padded.join("  ").trim_end());
    };
    line(&headers);
    let rule = widths.map(|w| "-".repeat(w));
    line(&std::array::from_fn(|i| {
        rule.get(i).map_or("", String::as_str)
    }));
    for row in &cells {
        line(row);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::cart_transform::bundle_policy_holdout;
    use crate::policy::{PolicyHoldout, check_same_holdout, offers_policy_holdout};

    /// Whatever offers policy the demo runs with, its bundle scenario holds out the same shoppers.
    #[test]
    fn the_demo_bundle_policy_holds_out_whom_the_offers_policy_holds_out() {
        let other_salt = SAMPLE_POLICY.replacen("\"sample-2026\"", "\"spring\"", 1);
        assert_ne!(other_salt, SAMPLE_POLICY);
        let mut without: serde_json::Value = serde_json::from_str(SAMPLE_POLICY).unwrap();
        without.as_object_mut().unwrap().remove("holdout");
        let without = without.to_string();
        for offers in [SAMPLE_POLICY, other_salt.as_str(), without.as_str()] {
            let bundle = demo_bundle_policy(offers).unwrap();
            let side = |holdout| PolicyHoldout {
                file: String::new(),
                holdout,
            };
            check_same_holdout(
                side(offers_policy_holdout(offers).unwrap()),
                side(bundle_policy_holdout(&bundle).unwrap()),
            )
            .unwrap();
        }
    }
}
