//! One JSONL line of each bulk-operation file, decoded without allocating.
//!
//! Shopify escapes the slashes in GIDs (`"gid:\/\/shopify\/Order\/1"`), so a borrowed `&str`
//! cannot be taken from the line; the visitors below read the unescaped text from serde_json's
//! scratch buffer and keep only what the pipeline needs (a number, a short decimal), which keeps
//! parsing of a multi-gigabyte orders file free of per-field allocations.

use std::fmt;

use jiff::Timestamp;
use jiff::fmt::temporal::Pieces;
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

/// The largest UTC offset a timestamp may carry: no time zone has been further from UTC than
/// 14 hours (Kiribati's +14:00; the westernmost is -12:00) in any history a store can have.
/// jiff reads offsets up to ±25:59:59 (Temporal's range), which no clock writes.
pub const MAX_UTC_OFFSET_SECONDS: i32 = 14 * 3600;

/// Seconds since the Unix epoch for an ISO 8601 timestamp as Shopify writes it
/// (`2024-05-01T12:34:56Z`, optional fractional seconds, `Z` or a `+hh:mm` offset), read by
/// jiff's RFC 3339 / ISO 8601 parser, which refuses a date or time that does not exist
/// (`2024-02-31`, `24:00`) and an offset no clock shows (`+99:99`). A time without an offset is
/// refused: it names no instant. Fractional seconds are dropped (rounded down).
///
/// The error says why, in jiff's words.
pub fn parse_timestamp(text: &str) -> Result<i64, String> {
    let pieces = Pieces::parse(text).map_err(|error| error.to_string())?;
    let time = pieces
        .time()
        .ok_or("it has a date but no time of day, so it names no instant")?;
    let offset = pieces
        .to_numeric_offset()
        .ok_or("it has no UTC offset (`Z` or `+hh:mm`), so it names no instant")?;
    if offset.seconds().unsigned_abs() > MAX_UTC_OFFSET_SECONDS.unsigned_abs() {
        return Err(format!(
            "the UTC offset {offset} is further from UTC than any time zone (at most 14 hours)"
        ));
    }
    let instant = offset
        .to_timestamp(pieces.date().to_datetime(time))
        .map_err(|error| error.to_string())?;
    // `as_second` truncates toward zero; a fraction before 1970 belongs to the second before.
    Ok(instant.as_second() - i64::from(instant.subsec_nanosecond() < 0))
}

/// Renders seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339 in UTC, as Shopify
/// writes `DateTime` values); a time outside the years jiff represents (-9999 to 9999) as its
/// number of seconds.
pub fn format_timestamp(seconds: i64) -> String {
    match Timestamp::from_second(seconds) {
        Ok(instant) => instant.to_string(),
        Err(_) => format!("{seconds} seconds after 1970-01-01T00:00:00Z"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::panic)]
    use super::*;

    #[test]
    fn timestamps_parse_in_utc() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_timestamp("2024-02-29T12:00:00Z"), Ok(1_709_208_000));
        assert_eq!(
            parse_timestamp("2024-02-29T14:00:00+02:00"),
            Ok(1_709_208_000)
        );
        assert_eq!(
            parse_timestamp("2024-02-29T07:30:00-04:30"),
            Ok(1_709_208_000)
        );
        assert_eq!(
            parse_timestamp("2024-02-29T12:00:00.123Z"),
            Ok(1_709_208_000)
        );
        assert_eq!(parse_timestamp("1969-12-31T23:59:59.5Z"), Ok(-1));
        assert_eq!(
            parse_timestamp("2024-02-29T14:00:00+14:00"),
            Ok(1_709_164_800)
        );
        assert_eq!(format_timestamp(1_709_208_000), "2024-02-29T12:00:00Z");
        assert_eq!(format_timestamp(631_152_000), "1990-01-01T00:00:00Z");
        assert_eq!(format_timestamp(-86_400), "1969-12-31T00:00:00Z");
        assert_eq!(
            format_timestamp(i64::MAX),
            "9223372036854775807 seconds after 1970-01-01T00:00:00Z"
        );
        for seconds in [-86_400_000, -1, 0, 1_709_208_000, 1_735_689_599] {
            assert_eq!(parse_timestamp(&format_timestamp(seconds)), Ok(seconds));
        }
    }

    /// Regression (audit: `2024-02-31T00:00:00Z` and an offset `+99:99` were read as dates, the
    /// first as 2 March): a date, time or offset that cannot exist is refused, with why.
    #[test]
    fn impossible_timestamps_are_refused_with_why() {
        for (text, why) in [
            ("2024-02-31T00:00:00Z", "day"),
            ("2023-02-29T00:00:00Z", "day"),
            ("2024-04-31T10:00:00Z", "day"),
            ("2024-01-02T10:00:00+99:99", "offset"),
            ("2024-01-02T10:00:00+02:60", "offset"),
            ("2024-01-02T10:00:00+15:00", "UTC offset +15"),
            ("2024-01-02T10:00:00-25:00", "UTC offset -25"),
            ("2024-13-01T00:00:00Z", "month"),
            ("2024-01-02T24:00:00Z", "hour"),
            ("2024-01-02T23:60:00Z", "minute"),
            ("2024-01-02T10:00:61Z", "second"),
            ("2024-01-02T10:00:00", "no UTC offset"),
            ("2024-01-06", "time"),
            ("2024/01/02 10:00", "month"),
            ("1700000000", "month"),
            ("yesterday", "year"),
            ("", ""),
        ] {
            match parse_timestamp(text) {
                Ok(seconds) => panic!("{text:?} read as {seconds}"),
                Err(error) => assert!(error.contains(why), "{text:?}: {error}"),
            }
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
