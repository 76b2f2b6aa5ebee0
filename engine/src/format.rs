//! The metafield formats shared by the model pipeline (writer) and the Functions (reader), defined
//! once, here, with a version prefix.
//!
//! Both per-run formats are single compact text values, not JSON objects. Inside a Function every
//! key or value read through the Wasm API costs roughly 500-700 instructions, while a string costs
//! one read plus about one instruction per byte; a JSON object with four keys per cart line costs
//! eight reads, the same data as one delimited string costs one. At 200 lines that difference is the
//! budget (see ARCHITECTURE.md, "Per-line data", for the measured figures).
//!
//! Layouts (fields separated by `|`, lists by `,`; every numeric field is a plain base-10 integer or
//! a decimal string; an empty field means "unknown"):
//!
//! - customer `$app.profile`: `mw1|segment|clv|churn_bps|orders_12m_milli|discount_share_bps|p_alive_bps`
//!   where `clv` is the predicted 12-month value in the shop currency's minor units.
//! - variant `$app.offer`: `mw1|unit_cost|product_id|complements|flags` where `unit_cost` is a
//!   decimal in the shop currency ("12.34", empty when unknown), `product_id` the numeric part of the
//!   product's GID, `complements` numeric product ids in rank order and `flags` a set of letters
//!   (`B`: this variant is a marginwise bundle parent).

use crate::money::{Bps, Money};

/// Namespace of every marginwise metafield (the app-reserved namespace).
pub const NAMESPACE: &str = "$app";
/// Key of the customer profile metafield.
pub const PROFILE_KEY: &str = "profile";
/// Key of the per-variant offer data metafield.
pub const VARIANT_KEY: &str = "offer";
/// Key of the merchant's policy metafield on the discount node (JSON).
pub const POLICY_KEY: &str = "policy";

/// Version prefix of the text formats in this module.
pub const VERSION_PREFIX: &str = "mw1";

/// At most this many complementary products are stored per variant: a Function reads at most
/// 10,000 bytes of one metafield, and every byte read is paid for in every checkout.
pub const MAX_COMPLEMENTS: usize = 8;

/// Customer segments, derived by the pipeline from the value model and RFM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    /// One order so far, recent.
    New,
    /// Repeat buyer, likely alive, ordinary value.
    Active,
    /// Repeat buyer, likely alive, top predicted value.
    LoyalHighValue,
    /// Repeat buyer whose probability of being alive is falling.
    AtRisk,
    /// Probably no longer buying.
    Lapsed,
}

impl Segment {
    pub const ALL: [Segment; 5] = [
        Segment::New,
        Segment::Active,
        Segment::LoyalHighValue,
        Segment::AtRisk,
        Segment::Lapsed,
    ];

    /// The stable code used in metafields and policies.
    pub fn code(self) -> &'static str {
        match self {
            Segment::New => "new",
            Segment::Active => "active",
            Segment::LoyalHighValue => "loyal_high_value",
            Segment::AtRisk => "at_risk",
            Segment::Lapsed => "lapsed",
        }
    }

    pub fn from_code(code: &str) -> Option<Segment> {
        Segment::ALL.into_iter().find(|s| s.code() == code)
    }
}

/// A customer's precomputed scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    pub segment: Segment,
    /// Predicted (discounted) 12-month value, shop currency minor units.
    pub clv_minor: Money,
    /// Churn risk, 1 - P(alive) over the next period, in basis points.
    pub churn_bps: Bps,
    /// Expected orders in the next 12 months, in thousandths.
    pub expected_orders_12m_milli: i64,
    /// Share of past orders bought with a discount, in basis points.
    pub discount_share_bps: Bps,
    /// P(alive) today, in basis points.
    pub p_alive_bps: Bps,
}

/// Per-variant data the Functions need and the cart does not carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantData {
    /// Unit cost in the shop currency's minor units; `None` when the store has no cost for it.
    pub unit_cost_minor: Option<Money>,
    /// Numeric product id (the number at the end of the product's GID).
    pub product_id: u64,
    /// Complementary products, best first, at most [`MAX_COMPLEMENTS`].
    pub complements: Vec<u64>,
    /// This variant is a marginwise bundle parent (created by the cart transform).
    pub bundle_parent: bool,
}

/// Why a metafield value could not be read. The message names the field that was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatError {
    /// The value does not start with a version this build understands.
    UnsupportedVersion,
    /// The value has the wrong number of `|`-separated fields.
    FieldCount { expected: usize, found: usize },
    /// One field could not be parsed.
    BadField { field: &'static str },
}

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FormatError::UnsupportedVersion => {
                write!(f, "unsupported version (expected {VERSION_PREFIX})")
            }
            FormatError::FieldCount { expected, found } => {
                write!(f, "expected {expected} fields, found {found}")
            }
            FormatError::BadField { field } => write!(f, "field `{field}` is malformed"),
        }
    }
}

impl std::error::Error for FormatError {}

fn split_fields<const N: usize>(text: &str) -> Result<[&str; N], FormatError> {
    let mut fields = [""; N];
    let mut parts = text.split('|');
    if parts.next() != Some(VERSION_PREFIX) {
        return Err(FormatError::UnsupportedVersion);
    }
    let mut found = 0;
    for part in parts {
        if let Some(slot) = fields.get_mut(found) {
            *slot = part;
        }
        found += 1;
    }
    if found != N {
        return Err(FormatError::FieldCount { expected: N, found });
    }
    Ok(fields)
}

fn int(text: &str, field: &'static str) -> Result<i64, FormatError> {
    text.parse::<i64>()
        .map_err(|_| FormatError::BadField { field })
}

fn bps(text: &str, field: &'static str) -> Result<Bps, FormatError> {
    let value = int(text, field)?;
    if (0..=crate::money::BPS_ONE).contains(&value) {
        Ok(value)
    } else {
        Err(FormatError::BadField { field })
    }
}

impl Profile {
    /// Renders the `$app.profile` metafield value.
    pub fn encode(&self) -> String {
        format!(
            "{VERSION_PREFIX}|{}|{}|{}|{}|{}|{}",
            self.segment.code(),
            self.clv_minor,
            self.churn_bps,
            self.expected_orders_12m_milli,
            self.discount_share_bps,
            self.p_alive_bps
        )
    }

    /// Reads a `$app.profile` metafield value.
    pub fn decode(text: &str) -> Result<Profile, FormatError> {
        let [segment, clv, churn, orders, share, alive] = split_fields::<6>(text)?;
        let profile = Profile {
            segment: Segment::from_code(segment)
                .ok_or(FormatError::BadField { field: "segment" })?,
            clv_minor: int(clv, "clv")?,
            churn_bps: bps(churn, "churn_bps")?,
            expected_orders_12m_milli: int(orders, "orders_12m_milli")?,
            discount_share_bps: bps(share, "discount_share_bps")?,
            p_alive_bps: bps(alive, "p_alive_bps")?,
        };
        if profile.clv_minor < 0 || profile.expected_orders_12m_milli < 0 {
            return Err(FormatError::BadField { field: "clv" });
        }
        Ok(profile)
    }
}

impl VariantData {
    /// Renders the `$app.offer` metafield value. `shop_exponent` is the shop currency's exponent,
    /// used to write the unit cost as a decimal.
    pub fn encode(&self, shop_exponent: u8) -> String {
        let cost = self
            .unit_cost_minor
            .map(|c| crate::money::format_decimal_minor(c, shop_exponent))
            .unwrap_or_default();
        let complements: Vec<String> = self
            .complements
            .iter()
            .take(MAX_COMPLEMENTS)
            .map(u64::to_string)
            .collect();
        let flags = if self.bundle_parent { "B" } else { "" };
        format!(
            "{VERSION_PREFIX}|{cost}|{}|{}|{flags}",
            self.product_id,
            complements.join(",")
        )
    }

    /// Reads a `$app.offer` metafield value; `shop_exponent` is the shop currency's exponent.
    pub fn decode(text: &str, shop_exponent: u8) -> Result<VariantData, FormatError> {
        let [cost, product, complements, flags] = split_fields::<4>(text)?;
        let unit_cost_minor = if cost.is_empty() {
            None
        } else {
            let minor = crate::money::parse_decimal_minor(cost, shop_exponent)
                .filter(|c| *c >= 0)
                .ok_or(FormatError::BadField { field: "unit_cost" })?;
            Some(minor)
        };
        let product_id = product.parse::<u64>().map_err(|_| FormatError::BadField {
            field: "product_id",
        })?;
        let mut list = Vec::new();
        if !complements.is_empty() {
            for id in complements.split(',').take(MAX_COMPLEMENTS) {
                list.push(id.parse::<u64>().map_err(|_| FormatError::BadField {
                    field: "complements",
                })?);
            }
        }
        if !flags.bytes().all(|b| b == b'B') {
            return Err(FormatError::BadField { field: "flags" });
        }
        Ok(VariantData {
            unit_cost_minor,
            product_id,
            complements: list,
            bundle_parent: flags.contains('B'),
        })
    }
}

/// The numeric id at the end of a Shopify GID (`gid://shopify/Product/123` -> 123).
pub fn gid_number(gid: &str) -> Option<u64> {
    gid.rsplit('/').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_round_trips() {
        let profile = Profile {
            segment: Segment::LoyalHighValue,
            clv_minor: 123_456,
            churn_bps: 1_250,
            expected_orders_12m_milli: 3_400,
            discount_share_bps: 2_500,
            p_alive_bps: 8_750,
        };
        let text = profile.encode();
        assert_eq!(text, "mw1|loyal_high_value|123456|1250|3400|2500|8750");
        assert_eq!(Profile::decode(&text), Ok(profile));
    }

    #[test]
    fn variant_data_round_trips_with_and_without_cost() {
        let data = VariantData {
            unit_cost_minor: Some(1_234),
            product_id: 987,
            complements: vec![11, 22, 33],
            bundle_parent: false,
        };
        assert_eq!(data.encode(2), "mw1|12.34|987|11,22,33|");
        assert_eq!(VariantData::decode(&data.encode(2), 2), Ok(data.clone()));
        let unknown = VariantData {
            unit_cost_minor: None,
            product_id: 5,
            complements: vec![],
            bundle_parent: true,
        };
        assert_eq!(unknown.encode(0), "mw1||5||B");
        assert_eq!(VariantData::decode(&unknown.encode(0), 0), Ok(unknown));
    }

    #[test]
    fn malformed_values_name_the_field() {
        assert_eq!(
            Profile::decode("mw2|new|1|2|3|4|5"),
            Err(FormatError::UnsupportedVersion)
        );
        assert_eq!(
            Profile::decode("mw1|new|1|2|3|4"),
            Err(FormatError::FieldCount {
                expected: 6,
                found: 5
            })
        );
        assert_eq!(
            Profile::decode("mw1|vip|1|2|3|4|5"),
            Err(FormatError::BadField { field: "segment" })
        );
        assert_eq!(
            Profile::decode("mw1|new|1|20000|3|4|5"),
            Err(FormatError::BadField { field: "churn_bps" })
        );
        assert_eq!(
            VariantData::decode("mw1|-1.00|5||", 2),
            Err(FormatError::BadField { field: "unit_cost" })
        );
        assert_eq!(
            VariantData::decode("mw1|1.00|5|x|", 2),
            Err(FormatError::BadField {
                field: "complements"
            })
        );
        assert_eq!(gid_number("gid://shopify/Product/42"), Some(42));
        assert_eq!(gid_number("gid://shopify/Product/x"), None);
    }
}
