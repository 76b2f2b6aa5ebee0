//! `marginwise discount` and `marginwise cart-transform` as processes against the local
//! stand-in: what they create, what a second run changes, and that a bad policy or a holdout
//! mismatch is refused before any request while a store's refusal fails the run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use local_store::{AppFunction, Config, FunctionApi, Handle, LocalStore};
use serde_json::Value;

const SAMPLE_POLICY: &str = include_str!("../sample/policy.json");
const SAMPLE_BUNDLE_POLICY: &str = include_str!("../sample/bundle-policy.json");
const SAMPLE_BUNDLES: &str = include_str!("../sample/bundles.json");

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("install-cli")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// An empty store serving marginwise's functions (`offers`, `bundles`).
fn store() -> Handle {
    LocalStore::start(Config::default()).unwrap()
}

fn marginwise(args: &[&str], store: Option<&Handle>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_marginwise"));
    command.arg("--quiet").args(args);
    if let Some(store) = store {
        command.args(["--endpoint", &store.url(), "--token", store.token()]);
    }
    command.env("RUST_BACKTRACE", "0").output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn path_arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// What `compile-policy` / `compile-bundles` print, as (key, type, value) with `$app`.
fn compiled(args: &[&str]) -> Vec<(String, String, String)> {
    let output = marginwise(args, None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    printed
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(m["namespace"], "$app");
            (
                m["key"].as_str().unwrap().to_string(),
                m["type"].as_str().unwrap().to_string(),
                m["value"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The metafields `owner` holds in the app's namespace, as (key, type, value), in `keys` order.
fn stored(
    store: &Handle,
    owner: &str,
    keys: &[(String, String, String)],
) -> Vec<(String, String, String)> {
    let all = store.metafields();
    let mine: Vec<_> = all
        .iter()
        .filter(|m| m.owner_id == owner && m.namespace == store.app_namespace())
        .collect();
    assert_eq!(mine.len(), keys.len(), "{mine:?}");
    keys.iter()
        .map(|(key, _, _)| {
            let m = mine.iter().find(|m| &m.key == key).unwrap();
            (m.key.clone(), m.kind.clone(), m.value.clone())
        })
        .collect()
}

/// The sample policy without its shipping offers (`free_shipping`, `shipping_percent`).
fn policy_without_shipping() -> String {
    let mut policy: Value = serde_json::from_str(SAMPLE_POLICY).unwrap();
    let offers = policy["offers"].as_array_mut().unwrap();
    let before = offers.len();
    offers.retain(|offer| {
        !matches!(
            offer["reward"]["kind"].as_str(),
            Some("free_shipping" | "shipping_percent")
        )
    });
    assert_eq!(offers.len(), before - 2);
    serde_json::to_string_pretty(&policy).unwrap()
}

/// The discount is created with the sample's classes (its offers have line, slot, order and
/// shipping rewards) and exactly the metafields `compile-policy` prints; `--update` then sets a
/// new policy, its classes (no shipping offer left: no SHIPPING) and `combinesWith` on the same
/// discount, keeping the title.
#[test]
fn a_discount_is_created_then_updated_in_place() {
    let store = store();
    let dir = scratch("discount");
    let policy = dir.join("policy.json");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("sample/policy.json"),
        &policy,
    )
    .unwrap();
    let run = marginwise(&["discount", "--policy", path_arg(&policy)], Some(&store));
    let stdout = text(&run.stdout);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let discounts = store.discounts();
    assert_eq!(discounts.len(), 1);
    let created = &discounts[0];
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(lines[0], created.id);
    assert!(
        lines[1].starts_with(
            "created automatic discount \"marginwise offers\" running function \"offers\": \
             classes PRODUCT, ORDER, SHIPPING; combines with no other discounts; starts "
        ),
        "{stdout}"
    );
    assert_eq!(created.function_handle, "offers");
    assert_eq!(created.title, "marginwise offers");
    assert_eq!(created.discount_classes, ["PRODUCT", "ORDER", "SHIPPING"]);
    assert_eq!(created.combines_with, local_store::CombinesWith::default());
    let expected = compiled(&["compile-policy", "--policy", path_arg(&policy)]);
    assert_eq!(stored(&store, &created.id, &expected), expected);

    std::fs::write(&policy, policy_without_shipping()).unwrap();
    let run = marginwise(
        &[
            "discount",
            "--policy",
            path_arg(&policy),
            "--update",
            &created.id,
            "--combines-with",
            "order,product",
        ],
        Some(&store),
    );
    let stdout = text(&run.stdout);
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert!(
        stdout.starts_with(&format!(
            "{}\nupdated automatic discount \"marginwise offers\" running function \"offers\": \
             classes PRODUCT, ORDER; combines with product and order discounts;",
            created.id
        )),
        "{stdout}"
    );
    let discounts = store.discounts();
    assert_eq!(discounts.len(), 1);
    let updated = &discounts[0];
    assert_eq!(updated.id, created.id);
    assert_eq!(updated.title, "marginwise offers");
    assert_eq!(updated.discount_classes, ["PRODUCT", "ORDER"]);
    assert_eq!(
        updated.combines_with,
        local_store::CombinesWith {
            product_discounts: true,
            order_discounts: true,
            shipping_discounts: false,
        }
    );
    let expected_now = compiled(&["compile-policy", "--policy", path_arg(&policy)]);
    assert_ne!(expected_now, expected);
    assert_eq!(stored(&store, &created.id, &expected_now), expected_now);
}

/// A policy `compile-policy` refuses is refused with the same message, and nothing is sent.
#[test]
fn a_bad_policy_is_refused_before_any_request() {
    let store = store();
    let dir = scratch("bad-policy");
    let bad = SAMPLE_POLICY.replacen("\"bps\": 1000", "\"bps\": 100000", 1);
    assert_ne!(bad, SAMPLE_POLICY);
    let policy = write(&dir, "policy.json", &bad);
    let compile = marginwise(&["compile-policy", "--policy", path_arg(&policy)], None);
    assert!(!compile.status.success());
    let run = marginwise(&["discount", "--policy", path_arg(&policy)], Some(&store));
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("offers[0].reward.bps"), "{stderr}");
    assert_eq!(stderr, text(&compile.stderr));
    assert_eq!(text(&run.stdout), "");
    assert_eq!(store.stats().graphql_requests, 0);
    assert!(store.discounts().is_empty());
}

/// The store's user errors fail the run (exit status 1) and are named by field and message;
/// nothing is created.
#[test]
fn a_user_error_is_an_error_naming_field_and_message() {
    // A store whose app has no function called `offers` (extensions not deployed).
    let store = LocalStore::start(Config {
        functions: vec![AppFunction::new("bundles", FunctionApi::CartTransform, 1)],
        ..Config::default()
    })
    .unwrap();
    let dir = scratch("user-error");
    let policy = write(&dir, "policy.json", SAMPLE_POLICY);
    let bundle_policy = write(&dir, "bundle-policy.json", SAMPLE_BUNDLE_POLICY);
    let run = marginwise(
        &[
            "discount",
            "--policy",
            path_arg(&policy),
            "--bundle-policy",
            path_arg(&bundle_policy),
        ],
        Some(&store),
    );
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert_eq!(text(&run.stdout), "");
    assert_eq!(
        stderr.trim_end(),
        "error: discountAutomaticAppCreate: the store refused it: \
         automaticAppDiscount.functionHandle: Function with handle \"offers\" not found. (INVALID)"
    );
    assert_eq!(store.stats().graphql_requests, 1);
    assert!(store.discounts().is_empty() && store.metafields().is_empty());
}

/// `discount --bundle-policy` refuses an offers policy that would hold out other shoppers than
/// the cart transform does, before any request; without the option, stderr says so.
#[test]
fn discount_refuses_a_holdout_the_bundle_policy_does_not_share() {
    let store = store();
    let dir = scratch("discount-holdout");
    let policy = write(
        &dir,
        "policy.json",
        &SAMPLE_POLICY.replacen("\"sample-2026\"", "\"spring\"", 1),
    );
    let bundle_policy = write(&dir, "bundle-policy.json", SAMPLE_BUNDLE_POLICY);
    let run = marginwise(
        &[
            "discount",
            "--policy",
            path_arg(&policy),
            "--bundle-policy",
            path_arg(&bundle_policy),
        ],
        Some(&store),
    );
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the holdouts differ"), "{stderr}");
    assert_eq!(store.stats().graphql_requests, 0);
    assert!(store.discounts().is_empty());

    let unchecked = marginwise(&["discount", "--policy", path_arg(&policy)], Some(&store));
    assert!(unchecked.status.success(), "{}", text(&unchecked.stderr));
    assert!(
        text(&unchecked.stderr).contains("pass --bundle-policy FILE"),
        "{}",
        text(&unchecked.stderr)
    );
}

/// The first run creates the cart transform with what `compile-bundles` prints; a second run,
/// refused by the store (one cart transform per function), updates that one's metafields.
#[test]
fn cart_transform_is_created_then_a_second_run_updates_it() {
    let store = store();
    let dir = scratch("cart-transform");
    let bundle_policy = write(&dir, "bundle-policy.json", SAMPLE_BUNDLE_POLICY);
    let bundles = write(&dir, "bundles.json", SAMPLE_BUNDLES);
    let offers = write(&dir, "policy.json", SAMPLE_POLICY);
    let args = [
        "--policy",
        path_arg(&bundle_policy),
        "--bundles",
        path_arg(&bundles),
        "--offers-policy",
        path_arg(&offers),
    ];
    let run = |store: &Handle| {
        let mut all = vec!["cart-transform"];
        all.extend(args);
        marginwise(&all, Some(store))
    };
    let expected_for = || {
        let mut all = vec!["compile-bundles"];
        all.extend(args);
        compiled(&all)
    };

    let first = run(&store);
    let stdout = text(&first.stdout);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let transforms = store.cart_transforms();
    assert_eq!(transforms.len(), 1);
    let id = transforms[0].id.clone();
    assert_eq!(transforms[0].function_handle, "bundles");
    assert!(!transforms[0].block_on_failure);
    assert!(
        stdout.starts_with(&format!(
            "{id}\ncreated the cart transform running function \"bundles\" (blockOnFailure false); \
             metafields $app.policy ("
        )),
        "{stdout}"
    );
    let expected = expected_for();
    assert_eq!(expected.len(), 3);
    assert_eq!(stored(&store, &id, &expected), expected);

    let changed = SAMPLE_BUNDLE_POLICY.replace("\"default_bps\": 500", "\"default_bps\": 700");
    assert_ne!(changed, SAMPLE_BUNDLE_POLICY);
    std::fs::write(&bundle_policy, changed).unwrap();
    let second = run(&store);
    let stdout = text(&second.stdout);
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert!(
        stdout.starts_with(&format!(
            "{id}\nupdated the metafields of the existing cart transform running function \
             \"bundles\" (blockOnFailure false);"
        )),
        "{stdout}"
    );
    assert_eq!(store.cart_transforms().len(), 1);
    let expected_now = expected_for();
    assert_ne!(expected_now, expected);
    assert_eq!(stored(&store, &id, &expected_now), expected_now);
}

/// A bundle policy whose holdout is not the offers policy's is refused as `compile-bundles`
/// refuses it, before any request.
#[test]
fn a_holdout_mismatch_is_refused_before_any_request() {
    let store = store();
    let dir = scratch("holdout");
    let salt = "\"salt\": \"sample-2026\"";
    assert!(SAMPLE_BUNDLE_POLICY.contains(salt));
    let bundle_policy = write(
        &dir,
        "bundle-policy.json",
        &SAMPLE_BUNDLE_POLICY.replace(salt, "\"salt\": \"bundles-2026\""),
    );
    let bundles = write(&dir, "bundles.json", SAMPLE_BUNDLES);
    let offers = write(&dir, "policy.json", SAMPLE_POLICY);
    let run = marginwise(
        &[
            "cart-transform",
            "--policy",
            path_arg(&bundle_policy),
            "--bundles",
            path_arg(&bundles),
            "--offers-policy",
            path_arg(&offers),
        ],
        Some(&store),
    );
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert_eq!(text(&run.stdout), "");
    assert!(
        stderr.starts_with(&format!(
            "error: the holdouts differ: the offers policy {} has holdout share_bps 1000, salt \
             \"sample-2026\", the bundle policy {} has holdout share_bps 1000, salt \
             \"bundles-2026\"",
            offers.display(),
            bundle_policy.display()
        )),
        "{stderr}"
    );
    assert_eq!(store.stats().graphql_requests, 0);
    assert!(store.cart_transforms().is_empty());
}

/// An update whose answer is lost (the store applied it, then dropped the connection) is done,
/// not a failure: the command reads what the cart transform holds instead of sending the write
/// again, which would meet its own digest and look refused (`STALE_OBJECT`).
#[test]
fn a_cart_transform_update_whose_answer_was_lost_is_reported_done() {
    let store = store();
    let dir = scratch("cart-transform-lost-answer");
    let bundle_policy = write(&dir, "bundle-policy.json", SAMPLE_BUNDLE_POLICY);
    let bundles = write(&dir, "bundles.json", SAMPLE_BUNDLES);
    let offers = write(&dir, "policy.json", SAMPLE_POLICY);
    let args = [
        "--policy",
        path_arg(&bundle_policy),
        "--bundles",
        path_arg(&bundles),
        "--offers-policy",
        path_arg(&offers),
    ];
    let with = |command: &'static str| {
        let mut all = vec![command];
        all.extend(args);
        all
    };
    let first = marginwise(&with("cart-transform"), Some(&store));
    assert!(first.status.success(), "{}", text(&first.stderr));
    let id = store.cart_transforms()[0].id.clone();

    let changed = SAMPLE_BUNDLE_POLICY.replace("\"default_bps\": 500", "\"default_bps\": 700");
    std::fs::write(&bundle_policy, changed).unwrap();
    // Every write from now on is applied and its answer dropped.
    store.set_faults(local_store::Faults {
        drop_after: Some(local_store::Burst {
            every: 1,
            length: 1,
            writes_only: true,
            status: None,
            delay_ms: None,
        }),
        ..local_store::Faults::default()
    });
    let second = marginwise(&with("cart-transform"), Some(&store));
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert!(
        text(&second.stdout).contains("updated the metafields of the existing cart transform"),
        "{}",
        text(&second.stdout)
    );
    let expected = compiled(&with("compile-bundles"));
    assert_eq!(stored(&store, &id, &expected), expected);
}

/// `--combines-with none` with a class is a contradiction, refused before any request.
#[test]
fn combines_with_none_and_a_class_is_refused() {
    let store = store();
    let dir = scratch("combines-with-none");
    let policy = write(&dir, "policy.json", SAMPLE_POLICY);
    let run = marginwise(
        &[
            "discount",
            "--policy",
            path_arg(&policy),
            "--combines-with",
            "none,order",
        ],
        Some(&store),
    );
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("`none` cannot be given with a discount class"),
        "{stderr}"
    );
    assert_eq!(store.stats().graphql_requests, 0);
}

/// Sends one GraphQL document to the stand-in with the app's token, as the settings page in the
/// admin would change the discount's metafields; panics on user errors.
fn admin_request(store: &Handle, query: &str, variables: Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .build()
        .into();
    let body = serde_json::json!({ "query": query, "variables": variables }).to_string();
    let mut answer = agent
        .post(&store.url())
        .header("Content-Type", "application/json")
        .header("X-Shopify-Access-Token", store.token())
        .send(body.as_bytes())
        .unwrap();
    let answer: Value = serde_json::from_str(&answer.body_mut().read_to_string().unwrap()).unwrap();
    let payload = answer["data"].as_object().unwrap().values().next().unwrap();
    assert_eq!(payload["userErrors"], serde_json::json!([]), "{answer}");
}

/// What the settings page does on save: the policy JSON (compact, as JSON.stringify writes it)
/// set, and the compiled form it no longer matches deleted.
fn save_from_the_admin(store: &Handle, discount: &str, policy: &Value) {
    admin_request(
        store,
        "mutation($m: [MetafieldsSetInput!]!) { metafieldsSet(metafields: $m) { userErrors { field message } } }",
        serde_json::json!({ "m": [{
            "ownerId": discount, "namespace": "$app", "key": "policy", "type": "json",
            "value": policy.to_string(),
        }]}),
    );
    admin_request(
        store,
        "mutation($m: [MetafieldIdentifierInput!]!) { metafieldsDelete(metafields: $m) { userErrors { field message } } }",
        serde_json::json!({ "m": [{ "ownerId": discount, "namespace": "$app", "key": "policy_compiled" }] }),
    );
}

/// A policy saved from the admin's settings page (JSON only) gets its compiled form back from
/// `discount --recompile`, exactly what `compile-policy` prints for that JSON; a policy the engine
/// would skip offers of is refused with its reasons and nothing is written; a discount without a
/// policy is named.
#[test]
fn recompile_stores_the_compiled_form_of_a_policy_saved_in_the_admin() {
    let store = store();
    let dir = scratch("recompile");
    let policy = write(&dir, "policy.json", SAMPLE_POLICY);
    let run = marginwise(&["discount", "--policy", path_arg(&policy)], Some(&store));
    assert!(run.status.success(), "{}", text(&run.stderr));
    let id = store.discounts()[0].id.clone();

    let mut edited: Value = serde_json::from_str(SAMPLE_POLICY).unwrap();
    edited["offers"][0]["reward"]["bps"] = 1250.into();
    save_from_the_admin(&store, &id, &edited);
    let edited_file = write(&dir, "edited.json", &edited.to_string());
    let expected = compiled(&["compile-policy", "--policy", path_arg(&edited_file)]);
    // Saved from the admin: the policy alone, the same text `compile-policy` would store.
    assert_eq!(stored(&store, &id, &expected[..1]), expected[..1]);

    // The settings page's API types name the discount `DiscountAutomaticApp/<n>`; either form is
    // taken.
    let number = id.rsplit('/').next().unwrap().to_string();
    let as_the_page_shows_it = format!("gid://shopify/DiscountAutomaticApp/{number}");
    for given in [&id, &as_the_page_shows_it] {
        let run = marginwise(&["discount", "--recompile", given], Some(&store));
        let stdout = text(&run.stdout);
        assert!(run.status.success(), "{}", text(&run.stderr));
        assert!(
            stdout.starts_with(&format!(
                "{id}\nstored the compiled form of the policy discount {id} holds;"
            )),
            "{stdout}"
        );
        assert_eq!(stored(&store, &id, &expected), expected);
    }

    let mut bad = edited.clone();
    bad["offers"][1]["reward"]["bps"] = 20_000.into();
    save_from_the_admin(&store, &id, &bad);
    let writes_before = store.stats().graphql_requests;
    let run = marginwise(&["discount", "--recompile", &id], Some(&store));
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("compiling the policy of discount {id}")),
        "{stderr}"
    );
    assert!(
        stderr.contains("offers[1].reward.bps: 20000 is above 10000"),
        "{stderr}"
    );
    // One read, no write.
    assert_eq!(store.stats().graphql_requests, writes_before + 1);

    admin_request(
        &store,
        "mutation($m: [MetafieldIdentifierInput!]!) { metafieldsDelete(metafields: $m) { userErrors { field message } } }",
        serde_json::json!({ "m": [{ "ownerId": id, "namespace": "$app", "key": "policy" }] }),
    );
    let run = marginwise(&["discount", "--recompile", &number], Some(&store));
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("holds no $app.policy"), "{stderr}");

    // A code discount the merchant made in the admin with the settings page: recompiled and
    // shown the same way, by its GID (or the settings page's `DiscountCodeApp/<n>`).
    let code = store
        .add_code_discount(
            "offers",
            "VIP code",
            "VIP10",
            &[("policy", "json", &edited.to_string())],
        )
        .unwrap();
    let code_number = code.rsplit('/').next().unwrap().to_string();
    for given in [
        code.clone(),
        format!("gid://shopify/DiscountCodeApp/{code_number}"),
    ] {
        let run = marginwise(&["discount", "--recompile", &given], Some(&store));
        assert!(run.status.success(), "{}", text(&run.stderr));
        assert!(
            text(&run.stdout).starts_with(&format!("{code}\nstored the compiled form")),
            "{}",
            text(&run.stdout)
        );
        assert_eq!(stored(&store, &code, &expected), expected);
    }
    let run = marginwise(&["discount", "--show", &code], Some(&store));
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert_eq!(
        serde_json::from_slice::<Value>(&run.stdout).unwrap(),
        edited
    );
    assert!(text(&run.stderr).contains("its compiled form is current"));

    // `--update` changes automatic discounts only: refused before any request.
    let requests = store.stats().graphql_requests;
    let run = marginwise(
        &["discount", "--policy", path_arg(&policy), "--update", &code],
        Some(&store),
    );
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("--update {code:?}: a code discount")),
        "{stderr}"
    );
    assert_eq!(store.stats().graphql_requests, requests);

    // A discount the store does not have: `--update` names automatic discounts only, `--show`
    // code discounts too.
    let missing = "gid://shopify/DiscountAutomaticNode/999999";
    let run = marginwise(
        &[
            "discount",
            "--policy",
            path_arg(&policy),
            "--update",
            missing,
        ],
        Some(&store),
    );
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{missing} is not an automatic discount of this store (pass the GID `discount` \
             printed)"
        )),
        "{stderr}"
    );
    let run = marginwise(&["discount", "--show", missing], Some(&store));
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{missing} is not a discount of this store (pass the GID `discount` printed, or a \
             code discount's GID from the admin)"
        )),
        "{stderr}"
    );
}

/// The policy changed in the admin between `--recompile`'s read and its write: the write is
/// refused (compare-and-set), and the newer policy stays, never replaced by the older one.
#[test]
fn recompile_never_overwrites_a_policy_changed_since_it_was_read() {
    use model_pipeline::admin::{AccessToken, AdminClient, ClientOptions, Credentials};
    use model_pipeline::sync::install::{self, ConfigMetafield};

    let store = store();
    let dir = scratch("recompile-race");
    let policy = write(&dir, "policy.json", SAMPLE_POLICY);
    let run = marginwise(&["discount", "--policy", path_arg(&policy)], Some(&store));
    assert!(run.status.success(), "{}", text(&run.stderr));
    let id = store.discounts()[0].id.clone();
    let mut client = AdminClient::new(
        Credentials::for_local(&store.url(), AccessToken::new(store.token())).unwrap(),
        ClientOptions::default(),
    );
    let held = install::held_policy(&mut client, &id).unwrap().unwrap();
    let metafields = model_pipeline::policy::policy_metafields(&held.json).unwrap();

    let mut newer: Value = serde_json::from_str(SAMPLE_POLICY).unwrap();
    newer["offers"][0]["reward"]["bps"] = 900.into();
    save_from_the_admin(&store, &id, &newer);

    let error = install::store_recompiled(
        &mut client,
        &id,
        &held,
        &ConfigMetafield::list(&metafields).unwrap(),
    )
    .unwrap_err();
    assert!(error.to_string().contains("metafieldsSet"), "{error}");
    let now = store
        .metafields()
        .into_iter()
        .find(|m| m.owner_id == id && m.key == "policy")
        .unwrap();
    assert_eq!(now.value, newer.to_string());
}

/// `discount --show` prints the policy a discount holds now (as the settings page saved it),
/// laid out, for the commands that read a policy file, and says on stderr whether its compiled
/// form is current.
#[test]
fn show_prints_the_policy_the_discount_holds() {
    let store = store();
    let dir = scratch("show");
    let policy = write(&dir, "policy.json", SAMPLE_POLICY);
    let run = marginwise(&["discount", "--policy", path_arg(&policy)], Some(&store));
    assert!(run.status.success(), "{}", text(&run.stderr));
    let id = store.discounts()[0].id.clone();

    let run = marginwise(&["discount", "--show", &id], Some(&store));
    assert!(run.status.success(), "{}", text(&run.stderr));
    let shown: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(shown, serde_json::from_str::<Value>(SAMPLE_POLICY).unwrap());
    assert!(text(&run.stdout).contains("\n  \"offers\": ["), "laid out");
    assert!(text(&run.stderr).contains("its compiled form is current"));

    // Edited in the admin without a compiled form (an older page, a hand edit).
    let mut edited = shown.clone();
    edited["holdout"]["salt"] = "admin-2027".into();
    save_from_the_admin(&store, &id, &edited);
    let run = marginwise(&["discount", "--show", &id], Some(&store));
    assert!(run.status.success(), "{}", text(&run.stderr));
    let shown: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(shown["holdout"]["salt"], "admin-2027");
    assert!(
        text(&run.stderr).contains("no current compiled form"),
        "{}",
        text(&run.stderr)
    );
    // What it prints is a policy file the other commands read.
    let file = write(&dir, "from-store.json", &text(&run.stdout));
    let compile = marginwise(&["compile-policy", "--policy", path_arg(&file)], None);
    assert!(compile.status.success(), "{}", text(&compile.stderr));
}

/// `cart-transform --offers-discount GID` compares the bundle policy's holdout with the policy the
/// discount holds now (changed in the admin after the file was written), not with a file.
#[test]
fn cart_transform_compares_the_holdout_with_the_discount_in_force() {
    let store = store();
    let dir = scratch("offers-discount");
    let offers = write(&dir, "policy.json", SAMPLE_POLICY);
    let run = marginwise(&["discount", "--policy", path_arg(&offers)], Some(&store));
    assert!(run.status.success(), "{}", text(&run.stderr));
    let id = store.discounts()[0].id.clone();
    let bundle_policy = write(&dir, "bundle-policy.json", SAMPLE_BUNDLE_POLICY);
    let bundles = write(&dir, "bundles.json", SAMPLE_BUNDLES);
    let cart_transform = || {
        marginwise(
            &[
                "cart-transform",
                "--policy",
                path_arg(&bundle_policy),
                "--bundles",
                path_arg(&bundles),
                "--offers-discount",
                &id,
            ],
            Some(&store),
        )
    };
    let run = cart_transform();
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert!(
        !text(&run.stderr).contains("not compared"),
        "{}",
        text(&run.stderr)
    );

    let mut changed: Value = serde_json::from_str(SAMPLE_POLICY).unwrap();
    changed["holdout"]["salt"] = "changed-in-admin".into();
    save_from_the_admin(&store, &id, &changed);
    let transforms_before = store.cart_transforms();
    let run = cart_transform();
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("the policy of discount {id}")),
        "{stderr}"
    );
    assert!(stderr.contains("changed-in-admin"), "{stderr}");
    assert_eq!(store.cart_transforms(), transforms_before);
}
