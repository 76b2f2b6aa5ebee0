//! A rehearsal of README.md's "Deploying to a store", steps 3-6, as a developer runs them: the
//! built `marginwise` binary, one process per command, against one local stand-in that knows
//! the app only by its client id and secret (no access token anywhere), seeded with a small
//! generated store. Each command has tests of its own; this one checks that they work together
//! in the README's order, on the files each leaves for the next: export -> score -> apply,
//! discount, cart-transform (twice), a replayed `customers/redact` signed with the client
//! secret, and apply again.
//!
//! Bounded: 300 customers (a few seconds), every process killed after a minute.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use local_store::{AppCredentials, Config, Handle, LocalStore, StoreData};
use marginwise_engine::format::{NAMESPACE, PROFILE_KEY};
use model_pipeline::generate::BUNDLES_FILE;
use model_pipeline::ingest::{CUSTOMERS_FILE, ORDERS_FILE};
use model_pipeline::plan::{DELETIONS_FILE, MetafieldsSetInput, PLAN_FILE};
use serde_json::Value;

const CUSTOMERS: u32 = 300;
const CLIENT_ID: &str = "mw-rehearsal-client-id";
// Distinctive enough that finding it in any output can only mean it was printed.
const CLIENT_SECRET: &str = "mw-rehearsal-secret-3f9a61c7d2";
const SHOP: &str = "marginwise-rehearsal.myshopify.com";
const LIMIT: Duration = Duration::from_secs(60);

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sample")
        .join(name)
}

fn path_arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The store, the folders, and every command's output (checked at the end for the secret).
struct Rehearsal {
    store: Handle,
    dir: PathBuf,
    outputs: Vec<(String, Output)>,
    /// How many of the commands were pointed at the store.
    store_runs: u64,
}

impl Rehearsal {
    /// `marginwise --quiet <args>` with only the app's client id and secret in the environment
    /// (none of the other credentials variables inherited from the test's), killed after
    /// [`LIMIT`]. With `store`, `--endpoint` names the stand-in.
    fn marginwise(&mut self, args: &[&str], store: bool) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_marginwise"));
        command.arg("--quiet").args(args);
        if store {
            command.args(["--endpoint", &self.store.url()]);
            self.store_runs += 1;
        }
        for name in [
            "SHOPIFY_SHOP",
            "SHOPIFY_ACCESS_TOKEN",
            "SHOPIFY_API_SECRET",
            "SHOPIFY_CLIENT_ID",
            "SHOPIFY_CLIENT_SECRET",
        ] {
            command.env_remove(name);
        }
        command
            .env("SHOPIFY_CLIENT_ID", CLIENT_ID)
            .env("SHOPIFY_CLIENT_SECRET", CLIENT_SECRET)
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let output = bounded(command, &args.join(" "), Some(&self.store));
        self.outputs.push((args.join(" "), output.clone()));
        output
    }

    /// Runs a command that must succeed; returns its standard output.
    fn ok(&mut self, args: &[&str], store: bool) -> String {
        let output = self.marginwise(args, store);
        assert!(
            output.status.success(),
            "marginwise {}: {:?}\nstdout: {}\nstderr: {}",
            args.join(" "),
            output.status,
            text(&output.stdout),
            text(&output.stderr)
        );
        text(&output.stdout)
    }

    /// The metafields the store holds for `owner` in the app's namespace, by key: (type, value).
    fn stored(&self, owner: &str) -> BTreeMap<String, (String, String)> {
        self.store
            .metafields()
            .into_iter()
            .filter(|m| m.owner_id == owner && m.namespace == self.store.app_namespace())
            .map(|m| (m.key, (m.kind, m.value)))
            .collect()
    }
}

/// Spawns `command`, drains its pipes on threads (a chatty child never blocks on a full pipe),
/// and kills it after [`LIMIT`]: a client that kept exchanging or retrying would never end.
fn bounded(mut command: Command, name: &str, store: Option<&Handle>) -> Output {
    let mut child = command.spawn().unwrap();
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                pipe.read_to_end(&mut bytes).unwrap();
            }
            bytes
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "marginwise {name} still running after {LIMIT:?}: {:?}",
                store.map(Handle::stats)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

fn scratch() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("deploy-rehearsal");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn read_jsonl(file: &Path) -> Vec<Value> {
    std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn plan_records(plan: &Path) -> Vec<MetafieldsSetInput> {
    read_jsonl(&plan.join(PLAN_FILE))
        .into_iter()
        .map(|value| serde_json::from_value(value).unwrap())
        .collect()
}

/// (key, type, value) of each metafield `compile-policy` / `compile-bundles` prints.
fn printed_metafields(stdout: &str) -> BTreeMap<String, (String, String)> {
    let printed: Value = serde_json::from_str(stdout).unwrap();
    printed
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(m["namespace"], "$app", "{m}");
            (
                m["key"].as_str().unwrap().to_string(),
                (
                    m["type"].as_str().unwrap().to_string(),
                    m["value"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

/// The number in `gid://shopify/<kind>/<number>`.
fn gid_number(gid: &str) -> u64 {
    gid.rsplit('/').next().unwrap().parse().unwrap()
}

/// Shopify's webhook signature: base64 of HMAC-SHA256 over the raw body, keyed with the app's
/// client secret; computed here independently of the product's own `sign`.
fn shopify_hmac(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[test]
fn the_readme_deploy_steps_run_end_to_end_with_only_the_client_id_and_secret() {
    let dir = scratch();
    let seed = dir.join("seed");
    let export = dir.join("export");
    let plan = dir.join("plan");

    // The store: a small generated one, served by a stand-in with the app installed for the
    // client credentials grant (and no other way in that the commands are told about).
    let mut generate = Command::new(env!("CARGO_BIN_EXE_marginwise"));
    generate
        .args(["--quiet", "generate", "--customers", &CUSTOMERS.to_string()])
        .arg("--out")
        .arg(&seed)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let generated = bounded(generate, "generate", None);
    assert!(generated.status.success(), "{}", text(&generated.stderr));
    let store = LocalStore::start(Config {
        data: Some(Arc::new(StoreData::load_dir(&seed).unwrap())),
        client_credentials: Some(AppCredentials::new(CLIENT_ID, CLIENT_SECRET)),
        ..Config::default()
    })
    .unwrap();
    let mut run = Rehearsal {
        store,
        dir: dir.clone(),
        outputs: Vec::new(),
        store_runs: 0,
    };

    // README step 4 (scores): export, score with the bundles, apply.
    run.ok(&["export", "--out", path_arg(&export)], true);
    run.ok(
        &[
            "score",
            "--input",
            path_arg(&export),
            "--out",
            path_arg(&plan),
            "--bundles",
            path_arg(&seed.join(BUNDLES_FILE)),
        ],
        false,
    );
    run.ok(&["apply", "--plan", path_arg(&plan)], true);
    let records = plan_records(&plan);
    // The store's bundle parents (the generated store sells two) carry the bundle flag, so the
    // discount's slot offers stay off them.
    let parents = model_pipeline::cart_transform::bundle_parents(
        &std::fs::read_to_string(seed.join(BUNDLES_FILE)).unwrap(),
    )
    .unwrap();
    assert_eq!(parents.len(), 2);
    for parent in &parents {
        let owner = format!("gid://shopify/ProductVariant/{parent}");
        let (_, value) = run
            .stored(&owner)
            .remove(marginwise_engine::format::VARIANT_KEY)
            .unwrap_or_else(|| panic!("no $app.offer on the bundle parent {owner}"));
        assert!(
            marginwise_engine::VariantData::decode(&value, 2)
                .unwrap()
                .bundle_parent,
            "{owner}: {value}"
        );
    }
    let profiles: Vec<&MetafieldsSetInput> = records
        .iter()
        .filter(|r| r.namespace == NAMESPACE && r.key == PROFILE_KEY)
        .collect();
    assert!(
        profiles.len() > CUSTOMERS as usize / 2,
        "{} profiles in the plan of {CUSTOMERS} customers",
        profiles.len()
    );
    for record in &records {
        assert_eq!(
            run.stored(&record.owner_id).get(&record.key),
            Some(&(record.kind.clone(), record.value.clone())),
            "the store holds the plan's {} of {}",
            record.key,
            record.owner_id
        );
    }

    // The plan's opted-out customers hold no profile.
    for line in read_jsonl(&plan.join(DELETIONS_FILE)) {
        let owner = line["ownerId"].as_str().unwrap();
        assert!(
            !run.stored(owner).contains_key(PROFILE_KEY),
            "{owner} opted out"
        );
    }

    // README step 5: the discount carries exactly the policy `compile-policy` prints.
    let policy = sample("policy.json");
    let bundle_policy = sample("bundle-policy.json");
    let bundles = seed.join(BUNDLES_FILE);
    let compiled_policy =
        printed_metafields(&run.ok(&["compile-policy", "--policy", path_arg(&policy)], false));
    let stdout = run.ok(
        &[
            "discount",
            "--policy",
            path_arg(&policy),
            "--bundle-policy",
            path_arg(&bundle_policy),
        ],
        true,
    );
    let discounts = run.store.discounts();
    assert_eq!(discounts.len(), 1, "{discounts:?}");
    let discount = &discounts[0];
    assert_eq!(discount.function_handle, "offers");
    assert_eq!(
        stdout.lines().next(),
        Some(discount.id.as_str()),
        "{stdout}"
    );
    let on_discount = run.stored(&discount.id);
    assert_eq!(
        on_discount.get("policy"),
        compiled_policy.get("policy"),
        "$app.policy on {}",
        discount.id
    );
    assert!(compiled_policy.contains_key("policy"));
    assert_eq!(on_discount, compiled_policy);

    // README step 5: the cart transform, installed then re-run (one per function: the second
    // run updates it).
    let cart_args = [
        "--policy",
        path_arg(&bundle_policy),
        "--bundles",
        path_arg(&bundles),
        "--offers-policy",
        path_arg(&policy),
    ];
    let with = |command: &'static str| {
        let mut all = vec![command];
        all.extend(cart_args);
        all
    };
    let first = run.ok(&with("cart-transform"), true);
    let transforms = run.store.cart_transforms();
    assert_eq!(transforms.len(), 1, "{transforms:?}");
    let transform = transforms[0].clone();
    assert_eq!(transform.function_handle, "bundles");
    assert!(!transform.block_on_failure);
    assert!(
        first.starts_with(&format!(
            "{}\ncreated the cart transform running function \"bundles\"",
            transform.id
        )),
        "{first}"
    );
    let second = run.ok(&with("cart-transform"), true);
    assert!(
        second.starts_with(&format!(
            "{}\nupdated the metafields of the existing cart transform running function \
             \"bundles\"",
            transform.id
        )),
        "{second}"
    );
    assert_eq!(run.store.cart_transforms().len(), 1);
    let compiled_bundles = printed_metafields(&run.ok(&with("compile-bundles"), false));
    assert_eq!(run.stored(&transform.id), compiled_bundles);

    // README step 6: a customers/redact delivery for a customer with a profile and orders,
    // replayed with the signature Shopify would send (the client secret), and only the client
    // secret in the environment: the webhooks command falls back to it.
    let order_lines_before = read_jsonl(&export.join(ORDERS_FILE));
    let mut orders_by_customer: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for line in &order_lines_before {
        if let Some(customer) = line["customer"]["id"].as_str() {
            let order = line["id"].as_str().unwrap().to_string();
            orders_by_customer.entry(customer).or_default().push(order);
        }
    }
    let (customer, orders) = profiles
        .iter()
        .find_map(|p| {
            let orders = orders_by_customer.get(p.owner_id.as_str())?;
            (orders.len() >= 2).then(|| (p.owner_id.clone(), orders.clone()))
        })
        .expect("a customer with a profile and two orders");
    let customers_before = read_jsonl(&export.join(CUSTOMERS_FILE)).len();
    let their_lines = order_lines_before
        .iter()
        .filter(|line| {
            let id = line["id"].as_str().unwrap_or_default();
            let parent = line["__parentId"].as_str().unwrap_or_default();
            orders.iter().any(|order| order == id || order == parent)
        })
        .count();
    assert!(their_lines > orders.len(), "orders and their line items");
    assert!(run.stored(&customer).contains_key(PROFILE_KEY));
    let order_numbers: Vec<String> = orders.iter().map(|o| gid_number(o).to_string()).collect();
    let body = format!(
        r#"{{"shop_id":954889,"shop_domain":"{SHOP}","customer":{{"id":{},"email":"someone@example.com","phone":"555-625-1199"}},"orders_to_redact":[{}]}}"#,
        gid_number(&customer),
        order_numbers.join(",")
    );
    // Kept to play a stale plan (scored before the redaction) back later.
    let plan_before_redaction = std::fs::read_to_string(plan.join(PLAN_FILE)).unwrap();
    let payload = run.dir.join("customers-redact.json");
    std::fs::write(&payload, &body).unwrap();
    let hmac = shopify_hmac(CLIENT_SECRET, body.as_bytes());
    let stdout = run.ok(
        &[
            "webhooks",
            "--replay",
            path_arg(&payload),
            "--topic",
            "customers/redact",
            "--hmac",
            &hmac,
            "--plan",
            path_arg(&plan),
            "--export",
            path_arg(&export),
            "--shop",
            SHOP,
        ],
        true,
    );
    assert!(stdout.contains("redacted a customer"), "{stdout}");
    assert_eq!(
        run.stored(&customer),
        BTreeMap::new(),
        "{customer} in the store"
    );
    for file in [PLAN_FILE, DELETIONS_FILE] {
        let named = read_jsonl(&plan.join(file))
            .into_iter()
            .filter(|line| line["ownerId"].as_str() == Some(customer.as_str()))
            .count();
        assert_eq!(named, 0, "{customer} in the plan's {file}");
    }
    let customers_after = read_jsonl(&export.join(CUSTOMERS_FILE));
    assert!(
        customers_after
            .iter()
            .all(|line| line["id"].as_str() != Some(customer.as_str())),
        "{customer} in the export's {CUSTOMERS_FILE}"
    );
    assert_eq!(customers_after.len(), customers_before - 1);
    let order_lines_after = read_jsonl(&export.join(ORDERS_FILE));
    let orders: HashSet<&str> = orders.iter().map(String::as_str).collect();
    for line in &order_lines_after {
        assert_ne!(line["customer"]["id"].as_str(), Some(customer.as_str()));
        for field in [&line["id"], &line["__parentId"]] {
            assert!(
                !field.as_str().is_some_and(|id| orders.contains(id)),
                "{line} in the export's {ORDERS_FILE}"
            );
        }
    }
    assert_eq!(
        order_lines_after.len(),
        order_lines_before.len() - their_lines
    );

    // The schedule's next apply does not bring the profile back, and keeps everyone else's.
    run.ok(&["apply", "--plan", path_arg(&plan)], true);
    assert_eq!(
        run.stored(&customer),
        BTreeMap::new(),
        "{customer} rewritten"
    );
    for record in plan_records(&plan) {
        assert_eq!(
            run.stored(&record.owner_id).get(&record.key),
            Some(&(record.kind.clone(), record.value.clone()))
        );
    }

    // A plan scored before the redaction (from an export folder the webhook was not given)
    // puts the customer's line back: apply still does not write it.
    std::fs::write(plan.join(PLAN_FILE), &plan_before_redaction).unwrap();
    let stdout = run.ok(&["apply", "--plan", path_arg(&plan)], true);
    assert_eq!(
        run.stored(&customer),
        BTreeMap::new(),
        "{customer} rewritten from a stale plan: {stdout}"
    );
    assert!(
        stdout.contains("1 values of redacted customers not written"),
        "{stdout}"
    );

    // What the run as a whole did with the credentials: tokens from the grant, never refused,
    // and the secret printed nowhere.
    let stats = run.store.stats();
    // At least one exchange, and no more than one per command (a token is reused in a run).
    assert!(
        (1..=run.store_runs).contains(&stats.tokens_granted),
        "{} commands: {stats:?}",
        run.store_runs
    );
    assert_eq!(stats.grants_refused, 0, "{stats:?}");
    assert_eq!(stats.unauthorized, 0, "{stats:?}");
    for (command, output) in &run.outputs {
        for (stream, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
            assert!(
                !text(bytes).contains(CLIENT_SECRET),
                "marginwise {command} printed the client secret on {stream}"
            );
        }
    }
}
