//! The bundle policy: versioned JSON in the cart transform's `$app.policy` metafield.
//!
//! Format, version 1. Money is integer minor units of `currency` (the shop currency), rates are
//! basis points. Only `version` and `currency` are required; `null` means the same as an absent
//! key, and unknown keys are errors (a misspelt guard field must never turn the guard off). The
//! `guard` and `holdout` sections are the discount policy's, read by the same code, so one margin
//! rule and one holdout split hold for offers and bundles alike.
//!
//! ```json
//! {
//!   "version": 1,
//!   "currency": "USD",
//!   "guard": { "min_line_margin_bps": 1000, "min_order_margin_bps": 1500,
//!              "assumed_stack_bps": 500, "unknown_cost": "exclude" },
//!   "holdout": { "share_bps": 1000, "salt": "2026-q4" },
//!   "discount": {
//!     "default_bps": 500,
//!     "segments": { "loyal_high_value": 1000, "at_risk": 1500, "new": 0 },
//!     "clv_bands": [ { "min": 20000, "bps": 800 }, { "min": 50000, "bps": 1200 } ],
//!     "customer": "any"
//!   },
//!   "merge_without_discount": false,
//!   "line_update": false
//! }
//! ```
//!
//! | field | meaning (default) |
//! |---|---|
//! | `version` | must be `1` |
//! | `currency` | ISO 4217 code of the shop currency (unit costs and CLV bands are in it) |
//! | `guard` | as in the discount policy; a bundle's floor uses the larger of the line and order margins, because the merged bundle is one line and the transform discounts nothing else |
//! | `holdout` | as in the discount policy (same hash, same salt semantics) |
//! | `discount.default_bps` | decrease for every shopper, 0..=10000 (0) |
//! | `discount.segments` | decrease by profile segment; replaces the default for that segment |
//! | `discount.clv_bands` | `[{min, bps}]`, `min` strictly increasing: the band with the largest `min` at or below the profile's CLV raises the decrease to its `bps` (never lowers it) |
//! | `discount.customer` | `any`, `new` (no previous order, or anonymous) or `returning`: who may get a bundle discount (`any`) |
//! | `merge_without_discount` | merge complete bundles even when the decrease ends at 0 % (unknown cost, guard, no rule): presentation only, no money moves (false) |
//! | `line_update` | reserved for `lineUpdate` pricing (Shopify Plus only); this build never renders it and says so with a reason (false) |
//!
//! Unlike the discount policy there is no list to skip items from: any malformed field rejects the
//! whole policy, and with it every merge (expansions do not depend on the policy).

use crate::policy::json::Value;

use crate::decision::{Reason, ReasonCode};
use crate::detail::{Detail, NameKind};
use crate::format::Segment;
use crate::money::{BPS_ONE, Bps, Currency, Money};
use crate::policy::parse::{
    Field, FieldError, Path, as_object, error, expected, field_error, fields, integer, integer_in,
    optional_integer_in, optional_string, parse_guard, parse_holdout, string, unknown,
};
use crate::policy::{CustomerType, Guard, Holdout};

/// The only bundle policy version this build reads.
pub const BUNDLE_POLICY_VERSION: i64 = 1;

/// A CLV band: shoppers whose predicted value is at least `min` get at least `bps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClvBand {
    /// Shop currency minor units.
    pub min: Money,
    pub bps: Bps,
}

/// How much a complete bundle is decreased, before the margin guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleDiscount {
    pub default_bps: Bps,
    pub segments: Vec<(Segment, Bps)>,
    /// Sorted by `min`, strictly increasing.
    pub clv_bands: Vec<ClvBand>,
    pub customer: CustomerType,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundlePolicy {
    pub currency: Currency,
    pub guard: Guard,
    pub holdout: Option<Holdout>,
    pub discount: BundleDiscount,
    pub merge_without_discount: bool,
    pub line_update: bool,
}

/// A parsed bundle policy, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedBundlePolicy {
    pub policy: Option<BundlePolicy>,
    pub reasons: Vec<Reason>,
}

/// Parses the cart transform's policy JSON. Never fails: an unusable document gives
/// `policy: None` and one reason naming the path that was wrong.
pub fn parse_bundle_policy(json: &str) -> ParsedBundlePolicy {
    let rejected = |code, path: String, detail: Detail| ParsedBundlePolicy {
        policy: None,
        reasons: vec![Reason {
            code,
            subject: path,
            detail,
        }],
    };
    let value = match crate::policy::json::from_str(json) {
        Ok(value) => value,
        Err(_) => {
            return rejected(
                ReasonCode::PolicyMalformed,
                String::new(),
                Detail::InvalidJson(json.to_string()),
            );
        }
    };
    match parse_document(&value) {
        Ok(policy) => ParsedBundlePolicy {
            policy: Some(policy),
            reasons: Vec::new(),
        },
        Err((code, FieldError { path, detail })) => rejected(code, path, detail),
    }
}

fn parse_document(value: &Value) -> Result<BundlePolicy, (ReasonCode, FieldError)> {
    let malformed = |e| (ReasonCode::PolicyMalformed, e);
    let root = Path::Root;
    let object = as_object(value, &root).map_err(malformed)?;
    let document = fields(
        object,
        [
            "version",
            "currency",
            "guard",
            "holdout",
            "discount",
            "merge_without_discount",
            "line_update",
        ],
    );
    let [
        version,
        currency,
        guard,
        holdout,
        discount,
        merge_without_discount,
        line_update,
    ] = document.values;
    // As in the discount policy, the version comes first: a newer document may use keys this
    // build does not know, and "unsupported version" is the useful answer then.
    let version_path = root.key("version");
    let version = match version {
        Some(v) => integer(v, &version_path).map_err(malformed)?,
        None => return Err(malformed(field_error(&version_path, Detail::Missing))),
    };
    if version != BUNDLE_POLICY_VERSION {
        return Err((
            ReasonCode::PolicyUnsupportedVersion,
            field_error(
                &version_path,
                Detail::UnsupportedVersion {
                    version,
                    reads: BUNDLE_POLICY_VERSION,
                },
            ),
        ));
    }
    document.check(&root).map_err(malformed)?;
    let currency_path = root.key("currency");
    let code = match currency {
        Some(v) => string(v, &currency_path).map_err(malformed)?,
        None => return Err(malformed(field_error(&currency_path, Detail::Missing))),
    };
    let currency = Currency::from_code(code).ok_or_else(|| {
        (
            ReasonCode::PolicyCurrencyUnknown,
            field_error(&currency_path, unknown(NameKind::CurrencyCode, code)),
        )
    })?;
    let guard = parse_guard(guard).map_err(malformed)?;
    let holdout = parse_holdout(holdout).map_err(malformed)?;
    let discount = parse_discount(discount).map_err(malformed)?;
    let merge_without_discount =
        optional_bool(merge_without_discount, "merge_without_discount").map_err(malformed)?;
    let line_update = optional_bool(line_update, "line_update").map_err(malformed)?;
    Ok(BundlePolicy {
        currency,
        guard,
        holdout,
        discount,
        merge_without_discount,
        line_update,
    })
}

/// An optional top-level boolean `key`.
fn optional_bool(value: Option<&Value>, key: &str) -> Field<bool> {
    match value {
        None => Ok(false),
        Some(Value::Bool(flag)) => Ok(*flag),
        Some(other) => error(&Path::Root.key(key), expected("a boolean", other)),
    }
}

fn parse_discount(value: Option<&Value>) -> Field<BundleDiscount> {
    let mut discount = BundleDiscount {
        default_bps: 0,
        segments: Vec::new(),
        clv_bands: Vec::new(),
        customer: CustomerType::Any,
    };
    let Some(value) = value else {
        return Ok(discount);
    };
    let root = Path::Root;
    let path = root.key("discount");
    let object = fields(
        as_object(value, &path)?,
        ["default_bps", "segments", "clv_bands", "customer"],
    );
    object.check(&path)?;
    let [default_bps, segments, clv_bands, customer] = object.values;
    discount.default_bps =
        optional_integer_in(default_bps, &path, "default_bps", 0, BPS_ONE)?.unwrap_or(0);
    if let Some(value) = segments {
        let segments_path = path.key("segments");
        let segments = as_object(value, &segments_path)?;
        for (code, bps) in segments {
            let item_path = segments_path.key(code);
            let Some(segment) = Segment::from_code(code) else {
                return error(&item_path, unknown(NameKind::Segment, code));
            };
            discount
                .segments
                .push((segment, integer_in(bps, &item_path, 0, BPS_ONE)?));
        }
    }
    let bands_path = path.key("clv_bands");
    match clv_bands {
        None => {}
        Some(Value::Array(bands)) => {
            for (index, band) in bands.iter().enumerate() {
                let band_path = bands_path.index(index);
                let band = fields(as_object(band, &band_path)?, ["min", "bps"]);
                band.check(&band_path)?;
                let [min, bps] = band.values;
                let required = |value: Option<&Value>, key: &str, max: i64| match value {
                    Some(v) => integer_in(v, &band_path.key(key), 0, max),
                    None => error(&band_path.key(key), "missing"),
                };
                let min = required(min, "min", i64::MAX)?;
                let bps = required(bps, "bps", BPS_ONE)?;
                if discount
                    .clv_bands
                    .last()
                    .is_some_and(|last| last.min >= min)
                {
                    return error(
                        &band_path.key("min"),
                        "band minimums must be strictly increasing",
                    );
                }
                discount.clv_bands.push(ClvBand { min, bps });
            }
        }
        Some(other) => {
            return error(&bands_path, expected("an array", other));
        }
    }
    discount.customer = match optional_string(customer, &path, "customer")? {
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
    Ok(discount)
}

impl BundleDiscount {
    /// The decrease before the guard for a shopper with this profile (shop-currency CLV): the
    /// segment's value (else the default), raised to the best CLV band that applies.
    pub fn for_profile(&self, profile: Option<&crate::format::Profile>) -> Bps {
        let Some(profile) = profile else {
            return self.default_bps;
        };
        let personal = self
            .segments
            .iter()
            .find(|(segment, _)| *segment == profile.segment)
            .map_or(self.default_bps, |(_, bps)| *bps);
        let band = self
            .clv_bands
            .iter()
            .rev()
            .find(|band| band.min <= profile.clv_minor)
            .map_or(0, |band| band.bps);
        personal.max(band)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::format::Profile;
    use crate::policy::UnknownCost;

    fn profile(segment: Segment, clv_minor: Money) -> Profile {
        Profile {
            segment,
            clv_minor,
            churn_bps: 0,
            expected_orders_12m_milli: 0,
            discount_share_bps: 0,
            p_alive_bps: 10_000,
        }
    }

    #[test]
    fn full_policy_and_personal_decrease() {
        let parsed = parse_bundle_policy(
            r#"{"version": 1, "currency": "KWD",
                "guard": {"min_line_margin_bps": 1000, "unknown_cost": "allow"},
                "holdout": {"share_bps": 500, "salt": "s"},
                "discount": {"default_bps": 500, "segments": {"at_risk": 1500, "new": 0},
                             "clv_bands": [{"min": 20000, "bps": 800}, {"min": 50000, "bps": 1200}]},
                "merge_without_discount": true, "line_update": null}"#,
        );
        assert!(parsed.reasons.is_empty(), "{:?}", parsed.reasons);
        let policy = parsed.policy.unwrap();
        assert_eq!(policy.currency.exponent, 3);
        assert_eq!(policy.guard.min_line_margin_bps, 1000);
        assert_eq!(policy.guard.unknown_cost, UnknownCost::Allow);
        assert_eq!(policy.holdout.unwrap().share_bps, 500);
        assert!(policy.merge_without_discount);
        assert!(!policy.line_update);
        let d = &policy.discount;
        assert_eq!(d.for_profile(None), 500);
        assert_eq!(d.for_profile(Some(&profile(Segment::Active, 0))), 500);
        assert_eq!(d.for_profile(Some(&profile(Segment::AtRisk, 0))), 1500);
        assert_eq!(d.for_profile(Some(&profile(Segment::New, 19_999))), 0);
        assert_eq!(d.for_profile(Some(&profile(Segment::New, 20_000))), 800);
        assert_eq!(d.for_profile(Some(&profile(Segment::Active, 80_000))), 1200);
        assert_eq!(d.for_profile(Some(&profile(Segment::AtRisk, 80_000))), 1500);
    }

    #[test]
    fn every_malformed_field_rejects_the_policy_and_names_its_path() {
        let cases = [
            (
                r#"{"currency": "USD"}"#,
                ReasonCode::PolicyMalformed,
                "version",
            ),
            (
                r#"{"version": 2}"#,
                ReasonCode::PolicyUnsupportedVersion,
                "version",
            ),
            (r#"{"version": 1}"#, ReasonCode::PolicyMalformed, "currency"),
            (
                r#"{"version": 1, "currency": "XX"}"#,
                ReasonCode::PolicyCurrencyUnknown,
                "currency",
            ),
            (
                r#"{"version": 1, "currency": "USD", "offers": []}"#,
                ReasonCode::PolicyMalformed,
                "offers",
            ),
            (
                r#"{"version": 1, "currency": "USD", "guard": {"min_line_margin": 5}}"#,
                ReasonCode::PolicyMalformed,
                "guard.min_line_margin",
            ),
            (
                r#"{"version": 1, "currency": "USD", "discount": {"default_bps": 10001}}"#,
                ReasonCode::PolicyMalformed,
                "discount.default_bps",
            ),
            (
                r#"{"version": 1, "currency": "USD", "discount": {"segments": {"vip": 5}}}"#,
                ReasonCode::PolicyMalformed,
                "discount.segments.vip",
            ),
            (
                r#"{"version": 1, "currency": "USD", "discount": {"clv_bands": [{"min": 5, "bps": 1}, {"min": 5, "bps": 2}]}}"#,
                ReasonCode::PolicyMalformed,
                "discount.clv_bands[1].min",
            ),
            (
                r#"{"version": 1, "currency": "USD", "discount": {"clv_bands": [{"min": 5}]}}"#,
                ReasonCode::PolicyMalformed,
                "discount.clv_bands[0].bps",
            ),
            (
                r#"{"version": 1, "currency": "USD", "discount": {"customer": "vip"}}"#,
                ReasonCode::PolicyMalformed,
                "discount.customer",
            ),
            (
                r#"{"version": 1, "currency": "USD", "line_update": "yes"}"#,
                ReasonCode::PolicyMalformed,
                "line_update",
            ),
            (r#"{"version": 1,"#, ReasonCode::PolicyMalformed, ""),
        ];
        for (text, code, path) in cases {
            let parsed = parse_bundle_policy(text);
            assert!(parsed.policy.is_none(), "{text}");
            assert_eq!(parsed.reasons.len(), 1, "{text}");
            assert_eq!(parsed.reasons[0].code, code, "{text}");
            assert_eq!(parsed.reasons[0].subject, path, "{text}");
        }
        // The version this build reads is the bundle policy's own.
        let parsed = parse_bundle_policy(r#"{"version": 2}"#);
        assert_eq!(
            parsed.reasons[0].detail.to_string(),
            format!("version 2, this build reads {BUNDLE_POLICY_VERSION}")
        );
    }
}
