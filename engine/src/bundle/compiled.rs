//! The compiled bundle policy: the same [`BundlePolicy`] as the cart transform's JSON, in the form
//! the discount policy is compiled to ([`crate::policy::compiled`]), read in a small fraction of
//! the instructions the JSON takes (the budget carts' 408-byte policy: about 30 K parsed).
//!
//! The rules are the discount policy's: the JSON in `$app.policy` stays the policy, the compiled
//! form in `$app.policy_compiled` is used only when it was compiled from exactly that JSON (byte
//! length and xxh64 recorded in it), a stale or unreadable one falls back to the JSON with a
//! `policy_compiled_stale` reason, and [`decode`] holds every value to the JSON reader's rules.
//!
//! Format `mwb1`, comma-terminated fields as in `mwp1`:
//!
//! ```text
//! mwb1,<json bytes>,<json xxh64, 16 hex digits>,<currency>,
//!   <min_line_margin_bps>,<min_order_margin_bps>,<assumed_stack_bps>,<unknown_cost x|a>,
//!   <holdout: - | share_bps,salt>,<default_bps>,<segment digits>,<bps per segment digit>...,
//!   <clv band count>,<min>,<bps>...,<customer a|n|r>,<merge_without_discount y|n>,
//!   <line_update y|n>,
//! ```
//!
//! Segment digits are indexes into [`Segment::ALL`], in the order the JSON reader gives them: by
//! segment code, each once (the last of a repeated key wins there), which [`decode`] holds to.

use super::policy::{BundleDiscount, BundlePolicy, ClvBand, parse_bundle_policy};
use crate::decision::Reason;
use crate::format::Segment;
use crate::money::BPS_ONE;
use crate::policy::compiled::{
    CompiledProblem, Reader, customer_letter, guard_and_holdout, header, number, open, tag,
};

/// The first field of every compiled bundle policy; a new layout gets a new tag.
pub const BUNDLE_COMPILED_TAG: &str = "mwb1";

/// Compiles a bundle policy JSON. Fails with the JSON reader's reason when it is unusable.
pub fn compile(json: &str) -> Result<String, Vec<Reason>> {
    let parsed = parse_bundle_policy(json);
    match parsed.policy {
        Some(policy) if parsed.reasons.is_empty() => Ok(encode(&policy, json)),
        _ => Err(parsed.reasons),
    }
}

/// The compiled form of `policy`, fingerprinted with the JSON text it was read from.
pub(crate) fn encode(policy: &BundlePolicy, json: &str) -> String {
    let mut out = String::with_capacity(96);
    header(&mut out, BUNDLE_COMPILED_TAG, json);
    out.push_str(policy.currency.code_str());
    out.push(',');
    guard_and_holdout(&mut out, &policy.guard, policy.holdout.as_ref());
    let discount = &policy.discount;
    number(&mut out, discount.default_bps);
    for (segment, _) in &discount.segments {
        let index = Segment::ALL.iter().position(|s| s == segment).unwrap_or(0);
        out.push(char::from(b'0' + index as u8));
    }
    out.push(',');
    for (_, bps) in &discount.segments {
        number(&mut out, *bps);
    }
    number(&mut out, discount.clv_bands.len());
    for band in &discount.clv_bands {
        number(&mut out, band.min);
        number(&mut out, band.bps);
    }
    tag(&mut out, customer_letter(discount.customer));
    tag(
        &mut out,
        if policy.merge_without_discount {
            'y'
        } else {
            'n'
        },
    );
    tag(&mut out, if policy.line_update { 'y' } else { 'n' });
    out
}

/// The bundle policy in `compiled`, when it was compiled from exactly `json` and every value keeps
/// the JSON reader's rules.
pub fn decode(compiled: &str, json: &str) -> Result<BundlePolicy, CompiledProblem> {
    let mut reader = open(compiled, BUNDLE_COMPILED_TAG, json)?;
    let policy = body(&mut reader);
    reader.finish(policy)
}

fn body(reader: &mut Reader<'_>) -> BundlePolicy {
    let currency = reader.currency();
    let (guard, holdout) = reader.guard_and_holdout();
    let default_bps = reader.figure(0, BPS_ONE);
    let segments = segments(reader);
    let start = reader.at;
    let count = usize::try_from(reader.number()).unwrap_or(usize::MAX);
    // A band takes at least four bytes (`0,0,`): a count beyond that is corrupt, and must not
    // reserve memory for it.
    let most = reader.remaining() / 4;
    reader.check(count <= most, start);
    let mut clv_bands: Vec<ClvBand> = Vec::with_capacity(count.min(most));
    for _ in 0..count.min(most) {
        let start = reader.at;
        let min = reader.figure(0, i64::MAX);
        let bps = reader.figure(0, BPS_ONE);
        let increasing = clv_bands.last().is_none_or(|last| last.min < min);
        reader.check(increasing, start);
        clv_bands.push(ClvBand { min, bps });
    }
    let customer = reader.customer();
    let merge_without_discount = flag(reader);
    let line_update = flag(reader);
    BundlePolicy {
        currency,
        guard,
        holdout,
        discount: BundleDiscount {
            default_bps,
            segments,
            clv_bands,
            customer,
        },
        merge_without_discount,
        line_update,
    }
}

/// The segment digits, then one decrease per digit.
fn segments(reader: &mut Reader<'_>) -> Vec<(Segment, i64)> {
    let start = reader.at;
    let digits = reader.raw_field();
    let mut segments: Vec<(Segment, i64)> = Vec::with_capacity(digits.len());
    for &digit in digits {
        let segment = Segment::ALL.get(usize::from(digit.wrapping_sub(b'0')));
        let after_the_last = |segment: &Segment| {
            segments
                .last()
                .is_none_or(|(last, _)| last.code() < segment.code())
        };
        match segment {
            Some(segment) if after_the_last(segment) => segments.push((*segment, 0)),
            _ => {
                reader.fail(start);
                return Vec::new();
            }
        }
    }
    for (_, bps) in &mut segments {
        *bps = reader.figure(0, BPS_ONE);
    }
    segments
}

/// `y` or `n`.
fn flag(reader: &mut Reader<'_>) -> bool {
    let start = reader.at;
    let letter = reader.letter();
    reader.check(letter == b'y' || letter == b'n', start);
    letter == b'y'
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::policy::{CustomerType, Guard, Holdout, UnknownCost};
    use proptest::prelude::{
        Just, ProptestConfig, Strategy as Generate, any, prop_assert_eq, prop_oneof, proptest,
    };
    use serde_json::{Value, json};

    const POLICY: &str = r#"{"version": 1, "currency": "KWD",
        "guard": {"min_line_margin_bps": 1000, "unknown_cost": "allow"},
        "holdout": {"share_bps": 500, "salt": "q4, with: commas"},
        "discount": {"default_bps": 500, "segments": {"at_risk": 1500, "new": 0},
                     "clv_bands": [{"min": 20000, "bps": 800}, {"min": 50000, "bps": 1200}],
                     "customer": "returning"},
        "merge_without_discount": true}"#;

    #[test]
    fn decodes_to_the_policy_the_json_gives() {
        let compiled = compile(POLICY).unwrap();
        assert!(compiled.starts_with("mwb1,"), "{compiled}");
        let policy = parse_bundle_policy(POLICY).policy.unwrap();
        assert_eq!(decode(&compiled, POLICY), Ok(policy));
        let minimal = r#"{"version":1,"currency":"USD"}"#;
        let compiled = compile(minimal).unwrap();
        assert_eq!(
            decode(&compiled, minimal),
            Ok(parse_bundle_policy(minimal).policy.unwrap())
        );
    }

    #[test]
    fn is_used_only_with_the_json_it_was_compiled_from() {
        let compiled = compile(POLICY).unwrap();
        let edited = POLICY.replace("1500", "1600");
        assert_eq!(
            decode(&compiled, &edited),
            Err(CompiledProblem::JsonChanged)
        );
        let discount_policy = crate::policy::compiled::encode(
            &crate::policy::parse(
                r#"{"version":1,"currency":"USD","offers":[{"id":"a","reward":{"type":"free_shipping"}}]}"#,
            )
            .policy
            .unwrap(),
            POLICY,
        );
        assert_eq!(
            decode(&discount_policy, POLICY),
            Err(CompiledProblem::UnknownFormat)
        );
    }

    #[test]
    fn an_unusable_policy_does_not_compile() {
        let reasons =
            compile(r#"{"version": 1, "currency": "USD", "line_update": 1}"#).unwrap_err();
        assert_eq!(reasons.len(), 1);
        assert_eq!(reasons[0].subject, "line_update");
    }

    #[test]
    fn errors_name_the_field_that_breaks_a_rule() {
        let compiled = compile(POLICY).unwrap();
        let at = |field: &str| compiled.find(field).unwrap();
        let cases = [
            // The second band's minimum no longer above the first one's.
            (compiled.replace(",50000,", ",20000,"), at(",50000,") + 1),
            (compiled.replace(",1500,", ",10001,"), at(",1500,") + 1),
            (compiled.replace(",r,y,n,", ",r,y,x,"), at(",r,y,n,") + 5),
            (compiled.replace(",r,y,n,", ",v,y,n,"), at(",r,y,n,") + 1),
            // A segment digit past the last segment; segments out of the JSON reader's order.
            (
                compiled.replace(",30,1500,", ",39,1500,"),
                at(",30,1500,") + 1,
            ),
            (
                compiled.replace(",30,1500,", ",03,1500,"),
                at(",30,1500,") + 1,
            ),
            (
                compiled.replace(",30,1500,", ",33,1500,"),
                at(",30,1500,") + 1,
            ),
            (format!("{compiled}0,"), compiled.len()),
        ];
        for (edited, at) in cases {
            assert_eq!(
                decode(&edited, POLICY),
                Err(CompiledProblem::Malformed { at }),
                "{edited}"
            );
        }
    }

    fn bps() -> impl Generate<Value = i64> {
        prop_oneof![Just(0), Just(BPS_ONE), 0..=BPS_ONE]
    }

    fn policy() -> impl Generate<Value = BundlePolicy> {
        let currency = prop_oneof![Just("USD"), Just("JPY"), Just("KWD")];
        let guard = (
            0..=crate::policy::MAX_SURCHARGE_MARGIN_BPS,
            0..=crate::policy::MAX_SURCHARGE_MARGIN_BPS,
            bps(),
            any::<bool>(),
        );
        let holdout = proptest::option::of((bps(), "[ -~]{0,12}"));
        // A subset of the segments in code order, as the JSON reader gives them.
        let segments = proptest::collection::vec(proptest::option::of(bps()), Segment::ALL.len())
            .prop_map(|chosen| {
                let mut segments: Vec<(Segment, i64)> = Segment::ALL
                    .iter()
                    .zip(chosen)
                    .filter_map(|(segment, bps)| Some((*segment, bps?)))
                    .collect();
                segments.sort_by_key(|(segment, _)| segment.code());
                segments
            });
        let bands = proptest::collection::vec((0..i64::MAX / 8, bps()), 0..4);
        let customer = prop_oneof![
            Just(CustomerType::Any),
            Just(CustomerType::New),
            Just(CustomerType::Returning)
        ];
        (
            currency,
            guard,
            holdout,
            (bps(), segments, bands, customer),
            any::<(bool, bool)>(),
        )
            .prop_map(
                |(currency, guard, holdout, discount, (merge_without_discount, line_update))| {
                    let (default_bps, segments, bands, customer) = discount;
                    let mut minimum = 0;
                    let clv_bands = bands
                        .into_iter()
                        .map(|(step, bps)| {
                            minimum += step + 1;
                            ClvBand { min: minimum, bps }
                        })
                        .collect();
                    BundlePolicy {
                        currency: crate::money::Currency::from_code(currency).unwrap(),
                        guard: Guard {
                            min_line_margin_bps: guard.0,
                            min_order_margin_bps: guard.1,
                            assumed_stack_bps: guard.2,
                            unknown_cost: if guard.3 {
                                UnknownCost::Allow
                            } else {
                                UnknownCost::Exclude
                            },
                        },
                        holdout: holdout.map(|(share_bps, salt)| Holdout { share_bps, salt }),
                        discount: BundleDiscount {
                            default_bps,
                            segments,
                            clv_bands,
                            customer,
                        },
                        merge_without_discount,
                        line_update,
                    }
                },
            )
    }

    /// The JSON a merchant would write for `policy` (every key present, so the text varies too).
    fn to_json(policy: &BundlePolicy) -> String {
        let guard = &policy.guard;
        let discount = &policy.discount;
        // Segment keys written by hand, in the policy's order.
        let segments = discount
            .segments
            .iter()
            .map(|(segment, bps)| format!("\"{}\":{bps}", segment.code()))
            .collect::<Vec<_>>()
            .join(",");
        let rest = json!({
            "version": 1,
            "currency": policy.currency.code_str(),
            "guard": {
                "min_line_margin_bps": guard.min_line_margin_bps,
                "min_order_margin_bps": guard.min_order_margin_bps,
                "assumed_stack_bps": guard.assumed_stack_bps,
                "unknown_cost": match guard.unknown_cost {
                    UnknownCost::Allow => "allow",
                    UnknownCost::Exclude => "exclude",
                },
            },
            "holdout": policy.holdout.as_ref().map(|h| json!({"share_bps": h.share_bps, "salt": h.salt})),
            "merge_without_discount": policy.merge_without_discount,
            "line_update": policy.line_update,
        });
        let discount = json!({
            "default_bps": discount.default_bps,
            "clv_bands": discount.clv_bands.iter().map(|b| json!({"min": b.min, "bps": b.bps})).collect::<Vec<Value>>(),
            "customer": match discount.customer {
                CustomerType::Any => "any",
                CustomerType::New => "new",
                CustomerType::Returning => "returning",
            },
        });
        let rest = rest.to_string();
        let discount = discount.to_string();
        let discount = format!(
            "{{\"segments\":{{{segments}}},{}",
            discount.strip_prefix('{').unwrap()
        );
        format!(
            "{},\"discount\":{discount}}}",
            rest.strip_suffix('}').unwrap()
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Any policy the JSON reader accepts compiles, and decodes to exactly what the JSON says.
        #[test]
        fn compiled_policies_decode_to_what_the_json_gives(policy in policy()) {
            let json = to_json(&policy);
            let parsed = parse_bundle_policy(&json);
            prop_assert_eq!(parsed.policy.as_ref(), Some(&policy), "{}", json);
            let compiled = compile(&json).unwrap();
            prop_assert_eq!(decode(&compiled, &json), Ok(policy));
        }

        /// One byte of the compiled form changed (after the fingerprint): either the policy is
        /// refused, or it is one the JSON reader accepts (every rule held).
        #[test]
        fn edited_compiled_policies_hold_the_json_rules(
            policy in policy(),
            at in any::<proptest::sample::Index>(),
            byte in prop_oneof![Just(b','), Just(b'-'), Just(b'0'), Just(b'9'), Just(b'y'), 0x20u8..0x7f],
        ) {
            let json = to_json(&policy);
            let compiled = compile(&json).unwrap();
            let after_header = compiled.match_indices(',').nth(2).unwrap().0 + 1;
            let position = after_header + at.index(compiled.len() - after_header);
            let mut bytes = compiled.clone().into_bytes();
            bytes[position] = byte;
            let edited = String::from_utf8(bytes).unwrap();
            if let Ok(decoded) = decode(&edited, &json) {
                let again = to_json(&decoded);
                prop_assert_eq!(parse_bundle_policy(&again).policy, Some(decoded), "{}", edited);
            }
        }
    }
}
