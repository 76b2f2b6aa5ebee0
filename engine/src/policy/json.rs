//! A small JSON reader for the policy metafields, accepting exactly the documents miniserde 0.1
//! (the reader used before) accepts, and reading them into the same shapes.
//!
//! Why not miniserde: inside a Function its event loop, float parsing (with a 2.5 KB table of
//! powers of ten) and `BTreeMap` objects came to about 14 KB of the wasm module, for documents of
//! a few hundred bytes that the policy code then reads field by field. This reader builds only
//! what the policy code reads: integers, a marker for every other number, strings, arrays and
//! objects as lists (a policy object has a handful of keys).
//!
//! Same acceptance matters because a document miniserde rejected is reported as
//! `policy_malformed` with the syntax checker's position, while an accepted one gets per-field
//! reasons; a test compares both readers on generated documents. Like miniserde, the reader keeps
//! its own stack instead of recursing (a Function's stack is small and a 10,000-byte metafield can
//! nest thousands deep), and the containers drop their contents the same way.

use std::borrow::Cow;
use std::ops::Deref;

/// A JSON value. Strings borrow from the document unless they contain an escape.
pub(crate) enum Value<'t> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'t, str>),
    Array(Array<'t>),
    Object(Object<'t>),
}

/// A JSON number, as far as the policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Number {
    /// A negative integer (or `-0`).
    I64(i64),
    /// A non-negative integer.
    U64(u64),
    /// Anything else: a fraction, an exponent, or an integer beyond the 64-bit range. The value
    /// itself is never needed (a policy only has integer fields).
    Float,
}

/// A JSON array.
#[derive(Default)]
pub(crate) struct Array<'t>(Vec<Value<'t>>);

/// A JSON object: its keys and values in document order. A repeated key keeps every entry;
/// lookups read the last one, so the last value wins, as in miniserde's map.
#[derive(Default)]
pub(crate) struct Object<'t> {
    keys: Vec<Cow<'t, str>>,
    values: Vec<Value<'t>>,
}

impl<'t> Deref for Array<'t> {
    type Target = [Value<'t>];

    fn deref(&self) -> &[Value<'t>] {
        &self.0
    }
}

impl<'t> Object<'t> {
    /// The value of `key` (the last one when the key is repeated). The policy readers look keys
    /// up with `parse::fields` (one pass for all of an object's keys); tests check both agree.
    #[cfg(test)]
    pub(crate) fn get(&self, key: &str) -> Option<&Value<'t>> {
        let position = self.keys.iter().rposition(|k| k == key)?;
        self.values.get(position)
    }

    /// Every entry, in document order (a repeated key more than once).
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&str, &Value<'t>)> {
        self.keys.iter().map(|key| &**key).zip(&self.values)
    }

    /// The entries as a map iterates them: in key order, each key once with its last value.
    pub(crate) fn iter(&self) -> std::vec::IntoIter<(&str, &Value<'t>)> {
        let mut entries: Vec<(&str, &Value<'t>)> = Vec::with_capacity(self.keys.len());
        for (key, value) in self.keys.iter().zip(&self.values) {
            let key: &str = key;
            match entries.binary_search_by(|(k, _)| (*k).cmp(key)) {
                Ok(found) => {
                    if let Some(entry) = entries.get_mut(found) {
                        entry.1 = value;
                    }
                }
                Err(position) => entries.insert(position, (key, value)),
            }
        }
        entries.into_iter()
    }
}

impl<'o, 't> IntoIterator for &'o Object<'t> {
    type Item = (&'o str, &'o Value<'t>);
    type IntoIter = std::vec::IntoIter<(&'o str, &'o Value<'t>)>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Moves the values nested in `pending` into it and drops them one by one, so dropping a deeply
/// nested document never recurses: a container is emptied before its own drop runs.
fn drop_flat(mut pending: Vec<Value<'_>>) {
    while let Some(value) = pending.pop() {
        match value {
            Value::Array(mut array) => pending.append(&mut array.0),
            Value::Object(mut object) => pending.append(&mut object.values),
            _ => {}
        }
    }
}

impl Drop for Array<'_> {
    fn drop(&mut self) {
        drop_flat(std::mem::take(&mut self.0));
    }
}

impl Drop for Object<'_> {
    fn drop(&mut self) {
        drop_flat(std::mem::take(&mut self.values));
    }
}

/// The text is not a JSON document (miniserde would have rejected it). Where it fails is found by
/// the syntax checker, only when the reason is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed;

type Read<T> = Result<T, Malformed>;

/// A container still being read: an array, or an object with the key awaiting its value.
enum Open<'t> {
    Array(Array<'t>),
    Object(Object<'t>, Cow<'t, str>),
}

/// Entries room for a container when it opens: a policy object has at most eight keys and its
/// lists a few items, so most containers never grow (each growth copies them).
const OPEN_CAPACITY: usize = 8;

/// Reads one JSON document (surrounded by optional whitespace).
pub(crate) fn from_str(text: &str) -> Read<Value<'_>> {
    let mut reader = Reader { text, at: 0 };
    let mut stack: Vec<Open> = Vec::new();
    loop {
        // One value, or the opening of a container whose first value is read next.
        let mut value = match reader.skip_whitespace() {
            Some(b'[') => {
                reader.at += 1;
                if reader.skip_whitespace() == Some(b']') {
                    reader.at += 1;
                    Value::Array(Array::default())
                } else {
                    stack.push(Open::Array(Array(Vec::with_capacity(OPEN_CAPACITY))));
                    continue;
                }
            }
            Some(b'{') => {
                reader.at += 1;
                if reader.skip_whitespace() == Some(b'}') {
                    reader.at += 1;
                    Value::Object(Object::default())
                } else {
                    let key = reader.key()?;
                    let object = Object {
                        keys: Vec::with_capacity(OPEN_CAPACITY),
                        values: Vec::with_capacity(OPEN_CAPACITY),
                    };
                    stack.push(Open::Object(object, key));
                    continue;
                }
            }
            Some(b'"') => {
                reader.at += 1;
                Value::String(reader.string()?)
            }
            Some(b'n') => reader.literal("null", Value::Null)?,
            Some(b't') => reader.literal("true", Value::Bool(true))?,
            Some(b'f') => reader.literal("false", Value::Bool(false))?,
            Some(b'-' | b'0'..=b'9') => Value::Number(reader.number()?),
            _ => return Err(Malformed),
        };
        // Hand the value to the innermost open container; a closing bracket completes that
        // container, which is then handed to the next one out.
        loop {
            let Some(open) = stack.last_mut() else {
                return match reader.skip_whitespace() {
                    None => Ok(value),
                    Some(_) => Err(Malformed),
                };
            };
            match open {
                Open::Array(array) => array.0.push(value),
                Open::Object(object, key) => {
                    object.keys.push(std::mem::take(key));
                    object.values.push(value);
                }
            }
            let next = reader.skip_whitespace();
            reader.at += 1;
            match (next, open) {
                (Some(b','), Open::Array(_)) => break,
                (Some(b','), Open::Object(_, key)) => {
                    *key = reader.key()?;
                    break;
                }
                (Some(b']'), Open::Array(_)) | (Some(b'}'), Open::Object(..)) => {
                    value = match stack.pop() {
                        Some(Open::Array(array)) => Value::Array(array),
                        Some(Open::Object(object, _)) => Value::Object(object),
                        None => return Err(Malformed),
                    };
                }
                _ => return Err(Malformed),
            }
        }
    }
}

/// Smallest significand that overflows `significand x 10^e` to infinity when miniserde computes
/// it in floating point, for `e` in 289..=308 (below 289 no 64-bit significand overflows; above
/// 308 every non-zero one does). Computed by bisection with IEEE doubles; a test re-derives them.
const OVERFLOW_FROM_289: [u64; 20] = [
    17_976_931_348_623_156_225,
    1_797_693_134_862_315_649,
    179_769_313_486_231_600,
    17_976_931_348_623_158,
    1_797_693_134_862_316,
    179_769_313_486_232,
    17_976_931_348_624,
    1_797_693_134_863,
    179_769_313_487,
    17_976_931_349,
    1_797_693_135,
    179_769_314,
    17_976_932,
    1_797_694,
    179_770,
    17_977,
    1_798,
    180,
    18,
    2,
];

/// Whether miniserde accepts the number `significand x 10^exponent` (it rejects only those that
/// overflow to infinity).
fn finite(significand: u64, exponent: i32) -> Read<Number> {
    if significand == 0 || exponent < 289 {
        return Ok(Number::Float);
    }
    let threshold = usize::try_from(exponent - 289)
        .ok()
        .and_then(|i| OVERFLOW_FROM_289.get(i));
    match threshold {
        Some(&threshold) if significand < threshold => Ok(Number::Float),
        _ => Err(Malformed),
    }
}

/// `significand x 10 + digit`, or `None` past 64 bits. Checked 64-bit multiplication calls
/// `__multi3` on wasm32 (about 70 instructions a digit), so the common case skips it.
fn push_digit(significand: u64, digit: u64) -> Option<u64> {
    if significand < u64::MAX / 10 {
        // At most (u64::MAX / 10 - 1) x 10 + 9, below u64::MAX.
        Some(significand.wrapping_mul(10).wrapping_add(digit))
    } else {
        significand.checked_mul(10)?.checked_add(digit)
    }
}

/// Position of the first byte in `bytes` that ends a plain run of string text: the closing
/// quote, a backslash or a control character (which JSON forbids raw). Eight bytes per step
/// (about 40 instructions a byte when tested one at a time in the Function).
fn first_special(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..).and_then(|rest| rest.first_chunk::<8>()) {
        let word = u64::from_le_bytes(*chunk);
        // A byte's high bit is set where it is zero after the XOR (quote, backslash) or below
        // 0x20; borrows can only mark bytes above a marked one, so the lowest mark is exact.
        let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
        let marks = zero(word ^ (ONES * u64::from(b'"')))
            | zero(word ^ (ONES * u64::from(b'\\')))
            | (word.wrapping_sub(ONES * 0x20) & !word & HIGHS);
        if marks != 0 {
            let byte = usize::try_from(marks.trailing_zeros() / 8).unwrap_or(0);
            return Some(at + byte);
        }
        at += 8;
    }
    let tail = bytes.get(at..)?;
    let found = tail
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    Some(at + found)
}

struct Reader<'t> {
    text: &'t str,
    at: usize,
}

impl<'t> Reader<'t> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek();
        self.at += 1;
        byte
    }

    fn peek_digit(&self) -> Option<u64> {
        self.peek()
            .filter(u8::is_ascii_digit)
            .map(|b| u64::from(b - b'0'))
    }

    fn skip_whitespace(&mut self) -> Option<u8> {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\t' | b'\r')) {
            self.at += 1;
        }
        self.peek()
    }

    fn literal(&mut self, word: &str, value: Value<'t>) -> Read<Value<'t>> {
        let end = self.at + word.len();
        if self.text.get(self.at..end) == Some(word) {
            self.at = end;
            Ok(value)
        } else {
            Err(Malformed)
        }
    }

    /// An object key and its colon.
    fn key(&mut self) -> Read<Cow<'t, str>> {
        if self.skip_whitespace() != Some(b'"') {
            return Err(Malformed);
        }
        self.at += 1;
        let key = self.string()?;
        if self.skip_whitespace() != Some(b':') {
            return Err(Malformed);
        }
        self.at += 1;
        Ok(key)
    }

    /// The rest of a string whose opening quote was read: borrowed from the document unless it
    /// has an escape (policy strings almost never do).
    fn string(&mut self) -> Read<Cow<'t, str>> {
        let start = self.at;
        let rest = self.text.as_bytes().get(start..).unwrap_or_default();
        // One tight scan to the first byte that needs a look: the closing quote, a backslash or a
        // control character (which JSON forbids raw).
        let special = first_special(rest).ok_or(Malformed)?;
        self.at = start + special;
        if self.peek() == Some(b'"') {
            // Quotes and backslashes are ASCII, so the slice ends on a char boundary.
            let text = self.text.get(start..self.at).ok_or(Malformed)?;
            self.at += 1;
            return Ok(Cow::Borrowed(text));
        }
        let mut out = String::from(self.text.get(start..self.at).ok_or(Malformed)?);
        let mut from = self.at;
        loop {
            match self.peek() {
                None | Some(0..=0x1f) => return Err(Malformed),
                Some(b'"') => {
                    out.push_str(self.text.get(from..self.at).ok_or(Malformed)?);
                    self.at += 1;
                    return Ok(Cow::Owned(out));
                }
                Some(b'\\') => {
                    out.push_str(self.text.get(from..self.at).ok_or(Malformed)?);
                    self.at += 1;
                    out.push(self.escape()?);
                    from = self.at;
                }
                Some(_) => self.at += 1,
            }
        }
    }

    fn escape(&mut self) -> Read<char> {
        Ok(match self.next() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let high = self.hex4()?;
                let code = match high {
                    0xDC00..=0xDFFF => return Err(Malformed),
                    0xD800..=0xDBFF => {
                        // A high surrogate must be followed by an escaped low one.
                        if self.next() != Some(b'\\') || self.next() != Some(b'u') {
                            return Err(Malformed);
                        }
                        let low = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err(Malformed);
                        }
                        (((high - 0xD800) << 10) | (low - 0xDC00)) + 0x1_0000
                    }
                    other => other,
                };
                char::from_u32(code).ok_or(Malformed)?
            }
            _ => return Err(Malformed),
        })
    }

    fn hex4(&mut self) -> Read<u32> {
        let mut n = 0;
        for _ in 0..4 {
            let digit = self
                .next()
                .and_then(|b| char::from(b).to_digit(16))
                .ok_or(Malformed)?;
            n = n * 16 + digit;
        }
        Ok(n)
    }

    /// A number, following miniserde's steps so that exactly the same texts are accepted: an
    /// integer that fits 64 bits is kept, anything else only has to be finite as a double.
    fn number(&mut self) -> Read<Number> {
        let nonnegative = if self.peek() == Some(b'-') {
            self.at += 1;
            false
        } else {
            true
        };
        let significand = match self.next() {
            Some(b'0') => {
                if self.peek_digit().is_some() {
                    return Err(Malformed);
                }
                0
            }
            Some(first @ b'1'..=b'9') => {
                let mut significand = u64::from(first - b'0');
                while let Some(digit) = self.peek_digit() {
                    self.at += 1;
                    match push_digit(significand, digit) {
                        Some(next) => significand = next,
                        // Too long for 64 bits: the remaining digits only raise the exponent.
                        None => return self.long_integer(significand),
                    }
                }
                significand
            }
            _ => return Err(Malformed),
        };
        match self.peek() {
            Some(b'.') => self.fraction(significand, 0),
            Some(b'e' | b'E') => self.exponent(significand, 0),
            _ if nonnegative => Ok(Number::U64(significand)),
            _ => match i64::try_from(significand) {
                Ok(n) => Ok(Number::I64(-n)),
                Err(_) if significand == 1 << 63 => Ok(Number::I64(i64::MIN)),
                Err(_) => Ok(Number::Float),
            },
        }
    }

    fn long_integer(&mut self, significand: u64) -> Read<Number> {
        let mut exponent: i32 = 1;
        loop {
            match self.peek() {
                Some(b'0'..=b'9') => {
                    self.at += 1;
                    exponent = exponent.saturating_add(1);
                }
                Some(b'.') => return self.fraction(significand, exponent),
                Some(b'e' | b'E') => return self.exponent(significand, exponent),
                _ => return finite(significand, exponent),
            }
        }
    }

    fn fraction(&mut self, mut significand: u64, mut exponent: i32) -> Read<Number> {
        self.at += 1;
        let mut any_digit = false;
        while let Some(digit) = self.peek_digit() {
            self.at += 1;
            any_digit = true;
            match push_digit(significand, digit) {
                Some(next) => {
                    significand = next;
                    exponent = exponent.saturating_sub(1);
                }
                None => {
                    while self.peek_digit().is_some() {
                        self.at += 1;
                    }
                    break;
                }
            }
        }
        if !any_digit {
            return Err(Malformed);
        }
        match self.peek() {
            Some(b'e' | b'E') => self.exponent(significand, exponent),
            _ => finite(significand, exponent),
        }
    }

    fn exponent(&mut self, significand: u64, starting: i32) -> Read<Number> {
        self.at += 1;
        let positive = match self.peek() {
            Some(b'+') => {
                self.at += 1;
                true
            }
            Some(b'-') => {
                self.at += 1;
                false
            }
            _ => true,
        };
        let Some(first) = self.peek_digit() else {
            return Err(Malformed);
        };
        self.at += 1;
        let mut exponent = i32::try_from(first).map_err(|_| Malformed)?;
        while let Some(digit) = self.peek_digit() {
            self.at += 1;
            let digit = i32::try_from(digit).map_err(|_| Malformed)?;
            match exponent.checked_mul(10).and_then(|e| e.checked_add(digit)) {
                Some(next) => exponent = next,
                None => {
                    // An exponent beyond i32: infinite unless the value is zero or tiny.
                    if significand != 0 && positive {
                        return Err(Malformed);
                    }
                    while self.peek_digit().is_some() {
                        self.at += 1;
                    }
                    return Ok(Number::Float);
                }
            }
        }
        let exponent = if positive {
            starting.saturating_add(exponent)
        } else {
            starting.saturating_sub(exponent)
        };
        finite(significand, exponent)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use proptest::prelude::*;

    use super::{Number, OVERFLOW_FROM_289, Value, from_str};

    /// A canonical text of a value: objects with sorted keys and the last of repeated keys,
    /// numbers as `i`/`u` integers or `f` for any other number.
    fn canonical(value: &Value) -> String {
        match value {
            Value::Null => "null".to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Number(Number::I64(n)) => format!("i{n}"),
            Value::Number(Number::U64(n)) => format!("u{n}"),
            Value::Number(Number::Float) => "f".to_string(),
            Value::String(s) => format!("{s:?}"),
            Value::Array(items) => {
                let items: Vec<String> = items.iter().map(canonical).collect();
                format!("[{}]", items.join(","))
            }
            Value::Object(object) => {
                let entries: Vec<String> = object
                    .iter()
                    .map(|(k, v)| {
                        // `get` and `iter` must agree on which of repeated keys wins.
                        assert!(std::ptr::eq(object.get(k).unwrap(), v));
                        format!("{k:?}:{}", canonical(v))
                    })
                    .collect();
                format!("{{{}}}", entries.join(","))
            }
        }
    }

    fn canonical_miniserde(value: &miniserde::json::Value) -> String {
        use miniserde::json::{Number as N, Value as V};
        match value {
            V::Null => "null".to_string(),
            V::Bool(b) => b.to_string(),
            V::Number(N::I64(n)) => format!("i{n}"),
            V::Number(N::U64(n)) => format!("u{n}"),
            V::Number(N::F64(_)) => "f".to_string(),
            V::String(s) => format!("{s:?}"),
            V::Array(items) => {
                let items: Vec<String> = items.iter().map(canonical_miniserde).collect();
                format!("[{}]", items.join(","))
            }
            V::Object(object) => {
                let entries: Vec<String> = object
                    .iter()
                    .map(|(k, v)| format!("{k:?}:{}", canonical_miniserde(v)))
                    .collect();
                format!("{{{}}}", entries.join(","))
            }
        }
    }

    /// Both readers accept the same texts and read them into the same values.
    fn check(text: &str) {
        let ours = from_str(text).ok().map(|v| canonical(&v));
        let theirs = miniserde::json::from_str::<miniserde::json::Value>(text)
            .ok()
            .map(|v| canonical_miniserde(&v));
        assert_eq!(ours, theirs, "{text:?}");
    }

    #[test]
    fn agrees_with_miniserde_on_edge_cases() {
        let cases = [
            "",
            " ",
            "null",
            " true ",
            "false",
            "nul",
            "nulll",
            "tru",
            "[",
            "]",
            "[]",
            "[ ]",
            "{}",
            "{ }",
            "[}",
            "{]",
            "[1,]",
            "[,1]",
            "[1 2]",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\" 1}",
            "{\"a\":1,}",
            "{,}",
            "{1:2}",
            "{\"a\":1,\"a\":2}",
            "{\"b\":1,\"a\":[{}]}",
            "0",
            "-0",
            "00",
            "01",
            "-",
            "-a",
            "+1",
            ".5",
            "1.",
            "1.5",
            "1e",
            "1e+",
            "1e-",
            "1E5",
            "1e+5",
            "-1.5e-3",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "-9223372036854775809",
            "9223372036854775808",
            "1e308",
            "2e308",
            "1.8e308",
            "1.7976931348623157e308",
            "1.7976931348623159e308",
            "17976931348623157e292",
            "17976931348623159e292",
            "1e309",
            "0e999999",
            "0e99999999999",
            "1e99999999999",
            "1e-99999999999",
            "-1e99999999999",
            "1e-400",
            "123456789012345678901234567890",
            "1234567890123456789012345678901234567890.5e270",
            "18446744073709551615.9e289",
            "18446744073709551616e288",
            "\"\"",
            "\"abc\"",
            "\"a\\\"b\"",
            "\"\\/\\b\\f\\n\\r\\t\\\\\"",
            "\"\\u0041\"",
            "\"\\u00e9\"",
            "\"\\ud83d\\ude00\"",
            "\"\\ud83d\"",
            "\"\\ude00\"",
            "\"\\ud83dx\"",
            "\"\\ud83d\\u0041\"",
            "\"\\u12\"",
            "\"\\uZZZZ\"",
            "\"\\x\"",
            "\"a\nb\"",
            "\"a\tb\"",
            "\"unterminated",
            "\"é ü 😀\"",
            "[1] x",
            "1 1",
            "{\"a\":1}}",
            "[[[]]]",
            "[[[]]",
            "\t\n\r [1]\t\n\r ",
            "\u{a0}1",
        ];
        for text in cases {
            check(text);
        }
        // `check` itself recurses (canonical text), so deep documents get a large stack.
        let deep = std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn(|| {
                check(&format!("{}{}", "[".repeat(5000), "]".repeat(5000)));
                check(&format!(
                    "{}1{}",
                    "{\"a\":[".repeat(3000),
                    "]}".repeat(3000)
                ));
                check(&format!(
                    "{}1{}",
                    "{\"a\":[".repeat(3000),
                    "]}".repeat(2999)
                ));
            })
            .unwrap();
        deep.join().unwrap();
    }

    /// Reading and dropping a deeply nested document uses no stack per level.
    #[test]
    fn deep_documents_do_not_recurse() {
        let depth = 200_000;
        let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(from_str(&arrays).is_ok());
        let objects = format!("{}null{}", "{\"k\":[".repeat(depth), "]}".repeat(depth));
        assert!(from_str(&objects).is_ok());
        let unclosed = "[{\"k\":".repeat(depth);
        assert!(from_str(&unclosed).is_err());
    }

    #[test]
    fn overflow_thresholds_match_double_arithmetic() {
        for (offset, &threshold) in OVERFLOW_FROM_289.iter().enumerate() {
            let e = 289 + offset;
            let power: f64 = format!("1e{e}").parse().unwrap();
            assert!((threshold as f64 * power).is_infinite(), "1e{e}");
            assert!(((threshold - 1) as f64 * power).is_finite(), "1e{e}");
        }
        let power: f64 = "1e288".parse().unwrap();
        assert!((u64::MAX as f64 * power).is_finite());
    }

    /// Pieces that make JSON and near-JSON, so random joins hit both sides of every rule.
    fn piece() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "[",
            "]",
            "{",
            "}",
            ",",
            ":",
            " ",
            "\n",
            "\"",
            "\"k\"",
            "\"a\"",
            "\\",
            "\\u",
            "d83d",
            "\\ude00",
            "00e9",
            "n",
            "null",
            "true",
            "false",
            "0",
            "1",
            "-",
            "9",
            ".",
            "e",
            "E",
            "+",
            "5",
            "308",
            "18446744073709551616",
            "é",
            "\t",
            "x",
        ])
    }

    /// The shortcut past `checked_mul` agrees with it around the 64-bit edge.
    #[test]
    fn push_digit_agrees_with_checked_arithmetic() {
        for digit in 0..10 {
            for significand in [
                0,
                1,
                u64::MAX / 10 - 1,
                u64::MAX / 10,
                u64::MAX / 10 + 1,
                u64::MAX,
            ] {
                let checked = significand
                    .checked_mul(10)
                    .and_then(|s| s.checked_add(digit));
                assert_eq!(
                    super::push_digit(significand, digit),
                    checked,
                    "{significand} {digit}"
                );
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        /// The word-at-a-time scan agrees with one byte at a time, at every offset in and
        /// across words and with borrows out of marked bytes (bytes around 0x20, `"`, `\\`).
        #[test]
        fn first_special_agrees_with_a_byte_scan(
            bytes in prop::collection::vec(prop_oneof![
                Just(b'"'), Just(b'\\'), 0u8..0x21, 0x5Bu8..0x5E, 0x7Fu8..=0xFF, b'a'..=b'z',
            ], 0..40),
        ) {
            let scan = bytes.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            prop_assert_eq!(super::first_special(&bytes), scan);
        }

        #[test]
        fn agrees_with_miniserde_on_random_texts(pieces in prop::collection::vec(piece(), 0..24)) {
            check(&pieces.concat());
        }

        #[test]
        fn agrees_with_miniserde_on_random_values(value in json_value()) {
            check(&value);
        }
    }

    /// Well-formed documents, so that deep agreement (not only rejection) is exercised.
    fn json_value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_string()),
            Just("true".to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            (any::<u32>(), -400i32..400).prop_map(|(m, e)| format!("{m}.5e{e}")),
            "[a-z\\\\\"é]{0,6}".prop_map(|s| format!("\"{s}\"")),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec(("[a-c]{1,2}", inner), 0..6).prop_map(|v| {
                    let entries: Vec<String> = v
                        .into_iter()
                        .map(|(k, v)| format!("\"{k}\": {v}"))
                        .collect();
                    format!("{{{}}}", entries.join(", "))
                }),
            ]
        })
    }
}
