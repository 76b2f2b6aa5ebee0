//! One JSONL line of each bulk-operation file, decoded without allocating.
//!
//! Shopify escapes the slashes in GIDs (`"gid:\/\/shopify\/Order\/1"`), so a borrowed `&str`
//! cannot be taken from the line; the visitors below read the unescaped text from serde_json's
//! scratch buffer and keep only what the pipeline needs (a number, a short decimal), which keeps
//! parsing of a multi-gigabyte orders file free of per-field allocations.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// What went wrong on one line: the field (a JSON path such as `lineItems.quantity`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The numeric part of a Shopify GID together with its resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gid {
    pub kind: GidKind,
    pub number: u64,
}

/// The resource types the pipeline reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GidKind {
    Customer,
    Order,
    LineItem,
    Product,
    ProductVariant,
    Other,
}

impl GidKind {
    pub fn name(self) -> &'static str {
        match self {
            GidKind::Customer => "Customer",
            GidKind::Order => "Order",
            GidKind::LineItem => "LineItem",
            GidKind::Product => "Product",
            GidKind::ProductVariant => "ProductVariant",
            GidKind::Other => "other",
        }
    }
}

/// Parses `gid://shopify/<Kind>/<number>` (a query string after `?` is ignored).
pub fn parse_gid(text: &str) -> Option<Gid> {
    let rest = text.strip_prefix("gid://shopify/")?;
    let (kind, number) = rest.split_once('/')?;
    let number = number.split('?').next()?.parse::<u64>().ok()?;
    let kind = match kind {
        "Customer" => GidKind::Customer,
        "Order" => GidKind::Order,
        "LineItem" => GidKind::LineItem,
        "Product" => GidKind::Product,
        "ProductVariant" => GidKind::ProductVariant,
        _ => GidKind::Other,
    };
    Some(Gid { kind, number })
}

/// A GID field, or the reason it was unreadable (kept so the caller can name the field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GidField {
    Valid(Gid),
    Invalid,
}

impl<'de> Deserialize<'de> for GidField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct GidVisitor;
        impl Visitor<'_> for GidVisitor {
            type Value = GidField;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a Shopify GID string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<GidField, E> {
                Ok(parse_gid(v).map_or(GidField::Invalid, GidField::Valid))
            }
        }
        deserializer.deserialize_str(GidVisitor)
    }
}

/// A short text value (decimal amount, currency code, timestamp) held inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ShortText {
    bytes: [u8; 40],
    len: u8,
    /// The original value did not fit (it is then certainly not a valid amount or date).
    overflow: bool,
}

impl ShortText {
    pub fn as_str(&self) -> &str {
        let slice = self.bytes.get(..usize::from(self.len)).unwrap_or_default();
        std::str::from_utf8(slice).unwrap_or_default()
    }

    pub fn is_valid(&self) -> bool {
        !self.overflow
    }
}

impl fmt::Debug for ShortText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl<'de> Deserialize<'de> for ShortText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl Visitor<'_> for TextVisitor {
            type Value = ShortText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a short string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ShortText, E> {
                let mut text = ShortText {
                    bytes: [0; 40],
                    len: 0,
                    overflow: v.len() > 40,
                };
                if let (Some(dst), Ok(len)) = (text.bytes.get_mut(..v.len()), u8::try_from(v.len()))
                {
                    dst.copy_from_slice(v.as_bytes());
                    text.len = len;
                }
                Ok(text)
            }
            // `numberOfOrders` is an UnsignedInt64, which Shopify sends as a string, but accept a
            // bare number too.
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ShortText, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ShortText, E> {
                self.visit_str(&v.to_string())
            }
        }
        deserializer.deserialize_any(TextVisitor)
    }
}

#[derive(Debug, Deserialize)]
pub struct IdRef {
    pub id: Option<GidField>,
}

#[derive(Debug, Deserialize)]
pub struct MoneyV2 {
    pub amount: Option<ShortText>,
    #[serde(rename = "currencyCode")]
    pub currency_code: Option<ShortText>,
}

#[derive(Debug, Deserialize)]
pub struct MoneyBag {
    #[serde(rename = "shopMoney")]
    pub shop_money: Option<MoneyV2>,
}

#[derive(Debug, Deserialize)]
pub struct DiscountAllocation {
    #[serde(rename = "allocatedAmountSet")]
    pub allocated_amount_set: Option<MoneyBag>,
}

/// One line of `customers.jsonl`.
#[derive(Debug, Deserialize)]
pub struct CustomerLine {
    pub id: Option<GidField>,
    #[serde(rename = "createdAt")]
    pub created_at: Option<ShortText>,
    #[serde(rename = "numberOfOrders")]
    pub number_of_orders: Option<ShortText>,
    #[serde(rename = "amountSpent")]
    pub amount_spent: Option<MoneyV2>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(rename = "dataSaleOptOut")]
    pub data_sale_opt_out: Option<bool>,
}

/// One line of `orders.jsonl`: an order, or (with `__parentId`) one of its line items.
#[derive(Debug, Deserialize)]
pub struct OrderFileLine {
    pub id: Option<GidField>,
    #[serde(rename = "__parentId")]
    pub parent_id: Option<GidField>,
    // Order fields.
    #[serde(rename = "createdAt")]
    pub created_at: Option<ShortText>,
    #[serde(rename = "processedAt")]
    pub processed_at: Option<ShortText>,
    #[serde(rename = "cancelledAt")]
    pub cancelled_at: Option<ShortText>,
    pub test: Option<bool>,
    #[serde(rename = "currencyCode")]
    pub currency_code: Option<ShortText>,
    pub customer: Option<IdRef>,
    // Line item fields.
    pub quantity: Option<i64>,
    pub variant: Option<IdRef>,
    pub product: Option<IdRef>,
    #[serde(rename = "originalUnitPriceSet")]
    pub original_unit_price_set: Option<MoneyBag>,
    #[serde(rename = "discountAllocations")]
    pub discount_allocations: Option<Vec<DiscountAllocation>>,
}

#[derive(Debug, Deserialize)]
pub struct InventoryItem {
    #[serde(rename = "unitCost")]
    pub unit_cost: Option<MoneyV2>,
}

/// One line of `products.jsonl`: a product, or (with `__parentId`) one of its variants.
#[derive(Debug, Deserialize)]
pub struct ProductFileLine {
    pub id: Option<GidField>,
    #[serde(rename = "__parentId")]
    pub parent_id: Option<GidField>,
    pub price: Option<ShortText>,
    #[serde(rename = "inventoryItem")]
    pub inventory_item: Option<InventoryItem>,
}

/// Decodes one JSONL line into `T`, naming the JSON path of the field that failed.
///
/// The fast path is plain serde_json; only a failing line is decoded a second time through
/// serde_path_to_error to find the path, so good files pay nothing for good messages.
pub fn decode_line<T: for<'de> Deserialize<'de>>(line: &[u8]) -> Result<T, FieldError> {
    // One UTF-8 check of the whole line (ASCII runs are checked a word at a time) lets serde_json
    // skip its per-string check.
    let text = std::str::from_utf8(line).map_err(|e| {
        FieldError::new(
            "(line)",
            format!("not UTF-8 after byte {}", e.valid_up_to()),
        )
    })?;
    match serde_json::from_str::<T>(text) {
        Ok(value) => Ok(value),
        Err(first) => {
            let mut deserializer = serde_json::Deserializer::from_slice(line);
            match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
                Ok(value) => Ok(value),
                Err(error) => {
                    let path = error.path().to_string();
                    let field = if path == "." || path.is_empty() {
                        "(line)".to_string()
                    } else {
                        path
                    };
                    Err(FieldError::new(field, first.to_string()))
                }
            }
        }
    }
}

/// Seconds since the Unix epoch for an ISO 8601 timestamp as Shopify writes it
/// (`2024-05-01T12:34:56Z`, optional fractional seconds, `Z` or a `+hh:mm` offset).
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = b.get(range)?;
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(digits).ok()?.parse().ok()
    };
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') || b.get(10) != Some(&b'T') {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut rest = text.get(19..)?;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = fraction.get(digits..)?;
    }
    let offset_seconds = match rest {
        "Z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (h, m) = rest.get(1..)?.split_once(':')?;
            if h.len() != 2 || m.len() != 2 {
                return None;
            }
            sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's civil-date algorithm).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Renders seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_timestamp(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let rem = seconds.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_in_utc() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_timestamp("2024-02-29T12:00:00Z"), Some(1_709_208_000));
        assert_eq!(
            parse_timestamp("2024-02-29T14:00:00+02:00"),
            Some(1_709_208_000)
        );
        assert_eq!(
            parse_timestamp("2024-02-29T12:00:00.123Z"),
            Some(1_709_208_000)
        );
        assert_eq!(parse_timestamp("2024-13-01T00:00:00Z"), None);
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(format_timestamp(1_709_208_000), "2024-02-29T12:00:00Z");
        for days in [-1000, 0, 19_000, 20_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn gids_name_their_kind() {
        assert_eq!(
            parse_gid("gid://shopify/ProductVariant/42"),
            Some(Gid {
                kind: GidKind::ProductVariant,
                number: 42
            })
        );
        assert_eq!(parse_gid("gid://shopify/Order/x"), None);
        assert_eq!(parse_gid("42"), None);
    }
}
