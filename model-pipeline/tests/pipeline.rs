//! The pipeline end to end on generated sample stores: generator determinism, segments,
//! complements against the popularity baseline, the plan's round trip through the Functions'
//! decoders, and the README's demo.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use marginwise_engine::format::{PROFILE_KEY, VARIANT_KEY};
use marginwise_engine::{Profile, ReasonCode, Segment, VariantData};
use model_pipeline::complements::Ranking;
use model_pipeline::demo::{self, DemoOptions};
use model_pipeline::generate::{
    BUNDLES_FILE, DEFAULT_OPT_OUT_TAG, GeneratedStore, GeneratorConfig, generate,
};
use model_pipeline::ingest::{CUSTOMERS_FILE, IngestOptions, ORDERS_FILE, PRODUCTS_FILE};
use model_pipeline::pipeline::{self, Outcome, RunOptions};
use model_pipeline::plan::{self, DELETIONS_FILE, MetafieldIdentifierInput, PLAN_FILE};
use model_pipeline::progress::Progress;

const CUSTOMERS: u32 = 6_000;

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("model-pipeline")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One sample store scored once, shared by the tests below.
fn scored() -> &'static (GeneratedStore, Outcome) {
    static STORE: OnceLock<(GeneratedStore, Outcome)> = OnceLock::new();
    STORE.get_or_init(|| {
        let dir = scratch("shared");
        let generated = generate(
            &GeneratorConfig {
                customers: CUSTOMERS,
                seed: 7,
            },
            &dir.join("store"),
            Progress::hidden(),
        )
        .unwrap();
        let options = RunOptions {
            ingest: IngestOptions {
                opt_out_tag: Some(DEFAULT_OPT_OUT_TAG.into()),
                ..IngestOptions::default()
            },
            ..RunOptions::default()
        };
        let outcome = pipeline::run(
            &dir.join("store"),
            &dir.join("out"),
            &options,
            Progress::hidden(),
        )
        .unwrap();
        (generated, outcome)
    })
}

#[test]
fn generator_is_deterministic_per_seed() {
    let dir = scratch("determinism");
    let make = |name: &str, seed: u64| {
        let path = dir.join(name);
        generate(
            &GeneratorConfig {
                customers: 800,
                seed,
            },
            &path,
            Progress::hidden(),
        )
        .unwrap();
        path
    };
    let (a, b, c) = (make("a", 1), make("b", 1), make("c", 2));
    for file in [CUSTOMERS_FILE, PRODUCTS_FILE, ORDERS_FILE] {
        let read = |d: &Path| std::fs::read(d.join(file)).unwrap();
        assert_eq!(
            read(&a),
            read(&b),
            "{file} differs between two runs with one seed"
        );
    }
    assert_ne!(
        std::fs::read(a.join(ORDERS_FILE)).unwrap(),
        std::fs::read(c.join(ORDERS_FILE)).unwrap()
    );
}

#[test]
fn sample_store_reads_cleanly_and_counts_match() {
    let (generated, outcome) = scored();
    let stats = &outcome.data.stats;
    assert_eq!(stats.bad_lines, 0);
    assert_eq!(stats.orders, generated.orders);
    assert_eq!(stats.line_items, generated.line_items);
    assert_eq!(outcome.data.customers.len() as u64, generated.customers);
    assert_eq!(
        outcome.data.catalog.variants.len() as u64,
        generated.variants
    );
    assert!(stats.guest_orders > 0 && stats.cancelled_or_test_orders > 0);
    // The customers export's numberOfOrders agrees with the orders read (opted-out customers'
    // orders are not folded in, so only the others are compared).
    for (record, history) in outcome.data.customers.iter().zip(&outcome.data.histories) {
        if !record.opted_out {
            assert!(i64::from(history.n_orders) <= record.number_of_orders);
        }
    }
}

#[test]
fn every_segment_is_populated_with_thresholds_from_the_data() {
    let (_, outcome) = scored();
    let s = &outcome.scored;
    for (segment, count) in s.segment_counts() {
        assert!(count > 0, "segment {} is empty", segment.code());
    }
    let t = &s.thresholds;
    assert!(t.new_max_age_weeks > 0.0);
    assert!(t.at_risk_max_p_alive > 0.0 && t.at_risk_max_p_alive < 1.0);
    assert!(t.loyal_min_clv > 0.0);
    // Loyal customers are worth more than active ones on average, and lapsed ones expect fewer
    // orders than anyone else.
    let mean = |segment: Segment, f: &dyn Fn(&model_pipeline::score::CustomerScore) -> f64| {
        let v: Vec<f64> = s
            .customers
            .iter()
            .filter(|c| c.profile.segment == segment)
            .map(f)
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let clv = |c: &model_pipeline::score::CustomerScore| c.scores.clv_12m;
    let orders = |c: &model_pipeline::score::CustomerScore| c.scores.expected_orders_12m;
    assert!(mean(Segment::LoyalHighValue, &clv) > mean(Segment::Active, &clv));
    assert!(mean(Segment::Lapsed, &orders) < mean(Segment::Active, &orders));
    assert!(mean(Segment::Lapsed, &orders) < mean(Segment::New, &orders));
    // Opted-out customers have no profile.
    let opted: Vec<u64> = s.opted_out.clone();
    assert!(!opted.is_empty());
    assert!(s.customers.iter().all(|c| !opted.contains(&c.customer_id)));
}

#[test]
fn complements_beat_popularity_and_find_the_planted_pairs() {
    let (generated, outcome) = scored();
    let c = &outcome.scored.complements;
    let row = |r: Ranking| *c.evaluation.iter().find(|e| e.ranking == r).unwrap();
    let baseline = row(Ranking::Popularity);
    let chosen = row(c.ranking);
    assert!(
        baseline.anchors > 1_000,
        "too few evaluation anchors: {}",
        baseline.anchors
    );
    assert!(
        chosen.ndcg_at_5 > baseline.ndcg_at_5 * 1.2,
        "{chosen:?} vs {baseline:?}"
    );
    assert!(
        chosen.hit_rate_at_5 > baseline.hit_rate_at_5,
        "{chosen:?} vs {baseline:?}"
    );
    // The chosen ranking is the best of the candidates by NDCG@5.
    for r in Ranking::CANDIDATES {
        assert!(row(r).ndcg_at_5 <= chosen.ndcg_at_5);
    }
    // Most planted partners are among their anchor's top three complements.
    let catalog = &outcome.data.catalog;
    let found = generated
        .planted_pairs
        .iter()
        .filter(|(anchor, partner)| {
            let a = catalog.product_index[anchor] as usize;
            c.per_product[a]
                .iter()
                .take(3)
                .any(|x| catalog.products[x.product as usize] == *partner)
        })
        .count();
    assert!(
        found * 10 >= generated.planted_pairs.len() * 8,
        "{found} of {} planted pairs found",
        generated.planted_pairs.len()
    );
}

#[test]
fn plan_round_trips_through_the_functions_decoders() {
    let (_, outcome) = scored();
    let exponent = outcome.data.currency.exponent;
    let records = plan::read_plan(&outcome.out_dir.join(PLAN_FILE)).unwrap();
    let mut profiles: HashMap<String, Profile> = HashMap::new();
    let mut variants: HashMap<String, VariantData> = HashMap::new();
    for record in &records {
        assert_eq!(record.namespace, "$app");
        assert_eq!(record.kind, "single_line_text_field");
        assert!(
            record.value.len() < 10_000,
            "a Function reads at most 10,000 bytes"
        );
        match record.key.as_str() {
            PROFILE_KEY => {
                profiles.insert(
                    record.owner_id.clone(),
                    Profile::decode(&record.value).unwrap(),
                );
            }
            VARIANT_KEY => {
                variants.insert(
                    record.owner_id.clone(),
                    VariantData::decode(&record.value, exponent).unwrap(),
                );
            }
            other => panic!("unexpected key {other}"),
        }
    }
    let s = &outcome.scored;
    assert_eq!(profiles.len(), s.customers.len());
    for c in &s.customers {
        assert_eq!(profiles[&plan::customer_gid(c.customer_id)], c.profile);
    }
    assert_eq!(variants.len(), s.variants.len());
    let mut with_cost = 0;
    for (id, data) in &s.variants {
        assert_eq!(&variants[&plan::variant_gid(*id)], data);
        with_cost += usize::from(data.unit_cost_minor.is_some());
    }
    assert!(
        with_cost > 0 && with_cost < s.variants.len(),
        "some variants lack a cost"
    );
    // Opted-out customers are in the deletions file and nowhere in the plan.
    let deletions: Vec<MetafieldIdentifierInput> =
        std::fs::read_to_string(outcome.out_dir.join(DELETIONS_FILE))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    assert_eq!(deletions.len(), s.opted_out.len());
    for d in &deletions {
        assert_eq!(d.key, PROFILE_KEY);
        assert!(!profiles.contains_key(&d.owner_id));
    }
}

/// A policy `compile-policy` refuses stops the demo before any work, with its reasons; run
/// through, it would only show every offer skipped.
#[test]
fn the_demo_refuses_a_policy_that_does_not_compile_before_any_work() {
    let out = scratch("demo-bad-policy");
    let _ = std::fs::create_dir_all(&out);
    let policy = out.join("policy.json");
    let text = demo::SAMPLE_POLICY.replacen("\"bps\": 1000", "\"bps\": 100000", 1);
    assert_ne!(text, demo::SAMPLE_POLICY);
    std::fs::write(&policy, text).unwrap();
    let error = demo::run(
        &DemoOptions {
            out: out.clone(),
            customers: 3_000,
            seed: 11,
            policy: Some(policy),
            store: None,
        },
        Progress::hidden(),
    )
    .err()
    .map(|e| format!("{e:#}"))
    .unwrap_or_default();
    assert!(
        error.contains("does not compile") && error.contains("offer_malformed"),
        "{error}"
    );
    assert!(!out.join("sample-store").exists(), "work was done first");
}

#[test]
fn demo_runs_end_to_end_on_a_small_store() {
    let out = scratch("demo");
    let outcome = demo::run(
        &DemoOptions {
            out: out.clone(),
            customers: 3_000,
            seed: 11,
            policy: None,
            store: None,
        },
        Progress::hidden(),
    )
    .unwrap();
    assert!(outcome.report.as_ref().unwrap().exists());
    assert!(out.join(PLAN_FILE).exists() && out.join(demo::SCENARIOS_FILE).exists());
    // The plan went through the local stand-in and the scenarios read it back from there.
    let plan_records = plan::read_plan(&out.join(PLAN_FILE)).unwrap().len();
    assert_eq!(outcome.apply.written, plan_records as u64);
    assert_eq!(outcome.read_back, plan_records);
    let writes = outcome.local_writes.as_ref().unwrap();
    assert_eq!(writes.writes_applied, plan_records as u64);
    assert_eq!(writes.duplicate_writes, 0);
    let by_name: HashMap<&str, &demo::ScenarioResult> = outcome
        .scenarios
        .iter()
        .map(|s| (s.name.as_str(), s))
        .collect();
    assert!(outcome.scenarios.len() >= 10, "{}", outcome.table);
    let has = |name: &str, code: ReasonCode| {
        by_name[name]
            .cart_lines
            .reasons
            .iter()
            .any(|r| r.code == code)
    };
    let held = by_name["held-out customer, basket"];
    assert_eq!(held.offer, "-");
    assert!(has("held-out customer, basket", ReasonCode::HoldoutIn));
    assert!(has("anonymous shopper, basket", ReasonCode::ProfileMissing));
    assert!(has(
        "opted-out customer (no profile), basket",
        ReasonCode::ProfileMissing
    ));
    assert!(has(
        "active customer, line of unknown cost",
        ReasonCode::LineCostUnknown
    ));
    // The slot offer reaches carts with a complement, and some scenario gets a shipping offer.
    assert_eq!(
        by_name["anonymous shopper, anchor + complement"].offer,
        "complete-the-set"
    );
    assert!(
        outcome
            .scenarios
            .iter()
            .any(|s| !s.delivery.shipping_discounts.is_empty())
    );
    // The cart transform merges the sample store's first bundle for the loyal customer, into
    // its parent, with a bundle price the guard allowed, and says so in its reasons.
    let bundle = by_name["loyal customer, a bundle's components in the cart (cart transform)"];
    let decision = bundle.bundle.as_ref().unwrap();
    assert_eq!(decision.merges.len(), 1, "{}", decision.render_text());
    let merge = &decision.merges[0];
    assert_eq!(merge.lines.len(), 2);
    let defined: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("sample-store").join(BUNDLES_FILE)).unwrap(),
    )
    .unwrap();
    let parent = defined["bundles"][0]["parent"].as_str().unwrap();
    assert_eq!(
        format!(
            "bundle {}",
            parent.trim_start_matches("gid://shopify/ProductVariant/")
        ),
        bundle.offer
    );
    assert!(merge.discount_minor > 0 && merge.percent_decrease_bps > 0);
    assert!(bundle.offer.starts_with("bundle "), "{}", outcome.table);
    assert!(
        bundle.reasons.contains("bundle_merged"),
        "{}",
        bundle.reasons
    );
    assert!(outcome.table.lines().count() == outcome.scenarios.len() + 2);
}

/// The sample store's bundles are ones `compile-bundles` takes, of products the store sells (the
/// parent priced at its components together), and scoring with them flags exactly the parents.
#[test]
fn the_sample_bundles_are_valid_and_scoring_flags_their_parents() {
    let dir = scratch("sample-bundles");
    let store = dir.join("store");
    let generated = generate(
        &GeneratorConfig {
            customers: 800,
            seed: 3,
        },
        &store,
        Progress::hidden(),
    )
    .unwrap();
    assert_eq!(generated.bundles, 2);
    let text = std::fs::read_to_string(store.join(BUNDLES_FILE)).unwrap();
    let parents = model_pipeline::cart_transform::bundle_parents(&text).unwrap();
    assert_eq!(parents.len(), 2);
    let products = std::fs::read_to_string(store.join(PRODUCTS_FILE)).unwrap();
    let price = |id: u64| -> f64 {
        let gid = format!("gid:\\/\\/shopify\\/ProductVariant\\/{id}\"");
        let line = products
            .lines()
            .find(|line| line.contains(&gid))
            .unwrap_or_else(|| panic!("variant {id} not in products.jsonl"));
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        value["price"].as_str().unwrap().parse().unwrap()
    };
    let file: serde_json::Value = serde_json::from_str(&text).unwrap();
    for (bundle, parent) in file["bundles"].as_array().unwrap().iter().zip(&parents) {
        let components: f64 = bundle["components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let gid = c["variant"].as_str().unwrap();
                price(gid.rsplit('/').next().unwrap().parse().unwrap())
            })
            .sum();
        assert!((price(*parent) - components).abs() < 1e-9, "{bundle}");
    }
    // Every component has a known cost, whatever the seed: a bundle the guard can price.
    for seed in 1..=30 {
        let store = dir.join(format!("seed-{seed}"));
        generate(
            &GeneratorConfig {
                customers: 300,
                seed,
            },
            &store,
            Progress::hidden(),
        )
        .unwrap();
        let products = std::fs::read_to_string(store.join(PRODUCTS_FILE)).unwrap();
        let file: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(store.join(BUNDLES_FILE)).unwrap())
                .unwrap();
        for component in file["bundles"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|b| b["components"].as_array().unwrap())
        {
            let id = component["variant"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap();
            let gid = format!("ProductVariant\\/{id}\"");
            let line = products.lines().find(|l| l.contains(&gid)).unwrap();
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(
                value["inventoryItem"]["unitCost"].is_object(),
                "seed {seed}: {line}"
            );
        }
    }
    let mut options = RunOptions::default();
    options.score.bundle_parents = parents.clone();
    let outcome = pipeline::run(&store, &dir.join("out"), &options, Progress::hidden()).unwrap();
    let flagged: Vec<u64> = plan::read_plan(&outcome.out_dir.join(PLAN_FILE))
        .unwrap()
        .into_iter()
        .filter(|r| r.key == VARIANT_KEY)
        .filter(|r| VariantData::decode(&r.value, 2).unwrap().bundle_parent)
        .map(|r| r.owner_id.rsplit('/').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(flagged, parents);
}
