//! The discount's metafields for a merchant policy: the JSON and its compiled form.
//!
//! The discount Function reads `$app.policy_compiled` instead of parsing the JSON when it was
//! compiled from exactly the JSON stored beside it (see `marginwise_engine::policy::compiled`).
//! Both are therefore written together, from one text: the JSON value is the file's text as it
//! is, because the compiled form's fingerprint covers its exact bytes.

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
    let compiled = compiled::compile(policy_json).map_err(|reasons| PolicyError { reasons })?;
    Ok(json!([
        {
            "namespace": "$app",
            "key": format::POLICY_KEY,
            "type": "json",
            "value": policy_json,
        },
        {
            "namespace": "$app",
            "key": format::COMPILED_POLICY_KEY,
            "type": "single_line_text_field",
            "value": compiled,
        },
    ]))
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
        assert_eq!(metafields[0]["value"], SAMPLE_POLICY);
        assert_eq!(metafields[1]["key"], format::COMPILED_POLICY_KEY);
        let compiled = metafields[1]["value"].as_str().unwrap();
        let parsed = marginwise_engine::policy::parse(SAMPLE_POLICY);
        assert_eq!(
            compiled::decode(compiled, SAMPLE_POLICY),
            Ok(parsed.policy.unwrap())
        );
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
