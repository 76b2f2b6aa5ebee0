//! How much output an offer's operations take, so that a decision never goes over Shopify's
//! output limit.
//!
//! Shopify rejects a run whose output is over 20,000 bytes, and every discount in it is lost:
//! the checkout carries on with no offer at all. A lines offer renders one candidate per line
//! (about 130 bytes each), so an uncapped one on a long cart would get there, and so would an
//! order discount that must list hundreds of excluded lines, or a shipping discount on a cart of
//! very many delivery groups (one candidate each). Each offer's operations are sized here, by an
//! upper estimate of their JSON, before the offers are compared (line and order discounts after
//! cap and guard, delivery groups before them); what does not fit is left out with an
//! `output_limit` reason.

use crate::money::Money;

/// The most bytes a Function's operations may take by these estimates. Shopify's limit is 20,000;
/// the rest covers the frame around the operations (`{"operations":[...]}` and the operation's
/// own keys, under 100 bytes).
pub const MAX_OPERATION_BYTES: usize = 18_000;

/// A product discount candidate without its message, line id and amount, and the comma between
/// candidates: `{"message":,"targets":[{"cartLine":{"id":}}],"value":{"fixedAmount":{"amount":}}},`
/// (the three values are counted with their quotes by [`json_string_bytes`] and [`amount_bytes`]).
pub const LINE_CANDIDATE_BYTES: usize = 82;

/// An order discount candidate without its message, amount and excluded line ids:
/// `{"message":,"targets":[{"orderSubtotal":{"excludedCartLineIds":[]}}],"value":{"fixedAmount":{"amount":}}}`.
/// Each excluded id adds its JSON string and a comma ([`order_candidate_bytes`]).
pub const ORDER_CANDIDATE_BYTES: usize = 105;

/// A delivery discount candidate without its message, delivery group id and percentage, and the
/// comma between candidates:
/// `{"message":,"targets":[{"deliveryGroup":{"id":}}],"value":{"percentage":{"value":}}},`.
pub const SHIPPING_CANDIDATE_BYTES: usize = 85;

/// The most bytes of a percentage as the delivery target writes it, quotes included (`"100.00"`).
pub const MAX_PERCENT_BYTES: usize = 8;

/// At least the bytes `text` takes as a JSON string, quotes included, whichever way the writer
/// escapes it: `"` and `\` take 2 bytes, control characters and DEL 6 (`\u001f`), and a byte of a
/// multi-byte character 3 (a character written as `\uXXXX`, or a surrogate pair for four bytes,
/// takes at most three times its UTF-8 length).
#[inline(never)]
pub fn json_string_bytes(text: &str) -> usize {
    // At most 5 extra bytes per byte, and a text in memory is far shorter than usize::MAX / 6:
    // wrapping additions are exact here (checked ones cost a branch per byte).
    let mut extra = 0usize;
    for &byte in text.as_bytes() {
        // Plain printable ASCII, the usual byte, is written as itself. (A loop LLVM can
        // vectorize costs about 40 instructions a byte on wasm, which has no vectors here.)
        if (0x20..0x7f).contains(&byte) && byte != b'"' && byte != b'\\' {
            continue;
        }
        extra = extra.wrapping_add(match byte {
            b'"' | b'\\' => 1,
            0x80.. => 2,
            _ => 5,
        });
    }
    text.len().saturating_add(2).saturating_add(extra)
}

/// [`json_string_bytes`] for any text of `len` bytes: every byte at its widest, 6 bytes.
pub fn json_string_bytes_at_most(len: usize) -> usize {
    len.saturating_mul(6).saturating_add(2)
}

/// The most bytes [`amount_bytes`] gives for any amount: a sign, 19 digits, a point and quotes
/// (exponents are at most 3, below the digits of any amount that needs them all).
pub const MAX_AMOUNT_BYTES: usize = 23;

/// At least the bytes of `amount` written as a decimal with `exponent` fraction digits, quotes
/// included (a sign, the digits or `0.` and padding zeros, the point).
#[inline(never)]
pub fn amount_bytes(amount: Money, exponent: u8) -> usize {
    // Dividing is one instruction in wasm; `checked_ilog10` on a u64 costs about 70.
    let mut digits = 1;
    let mut rest = amount.unsigned_abs();
    while rest >= 10 {
        rest /= 10;
        digits += 1;
    }
    let exponent = usize::from(exponent);
    1 + digits.max(exponent + 1) + 1 + 2
}

/// The most bytes a product discount candidate takes, given the [`json_string_bytes`] of its
/// message and of its line id.
pub fn line_candidate_bytes(
    message_bytes: usize,
    line_id_bytes: usize,
    amount: Money,
    exponent: u8,
) -> usize {
    LINE_CANDIDATE_BYTES
        .saturating_add(message_bytes)
        .saturating_add(line_id_bytes)
        .saturating_add(amount_bytes(amount, exponent))
}

/// The most bytes a delivery discount candidate takes, given the [`json_string_bytes`] of its
/// message and of its delivery group id.
pub fn shipping_candidate_bytes(message_bytes: usize, group_id_bytes: usize) -> usize {
    SHIPPING_CANDIDATE_BYTES
        .saturating_add(message_bytes)
        .saturating_add(group_id_bytes)
        .saturating_add(MAX_PERCENT_BYTES)
}

/// The most bytes an order discount candidate takes, excluding `excluded_ids`.
pub fn order_candidate_bytes(
    message_bytes: usize,
    amount: Money,
    exponent: u8,
    excluded_ids: &[String],
) -> usize {
    excluded_ids.iter().fold(
        ORDER_CANDIDATE_BYTES
            .saturating_add(message_bytes)
            .saturating_add(amount_bytes(amount, exponent)),
        |n, id| n.saturating_add(json_string_bytes(id) + 1),
    )
}

/// The output used so far, in bytes, against [`MAX_OPERATION_BYTES`]. Once one operation does
/// not fit, nothing after it does either: what is left out is always the tail, in render order.
#[derive(Debug, Default)]
pub(crate) struct OutputBudget {
    used: usize,
    full: bool,
}

impl OutputBudget {
    /// Takes `bytes` if they fit.
    pub(crate) fn fits(&mut self, bytes: usize) -> bool {
        self.used = self.used.saturating_add(bytes);
        self.full = self.full || self.used > MAX_OPERATION_BYTES;
        !self.full
    }

    /// Whether something has already been left out.
    pub(crate) fn is_full(&self) -> bool {
        self.full
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_counted_for_the_widest_escaping() {
        assert_eq!(json_string_bytes(""), 2);
        assert_eq!(json_string_bytes("gid://shopify/CartLine/1"), 26);
        assert_eq!(json_string_bytes(r#"a"b\c"#), 2 + 5 + 2);
        assert_eq!(json_string_bytes("\n\u{7f}"), 2 + 12);
        // é (2 bytes) as \u00e9 is 6; € (3 bytes) 6 <= 9; an emoji (4 bytes) as a surrogate
        // pair is 12.
        assert_eq!(json_string_bytes("é"), 2 + 6);
        assert_eq!(json_string_bytes("€"), 2 + 9);
        assert_eq!(json_string_bytes("🎁"), 2 + 12);
        for text in ["", "a", "\"\n", "é🎁"] {
            assert!(json_string_bytes(text) <= json_string_bytes_at_most(text.len()));
        }
    }

    #[test]
    fn amounts_are_counted_as_they_are_written() {
        use crate::money::format_decimal_minor;
        for (amount, exponent) in [
            (0, 2),
            (5, 2),
            (99, 2),
            (100, 2),
            (123_456, 2),
            (1, 0),
            (1_000, 0),
            (7, 3),
            (-150, 2),
            (i64::MAX, 2),
            (i64::MIN, 3),
        ] {
            let written = format_decimal_minor(amount, exponent).len() + 2;
            let counted = amount_bytes(amount, exponent);
            assert!(
                counted >= written && counted <= written + 2 && counted <= MAX_AMOUNT_BYTES,
                "{amount} at exponent {exponent}: counted {counted}, written {written}"
            );
        }
    }

    #[test]
    fn the_budget_leaves_out_everything_after_the_first_that_does_not_fit() {
        let mut budget = OutputBudget::default();
        assert!(budget.fits(MAX_OPERATION_BYTES - 10));
        assert!(budget.fits(10));
        assert!(!budget.is_full());
        assert!(!budget.fits(1));
        assert!(budget.is_full());
        // Smaller ones after it are left out too.
        assert!(!budget.fits(0));
    }
}
