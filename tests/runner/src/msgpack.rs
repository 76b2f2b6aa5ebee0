//! JSON <-> MessagePack, the way Shopify hands input to a Wasm API Function and reads its output.
//!
//! The provider walks the MessagePack bytes lazily, so the encoding changes instruction counts: key
//! order must be the JSON document's order (`serde_json` with `preserve_order`), and an integer is
//! written as a signed integer whenever it fits in `i64` (the most compact marker for its value),
//! falling back to unsigned for larger values and to `f64` for everything else.

use rmp::Marker;
use serde_json::{Map, Number, Value};

/// Why MessagePack could not be read back into JSON.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MsgpackError {
    #[error("messagepack ends early at byte {offset}")]
    Truncated { offset: usize },
    #[error("messagepack marker 0x{marker:02x} at byte {offset} has no JSON equivalent")]
    Unsupported { marker: u8, offset: usize },
    #[error("messagepack map key at byte {offset} is not a string")]
    NonStringKey { offset: usize },
    #[error("messagepack string at byte {offset} is not valid utf-8")]
    InvalidUtf8 { offset: usize },
    #[error("messagepack float at byte {offset} is not finite, JSON cannot hold it")]
    NonFiniteFloat { offset: usize },
    #[error("{trailing} bytes follow the messagepack value")]
    TrailingBytes { trailing: usize },
    #[error("messagepack nests deeper than {max_depth} levels")]
    TooDeep { max_depth: usize },
}

/// Encodes a JSON value as MessagePack, keeping object key order.
pub fn encode_json(value: &Value) -> Vec<u8> {
    let mut bytes = Vec::new();
    write_value(&mut bytes, value);
    bytes
}

fn write_value(bytes: &mut Vec<u8>, value: &Value) {
    // Writing into a Vec cannot fail, so the results of the rmp writers carry no information; they
    // are matched away explicitly instead of unwrapped.
    match value {
        Value::Null => {
            let _ = rmp::encode::write_nil(bytes);
        }
        Value::Bool(flag) => {
            let _ = rmp::encode::write_bool(bytes, *flag);
        }
        Value::Number(number) => {
            if let Some(signed) = number.as_i64() {
                let _ = rmp::encode::write_sint(bytes, signed);
            } else if let Some(unsigned) = number.as_u64() {
                let _ = rmp::encode::write_uint(bytes, unsigned);
            } else if let Some(float) = number.as_f64() {
                let _ = rmp::encode::write_f64(bytes, float);
            }
        }
        Value::String(text) => {
            let _ = rmp::encode::write_str(bytes, text);
        }
        Value::Array(items) => {
            let _ = rmp::encode::write_array_len(bytes, len_u32(items.len()));
            for item in items {
                write_value(bytes, item);
            }
        }
        Value::Object(map) => {
            let _ = rmp::encode::write_map_len(bytes, len_u32(map.len()));
            for (key, item) in map {
                let _ = rmp::encode::write_str(bytes, key);
                write_value(bytes, item);
            }
        }
    }
}

fn len_u32(len: usize) -> u32 {
    // A JSON document with more than 4 billion entries in one array cannot be held in memory here;
    // saturating keeps the encoder total without a panic path.
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// The deepest nesting accepted when decoding; Function output is a handful of levels deep, and the
/// bound keeps a corrupt buffer from recursing without end.
const MAX_DEPTH: usize = 128;

/// Decodes one MessagePack value (a Function's output) into JSON, keeping map order.
pub fn decode_to_json(bytes: &[u8]) -> Result<Value, MsgpackError> {
    let mut reader = Reader { bytes, offset: 0 };
    let value = reader.value(0)?;
    let trailing = bytes.len().saturating_sub(reader.offset);
    if trailing > 0 {
        return Err(MsgpackError::TrailingBytes { trailing });
    }
    Ok(value)
}

struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], MsgpackError> {
        let end = self.offset.checked_add(n).ok_or(MsgpackError::Truncated {
            offset: self.offset,
        })?;
        let slice = self
            .bytes
            .get(self.offset..end)
            .ok_or(MsgpackError::Truncated {
                offset: self.offset,
            })?;
        self.offset = end;
        Ok(slice)
    }

    fn be<const N: usize>(&mut self) -> Result<[u8; N], MsgpackError> {
        let offset = self.offset;
        let slice = self.take(N)?;
        <[u8; N]>::try_from(slice).map_err(|_| MsgpackError::Truncated { offset })
    }

    fn len_u8(&mut self) -> Result<usize, MsgpackError> {
        Ok(usize::from(u8::from_be_bytes(self.be::<1>()?)))
    }
    fn len_u16(&mut self) -> Result<usize, MsgpackError> {
        Ok(usize::from(u16::from_be_bytes(self.be::<2>()?)))
    }
    fn len_u32(&mut self) -> Result<usize, MsgpackError> {
        let offset = self.offset;
        usize::try_from(u32::from_be_bytes(self.be::<4>()?))
            .map_err(|_| MsgpackError::Truncated { offset })
    }

    fn value(&mut self, depth: usize) -> Result<Value, MsgpackError> {
        if depth > MAX_DEPTH {
            return Err(MsgpackError::TooDeep {
                max_depth: MAX_DEPTH,
            });
        }
        let start = self.offset;
        let marker_byte = u8::from_be_bytes(self.be::<1>()?);
        let int = |n: i64| Ok(Value::Number(Number::from(n)));
        match Marker::from_u8(marker_byte) {
            Marker::Null => Ok(Value::Null),
            Marker::True => Ok(Value::Bool(true)),
            Marker::False => Ok(Value::Bool(false)),
            Marker::FixPos(n) => int(i64::from(n)),
            Marker::FixNeg(n) => int(i64::from(n)),
            Marker::U8 => int(i64::from(u8::from_be_bytes(self.be()?))),
            Marker::U16 => int(i64::from(u16::from_be_bytes(self.be()?))),
            Marker::U32 => int(i64::from(u32::from_be_bytes(self.be()?))),
            Marker::U64 => Ok(Value::Number(Number::from(u64::from_be_bytes(self.be()?)))),
            Marker::I8 => int(i64::from(i8::from_be_bytes(self.be()?))),
            Marker::I16 => int(i64::from(i16::from_be_bytes(self.be()?))),
            Marker::I32 => int(i64::from(i32::from_be_bytes(self.be()?))),
            Marker::I64 => int(i64::from_be_bytes(self.be()?)),
            Marker::F32 => {
                let float = f64::from(f32::from_be_bytes(self.be()?));
                self.float(float, start)
            }
            Marker::F64 => {
                let float = f64::from_be_bytes(self.be()?);
                self.float(float, start)
            }
            Marker::FixStr(n) => self.string(usize::from(n), start),
            Marker::Str8 => {
                let n = self.len_u8()?;
                self.string(n, start)
            }
            Marker::Str16 => {
                let n = self.len_u16()?;
                self.string(n, start)
            }
            Marker::Str32 => {
                let n = self.len_u32()?;
                self.string(n, start)
            }
            Marker::FixArray(n) => self.array(usize::from(n), depth),
            Marker::Array16 => {
                let n = self.len_u16()?;
                self.array(n, depth)
            }
            Marker::Array32 => {
                let n = self.len_u32()?;
                self.array(n, depth)
            }
            Marker::FixMap(n) => self.map(usize::from(n), depth),
            Marker::Map16 => {
                let n = self.len_u16()?;
                self.map(n, depth)
            }
            Marker::Map32 => {
                let n = self.len_u32()?;
                self.map(n, depth)
            }
            _ => Err(MsgpackError::Unsupported {
                marker: marker_byte,
                offset: start,
            }),
        }
    }

    fn float(&self, float: f64, offset: usize) -> Result<Value, MsgpackError> {
        Number::from_f64(float)
            .map(Value::Number)
            .ok_or(MsgpackError::NonFiniteFloat { offset })
    }

    fn string(&mut self, len: usize, offset: usize) -> Result<Value, MsgpackError> {
        let raw = self.take(len)?;
        std::str::from_utf8(raw)
            .map(|text| Value::String(text.to_owned()))
            .map_err(|_| MsgpackError::InvalidUtf8 { offset })
    }

    fn array(&mut self, len: usize, depth: usize) -> Result<Value, MsgpackError> {
        // The length comes from untrusted bytes: grow as items arrive instead of reserving it.
        let mut items = Vec::new();
        for _ in 0..len {
            items.push(self.value(depth.saturating_add(1))?);
        }
        Ok(Value::Array(items))
    }

    fn map(&mut self, len: usize, depth: usize) -> Result<Value, MsgpackError> {
        let mut map = Map::new();
        for _ in 0..len {
            let key_offset = self.offset;
            let Value::String(key) = self.value(depth.saturating_add(1))? else {
                return Err(MsgpackError::NonStringKey { offset: key_offset });
            };
            let item = self.value(depth.saturating_add(1))?;
            map.insert(key, item);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip_keeps_key_order_and_number_kinds() {
        let text = r#"{"z":1,"a":[-1,-200,70000,18446744073709551615,1.5,"x",null,true],"m":{"b":{},"a":[]}}"#;
        let value: Value = serde_json::from_str(text).unwrap();
        let back = decode_to_json(&encode_json(&value)).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
    }

    #[test]
    fn small_positive_integers_use_the_signed_compact_form() {
        // 200 fits in i64, so it is written through write_sint: marker 0xcc (u8) plus one byte.
        assert_eq!(encode_json(&Value::from(200)), vec![0xcc, 200]);
        assert_eq!(encode_json(&Value::from(-5)), vec![0xfb]);
    }

    #[test]
    fn truncated_and_trailing_input_are_named() {
        assert_eq!(
            decode_to_json(&[0xa3, b'a']),
            Err(MsgpackError::Truncated { offset: 1 })
        );
        assert_eq!(
            decode_to_json(&[0xc0, 0xc0]),
            Err(MsgpackError::TrailingBytes { trailing: 1 })
        );
        assert_eq!(
            decode_to_json(&[0x81, 0x01, 0x02]),
            Err(MsgpackError::NonStringKey { offset: 1 })
        );
    }
}
