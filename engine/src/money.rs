//! Money as integer minor units, rates as basis points, and exact decimal conversion at the edges.
//!
//! Shopify sends money as decimal strings ("19.99"); the engine never turns them into floats. A
//! decimal string is parsed straight into minor units of a currency whose exponent (digits after the
//! decimal point) is known, and rendered back the same way.

/// An amount of money in minor units of one currency (cents for USD, yen for JPY, fils for KWD).
pub type Money = i64;

/// A rate in basis points: 10_000 bps = 100 %.
pub type Bps = i64;

/// 100 % in basis points.
pub const BPS_ONE: Bps = 10_000;

/// A currency as far as the engine cares: its ISO 4217 code and its minor-unit exponent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    pub code: [u8; 3],
    pub exponent: u8,
}

/// ISO 4217 currencies whose minor unit is not 1/100. Every other code has exponent 2.
/// (Shopify presents prices in these with the same number of decimals.)
const EXPONENT_EXCEPTIONS: &[(&[u8; 3], u8)] = &[
    (b"BIF", 0),
    (b"CLP", 0),
    (b"DJF", 0),
    (b"GNF", 0),
    (b"ISK", 0),
    (b"JPY", 0),
    (b"KMF", 0),
    (b"KRW", 0),
    (b"PYG", 0),
    (b"RWF", 0),
    (b"UGX", 0),
    (b"VND", 0),
    (b"VUV", 0),
    (b"XAF", 0),
    (b"XOF", 0),
    (b"XPF", 0),
    (b"BHD", 3),
    (b"IQD", 3),
    (b"JOD", 3),
    (b"KWD", 3),
    (b"LYD", 3),
    (b"OMR", 3),
    (b"TND", 3),
];

impl Currency {
    /// The currency for an ISO 4217 code (case-sensitive, three ASCII letters), or `None`.
    pub fn from_code(code: &str) -> Option<Currency> {
        let bytes: [u8; 3] = code.as_bytes().try_into().ok()?;
        if !bytes.iter().all(u8::is_ascii_uppercase) {
            return None;
        }
        let exponent = EXPONENT_EXCEPTIONS
            .iter()
            .find(|(c, _)| **c == bytes)
            .map_or(2, |(_, e)| *e);
        Some(Currency {
            code: bytes,
            exponent,
        })
    }

    /// The ISO code as a string slice.
    pub fn code_str(&self) -> &str {
        std::str::from_utf8(&self.code).unwrap_or("???")
    }
}

/// Parses a non-negative or negative decimal string ("19.99", "-3", "0.5", "1e2" is rejected) into
/// minor units with `exponent` digits. Extra fractional digits must be zeros ("19.990" is fine for
/// USD, "19.995" is not): Shopify never sends sub-minor amounts, so one is a sign of bad input.
/// Returns `None` on any malformed input or overflow.
pub fn parse_decimal_minor(text: &str, exponent: u8) -> Option<Money> {
    parse_decimal_minor_bytes(text.as_bytes(), exponent)
}

/// [`parse_decimal_minor`] on the bytes of a text (no UTF-8 check needed: only ASCII digits, `-`
/// and `.` are accepted).
pub(crate) fn parse_decimal_minor_bytes(text: &[u8], exponent: u8) -> Option<Money> {
    match parse_plain_decimal(text, exponent) {
        Plain::Value(value) => Some(value),
        Plain::Invalid => None,
        Plain::Other => parse_any_decimal(text, exponent),
    }
}

/// `10^missing` for the fraction digits a short amount leaves out (currency exponents are at
/// most 3 on the fast paths).
const SCALE: [i64; 4] = [1, 10, 100, 1000];

/// What [`parse_plain_decimal`] made of a text.
enum Plain {
    Value(Money),
    Invalid,
    /// Not a short unsigned amount: [`parse_any_decimal`] decides.
    Other,
}

/// The amounts of nearly every price and cost: unsigned, at most 15 bytes, at most `exponent`
/// fraction digits, `exponent` at most 3. Such a value is below 10^18 after scaling, so no digit
/// needs an overflow check (about a third of the instructions of [`parse_any_decimal`], which
/// every cart line's price and cost come through).
fn parse_plain_decimal(text: &[u8], exponent: u8) -> Plain {
    const MAX_LEN: usize = 15;
    if text.len() > MAX_LEN || exponent > 3 {
        return Plain::Other;
    }
    if let Some(value) = parse_short_decimal(text, exponent) {
        return Plain::Value(value);
    }
    let mut value: i64 = 0;
    let mut point = None;
    for (position, &byte) in text.iter().enumerate() {
        let digit = byte.wrapping_sub(b'0');
        if digit < 10 {
            // Wrapping operations are exact here (see above), and an overflow-checked multiply
            // would call a 128-bit multiply routine on wasm32.
            value = value.wrapping_mul(10).wrapping_add(i64::from(digit));
        } else if byte == b'.' && point.is_none() {
            point = Some(position);
        } else {
            return Plain::Other;
        }
    }
    let fraction_digits = match point {
        None => 0,
        // A digit before the point and at least one after it.
        Some(0) => return Plain::Invalid,
        Some(position) if position + 1 == text.len() => return Plain::Invalid,
        Some(position) => text.len() - position - 1,
    };
    if text.is_empty() {
        return Plain::Invalid;
    }
    match usize::from(exponent)
        .checked_sub(fraction_digits)
        .and_then(|missing| SCALE.get(missing))
    {
        Some(scale) => Plain::Value(value.wrapping_mul(*scale)),
        // More fraction digits than the currency has: only trailing zeros are allowed.
        None => Plain::Other,
    }
}

/// The commonest amounts of all, at most eight bytes (`10.37`, `1299.00`), read as one 8-byte
/// word: the point is found and taken out, the digits checked and converted together (see
/// [`crate::format::eight_digits`]). Only a valid amount gets an answer; anything else, valid or
/// not, is left to the byte loop. (The byte loop costs about 25 instructions per byte.)
fn parse_short_decimal(text: &[u8], exponent: u8) -> Option<Money> {
    const DOTS: u64 = 0x2E2E_2E2E_2E2E_2E2E;
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    let len = text.len();
    let mut bytes = [0u8; 8];
    bytes.get_mut(..len)?.copy_from_slice(text);
    let word = u64::from_le_bytes(bytes);
    // 0x80 in every byte of the text that is a `.`, exactly (no borrow between bytes).
    let x = word ^ DOTS;
    let in_text = u64::MAX
        .checked_shr(u32::try_from(64 - 8 * len).ok()?)
        .unwrap_or(0);
    let dots = !(((x & LOW7).wrapping_add(LOW7)) | x | LOW7) & in_text;
    let (digits, fraction_digits, n) = match dots.count_ones() {
        0 => (word, 0, len),
        1 => {
            let point = usize::try_from(dots.trailing_zeros() / 8).ok()?;
            // The bytes after the point move down over it.
            let below = (1u64 << (8 * point)) - 1;
            let digits = (word & below) | ((word >> 8) & !below);
            // A digit before the point and at least one after it.
            let fraction_digits = len.checked_sub(point + 1).filter(|f| *f > 0 && point > 0)?;
            (digits, fraction_digits, len - 1)
        }
        _ => return None,
    };
    // Every byte but the point a digit (the zero bytes after the text are not digits).
    if n == 0 || crate::format::leading_digits(digits) != n {
        return None;
    }
    let value = crate::format::eight_digits(digits << (8 * (8 - n)));
    let scale = SCALE.get(usize::from(exponent).checked_sub(fraction_digits)?)?;
    // At most 8 digits times at most 1000: far below 2^63.
    i64::try_from(value).ok().map(|v| v.wrapping_mul(*scale))
}

/// [`parse_decimal_minor_bytes`] on any text.
fn parse_any_decimal(text: &[u8], exponent: u8) -> Option<Money> {
    // One pass over the bytes: every cart line's price and cost comes through here, and the
    // string searchers (`split_once`, `contains`) cost the Function several times more.
    let (negative, digits) = match text.split_first()? {
        (b'-', rest) => (true, rest),
        _ => (false, text),
    };
    let mut value: i64 = 0;
    let mut rest = digits;
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'.' {
            break;
        }
        if !b.is_ascii_digit() {
            return None;
        }
        value = push_digit(value, b - b'0')?;
        rest = tail;
    }
    if rest.len() == digits.len() {
        // No digit before the point (or nothing at all).
        return None;
    }
    // `rest` is empty or starts with the point, which must be followed by at least one digit.
    let fraction = match rest.split_first() {
        Some((_, [])) => return None,
        Some((_, fraction)) => fraction,
        None => rest,
    };
    if !fraction.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let exponent = usize::from(exponent);
    for i in 0..exponent {
        let digit = fraction.get(i).map_or(0, |b| b - b'0');
        value = push_digit(value, digit)?;
    }
    if fraction.iter().skip(exponent).any(|&b| b != b'0') {
        return None;
    }
    if negative {
        value.checked_neg()
    } else {
        Some(value)
    }
}

/// `value * 10 + digit` for a non-negative `value` and a digit 0-9, or `None` when it overflows.
/// Compares against the limit instead of `checked_mul`: on wasm32 an overflow-checked 64-bit
/// multiply calls a 128-bit multiply routine, and every digit of every price and cost of every cart
/// line comes through here.
fn push_digit(value: i64, digit: u8) -> Option<i64> {
    const LIMIT: i64 = i64::MAX / 10;
    let digit = i64::from(digit);
    let fits = (0..LIMIT).contains(&value) || (value == LIMIT && digit <= i64::MAX % 10);
    fits.then(|| value.wrapping_mul(10).wrapping_add(digit))
}

/// Renders minor units as a decimal string with exactly `exponent` fractional digits
/// (1999, 2 -> "19.99"; 500, 0 -> "500"; -5, 3 -> "-0.005").
pub fn format_decimal_minor(amount: Money, exponent: u8) -> String {
    // The digits come from `itoa` and the point is placed by hand: Functions render every amount
    // they return through here, and `format!` with padding costs them code size and about four
    // times the instructions.
    let exponent = usize::from(exponent);
    let mut buffer = itoa::Buffer::new();
    let digits = buffer.format(amount.unsigned_abs());
    let mut text = String::with_capacity(digits.len() + exponent + 3);
    if amount < 0 {
        text.push('-');
    }
    // At least one digit before the point and exactly `exponent` after it: an amount below one
    // unit is written `0.` and zeros before its digits.
    match digits.split_at_checked(digits.len().saturating_sub(exponent)) {
        Some((whole, fraction)) if !whole.is_empty() => {
            text.push_str(whole);
            if exponent > 0 {
                text.push('.');
                text.push_str(fraction);
            }
        }
        _ => {
            text.push_str("0.");
            for _ in digits.len()..exponent {
                text.push('0');
            }
            text.push_str(digits);
        }
    }
    text
}

/// A conversion rate from the shop's currency to the presentment currency, as a fixed-point number
/// with 9 decimal places (Shopify's `presentmentCurrencyRate`, e.g. "1.0" or "0.921345").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub nanos: i64,
}

impl Rate {
    pub const ONE: Rate = Rate {
        nanos: 1_000_000_000,
    };

    /// Parses a decimal rate string; `None` when malformed, zero or negative.
    pub fn parse(text: &str) -> Option<Rate> {
        // A rate may carry more than 9 decimals; truncate the tail instead of rejecting it.
        let truncated = match text.split_once('.') {
            // The whole part, the point and 9 decimals: a prefix of `text`.
            Some((w, f)) if f.len() > 9 => text.get(..w.len() + 10)?,
            _ => text,
        };
        let nanos = parse_decimal_minor(truncated, 9)?;
        (nanos > 0).then_some(Rate { nanos })
    }

    /// Converts an amount in the shop currency's minor units into the presentment currency's minor
    /// units, rounding half away from zero. `None` on overflow.
    pub fn convert(&self, amount: Money, from: Currency, to: Currency) -> Option<Money> {
        // Most shops sell in their own currency: then the conversion is the identity, and the
        // i128 division below (a software routine in wasm, run for every line's cost) is skipped.
        if self.nanos == Rate::ONE.nanos && from.exponent == to.exponent {
            return Some(amount);
        }
        // amount * nanos * 10^to / (10^from * 10^9), computed in i128 so no step can overflow i64.
        let numerator = i128::from(amount)
            .checked_mul(i128::from(self.nanos))?
            .checked_mul(10i128.pow(u32::from(to.exponent)))?;
        let denominator = 10i128.pow(u32::from(from.exponent)) * 1_000_000_000;
        let half = denominator / 2;
        let rounded = if numerator >= 0 {
            (numerator + half) / denominator
        } else {
            (numerator - half) / denominator
        };
        i64::try_from(rounded).ok()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn exponents_of_three_currencies() {
        assert_eq!(Currency::from_code("USD").map(|c| c.exponent), Some(2));
        assert_eq!(Currency::from_code("JPY").map(|c| c.exponent), Some(0));
        assert_eq!(Currency::from_code("KWD").map(|c| c.exponent), Some(3));
        assert_eq!(Currency::from_code("usd"), None);
        assert_eq!(Currency::from_code("US"), None);
    }

    #[test]
    fn decimal_parse_and_format_round_trip() {
        let cases = [
            ("19.99", 2, 1999),
            ("19.9", 2, 1990),
            ("19", 2, 1900),
            ("19.990", 2, 1999),
            ("500", 0, 500),
            ("500.0", 0, 500),
            ("1.234", 3, 1234),
            ("-0.005", 3, -5),
            ("0", 2, 0),
        ];
        for (text, exponent, minor) in cases {
            assert_eq!(parse_decimal_minor(text, exponent), Some(minor), "{text}");
        }
        assert_eq!(format_decimal_minor(1999, 2), "19.99");
        assert_eq!(format_decimal_minor(500, 0), "500");
        assert_eq!(format_decimal_minor(-5, 3), "-0.005");
        assert_eq!(format_decimal_minor(7, 2), "0.07");
        assert_eq!(format_decimal_minor(0, 2), "0.00");
        assert_eq!(format_decimal_minor(0, 0), "0");
        assert_eq!(format_decimal_minor(-1999, 2), "-19.99");
        assert_eq!(format_decimal_minor(100, 2), "1.00");
        assert_eq!(format_decimal_minor(i64::MIN, 2), "-92233720368547758.08");
        assert_eq!(format_decimal_minor(i64::MAX, 0), "9223372036854775807");
        assert_eq!(format_decimal_minor(1_000, 3), "1.000");
    }

    proptest::proptest! {
        /// The digit-by-digit rendering is the `format!` rendering it replaced (which handled
        /// exponents up to 19, where `10^exponent` still fits a u64).
        #[test]
        fn decimal_format_matches_the_format_macro(amount: i64, exponent in 0u8..=19) {
            let magnitude = amount.unsigned_abs();
            let scale = 10u64.pow(u32::from(exponent));
            let sign = if amount < 0 { "-" } else { "" };
            let expected = if exponent == 0 {
                format!("{sign}{}", magnitude / scale)
            } else {
                format!(
                    "{sign}{}.{:0width$}",
                    magnitude / scale,
                    magnitude % scale,
                    width = usize::from(exponent)
                )
            };
            proptest::prop_assert_eq!(format_decimal_minor(amount, exponent), expected);
        }
    }

    #[test]
    fn decimal_parse_stops_exactly_at_the_i64_range() {
        for (text, exponent) in [
            ("9223372036854775807", 0),
            ("922337203685477580.7", 1),
            ("9223372036854775808", 0),
            ("922337203685477580.8", 1),
            ("92233720368547758070", 0),
            ("-9223372036854775807", 0),
            ("-9223372036854775808", 0),
            ("922337203685477581", 1),
        ] {
            assert_eq!(
                parse_decimal_minor(text, exponent),
                reference_parse_decimal_minor(text, exponent),
                "{text} / {exponent}"
            );
        }
        assert_eq!(
            parse_decimal_minor("9223372036854775807", 0),
            Some(i64::MAX)
        );
    }

    #[test]
    fn decimal_parse_rejects_bad_input() {
        for text in [
            "",
            "-",
            ".5",
            "5.",
            "1e2",
            "19.995",
            "abc",
            "1.2.3",
            " 1",
            "99999999999999999999",
        ] {
            assert_eq!(parse_decimal_minor(text, 2), None, "{text:?}");
        }
    }

    /// The string-searching parser the one-pass `parse_decimal_minor` replaced, kept as the
    /// reference it must agree with on every input.
    fn reference_parse_decimal_minor(text: &str, exponent: u8) -> Option<Money> {
        let (negative, digits) = match text.as_bytes().first()? {
            b'-' => (true, text.get(1..)?),
            _ => (false, text),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if !fraction.bytes().all(|b| b.is_ascii_digit())
            || (digits.contains('.') && fraction.is_empty())
        {
            return None;
        }
        let mut value: i64 = 0;
        for b in whole.bytes() {
            value = value.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
        }
        let exponent = usize::from(exponent);
        for i in 0..exponent {
            let digit = fraction.as_bytes().get(i).map_or(0, |b| b - b'0');
            value = value.checked_mul(10)?.checked_add(i64::from(digit))?;
        }
        if fraction.bytes().skip(exponent).any(|b| b != b'0') {
            return None;
        }
        if negative {
            value.checked_neg()
        } else {
            Some(value)
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]
        #[test]
        fn one_pass_decimal_parse_agrees_with_the_reference(
            text in "-?[0-9.]{0,22}|[-0-9.ex ]{0,6}|[0-9]{0,6}[.]?[0-9]{0,4}|[0-9.é/:]{0,8}",
            exponent in 0u8..=9,
        ) {
            proptest::prop_assert_eq!(
                parse_decimal_minor(&text, exponent),
                reference_parse_decimal_minor(&text, exponent)
            );
        }
    }

    #[test]
    fn rate_converts_between_exponents() {
        let usd = Currency::from_code("USD").unwrap();
        let jpy = Currency::from_code("JPY").unwrap();
        let rate = Rate::parse("150.5").unwrap();
        // $12.34 at 150.5 JPY/USD = 1857.17 -> 1857 yen.
        assert_eq!(rate.convert(1234, usd, jpy), Some(1857));
        assert_eq!(Rate::ONE.convert(1234, usd, usd), Some(1234));
        assert_eq!(Rate::parse("0"), None);
        assert_eq!(
            Rate::parse("0.1234567891234").map(|r| r.nanos),
            Some(123_456_789)
        );
    }
}
