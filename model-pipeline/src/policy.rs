//! The discount's metafields for a merchant policy: the JSON and its compiled form.
//!
//! The discount Function reads `$app.policy_compiled` instead of parsing the JSON when it was
//! compiled from exactly the JSON stored beside it (see `marginwise_engine::policy::compiled`).
//! Both are therefore written together, from one text, because the compiled form's fingerprint
//! covers the exact bytes of the JSON beside it. That text is the policy compacted (see
//! [`stored_text`]), not the file as it is laid out.
//!
//! It also holds the one comparison of the discount policy's holdout with the cart transform's
//! ([`check_same_holdout`]), which `compile-bundles` and `measure` both make: the two Functions
//! split shoppers separately, so only equal holdouts keep a held-out shopper away from both.

use std::fmt;

use marginwise_engine::policy::{Holdout, compiled};
use marginwise_engine::{Currency, Reason, format};
use serde_json::{Value, json};

use crate::currency::{CurrencyError, shop_currency};

/// A policy that cannot be stored for a Function.
#[derive(Debug)]
pub enum PolicyError {
    /// It does not compile: the reasons the engine gives for it.
    Reasons(Vec<Reason>),
    /// It compiles, but Shopify would refuse a value, or a Function could not read all of it.
    NotStorable(String),
    /// Its `currency` is not a shop currency: the engine (and so the Functions) takes any three
    /// capital letters, and would read the policy's money with two decimals.
    Currency(CurrencyError),
}

/// Refuses a policy whose `currency` is not an ISO 4217 currency a shop sells in.
pub(crate) fn check_currency(currency: Currency) -> Result<(), PolicyError> {
    shop_currency(currency.code_str())
        .map(|_| ())
        .map_err(PolicyError::Currency)
}

/// The most bytes of one metafield value a Function reads.
pub const MAX_FUNCTION_VALUE_BYTES: usize = 10_000;

/// Whether the stored JSON and its compiled form (a single-line text) can be written and read in
/// full by a Function.
pub(crate) fn storable(stored_json: &str, compiled: &str) -> Result<(), PolicyError> {
    for (key, text) in [
        (format::POLICY_KEY, stored_json),
        (format::COMPILED_POLICY_KEY, compiled),
    ] {
        if text.len() > MAX_FUNCTION_VALUE_BYTES {
            return Err(PolicyError::NotStorable(format!(
                "$app.{key} would be {} bytes; a Function reads at most \
                 {MAX_FUNCTION_VALUE_BYTES} bytes of a metafield (shorten messages or the \
                 holdout salt, or use fewer offers)",
                text.len()
            )));
        }
    }
    if let Some(at) = compiled.find(char::is_control) {
        return Err(PolicyError::NotStorable(format!(
            "a message, offer id or the holdout salt holds a control character (a line break, a \
             tab, ...; byte {at} of $app.{}): Shopify stores the compiled policy as single-line \
             text, and a checkout message shows on one line",
            format::COMPILED_POLICY_KEY
        )));
    }
    Ok(())
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reasons = match self {
            PolicyError::Reasons(reasons) => reasons,
            PolicyError::NotStorable(why) => {
                return write!(f, "the policy cannot be stored: {why}");
            }
            PolicyError::Currency(error) => {
                return write!(
                    f,
                    "the policy does not name a shop currency; fix this first:\n  currency: {error}"
                );
            }
        };
        f.write_str("the policy does not compile; fix these first:")?;
        for reason in reasons {
            let subject = if reason.subject.is_empty() {
                "(document)"
            } else {
                &reason.subject
            };
            write!(
                f,
                "\n  {subject}: {} ({})",
                reason.detail,
                reason.code.code()
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyError {}

/// The `holdout` of a discount (offers) policy JSON, read by the engine's own parser; `None` when
/// the policy has none. A policy the engine cannot read gives the reasons `compile-policy` gives.
pub fn offers_policy_holdout(policy_json: &str) -> Result<Option<Holdout>, PolicyError> {
    let parsed = marginwise_engine::policy::parse(policy_json);
    match parsed.policy {
        Some(policy) => Ok(policy.holdout),
        None => Err(PolicyError::Reasons(parsed.reasons)),
    }
}

/// A policy's holdout and the file it was read from, for [`check_same_holdout`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyHoldout {
    pub file: String,
    pub holdout: Option<Holdout>,
}

impl PolicyHoldout {
    /// The holdout the Functions apply ([`Holdout::applied`]).
    fn applied(&self) -> Option<&Holdout> {
        Holdout::applied(self.holdout.as_ref())
    }
}

impl fmt::Display for PolicyHoldout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.holdout, self.applied()) {
            (None, _) => f.write_str("no holdout"),
            (Some(_), None) => f.write_str("no holdout (share_bps 0)"),
            (_, Some(h)) => write!(f, "holdout share_bps {}, salt {:?}", h.share_bps, h.salt),
        }
    }
}

/// The discount policy and the bundle policy hold out different shoppers.
#[derive(Debug, thiserror::Error)]
#[error(
    "the holdouts differ: the offers policy {} has {}, the bundle policy {} has {}; shoppers held \
     out of offers would still get bundle discounts from the cart transform, and `marginwise \
     measure` would compare a contaminated holdout group. Give both policies the same `holdout` \
     (share_bps and salt), or leave it out of both",
    .offers.file, .offers, .bundle.file, .bundle
)]
pub struct HoldoutMismatch {
    pub offers: PolicyHoldout,
    pub bundle: PolicyHoldout,
}

/// Refuses a bundle policy whose holdout is not the offers policy's: both absent (a share of 0
/// counts as absent), or the same share and salt.
pub fn check_same_holdout(
    offers: PolicyHoldout,
    bundle: PolicyHoldout,
) -> Result<(), HoldoutMismatch> {
    // INVARIANT: the discount and the cart transform hold out the same shoppers, which holds only
    // when both gates see the same share and salt (or neither sees a holdout).
    if offers.applied() == bundle.applied() {
        Ok(())
    } else {
        Err(HoldoutMismatch { offers, bundle })
    }
}

/// The `metafields` argument of `discountAutomaticAppCreate` / `discountAutomaticAppUpdate` (and
/// the code variants) that sets this policy: the JSON and its compiled form.
pub fn policy_metafields(policy_json: &str) -> Result<Value, PolicyError> {
    // Checked as written, so that every reason names what the merchant wrote.
    let as_written = compiled::compile(policy_json).map_err(PolicyError::Reasons)?;
    if let Some(policy) = marginwise_engine::policy::parse(policy_json).policy {
        check_currency(policy.currency)?;
    }
    let (stored, compiled) = stored_text(policy_json, as_written);
    storable(&stored, &compiled)?;
    Ok(json!([
        {
            "namespace": "$app",
            "key": format::POLICY_KEY,
            "type": "json",
            "value": stored,
        },
        {
            "namespace": "$app",
            "key": format::COMPILED_POLICY_KEY,
            "type": "single_line_text_field",
            "value": compiled,
        },
    ]))
}

/// The policy text as it is stored, with its compiled form (`as_written` is the policy file's):
/// no whitespace between tokens, keys in the file's order, so `{"version": 1, ...}` laid out over
/// many lines is stored as `{"version":1,...}`.
///
/// Whether Shopify hands a `json` metafield back to a Function byte for byte as it was written
/// has not been verified here. If it re-serializes the value, compact text with its keys in place
/// is the form most likely to come back unchanged; if it does not, compact text is just as good
/// and fewer bytes to read and hash on every run. A text whose compact form would not compile to
/// the same policy (which no policy that compiles should have) is stored as it is.
fn stored_text(policy_json: &str, as_written: String) -> (String, String) {
    stored_compiled(
        policy_json,
        as_written,
        |json| compiled::compile(json).ok(),
        |compiled_text, json| compiled::decode(compiled_text, json).ok(),
    )
}

/// [`stored_text`] for any compiled policy format: `compile` a JSON text, `decode` a compiled
/// text against its JSON (`None` when it is not usable).
pub(crate) fn stored_compiled<P: PartialEq>(
    policy_json: &str,
    as_written: String,
    compile: impl Fn(&str) -> Option<String>,
    decode: impl Fn(&str, &str) -> Option<P>,
) -> (String, String) {
    let compact = serde_json::from_str::<Value>(policy_json).map(|value| value.to_string());
    if let Ok(compact) = compact
        && let Some(compiled) = compile(&compact)
        && let Some(policy) = decode(&compiled, &compact)
        && decode(&as_written, policy_json) == Some(policy)
    {
        return (compact, compiled);
    }
    (policy_json.to_string(), as_written)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::demo::SAMPLE_POLICY;

    #[test]
    fn the_sample_policy_compiles_to_what_the_json_says() {
        let metafields = policy_metafields(SAMPLE_POLICY).unwrap();
        assert_eq!(metafields[0]["key"], "policy");
        let stored = metafields[0]["value"].as_str().unwrap();
        assert_eq!(metafields[1]["key"], format::COMPILED_POLICY_KEY);
        let compiled = metafields[1]["value"].as_str().unwrap();
        let parsed = marginwise_engine::policy::parse(SAMPLE_POLICY);
        assert_eq!(
            compiled::decode(compiled, stored),
            Ok(parsed.policy.unwrap())
        );
        // The stored JSON is the sample without its layout, keys in the sample's order.
        assert!(
            !stored.contains('\n') && !stored.contains("\": "),
            "{stored}"
        );
        assert!(stored.starts_with("{\"version\":1,"), "{stored}");
        assert!(SAMPLE_POLICY.len() > stored.len());
        // ... and it is the sample the compiled form refuses to stand for.
        assert!(compiled::decode(compiled, SAMPLE_POLICY).is_err());
    }

    #[test]
    fn a_policy_shopify_could_not_store_or_a_function_not_read_is_refused() {
        // A line break in a message: the compiled policy is single-line text.
        let policy = SAMPLE_POLICY.replacen("\"message\": \"", "\"message\": \"Line\\nbreak ", 1);
        assert!(policy.contains("Line\\nbreak"), "the sample has no message");
        let text = policy_metafields(&policy).unwrap_err().to_string();
        assert!(text.contains("control character"), "{text}");
        // A salt so long the JSON would not be read in full by the Function.
        let long = format!(
            r#"{{"version": 1, "currency": "USD", "holdout": {{"share_bps": 100, "salt": "{}"}}, "offers": []}}"#,
            "s".repeat(MAX_FUNCTION_VALUE_BYTES)
        );
        let text = policy_metafields(&long).unwrap_err().to_string();
        assert!(
            text.contains("$app.policy would be") && text.contains("at most 10000 bytes"),
            "{text}"
        );
        // Just under the limit is fine.
        let fits = long.replace(&"s".repeat(MAX_FUNCTION_VALUE_BYTES), &"s".repeat(4_000));
        assert!(policy_metafields(&fits).is_ok());
    }

    #[test]
    fn a_policy_with_a_skipped_offer_names_it() {
        let policy = SAMPLE_POLICY.replacen("\"bps\": 1000", "\"bps\": 100000", 1);
        let error = policy_metafields(&policy).unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("offers[0].reward.bps") && text.contains("offer_malformed"),
            "{text}"
        );
    }

    /// Regression (audit: `"currency": "QQQ"` compiled, and the Functions would have read the
    /// policy's money as cents of a currency that does not exist).
    #[test]
    fn a_policy_in_no_shop_currency_is_refused() {
        for (code, why) in [
            ("QQQ", "\"QQQ\" is not an ISO 4217 currency code"),
            ("XAU", "\"XAU\" is the ISO 4217 code of Gold"),
            ("CLF", "\"CLF\" is an ISO 4217 fund code"),
        ] {
            let policy = SAMPLE_POLICY.replacen(
                "\"currency\": \"USD\"",
                &format!("\"currency\": \"{code}\""),
                1,
            );
            assert!(policy.contains(code), "the sample has no currency");
            let text = policy_metafields(&policy).unwrap_err().to_string();
            assert!(
                text.contains("does not name a shop currency")
                    && text.contains(&format!("currency: {why}")),
                "{text}"
            );
        }
        let policy = SAMPLE_POLICY.replacen("\"currency\": \"USD\"", "\"currency\": \"JPY\"", 1);
        assert!(policy_metafields(&policy).is_ok());
    }

    fn holdout(share_bps: i64, salt: &str) -> Option<Holdout> {
        Some(Holdout {
            share_bps,
            salt: salt.into(),
        })
    }

    /// Compares the holdouts, as read from `offers.json` and `bundle-policy.json`.
    fn compare(offers: Option<Holdout>, bundle: Option<Holdout>) -> Result<(), String> {
        check_same_holdout(
            PolicyHoldout {
                file: "offers.json".into(),
                holdout: offers,
            },
            PolicyHoldout {
                file: "bundle-policy.json".into(),
                holdout: bundle,
            },
        )
        .map_err(|error| error.to_string())
    }

    #[test]
    fn equal_holdouts_pass() {
        assert_eq!(compare(holdout(1_000, "q4"), holdout(1_000, "q4")), Ok(()));
        assert_eq!(compare(None, None), Ok(()));
    }

    #[test]
    fn a_different_salt_is_refused_naming_both_values_and_files() {
        let text = compare(holdout(1_000, "q4"), holdout(1_000, "q3")).unwrap_err();
        assert!(
            text.contains(
                "the offers policy offers.json has holdout share_bps 1000, salt \"q4\", the \
                 bundle policy bundle-policy.json has holdout share_bps 1000, salt \"q3\""
            ),
            "{text}"
        );
        assert!(text.contains("contaminated"), "{text}");
    }

    #[test]
    fn a_different_share_is_refused() {
        let text = compare(holdout(1_000, "q4"), holdout(500, "q4")).unwrap_err();
        assert!(
            text.contains("offers.json has holdout share_bps 1000")
                && text.contains("bundle-policy.json has holdout share_bps 500"),
            "{text}"
        );
    }

    #[test]
    fn a_holdout_on_one_side_only_is_refused() {
        let text = compare(holdout(1_000, "q4"), None).unwrap_err();
        assert!(
            text.contains("bundle policy bundle-policy.json has no holdout;"),
            "{text}"
        );
        let text = compare(None, holdout(1_000, "q4")).unwrap_err();
        assert!(
            text.contains("offers policy offers.json has no holdout,"),
            "{text}"
        );
        // A zero share is no holdout, so it does not stand in for a real one either.
        let text = compare(holdout(0, "q4"), holdout(1_000, "q4")).unwrap_err();
        assert!(text.contains("has no holdout (share_bps 0),"), "{text}");
    }

    /// The engine's gate applies no holdout for a share of 0, whatever the salt.
    #[test]
    fn a_zero_share_is_the_same_as_no_holdout() {
        assert_eq!(compare(holdout(0, "q4"), None), Ok(()));
        assert_eq!(compare(None, holdout(0, "")), Ok(()));
        assert_eq!(compare(holdout(0, "q4"), holdout(0, "other")), Ok(()));
    }

    /// The samples (README, demo) are the policies a merchant starts from: they must agree.
    #[test]
    fn the_sample_policies_hold_out_the_same_shoppers() {
        let offers = offers_policy_holdout(SAMPLE_POLICY).unwrap();
        let bundle =
            marginwise_engine::bundle::parse_bundle_policy(crate::demo::SAMPLE_BUNDLE_POLICY)
                .policy
                .unwrap()
                .holdout;
        assert!(offers.as_ref().is_some_and(|h| h.share_bps > 0));
        assert_eq!(compare(offers, bundle), Ok(()));
    }

    #[test]
    fn an_unreadable_offers_policy_gives_the_engines_reasons() {
        let text = offers_policy_holdout("{\"version\": 1,")
            .unwrap_err()
            .to_string();
        assert!(
            text.starts_with("the policy does not compile; fix these first:")
                && text.contains("policy_malformed"),
            "{text}"
        );
        let none = r#"{"version": 1, "currency": "USD", "offers": []}"#;
        assert_eq!(offers_policy_holdout(none).unwrap(), None);
    }

    #[test]
    fn an_unreadable_policy_says_so() {
        let error = policy_metafields("{\"version\": 1,").unwrap_err();
        assert!(error.to_string().contains("policy_malformed"), "{error}");
    }
}
