//! Properties of `evaluate` over random carts, profiles and policies, 10,000 cases each.
//!
//! Requests are generated structurally: prices and costs as minor units rendered with the
//! currency's exponent, metafields through the format encoders, the policy as a model serialized
//! to JSON. Each generator also mixes in a small share of garbage (unreadable prices, corrupt
//! metafields, malformed offers, unknown currencies) so the properties hold on bad input too.
//!
//! The checks recompute prices, costs, floors and stacks from the request on their own, in i128,
//! using only the contract's parsing functions, so a bug in the engine's guard arithmetic cannot
//! hide behind the same bug in the check.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use marginwise_engine::format::{Profile, Segment, VariantData};
use marginwise_engine::money::{Currency, Rate, format_decimal_minor, parse_decimal_minor};
use marginwise_engine::{
    CustomerFacts, Decision, DeliveryGroup, DiscountClasses, Line, PolicySource, ProfileInput,
    Request, Target, VariantInput, evaluate,
};
use proptest::prelude::*;
use serde_json::{Value, json};

const CASES: u32 = 10_000;

/// The guard and offers the generated policy holds, kept so the checks know the rules.
#[derive(Debug, Clone)]
struct PolicyModel {
    shop: &'static str,
    min_line_margin_bps: i64,
    min_order_margin_bps: i64,
    assumed_stack_bps: i64,
    unknown_cost_allow: bool,
    /// (id, cap) of every offer.
    caps: Vec<(String, Option<i64>)>,
    json: String,
}

#[derive(Debug, Clone)]
struct Scenario {
    request: Request,
    policy: Option<PolicyModel>,
}

fn code_of(currency: &'static str) -> Currency {
    Currency::from_code(currency).unwrap()
}

fn amount() -> impl Strategy<Value = i64> {
    prop_oneof![
        100 => 0i64..60_000,
        1 => 0i64..=i64::MAX,
        1 => (i64::MAX - 1_000)..=i64::MAX,
    ]
}

/// Unit costs, mostly below typical prices so that discounts have room to happen.
fn cost() -> impl Strategy<Value = i64> {
    prop_oneof![
        100 => 0i64..20_000,
        1 => 0i64..=i64::MAX,
    ]
}

fn quantity() -> impl Strategy<Value = i64> {
    prop_oneof![
        100 => 1i64..6,
        1 => -2i64..=0,
        1 => 1i64..=i64::MAX,
    ]
}

fn variant(shop_exponent: u8) -> impl Strategy<Value = VariantInput> {
    let data = (
        prop_oneof![6 => cost().prop_map(Some), 1 => Just(None)],
        1u64..7,
        prop::collection::vec(1u64..7, 0..4),
        prop::bool::weighted(0.15),
    )
        .prop_map(
            move |(unit_cost_minor, product_id, complements, bundle_parent)| {
                VariantInput::Text(
                    VariantData {
                        unit_cost_minor,
                        product_id,
                        complements,
                        bundle_parent,
                    }
                    .encode(shop_exponent),
                )
            },
        );
    prop_oneof![
        20 => data,
        1 => Just(VariantInput::Missing),
        1 => "[ -~]{0,24}".prop_map(VariantInput::Text),
    ]
}

fn price_text(exponent: u8) -> impl Strategy<Value = String> {
    prop_oneof![
        30 => amount().prop_map(move |minor| format_decimal_minor(minor, exponent)),
        1 => "[ -~]{0,12}",
    ]
}

fn lines(shop_exponent: u8, presentment_exponent: u8) -> impl Strategy<Value = Vec<Line>> {
    // Empty carts have one outcome; a few are enough.
    prop_oneof![1 => Just(0usize), 12 => 1usize..8]
        .prop_flat_map(move |n_lines| {
            prop::collection::vec(
                (
                    quantity(),
                    price_text(presentment_exponent),
                    variant(shop_exponent),
                ),
                n_lines,
            )
        })
        .prop_map(|lines| {
            lines
                .into_iter()
                .enumerate()
                .map(|(i, (quantity, unit_price, variant))| Line {
                    id: format!("gid://shopify/CartLine/{i}"),
                    quantity,
                    unit_price,
                    variant,
                })
                .collect()
        })
}

fn delivery(presentment_exponent: u8) -> impl Strategy<Value = Vec<DeliveryGroup>> {
    prop::collection::vec(
        prop_oneof![
            8 => (0i64..5_000).prop_map(move |m| Some(format_decimal_minor(m, presentment_exponent))),
            1 => Just(None),
            1 => "[ -~]{0,6}".prop_map(Some),
        ],
        0..3,
    )
    .prop_map(|costs| {
        costs
            .into_iter()
            .enumerate()
            .map(|(i, shipping_cost)| DeliveryGroup {
                id: format!("gid://shopify/CartDeliveryGroup/{i}"),
                shipping_cost,
                option_costs: Vec::new(),
            })
            .collect()
    })
}

fn profile() -> impl Strategy<Value = ProfileInput> {
    let scored = (
        0usize..5,
        0i64..100_000,
        0i64..=10_000,
        0i64..5_000,
        0i64..=10_000,
        0i64..=10_000,
    )
        .prop_map(|(segment, clv, churn, orders, share, alive)| {
            ProfileInput::Text(
                Profile {
                    segment: Segment::ALL[segment],
                    clv_minor: clv,
                    churn_bps: churn,
                    expected_orders_12m_milli: orders,
                    discount_share_bps: share,
                    p_alive_bps: alive,
                }
                .encode(),
            )
        });
    prop_oneof![
        12 => scored,
        2 => Just(ProfileInput::Anonymous),
        2 => Just(ProfileInput::Missing),
        1 => "[ -~]{0,24}".prop_map(ProfileInput::Text),
    ]
}

fn bps() -> impl Strategy<Value = i64> {
    prop_oneof![40 => 0i64..=10_000, 1 => 10_001i64..20_000]
}

fn reward() -> impl Strategy<Value = Value> {
    prop_oneof![
        bps().prop_map(|bps| json!({"kind": "order_percent", "bps": bps})),
        amount().prop_map(|amount| json!({"kind": "order_fixed", "amount": amount})),
        bps().prop_map(|bps| json!({"kind": "lines_percent", "bps": bps})),
        amount().prop_map(|amount| json!({"kind": "lines_fixed", "amount": amount})),
        bps().prop_map(|bps| json!({"kind": "shipping_percent", "bps": bps})),
        Just(json!({"kind": "free_shipping"})),
        (bps(), 0u32..4).prop_map(|(bps, max_slots)| {
            json!({"kind": "slot_percent", "bps": bps, "max_slots": max_slots})
        }),
    ]
}

fn eligibility() -> impl Strategy<Value = Value> {
    (
        prop_oneof![2 => Just(vec![]), 1 => prop::collection::vec(0usize..5, 1..4)],
        prop::option::of(0i64..60_000),
        prop::option::of(30_000i64..100_000),
        prop::option::of(0i64..=10_000),
        prop::option::of(0i64..20_000),
        0usize..3,
    )
        .prop_map(|(segments, clv_min, clv_max, churn, subtotal, customer)| {
            let segments: Vec<&str> = segments.iter().map(|&i| Segment::ALL[i].code()).collect();
            let customer = ["any", "new", "returning"][customer];
            json!({
                "segments": segments,
                "clv_min": clv_min,
                "clv_max": clv_max,
                "churn_min_bps": churn,
                "subtotal_min": subtotal,
                "customer": customer,
            })
        })
}

fn offers() -> impl Strategy<Value = Vec<(Value, Option<i64>, Value)>> {
    prop::collection::vec(
        (
            prop_oneof![3 => Just(Value::Null), 2 => eligibility()],
            prop_oneof![1 => Just(None), 1 => amount().prop_map(Some)],
            reward(),
        ),
        0..5,
    )
}

fn policy(shop: &'static str) -> impl Strategy<Value = Option<PolicyModel>> {
    let model = (
        (
            prop_oneof![3 => 0i64..2_000, 1 => 0i64..20_000],
            prop_oneof![3 => 0i64..2_000, 1 => 0i64..20_000],
            prop_oneof![3 => 0i64..1_000, 1 => 0i64..=10_000],
            any::<bool>(),
        ),
        prop::bool::ANY,
        prop::option::weighted(0.3, (0i64..3_000, "[a-z]{0,4}")),
        offers(),
    )
        .prop_map(
            move |((line, order, stack, allow), best, holdout, offers)| {
                let caps: Vec<(String, Option<i64>)> = offers
                    .iter()
                    .enumerate()
                    .map(|(i, (_, cap, _))| (format!("o{i}"), *cap))
                    .collect();
                let offer_json: Vec<Value> = offers
                    .into_iter()
                    .enumerate()
                    .map(|(i, (eligibility, cap, reward))| {
                        json!({
                            "id": format!("o{i}"),
                            "eligibility": eligibility,
                            "reward": reward,
                            "cap": cap,
                            "message": format!("offer {i}"),
                        })
                    })
                    .collect();
                let holdout =
                    holdout.map(|(share, salt)| json!({"share_bps": share, "salt": salt}));
                let document = json!({
                    "version": 1,
                    "currency": shop,
                    "strategy": if best { "best_for_shopper" } else { "priority" },
                    "guard": {
                        "min_line_margin_bps": line,
                        "min_order_margin_bps": order,
                        "assumed_stack_bps": stack,
                        "unknown_cost": if allow { "allow" } else { "exclude" },
                    },
                    "holdout": holdout,
                    "offers": offer_json,
                });
                Some(PolicyModel {
                    shop,
                    min_line_margin_bps: line,
                    min_order_margin_bps: order,
                    assumed_stack_bps: stack,
                    unknown_cost_allow: allow,
                    caps,
                    json: document.to_string(),
                })
            },
        );
    prop_oneof![
        30 => model,
        1 => Just(None),
    ]
}

fn currency() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("USD"), Just("JPY"), Just("KWD")]
}

fn rate() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => Just("1.0".to_string()),
        4 => prop_oneof![Just("0.307"), Just("150.5"), Just("0.0067"), Just("1.0834")]
            .prop_map(str::to_string),
        4 => (1i64..5_000_000_000_000).prop_map(|nanos| format_decimal_minor(nanos, 9)),
        1 => "[ -~]{0,8}",
    ]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (currency(), currency(), prop::bool::weighted(0.97))
        .prop_flat_map(|(shop, presentment, known_cart_currency)| {
            let shop_exponent = code_of(shop).exponent;
            let presentment_exponent = code_of(presentment).exponent;
            (
                (
                    rate(),
                    prop_oneof![
                        3 => Just((true, true, true)),
                        1 => any::<(bool, bool, bool)>(),
                    ],
                    profile(),
                    prop::option::of(0i64..5),
                    prop::bool::ANY,
                ),
                lines(shop_exponent, presentment_exponent),
                delivery(presentment_exponent),
                prop_oneof![1 => Just(String::new()), 6 => (0u32..1_000).prop_map(|n| format!("gid://shopify/Customer/{n}"))],
                policy(shop),
            )
                .prop_map(
                    move |(
                        (rate, (product, order, shipping), profile, orders, delivery_target),
                        lines,
                        delivery_groups,
                        holdout_key,
                        policy,
                    )| {
                        let request = Request {
                            target: if delivery_target {
                                Target::DeliveryOptions
                            } else {
                                Target::CartLines
                            },
                            currency_code: if known_cart_currency {
                                presentment.to_string()
                            } else {
                                "XXX1".to_string()
                            },
                            presentment_rate: rate,
                            classes: DiscountClasses {
                                product: product || order || shipping,
                                order,
                                shipping: shipping || !order,
                            },
                            profile,
                            customer: CustomerFacts {
                                number_of_orders: orders,
                            },
                            lines,
                            delivery_groups,
                            holdout_key,
                            policy: match &policy {
                                Some(model) => PolicySource::Json(model.json.clone()),
                                None => PolicySource::Missing,
                            },
                        };
                        Scenario { request, policy }
                    },
                )
        })
}

/// Requests the generator never builds on purpose: any text anywhere.
fn chaos() -> impl Strategy<Value = Request> {
    (
        "[ -~]{0,5}",
        "[ -~]{0,12}",
        prop::collection::vec(
            (
                any::<i64>(),
                "[ -~]{0,24}",
                prop::option::of("mw1\\|[ -~]{0,24}"),
            ),
            0..5,
        ),
        prop::option::of("[ -~]{0,40}"),
        "[ -~]{0,300}",
    )
        .prop_map(|(currency, rate, lines, profile, policy)| Request {
            target: Target::CartLines,
            currency_code: currency,
            presentment_rate: rate,
            classes: DiscountClasses {
                product: true,
                order: true,
                shipping: true,
            },
            profile: profile.map_or(ProfileInput::Anonymous, ProfileInput::Text),
            customer: CustomerFacts::default(),
            lines: lines
                .into_iter()
                .enumerate()
                .map(|(i, (quantity, unit_price, variant))| Line {
                    id: i.to_string(),
                    quantity,
                    unit_price,
                    variant: variant.map_or(VariantInput::Missing, VariantInput::Text),
                })
                .collect(),
            delivery_groups: vec![],
            holdout_key: String::new(),
            policy: PolicySource::Json(policy),
        })
}

// ---- The independent oracle: the request's figures recomputed from its text. ----

/// A cart line as the check reads it, in presentment minor units (i128 so nothing overflows).
struct Figures {
    id: String,
    price: i128,
    /// Line cost; `None` when unknown.
    cost: Option<i128>,
}

struct Oracle {
    shop: Currency,
    presentment: Currency,
    rate: Rate,
    model: PolicyModel,
}

impl Oracle {
    fn new(scenario: &Scenario) -> Option<Oracle> {
        let model = scenario.policy.clone()?;
        Some(Oracle {
            shop: code_of(model.shop),
            presentment: Currency::from_code(&scenario.request.currency_code)?,
            rate: Rate::parse(&scenario.request.presentment_rate)?,
            model,
        })
    }

    fn figures(&self, request: &Request) -> Vec<Figures> {
        request
            .lines
            .iter()
            .filter_map(|line| {
                let unit = parse_decimal_minor(&line.unit_price, self.presentment.exponent)?;
                if unit < 0 || line.quantity < 1 {
                    return None;
                }
                let price = i128::from(unit) * i128::from(line.quantity);
                i64::try_from(price).ok()?;
                let cost = match &line.variant {
                    VariantInput::Text(text) => VariantData::decode(text, self.shop.exponent)
                        .ok()
                        .and_then(|data| data.unit_cost_minor)
                        .and_then(|c| self.rate.convert(c, self.shop, self.presentment))
                        .map(|c| i128::from(c) * i128::from(line.quantity))
                        .filter(|c| i64::try_from(*c).is_ok()),
                    VariantInput::Missing => None,
                };
                Some(Figures {
                    id: line.id.clone(),
                    price,
                    cost,
                })
            })
            .collect()
    }

    /// The cost the guard must use for a line, or `None` when the line may not be discounted.
    fn guard_cost(&self, line: &Figures) -> Option<i128> {
        match line.cost {
            Some(cost) => Some(cost),
            None if self.model.unknown_cost_allow => Some(0),
            None => None,
        }
    }

    fn stack(&self, price: i128) -> i128 {
        ceil_div(price * i128::from(self.model.assumed_stack_bps), 10_000)
    }

    fn line_floor(&self, cost: i128) -> i128 {
        ceil_div(
            cost * i128::from(10_000 + self.model.min_line_margin_bps),
            10_000,
        )
    }
}

fn ceil_div(a: i128, b: i128) -> i128 {
    -((-a).div_euclid(b))
}

fn shipping_value(request: &Request, decision: &Decision, exponent: u8) -> i128 {
    decision
        .shipping_discounts
        .iter()
        .map(|s| {
            let group = request
                .delivery_groups
                .iter()
                .find(|g| g.id == s.delivery_group_id)
                .expect("a shipping discount names a delivery group of the request");
            let cost = group
                .shipping_cost
                .as_deref()
                .and_then(|c| parse_decimal_minor(c, exponent))
                .expect("a discounted delivery group has a readable cost");
            (i128::from(cost) * i128::from(s.percent_bps)).div_euclid(10_000)
        })
        .sum()
}

/// Both targets' decisions for one scenario.
fn both_targets(request: &Request) -> (Decision, Decision) {
    let mut lines_request = request.clone();
    lines_request.target = Target::CartLines;
    let mut delivery_request = request.clone();
    delivery_request.target = Target::DeliveryOptions;
    (evaluate(&lines_request), evaluate(&delivery_request))
}

/// Everything our discounts give away across both targets.
fn total_given(oracle: &Oracle, request: &Request, lines: &Decision, delivery: &Decision) -> i128 {
    let line_total: i128 = lines
        .line_discounts
        .iter()
        .map(|d| i128::from(d.amount_minor))
        .sum();
    let order_total = lines
        .order_discount
        .as_ref()
        .map_or(0, |o| i128::from(o.amount_minor));
    line_total + order_total + shipping_value(request, delivery, oracle.presentment.exponent)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn never_panics(scenario in scenario(), chaos in chaos()) {
        for request in [&scenario.request, &chaos] {
            let decision = evaluate(request);
            prop_assert!(decision.log_line().len() <= marginwise_engine::MAX_LOG_LINE_BYTES);
            prop_assert!(!decision.render_text().is_empty());
            prop_assert!(!decision.reasons.is_empty(), "every decision says why");
        }
    }

    #[test]
    fn no_line_discount_breaks_its_line_floor(scenario in scenario()) {
        let request = &scenario.request;
        let (lines, _) = both_targets(request);
        let Some(oracle) = Oracle::new(&scenario) else {
            prop_assert!(lines.line_discounts.is_empty() && lines.order_discount.is_none());
            return Ok(());
        };
        let figures = oracle.figures(request);
        for discount in &lines.line_discounts {
            let line = figures.iter().find(|f| f.id == discount.line_id).expect("known line");
            let cost = oracle.guard_cost(line);
            prop_assert!(cost.is_some(), "{} discounted without a usable cost", line.id);
            let floor = oracle.line_floor(cost.unwrap_or(0));
            let left = line.price - oracle.stack(line.price) - i128::from(discount.amount_minor);
            prop_assert!(discount.amount_minor > 0);
            prop_assert!(left >= floor, "{}: {left} < floor {floor}", line.id);
        }
        if let Some(order) = &lines.order_discount {
            // Shopify spreads the order discount over the lines it is not excluded from, about
            // in proportion to price, rounding per line: even one unit more than the exact
            // share must leave every line its floor.
            let allocated: Vec<&Figures> = figures
                .iter()
                .filter(|f| !order.excluded_line_ids.contains(&f.id))
                .collect();
            let total_price: i128 = allocated.iter().map(|f| f.price).sum();
            prop_assert!(order.amount_minor > 0 && total_price > 0);
            for line in allocated {
                let cost = oracle.guard_cost(line);
                prop_assert!(cost.is_some(), "{} shares an order discount without a cost", line.id);
                let share = ceil_div(i128::from(order.amount_minor) * line.price, total_price);
                let left = line.price - oracle.stack(line.price) - (share + 1);
                let floor = oracle.line_floor(cost.unwrap_or(0));
                prop_assert!(line.price == 0 || left >= floor, "{}: {left} < floor {floor}", line.id);
            }
        }
    }

    #[test]
    fn the_order_keeps_its_minimum_margin(scenario in scenario()) {
        let request = &scenario.request;
        let (lines, delivery) = both_targets(request);
        prop_assert_eq!(&lines.offer_id, &delivery.offer_id, "both targets pick the same winner");
        let Some(oracle) = Oracle::new(&scenario) else {
            return Ok(());
        };
        let given = total_given(&oracle, request, &lines, &delivery);
        if given == 0 {
            return Ok(());
        }
        let figures = oracle.figures(request);
        let discountable: Vec<(&Figures, i128)> = figures
            .iter()
            .filter_map(|f| Some((f, oracle.guard_cost(f)?)))
            .collect();
        let price: i128 = discountable.iter().map(|(f, _)| f.price).sum();
        let stack: i128 = discountable.iter().map(|(f, _)| oracle.stack(f.price)).sum();
        let cost: i128 = discountable.iter().map(|(_, c)| c).sum();
        let floor = ceil_div(cost * i128::from(10_000 + oracle.model.min_order_margin_bps), 10_000);
        prop_assert!(
            price - stack - given >= floor,
            "price {price} - stack {stack} - given {given} < order floor {floor}"
        );
    }

    #[test]
    fn no_offer_exceeds_its_cap(scenario in scenario()) {
        let request = &scenario.request;
        let (lines, delivery) = both_targets(request);
        let (Some(oracle), Some(winner)) = (Oracle::new(&scenario), lines.offer_id.clone()) else {
            return Ok(());
        };
        let given = total_given(&oracle, request, &lines, &delivery);
        prop_assert!(given > 0, "a winner gives something in one of the targets");
        let cap = oracle
            .model
            .caps
            .iter()
            .find(|(id, _)| *id == winner)
            .and_then(|(_, cap)| *cap);
        if let Some(cap) = cap {
            let cap = oracle.rate.convert(cap, oracle.shop, oracle.presentment).expect("a winner's cap converts");
            prop_assert!(given <= i128::from(cap), "{winner} gives {given} over its cap {cap}");
        }
    }

    /// The compiled policy is only a faster way to read the JSON: a request carrying both decides
    /// exactly as the JSON alone does, reasons included.
    #[test]
    fn the_compiled_policy_decides_as_its_json(scenario in scenario()) {
        let PolicySource::Json(json) = &scenario.request.policy else {
            return Ok(());
        };
        let Ok(compiled) = marginwise_engine::policy::compiled::compile(json) else {
            return Ok(());
        };
        let with_compiled = Request {
            policy: PolicySource::Compiled { json: json.clone(), compiled },
            ..scenario.request.clone()
        };
        prop_assert_eq!(evaluate(&with_compiled), evaluate(&scenario.request));
    }

    #[test]
    fn the_same_request_gives_the_same_decision(scenario in scenario()) {
        let first = evaluate(&scenario.request);
        let again = evaluate(&scenario.request.clone());
        prop_assert_eq!(first, again);
    }
}

/// The properties above only mean something if the generator reaches the interesting outcomes.
/// This samples scenarios and checks that each kind of operation and each guard and cap path
/// occurs in a reasonable share, so a generator change cannot make the properties vacuous.
#[test]
fn the_generator_reaches_every_outcome() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = scenario();
    let n_samples = 4_000;
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for _ in 0..n_samples {
        let scenario = strategy.new_tree(&mut runner).unwrap().current();
        let (lines, delivery) = both_targets(&scenario.request);
        let mut seen = |what| *counts.entry(what).or_default() += 1;
        if !lines.line_discounts.is_empty() {
            seen("line discounts");
        }
        if lines.order_discount.is_some() {
            seen("order discount");
        }
        if !delivery.shipping_discounts.is_empty() {
            seen("shipping discounts");
        }
        for reason in lines.reasons.iter().chain(&delivery.reasons) {
            seen(reason.code.code());
        }
    }
    let expect_at_least = [
        ("line discounts", 100),
        ("order discount", 100),
        ("shipping discounts", 50),
        ("guard_reduced", 50),
        ("guard_dropped", 50),
        ("cap_reduced", 50),
        ("overflow", 10),
        ("holdout_in", 10),
        ("offer_malformed", 50),
        ("line_bundle_parent_excluded", 10),
    ];
    // MW_SHOW_COUNTS=1 prints the counts, for tuning the generator.
    if std::env::var_os("MW_SHOW_COUNTS").is_some() {
        eprintln!("{counts:?}");
    }
    for (what, least) in expect_at_least {
        let found = counts.get(what).copied().unwrap_or(0);
        assert!(
            found >= least,
            "{what}: {found} of {n_samples} samples, expected >= {least}; {counts:?}"
        );
    }
}
