//! Properties of `evaluate_bundles` over random bundle definitions, carts and policies, 10,000
//! cases each: no line is in two operations (and no parent merged twice; merges take whole lines
//! that form exact sets), every expansion adds up
//! exactly to the parent's price, every merged decrease keeps the margin guard, bundles that share
//! no variant with the cart change nothing, a checked list decides exactly as the plain one, and
//! running the transform on its own output changes nothing.
//!
//! The checks recompute prices, costs and floors from the request on their own, in i128, so a bug
//! in the engine's arithmetic cannot hide behind the same bug in the check.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;

use marginwise_engine::bundle::VARIANT_GID_PREFIX;
use marginwise_engine::format::{
    BUNDLE_MARKER_EXPANDED, BUNDLE_MARKER_MERGED, BundleComponent, BundleDefinition, Profile,
    Segment, VariantData, checked_bundles_mentioning, encode_bundles, encode_checked_bundles,
    is_checked,
};
use marginwise_engine::money::{Currency, format_decimal_minor, parse_decimal_minor};
use marginwise_engine::{
    BundleDecision, BundleLine, BundleRequest, CustomerFacts, PolicySource, ProfileInput,
    VariantInput, evaluate_bundles,
};
use proptest::prelude::*;
use serde_json::json;

const CASES: u32 = 10_000;
/// Component variants are 1..=8, parents 900..=904: they never collide, so no bundle is nested.
const N_COMPONENT_VARIANTS: u64 = 8;

#[derive(Debug, Clone)]
struct PolicyModel {
    line_margin_bps: i64,
    order_margin_bps: i64,
    stack_bps: i64,
    unknown_allow: bool,
}

#[derive(Debug, Clone)]
struct Scenario {
    request: BundleRequest,
    definitions: Vec<BundleDefinition>,
    policy: PolicyModel,
    exponent: u8,
}

fn gid(id: u64) -> String {
    format!("{VARIANT_GID_PREFIX}{id}")
}

fn definitions() -> impl Strategy<Value = Vec<BundleDefinition>> {
    prop::collection::vec(
        prop::collection::btree_map(1..=N_COMPONENT_VARIANTS, (1i64..=3, 1i64..=100), 1..=3),
        1..=5,
    )
    .prop_map(|bundles| {
        bundles
            .into_iter()
            .enumerate()
            .map(|(i, components)| BundleDefinition {
                parent_variant_id: 900 + i as u64,
                components: components
                    .into_iter()
                    .map(|(variant_id, (quantity, weight))| BundleComponent {
                        variant_id,
                        quantity,
                        weight,
                    })
                    .collect(),
            })
            // A bundle of one unit is rejected by the format; keep the generator to valid ones.
            .filter(|b| b.components.iter().map(|c| c.quantity).sum::<i64>() >= 2)
            .collect()
    })
}

fn price_minor() -> impl Strategy<Value = i64> {
    prop_oneof![50 => 0i64..60_000, 1 => 0i64..=i64::MAX / 4]
}

prop_compose! {
    fn line()(
        variant in prop_oneof![6 => 1..=N_COMPONENT_VARIANTS, 2 => 900u64..=904, 1 => Just(0u64)],
        quantity in prop_oneof![10 => 1i64..=4, 1 => -1i64..=0],
        price in price_minor(),
        cost_share in prop::option::weighted(0.85, 0i64..=120),
        marker in prop::option::weighted(0.1, prop_oneof![Just(BUNDLE_MARKER_MERGED), Just(BUNDLE_MARKER_EXPANDED)]),
    ) -> (u64, i64, i64, Option<i64>, Option<&'static str>) {
        (variant, quantity, price, cost_share, marker)
    }
}

prop_compose! {
    fn scenario()(
        currency in prop::sample::select(vec!["USD", "JPY", "KWD"]),
        definitions in definitions(),
        lines in prop::collection::vec(line(), 0..=8),
        // Per definition: whether the cart also gets every component in exact sets (k of them),
        // so merges, shared lines and the guard are reached often, not by luck.
        completions in prop::collection::vec((prop::bool::weighted(0.6), 1i64..=2, 100i64..=20_000, 20i64..=110), 5),
        line_margin_bps in 0i64..=3_000,
        order_margin_bps in 0i64..=3_000,
        stack_bps in 0i64..=2_000,
        unknown_allow in any::<bool>(),
        default_bps in 0i64..=3_000,
        vip_bps in 0i64..=10_000,
        merge_without_discount in any::<bool>(),
        holdout_share in prop_oneof![3 => Just(0i64), 1 => 0i64..=10_000],
        vip in any::<bool>(),
        key in 0u32..1_000,
    ) -> Scenario {
        let currency_info = Currency::from_code(currency).unwrap();
        let mut lines = lines;
        for (definition, &(complete, sets, price, cost_share)) in definitions.iter().zip(&completions) {
            if complete {
                for component in &definition.components {
                    lines.push((component.variant_id, sets * component.quantity, price, Some(cost_share), None));
                }
            }
        }
        let request_lines = lines
            .iter()
            .enumerate()
            .map(|(i, &(variant, quantity, price, cost_share, marker))| {
                let cost = cost_share.map(|share| (i128::from(price) * i128::from(share) / 100).min(i128::from(i64::MAX / 4)) as i64);
                BundleLine {
                    id: format!("gid://shopify/CartLine/{i}"),
                    quantity,
                    unit_price: format_decimal_minor(price, currency_info.exponent),
                    variant_id: (variant != 0).then(|| gid(variant)),
                    variant: VariantInput::Text(
                        VariantData {
                            unit_cost_minor: cost,
                            product_id: 7_000 + variant,
                            complements: vec![],
                            bundle_parent: variant >= 900,
                        }
                        .encode(currency_info.exponent),
                    ),
                    marker: marker.map(str::to_string),
                }
            })
            .collect();
        let policy = json!({
            "version": 1,
            "currency": currency,
            "guard": {
                "min_line_margin_bps": line_margin_bps,
                "min_order_margin_bps": order_margin_bps,
                "assumed_stack_bps": stack_bps,
                "unknown_cost": if unknown_allow { "allow" } else { "exclude" },
            },
            "holdout": { "share_bps": holdout_share, "salt": "p" },
            "discount": { "default_bps": default_bps, "segments": { "loyal_high_value": vip_bps } },
            "merge_without_discount": merge_without_discount,
        });
        let profile = if vip {
            ProfileInput::Text(
                Profile {
                    segment: Segment::LoyalHighValue,
                    clv_minor: 50_000,
                    churn_bps: 100,
                    expected_orders_12m_milli: 3_000,
                    discount_share_bps: 0,
                    p_alive_bps: 9_000,
                }
                .encode(),
            )
        } else {
            ProfileInput::Anonymous
        };
        Scenario {
            request: BundleRequest {
                currency_code: currency.to_string(),
                presentment_rate: "1.0".to_string(),
                profile,
                customer: CustomerFacts { number_of_orders: Some(2) },
                lines: request_lines,
                definitions: Some(encode_bundles(&definitions)),
                policy: PolicySource::Json(policy.to_string()),
                holdout_key: format!("gid://shopify/Customer/{key}"),
            },
            definitions,
            policy: PolicyModel { line_margin_bps, order_margin_bps, stack_bps, unknown_allow },
            exponent: currency_info.exponent,
        }
    }
}

/// The scenario's request with every variant id rewritten by `scheme`, and its definitions:
/// 0 keeps them; 1 makes them 14-digit ids like Shopify's; 2 gives every id the same last eight
/// digits; 3 makes components runs of ones (11111, 111111, ...), each the last digits of the
/// longer ones. Parents stay apart from components in all of them, so no bundle is nested.
fn with_ids(scenario: &Scenario, scheme: u8) -> (BundleRequest, Vec<BundleDefinition>) {
    let id = |v: u64| match scheme {
        0 => v,
        1 => 44_100_000_000_000 + v,
        2 => v * 100_000_000 + 1,
        _ if v >= 900 => 9_000 + v,
        _ => (0..v + 4).fold(0, |n, _| n * 10 + 1),
    };
    let definitions: Vec<BundleDefinition> = scenario
        .definitions
        .iter()
        .map(|d| BundleDefinition {
            parent_variant_id: id(d.parent_variant_id),
            components: d
                .components
                .iter()
                .map(|c| BundleComponent {
                    variant_id: id(c.variant_id),
                    ..*c
                })
                .collect(),
        })
        .collect();
    let mut request = scenario.request.clone();
    for line in &mut request.lines {
        if let Some(gid_text) = &line.variant_id {
            let number: u64 = gid_text
                .trim_start_matches(VARIANT_GID_PREFIX)
                .parse()
                .unwrap();
            line.variant_id = Some(gid(id(number)));
        }
    }
    request.definitions = Some(encode_bundles(&definitions));
    (request, definitions)
}

fn ceil_div(a: i128, b: i128) -> i128 {
    (a + b - 1).div_euclid(b)
}

fn unit_price(scenario: &Scenario, line: &BundleLine) -> i128 {
    i128::from(parse_decimal_minor(&line.unit_price, scenario.exponent).unwrap())
}

fn line_by_id<'s>(scenario: &'s Scenario, id: &str) -> &'s BundleLine {
    scenario.request.lines.iter().find(|l| l.id == id).unwrap()
}

fn definition<'s>(scenario: &'s Scenario, parent_gid: &str) -> &'s BundleDefinition {
    scenario
        .definitions
        .iter()
        .find(|d| gid(d.parent_variant_id) == parent_gid)
        .unwrap()
}

/// The request after Shopify applied the decision: merged units go to one new parent line per
/// merge (marked), expanded lines become their (marked) components.
fn apply(scenario: &Scenario, decision: &BundleDecision) -> BundleRequest {
    let mut lines = scenario.request.lines.clone();
    let mut added = Vec::new();
    for (n, merge) in decision.merges.iter().enumerate() {
        let mut price: i128 = 0;
        for part in &merge.lines {
            let line = lines.iter_mut().find(|l| l.id == part.line_id).unwrap();
            price += unit_price(scenario, line) * i128::from(part.quantity);
            line.quantity -= part.quantity;
        }
        let after = price - price * i128::from(merge.percent_decrease_bps) / 10_000;
        added.push(BundleLine {
            id: format!("gid://shopify/CartLine/merged-{n}"),
            quantity: merge.sets,
            unit_price: format_decimal_minor(
                i64::try_from(after / i128::from(merge.sets)).unwrap(),
                scenario.exponent,
            ),
            variant_id: Some(merge.parent_variant_id.clone()),
            variant: VariantInput::Missing,
            marker: Some(BUNDLE_MARKER_MERGED.to_string()),
        });
    }
    for expand in &decision.expands {
        let position = lines.iter().position(|l| l.id == expand.line_id).unwrap();
        let parent = lines.remove(position);
        for (j, item) in expand.items.iter().enumerate() {
            added.push(BundleLine {
                id: format!("{}-x{j}", parent.id),
                quantity: item.quantity * parent.quantity,
                unit_price: format_decimal_minor(item.unit_price_minor, scenario.exponent),
                variant_id: Some(item.variant_id.clone()),
                variant: VariantInput::Missing,
                marker: Some(BUNDLE_MARKER_EXPANDED.to_string()),
            });
        }
    }
    lines.retain(|l| l.quantity != 0);
    lines.extend(added);
    BundleRequest {
        lines,
        ..scenario.request.clone()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn no_line_is_in_two_operations(scenario in scenario()) {
        let decision = evaluate_bundles(&scenario.request);
        let mut uses: BTreeMap<&str, u32> = BTreeMap::new();
        let mut parents: BTreeMap<&str, u32> = BTreeMap::new();
        for merge in &decision.merges {
            *parents.entry(merge.parent_variant_id.as_str()).or_default() += 1;
            let definition = definition(&scenario, &merge.parent_variant_id);
            for part in &merge.lines {
                *uses.entry(part.line_id.as_str()).or_default() += 1;
                let line = line_by_id(&scenario, &part.line_id);
                // Merges take whole lines: spare units would be free again on a re-run.
                prop_assert_eq!(part.quantity, line.quantity);
                prop_assert!(line.marker.is_none());
            }
            // Exactly `sets` complete sets: each component's units add up to sets x quantity.
            for component in &definition.components {
                let units: i64 = merge
                    .lines
                    .iter()
                    .filter(|p| line_by_id(&scenario, &p.line_id).variant_id.as_deref() == Some(gid(component.variant_id).as_str()))
                    .map(|p| p.quantity)
                    .sum();
                prop_assert_eq!(units, merge.sets * component.quantity);
            }
        }
        for expand in &decision.expands {
            *uses.entry(expand.line_id.as_str()).or_default() += 1;
            prop_assert!(line_by_id(&scenario, &expand.line_id).marker.is_none());
        }
        prop_assert!(uses.values().all(|&n| n == 1), "{uses:?}");
        prop_assert!(parents.values().all(|&n| n == 1), "{parents:?}");
    }

    #[test]
    fn expanded_prices_add_up_exactly(scenario in scenario()) {
        let decision = evaluate_bundles(&scenario.request);
        for expand in &decision.expands {
            let line = line_by_id(&scenario, &expand.line_id);
            let parent_price = unit_price(&scenario, line);
            prop_assert_eq!(i128::from(expand.parent_unit_price_minor), parent_price);
            let total: i128 = expand
                .items
                .iter()
                .map(|item| i128::from(item.quantity) * i128::from(item.unit_price_minor))
                .sum();
            prop_assert_eq!(total, parent_price);
            prop_assert!(expand.items.iter().all(|i| i.quantity >= 1 && i.unit_price_minor >= 0));
        }
    }

    #[test]
    fn every_merged_decrease_keeps_the_guard(scenario in scenario()) {
        let decision = evaluate_bundles(&scenario.request);
        let model = &scenario.policy;
        for merge in &decision.merges {
            let (mut price, mut cost, mut unknown) = (0i128, 0i128, false);
            for part in &merge.lines {
                let line = line_by_id(&scenario, &part.line_id);
                let units = i128::from(part.quantity);
                price += unit_price(&scenario, line) * units;
                let VariantInput::Text(text) = &line.variant else { unreachable!() };
                match VariantData::decode(text, scenario.exponent).unwrap().unit_cost_minor {
                    Some(unit_cost) => cost += i128::from(unit_cost) * units,
                    None => unknown = true,
                }
            }
            prop_assert_eq!(i128::from(merge.price_before_minor), price);
            let bps = i128::from(merge.percent_decrease_bps);
            if bps == 0 {
                continue;
            }
            prop_assert!(!unknown || model.unknown_allow, "decrease with an unknown cost");
            let margin = i128::from(model.line_margin_bps.max(model.order_margin_bps));
            let floor = ceil_div(cost * (10_000 + margin), 10_000);
            let stack = ceil_div(price * i128::from(model.stack_bps), 10_000);
            let headroom = price - stack - floor;
            // Whatever Shopify's rounding of the percentage (at most one minor unit per set up).
            let worst_discount = ceil_div(price * bps, 10_000) + i128::from(merge.sets);
            prop_assert!(
                worst_discount <= headroom,
                "price {price} cost {cost} bps {bps} sets {} headroom {headroom}",
                merge.sets
            );
        }
    }

    #[test]
    fn bundles_sharing_no_variant_with_the_cart_change_nothing(
        scenario in scenario(),
        extra in prop::collection::vec((1i64..=3, 1i64..=100), 1..=24),
    ) {
        // Bundles of variants no line has (parents from 2,000, components from 3,000), appended
        // after the others so that they cannot clash with them: with more bundles than lines the
        // engine leaves the bundles outside the cart out before it looks at the lines, and that
        // must not change a single operation or reason.
        let mut definitions = scenario.definitions.clone();
        definitions.extend(extra.iter().zip(0u64..).map(|(&(quantity, weight), i)| BundleDefinition {
            parent_variant_id: 2_000 + i,
            components: vec![
                BundleComponent { variant_id: 3_000 + 2 * i, quantity, weight },
                BundleComponent { variant_id: 3_001 + 2 * i, quantity: 1, weight },
            ],
        }));
        let mut request = scenario.request.clone();
        request.definitions = Some(encode_bundles(&definitions));
        prop_assert_eq!(evaluate_bundles(&request), evaluate_bundles(&scenario.request));
    }

    #[test]
    fn checked_lists_decide_exactly_as_plain_ones(scenario in scenario(), scheme in 0u8..4) {
        // A small cart reads only the bundles of a checked list that mention its variants, found
        // by comparing digits: ids of every length, some the last digits of others, must find
        // exactly the bundles the whole list would give.
        let (plain, definitions) = with_ids(&scenario, scheme);
        let mut checked = plain.clone();
        checked.definitions = Some(encode_checked_bundles(&definitions).unwrap());
        prop_assert_eq!(evaluate_bundles(&checked), evaluate_bundles(&plain));
    }

    #[test]
    fn a_checked_list_skims_to_exactly_the_bundles_that_mention_the_variants(
        scenario in scenario(),
        scheme in 0u8..4,
    ) {
        // Extra bundles would not change a decision (see above), so compare the bundles found:
        // none missing, none extra.
        let (request, definitions) = with_ids(&scenario, scheme);
        let variants: Vec<u64> = request
            .lines
            .iter()
            .filter_map(|line| line.variant_id.as_deref()?.strip_prefix(VARIANT_GID_PREFIX)?.parse().ok())
            .collect();
        let expected: Vec<BundleDefinition> = definitions
            .iter()
            .filter(|d| {
                variants.contains(&d.parent_variant_id)
                    || d.components.iter().any(|c| variants.contains(&c.variant_id))
            })
            .cloned()
            .collect();
        let checked = encode_checked_bundles(&definitions).unwrap();
        prop_assert_eq!(checked_bundles_mentioning(&checked, &variants), Ok(expected));
    }

    #[test]
    fn any_index_under_a_matching_fingerprint_is_read_without_panicking(
        scenario in scenario(),
        bits in 0usize..3,
        postings in prop::collection::vec(0usize..0x1_0000, 0..12),
        cuts in prop::collection::vec(0usize..16, 4),
    ) {
        // The fingerprint proves only that the writer wrote the index. Whatever well-shaped index
        // it wrote (bucket ends in any order, postings anywhere), a lookup must not panic, and can
        // only find bundles of the list or give up and have the list read whole.
        let (mut request, definitions) = with_ids(&scenario, 0);
        let checked = encode_checked_bundles(&definitions).unwrap();
        let list = checked.strip_prefix("mw1|").unwrap().split('|').next().unwrap();
        let mut index: String = postings.iter().map(|p| format!("{p:04x}")).collect();
        for (bucket, cut) in cuts.iter().enumerate().take(1 << bits) {
            let end = match bucket + 1 == 1 << bits {
                true => postings.len(),
                false => cut % (postings.len() + 1),
            };
            index.push_str(&format!("{end:04x}"));
        }
        index.push_str(&bits.to_string());
        let covered = format!("{list}|{index}");
        let fingerprint = xxhash_rust::xxh64::xxh64(covered.as_bytes(), 0);
        let forged = format!("mw1|{covered}|{fingerprint:016x}");
        prop_assert!(is_checked(&forged), "{}", forged);
        let variants: Vec<u64> = (0..64).chain(900..910).collect();
        if let Ok(found) = checked_bundles_mentioning(&forged, &variants) {
            for bundle in &found {
                prop_assert!(definitions.contains(bundle), "{:?} in {}", bundle, forged);
            }
        }
        request.definitions = Some(forged);
        let _ = evaluate_bundles(&request);
    }

    #[test]
    fn running_on_its_own_output_changes_nothing(scenario in scenario()) {
        let decision = evaluate_bundles(&scenario.request);
        let transformed = apply(&scenario, &decision);
        let again = evaluate_bundles(&transformed);
        prop_assert!(again.merges.is_empty(), "{}", again.render_text());
        prop_assert!(again.expands.is_empty(), "{}", again.render_text());
    }
}

/// The generator must reach the interesting cases often enough for the properties to mean
/// something: merges with a decrease, merges at 0 %, expansions, two bundles competing for a line,
/// and the guard cutting a decrease.
#[test]
fn the_generator_covers_merges_expansions_and_the_guard() {
    use marginwise_engine::ReasonCode;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut discounted, mut at_zero, mut expanded, mut shared, mut guarded) = (0, 0, 0, 0, 0);
    let n = 2_000;
    for _ in 0..n {
        let scenario = scenario().new_tree(&mut runner).unwrap().current();
        let decision = evaluate_bundles(&scenario.request);
        discounted += usize::from(decision.merges.iter().any(|m| m.percent_decrease_bps > 0));
        at_zero += usize::from(decision.merges.iter().any(|m| m.percent_decrease_bps == 0));
        expanded += usize::from(!decision.expands.is_empty());
        let has = |code| decision.reasons.iter().any(|r| r.code == code);
        shared += usize::from(has(ReasonCode::BundleComponentShared));
        guarded += usize::from(has(ReasonCode::GuardReduced) || has(ReasonCode::GuardDropped));
    }
    println!(
        "of {n}: discounted merge {discounted}, 0 % merge {at_zero}, expansion {expanded}, \
         shared line {shared}, guard cut {guarded}"
    );
    for (what, count) in [
        ("discounted merge", discounted),
        ("0 % merge", at_zero),
        ("expansion", expanded),
        ("shared line", shared),
        ("guard cut", guarded),
    ] {
        assert!(
            count * 100 >= n,
            "{what}: {count} of {n} scenarios (want >= 1 %)"
        );
    }
}

/// More complete bundles than the output holds, and parent lines to expand after them: the
/// merges that fit are kept with their `bundle_merged` reasons, every other merge loses its
/// reason, no expansion fits, and one `bundle_output_limit` reason counts what was left out.
#[test]
fn merges_over_the_output_limit_lose_their_reasons_too() {
    use marginwise_engine::ReasonCode;
    const BUNDLES: u64 = 80;
    let definitions: Vec<BundleDefinition> = (0..BUNDLES)
        .map(|b| BundleDefinition {
            parent_variant_id: 90_000 + b,
            components: vec![
                BundleComponent {
                    variant_id: 2 * b + 1,
                    quantity: 1,
                    weight: 1,
                },
                BundleComponent {
                    variant_id: 2 * b + 2,
                    quantity: 1,
                    weight: 1,
                },
            ],
        })
        .collect();
    let line = |n: usize, variant: u64| BundleLine {
        id: format!("gid://shopify/CartLine/{n}"),
        quantity: 1,
        unit_price: "20.00".to_string(),
        variant_id: Some(gid(variant)),
        variant: VariantInput::Text(
            VariantData {
                unit_cost_minor: Some(500),
                product_id: 7_000 + variant,
                complements: vec![],
                bundle_parent: variant >= 90_000,
            }
            .encode(2),
        ),
        marker: None,
    };
    let variants = (1..=2 * BUNDLES).chain([90_000, 90_001, 90_002]);
    let lines = variants.enumerate().map(|(n, v)| line(n, v)).collect();
    let policy = json!({"version": 1, "currency": "USD", "discount": {"default_bps": 1000}});
    let request = BundleRequest {
        currency_code: "USD".to_string(),
        presentment_rate: "1.0".to_string(),
        profile: ProfileInput::Anonymous,
        customer: CustomerFacts {
            number_of_orders: Some(2),
        },
        lines,
        definitions: Some(encode_bundles(&definitions)),
        policy: PolicySource::Json(policy.to_string()),
        holdout_key: "gid://shopify/Customer/1".to_string(),
    };
    let decision = evaluate_bundles(&request);
    let kept = decision.merges.len();
    assert!(kept > 0 && kept < 80, "{kept} merges kept");
    assert!(decision.expands.is_empty());
    let mut merged: Vec<&str> = decision
        .reasons
        .iter()
        .filter(|r| r.code == ReasonCode::BundleMerged)
        .map(|r| r.subject.as_str())
        .collect();
    let mut parents: Vec<&str> = decision
        .merges
        .iter()
        .map(|m| m.parent_variant_id.as_str())
        .collect();
    merged.sort_unstable();
    parents.sort_unstable();
    assert_eq!(merged, parents);
    assert!(
        !decision
            .reasons
            .iter()
            .any(|r| r.code == ReasonCode::BundleExpanded)
    );
    let limits: Vec<String> = decision
        .reasons
        .iter()
        .filter(|r| r.code == ReasonCode::BundleOutputLimit)
        .map(|r| r.detail.to_string())
        .collect();
    let want = format!("{} merge(s) and 3 expansion(s) left out", 80 - kept);
    assert!(
        limits.len() == 1 && limits[0].contains(&want),
        "{limits:?}, want {want:?}"
    );
}
