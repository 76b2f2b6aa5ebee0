//! `marginwise apply` as a process against the local stand-in: what it does with a plan record
//! `score` could not have written, with values the store refuses, and with a standard output
//! nobody reads any more. One regression test per audit finding.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use local_store::{Config, Handle, LocalStore, StoreData};
use marginwise_engine::format::{NAMESPACE, PROFILE_KEY, VARIANT_KEY};
use marginwise_engine::{Profile, Segment};
use model_pipeline::plan::{
    DELETIONS_FILE, METAFIELD_TYPE, MetafieldsSetInput, PLAN_FILE, customer_gid,
};

const CUSTOMERS: u64 = 30;

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("apply-cli")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A store whose only objects are customers 1..=CUSTOMERS.
fn store() -> Handle {
    let mut customers = String::new();
    for i in 1..=CUSTOMERS {
        customers.push_str(&format!("{{\"id\":\"{}\"}}\n", customer_gid(i)));
    }
    let data = StoreData::from_jsonl(&[("customers.jsonl", &customers)]).unwrap();
    LocalStore::start(Config {
        data: Some(Arc::new(data)),
        ..Config::default()
    })
    .unwrap()
}

fn profile_record(customer: u64) -> MetafieldsSetInput {
    let profile = Profile {
        segment: Segment::ALL[(customer % 5) as usize],
        clv_minor: 1_000 + customer as i64,
        churn_bps: 2_500,
        expected_orders_12m_milli: 1_200,
        discount_share_bps: 0,
        p_alive_bps: 7_500,
    };
    MetafieldsSetInput {
        owner_id: customer_gid(customer),
        namespace: NAMESPACE.to_string(),
        key: PROFILE_KEY.to_string(),
        kind: METAFIELD_TYPE.to_string(),
        value: profile.encode(),
    }
}

/// A plan folder with a profile for every customer of the store, then `extra` lines.
fn plan(name: &str, extra: &[String]) -> PathBuf {
    let dir = scratch(name);
    let mut text = String::new();
    for customer in 1..=CUSTOMERS {
        text.push_str(&serde_json::to_string(&profile_record(customer)).unwrap());
        text.push('\n');
    }
    for line in extra {
        text.push_str(line);
        text.push('\n');
    }
    std::fs::write(dir.join(PLAN_FILE), text).unwrap();
    std::fs::write(dir.join(DELETIONS_FILE), "").unwrap();
    dir
}

fn apply(store: &Handle, plan: &Path, stdout: Stdio) -> Output {
    Command::new(env!("CARGO_BIN_EXE_marginwise"))
        .args(["--quiet", "apply", "--plan"])
        .arg(plan)
        .args(["--endpoint", &store.url(), "--token", store.token()])
        .args(["--jitter-seed", "1"])
        .env("RUST_BACKTRACE", "0")
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

/// Regression (audit: a value the Functions cannot read was sent, and the store took it): every
/// record is checked before anything is sent, and the first bad one is named with the plan file
/// and line. Nothing reaches the store.
#[test]
fn a_plan_record_score_could_not_have_written_stops_apply_before_any_write() {
    let good = profile_record(3);
    let with = |edit: &dyn Fn(&mut MetafieldsSetInput)| {
        let mut record = good.clone();
        edit(&mut record);
        serde_json::to_string(&record).unwrap()
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "profile value",
            with(&|r| r.value = "garbage".into()),
            "field `value`: \"garbage\" of gid://shopify/Customer/3 is not a customer profile the \
             Functions can read: unsupported version (expected mw1)",
        ),
        (
            "profile field",
            with(&|r| r.value = "mw1|vip|1|2|3|4|5".into()),
            "field `value`: \"mw1|vip|1|2|3|4|5\" of gid://shopify/Customer/3 is not a customer \
             profile the Functions can read: field `segment` is malformed",
        ),
        (
            "offer value",
            with(&|r| {
                r.owner_id = "gid://shopify/ProductVariant/5".into();
                r.key = VARIANT_KEY.into();
                r.value = "mw1|-3.00|77||".into();
            }),
            "field `value`: \"mw1|-3.00|77||\" of gid://shopify/ProductVariant/5 is not a \
             variant's offer data the Functions can read: field `unit_cost` is malformed",
        ),
        (
            "type",
            with(&|r| r.kind = "number_integer".into()),
            "field `type`: \"number_integer\" is not \"single_line_text_field\", the type of \
             `$app.profile`",
        ),
        (
            "namespace",
            with(&|r| r.namespace = "other".into()),
            "field `namespace`: \"other\" is not \"$app\", the app's namespace the Functions read",
        ),
        (
            "owner",
            with(&|r| r.owner_id = "gid://shopify/Product/3".into()),
            "field `ownerId`: \"gid://shopify/Product/3\" is not a Customer GID \
             (gid://shopify/Customer/<number>), the owner of `$app.profile`",
        ),
        (
            "key",
            with(&|r| r.key = "score".into()),
            "field `key`: \"score\" is neither \"profile\" nor \"offer\"",
        ),
    ];
    for (name, line, expected) in cases {
        let store = store();
        let dir = plan(&format!("bad-{}", name.replace(' ', "-")), &[line]);
        let output = apply(&store, &dir, Stdio::piped());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{name}: {stderr}");
        let location = format!("{}:{}: ", dir.join(PLAN_FILE).display(), CUSTOMERS + 1);
        assert_eq!(
            stderr.trim_end(),
            format!(
                "error: applying the plan in {}: {location}{expected}",
                dir.display()
            ),
            "{name}"
        );
        assert_eq!(store.stats().writes_applied, 0, "{name}");
    }
}

/// Regression (audit: `apply` exited 0 after "1 values refused by the store ... Some(INVALID)"):
/// the rest of the plan is applied, the refusal is listed without `Some(...)`, and the exit
/// status says the plan is not in the store.
#[test]
fn values_the_store_refuses_make_apply_fail_after_applying_the_rest() {
    let store = store();
    let unknown = serde_json::to_string(&profile_record(CUSTOMERS + 7)).unwrap();
    let dir = plan("refused", &[unknown]);
    let output = apply(&store, &dir, Stdio::piped());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "  {} $app.profile: INVALID: Owner does not exist.",
            customer_gid(CUSTOMERS + 7)
        )) && !stdout.contains("Some("),
        "{stdout}"
    );
    assert_eq!(
        stderr.trim_end(),
        format!(
            "error: the store refused 1 of the plan's values (listed above; the rest of the plan \
             was applied): fix them in {} and run apply again",
            dir.display()
        )
    );
    assert_eq!(store.stats().metafields_stored, CUSTOMERS);
}

/// Regression (audit: `marginwise --quiet apply ... | head -1` panicked with "failed printing to
/// stdout: Broken pipe"): a standard output whose reader has gone is a clean stop, with status 0
/// and nothing on stderr.
#[test]
fn a_closed_standard_output_is_a_clean_stop() {
    let store = store();
    let dir = plan("closed-stdout", &[]);
    // The reading end is closed before the process starts, so its first line already fails.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = apply(&store, &dir, Stdio::from(writer));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    assert_eq!(stderr, "");
}

/// `--plan` given the plan file instead of its folder: the folder is named, nothing is sent.
#[test]
fn a_plan_file_given_for_the_folder_names_the_folder() {
    let store = store();
    let dir = plan("file-for-folder", &[]);
    let run = apply(&store, &dir.join(PLAN_FILE), Stdio::piped());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "--plan {}: a file; pass the folder that holds it ({})",
            dir.join(PLAN_FILE).display(),
            dir.display()
        )),
        "{stderr}"
    );
    assert_eq!(store.stats().graphql_requests, 0);
}
