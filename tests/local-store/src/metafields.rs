//! Metafields held in memory: `metafieldsSet` (atomic, validated, compare-and-set) and
//! `metafieldsDelete`, with the write counters the fault tests read.
//!
//! Sources for the behaviour (Shopify Admin GraphQL 2026-04): the `metafieldsSet` reference (at
//! most 25 inputs, atomic, `compareDigest` compare-and-set where `null` means "must not exist
//! yet"), the `MetafieldsSetInput` field rules (key 2-64 and namespace 3-255 characters of
//! letters, digits, `-` and `_`; namespace omitted means the app-reserved one), and the metafield
//! limits page (64 KB for most types, 128 KB for `json` writes from 2026-04, 2 KB for `url`/`id`,
//! 128 items in a list type).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::data::{Kind, parse_gid};

/// Most metafield types accept values up to 64 KB.
pub const DEFAULT_VALUE_LIMIT: usize = 65_536;
/// `json` writes are limited to 128 KB from API version 2026-04 on.
pub const JSON_VALUE_LIMIT: usize = 131_072;
/// `url` and `id` values: 2 KB.
pub const SHORT_VALUE_LIMIT: usize = 2_048;
/// List types hold at most 128 items.
pub const LIST_ITEM_LIMIT: usize = 128;
/// At most 25 metafields in one `metafieldsSet` call.
pub const SET_BATCH_LIMIT: usize = 25;

/// One stored metafield.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetafieldRecord {
    pub id: u64,
    pub owner_id: String,
    #[serde(skip)]
    pub owner_kind: Option<Kind>,
    pub namespace: String,
    pub key: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
    pub compare_digest: String,
    pub created_at: String,
    pub updated_at: String,
}

impl MetafieldRecord {
    pub fn gid(&self) -> String {
        format!("gid://shopify/Metafield/{}", self.id)
    }
}

/// How many times each metafield was written, and how many of those writes repeated the value
/// already stored (a duplicate write: wasted API budget, and after a crash a sign of a replay).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteCount {
    pub owner_id: String,
    pub namespace: String,
    pub key: String,
    pub writes: u64,
    pub duplicate_writes: u64,
}

/// A `compareDigest` input: absent (no check), `null` (must not exist yet) or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompareDigest {
    Absent,
    Null,
    Digest(String),
}

/// One coerced `MetafieldsSetInput`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetInput {
    pub owner_id: String,
    pub namespace: Option<String>,
    pub key: String,
    pub kind: Option<String>,
    pub value: String,
    pub compare_digest: CompareDigest,
}

/// One coerced `MetafieldIdentifierInput`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteInput {
    pub owner_id: String,
    pub namespace: String,
    pub key: String,
}

/// A `userErrors` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserError {
    pub field: Vec<String>,
    pub message: String,
    pub code: Option<&'static str>,
    pub element_index: Option<usize>,
}

impl UserError {
    fn at(index: usize, field: &str, code: &'static str, message: impl Into<String>) -> UserError {
        UserError {
            field: vec![
                "metafields".to_string(),
                index.to_string(),
                field.to_string(),
            ],
            message: message.into(),
            code: Some(code),
            element_index: Some(index),
        }
    }
}

/// The app-reserved namespace: `$app` expands to `app--<app id>` and `$app:<sub>` to
/// `app--<app id>--<sub>`, as Shopify does for the calling app.
pub fn expand_namespace(namespace: &str, app_id: u64) -> String {
    if namespace == "$app" {
        format!("app--{app_id}")
    } else if let Some(sub) = namespace.strip_prefix("$app:") {
        format!("app--{app_id}--{sub}")
    } else {
        namespace.to_string()
    }
}

/// The digest `compareDigest` reports: SHA-256 of the type and value, hex. Shopify documents the
/// digest as opaque; clients must only echo it back.
pub fn digest(kind: &str, value: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(kind.as_bytes());
    hasher.update([0]);
    hasher.update(value.as_bytes());
    let bytes = hasher.finalize();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_digest_shaped(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn handle_chars_ok(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Types the stand-in validates. Others that Shopify supports (references, money, measurements,
/// rich text) are refused with a message saying so, rather than stored unchecked.
fn value_limit(kind: &str) -> Option<usize> {
    match kind {
        "json" => Some(JSON_VALUE_LIMIT),
        "url" | "id" => Some(SHORT_VALUE_LIMIT),
        "single_line_text_field"
        | "multi_line_text_field"
        | "boolean"
        | "number_integer"
        | "number_decimal"
        | "date"
        | "date_time"
        | "color"
        | "list.single_line_text_field"
        | "list.number_integer" => Some(DEFAULT_VALUE_LIMIT),
        _ => None,
    }
}

/// Checks a value against its type; `Err` is the user-facing reason.
fn check_value(kind: &str, value: &str) -> Result<(), String> {
    let is_integer = |text: &str| {
        text.parse::<i64>()
            .is_ok_and(|n| n.unsigned_abs() <= 9_007_199_254_740_991)
    };
    match kind {
        "single_line_text_field" if value.contains(['\n', '\r']) => {
            return Err("Value must be a single line text string.".to_string());
        }
        "json" => {
            serde_json::from_str::<Value>(value)
                .map_err(|e| format!("Value is invalid JSON: {e}."))?;
        }
        "boolean" if value != "true" && value != "false" => {
            return Err("Value must be true or false.".to_string());
        }
        "number_integer" if !is_integer(value) => {
            return Err("Value must be an integer.".to_string());
        }
        "number_decimal" => {
            let digits = value.strip_prefix('-').unwrap_or(value);
            let ok = !digits.is_empty()
                && digits.split('.').count() <= 2
                && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                && !digits.starts_with('.')
                && !digits.ends_with('.');
            if !ok {
                return Err("Value must be a decimal number.".to_string());
            }
        }
        "list.single_line_text_field" | "list.number_integer" => {
            let items: Vec<Value> = serde_json::from_str(value)
                .map_err(|_| "Value must be a JSON array.".to_string())?;
            if items.len() > LIST_ITEM_LIMIT {
                return Err(format!(
                    "Value has {} items, more than the maximum of {LIST_ITEM_LIMIT}.",
                    items.len()
                ));
            }
            for item in &items {
                let ok = if kind == "list.number_integer" {
                    item.as_i64().is_some_and(|n| is_integer(&n.to_string()))
                } else {
                    item.as_str().is_some_and(|s| !s.contains(['\n', '\r']))
                };
                if !ok {
                    return Err(format!("Value has an invalid item: {item}."));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// What one applied write did, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub duplicate: bool,
}

#[derive(Debug, Default)]
pub struct Metafields {
    records: BTreeMap<(String, String, String), MetafieldRecord>,
    writes: BTreeMap<(String, String, String), (u64, u64)>,
    next_id: u64,
}

impl Metafields {
    pub fn new() -> Metafields {
        Metafields {
            next_id: 30_000_000_000,
            ..Metafields::default()
        }
    }

    pub fn get(&self, owner_id: &str, namespace: &str, key: &str) -> Option<&MetafieldRecord> {
        self.records
            .get(&(owner_id.to_string(), namespace.to_string(), key.to_string()))
    }

    /// Metafields of one owner, ordered by namespace and key.
    pub fn of_owner(&self, owner_id: &str) -> Vec<MetafieldRecord> {
        self.records
            .range((owner_id.to_string(), String::new(), String::new())..)
            .take_while(|((owner, _, _), _)| owner == owner_id)
            .map(|(_, record)| record.clone())
            .collect()
    }

    pub fn all(&self) -> Vec<MetafieldRecord> {
        self.records.values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn write_counts(&self) -> Vec<WriteCount> {
        self.writes
            .iter()
            .map(
                |((owner_id, namespace, key), (writes, duplicates))| WriteCount {
                    owner_id: owner_id.clone(),
                    namespace: namespace.clone(),
                    key: key.clone(),
                    writes: *writes,
                    duplicate_writes: *duplicates,
                },
            )
            .collect()
    }

    /// How many metafields were written more than once since the counters were reset.
    pub fn written_more_than_once(&self) -> u64 {
        self.writes
            .values()
            .filter(|(writes, _)| *writes > 1)
            .count() as u64
    }

    pub fn reset_write_counts(&mut self) {
        self.writes.clear();
    }

    /// `metafieldsSet`: validates every input first and writes nothing unless all pass (the
    /// mutation is atomic). Returns the written records in input order, with what each write did.
    ///
    /// `owner_exists` says whether an owner of a given type and GID exists.
    pub fn set(
        &mut self,
        owner_exists: &dyn Fn(Kind, &str) -> bool,
        app_id: u64,
        inputs: &[SetInput],
        now: &str,
    ) -> Result<Vec<(MetafieldRecord, Applied)>, Vec<UserError>> {
        let mut errors = Vec::new();
        let mut resolved = Vec::with_capacity(inputs.len());
        for (index, input) in inputs.iter().enumerate() {
            match self.validate(owner_exists, app_id, index, input) {
                Ok(one) => resolved.push(one),
                Err(mut more) => errors.append(&mut more),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut written = Vec::with_capacity(resolved.len());
        for (input, namespace, kind, owner_kind) in resolved {
            let map_key = (input.owner_id.clone(), namespace.clone(), input.key.clone());
            let compare_digest = digest(&kind, &input.value);
            let next_id = &mut self.next_id;
            let record = self.records.entry(map_key.clone()).or_insert_with(|| {
                *next_id += 1;
                MetafieldRecord {
                    id: *next_id,
                    owner_id: input.owner_id.clone(),
                    owner_kind: Some(owner_kind),
                    namespace: namespace.clone(),
                    key: input.key.clone(),
                    kind: String::new(),
                    value: String::new(),
                    compare_digest: String::new(),
                    created_at: now.to_string(),
                    updated_at: now.to_string(),
                }
            });
            let duplicate = record.kind == kind && record.value == input.value;
            record.kind = kind;
            record.value = input.value.clone();
            record.compare_digest = compare_digest;
            record.updated_at = now.to_string();
            let counts = self.writes.entry(map_key).or_insert((0, 0));
            counts.0 += 1;
            counts.1 += u64::from(duplicate);
            written.push((record.clone(), Applied { duplicate }));
        }
        Ok(written)
    }

    /// Checks one input; returns it with its namespace expanded, its type and its owner's type.
    fn validate<'i>(
        &self,
        owner_exists: &dyn Fn(Kind, &str) -> bool,
        app_id: u64,
        index: usize,
        input: &'i SetInput,
    ) -> Result<(&'i SetInput, String, String, Kind), Vec<UserError>> {
        let mut errors = Vec::new();
        let owner_kind = match parse_gid(&input.owner_id) {
            None => {
                errors.push(UserError::at(
                    index,
                    "ownerId",
                    "INVALID",
                    format!("Owner id `{}` is not a valid GID.", input.owner_id),
                ));
                None
            }
            Some((kind_name, _)) => {
                let kind = Kind::from_name(kind_name).filter(|kind| kind.has_metafields());
                match (
                    kind,
                    kind.is_some_and(|kind| owner_exists(kind, &input.owner_id)),
                ) {
                    (Some(kind), true) => Some(kind),
                    (Some(_), false) => {
                        errors.push(UserError::at(
                            index,
                            "ownerId",
                            "INVALID",
                            "Owner does not exist.",
                        ));
                        None
                    }
                    (None, _) => {
                        errors.push(UserError::at(
                            index,
                            "ownerId",
                            "INVALID",
                            format!(
                                "Owner type `{kind_name}` does not have metafields in this local stand-in."
                            ),
                        ));
                        None
                    }
                }
            }
        };
        let namespace = expand_namespace(input.namespace.as_deref().unwrap_or("$app"), app_id);
        if namespace.len() < 3 {
            errors.push(UserError::at(
                index,
                "namespace",
                "TOO_SHORT",
                "Namespace is too short (minimum is 3 characters).",
            ));
        } else if namespace.len() > 255 {
            errors.push(UserError::at(
                index,
                "namespace",
                "TOO_LONG",
                "Namespace is too long (maximum is 255 characters).",
            ));
        } else if !handle_chars_ok(&namespace) {
            errors.push(UserError::at(
                index,
                "namespace",
                "INVALID",
                "Namespace contains one or more invalid characters.",
            ));
        }
        if input.key.len() < 2 {
            errors.push(UserError::at(
                index,
                "key",
                "TOO_SHORT",
                "Key is too short (minimum is 2 characters).",
            ));
        } else if input.key.len() > 64 {
            errors.push(UserError::at(
                index,
                "key",
                "TOO_LONG",
                "Key is too long (maximum is 64 characters).",
            ));
        } else if !handle_chars_ok(&input.key) {
            errors.push(UserError::at(
                index,
                "key",
                "INVALID",
                "Key contains one or more invalid characters.",
            ));
        }
        let existing = self.get(&input.owner_id, &namespace, &input.key);
        // Without a metafield definition the type must be given; an existing metafield's type is
        // used when it is omitted.
        let kind = match (&input.kind, existing) {
            (Some(kind), _) => Some(kind.clone()),
            (None, Some(record)) => Some(record.kind.clone()),
            (None, None) => {
                errors.push(UserError::at(
                    index,
                    "type",
                    "BLANK",
                    "Type can't be blank.",
                ));
                None
            }
        };
        if let Some(kind) = &kind {
            match value_limit(kind) {
                None => errors.push(UserError::at(
                    index,
                    "type",
                    "INVALID_TYPE",
                    format!(
                        "Type `{kind}` is not one this local stand-in validates (it is not Shopify)."
                    ),
                )),
                Some(limit) if input.value.len() > limit => errors.push(UserError::at(
                    index,
                    "value",
                    "TOO_LONG",
                    format!(
                        "Value is too long: {} bytes, the maximum for `{kind}` is {limit} bytes.",
                        input.value.len()
                    ),
                )),
                Some(_) => {
                    if let Err(message) = check_value(kind, &input.value) {
                        errors.push(UserError::at(index, "value", "INVALID_VALUE", message));
                    }
                }
            }
        }
        match &input.compare_digest {
            CompareDigest::Absent => {}
            CompareDigest::Null => {
                if existing.is_some() {
                    errors.push(stale(index));
                }
            }
            CompareDigest::Digest(given) => {
                if !is_digest_shaped(given) {
                    errors.push(UserError::at(
                        index,
                        "compareDigest",
                        "INVALID_COMPARE_DIGEST",
                        "The compareDigest is invalid.",
                    ));
                } else if existing.is_none_or(|record| record.compare_digest != *given) {
                    errors.push(stale(index));
                }
            }
        }
        match (errors.is_empty(), kind, owner_kind) {
            (true, Some(kind), Some(owner_kind)) => Ok((input, namespace, kind, owner_kind)),
            _ => Err(errors),
        }
    }

    /// `metafieldsDelete`: deletes what exists; a missing metafield gives `None` for its place.
    pub fn delete(
        &mut self,
        app_id: u64,
        inputs: &[DeleteInput],
    ) -> Vec<Option<(String, String, String)>> {
        inputs
            .iter()
            .map(|input| {
                let namespace = expand_namespace(&input.namespace, app_id);
                let key = (input.owner_id.clone(), namespace, input.key.clone());
                self.records.remove(&key).map(|_| key)
            })
            .collect()
    }
}

fn stale(index: usize) -> UserError {
    UserError::at(
        index,
        "compareDigest",
        "STALE_OBJECT",
        "The resource has been updated since it was loaded. Try again with an updated `compareDigest` value.",
    )
}
