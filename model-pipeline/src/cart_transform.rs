//! The cart transform's metafields: the bundle policy (JSON and compiled form) and the bundle
//! definitions (`$app.bundles`, checked), from the files a merchant writes.
//!
//! The definitions file lists each bundle parent variant with its components:
//!
//! ```json
//! { "bundles": [
//!     { "parent": "gid://shopify/ProductVariant/900",
//!       "components": [
//!         { "variant": "gid://shopify/ProductVariant/11", "quantity": 1, "weight": 60 },
//!         { "variant": 12, "weight": 40 } ] } ] }
//! ```
//!
//! Variants are ProductVariant GIDs or their numeric part. `quantity` (units per bundle, default 1)
//! and `weight` (the price share of one unit when a parent sold as one line is expanded, default
//! 1: equal shares per unit) follow the limits of `marginwise_engine::format`. The list is stored
//! checked (with its index and fingerprint), which lets a small cart look up only the bundles it
//! mentions (a list too long for its index beside it is stored plain, with a note); a list the
//! cart transform would skip a bundle of is refused here, naming every bundle and why.
//!
//! `marginwise score --bundles FILE` reads the same file ([`bundle_parents`]) and writes each
//! parent variant's `$app.offer` with the bundle-parent flag, which the discount Function needs to
//! keep slot offers off bundle parents; the flag and the cart transform's list come from one file,
//! checked the same way.
//!
//! `compile-bundles --offers-policy FILE` also refuses a bundle policy whose holdout is not the
//! discount policy's (see `crate::policy::check_same_holdout`).

use std::fmt;

use marginwise_engine::bundle::{VARIANT_GID_PREFIX, compiled, parse_bundle_policy};
use marginwise_engine::format::{
    self, BundleComponent, BundleDefinition, FormatError, MAX_BUNDLE_COMPONENT_QUANTITY,
    MAX_BUNDLE_COMPONENTS, MAX_BUNDLE_WEIGHT, MAX_FUNCTION_METAFIELD_BYTES,
};
use marginwise_engine::policy::Holdout;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::policy::{PolicyError, check_currency, stored_compiled};

/// A bundle definitions file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleFile {
    pub bundles: Vec<BundleEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleEntry {
    pub parent: VariantRef,
    pub components: Vec<ComponentEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentEntry {
    pub variant: VariantRef,
    #[serde(default = "one")]
    pub quantity: i64,
    #[serde(default = "one")]
    pub weight: i64,
}

fn one() -> i64 {
    1
}

/// A variant as the merchant names it: its GID or the GID's number.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum VariantRef {
    Number(u64),
    Gid(String),
}

/// What is wrong with the definitions, each problem with where it is.
#[derive(Debug)]
pub struct BundlesError {
    pub problems: Vec<String>,
}

impl fmt::Display for BundlesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the bundle definitions cannot be stored; fix these first:")?;
        for problem in &self.problems {
            write!(f, "\n  {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for BundlesError {}

/// Why the cart transform's metafields could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CartTransformError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Bundles(#[from] BundlesError),
}

impl BundleFile {
    /// Reads a definitions file's text; a JSON error names the path where it is.
    pub fn parse(text: &str) -> Result<BundleFile, BundlesError> {
        let deserializer = &mut serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(deserializer).map_err(|error| BundlesError {
            problems: vec![format!("{}: {}", error.path(), error.inner())],
        })
    }

    /// The definitions, or every id that is not a product variant.
    pub fn definitions(&self) -> Result<Vec<BundleDefinition>, BundlesError> {
        let mut problems = Vec::new();
        let mut id = |variant: &VariantRef, path: String| match variant_id(variant) {
            Some(id) => id,
            None => {
                problems.push(format!(
                    "{path}: not a product variant id ({VARIANT_GID_PREFIX}<number> or the number)"
                ));
                0
            }
        };
        let definitions = self
            .bundles
            .iter()
            .enumerate()
            .map(|(index, bundle)| BundleDefinition {
                parent_variant_id: id(&bundle.parent, format!("bundles[{index}].parent")),
                components: bundle
                    .components
                    .iter()
                    .enumerate()
                    .map(|(position, component)| BundleComponent {
                        variant_id: id(
                            &component.variant,
                            format!("bundles[{index}].components[{position}].variant"),
                        ),
                        quantity: component.quantity,
                        weight: component.weight,
                    })
                    .collect(),
            })
            .collect();
        if problems.is_empty() {
            Ok(definitions)
        } else {
            Err(BundlesError { problems })
        }
    }
}

fn variant_id(variant: &VariantRef) -> Option<u64> {
    let id = match variant {
        VariantRef::Number(id) => *id,
        VariantRef::Gid(gid) => {
            let digits = gid.strip_prefix(VARIANT_GID_PREFIX)?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            digits.parse().ok()?
        }
    };
    (id > 0).then_some(id)
}

/// The parent variant ids of a definitions file's bundles, for `score --bundles`: their
/// `$app.offer` is flagged as a bundle parent. A file `compile-bundles` would refuse is refused
/// here too, with the same problems, so the flags always describe the bundles the cart transform
/// can hold.
pub fn bundle_parents(text: &str) -> Result<Vec<u64>, BundlesError> {
    let definitions = BundleFile::parse(text)?.definitions()?;
    bundles_value(&definitions)?;
    Ok(definitions
        .iter()
        .map(|bundle| bundle.parent_variant_id)
        .collect())
}

/// The checked `$app.bundles` value of `definitions`, refused when the cart transform would skip
/// any bundle in it (each named with its position, parent and reason) or when it is too long for
/// a Function to read.
pub fn bundles_value(definitions: &[BundleDefinition]) -> Result<String, BundlesError> {
    let value = format::encode_checked_bundles(definitions).map_err(|skipped| BundlesError {
        problems: skipped
            .iter()
            .map(|(index, error)| {
                let parent = definitions
                    .get(*index)
                    .map_or(0, |bundle| bundle.parent_variant_id);
                format!("bundles[{index}] (parent {parent}): {}", explain(error))
            })
            .collect(),
    })?;
    if value.len() > MAX_FUNCTION_METAFIELD_BYTES {
        return Err(BundlesError {
            problems: vec![format!(
                "{} bundles take {} bytes; a Function reads at most {MAX_FUNCTION_METAFIELD_BYTES} \
                 of a metafield (a longer value reaches it as null)",
                definitions.len(),
                value.len()
            )],
        });
    }
    Ok(value)
}

/// Why the cart transform would skip a bundle, in the merchant's terms.
fn explain(error: &FormatError) -> String {
    let FormatError::BadField { field } = error else {
        return error.to_string();
    };
    match *field {
        "quantity" => format!("a component quantity outside 1..={MAX_BUNDLE_COMPONENT_QUANTITY}"),
        "weight" => format!("a component weight outside 1..={MAX_BUNDLE_WEIGHT}"),
        "components" => format!("more than {MAX_BUNDLE_COMPONENTS} components"),
        "units" => "fewer than two units in all: a bundle of one unit is that unit".to_string(),
        "duplicate_component" => "a component variant listed twice".to_string(),
        "duplicate_parent" => "this parent already has a bundle earlier in the list".to_string(),
        "nested" => {
            "a parent that is also a component (of this bundle or of another one)".to_string()
        }
        _ => error.to_string(),
    }
}

/// The `metafields` argument of `cartTransformCreate` (or the values of `metafieldsSet` on an
/// existing cart transform): the bundle policy as stored JSON with its compiled form, and the
/// checked bundle definitions when there are any.
pub fn cart_transform_metafields(
    policy_json: &str,
    definitions: Option<&[BundleDefinition]>,
) -> Result<Value, CartTransformError> {
    let as_written = compiled::compile(policy_json).map_err(PolicyError::Reasons)?;
    if let Some(policy) = parse_bundle_policy(policy_json).policy {
        check_currency(policy.currency)?;
    }
    let (stored, compiled_text) = stored_compiled(
        policy_json,
        as_written,
        |json| compiled::compile(json).ok(),
        |compiled_text, json| compiled::decode(compiled_text, json).ok(),
    );
    crate::policy::storable(&stored, &compiled_text)?;
    let mut metafields = vec![
        json!({
            "namespace": "$app",
            "key": format::POLICY_KEY,
            "type": "json",
            "value": stored,
        }),
        json!({
            "namespace": "$app",
            "key": format::COMPILED_POLICY_KEY,
            "type": "single_line_text_field",
            "value": compiled_text,
        }),
    ];
    if let Some(definitions) = definitions {
        metafields.push(json!({
            "namespace": "$app",
            "key": format::BUNDLES_KEY,
            "type": "single_line_text_field",
            "value": bundles_value(definitions)?,
        }));
    }
    Ok(Value::Array(metafields))
}

/// The `holdout` of a bundle policy JSON, read by the engine's own parser; `None` when the policy
/// has none. A policy the engine cannot read gives the reasons `compile-bundles` gives.
pub fn bundle_policy_holdout(policy_json: &str) -> Result<Option<Holdout>, PolicyError> {
    let parsed = parse_bundle_policy(policy_json);
    match parsed.policy {
        Some(policy) => Ok(policy.holdout),
        None => Err(PolicyError::Reasons(parsed.reasons)),
    }
}

/// What the merchant should know about the `$app.bundles` value among `metafields`: a list
/// that left no room for its index beside it is written plain, which the cart transform reads
/// whole on every run (the same decisions, for more instructions on a small cart).
pub fn bundles_note(metafields: &Value) -> Option<String> {
    let value = metafields
        .as_array()?
        .iter()
        .find(|m| m.get("key").and_then(Value::as_str) == Some(format::BUNDLES_KEY))?
        .get("value")?
        .as_str()?;
    (!format::is_checked(value)).then(|| {
        format!(
            "the bundle list takes {} of the {MAX_FUNCTION_METAFIELD_BYTES} bytes a Function \
             reads, which leaves no room for its index: it is stored plain, and the cart \
             transform reads all of it on every run (same decisions, more instructions on small \
             carts). Fewer bundles restore the index.",
            value.len()
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::demo::SAMPLE_BUNDLE_POLICY;

    const FILE: &str = r#"{"bundles": [
        {"parent": "gid://shopify/ProductVariant/900",
         "components": [{"variant": "gid://shopify/ProductVariant/11", "quantity": 2, "weight": 60},
                        {"variant": 12}]},
        {"parent": 901, "components": [{"variant": 13, "weight": 5}, {"variant": 14}]}
    ]}"#;

    #[test]
    fn a_definitions_file_becomes_the_checked_list_the_function_reads() {
        let definitions = BundleFile::parse(FILE).unwrap().definitions().unwrap();
        assert_eq!(definitions.len(), 2);
        assert_eq!(
            definitions[0].components[0],
            BundleComponent {
                variant_id: 11,
                quantity: 2,
                weight: 60
            }
        );
        // Defaults: one unit, weight one.
        assert_eq!(
            definitions[0].components[1],
            BundleComponent {
                variant_id: 12,
                quantity: 1,
                weight: 1
            }
        );
        let value = bundles_value(&definitions).unwrap();
        assert!(format::is_checked(&value), "{value}");
        assert_eq!(format::decode_bundles(&value).unwrap().bundles, definitions);
    }

    #[test]
    fn a_list_too_long_for_its_index_is_stored_plain_with_a_note() {
        let bundles = |n: u64| -> Vec<BundleDefinition> {
            (0..n)
                .map(|i| {
                    let base = 44_812_345_000_000 + i * 10;
                    BundleDefinition {
                        parent_variant_id: base,
                        components: (1..=3)
                            .map(|c| BundleComponent {
                                variant_id: base + c,
                                quantity: 1,
                                weight: 30,
                            })
                            .collect(),
                    }
                })
                .collect()
        };
        let note = |definitions: &[BundleDefinition]| {
            bundles_note(
                &cart_transform_metafields(SAMPLE_BUNDLE_POLICY, Some(definitions)).unwrap(),
            )
        };
        assert_eq!(note(&bundles(40)), None);
        let many = bundles(120);
        let value = bundles_value(&many).unwrap();
        assert!(!format::is_checked(&value));
        assert_eq!(format::decode_bundles(&value).unwrap().bundles, many);
        let text = note(&many).unwrap();
        assert!(text.contains("no room for its index"), "{text}");
        assert!(text.contains(&value.len().to_string()), "{text}");
    }

    #[test]
    fn the_metafields_hold_the_policy_its_compiled_form_and_the_list() {
        let definitions = BundleFile::parse(FILE).unwrap().definitions().unwrap();
        let metafields =
            cart_transform_metafields(SAMPLE_BUNDLE_POLICY, Some(&definitions)).unwrap();
        let keys: Vec<&str> = metafields
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["key"].as_str().unwrap())
            .collect();
        assert_eq!(keys, ["policy", "policy_compiled", "bundles"]);
        let stored = metafields[0]["value"].as_str().unwrap();
        let compiled_text = metafields[1]["value"].as_str().unwrap();
        assert!(!stored.contains('\n'), "{stored}");
        assert_eq!(
            compiled::decode(compiled_text, stored).ok(),
            parse_bundle_policy(SAMPLE_BUNDLE_POLICY).policy
        );
        let without = cart_transform_metafields(SAMPLE_BUNDLE_POLICY, None).unwrap();
        assert_eq!(without.as_array().unwrap().len(), 2);
    }

    #[test]
    fn every_problem_is_named_with_where_it_is() {
        let error = BundleFile::parse(
            r#"{"bundles": [{"parent": 1, "components": [{"variant": 2, "qty": 1}]}]}"#,
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("bundles[0].components[0]"),
            "{error}"
        );
        let file = BundleFile::parse(
            r#"{"bundles": [{"parent": "gid://shopify/Product/1", "components": [{"variant": 2}]},
                            {"parent": 3, "components": [{"variant": "gid://shopify/ProductVariant/x"}]}]}"#,
        )
        .unwrap();
        let error = file.definitions().unwrap_err();
        assert_eq!(error.problems.len(), 2, "{error}");
        assert!(
            error.problems[0].starts_with("bundles[0].parent:"),
            "{error}"
        );
        assert!(
            error.problems[1].starts_with("bundles[1].components[0].variant:"),
            "{error}"
        );
        // The cart transform would skip every bundle after the first: each is named, with why.
        let file = BundleFile::parse(
            r#"{"bundles": [{"parent": 5, "components": [{"variant": 6, "quantity": 2}]},
                            {"parent": 5, "components": [{"variant": 7, "quantity": 2}]},
                            {"parent": 8, "components": [{"variant": 9, "quantity": 1000}]},
                            {"parent": 10, "components": [{"variant": 11}]},
                            {"parent": 12, "components": [{"variant": 5}, {"variant": 13}]}]}"#,
        )
        .unwrap();
        let error = bundles_value(&file.definitions().unwrap()).unwrap_err();
        let expected = [
            "bundles[1] (parent 5): this parent already has a bundle earlier in the list",
            "bundles[2] (parent 8): a component quantity outside 1..=100",
            "bundles[3] (parent 10): fewer than two units in all: a bundle of one unit is that unit",
            "bundles[4] (parent 12): a parent that is also a component (of this bundle or of another one)",
        ];
        assert_eq!(error.problems, expected, "{error}");
    }

    #[test]
    fn a_list_too_long_for_a_function_is_refused() {
        let definitions: Vec<BundleDefinition> = (0..400)
            .map(|n| BundleDefinition {
                parent_variant_id: 44_100_001_000_000 + n,
                components: (0..3)
                    .map(|c| BundleComponent {
                        variant_id: 44_100_000_000_000 + n * 3 + c,
                        quantity: 1,
                        weight: 10,
                    })
                    .collect(),
            })
            .collect();
        let error = bundles_value(&definitions).unwrap_err();
        assert!(error.to_string().contains("at most 10000"), "{error}");
    }

    /// Regression (audit: a bundle policy with `"currency": "QQQ"` compiled).
    #[test]
    fn a_bundle_policy_in_no_shop_currency_is_refused() {
        let policy =
            SAMPLE_BUNDLE_POLICY.replacen("\"currency\": \"USD\"", "\"currency\": \"QQQ\"", 1);
        assert!(policy.contains("QQQ"), "the sample has no currency");
        let error = cart_transform_metafields(&policy, None)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("currency: \"QQQ\" is not an ISO 4217 currency code"),
            "{error}"
        );
        let policy =
            SAMPLE_BUNDLE_POLICY.replacen("\"currency\": \"USD\"", "\"currency\": \"KWD\"", 1);
        assert!(cart_transform_metafields(&policy, None).is_ok());
    }

    #[test]
    fn the_bundle_policys_holdout_is_the_engines_reading() {
        let holdout = bundle_policy_holdout(SAMPLE_BUNDLE_POLICY)
            .unwrap()
            .unwrap();
        assert_eq!(
            (holdout.share_bps, holdout.salt.as_str()),
            (1_000, "sample-2026")
        );
        let none = r#"{"version": 1, "currency": "USD"}"#;
        assert_eq!(bundle_policy_holdout(none).unwrap(), None);
        let text = bundle_policy_holdout("{").unwrap_err().to_string();
        assert!(text.contains("policy_malformed"), "{text}");
    }

    #[test]
    fn an_unusable_policy_names_its_path() {
        let error = cart_transform_metafields(
            r#"{"version": 1, "currency": "USD", "line_update": 1}"#,
            None,
        )
        .unwrap_err();
        assert!(error.to_string().contains("line_update"), "{error}");
    }
}
