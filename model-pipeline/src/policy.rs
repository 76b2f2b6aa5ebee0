//! The discount's metafields for a merchant policy: the JSON and its compiled form.
//!
//! The discount Function reads `$app.policy_compiled` instead of parsing the JSON when it was
//! compiled from exactly the JSON stored beside it (see `marginwise_engine::policy::compiled`).
//! Both are therefore written together, from one text, because the compiled form's fingerprint
//! covers the exact bytes of the JSON beside it. That text is the policy compacted (see
//! [`stored_text`]), not the file as it is laid out.

use std::fmt;

use marginwise_engine::policy::compiled;
use marginwise_engine::{Reason, format};
use serde_json::{Value, json};

/// A policy that cannot be compiled: the reasons the engine gives for it.
#[derive(Debug)]
pub struct PolicyError {
    pub reasons: Vec<Reason>,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the policy does not compile; fix these first:")?;
        for reason in &self.reasons {
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

/// The `metafields` argument of `discountAutomaticAppCreate` / `discountAutomaticAppUpdate` (and
/// the code variants) that sets this policy: the JSON and its compiled form.
pub fn policy_metafields(policy_json: &str) -> Result<Value, PolicyError> {
    // Checked as written, so that every reason names what the merchant wrote.
    let as_written = compiled::compile(policy_json).map_err(|reasons| PolicyError { reasons })?;
    let (stored, compiled) = stored_text(policy_json, as_written);
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
    fn a_policy_with_a_skipped_offer_names_it() {
        let policy = SAMPLE_POLICY.replacen("\"bps\": 1000", "\"bps\": 100000", 1);
        let error = policy_metafields(&policy).unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("offers[0].reward.bps") && text.contains("offer_malformed"),
            "{text}"
        );
    }

    #[test]
    fn an_unreadable_policy_says_so() {
        let error = policy_metafields("{\"version\": 1,").unwrap_err();
        assert!(error.to_string().contains("policy_malformed"), "{error}");
    }
}
