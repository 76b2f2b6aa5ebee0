//! The compiled policy: the same [`Policy`] as the JSON, in a form the discount Function reads
//! in about a fifth of the instructions (the eight-offer budget policy: about 22 K instead of
//! about 110 K).
//!
//! The JSON in `$app.policy` stays the policy. Whoever writes it (the `marginwise compile-policy`
//! command, or the settings page in the admin, whose JavaScript encoder a test holds to
//! [`compile`]) may also write `$app.policy_compiled`; the
//! discount Function reads that instead when it was compiled from exactly the JSON beside it (its
//! byte length and xxh64 are recorded in it). When it is absent the JSON is parsed as always; when
//! it is stale or unreadable the JSON is parsed too and the decision carries a
//! `policy_compiled_stale` reason, so a fast path that stopped working is visible in the logs.
//!
//! Only a policy the JSON reader accepts without a single reason compiles: the compiled form
//! holds the policy, not the reasons for skipped offers. [`decode`] checks every value against
//! the same rules as the JSON reader (ranges, offer ids, message length, unique ids), so a
//! hand-edited or corrupted compiled value can never carry a policy the JSON could not.
//!
//! Format `mwp1`: comma-terminated fields, integers in decimal, texts as `<bytes>:<text>`:
//!
//! ```text
//! mwp1,<json bytes>,<json xxh64, 16 hex digits>,<currency>,<strategy p|b>,
//!   <min_line_margin_bps>,<min_order_margin_bps>,<assumed_stack_bps>,<unknown_cost x|a>,
//!   <holdout: - | share_bps,salt>,<offer count>, then per offer:
//!   <id>,<segment digits>,<clv_min|->,<clv_max|->,<churn_min_bps|->,<subtotal_min|->,
//!   <customer a|n|r>,<reward>,<cap|->,<message>,
//! ```
//!
//! Segment digits are indexes into [`Segment::ALL`] (empty: any segment). A reward is its kind
//! letter and the kind's figures: `o` order percent (bps), `f` order fixed (amount), `l` lines
//! percent (bps), `u` lines fixed (amount per unit), `s` shipping percent (bps), `z` free
//! shipping (nothing), `t` slot percent (bps, max slots).

use xxhash_rust::xxh64::xxh64;

use super::{
    CustomerType, Eligibility, Guard, Holdout, MAX_SURCHARGE_MARGIN_BPS, Offer, Policy, Reward,
    Strategy, UnknownCost, is_offer_id, is_offer_message,
};
use crate::decision::Reason;
use crate::format::Segment;
use crate::money::{BPS_ONE, Currency};

/// The first field of every compiled policy; a new layout gets a new tag.
pub const COMPILED_TAG: &str = "mwp1";

/// Most digits of a decimal field: every `u64` of 19 digits fits, and policy figures are `i64`.
const MAX_DIGITS: usize = 19;

/// The seed of the JSON fingerprint (xxh64). Frozen with the format.
const FINGERPRINT_SEED: u64 = 0;

/// Why a compiled policy was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompiledProblem {
    /// It does not start with [`COMPILED_TAG`]: another format, or not a compiled policy.
    UnknownFormat,
    /// It was compiled from another JSON text than the one in `$app.policy`.
    JsonChanged,
    /// The field at this byte offset cannot be read or breaks a policy rule.
    Malformed { at: usize },
}

/// Compiles a policy JSON. Fails with the JSON reader's reasons when the policy is unusable or
/// any offer would be skipped: fix those first, the compiled form keeps no reasons.
pub fn compile(json: &str) -> Result<String, Vec<Reason>> {
    let parsed = super::parse(json);
    match parsed.policy {
        Some(policy) if parsed.reasons.is_empty() => Ok(encode(&policy, json)),
        _ => Err(parsed.reasons),
    }
}

/// The compiled form of `policy`, fingerprinted with the JSON text it was read from.
pub(crate) fn encode(policy: &Policy, json: &str) -> String {
    let mut out = String::with_capacity(64 + 96 * policy.offers.len());
    header(&mut out, COMPILED_TAG, json);
    out.push_str(policy.currency.code_str());
    out.push(',');
    tag(
        &mut out,
        match policy.strategy {
            Strategy::Priority => 'p',
            Strategy::BestForShopper => 'b',
        },
    );
    guard_and_holdout(&mut out, &policy.guard, policy.holdout.as_ref());
    number(&mut out, policy.offers.len());
    for offer in &policy.offers {
        encode_offer(&mut out, offer);
    }
    out
}

/// The fields every compiled form starts with: its tag, and the byte length and xxh64 of the JSON
/// it was compiled from.
pub(crate) fn header(out: &mut String, format_tag: &str, json: &str) {
    out.push_str(format_tag);
    out.push(',');
    number(out, json.len());
    out.push_str(&format!(
        "{:016x},",
        xxh64(json.as_bytes(), FINGERPRINT_SEED)
    ));
}

/// The margin guard and the holdout, which the discount and the bundle policy share.
pub(crate) fn guard_and_holdout(out: &mut String, guard: &Guard, holdout: Option<&Holdout>) {
    number(out, guard.min_line_margin_bps);
    number(out, guard.min_order_margin_bps);
    number(out, guard.assumed_stack_bps);
    tag(
        out,
        match guard.unknown_cost {
            UnknownCost::Exclude => 'x',
            UnknownCost::Allow => 'a',
        },
    );
    match holdout {
        None => out.push_str("-,"),
        Some(holdout) => {
            number(out, holdout.share_bps);
            text(out, &holdout.salt);
        }
    }
}

fn encode_offer(out: &mut String, offer: &Offer) {
    text(out, &offer.id);
    let eligibility = &offer.eligibility;
    for segment in &eligibility.segments {
        let index = Segment::ALL.iter().position(|s| s == segment).unwrap_or(0);
        out.push(char::from(b'0' + index as u8));
    }
    out.push(',');
    optional(out, eligibility.clv_min);
    optional(out, eligibility.clv_max);
    optional(out, eligibility.churn_min_bps);
    optional(out, eligibility.subtotal_min);
    tag(out, customer_letter(eligibility.customer));
    match offer.reward {
        Reward::OrderPercent { bps } => reward(out, 'o', &[bps]),
        Reward::OrderFixed { amount } => reward(out, 'f', &[amount]),
        Reward::LinesPercent { bps } => reward(out, 'l', &[bps]),
        Reward::LinesFixed { amount_per_unit } => reward(out, 'u', &[amount_per_unit]),
        Reward::ShippingPercent { bps } => reward(out, 's', &[bps]),
        Reward::FreeShipping => reward(out, 'z', &[]),
        Reward::SlotPercent { bps, max_slots } => {
            reward(out, 't', &[bps, i64::from(max_slots)]);
        }
    }
    optional(out, offer.cap);
    text(out, &offer.message);
}

fn reward(out: &mut String, kind: char, figures: &[i64]) {
    tag(out, kind);
    for figure in figures {
        number(out, *figure);
    }
}

/// The letter of a customer type.
pub(crate) fn customer_letter(customer: CustomerType) -> char {
    match customer {
        CustomerType::Any => 'a',
        CustomerType::New => 'n',
        CustomerType::Returning => 'r',
    }
}

/// A decimal field. Policy figures are never negative (the JSON reader rejects them); one that
/// were would fail [`decode`], which reads digits only.
pub(crate) fn number(out: &mut String, n: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(n));
    out.push(',');
}

pub(crate) fn optional(out: &mut String, n: Option<i64>) {
    match n {
        Some(n) => number(out, n),
        None => out.push_str("-,"),
    }
}

pub(crate) fn tag(out: &mut String, letter: char) {
    out.push(letter);
    out.push(',');
}

pub(crate) fn text(out: &mut String, text: &str) {
    out.push_str(itoa::Buffer::new().format(text.len()));
    out.push(':');
    out.push_str(text);
    out.push(',');
}

/// The policy in `compiled`, when it was compiled from exactly `json` and every value keeps the
/// policy rules.
pub fn decode(compiled: &str, json: &str) -> Result<Policy, CompiledProblem> {
    let mut reader = open(compiled, COMPILED_TAG, json)?;
    let policy = reader.body();
    reader.finish(policy)
}

/// A reader of the fields after the header of `compiled`, when it has this format tag and was
/// compiled from exactly `json`.
pub(crate) fn open<'t>(
    compiled: &'t str,
    format_tag: &str,
    json: &str,
) -> Result<Reader<'t>, CompiledProblem> {
    let body = compiled
        .strip_prefix(format_tag)
        .and_then(|rest| rest.strip_prefix(','));
    let Some(body) = body else {
        return Err(CompiledProblem::UnknownFormat);
    };
    let mut reader = Reader {
        text: compiled,
        at: compiled.len() - body.len(),
        failed: None,
    };
    let length = reader.number();
    let hash = reader.hex();
    if let Some(at) = reader.failed {
        return Err(CompiledProblem::Malformed { at });
    }
    // The length first: comparing it is free, hashing the JSON is not.
    if length != json.len() as u64 || hash != xxh64(json.as_bytes(), FINGERPRINT_SEED) {
        return Err(CompiledProblem::JsonChanged);
    }
    Ok(reader)
}

/// Reads the fields in order. The first field that cannot be read or breaks a rule is recorded
/// in `failed` and reading goes on with a zero in its place (every read is bounds-checked, so it
/// can only fail again); the caller then discards what was read. Returning plain values instead
/// of a `Result` from every field keeps them in registers in the Function.
pub(crate) struct Reader<'t> {
    text: &'t str,
    pub(crate) at: usize,
    failed: Option<usize>,
}

impl<'t> Reader<'t> {
    /// `value` when every field was read and kept its rules, and nothing follows the last one.
    pub(crate) fn finish<T>(&mut self, value: T) -> Result<T, CompiledProblem> {
        self.check(self.at == self.text.len(), self.at);
        match self.failed {
            None => Ok(value),
            Some(at) => Err(CompiledProblem::Malformed { at }),
        }
    }

    /// How many bytes are left after the current field.
    pub(crate) fn remaining(&self) -> usize {
        self.text.len().saturating_sub(self.at)
    }

    pub(crate) fn fail(&mut self, at: usize) {
        if self.failed.is_none() {
            self.failed = Some(at);
        }
    }

    /// 1 to 19 decimal digits up to `end`, which is consumed. Nineteen digits always fit in a
    /// `u64`, so the digits are added up without overflow checks (a checked 64-bit multiply is a
    /// 128-bit library call in the Function).
    #[inline(never)]
    fn digits_until(&mut self, end: u8) -> u64 {
        let start = self.at;
        let bytes = self.text.as_bytes();
        let mut at = start;
        let mut n: u64 = 0;
        while let Some(&byte) = bytes.get(at) {
            let digit = byte.wrapping_sub(b'0');
            if digit > 9 {
                break;
            }
            n = n.wrapping_mul(10).wrapping_add(u64::from(digit));
            at += 1;
        }
        if at == start || at - start > MAX_DIGITS || bytes.get(at) != Some(&end) {
            self.fail(start);
            return 0;
        }
        self.at = at + 1;
        n
    }

    /// The 16 lower-case hex digits of the fingerprint and their comma.
    fn hex(&mut self) -> u64 {
        let start = self.at;
        let field = self.text.as_bytes().get(start..).unwrap_or_default();
        let value = match field.split_first_chunk::<16>() {
            Some((digits, [b',', ..])) => crate::format::fingerprint_value(digits),
            _ => None,
        };
        match value {
            Some(n) => {
                self.at += 17;
                n
            }
            None => {
                self.fail(start);
                0
            }
        }
    }

    pub(crate) fn number(&mut self) -> u64 {
        self.digits_until(b',')
    }

    /// A figure within `min..=max` (0 when it is not).
    pub(crate) fn figure(&mut self, min: i64, max: i64) -> i64 {
        let start = self.at;
        match i64::try_from(self.number()) {
            Ok(n) if n >= min && n <= max => n,
            _ => {
                self.fail(start);
                0
            }
        }
    }

    /// `-` or a figure within `min..=max`.
    pub(crate) fn optional(&mut self, min: i64, max: i64) -> Option<i64> {
        if self.text.as_bytes().get(self.at..self.at + 2) == Some(b"-,") {
            self.at += 2;
            return None;
        }
        Some(self.figure(min, max))
    }

    /// One letter and its comma (0 when there is none).
    pub(crate) fn letter(&mut self) -> u8 {
        match self.text.as_bytes().get(self.at..self.at + 2) {
            Some(&[letter, b',']) => {
                self.at += 2;
                letter
            }
            _ => {
                self.fail(self.at);
                0
            }
        }
    }

    /// `<bytes>:<text>,` (empty when it cannot be read).
    pub(crate) fn text(&mut self) -> &'t str {
        let start = self.at;
        let length = usize::try_from(self.digits_until(b':')).unwrap_or(usize::MAX);
        let from = self.at;
        let text = from
            .checked_add(length)
            .and_then(|to| Some((self.text.get(from..to)?, to)))
            .filter(|(_, to)| self.text.as_bytes().get(*to) == Some(&b','));
        match text {
            Some((text, to)) if from > start => {
                self.at = to + 1;
                text
            }
            _ => {
                self.fail(start);
                ""
            }
        }
    }

    /// The bytes up to the next comma, which is consumed (empty, and failed, when there is none).
    pub(crate) fn raw_field(&mut self) -> &'t [u8] {
        let bytes = self.text.as_bytes().get(self.at..).unwrap_or_default();
        match bytes.iter().position(|&byte| byte == b',') {
            Some(end) => {
                self.at += end + 1;
                bytes.get(..end).unwrap_or_default()
            }
            None => {
                self.fail(self.at);
                &[]
            }
        }
    }

    /// Fails at `start` unless `ok`.
    pub(crate) fn check(&mut self, ok: bool, start: usize) {
        if !ok {
            self.fail(start);
        }
    }

    /// A three-letter currency code and its comma. Read once a run: kept out of line, as is
    /// [`Self::guard_and_holdout`], so each Function's module holds one copy.
    pub(crate) fn currency(&mut self) -> Currency {
        let start = self.at;
        let currency = match self.text.as_bytes().get(start + 3) {
            Some(b',') => self
                .text
                .get(start..start + 3)
                .and_then(Currency::from_code),
            _ => None,
        };
        self.check(currency.is_some(), start);
        self.at += 4;
        currency.unwrap_or(Currency {
            code: *b"XXX",
            exponent: 2,
        })
    }

    /// Who may get it: `a` (any), `n` (new) or `r` (returning), as [`customer_letter`] writes it.
    pub(crate) fn customer(&mut self) -> CustomerType {
        let start = self.at;
        match self.letter() {
            b'n' => CustomerType::New,
            b'r' => CustomerType::Returning,
            letter => {
                self.check(letter == b'a', start);
                CustomerType::Any
            }
        }
    }

    /// The margin guard and the holdout (see [`guard_and_holdout`]).
    pub(crate) fn guard_and_holdout(&mut self) -> (Guard, Option<Holdout>) {
        let min_line_margin_bps = self.figure(0, MAX_SURCHARGE_MARGIN_BPS);
        let min_order_margin_bps = self.figure(0, MAX_SURCHARGE_MARGIN_BPS);
        let assumed_stack_bps = self.figure(0, BPS_ONE);
        let start = self.at;
        let unknown_cost = match self.letter() {
            b'a' => UnknownCost::Allow,
            letter => {
                self.check(letter == b'x', start);
                UnknownCost::Exclude
            }
        };
        let holdout = self.optional(0, BPS_ONE).map(|share_bps| Holdout {
            share_bps,
            salt: self.text().to_string(),
        });
        let guard = Guard {
            min_line_margin_bps,
            min_order_margin_bps,
            assumed_stack_bps,
            unknown_cost,
        };
        (guard, holdout)
    }

    fn body(&mut self) -> Policy {
        let currency = self.currency();
        let start = self.at;
        let strategy = match self.letter() {
            b'b' => Strategy::BestForShopper,
            letter => {
                self.check(letter == b'p', start);
                Strategy::Priority
            }
        };
        let (guard, holdout) = self.guard_and_holdout();
        let start = self.at;
        let count = self.number();
        // Every offer takes at least 20 bytes: a count beyond that is corrupt, and must not
        // reserve memory for it. A policy of more than MAX_OFFERS does not compile.
        let most = (self.remaining() / 20).min(super::MAX_OFFERS);
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        self.check(count <= most, start);
        let mut offers: Vec<Offer> = Vec::with_capacity(count.min(most));
        for _ in 0..count.min(most) {
            let start = self.at;
            let offer = self.offer();
            let repeated = offers.iter().any(|kept| kept.id == offer.id);
            self.check(!repeated, start);
            if self.failed.is_some() {
                break;
            }
            offers.push(offer);
        }
        Policy {
            currency,
            strategy,
            guard,
            holdout,
            offers,
        }
    }

    fn offer(&mut self) -> Offer {
        let start = self.at;
        let id = self.text();
        self.check(is_offer_id(id), start);
        let start = self.at;
        let digits = self.raw_field();
        let mut segments = Vec::with_capacity(digits.len());
        for &digit in digits {
            match Segment::ALL.get(usize::from(digit.wrapping_sub(b'0'))) {
                Some(segment) => segments.push(*segment),
                None => {
                    self.fail(start);
                    break;
                }
            }
        }
        let clv_min = self.optional(0, i64::MAX);
        let start = self.at;
        let clv_max = self.optional(0, i64::MAX);
        if let (Some(min), Some(max)) = (clv_min, clv_max) {
            self.check(min <= max, start);
        }
        let churn_min_bps = self.optional(0, BPS_ONE);
        let subtotal_min = self.optional(0, i64::MAX);
        let customer = self.customer();
        let start = self.at;
        let reward = match self.letter() {
            b'o' => Reward::OrderPercent {
                bps: self.figure(0, BPS_ONE),
            },
            b'f' => Reward::OrderFixed {
                amount: self.figure(0, i64::MAX),
            },
            b'l' => Reward::LinesPercent {
                bps: self.figure(0, BPS_ONE),
            },
            b'u' => Reward::LinesFixed {
                amount_per_unit: self.figure(0, i64::MAX),
            },
            b's' => Reward::ShippingPercent {
                bps: self.figure(0, BPS_ONE),
            },
            b't' => {
                let bps = self.figure(0, BPS_ONE);
                let max_slots = self.figure(1, i64::from(u32::MAX));
                Reward::SlotPercent {
                    bps,
                    max_slots: u32::try_from(max_slots).unwrap_or(0),
                }
            }
            letter => {
                self.check(letter == b'z', start);
                Reward::FreeShipping
            }
        };
        let cap = self.optional(0, i64::MAX);
        let start = self.at;
        let message = self.text();
        self.check(is_offer_message(message), start);
        Offer {
            id: id.to_string(),
            eligibility: Eligibility {
                segments,
                clv_min,
                clv_max,
                churn_min_bps,
                subtotal_min,
                customer,
            },
            reward,
            cap,
            message: message.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::super::Strategy;
    use super::*;
    use proptest::prelude::{
        Just, ProptestConfig, Strategy as Generate, TestCaseError, any, prop_assert,
        prop_assert_eq, prop_oneof, proptest,
    };
    use serde_json::{Value, json};

    const POLICY: &str = r#"{
      "version": 1, "currency": "EUR", "strategy": "best_for_shopper",
      "guard": { "min_line_margin_bps": 1000, "assumed_stack_bps": 500, "unknown_cost": "allow" },
      "holdout": { "share_bps": 250, "salt": "q4, with: commas" },
      "offers": [
        { "id": "vip", "eligibility": { "segments": ["loyal_high_value", "active"], "clv_min": 100,
          "clv_max": 100, "churn_min_bps": 0, "subtotal_min": 5000, "customer": "returning" },
          "reward": { "kind": "slot_percent", "bps": 10000, "max_slots": 4294967295 },
          "cap": 9223372036854775807, "message": "Dix pour cent, pour vous: merci !" },
        { "id": "ship", "reward": { "kind": "free_shipping" }, "message": "  Frais de port offerts" },
        { "id": "x:1", "reward": { "kind": "lines_fixed", "amount": 0 }, "message": "ü" }
      ]
    }"#;

    fn compiled() -> String {
        compile(POLICY).unwrap()
    }

    #[test]
    fn decodes_to_the_policy_the_json_gives() {
        let parsed = super::super::parse(POLICY);
        assert!(parsed.reasons.is_empty(), "{:?}", parsed.reasons);
        assert_eq!(decode(&compiled(), POLICY), Ok(parsed.policy.unwrap()));
    }

    #[test]
    fn is_used_only_with_the_json_it_was_compiled_from() {
        let edited = POLICY.replacen("250", "260", 1);
        assert_eq!(
            decode(&compiled(), &edited),
            Err(CompiledProblem::JsonChanged)
        );
        let longer = format!("{POLICY} ");
        assert_eq!(
            decode(&compiled(), &longer),
            Err(CompiledProblem::JsonChanged)
        );
        assert_eq!(
            decode(&compiled().replacen("mwp1", "mwp2", 1), POLICY),
            Err(CompiledProblem::UnknownFormat)
        );
        assert_eq!(decode("", POLICY), Err(CompiledProblem::UnknownFormat));
    }

    #[test]
    fn a_policy_with_reasons_does_not_compile() {
        let skipped = POLICY.replacen("\"ship\"", "\"vip\"", 1);
        let reasons = compile(&skipped).unwrap_err();
        assert_eq!(reasons.len(), 1);
        assert_eq!(reasons[0].subject, "offers[1].id");
        assert!(compile("[]").is_err());
    }

    /// A compiled text written by hand (or by an older build) with more offers than a policy may
    /// have is not used: the JSON is read instead, which reports the extra offers.
    #[test]
    fn more_offers_than_the_maximum_do_not_decode() {
        let json = r#"{"version": 1, "currency": "USD", "offers": [{"id": "a", "reward": {"kind": "order_percent", "bps": 100}, "message": "m"}]}"#;
        let mut policy = crate::policy::parse(json).policy.unwrap();
        let offer = policy.offers[0].clone();
        policy.offers = (0..=crate::policy::MAX_OFFERS)
            .map(|i| Offer {
                id: format!("o{i}"),
                ..offer.clone()
            })
            .collect();
        let text = encode(&policy, json);
        assert!(
            matches!(decode(&text, json), Err(CompiledProblem::Malformed { .. })),
            "{:?}",
            decode(&text, json)
        );
        policy.offers.pop();
        assert_eq!(decode(&encode(&policy, json), json), Ok(policy));
    }

    /// Each case breaks one field of the compiled text; the error names where that field starts.
    #[test]
    fn errors_name_the_field_that_breaks_a_rule() {
        let good = compiled();
        // `from` replaced by `to`, failing where `from` started (offset by `skip` bytes).
        let case = |from: &str, to: &str, skip: usize| {
            (good.replacen(from, to, 1), good.find(from).unwrap() + skip)
        };
        let cases: Vec<(String, usize)> = vec![
            // Unknown currency, strategy letter, a margin above its maximum.
            case("EUR,", "EU1,", 0),
            case("EUR,b,", "EUR,q,", 4),
            case("b,1000,", "b,100001,", 2),
            // A holdout share above 100 %, a salt longer than the text.
            case(",250,", ",10001,", 1),
            case("16:q4", "99:q4", 0),
            // An offer count the text cannot hold.
            case(",3,3:vip", ",999,3:vip", 1),
            // Offer ids that are not tokens, a repeated id, an unknown segment digit.
            case("3:vip,", "3:v p,", 0),
            case("4:ship,", "4:vip!,", 0),
            case("4:ship,", "3:vip,", 0),
            case("3:vip,21,", "3:vip,25,", 6),
            // clv_max below clv_min, an unknown reward kind, max_slots of 0 and above u32.
            case("100,100,", "100,99,", 4),
            case(",t,", ",q,", 1),
            case("4294967295,", "0,", 0),
            case("4294967295,", "4294967296,", 0),
            // 2^64: twenty digits, which must not wrap around to 0.
            case("9223372036854775807", "18446744073709551616", 0),
            // A blank message, bytes after the last offer.
            case("2:ü,", "2:  ,", 0),
            (format!("{good}x"), good.len()),
        ];
        for (text, at) in cases {
            // The fingerprint covers the JSON, not the compiled text: these are all "current".
            assert_eq!(
                decode(&text, POLICY),
                Err(CompiledProblem::Malformed { at }),
                "{text}"
            );
        }
    }

    /// The policy as JSON the reader accepts (absent optionals left out).
    fn to_json(policy: &Policy) -> String {
        let offers: Vec<Value> = policy.offers.iter().map(offer_json).collect();
        let mut document = json!({
            "version": 1,
            "currency": policy.currency.code_str(),
            "strategy": match policy.strategy {
                Strategy::Priority => "priority",
                Strategy::BestForShopper => "best_for_shopper",
            },
            "guard": {
                "min_line_margin_bps": policy.guard.min_line_margin_bps,
                "min_order_margin_bps": policy.guard.min_order_margin_bps,
                "assumed_stack_bps": policy.guard.assumed_stack_bps,
                "unknown_cost": match policy.guard.unknown_cost {
                    UnknownCost::Exclude => "exclude",
                    UnknownCost::Allow => "allow",
                },
            },
            "offers": offers,
        });
        if let Some(holdout) = &policy.holdout {
            document["holdout"] = json!({ "share_bps": holdout.share_bps, "salt": holdout.salt });
        }
        document.to_string()
    }

    fn offer_json(offer: &Offer) -> Value {
        let e = &offer.eligibility;
        let mut eligibility = json!({
            "segments": e.segments.iter().map(|s| s.code()).collect::<Vec<_>>(),
            "customer": match e.customer {
                CustomerType::Any => "any",
                CustomerType::New => "new",
                CustomerType::Returning => "returning",
            },
        });
        for (key, value) in [
            ("clv_min", e.clv_min),
            ("clv_max", e.clv_max),
            ("churn_min_bps", e.churn_min_bps),
            ("subtotal_min", e.subtotal_min),
        ] {
            if let Some(value) = value {
                eligibility[key] = json!(value);
            }
        }
        let reward = match offer.reward {
            Reward::OrderPercent { bps } => json!({ "kind": "order_percent", "bps": bps }),
            Reward::OrderFixed { amount } => json!({ "kind": "order_fixed", "amount": amount }),
            Reward::LinesPercent { bps } => json!({ "kind": "lines_percent", "bps": bps }),
            Reward::LinesFixed { amount_per_unit } => {
                json!({ "kind": "lines_fixed", "amount": amount_per_unit })
            }
            Reward::ShippingPercent { bps } => json!({ "kind": "shipping_percent", "bps": bps }),
            Reward::FreeShipping => json!({ "kind": "free_shipping" }),
            Reward::SlotPercent { bps, max_slots } => {
                json!({ "kind": "slot_percent", "bps": bps, "max_slots": max_slots })
            }
        };
        let mut object = json!({
            "id": offer.id,
            "eligibility": eligibility,
            "reward": reward,
            "message": offer.message,
        });
        if let Some(cap) = offer.cap {
            object["cap"] = json!(cap);
        }
        object
    }

    fn figure() -> impl Generate<Value = i64> {
        prop_oneof![
            0..=20_000i64,
            Just(i64::MAX),
            any::<i64>().prop_map(i64::abs)
        ]
    }

    fn bps() -> impl Generate<Value = i64> {
        prop_oneof![0..=BPS_ONE, Just(BPS_ONE)]
    }

    fn reward() -> impl Generate<Value = Reward> {
        prop_oneof![
            bps().prop_map(|bps| Reward::OrderPercent { bps }),
            figure().prop_map(|amount| Reward::OrderFixed { amount }),
            bps().prop_map(|bps| Reward::LinesPercent { bps }),
            figure().prop_map(|amount_per_unit| Reward::LinesFixed { amount_per_unit }),
            bps().prop_map(|bps| Reward::ShippingPercent { bps }),
            Just(Reward::FreeShipping),
            (bps(), 1..=u32::MAX)
                .prop_map(|(bps, max_slots)| Reward::SlotPercent { bps, max_slots }),
        ]
    }

    fn offer() -> impl Generate<Value = Offer> {
        let segments = proptest::collection::vec(proptest::sample::select(&Segment::ALL[..]), 0..4);
        let customer = proptest::sample::select(vec![
            CustomerType::Any,
            CustomerType::New,
            CustomerType::Returning,
        ]);
        let clv = (
            proptest::option::of(figure()),
            proptest::option::of(figure()),
        )
            .prop_map(|(a, b)| match (a, b) {
                (Some(a), Some(b)) => (Some(a.min(b)), Some(a.max(b))),
                other => other,
            });
        (
            "[A-Za-z0-9._:-]{1,64}",
            segments,
            clv,
            proptest::option::of(bps()),
            proptest::option::of(figure()),
            customer,
            reward(),
            proptest::option::of(figure()),
            "[ ]{0,2}\\PC{1,98}".prop_filter("not blank", |m| !m.trim().is_empty()),
        )
            .prop_map(
                |(
                    id,
                    segments,
                    (clv_min, clv_max),
                    churn,
                    subtotal,
                    customer,
                    reward,
                    cap,
                    message,
                )| {
                    Offer {
                        id,
                        eligibility: Eligibility {
                            segments,
                            clv_min,
                            clv_max,
                            churn_min_bps: churn,
                            subtotal_min: subtotal,
                            customer,
                        },
                        reward,
                        cap,
                        message,
                    }
                },
            )
    }

    fn policy() -> impl Generate<Value = Policy> {
        let currency = proptest::sample::select(vec!["USD", "JPY", "KWD", "EUR"]);
        let strategy = proptest::sample::select(vec![Strategy::Priority, Strategy::BestForShopper]);
        let unknown = proptest::sample::select(vec![UnknownCost::Exclude, UnknownCost::Allow]);
        let margin = 0..=MAX_SURCHARGE_MARGIN_BPS;
        let holdout = proptest::option::of((bps(), "\\PC{0,12}"))
            .prop_map(|holdout| holdout.map(|(share_bps, salt)| Holdout { share_bps, salt }));
        (
            currency,
            strategy,
            (margin.clone(), margin, bps(), unknown),
            holdout,
            proptest::collection::vec(offer(), 0..6),
        )
            .prop_map(
                |(currency, strategy, (line, order, stack, unknown_cost), holdout, offers)| {
                    // Ids are unique: a later offer with a kept id is dropped, as the JSON would skip it.
                    let mut unique: Vec<Offer> = Vec::new();
                    for offer in offers {
                        if !unique.iter().any(|kept| kept.id == offer.id) {
                            unique.push(offer);
                        }
                    }
                    Policy {
                        currency: Currency::from_code(currency).unwrap(),
                        strategy,
                        guard: Guard {
                            min_line_margin_bps: line,
                            min_order_margin_bps: order,
                            assumed_stack_bps: stack,
                            unknown_cost,
                        },
                        holdout,
                        offers: unique,
                    }
                },
            )
    }

    /// Numbers at and around every bound a compiled field has.
    const EDGES: [&str; 13] = [
        "0",
        "1",
        "99",
        "10000",
        "10001",
        "100000",
        "100001",
        "4294967295",
        "4294967296",
        "9223372036854775807",
        "9223372036854775808",
        "18446744073709551615",
        "18446744073709551621",
    ];

    /// One edit of the compiled text after its fingerprint (`from`): a byte replaced, bytes
    /// removed, or text inserted.
    fn edit(text: &str, from: usize, choice: (u8, usize, char)) -> String {
        let (kind, seed, character) = choice;
        let body = text.len() - from;
        let mut at = from + seed % body.max(1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        let (head, tail) = text.split_at(at);
        let mut rest = tail.chars();
        match kind % 3 {
            0 => {
                rest.next();
                format!("{head}{character}{}", rest.as_str())
            }
            1 => {
                for _ in 0..=(seed % 7) {
                    rest.next();
                }
                format!("{head}{}", rest.as_str())
            }
            _ => format!("{head}{character}{tail}"),
        }
    }

    /// Where the number fields are: digits between two commas, after `from`.
    fn number_fields(text: &str, from: usize) -> Vec<(usize, usize)> {
        let commas: Vec<usize> = text.match_indices(',').map(|(at, _)| at).collect();
        commas
            .windows(2)
            .map(|pair| (pair[0] + 1, pair[1]))
            .filter(|&(a, b)| a >= from && a < b && text[a..b].bytes().all(|c| c.is_ascii_digit()))
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any policy the JSON reader accepts without a reason compiles, and the compiled form
        /// gives back exactly that policy.
        #[test]
        fn compiled_policies_decode_to_what_the_json_gives(policy in policy()) {
            let json = to_json(&policy);
            let parsed = super::super::parse(&json);
            prop_assert!(parsed.reasons.is_empty(), "{:?}", parsed.reasons);
            prop_assert_eq!(parsed.policy.as_ref(), Some(&policy));
            let compiled = compile(&json).map_err(|r| TestCaseError::fail(format!("{r:?}")))?;
            prop_assert_eq!(decode(&compiled, &json), Ok(policy.clone()));
            // The same policy with an id repeated is one the JSON reader would cut short.
            if policy.offers.len() >= 2 {
                let mut repeated = policy;
                repeated.offers[1].id = repeated.offers[0].id.clone();
                prop_assert!(decode(&encode(&repeated, &json), &json).is_err());
            }
        }

        /// An edited compiled text never panics, and whatever it still decodes to is a policy
        /// the JSON reader accepts whole: the compiled path lets nothing through the JSON would not.
        #[test]
        fn edited_compiled_policies_hold_the_json_rules(
            policy in policy(),
            edits in proptest::collection::vec(
                (any::<u8>(), any::<usize>(), prop_oneof![
                    Just(','), Just(':'), Just('-'), Just('9'), Just('0'), Just('a'), Just('é'),
                    any::<char>(),
                ]),
                1..4,
            ),
        ) {
            let json = to_json(&policy);
            let compiled = compile(&json).map_err(|r| TestCaseError::fail(format!("{r:?}")))?;
            let header = compiled.find(policy.currency.code_str()).unwrap_or(0);
            let mut text = compiled.clone();
            for choice in edits {
                text = edit(&text, header, choice);
            }
            if let Ok(decoded) = decode(&text, &json) {
                let again = super::super::parse(&to_json(&decoded));
                prop_assert!(again.reasons.is_empty(), "{text}: {:?}", again.reasons);
                prop_assert_eq!(again.policy, Some(decoded));
            }
        }

        /// Every number field at every edge value: what still decodes keeps the JSON rules.
        #[test]
        fn number_fields_at_their_edges_hold_the_json_rules(policy in policy()) {
            let json = to_json(&policy);
            let compiled = compile(&json).map_err(|r| TestCaseError::fail(format!("{r:?}")))?;
            let header = compiled.find(policy.currency.code_str()).unwrap_or(0);
            for (a, b) in number_fields(&compiled, header) {
                for value in EDGES {
                    let text = format!("{}{value}{}", &compiled[..a], &compiled[b..]);
                    if let Ok(decoded) = decode(&text, &json) {
                        let again = super::super::parse(&to_json(&decoded));
                        prop_assert!(again.reasons.is_empty(), "{text}: {:?}", again.reasons);
                        prop_assert_eq!(again.policy, Some(decoded));
                    }
                }
            }
        }
    }
}
