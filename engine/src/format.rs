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
//! - cart transform `$app.bundles` (added later, same version prefix):
//!   `mw1|<parent>=<component>x<quantity>:<weight>+...;<next parent>=...` where every id is the
//!   numeric part of a variant GID, `quantity` the units per bundle and `weight` the price weight
//!   of one unit used to split a parent's price over its components. With 14-digit ids, three
//!   one-unit components and two-digit weights, 133 bundles fit in the 10,000 bytes a Function
//!   reads of one metafield (a test measures it). See [`encode_bundles`]. A *checked* list ends
//!   with two more fields, `|<index>|<xxh64 of the list and index, 16 hex digits>`, written by
//!   [`encode_checked_bundles`] only when every bundle in it is read and accepted; with them a
//!   small cart reads only the bundles that mention its variants, found through the index
//!   ([`checked_bundles_mentioning`], layout in `format/bundle_index.rs`). With the index, 109 of
//!   those bundles fit; a longer list is written plain and read whole.

use crate::min_table::MinTable;
use crate::money::{Bps, Money};

mod bundle_index;

/// Namespace of every marginwise metafield (the app-reserved namespace).
pub const NAMESPACE: &str = "$app";
/// Key of the customer profile metafield.
pub const PROFILE_KEY: &str = "profile";
/// Key of the per-variant offer data metafield.
pub const VARIANT_KEY: &str = "offer";
/// Key of the merchant's policy metafield on the discount node (JSON).
pub const POLICY_KEY: &str = "policy";
/// Key of the policy's compiled form beside it (see [`crate::policy::compiled`]).
pub const COMPILED_POLICY_KEY: &str = "policy_compiled";

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
    // A byte loop rather than `str::split`: every cart line's variant data comes through here, and
    // the generic string searcher costs a Function several times more per field.
    let bytes = text.as_bytes();
    let after_version = match bytes.strip_prefix(VERSION_PREFIX.as_bytes()) {
        Some([]) => {
            return Err(FormatError::FieldCount {
                expected: N,
                found: 0,
            });
        }
        Some([b'|', rest @ ..]) => rest,
        _ => return Err(FormatError::UnsupportedVersion),
    };
    let mut fields = [""; N];
    let mut found = 0;
    let mut start = text.len() - after_version.len();
    for part in after_version.split(|&b| b == b'|') {
        let end = start + part.len();
        if let Some(slot) = fields.get_mut(found) {
            // Both ends sit next to an ASCII `|` (or the text's end): `get` always succeeds.
            *slot = text.get(start..end).unwrap_or_default();
        }
        start = end + 1;
        found += 1;
    }
    if found != N {
        return Err(FormatError::FieldCount { expected: N, found });
    }
    Ok(fields)
}

/// A plain base-10 unsigned integer (digits only: no sign, no spaces), or `None` when it is empty,
/// has another character or overflows.
pub(crate) fn parse_u64(text: &[u8]) -> Option<u64> {
    match leading_u64(text)? {
        (value, []) => Some(value),
        _ => None,
    }
}

/// The integer at the start of `bytes` and what follows it, or `None` when `bytes` does not start
/// with a digit or the integer overflows (digits only: no sign, no spaces).
///
/// Reads eight bytes at a time (a byte loop costs about 30 wasm instructions per digit, and every
/// product id of every cart line comes through here): [`leading_digits`] counts the digits in a
/// word and [`eight_digits`] converts them.
fn leading_u64(bytes: &[u8]) -> Option<(u64, &[u8])> {
    const POWERS: [u64; 9] = [
        1,
        10,
        100,
        1_000,
        10_000,
        100_000,
        1_000_000,
        10_000_000,
        100_000_000,
    ];
    let mut value: u64 = 0;
    let mut used = 0;
    loop {
        let rest = bytes.get(used..)?;
        let word = match rest.first_chunk::<8>() {
            // One 8-byte load: the usual case, an id with more of the value after it.
            Some(chunk) => u64::from_le_bytes(*chunk),
            None => {
                // Past the end reads as zero bytes, which are not digits.
                let mut word = [0u8; 8];
                word.get_mut(..rest.len())?.copy_from_slice(rest);
                u64::from_le_bytes(word)
            }
        };
        let count = leading_digits(word);
        if count == 0 {
            break;
        }
        let digits = eight_digits(word << (8 * (8 - count)));
        let scale = *POWERS.get(count)?;
        // Below 20 digits in all the product cannot overflow a u64.
        value = if used + count < 20 {
            value.wrapping_mul(scale).wrapping_add(digits)
        } else {
            value.checked_mul(scale)?.checked_add(digits)?
        };
        used += count;
        if count < 8 {
            break;
        }
    }
    if used == 0 {
        return None;
    }
    Some((value, bytes.get(used..)?))
}

/// How many of the eight bytes of `word` (first byte lowest) are ASCII digits before the first
/// byte that is not (see [`non_digit_bits`]). A byte of 0xFA or more carries into the next byte,
/// but it is itself not a digit, so the count stops before the carry matters; UTF-8 text never
/// has such bytes anyway.
pub(crate) fn leading_digits(word: u64) -> usize {
    // 64 trailing zeros when every byte is a digit: 8.
    usize::try_from(non_digit_bits(word).trailing_zeros() / 8).unwrap_or(0)
}

/// Nonzero bits in the bytes of `word` that are not ASCII digits, and (below any byte of 0xFA or
/// more, whose carry spills upward) only in those: a byte is a digit when its high nibble is 3
/// and adding 6 keeps it 3.
fn non_digit_bits(word: u64) -> u64 {
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const THREES: u64 = 0x3030_3030_3030_3030;
    const SIXES: u64 = 0x0606_0606_0606_0606;
    ((word & HIGH) ^ THREES) | ((word.wrapping_add(SIXES) & HIGH) ^ THREES)
}

/// The value of eight ASCII digits in `word`, the first digit in the lowest byte (leading zero
/// digits may be zero bytes): three multiply-and-shift steps combine pairs, quads and halves.
pub(crate) fn eight_digits(word: u64) -> u64 {
    let pairs = ((word & 0x0F0F_0F0F_0F0F_0F0F).wrapping_mul(2561)) >> 8;
    let quads = ((pairs & 0x00FF_00FF_00FF_00FF).wrapping_mul(6_553_601)) >> 16;
    ((quads & 0x0000_FFFF_0000_FFFF).wrapping_mul(42_949_672_960_001)) >> 32
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
    ///
    /// Every cart line's value comes through here, so a valid value is read in one pass over its
    /// bytes (about half the instructions of splitting it first and parsing each field). Anything
    /// the one pass does not accept is read again by the field-by-field reader, which defines the
    /// format and names the error; a test checks that the two agree.
    pub fn decode(text: &str, shop_exponent: u8) -> Result<VariantData, FormatError> {
        let fast = text
            .as_bytes()
            .strip_prefix(VERSION_PREFIX.as_bytes())
            .and_then(|rest| rest.strip_prefix(b"|"))
            .and_then(|fields| Self::decode_one_pass(fields, shop_exponent));
        match fast {
            Some(data) => Ok(data),
            None => Self::decode_by_fields(text, shop_exponent),
        }
    }

    /// The fields after `mw1|` in one pass; `None` for anything but a valid value.
    fn decode_one_pass(fields: &[u8], shop_exponent: u8) -> Option<VariantData> {
        let bar = fields.iter().position(|&b| b == b'|')?;
        let (cost, rest) = fields.split_at_checked(bar)?;
        let unit_cost_minor = if cost.is_empty() {
            None
        } else {
            Some(crate::money::parse_decimal_minor_bytes(cost, shop_exponent).filter(|c| *c >= 0)?)
        };
        let (product_id, rest) = leading_u64(rest.get(1..)?)?;
        let mut rest = rest.strip_prefix(b"|")?;
        let mut complements;
        match rest.strip_prefix(b"|") {
            Some(after) => {
                complements = Vec::new();
                rest = after;
            }
            None => {
                complements = Vec::with_capacity(MAX_COMPLEMENTS);
                loop {
                    let (id, after) = leading_u64(rest)?;
                    complements.push(id);
                    match after.split_first()? {
                        // Entries beyond the limit are not read, as in `decode_by_fields`.
                        (b',', after) if complements.len() == MAX_COMPLEMENTS => {
                            let bar = after.iter().position(|&b| b == b'|')?;
                            rest = after.get(bar + 1..)?;
                            break;
                        }
                        (b',', after) => rest = after,
                        (b'|', after) => {
                            rest = after;
                            break;
                        }
                        _ => return None,
                    }
                }
            }
        }
        if !rest.iter().all(|&b| b == b'B') {
            return None;
        }
        Some(VariantData {
            unit_cost_minor,
            product_id,
            complements,
            bundle_parent: !rest.is_empty(),
        })
    }

    /// The format's definition: split into fields, then read each.
    fn decode_by_fields(text: &str, shop_exponent: u8) -> Result<VariantData, FormatError> {
        let [cost, product, complements, flags] = split_fields::<4>(text)?;
        let unit_cost_minor = if cost.is_empty() {
            None
        } else {
            let minor = crate::money::parse_decimal_minor(cost, shop_exponent)
                .filter(|c| *c >= 0)
                .ok_or(FormatError::BadField { field: "unit_cost" })?;
            Some(minor)
        };
        let product_id = parse_u64(product.as_bytes()).ok_or(FormatError::BadField {
            field: "product_id",
        })?;
        let mut list = Vec::new();
        if !complements.is_empty() {
            for id in complements
                .as_bytes()
                .split(|&b| b == b',')
                .take(MAX_COMPLEMENTS)
            {
                list.push(parse_u64(id).ok_or(FormatError::BadField {
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

/// The numeric id at the end of a Shopify GID (`gid://shopify/Product/123` -> 123): everything
/// after the last `/` (or the whole text without one), which must be digits only.
///
/// The cart transform reads one per cart line. The usual GID (at least 16 bytes, at most 16
/// digits) is read from its last two 8-byte words: their trailing digits are counted, and the
/// digits converted, a word at a time; searching for the `/` byte by byte and then parsing
/// cost about 440 instructions. Anything else takes that general path.
pub fn gid_number(gid: &str) -> Option<u64> {
    let bytes = gid.as_bytes();
    let words = bytes
        .len()
        .checked_sub(16)
        .and_then(|start| bytes.get(start..));
    let Some((prior, last)) =
        words.and_then(|w| Some((w.first_chunk::<8>()?, w.last_chunk::<8>()?)))
    else {
        return gid_number_general(bytes);
    };
    let low = u64::from_le_bytes(*last);
    let low_digits = trailing_digits(low);
    let (digits, value) = if low_digits < 8 {
        (low_digits, eight_digits(keep_high_bytes(low, low_digits)))
    } else {
        let high = u64::from_le_bytes(*prior);
        let high_digits = trailing_digits(high);
        if high_digits == 8 {
            return gid_number_general(bytes);
        }
        let high_value = eight_digits(keep_high_bytes(high, high_digits));
        // At most 15 digits in all: the value is below 10^15, so nothing overflows.
        (
            8 + high_digits,
            high_value
                .wrapping_mul(100_000_000)
                .wrapping_add(eight_digits(low)),
        )
    };
    // At most 15 digits in at least 16 bytes: a byte precedes them, and it must be the `/`.
    let separator = bytes
        .len()
        .checked_sub(digits + 1)
        .and_then(|i| bytes.get(i));
    (digits > 0 && separator == Some(&b'/')).then_some(value)
}

/// [`gid_number`] on any text.
fn gid_number_general(bytes: &[u8]) -> Option<u64> {
    let tail = bytes.rsplit(|&b| b == b'/').next()?;
    parse_u64(tail)
}

/// How many of the eight bytes of `word` are ASCII digits after the last byte that is not (the
/// last byte is the highest). The same test as [`leading_digits`]; a byte of 0xFA or more, whose
/// carry could hide a digit above it, never occurs in UTF-8 text.
fn trailing_digits(word: u64) -> usize {
    usize::try_from(non_digit_bits(word).leading_zeros() / 8).unwrap_or(0)
}

/// `word` with all but its `count` highest bytes zeroed (`count` at most 8), as
/// [`eight_digits`] reads a number of fewer than eight digits.
fn keep_high_bytes(word: u64, count: usize) -> u64 {
    match u32::try_from(8usize.saturating_sub(count) * 8) {
        Ok(shift) if shift < 64 => word & (u64::MAX << shift),
        _ => 0,
    }
}

// ---------------------------------------------------------------------------------------------
// Bundle definitions (`$app.bundles` on the cart transform), added after the first contract.
// ---------------------------------------------------------------------------------------------

/// Key of the bundle definitions metafield on the cart transform (text).
pub const BUNDLES_KEY: &str = "bundles";

/// Key of the line attribute the cart transform sets on the lines it creates (see
/// [`BUNDLE_MARKER_MERGED`] and [`BUNDLE_MARKER_EXPANDED`]). The leading underscore keeps it out
/// of most themes' line-item property lists.
pub const BUNDLE_MARKER_KEY: &str = "_mw_bundle";
/// Marker value on a bundle parent line created by a merge: it is never expanded again.
pub const BUNDLE_MARKER_MERGED: &str = "m1";
/// Marker value on a component line created by an expansion: it is never merged again.
pub const BUNDLE_MARKER_EXPANDED: &str = "x1";

/// A Function reads at most this many bytes of one metafield; a longer value arrives as null.
pub const MAX_FUNCTION_METAFIELD_BYTES: usize = 10_000;
/// At most this many components per bundle (an expansion renders up to two items per component).
pub const MAX_BUNDLE_COMPONENTS: usize = 16;
/// Largest quantity of one component in one bundle.
pub const MAX_BUNDLE_COMPONENT_QUANTITY: i64 = 100;
/// Largest price weight of one component unit.
pub const MAX_BUNDLE_WEIGHT: i64 = 1_000_000;

/// One component of a bundle: `quantity` units of a variant per bundle, each worth `weight`
/// shares of the parent's price when a parent sold as one line is expanded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BundleComponent {
    /// Numeric part of the component variant's GID.
    pub variant_id: u64,
    /// Units per bundle, 1..=[`MAX_BUNDLE_COMPONENT_QUANTITY`].
    pub quantity: i64,
    /// Price weight of one unit, 1..=[`MAX_BUNDLE_WEIGHT`].
    pub weight: i64,
}

/// One bundle: a parent variant that stands for its components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleDefinition {
    /// Numeric part of the parent variant's GID.
    pub parent_variant_id: u64,
    /// Distinct component variants, in the merchant's order.
    pub components: Vec<BundleComponent>,
}

/// The readable bundles of a `$app.bundles` value, and why each unreadable one was skipped
/// (position in the list, error).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DecodedBundles {
    pub bundles: Vec<BundleDefinition>,
    pub skipped: Vec<(usize, FormatError)>,
}

/// Renders the `$app.bundles` metafield value:
/// `mw1|<parent>=<component>x<quantity>:<weight>+...;<next parent>=...`, every id the numeric
/// part of a variant GID. Bundles and components keep their order (it decides ties).
pub fn encode_bundles(bundles: &[BundleDefinition]) -> String {
    let mut text = String::from(VERSION_PREFIX);
    text.push('|');
    for (index, bundle) in bundles.iter().enumerate() {
        if index > 0 {
            text.push(';');
        }
        text.push_str(&bundle.parent_variant_id.to_string());
        text.push('=');
        for (position, component) in bundle.components.iter().enumerate() {
            if position > 0 {
                text.push('+');
            }
            text.push_str(&format!(
                "{}x{}:{}",
                component.variant_id, component.quantity, component.weight
            ));
        }
    }
    text
}

/// Reads a `$app.bundles` metafield value. Only a wrong version or shape of the whole value is an
/// error; a malformed bundle is skipped (and listed in `skipped`) while the others still apply,
/// as a malformed offer is skipped in a policy.
///
/// Skipped as well: a second bundle with the same parent (`duplicate_parent`), and a bundle whose
/// parent is a component of an earlier bundle or whose components include an earlier bundle's
/// parent (`nested`): a line can only be either a component or a parent, never both.
pub fn decode_bundles(text: &str) -> Result<DecodedBundles, FormatError> {
    let Some((list, _)) = bundle_list(text) else {
        // No `mw1|`: the field reader names what is wrong.
        return Err(not_one_field(text));
    };
    let mut decoded = DecodedBundles::default();
    if list.is_empty() {
        return Ok(decoded);
    }
    // Clashes with the bundles accepted before are found through two id tables (checking every
    // earlier bundle was quadratic: 0.14 M instructions for a list of 40 bundles), sized from the
    // text's length: every component takes at least six bytes.
    let most_components = list.len() / 6 + 1;
    let mut parents = MinTable::with_capacity(most_components);
    let mut components = MinTable::with_capacity(most_components);
    // Every item is read in one pass over its bytes when it is valid (measured on a 40-bundle
    // list: 118 K fewer instructions than splitting and parsing each part with `str` methods, and
    // a Function reads the whole list on every run); anything else is read again by
    // `decode_bundle`, which defines the format and names the error. Property tests check that the
    // two agree. The list is not searched for a `|` first (40 K instructions for that list): the
    // one pass accepts none, and the item reader stops at one.
    let mut start = 0;
    let mut index = 0;
    loop {
        let rest = list.get(start..).unwrap_or_default();
        let (item, next) = match decode_bundle_one_pass(rest.as_bytes()) {
            Some((bundle, after)) => (Ok(bundle), after.map(|after| list.len() - after.len())),
            None => {
                let end = rest.bytes().position(|b| b == b';' || b == b'|');
                if let Some(b'|') = end.and_then(|end| rest.as_bytes().get(end)) {
                    return Err(not_one_field(text));
                }
                let item = rest.get(..end.unwrap_or(rest.len())).unwrap_or_default();
                (decode_bundle(item), end.map(|end| start + end + 1))
            }
        };
        let checked = item.and_then(|bundle| match clash(&bundle, &parents, &components) {
            Some(field) => Err(FormatError::BadField { field }),
            None => Ok(bundle),
        });
        match checked {
            Ok(bundle) => {
                let accepted = u32::try_from(decoded.bundles.len()).unwrap_or(u32::MAX);
                parents.lower(bundle.parent_variant_id, accepted);
                for component in &bundle.components {
                    components.lower(component.variant_id, accepted);
                }
                decoded.bundles.push(bundle);
            }
            Err(error) => decoded.skipped.push((index, error)),
        }
        index += 1;
        match next {
            Some(next) => start = next,
            None => return Ok(decoded),
        }
    }
}

/// Length of the fingerprint field that ends a checked list: `|` and 16 lower-case hex digits.
const FINGERPRINT_FIELD: usize = 17;

/// The seed of a checked list's fingerprint (xxh64 of the list and its index). Frozen with the
/// format.
const FINGERPRINT_SEED: u64 = 0;

/// What follows the list of a checked `$app.bundles` value.
struct CheckedParts<'t> {
    /// The list, `|` and the index: the bytes the fingerprint is of.
    covered: &'t str,
    index: bundle_index::BundleIndex<'t>,
    fingerprint: u64,
}

/// The list of a `$app.bundles` value, and its index and fingerprint when it is checked; `None`
/// without the `mw1|` prefix. A list never holds a `|`, so a value that goes on after its list
/// with `|`, an index and `|` and 16 hex digits is a checked list. The index says how long it is,
/// so the list's end is found without a search (searching for it, and checking the index's
/// digits, cost about 39 K instructions a read of the budget carts' 3.7 KB value).
fn bundle_list(text: &str) -> Option<(&str, Option<CheckedParts<'_>>)> {
    let rest = text
        .strip_prefix(VERSION_PREFIX)
        .and_then(|rest| rest.strip_prefix('|'))?;
    let checked = rest.len().checked_sub(FINGERPRINT_FIELD).and_then(|at| {
        let (covered, field) = rest.split_at_checked(at)?;
        let fingerprint = fingerprint_value(field.strip_prefix('|')?.as_bytes())?;
        let (list, index) = bundle_index::BundleIndex::split(covered)?;
        Some((
            list,
            CheckedParts {
                covered,
                index,
                fingerprint,
            },
        ))
    });
    Some(match checked {
        Some((list, parts)) => (list, Some(parts)),
        None => (rest, None),
    })
}

/// Whether a `$app.bundles` value is a checked list, with an index and a fingerprint (whether
/// the fingerprint matches is another matter: see [`checked_bundles_mentioning`]).
pub fn is_checked(text: &str) -> bool {
    matches!(bundle_list(text), Some((_, Some(_))))
}

/// How many id mentions (parents and components) the index of a checked `$app.bundles` value
/// holds; `None` for a value that is not a checked list. It tells how long the list is without
/// reading it.
pub fn checked_mentions(text: &str) -> Option<usize> {
    Some(bundle_list(text)?.1?.index.postings())
}

/// The value of lower-case hex digits (16 at most), `None` when another byte is among them.
/// Shared by the checked bundle list, its index and the compiled policy.
pub(crate) fn fingerprint_value(hex: &[u8]) -> Option<u64> {
    hex.iter().try_fold(0u64, |n, &b| {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        Some((n << 4) | u64::from(digit))
    })
}

/// Renders a checked `$app.bundles` value: the list of [`encode_bundles`], its index and their
/// fingerprint, `mw1|<list>|<index>|<xxh64 of list|index, 16 hex digits>` (the index is
/// described in [`bundle_index`]). Only a list in which every bundle is read and accepted is
/// checked (fails with the skipped bundles' positions and errors otherwise): the fingerprint
/// tells the cart transform that nothing in it needs reporting, so on a small cart it reads only
/// the bundles that mention one of the cart's variants (see [`checked_bundles_mentioning`]).
///
/// The index takes fewer buckets when the value would not fit in the
/// [`MAX_FUNCTION_METAFIELD_BYTES`] a Function reads; when no index fits, the value is the plain
/// list, which the cart transform reads whole (same decisions, more instructions).
pub fn encode_checked_bundles(
    bundles: &[BundleDefinition],
) -> Result<String, Vec<(usize, FormatError)>> {
    let text = encode_bundles(bundles);
    let decoded = decode_bundles(&text).map_err(|error| vec![(0, error)])?;
    if !decoded.skipped.is_empty() {
        return Err(decoded.skipped);
    }
    let list = text.get(VERSION_PREFIX.len() + 1..).unwrap_or_default();
    let mentions = bundles.iter().map(|b| 1 + b.components.len()).sum();
    let mut bits = bundle_index::bits_for(mentions);
    loop {
        if let Some(index) = bundle_index::encode(list.as_bytes(), bits) {
            let covered = format!("{list}|{index}");
            let fingerprint = xxhash_rust::xxh64::xxh64(covered.as_bytes(), FINGERPRINT_SEED);
            let checked = format!("{VERSION_PREFIX}|{covered}|{fingerprint:016x}");
            if checked.len() <= MAX_FUNCTION_METAFIELD_BYTES {
                return Ok(checked);
            }
        }
        match bits.checked_sub(1) {
            Some(fewer) => bits = fewer,
            None => return Ok(text),
        }
    }
}

/// Why a `$app.bundles` value cannot be read through [`checked_bundles_mentioning`]; the reader
/// then reads it whole with [`decode_bundles`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unchecked {
    /// It has no index and fingerprint (a list written by hand, by [`encode_bundles`], or too
    /// long for its index).
    Plain,
    /// Its fingerprint does not match the list and index, or the index or a bundle it points to
    /// cannot be read: it was changed after it was checked.
    Stale,
}

/// The bundles of a checked list whose parent or some component is one of `variants`, in list
/// order: on a checked list the same bundles [`decode_bundles`] would accept among those that
/// mention a variant of `variants` (every bundle of a checked list is accepted, and none is
/// skipped), found without reading the others.
///
/// What it costs is the fingerprint (about 2.5 instructions a byte) and, for each variant, its
/// bucket of the index (see [`bundle_index`]): each posting there is checked against the id's
/// digits, and only the bundles with a match decoded. The search that came before the index read
/// every byte of the list for every cart: about 30 K instructions on a 40-bundle list.
pub fn checked_bundles_mentioning(
    text: &str,
    variants: &[u64],
) -> Result<Vec<BundleDefinition>, Unchecked> {
    let Some((list, Some(checked))) = bundle_list(text) else {
        return Err(Unchecked::Plain);
    };
    if xxhash_rust::xxh64::xxh64(checked.covered.as_bytes(), FINGERPRINT_SEED)
        != checked.fingerprint
    {
        return Err(Unchecked::Stale);
    }
    let index = checked.index;
    let bytes = list.as_bytes();
    // Where each bundle that mentions a wanted id starts, in list order.
    let mut starts: Vec<usize> = Vec::new();
    for &variant in variants {
        let digits = Digits::of(variant);
        for end in index.candidates(variant).ok_or(Unchecked::Stale)? {
            let end = end.ok_or(Unchecked::Stale)?;
            if !matches!(bytes.get(end), Some(b'=' | b'x')) {
                return Err(Unchecked::Stale);
            }
            if !digits.end_at(bytes, end) {
                continue;
            }
            let start = bytes
                .get(..end)
                .and_then(|before| before.iter().rposition(|&b| b == b';'))
                .map_or(0, |at| at + 1);
            if let Err(at) = starts.binary_search(&start) {
                starts.insert(at, start);
            }
        }
    }
    starts
        .into_iter()
        .map(|start| {
            let bundle = bytes.get(start..).unwrap_or_default();
            decode_bundle_one_pass(bundle)
                .map(|(definition, _)| definition)
                .ok_or(Unchecked::Stale)
        })
        .collect()
}

/// The decimal digits of an id, to find it in a checked list: its first and last (up to) eight
/// digits as words, compared a word at a time (a `memcmp` of the digits cost about 230
/// instructions a call in the Function).
struct Digits {
    len: usize,
    /// The first `min(len, 8)` digits, first lowest, zeros above.
    head: u64,
    /// The last eight digits (only used when there are more than eight).
    tail: u64,
}

impl Digits {
    fn of(id: u64) -> Digits {
        let mut buffer = itoa::Buffer::new();
        let text = buffer.format(id).as_bytes();
        Digits {
            len: text.len(),
            head: word_at(text.get(..text.len().min(8)).unwrap_or_default(), 0),
            tail: word_at(text, text.len().saturating_sub(8)),
        }
    }

    /// Whether these digits are the whole id that ends just before `end` in `list`: they sit
    /// there, and before them is the list's start or a `;`, `=` or `+`.
    fn end_at(&self, list: &[u8], end: usize) -> bool {
        let Some(start) = end.checked_sub(self.len) else {
            return false;
        };
        let head_mask = match self.len {
            0..8 => (1u64 << (8 * self.len)) - 1,
            _ => u64::MAX,
        };
        (self.len <= 8 || word_at(list, end - 8) == self.tail)
            && word_at(list, start) & head_mask == self.head
            && (start == 0 || matches!(list.get(start - 1), Some(b';' | b'=' | b'+')))
    }
}

/// The eight bytes of `bytes` from `at` as a word (first byte lowest), zeros past the end.
fn word_at(bytes: &[u8], at: usize) -> u64 {
    let rest = bytes.get(at..).unwrap_or_default();
    match rest.first_chunk::<8>() {
        Some(chunk) => u64::from_le_bytes(*chunk),
        None => {
            let mut word = [0u8; 8];
            if let Some(slot) = word.get_mut(..rest.len()) {
                slot.copy_from_slice(rest);
            }
            u64::from_le_bytes(word)
        }
    }
}

/// Why `text` is not a one-field `mw1|` value, as the field reader says it.
fn not_one_field(text: &str) -> FormatError {
    match split_fields::<1>(text) {
        Err(error) => error,
        // Not reached: callers found a missing prefix or a second field.
        Ok(_) => FormatError::FieldCount {
            expected: 1,
            found: 2,
        },
    }
}

/// How `bundle` clashes with the earliest accepted bundle it clashes with: the same parent
/// (`duplicate_parent`), or a parent that is the other's component or the reverse (`nested`).
/// `parents` and `components` give, for each variant, the first accepted bundle that has it as
/// its parent or among its components.
fn clash(
    bundle: &BundleDefinition,
    parents: &MinTable,
    components: &MinTable,
) -> Option<&'static str> {
    let duplicate = parents.get(bundle.parent_variant_id);
    let nested = bundle
        .components
        .iter()
        .filter_map(|c| parents.get(c.variant_id))
        .chain(components.get(bundle.parent_variant_id))
        .min();
    match (duplicate, nested) {
        (Some(duplicate), Some(nested)) if nested < duplicate => Some("nested"),
        (Some(_), _) => Some("duplicate_parent"),
        (None, Some(_)) => Some("nested"),
        (None, None) => None,
    }
}

/// One valid bundle at the start of `bytes`, and what follows its `;` (`None` when it ends the
/// list); `None` for anything [`decode_bundle`] would not accept as it is.
fn decode_bundle_one_pass(bytes: &[u8]) -> Option<(BundleDefinition, Option<&[u8]>)> {
    let (parent_variant_id, rest) = leading_u64(bytes)?;
    let mut rest = rest.strip_prefix(b"=")?;
    let mut components: Vec<BundleComponent> = Vec::with_capacity(MAX_BUNDLE_COMPONENTS);
    let mut units = 0;
    loop {
        let (variant_id, after) = leading_u64(rest)?;
        let (quantity, after) = leading_u64(after.strip_prefix(b"x")?)?;
        let (weight, after) = leading_u64(after.strip_prefix(b":")?)?;
        let quantity = i64::try_from(quantity).ok()?;
        let weight = i64::try_from(weight).ok()?;
        if !(1..=MAX_BUNDLE_COMPONENT_QUANTITY).contains(&quantity)
            || !(1..=MAX_BUNDLE_WEIGHT).contains(&weight)
            || variant_id == parent_variant_id
            || components.iter().any(|c| c.variant_id == variant_id)
            || components.len() == MAX_BUNDLE_COMPONENTS
        {
            return None;
        }
        units += quantity;
        components.push(BundleComponent {
            variant_id,
            quantity,
            weight,
        });
        let next = match after.split_first() {
            None => None,
            Some((b'+', after)) => {
                rest = after;
                continue;
            }
            Some((b';', after)) => Some(after),
            Some(_) => return None,
        };
        if units < 2 {
            return None;
        }
        let bundle = BundleDefinition {
            parent_variant_id,
            components,
        };
        return Some((bundle, next));
    }
}

fn decode_bundle(item: &str) -> Result<BundleDefinition, FormatError> {
    let (parent, components) = item
        .split_once('=')
        .ok_or(FormatError::BadField { field: "parent" })?;
    let parent_variant_id = parent
        .parse::<u64>()
        .map_err(|_| FormatError::BadField { field: "parent" })?;
    let mut bundle = BundleDefinition {
        parent_variant_id,
        components: Vec::new(),
    };
    for component in components.split('+') {
        let (variant, rest) = component
            .split_once('x')
            .ok_or(FormatError::BadField { field: "component" })?;
        let (quantity, weight) = rest
            .split_once(':')
            .ok_or(FormatError::BadField { field: "weight" })?;
        let variant_id = variant
            .parse::<u64>()
            .map_err(|_| FormatError::BadField { field: "component" })?;
        let quantity = int(quantity, "quantity")?;
        if !(1..=MAX_BUNDLE_COMPONENT_QUANTITY).contains(&quantity) {
            return Err(FormatError::BadField { field: "quantity" });
        }
        let weight = int(weight, "weight")?;
        if !(1..=MAX_BUNDLE_WEIGHT).contains(&weight) {
            return Err(FormatError::BadField { field: "weight" });
        }
        if variant_id == parent_variant_id {
            return Err(FormatError::BadField { field: "nested" });
        }
        if bundle.components.iter().any(|c| c.variant_id == variant_id) {
            return Err(FormatError::BadField {
                field: "duplicate_component",
            });
        }
        bundle.components.push(BundleComponent {
            variant_id,
            quantity,
            weight,
        });
    }
    if bundle.components.len() > MAX_BUNDLE_COMPONENTS {
        return Err(FormatError::BadField {
            field: "components",
        });
    }
    // A bundle of one unit would merge a line into a parent that stands for the same thing.
    let units: i64 = bundle.components.iter().map(|c| c.quantity).sum();
    if units < 2 {
        return Err(FormatError::BadField { field: "units" });
    }
    Ok(bundle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The word-at-a-time integer reader agrees with reading the digits one by one.
    mod leading_integer {
        #![allow(clippy::indexing_slicing)]
        use super::*;
        use proptest::prelude::*;

        fn reference(bytes: &[u8]) -> Option<(u64, &[u8])> {
            let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
            let value = std::str::from_utf8(&bytes[..digits])
                .ok()?
                .parse::<u64>()
                .ok()?;
            Some((value, &bytes[digits..]))
        }

        #[test]
        fn edges() {
            for text in [
                "",
                "0",
                "7|",
                "12345678",
                "123456789",
                "1234567812345678",
                "12345678123456789,",
                "18446744073709551615",
                "18446744073709551616",
                "00000000000000000000000001",
                "99999999999999999999",
                "1/",
                "9:",
                "x1",
                "1é",
                "0000000018446744073709551615|",
            ] {
                assert_eq!(
                    leading_u64(text.as_bytes()),
                    reference(text.as_bytes()),
                    "{text:?}"
                );
            }
            for byte in 0..=255u8 {
                for at in 0..10 {
                    let mut bytes = b"1234567890".to_vec();
                    bytes[at] = byte;
                    assert_eq!(leading_u64(&bytes), reference(&bytes), "{bytes:?}");
                }
            }
        }

        proptest! {
            #[test]
            fn digit_runs(text in "[0-9]{0,30}[|,a-z]?[0-9]{0,5}") {
                prop_assert_eq!(leading_u64(text.as_bytes()), reference(text.as_bytes()));
            }
        }
    }

    /// The one-pass bundle reader agrees with splitting the list and reading each bundle.
    mod bundles_one_pass {
        use super::*;
        use proptest::prelude::*;

        fn piece() -> impl Strategy<Value = String> {
            prop_oneof![
                Just(";".to_string()),
                Just("|".to_string()),
                Just("+".to_string()),
                Just("=".to_string()),
                Just("x".to_string()),
                Just(":".to_string()),
                Just("x1:1".to_string()),
                Just("x2:5+".to_string()),
                Just("18446744073709551616".to_string()),
                Just("|00000".to_string()),
                Just("|0123456789abcdef".to_string()),
                "[0-9]{1,3}",
                "[0-9]{1,21}",
                "[a-z -]",
            ]
        }

        /// Texts made of the format's own pieces: mostly near-valid, often valid.
        fn near_valid() -> impl Strategy<Value = String> {
            prop::collection::vec(piece(), 0..24)
                .prop_map(|pieces| format!("mw1|{}", pieces.concat()))
        }

        /// Valid lists with shared ids, so that duplicates and nesting are common.
        fn valid() -> impl Strategy<Value = String> {
            let component =
                (1u64..8, 1i64..4, 1i64..50).prop_map(|(v, q, w)| format!("{v}x{q}:{w}"));
            let bundle = (1u64..8, prop::collection::vec(component, 1..4))
                .prop_map(|(parent, parts)| format!("{parent}={}", parts.join("+")));
            prop::collection::vec(bundle, 0..6).prop_map(|list| format!("mw1|{}", list.join(";")))
        }

        /// What `decode_bundles` read before the one pass: split, read each, check clashes
        /// (after a checked list's index and fingerprint fields, found as `decode_bundles` finds
        /// them and not verified).
        fn reference(text: &str) -> Result<DecodedBundles, FormatError> {
            let text = match bundle_list(text) {
                Some((list, Some(_))) if !list.contains('|') => {
                    text.get(..4 + list.len()).unwrap_or(text)
                }
                _ => text,
            };
            let [list] = split_fields::<1>(text)?;
            let mut decoded = DecodedBundles::default();
            if list.is_empty() {
                return Ok(decoded);
            }
            for (index, item) in list.split(';').enumerate() {
                let checked = decode_bundle(item).and_then(|bundle| {
                    let clash = decoded.bundles.iter().find_map(|earlier| {
                        if earlier.parent_variant_id == bundle.parent_variant_id {
                            Some("duplicate_parent")
                        } else if earlier
                            .components
                            .iter()
                            .any(|c| c.variant_id == bundle.parent_variant_id)
                            || bundle
                                .components
                                .iter()
                                .any(|c| c.variant_id == earlier.parent_variant_id)
                        {
                            Some("nested")
                        } else {
                            None
                        }
                    });
                    match clash {
                        Some(field) => Err(FormatError::BadField { field }),
                        None => Ok(bundle),
                    }
                });
                match checked {
                    Ok(bundle) => decoded.bundles.push(bundle),
                    Err(error) => decoded.skipped.push((index, error)),
                }
            }
            Ok(decoded)
        }

        /// Both readers give the same list, and the one pass reads every bundle written the way
        /// `encode_bundles` writes it (it may leave other spellings, such as `+5`, to the
        /// field reader, but never a canonical one).
        fn check(text: &str) {
            assert_eq!(decode_bundles(text), reference(text), "{text:?}");
            let Ok([list]) = split_fields::<1>(text) else {
                return;
            };
            for item in list.split(';') {
                let one_pass = decode_bundle_one_pass(item.as_bytes()).map(|(bundle, _)| bundle);
                match decode_bundle(item) {
                    Ok(bundle)
                        if encode_bundles(std::slice::from_ref(&bundle))
                            == format!("mw1|{item}") =>
                    {
                        assert_eq!(one_pass, Some(bundle), "{item:?}");
                    }
                    Ok(bundle) => {
                        assert!(one_pass.is_none() || one_pass == Some(bundle), "{item:?}")
                    }
                    Err(_) => assert_eq!(one_pass, None, "{item:?}"),
                }
            }
        }

        #[test]
        fn known_texts() {
            for text in [
                "mw1|",
                "mw1|;",
                "mw1|900=1x1:1+2x1:1",
                "mw1|900=1x1:1+2x1:1;",
                "mw1|900=1x2:1;901=1x1:1+900x1:1;900=3x2:1",
                "mw1|900=1x+2:1",
                "mw1|+900=1x2:1",
                "mw1|900=1x2:1+",
                "mw1|900=1x101:1",
                "mw1|900=1x1:1",
                "mw1|900=900x2:1",
                "mw1|900=1x1:1+1x1:1",
                "mw1|9=1x1:1+2x1:1+3x1:1+4x1:1+5x1:1+6x1:1+7x1:1+8x1:1+10x1:1+11x1:1+12x1:1+13x1:1+14x1:1+15x1:1+16x1:1+17x1:1+18x1:1",
            ] {
                check(text);
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(4_000))]
            #[test]
            fn agrees_on_near_valid_texts(text in near_valid()) {
                check(&text);
            }

            #[test]
            fn agrees_on_valid_lists(text in valid()) {
                check(&text);
            }
        }
    }

    /// The one-pass reader of `$app.offer` values accepts exactly what the field-by-field reader
    /// accepts, with the same result: on texts built from the format's own pieces (so most are
    /// valid or nearly so) and on arbitrary texts.
    mod variant_one_pass {
        use super::*;
        use proptest::prelude::*;

        fn piece() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("|".to_string()),
                Just(",".to_string()),
                Just("B".to_string()),
                Just(".".to_string()),
                Just("-".to_string()),
                Just("18446744073709551615".to_string()),
                Just("18446744073709551616".to_string()),
                Just("99999999999999999999".to_string()),
                "[0-9]{1,21}",
                "[0-9]{1,4}\\.[0-9]{1,4}",
                "[a-zA-Z+ é]",
            ]
        }

        fn near_valid() -> impl Strategy<Value = String> {
            prop::collection::vec(piece(), 0..16)
                .prop_map(|pieces| format!("mw1|{}", pieces.concat()))
        }

        fn check(text: &str) {
            for exponent in [0, 2, 3] {
                let one_pass = text
                    .as_bytes()
                    .strip_prefix(b"mw1|")
                    .and_then(|fields| VariantData::decode_one_pass(fields, exponent));
                let by_fields = VariantData::decode_by_fields(text, exponent);
                match one_pass {
                    Some(data) => assert_eq!(Ok(data), by_fields, "{text:?}"),
                    // The one pass gives up only on texts the field reader rejects too.
                    None => assert!(
                        by_fields.is_err(),
                        "{text:?} read only by fields: {by_fields:?}"
                    ),
                }
                assert_eq!(VariantData::decode(text, exponent), by_fields, "{text:?}");
            }
        }

        #[test]
        fn known_texts() {
            for text in [
                "mw1|4.00|7000000|7000003,7000006,7000009|",
                "mw1||5||B",
                "mw1|0|5||",
                "mw1|1.5|5|1,2,3,4,5,6,7,8,9,10|",
                "mw1|1.5|5|1,2,3,4,5,6,7,8,x|",
                "mw1|1.5|5|1,,2|",
                "mw1|1.5|5|1,2,|",
                "mw1|1.5|5|1|BB",
                "mw1|1.5|5|1|Bx",
                "mw1|1.5|5|1||",
                "mw1|1.5||1|",
                "mw1|-1.00|5||",
                "mw1|1.00|5|x|",
                "mw1|1.00|18446744073709551616||",
                "mw1|1.00|18446744073709551615|18446744073709551615|",
                "mw1|",
                "mw1",
                "mw2|1|2||",
            ] {
                check(text);
            }
        }

        proptest! {
            #[test]
            fn near_valid_texts(text in near_valid()) {
                check(&text);
            }

            #[test]
            fn arbitrary_texts(text in "mw1\\|[0-9|,.B+-]{0,40}") {
                check(&text);
            }
        }
    }

    /// The byte-level integer reader accepts exactly what `str::parse::<u64>` accepts, except a
    /// leading `+`, which no writer of these formats produces.
    #[test]
    fn parse_u64_agrees_with_std() {
        let max = u64::MAX.to_string();
        let mut cases: Vec<String> = [
            "",
            "0",
            "7",
            "00012",
            "18446744073709551615",
            "18446744073709551616",
            "18446744073709551610",
            "18446744073709551619",
            "99999999999999999999",
            "-1",
            " 1",
            "1 ",
            "1a",
            "a1",
            "é9",
            "1844674407370955161",
            "184467440737095516150",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for cut in 1..max.len() {
            cases.push(max[..cut].to_string());
        }
        for case in &cases {
            assert_eq!(
                parse_u64(case.as_bytes()),
                case.parse::<u64>().ok(),
                "{case:?}"
            );
        }
        assert_eq!(parse_u64(b"+12"), None);
        assert_eq!(
            gid_number("gid://shopify/ProductVariant/44100000000123"),
            Some(44_100_000_000_123)
        );
        assert_eq!(gid_number("a/b/7"), Some(7));
        assert_eq!(gid_number("12"), Some(12));
        for bad in [
            "gid://shopify/ProductVariant/",
            "",
            "gid://shopify/ProductVariant/+12",
            "x/é9",
        ] {
            assert_eq!(gid_number(bad), None, "{bad:?}");
        }
    }

    /// The word-at-a-time GID reader agrees with taking what follows the last `/` and parsing
    /// it, on GID-like texts with every length of number around the 8- and 16-byte words.
    mod gid_numbers {
        use super::*;
        use proptest::prelude::*;

        fn piece() -> impl Strategy<Value = String> {
            prop_oneof![
                "[0-9]{0,22}",
                "0{0,20}[1-9][0-9]{0,3}",
                Just("/".to_string()),
                Just("gid://shopify/ProductVariant/".to_string()),
                "[a-z/+ é.-]{0,3}",
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(20_000))]
            #[test]
            fn agrees_with_the_general_reader(pieces in proptest::collection::vec(piece(), 0..5)) {
                let text = pieces.concat();
                prop_assert_eq!(gid_number(&text), gid_number_general(text.as_bytes()), "{:?}", text);
            }
        }
    }

    #[test]
    fn fields_are_split_after_the_version() {
        assert_eq!(split_fields::<2>("mw1|a|"), Ok(["a", ""]));
        assert_eq!(split_fields::<1>("mw1|"), Ok([""]));
        assert_eq!(
            split_fields::<2>("mw1"),
            Err(FormatError::FieldCount {
                expected: 2,
                found: 0
            })
        );
        assert_eq!(
            split_fields::<2>("mw1|a|b|c"),
            Err(FormatError::FieldCount {
                expected: 2,
                found: 3
            })
        );
        for bad in ["", "mw", "mw1x|a|b", "mw2|a|b", "|mw1|a|b"] {
            assert_eq!(
                split_fields::<2>(bad),
                Err(FormatError::UnsupportedVersion),
                "{bad:?}"
            );
        }
        assert_eq!(split_fields::<2>("mw1|é|ü"), Ok(["é", "ü"]));
    }

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

    fn bundle(parent: u64, components: &[(u64, i64, i64)]) -> BundleDefinition {
        BundleDefinition {
            parent_variant_id: parent,
            components: components
                .iter()
                .map(|&(variant_id, quantity, weight)| BundleComponent {
                    variant_id,
                    quantity,
                    weight,
                })
                .collect(),
        }
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn bundles_round_trip() {
        let bundles = vec![
            bundle(900, &[(11, 1, 60), (12, 2, 20)]),
            bundle(901, &[(13, 1, 1), (14, 1, 1), (15, 3, 7)]),
        ];
        let text = encode_bundles(&bundles);
        assert_eq!(text, "mw1|900=11x1:60+12x2:20;901=13x1:1+14x1:1+15x3:7");
        let decoded = decode_bundles(&text).unwrap();
        assert_eq!(decoded.bundles, bundles);
        assert!(decoded.skipped.is_empty());
        assert_eq!(decode_bundles("mw1|"), Ok(DecodedBundles::default()));
        assert_eq!(encode_bundles(&[]), "mw1|");
    }

    #[test]
    #[allow(clippy::unwrap_used, clippy::indexing_slicing)]
    fn checked_bundles_read_as_the_plain_list_and_skim_to_the_cart() {
        let bundles = vec![
            bundle(900, &[(11, 1, 60), (12, 2, 20)]),
            bundle(901, &[(13, 1, 1), (111, 1, 1), (15, 3, 7)]),
            bundle(44_100_000_000_000, &[(44_100_000_000_001, 1, 1), (1, 1, 1)]),
        ];
        let plain = encode_bundles(&bundles);
        let checked = encode_checked_bundles(&bundles).unwrap();
        assert!(checked.starts_with(&format!("{plain}|")), "{checked}");
        // 10 mentions: 10 postings and 4 bucket ends of 4 digits, then the 2 bucket bits.
        let index_field = 1 + 4 * (10 + 4) + 1;
        assert_eq!(checked.len(), plain.len() + index_field + FINGERPRINT_FIELD);
        assert_eq!(decode_bundles(&checked), decode_bundles(&plain));
        let skim = |variants: &[u64]| checked_bundles_mentioning(&checked, variants);
        assert_eq!(skim(&[12]), Ok(vec![bundles[0].clone()]));
        // 1 and 11 end other ids (`11x`, `111x`, `...001x`): only whole ids count.
        assert_eq!(skim(&[1]), Ok(vec![bundles[2].clone()]));
        assert_eq!(skim(&[11, 901]), Ok(bundles[..2].to_vec()));
        assert_eq!(skim(&[44_100_000_000_000]), Ok(vec![bundles[2].clone()]));
        assert_eq!(skim(&[100_000_000_001, 2, 20, 60]), Ok(vec![]));
        assert_eq!(skim(&[]), Ok(vec![]));
        // Not checked, or changed after it was checked: read whole instead.
        assert_eq!(
            checked_bundles_mentioning(&plain, &[12]),
            Err(Unchecked::Plain)
        );
        let changed = checked.replacen("12x2", "12x3", 1);
        assert_eq!(
            checked_bundles_mentioning(&changed, &[12]),
            Err(Unchecked::Stale)
        );
        assert_eq!(
            decode_bundles(&changed).unwrap().bundles[0].components[1].quantity,
            3
        );
        let empty = encode_checked_bundles(&[]).unwrap();
        assert_eq!(checked_bundles_mentioning(&empty, &[1]), Ok(vec![]));
        assert_eq!(decode_bundles(&empty), Ok(DecodedBundles::default()));
        // A changed index is stale too, and so is one whose postings point elsewhere.
        let (covered, _) = checked.rsplit_once('|').unwrap();
        let refingerprint = |covered: &str| {
            let hash = xxhash_rust::xxh64::xxh64(&covered.as_bytes()[4..], FINGERPRINT_SEED);
            format!("{covered}|{hash:016x}")
        };
        let (list_part, index) = covered.rsplit_once('|').unwrap();
        let moved = refingerprint(&format!("{list_part}|0001{}", &index[4..]));
        assert!(is_checked(&moved));
        assert_eq!(skim_text(&moved, &bundles), Err(Unchecked::Stale));
        let short = refingerprint(&format!("{list_part}|{}", &index[1..]));
        assert!(!is_checked(&short));
        assert_eq!(skim_text(&short, &bundles), Err(Unchecked::Plain));
        // Fields after the list that are not an index and a fingerprint: the value has more
        // fields than one.
        for bad in [
            format!("{plain}|{}", "g".repeat(16)),
            format!("{plain}|0123456789abcdef"),
            format!("{plain}|xyz|0123456789abcdef"),
            format!("{plain}||0123456789abcdef"),
        ] {
            assert!(!is_checked(&bad), "{bad}");
            assert!(
                matches!(decode_bundles(&bad), Err(FormatError::FieldCount { .. })),
                "{bad}"
            );
        }
    }

    /// Every variant of `bundles` looked up in `text` at once.
    fn skim_text(
        text: &str,
        bundles: &[BundleDefinition],
    ) -> Result<Vec<BundleDefinition>, Unchecked> {
        let variants: Vec<u64> = bundles
            .iter()
            .flat_map(|b| {
                std::iter::once(b.parent_variant_id)
                    .chain(b.components.iter().map(|c| c.variant_id))
            })
            .collect();
        checked_bundles_mentioning(text, &variants)
    }

    #[test]
    fn only_lists_without_a_skipped_bundle_are_checked() {
        let clashing = vec![
            bundle(900, &[(11, 1, 1), (12, 1, 1)]),
            bundle(11, &[(13, 1, 1), (14, 1, 1)]),
        ];
        assert_eq!(
            encode_checked_bundles(&clashing),
            Err(vec![(1, FormatError::BadField { field: "nested" })])
        );
    }

    #[test]
    #[allow(clippy::unwrap_used, clippy::panic)]
    fn malformed_bundles_are_skipped_one_by_one() {
        let text = "mw1|900=11x1:1+12x1:1;x=1x1:1+2x1:1;901=13x0:1+14x1:1;902=15x1:0+16x1:1;\
                    903=17x1:1+17x1:1;904=18x1:1;900=19x1:1+20x1:1;905=900x1:1+21x1:1;\
                    906=906x1:1+22x1:1;907=23x1+24x1:1;908=25y1:1;909=11x1:1+27x2:5";
        let decoded = decode_bundles(text).unwrap();
        let parents: Vec<u64> = decoded
            .bundles
            .iter()
            .map(|b| b.parent_variant_id)
            .collect();
        // 909 shares component 11 with 900: sharing is allowed, the cart transform picks one.
        assert_eq!(parents, vec![900, 909]);
        let skipped: Vec<(usize, &str)> = decoded
            .skipped
            .iter()
            .map(|(index, error)| match error {
                FormatError::BadField { field } => (*index, *field),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            skipped,
            vec![
                (1, "parent"),
                (2, "quantity"),
                (3, "weight"),
                (4, "duplicate_component"),
                (5, "units"),
                (6, "duplicate_parent"),
                (7, "nested"),
                (8, "nested"),
                (9, "weight"),
                (10, "component"),
            ]
        );
        assert_eq!(
            decode_bundles("mw2|900=1x1:1+2x1:1"),
            Err(FormatError::UnsupportedVersion)
        );
        assert_eq!(
            decode_bundles("mw1|900=1x1:1+2x1:1|extra"),
            Err(FormatError::FieldCount {
                expected: 1,
                found: 2
            })
        );
    }

    /// How many bundles fit in the 10,000 bytes a Function reads, with today's 14-digit variant
    /// ids, three components of one unit each and two-digit weights (the figure in the docs).
    #[test]
    #[allow(clippy::unwrap_used)]
    fn bundles_that_fit_in_one_function_read() {
        let fits = |n: u64| {
            let bundles: Vec<BundleDefinition> = (0..n)
                .map(|i| {
                    let base = 44_812_345_000_000 + i * 10;
                    bundle(
                        base,
                        &[(base + 1, 1, 40), (base + 2, 1, 35), (base + 3, 1, 25)],
                    )
                })
                .collect();
            (
                encode_bundles(&bundles).len() <= MAX_FUNCTION_METAFIELD_BYTES,
                is_checked(&encode_checked_bundles(&bundles).unwrap()),
            )
        };
        let most = (1..1_000).take_while(|n| fits(*n).0).last().unwrap();
        assert_eq!(most, 133, "update the bundle format docs");
        // Beyond this many, the index does not fit beside the list, and the value is the plain
        // list.
        let most_checked = (1..1_000).take_while(|n| fits(*n).1).last().unwrap();
        assert_eq!(most_checked, 109, "update the bundle format docs");
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
