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
    CustomerType, Eligibility, Guard, Holdout, MAX_SURCHARGE_MARGIN_BPS, Offer, ParsedPolicy,
    Policy, Reward, Strategy, UnknownCost, is_offer_id, is_offer_message,
};
use crate::decision::{Reason, ReasonCode};
use crate::detail::{Detail, NameKind};
use crate::format::Segment;
use crate::money::{BPS_ONE, Currency};
use crate::render::push_count;

/// The only policy version this build reads.
pub const POLICY_VERSION: i64 = 1;

/// A field that could not be read: where (JSON path) and why.
pub(crate) struct FieldError {
    pub(crate) path: String,
    pub(crate) detail: Detail,
}

pub(crate) type Field<T> = Result<T, FieldError>;

/// Where a value is in the document: `offers[2].reward.bps`. Kept as links to the enclosing
/// path and rendered only when an error names it; building the text for every field read cost
/// the discount Function about 17 K instructions per run.
pub(crate) enum Path<'p> {
    Root,
    Key(&'p Path<'p>, &'p str),
    Index(&'p Path<'p>, usize),
}

impl<'p> Path<'p> {
    /// `self.key`, or `key` at the top level.
    pub(crate) fn key(&'p self, key: &'p str) -> Path<'p> {
        Path::Key(self, key)
    }

    /// `self[index]`.
    pub(crate) fn index(&'p self, index: usize) -> Path<'p> {
        Path::Index(self, index)
    }

    /// The path as text (the reason's subject). Recurses once per level; a policy path has at
    /// most five.
    pub(crate) fn render(&self) -> String {
        let mut text = String::new();
        self.write(&mut text);
        text
    }

    fn write(&self, text: &mut String) {
        match *self {
            Path::Root => {}
            Path::Key(parent, key) => {
                parent.write(text);
                if !matches!(parent, Path::Root) {
                    text.push('.');
                }
                text.push_str(key);
            }
            Path::Index(parent, index) => {
                parent.write(text);
                text.push('[');
                push_count(text, index);
                text.push(']');
            }
        }
    }
}

pub(crate) fn field_error(path: &Path, detail: Detail) -> FieldError {
    FieldError {
        path: path.render(),
        detail,
    }
}

pub(crate) fn error<T>(path: &Path, detail: impl Into<Detail>) -> Field<T> {
    Err(field_error(path, detail.into()))
}

/// "expected `expected`, found" the JSON type of `found`.
pub(crate) fn expected(expected: &'static str, found: &Value) -> Detail {
    Detail::ExpectedFound {
        expected,
        found: kind_name(found),
    }
}

pub(crate) fn unknown(kind: NameKind, name: &str) -> Detail {
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

pub(crate) fn as_object<'v, 't>(value: &'v Value<'t>, path: &Path) -> Field<&'v Object<'t>> {
    match value {
        Value::Object(object) => Ok(object),
        other => error(path, expected("an object", other)),
    }
}

/// An object's values for the keys a policy object may have, found in one pass over its
/// entries: the last of a repeated key wins and an explicit `null` counts as absent (as a
/// lookup of each key would answer), and the first unknown key in sorted order is kept for
/// [`Fields::check`], so the reason does not depend on key order.
pub(crate) struct Fields<'v, 't, const N: usize> {
    pub(crate) values: [Option<&'v Value<'t>>; N],
    /// Whether each key is in the object at all, `null` or not.
    present: [bool; N],
    unknown: Option<&'v str>,
}

pub(crate) fn fields<'v, 't, const N: usize>(
    object: &'v Object<'t>,
    known: [&str; N],
) -> Fields<'v, 't, N> {
    let mut fields = Fields {
        values: [None; N],
        present: [false; N],
        unknown: None,
    };
    fields.unknown = fill(object, &known, &mut fields.values, &mut fields.present);
    fields
}

/// The work of [`fields`], kept out of its copies per key count (the Functions' size budget).
fn fill<'v, 't>(
    object: &'v Object<'t>,
    known: &[&str],
    values: &mut [Option<&'v Value<'t>>],
    present: &mut [bool],
) -> Option<&'v str> {
    let mut unknown: Option<&str> = None;
    for (key, value) in object.entries() {
        let slot = known
            .iter()
            .position(|k| same_key(k.as_bytes(), key.as_bytes()))
            .and_then(|i| values.get_mut(i).zip(present.get_mut(i)));
        match slot {
            Some((slot, present)) if !*present => {
                *slot = Some(value).filter(|v| !matches!(v, Value::Null));
                *present = true;
            }
            // A key given twice is refused like an unknown one: JSON readers disagree on which
            // copy counts, and a second `min_line_margin_bps` must not quietly undo the first.
            _ if unknown.is_none_or(|least| key < least) => unknown = Some(key),
            _ => {}
        }
    }
    unknown
}

impl<const N: usize> Fields<'_, '_, N> {
    /// Fails on the first unknown key (in sorted order).
    pub(crate) fn check(&self, path: &Path) -> Field<()> {
        match self.unknown {
            Some(key) => error(&path.key(key), Detail::UnknownKey),
            None => Ok(()),
        }
    }
}

/// Byte equality eight bytes at a time: `==` on two keys calls `memcmp`, which goes byte by
/// byte in the Function (about 170 instructions for a 19-byte key).
fn same_key(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut a, mut b) = (a, b);
    while let (Some((x, rest_a)), Some((y, rest_b))) =
        (a.split_first_chunk::<8>(), b.split_first_chunk::<8>())
    {
        if u64::from_le_bytes(*x) != u64::from_le_bytes(*y) {
            return false;
        }
        a = rest_a;
        b = rest_b;
    }
    let tail = |bytes: &[u8]| {
        bytes
            .iter()
            .rev()
            .fold(0u64, |w, &byte| (w << 8) | u64::from(byte))
    };
    tail(a) == tail(b)
}

pub(crate) fn integer(value: &Value, path: &Path) -> Field<i64> {
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
                // Also an exponent (1e3) or an integer beyond 64 bits: the reader keeps no value
                // for any of them.
                found: "a fraction or a number beyond 64 bits",
            },
        ),
        other => error(path, expected("an integer", other)),
    }
}

pub(crate) fn integer_in(value: &Value, path: &Path, min: i64, max: i64) -> Field<i64> {
    let n = integer(value, path)?;
    if n < min {
        error(path, Detail::Below { value: n, min })
    } else if n > max {
        error(path, Detail::Above { value: n, max })
    } else {
        Ok(n)
    }
}

/// An optional integer field `key` of the object at `path`.
pub(crate) fn optional_integer_in(
    value: Option<&Value>,
    path: &Path,
    key: &str,
    min: i64,
    max: i64,
) -> Field<Option<i64>> {
    value
        .map(|value| integer_in(value, &path.key(key), min, max))
        .transpose()
}

pub(crate) fn string<'v>(value: &'v Value, path: &Path) -> Field<&'v str> {
    match value {
        Value::String(text) => Ok(text),
        other => error(path, expected("a string", other)),
    }
}

/// An optional string field `key` of the object at `path`.
pub(crate) fn optional_string<'v>(
    value: Option<&'v Value>,
    path: &Path,
    key: &str,
) -> Field<Option<&'v str>> {
    value.map(|value| string(value, &path.key(key))).transpose()
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

fn parse_document(value: &Value) -> Result<ParsedPolicy, (ReasonCode, FieldError)> {
    let malformed = |e| (ReasonCode::PolicyMalformed, e);
    let root = Path::Root;
    let object = as_object(value, &root).map_err(malformed)?;
    let document = fields(
        object,
        [
            "version", "currency", "strategy", "guard", "holdout", "offers",
        ],
    );
    let [version, currency, strategy, guard, holdout, offers] = document.values;
    // The version is checked before anything else: a newer document may legitimately use keys
    // this build does not know, and "unsupported version" is the useful answer then.
    let version_path = root.key("version");
    let version = match version {
        Some(v) => integer(v, &version_path).map_err(malformed)?,
        None => return Err(malformed(field_error(&version_path, Detail::Missing))),
    };
    if version != POLICY_VERSION {
        return Err((
            ReasonCode::PolicyUnsupportedVersion,
            field_error(
                &version_path,
                Detail::UnsupportedVersion {
                    version,
                    reads: POLICY_VERSION,
                },
            ),
        ));
    }
    document.check(&root).map_err(malformed)?;
    let currency_path = root.key("currency");
    let currency_code = match currency {
        Some(v) => string(v, &currency_path).map_err(malformed)?,
        None => return Err(malformed(field_error(&currency_path, Detail::Missing))),
    };
    let currency = Currency::from_code(currency_code).ok_or_else(|| {
        (
            ReasonCode::PolicyCurrencyUnknown,
            field_error(
                &currency_path,
                unknown(NameKind::CurrencyCode, currency_code),
            ),
        )
    })?;
    let strategy = parse_strategy(strategy).map_err(malformed)?;
    let guard = parse_guard(guard).map_err(malformed)?;
    let holdout = parse_holdout(holdout).map_err(malformed)?;
    let offers_path = root.key("offers");
    let offer_values = match offers {
        Some(Value::Array(array)) => array,
        Some(other) => {
            return Err(malformed(field_error(
                &offers_path,
                expected("an array", other),
            )));
        }
        None => return Err(malformed(field_error(&offers_path, Detail::Missing))),
    };

    let mut offers: Vec<Offer> = Vec::with_capacity(offer_values.len().min(super::MAX_OFFERS));
    let mut reasons = Vec::new();
    if offer_values.len() > super::MAX_OFFERS {
        reasons.push(Reason {
            code: ReasonCode::TooManyOffers,
            subject: offers_path.render(),
            detail: Detail::TooManyOffers {
                count: offer_values.len(),
                max: super::MAX_OFFERS,
            },
        });
    }
    for (index, offer_value) in offer_values.iter().enumerate().take(super::MAX_OFFERS) {
        let path = offers_path.index(index);
        let parsed = parse_offer(offer_value, &path).and_then(|offer| {
            // Ids of the offers kept so far are exactly the ids seen: only a kept offer adds one.
            if !offers.iter().any(|kept| kept.id == offer.id) {
                Ok(offer)
            } else {
                error(&path.key("id"), Detail::DuplicateOfferId(offer.id))
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

fn parse_strategy(value: Option<&Value>) -> Field<Strategy> {
    let path = Path::Root;
    match optional_string(value, &path, "strategy")? {
        None | Some("priority") => Ok(Strategy::Priority),
        Some("best_for_shopper") => Ok(Strategy::BestForShopper),
        Some(other) => error(&path.key("strategy"), unknown(NameKind::Strategy, other)),
    }
}

/// The top-level `guard` object (shared with the bundle policy).
pub(crate) fn parse_guard(value: Option<&Value>) -> Field<Guard> {
    let mut guard = Guard::DEFAULT;
    let Some(value) = value else {
        return Ok(guard);
    };
    let root = Path::Root;
    let path = root.key("guard");
    let object = fields(
        as_object(value, &path)?,
        [
            "min_line_margin_bps",
            "min_order_margin_bps",
            "assumed_stack_bps",
            "unknown_cost",
        ],
    );
    object.check(&path)?;
    let [line, order, stack, unknown_cost] = object.values;
    let margin = |value, key| optional_integer_in(value, &path, key, 0, MAX_SURCHARGE_MARGIN_BPS);
    if let Some(bps) = margin(line, "min_line_margin_bps")? {
        guard.min_line_margin_bps = bps;
    }
    if let Some(bps) = margin(order, "min_order_margin_bps")? {
        guard.min_order_margin_bps = bps;
    }
    if let Some(bps) = optional_integer_in(stack, &path, "assumed_stack_bps", 0, BPS_ONE)? {
        guard.assumed_stack_bps = bps;
    }
    match optional_string(unknown_cost, &path, "unknown_cost")? {
        None | Some("exclude") => guard.unknown_cost = UnknownCost::Exclude,
        Some("allow") => guard.unknown_cost = UnknownCost::Allow,
        Some(other) => {
            return error(
                &path.key("unknown_cost"),
                unknown(NameKind::UnknownCost, other),
            );
        }
    }
    Ok(guard)
}

/// The top-level `holdout` object (shared with the bundle policy).
pub(crate) fn parse_holdout(value: Option<&Value>) -> Field<Option<Holdout>> {
    let Some(value) = value else {
        return Ok(None);
    };
    let root = Path::Root;
    let path = root.key("holdout");
    let object = fields(as_object(value, &path)?, ["share_bps", "salt"]);
    object.check(&path)?;
    let [share_bps, salt] = object.values;
    let share_bps = optional_integer_in(share_bps, &path, "share_bps", 0, BPS_ONE)?.unwrap_or(0);
    let salt = optional_string(salt, &path, "salt")?
        .unwrap_or_default()
        .to_string();
    Ok(Some(Holdout { share_bps, salt }))
}

fn parse_offer(value: &Value, path: &Path) -> Field<Offer> {
    let object = fields(
        as_object(value, path)?,
        ["id", "eligibility", "reward", "cap", "message"],
    );
    object.check(path)?;
    let [id, eligibility, reward, cap, message] = object.values;
    let id_path = path.key("id");
    let id = match id {
        Some(v) => string(v, &id_path)?,
        None => return error(&id_path, Detail::Missing),
    };
    if !is_offer_id(id) {
        return error(&id_path, Detail::OfferIdNotToken);
    }
    let eligibility = match eligibility {
        Some(v) => parse_eligibility(v, &path.key("eligibility"))?,
        None => Eligibility::ANY,
    };
    let reward_path = path.key("reward");
    let reward = match reward {
        Some(v) => parse_reward(v, &reward_path)?,
        None => return error(&reward_path, Detail::Missing),
    };
    let cap = optional_integer_in(cap, path, "cap", 0, i64::MAX)?;
    let message_path = path.key("message");
    let message = match optional_string(message, path, "message")? {
        Some(text) if !text.trim().is_empty() => text,
        Some(_) | None => return error(&message_path, Detail::Missing),
    };
    if !is_offer_message(message) {
        let n_chars = message.chars().count();
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

fn parse_eligibility(value: &Value, path: &Path) -> Field<Eligibility> {
    let object = fields(
        as_object(value, path)?,
        [
            "segments",
            "clv_min",
            "clv_max",
            "churn_min_bps",
            "subtotal_min",
            "customer",
        ],
    );
    object.check(path)?;
    let [
        segment_codes,
        clv_min,
        clv_max,
        churn_min_bps,
        subtotal_min,
        customer,
    ] = object.values;
    let mut segments = Vec::new();
    let segments_path = path.key("segments");
    match segment_codes {
        None => {}
        Some(Value::Array(items)) => {
            for (index, item) in items.iter().enumerate() {
                let item_path = segments_path.index(index);
                let code = string(item, &item_path)?;
                match Segment::from_code(code) {
                    Some(segment) => segments.push(segment),
                    None => return error(&item_path, unknown(NameKind::Segment, code)),
                }
            }
        }
        Some(other) => {
            return error(&segments_path, expected("an array", other));
        }
    }
    let clv_min = optional_integer_in(clv_min, path, "clv_min", 0, i64::MAX)?;
    let clv_max = optional_integer_in(clv_max, path, "clv_max", 0, i64::MAX)?;
    if let (Some(min), Some(max)) = (clv_min, clv_max)
        && min > max
    {
        return error(&path.key("clv_max"), Detail::ClvBoundsInverted { min, max });
    }
    let churn_min_bps = optional_integer_in(churn_min_bps, path, "churn_min_bps", 0, BPS_ONE)?;
    let subtotal_min = optional_integer_in(subtotal_min, path, "subtotal_min", 0, i64::MAX)?;
    let customer = match optional_string(customer, path, "customer")? {
        None | Some("any") => CustomerType::Any,
        Some("new") => CustomerType::New,
        Some("returning") => CustomerType::Returning,
        Some(other) => {
            return error(
                &path.key("customer"),
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

/// Every key a reward object may have; which of them a reward takes depends on its kind.
const REWARD_KEYS: [&str; 4] = ["kind", "bps", "amount", "max_slots"];

/// Which of the keys after `kind` in [`REWARD_KEYS`] a reward kind takes.
const TAKES_NOTHING: [bool; 3] = [false, false, false];
const TAKES_BPS: [bool; 3] = [true, false, false];
const TAKES_AMOUNT: [bool; 3] = [false, true, false];
const TAKES_BPS_AND_SLOTS: [bool; 3] = [true, false, true];

fn parse_reward(value: &Value, path: &Path) -> Field<Reward> {
    let object = fields(as_object(value, path)?, REWARD_KEYS);
    let [kind, bps, amount, max_slots] = object.values;
    let kind_path = path.key("kind");
    let kind = match optional_string(kind, path, "kind")? {
        Some(kind) => kind,
        None => return error(&kind_path, Detail::Missing),
    };
    let required = |value: Option<&Value>, key: &str, min: i64, max: i64| -> Field<i64> {
        match value {
            Some(v) => integer_in(v, &path.key(key), min, max),
            None => error(&path.key(key), Detail::Missing),
        }
    };
    let (reward, takes) = match kind {
        "order_percent" => (
            Reward::OrderPercent {
                bps: required(bps, "bps", 0, BPS_ONE)?,
            },
            TAKES_BPS,
        ),
        "order_fixed" => (
            Reward::OrderFixed {
                amount: required(amount, "amount", 0, i64::MAX)?,
            },
            TAKES_AMOUNT,
        ),
        "lines_percent" => (
            Reward::LinesPercent {
                bps: required(bps, "bps", 0, BPS_ONE)?,
            },
            TAKES_BPS,
        ),
        "lines_fixed" => (
            Reward::LinesFixed {
                amount_per_unit: required(amount, "amount", 0, i64::MAX)?,
            },
            TAKES_AMOUNT,
        ),
        "shipping_percent" => (
            Reward::ShippingPercent {
                bps: required(bps, "bps", 0, BPS_ONE)?,
            },
            TAKES_BPS,
        ),
        "free_shipping" => (Reward::FreeShipping, TAKES_NOTHING),
        "slot_percent" => {
            let bps = required(bps, "bps", 0, BPS_ONE)?;
            let max_slots = required(max_slots, "max_slots", 1, i64::from(u32::MAX))?;
            let max_slots = u32::try_from(max_slots).unwrap_or(u32::MAX);
            (Reward::SlotPercent { bps, max_slots }, TAKES_BPS_AND_SLOTS)
        }
        other => {
            return error(&kind_path, unknown(NameKind::RewardKind, other));
        }
    };
    // A key of another kind is as unknown as a misspelt one; the first in sorted order is named.
    let [_, keys @ ..] = REWARD_KEYS;
    let [_, present @ ..] = object.present;
    let other_kinds = keys
        .into_iter()
        .zip(present)
        .zip(takes)
        .filter(|((_, present), takes)| *present && !takes)
        .map(|((key, _), _)| key);
    let unknown_key = other_kinds.chain(object.unknown).min();
    match unknown_key {
        Some(key) => error(&path.key(key), Detail::UnknownKey),
        None => Ok(reward),
    }
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

    /// A policy of `n` distinct order offers.
    fn with_offers(n: usize) -> String {
        let offers: Vec<String> = (0..n)
            .map(|i| {
                format!(
                    r#"{{"id": "o{i}", "reward": {{"kind": "order_percent", "bps": 100}}, "message": "m"}}"#
                )
            })
            .collect();
        format!(
            r#"{{"version": 1, "currency": "USD", "offers": [{}]}}"#,
            offers.join(",")
        )
    }

    #[test]
    fn offers_beyond_the_maximum_are_reported_and_not_read() {
        let max = crate::policy::MAX_OFFERS;
        let parsed = parse(&with_offers(max));
        assert_eq!(parsed.policy.unwrap().offers.len(), max);
        assert!(parsed.reasons.is_empty());

        let parsed = parse(&with_offers(max + 6));
        let offers = parsed.policy.unwrap().offers;
        let ids: Vec<String> = offers.iter().map(|o| o.id.clone()).collect();
        let first: Vec<String> = (0..max).map(|i| format!("o{i}")).collect();
        assert_eq!(ids, first);
        assert_eq!(parsed.reasons.len(), 1);
        let reason = &parsed.reasons[0];
        assert_eq!(reason.code, ReasonCode::TooManyOffers);
        assert_eq!(reason.subject, "offers");
        assert_eq!(
            reason.detail.to_string(),
            format!("{} offers, only the first {max} are read", max + 6)
        );
        // Such a policy does not compile: the compiled form keeps no reasons.
        assert!(crate::policy::compiled::compile(&with_offers(max + 1)).is_err());
        assert!(crate::policy::compiled::compile(&with_offers(max)).is_ok());
    }

    #[test]
    fn every_malformed_offer_names_its_path() {
        let cases = [
            (
                r#"{"id": "a", "reward": {"kind": "order_percent", "bps": 1.5}, "message": "m"}"#,
                "offers[0].reward.bps",
                "expected an integer, found a fraction or a number beyond 64 bits",
            ),
            (
                r#"{"id": "a", "reward": {"kind": "order_percent", "bps": 1000000000000000000000000000000}, "message": "m"}"#,
                "offers[0].reward.bps",
                "found a fraction or a number beyond 64 bits",
            ),
            (
                r#"{"id": "a", "reward": {"kind": "order_percent"}, "message": "m"}"#,
                "offers[0].reward.bps",
                "missing",
            ),
            (
                r#"{"id": "a", "reward": {"kind": "free_shipping", "bps": 5}, "message": "m"}"#,
                "offers[0].reward.bps",
                "unknown or repeated key",
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
                "unknown or repeated key",
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
            (
                r#"{"id": "a", "reward": {"kind": "free_shipping", "bps": null}, "message": "m"}"#,
                "offers[0].reward.bps",
                "unknown or repeated key",
            ),
            (
                r#"{"id": "a", "reward": {"kind": "order_fixed", "amount": 1, "zeta": 1, "max_slots": 2}, "message": "m"}"#,
                "offers[0].reward.max_slots",
                "unknown or repeated key",
            ),
            (r#"[]"#, "offers[0]", "expected an object, found an array"),
            (
                r#"{"id": "a", "reward": {"kind": "order_percent", "bps": 100, "bps": 9000}, "message": "m"}"#,
                "offers[0].reward.bps",
                "unknown or repeated key",
            ),
            (
                r#"{"id": "a", "id": "b", "reward": {"kind": "free_shipping"}, "message": "m"}"#,
                "offers[0].id",
                "unknown or repeated key",
            ),
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
            // A repeated key would leave which copy counts to the reader: the second must not
            // quietly lower the guard.
            (
                r#"{"version": 1, "currency": "USD", "offers": [], "guard": {"min_line_margin_bps": 1000, "min_line_margin_bps": 0}}"#,
                ReasonCode::PolicyMalformed,
                "guard.min_line_margin_bps",
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

    proptest::proptest! {
        /// One pass over an object answers as a lookup per key does (`null` as absent; the first
        /// of a repeated key) and names the least key that is unknown or repeated, in any key
        /// order.
        #[test]
        fn fields_agree_with_lookups(
            entries in proptest::collection::vec(
                (proptest::sample::select(vec!["bps", "kind", "a", "amount", "zz", "bpt"]), proptest::bool::ANY),
                0..8,
            ),
        ) {
            let body: Vec<String> = entries
                .iter()
                .map(|(key, null)| format!("\"{key}\": {}", if *null { "null" } else { "1" }))
                .collect();
            let text = format!("{{{}}}", body.join(", "));
            let value = super::super::json::from_str(&text).unwrap();
            let super::Value::Object(object) = &value else {
                return Err(proptest::test_runner::TestCaseError::fail(text.clone()));
            };
            let known = ["kind", "bps", "amount"];
            let fields = super::fields(object, known);
            for (key, found) in known.iter().zip(fields.values) {
                let expected = object
                    .entries()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v)
                    .filter(|v| !matches!(v, super::Value::Null));
                proptest::prop_assert!(
                    found.map(std::ptr::from_ref) == expected.map(std::ptr::from_ref),
                    "{} in {}", key, text
                );
            }
            let repeated = |key: &str| entries.iter().filter(|(k, _)| *k == key).count() > 1;
            let least_unknown = entries
                .iter()
                .map(|(k, _)| *k)
                .filter(|k| !known.contains(k) || repeated(k))
                .min();
            proptest::prop_assert_eq!(fields.unknown, least_unknown, "{}", text);
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
