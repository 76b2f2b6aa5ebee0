//! Reading the policy JSON into [`Policy`], one field at a time.
//!
//! [`super::json`] reads the text into a generic [`Value`] tree; the fields are then extracted by hand
//! instead of derived. Derived deserialization fails the whole document on the first bad field,
//! and the engine's promise is the opposite: a malformed offer is skipped with a reason that names
//! its JSON path (`offers[2].reward.bps`) while the other offers still apply.
//!
//! Unknown keys are errors, not ignored. A typo such as `min_line_margin` would otherwise silently
//! fall back to a default of 0 and remove the margin guard the merchant believes is on.

use super::json::{Number, Object, Value};

use super::{
    CustomerType, Eligibility, Guard, Holdout, MAX_MESSAGE_CHARS, MAX_OFFER_ID_BYTES,
    MAX_SURCHARGE_MARGIN_BPS, Offer, ParsedPolicy, Policy, Reward, Strategy, UnknownCost,
};
use crate::decision::{Reason, ReasonCode};
use crate::detail::{Detail, NameKind};
use crate::format::Segment;
use crate::money::{BPS_ONE, Currency};

/// The only policy version this build reads.
pub const POLICY_VERSION: i64 = 1;

/// A field that could not be read: where (JSON path) and why.
pub(crate) struct FieldError {
    pub(crate) path: String,
    pub(crate) detail: Detail,
}

pub(crate) type Field<T> = Result<T, FieldError>;

pub(crate) fn field_error(path: &str, detail: Detail) -> FieldError {
    FieldError {
        path: path.to_string(),
        detail,
    }
}

pub(crate) fn error<T>(path: &str, detail: impl Into<Detail>) -> Field<T> {
    Err(field_error(path, detail.into()))
}

/// `path.key`, or `key` at the top level. Built by hand rather than with `format!`: a path is
/// built for most fields read, and every `format!` call site costs the Function code size.
pub(crate) fn join(path: &str, key: &str) -> String {
    let mut joined = String::with_capacity(path.len() + 1 + key.len());
    if !path.is_empty() {
        joined.push_str(path);
        joined.push('.');
    }
    joined.push_str(key);
    joined
}

/// `path[index]`, built by hand for the same reason as [`join`].
fn indexed(path: &str, index: usize) -> String {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = index;
    // INVARIANT: 20 digits hold any usize (u64::MAX has 20), so `start` never underflows.
    while start > 0 {
        start -= 1;
        if let Some(digit) = digits.get_mut(start) {
            // The remainder is below 10, so the cast cannot truncate.
            *digit = b'0' + (rest % 10) as u8;
        }
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let mut joined = String::with_capacity(path.len() + 2 + digits.len() - start);
    joined.push_str(path);
    joined.push('[');
    for digit in digits.iter().skip(start) {
        joined.push(char::from(*digit));
    }
    joined.push(']');
    joined
}

/// "expected `expected`, found" the JSON type of `found`.
fn expected(expected: &'static str, found: &Value) -> Detail {
    Detail::ExpectedFound {
        expected,
        found: kind_name(found),
    }
}

fn unknown(kind: NameKind, name: &str) -> Detail {
    Detail::UnknownName {
        kind,
        name: name.to_string(),
    }
}

pub(crate) fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn as_object<'v, 't>(value: &'v Value<'t>, path: &str) -> Field<&'v Object<'t>> {
    match value {
        Value::Object(object) => Ok(object),
        other => error(path, expected("an object", other)),
    }
}

pub(crate) fn check_keys(object: &Object, allowed: &[&str], path: &str) -> Field<()> {
    // The first unknown key in sorted order, so the reason does not depend on key order.
    let unknown = object.keys().filter(|key| !allowed.contains(key)).min();
    match unknown {
        Some(key) => error(&join(path, key), Detail::UnknownKey),
        None => Ok(()),
    }
}

/// The value of `key`, treating an explicit `null` like an absent key.
pub(crate) fn get<'v, 't>(object: &'v Object<'t>, key: &str) -> Option<&'v Value<'t>> {
    object
        .get(key)
        .filter(|value| !matches!(value, Value::Null))
}

pub(crate) fn integer(value: &Value, path: &str) -> Field<i64> {
    match value {
        Value::Number(Number::I64(n)) => Ok(*n),
        Value::Number(Number::U64(n)) => match i64::try_from(*n) {
            Ok(n) => Ok(n),
            Err(_) => error(path, Detail::IntegerOutOfRange),
        },
        Value::Number(Number::Float) => error(
            path,
            Detail::ExpectedFound {
                expected: "an integer",
                found: "a fraction",
            },
        ),
        other => error(path, expected("an integer", other)),
    }
}

pub(crate) fn integer_in(value: &Value, path: &str, min: i64, max: i64) -> Field<i64> {
    let n = integer(value, path)?;
    if n < min {
        error(path, Detail::Below { value: n, min })
    } else if n > max {
        error(path, Detail::Above { value: n, max })
    } else {
        Ok(n)
    }
}

pub(crate) fn optional_integer_in(
    object: &Object,
    key: &str,
    path: &str,
    min: i64,
    max: i64,
) -> Field<Option<i64>> {
    get(object, key)
        .map(|value| integer_in(value, &join(path, key), min, max))
        .transpose()
}

pub(crate) fn string<'v>(value: &'v Value, path: &str) -> Field<&'v str> {
    match value {
        Value::String(text) => Ok(text),
        other => error(path, expected("a string", other)),
    }
}

pub(crate) fn optional_string<'v>(
    object: &'v Object,
    key: &str,
    path: &str,
) -> Field<Option<&'v str>> {
    get(object, key)
        .map(|value| string(value, &join(path, key)))
        .transpose()
}

/// Parses the policy metafield's JSON text. Never fails: a document that cannot be used gives
/// `policy: None` with the reason, and every skipped offer adds one `offer_malformed` reason.
pub fn parse(json: &str) -> ParsedPolicy {
    let value = match super::json::from_str(json) {
        Ok(value) => value,
        Err(_) => {
            return rejected(
                ReasonCode::PolicyMalformed,
                "",
                Detail::InvalidJson(json.to_string()),
            );
        }
    };
    match parse_document(&value) {
        Ok(parsed) => parsed,
        Err((code, FieldError { path, detail })) => rejected(code, &path, detail),
    }
}

fn rejected(code: ReasonCode, subject: &str, detail: Detail) -> ParsedPolicy {
    ParsedPolicy {
        policy: None,
        reasons: vec![Reason::new(code, subject, detail)],
    }
}

const DOCUMENT_KEYS: &[&str] = &[
    "version", "currency", "strategy", "guard", "holdout", "offers",
];

fn parse_document(value: &Value) -> Result<ParsedPolicy, (ReasonCode, FieldError)> {
    let malformed = |e| (ReasonCode::PolicyMalformed, e);
    let object = as_object(value, "").map_err(malformed)?;
    // The version is checked before anything else: a newer document may legitimately use keys
    // this build does not know, and "unsupported version" is the useful answer then.
    let version = match get(object, "version") {
        Some(v) => integer(v, "version").map_err(malformed)?,
        None => return Err(malformed(field_error("version", Detail::Missing))),
    };
    if version != POLICY_VERSION {
        return Err((
            ReasonCode::PolicyUnsupportedVersion,
            field_error("version", Detail::UnsupportedVersion { version }),
        ));
    }
    check_keys(object, DOCUMENT_KEYS, "").map_err(malformed)?;
    let currency_code = match get(object, "currency") {
        Some(v) => string(v, "currency").map_err(malformed)?,
        None => return Err(malformed(field_error("currency", Detail::Missing))),
    };
    let currency = Currency::from_code(currency_code).ok_or_else(|| {
        (
            ReasonCode::PolicyCurrencyUnknown,
            field_error("currency", unknown(NameKind::CurrencyCode, currency_code)),
        )
    })?;
    let strategy = parse_strategy(object).map_err(malformed)?;
    let guard = parse_guard(object).map_err(malformed)?;
    let holdout = parse_holdout(object).map_err(malformed)?;
    let offer_values = match get(object, "offers") {
        Some(Value::Array(array)) => array,
        Some(other) => {
            return Err(malformed(field_error(
                "offers",
                expected("an array", other),
            )));
        }
        None => return Err(malformed(field_error("offers", Detail::Missing))),
    };

    let mut offers: Vec<Offer> = Vec::new();
    let mut reasons = Vec::new();
    for (index, offer_value) in offer_values.iter().enumerate() {
        let path = indexed("offers", index);
        let parsed = parse_offer(offer_value, &path).and_then(|offer| {
            // Ids of the offers kept so far are exactly the ids seen: only a kept offer adds one.
            if !offers.iter().any(|kept| kept.id == offer.id) {
                Ok(offer)
            } else {
                error(&join(&path, "id"), Detail::DuplicateOfferId(offer.id))
            }
        });
        match parsed {
            Ok(offer) => offers.push(offer),
            Err(FieldError { path, detail }) => reasons.push(Reason {
                code: ReasonCode::OfferMalformed,
                subject: path,
                detail,
            }),
        }
    }
    Ok(ParsedPolicy {
        policy: Some(Policy {
            currency,
            strategy,
            guard,
            holdout,
            offers,
        }),
        reasons,
    })
}

fn parse_strategy(object: &Object) -> Field<Strategy> {
    match optional_string(object, "strategy", "")? {
        None | Some("priority") => Ok(Strategy::Priority),
        Some("best_for_shopper") => Ok(Strategy::BestForShopper),
        Some(other) => error("strategy", unknown(NameKind::Strategy, other)),
    }
}

pub(crate) fn parse_guard(object: &Object) -> Field<Guard> {
    let mut guard = Guard::DEFAULT;
    let Some(value) = get(object, "guard") else {
        return Ok(guard);
    };
    let path = "guard";
    let guard_object = as_object(value, path)?;
    check_keys(
        guard_object,
        &[
            "min_line_margin_bps",
            "min_order_margin_bps",
            "assumed_stack_bps",
            "unknown_cost",
        ],
        path,
    )?;
    let margin = |key| optional_integer_in(guard_object, key, path, 0, MAX_SURCHARGE_MARGIN_BPS);
    if let Some(bps) = margin("min_line_margin_bps")? {
        guard.min_line_margin_bps = bps;
    }
    if let Some(bps) = margin("min_order_margin_bps")? {
        guard.min_order_margin_bps = bps;
    }
    if let Some(bps) = optional_integer_in(guard_object, "assumed_stack_bps", path, 0, BPS_ONE)? {
        guard.assumed_stack_bps = bps;
    }
    match optional_string(guard_object, "unknown_cost", path)? {
        None | Some("exclude") => guard.unknown_cost = UnknownCost::Exclude,
        Some("allow") => guard.unknown_cost = UnknownCost::Allow,
        Some(other) => {
            return error("guard.unknown_cost", unknown(NameKind::UnknownCost, other));
        }
    }
    Ok(guard)
}

pub(crate) fn parse_holdout(object: &Object) -> Field<Option<Holdout>> {
    let Some(value) = get(object, "holdout") else {
        return Ok(None);
    };
    let path = "holdout";
    let holdout_object = as_object(value, path)?;
    check_keys(holdout_object, &["share_bps", "salt"], path)?;
    let share_bps =
        optional_integer_in(holdout_object, "share_bps", path, 0, BPS_ONE)?.unwrap_or(0);
    let salt = optional_string(holdout_object, "salt", path)?
        .unwrap_or_default()
        .to_string();
    Ok(Some(Holdout { share_bps, salt }))
}

const OFFER_KEYS: &[&str] = &["id", "eligibility", "reward", "cap", "message"];

fn parse_offer(value: &Value, path: &str) -> Field<Offer> {
    let object = as_object(value, path)?;
    check_keys(object, OFFER_KEYS, path)?;
    let id_path = join(path, "id");
    let id = match get(object, "id") {
        Some(v) => string(v, &id_path)?,
        None => return error(&id_path, Detail::Missing),
    };
    let id_is_token = !id.is_empty()
        && id.len() <= MAX_OFFER_ID_BYTES
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if !id_is_token {
        return error(&id_path, Detail::OfferIdNotToken);
    }
    let eligibility = match get(object, "eligibility") {
        Some(v) => parse_eligibility(v, &join(path, "eligibility"))?,
        None => Eligibility::ANY,
    };
    let reward_path = join(path, "reward");
    let reward = match get(object, "reward") {
        Some(v) => parse_reward(v, &reward_path)?,
        None => return error(&reward_path, Detail::Missing),
    };
    let cap = optional_integer_in(object, "cap", path, 0, i64::MAX)?;
    let message_path = join(path, "message");
    let message = match optional_string(object, "message", path)? {
        Some(text) if !text.trim().is_empty() => text,
        Some(_) | None => return error(&message_path, Detail::Missing),
    };
    let n_chars = message.chars().count();
    if n_chars > MAX_MESSAGE_CHARS {
        return error(&message_path, Detail::MessageTooLong { n_chars });
    }
    Ok(Offer {
        id: id.to_string(),
        eligibility,
        reward,
        cap,
        message: message.to_string(),
    })
}

fn parse_eligibility(value: &Value, path: &str) -> Field<Eligibility> {
    let object = as_object(value, path)?;
    check_keys(
        object,
        &[
            "segments",
            "clv_min",
            "clv_max",
            "churn_min_bps",
            "subtotal_min",
            "customer",
        ],
        path,
    )?;
    let mut segments = Vec::new();
    match get(object, "segments") {
        None => {}
        Some(Value::Array(items)) => {
            for (index, item) in items.iter().enumerate() {
                let item_path = indexed(&join(path, "segments"), index);
                let code = string(item, &item_path)?;
                match Segment::from_code(code) {
                    Some(segment) => segments.push(segment),
                    None => return error(&item_path, unknown(NameKind::Segment, code)),
                }
            }
        }
        Some(other) => {
            return error(&join(path, "segments"), expected("an array", other));
        }
    }
    let clv_min = optional_integer_in(object, "clv_min", path, 0, i64::MAX)?;
    let clv_max = optional_integer_in(object, "clv_max", path, 0, i64::MAX)?;
    if let (Some(min), Some(max)) = (clv_min, clv_max)
        && min > max
    {
        return error(
            &join(path, "clv_max"),
            Detail::ClvBoundsInverted { min, max },
        );
    }
    let churn_min_bps = optional_integer_in(object, "churn_min_bps", path, 0, BPS_ONE)?;
    let subtotal_min = optional_integer_in(object, "subtotal_min", path, 0, i64::MAX)?;
    let customer = match optional_string(object, "customer", path)? {
        None | Some("any") => CustomerType::Any,
        Some("new") => CustomerType::New,
        Some("returning") => CustomerType::Returning,
        Some(other) => {
            return error(
                &join(path, "customer"),
                unknown(NameKind::CustomerType, other),
            );
        }
    };
    Ok(Eligibility {
        segments,
        clv_min,
        clv_max,
        churn_min_bps,
        subtotal_min,
        customer,
    })
}

fn parse_reward(value: &Value, path: &str) -> Field<Reward> {
    let object = as_object(value, path)?;
    let kind_path = join(path, "kind");
    let kind = match optional_string(object, "kind", path)? {
        Some(kind) => kind,
        None => return error(&kind_path, Detail::Missing),
    };
    let required = |key: &str, min: i64, max: i64| -> Field<i64> {
        match get(object, key) {
            Some(v) => integer_in(v, &join(path, key), min, max),
            None => error(&join(path, key), Detail::Missing),
        }
    };
    let (reward, keys): (Reward, &[&str]) = match kind {
        "order_percent" => (
            Reward::OrderPercent {
                bps: required("bps", 0, BPS_ONE)?,
            },
            &["kind", "bps"],
        ),
        "order_fixed" => (
            Reward::OrderFixed {
                amount: required("amount", 0, i64::MAX)?,
            },
            &["kind", "amount"],
        ),
        "lines_percent" => (
            Reward::LinesPercent {
                bps: required("bps", 0, BPS_ONE)?,
            },
            &["kind", "bps"],
        ),
        "lines_fixed" => (
            Reward::LinesFixed {
                amount_per_unit: required("amount", 0, i64::MAX)?,
            },
            &["kind", "amount"],
        ),
        "shipping_percent" => (
            Reward::ShippingPercent {
                bps: required("bps", 0, BPS_ONE)?,
            },
            &["kind", "bps"],
        ),
        "free_shipping" => (Reward::FreeShipping, &["kind"]),
        "slot_percent" => {
            let bps = required("bps", 0, BPS_ONE)?;
            let max_slots = required("max_slots", 1, i64::from(u32::MAX))?;
            let max_slots = u32::try_from(max_slots).unwrap_or(u32::MAX);
            (
                Reward::SlotPercent { bps, max_slots },
                &["kind", "bps", "max_slots"],
            )
        }
        other => {
            return error(&kind_path, unknown(NameKind::RewardKind, other));
        }
    };
    check_keys(object, keys, path)?;
    Ok(reward)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::parse;
    use crate::decision::ReasonCode;

    /// One offer inside an otherwise valid policy.
    fn with_offer(offer: &str) -> String {
        format!(r#"{{"version": 1, "currency": "USD", "offers": [{offer}]}}"#)
    }

    #[test]
    fn every_malformed_offer_names_its_path() {
        let cases = [
            (
                r#"{"id": "a", "reward": {"kind": "order_percent", "bps": 1.5}, "message": "m"}"#,
                "offers[0].reward.bps",
                "expected an integer, found a fraction",
            ),
            (
                r#"{"id": "a", "reward": {"kind": "order_percent"}, "message": "m"}"#,
                "offers[0].reward.bps",
                "missing",
            ),
            (
                r#"{"id": "a", "reward": {"kind": "free_shipping", "bps": 5}, "message": "m"}"#,
                "offers[0].reward.bps",
                "unknown key",
            ),
            (
                r#"{"id": "a", "reward": "free", "message": "m"}"#,
                "offers[0].reward",
                "expected an object, found a string",
            ),
            (
                r#"{"id": "a b", "reward": {"kind": "free_shipping"}, "message": "m"}"#,
                "offers[0].id",
                "offer id must be",
            ),
            (
                r#"{"id": "a", "reward": {"kind": "free_shipping"}, "message": "m", "priority": 1}"#,
                "offers[0].priority",
                "unknown key",
            ),
            (
                r#"{"id": "a", "eligibility": {"segments": ["new", "vip"]}, "reward": {"kind": "free_shipping"}, "message": "m"}"#,
                "offers[0].eligibility.segments[1]",
                "unknown segment \"vip\"",
            ),
            (
                r#"{"id": "a", "eligibility": {"clv_min": 10, "clv_max": 5}, "reward": {"kind": "free_shipping"}, "message": "m"}"#,
                "offers[0].eligibility.clv_max",
                "clv_max 5 < clv_min 10",
            ),
            (
                r#"{"id": "a", "eligibility": {"customer": "vip"}, "reward": {"kind": "free_shipping"}, "message": "m"}"#,
                "offers[0].eligibility.customer",
                "unknown customer type",
            ),
            (
                r#"{"id": "a", "reward": {"kind": "free_shipping"}, "cap": -1, "message": "m"}"#,
                "offers[0].cap",
                "-1 is below 0",
            ),
            (
                r#"{"id": "a", "reward": {"kind": "order_fixed", "amount": 9223372036854775808}, "message": "m"}"#,
                "offers[0].reward.amount",
                "integer out of range",
            ),
            (
                r#"{"id": "a", "reward": {"kind": "free_shipping"}, "message": "  "}"#,
                "offers[0].message",
                "missing",
            ),
            (r#"[]"#, "offers[0]", "expected an object, found an array"),
        ];
        for (offer, path, detail) in cases {
            let parsed = parse(&with_offer(offer));
            let policy = parsed.policy.as_ref().unwrap();
            assert!(policy.offers.is_empty(), "{offer}");
            assert_eq!(parsed.reasons.len(), 1, "{offer}");
            let reason = &parsed.reasons[0];
            assert_eq!(reason.code, ReasonCode::OfferMalformed, "{offer}");
            assert_eq!(reason.subject, path, "{offer}");
            let text = reason.detail_text();
            assert!(text.contains(detail), "{offer}: {text}");
        }
    }

    #[test]
    fn document_errors_reject_the_policy() {
        let cases = [
            (
                r#"{"currency": "USD", "offers": []}"#,
                ReasonCode::PolicyMalformed,
                "version",
            ),
            (
                r#"{"version": "1", "currency": "USD", "offers": []}"#,
                ReasonCode::PolicyMalformed,
                "version",
            ),
            (
                r#"{"version": 2}"#,
                ReasonCode::PolicyUnsupportedVersion,
                "version",
            ),
            (
                r#"{"version": 1, "offers": []}"#,
                ReasonCode::PolicyMalformed,
                "currency",
            ),
            (
                r#"{"version": 1, "currency": "EURO", "offers": []}"#,
                ReasonCode::PolicyCurrencyUnknown,
                "currency",
            ),
            (
                r#"{"version": 1, "currency": "USD"}"#,
                ReasonCode::PolicyMalformed,
                "offers",
            ),
            (
                r#"{"version": 1, "currency": "USD", "offers": {}}"#,
                ReasonCode::PolicyMalformed,
                "offers",
            ),
            (
                r#"{"version": 1, "currency": "USD", "offers": [], "strategy": "random"}"#,
                ReasonCode::PolicyMalformed,
                "strategy",
            ),
            (
                r#"{"version": 1, "currency": "USD", "offers": [], "guard": {"assumed_stack_bps": 10001}}"#,
                ReasonCode::PolicyMalformed,
                "guard.assumed_stack_bps",
            ),
            (
                r#"{"version": 1, "currency": "USD", "offers": [], "guard": {"unknown_cost": "ignore"}}"#,
                ReasonCode::PolicyMalformed,
                "guard.unknown_cost",
            ),
            (
                r#"{"version": 1, "currency": "USD", "offers": [], "holdout": {"share_bps": -1}}"#,
                ReasonCode::PolicyMalformed,
                "holdout.share_bps",
            ),
            (
                r#"{"version": 1, "currency": "USD", "offers": [], "extra": true}"#,
                ReasonCode::PolicyMalformed,
                "extra",
            ),
            (r#"[1]"#, ReasonCode::PolicyMalformed, ""),
            (r#"{"version": 1,"#, ReasonCode::PolicyMalformed, ""),
        ];
        for (text, code, subject) in cases {
            let parsed = parse(text);
            assert!(parsed.policy.is_none(), "{text}");
            assert_eq!(parsed.reasons.len(), 1, "{text}");
            assert_eq!(parsed.reasons[0].code, code, "{text}");
            assert_eq!(parsed.reasons[0].subject, subject, "{text}");
        }
    }

    #[test]
    fn defaults_and_nulls() {
        let parsed = parse(
            r#"{"version": 1, "currency": "KWD", "guard": null, "holdout": null, "offers": [
                {"id": "a", "eligibility": null, "cap": null, "reward": {"kind": "slot_percent", "bps": 10000, "max_slots": 3}, "message": "m"}
            ]}"#,
        );
        assert!(parsed.reasons.is_empty(), "{:?}", parsed.reasons);
        let policy = parsed.policy.unwrap();
        assert_eq!(policy.currency.exponent, 3);
        assert_eq!(policy.strategy, super::Strategy::Priority);
        assert_eq!(policy.guard, super::Guard::DEFAULT);
        assert_eq!(policy.holdout, None);
        assert_eq!(policy.offers[0].eligibility, super::Eligibility::ANY);
        assert_eq!(
            policy.offers[0].reward,
            super::Reward::SlotPercent {
                bps: 10_000,
                max_slots: 3
            }
        );
    }
}
