//! Response values that keep their keys in selection order.
//!
//! GraphQL answers list fields in the order they were selected. `serde_json::Map` sorts its keys
//! unless the workspace-wide `preserve_order` feature is on, and switching that on would change
//! the key order of every other crate's JSON, so answers are built as [`Out`] instead.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    Null,
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Out>),
    Obj(Vec<(String, Out)>),
    /// A value stored as JSON (seeded store data, `jsonValue`): written as it is.
    Raw(serde_json::Value),
}

impl Out {
    pub fn str(text: impl Into<String>) -> Out {
        Out::Str(text.into())
    }

    pub fn obj(fields: Vec<(&str, Out)>) -> Out {
        Out::Obj(
            fields
                .into_iter()
                .map(|(key, value)| (key.to_string(), value))
                .collect(),
        )
    }

    /// Serializes to compact JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "null".to_string())
    }

    /// Serializes one bulk-operation JSONL line. Shopify's files escape every `/` inside strings
    /// (`"gid:\/\/shopify\/Customer\/1"`), and readers that borrow strings must cope with that, so
    /// the stand-in writes the same bytes. A `/` cannot occur in JSON outside a string, which makes
    /// a plain replacement exact.
    pub fn to_jsonl_line(&self) -> String {
        self.to_json().replace('/', "\\/")
    }
}

impl Serialize for Out {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Out::Null => serializer.serialize_unit(),
            Out::Int(value) => serializer.serialize_i64(*value),
            Out::Float(value) => serializer.serialize_f64(*value),
            Out::Str(value) => serializer.serialize_str(value),
            Out::List(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Out::Obj(fields) => {
                let mut map = serializer.serialize_map(Some(fields.len()))?;
                for (key, value) in fields {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
            Out::Raw(value) => value.serialize(serializer),
        }
    }
}
