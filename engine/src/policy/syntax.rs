//! Finding where a policy text stops being JSON, for the `policy_malformed` detail.
//!
//! The JSON reader reports only that parsing failed, not where. A merchant (or the admin UI) fixing a
//! policy needs the line and column, so on failure, and only then, this small checker walks the
//! text with JSON's grammar and reports the first position it cannot accept. It validates
//! structure only; it builds nothing.

use crate::detail::JsonSyntaxError;

/// Deeper nesting than this is reported as an error instead of recursing further (the checker is
/// recursive, and a Function's stack is small).
const MAX_DEPTH: usize = 64;

/// The first syntax error in `text`, or `None` when the text looked valid to this checker. Called
/// only when a reason is rendered, never while deciding (see [`crate::detail::Detail::InvalidJson`]).
pub(crate) fn find_error(text: &str) -> Option<JsonSyntaxError> {
    let mut checker = Checker {
        bytes: text.as_bytes(),
        at: 0,
    };
    let outcome = checker.value(0).and_then(|()| {
        checker.skip_whitespace();
        if checker.at < checker.bytes.len() {
            Err("trailing characters after the document")
        } else {
            Ok(())
        }
    });
    let what = outcome.err()?;
    let (line, column) = line_and_column(text, checker.at);
    Some(JsonSyntaxError { line, column, what })
}

/// 1-based line and column (in characters) of byte `offset`. Counted over bytes: a newline is
/// one byte, and a character is a byte that is not a UTF-8 continuation byte (`10xxxxxx`); the
/// string searchers would cost the Function about 1 KB for the same answer.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text).as_bytes();
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let column = before
        .iter()
        .skip(line_start)
        .filter(|&&b| b & 0xC0 != 0x80)
        .count()
        + 1;
    (line, column)
}

struct Checker<'t> {
    bytes: &'t [u8],
    at: usize,
}

type Step = Result<(), &'static str>;

impl Checker<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8, what: &'static str) -> Step {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(what)
        }
    }

    fn value(&mut self, depth: usize) -> Step {
        if depth > MAX_DEPTH {
            return Err("nested too deeply");
        }
        self.skip_whitespace();
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string(),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(_) => Err("expected a value"),
            None => Err("unexpected end of text"),
        }
    }

    fn object(&mut self, depth: usize) -> Step {
        self.at += 1;
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(());
        }
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return Err("expected a quoted key");
            }
            self.string()?;
            self.skip_whitespace();
            self.expect(b':', "expected ':' after the key")?;
            self.value(depth + 1)?;
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err("expected ',' or '}'"),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Step {
        self.at += 1;
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(());
        }
        loop {
            self.value(depth + 1)?;
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err("expected ',' or ']'"),
            }
        }
    }

    fn string(&mut self) -> Step {
        self.at += 1;
        loop {
            match self.peek() {
                None => return Err("unterminated string"),
                Some(b'"') => {
                    self.at += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.at += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.at += 1;
                        }
                        Some(b'u') => {
                            self.at += 1;
                            for _ in 0..4 {
                                if !self.peek().is_some_and(|b| b.is_ascii_hexdigit()) {
                                    return Err("bad \\u escape");
                                }
                                self.at += 1;
                            }
                        }
                        _ => return Err("bad escape"),
                    }
                }
                Some(0..=0x1f) => return Err("control character in string"),
                Some(_) => self.at += 1,
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        self.at - start
    }

    fn number(&mut self) -> Step {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err("bad number"),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return Err("bad number");
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return Err("bad number");
            }
        }
        Ok(())
    }

    fn literal(&mut self, word: &'static [u8]) -> Step {
        let end = self.at + word.len();
        if self.bytes.get(self.at..end) == Some(word) {
            self.at = end;
            Ok(())
        } else {
            Err("expected a value")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::find_error;

    /// The first syntax error in `text` as "line L, column C: what".
    fn locate_error(text: &str) -> String {
        find_error(text).map_or_else(|| "none found".to_string(), |error| error.to_string())
    }

    #[test]
    fn names_line_and_column() {
        assert_eq!(
            locate_error("{\n  \"version\": 1,\n  \"offers\": [,]\n}"),
            "line 3, column 14: expected a value"
        );
        assert_eq!(
            locate_error("{\"a\": 1"),
            "line 1, column 8: expected ',' or '}'"
        );
        assert_eq!(
            locate_error("{\"a\": 1} x"),
            "line 1, column 10: trailing characters after the document"
        );
        assert_eq!(locate_error(""), "line 1, column 1: unexpected end of text");
        // Columns count characters, not bytes.
        assert_eq!(
            locate_error("{\"é\": 1,\n \"ü😀\": x}"),
            "line 2, column 8: expected a value"
        );
        assert_eq!(
            locate_error(&"[".repeat(100)),
            "line 1, column 66: nested too deeply"
        );
    }
}
