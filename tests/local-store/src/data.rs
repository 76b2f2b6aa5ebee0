//! The store's resources, seeded from bulk-operation JSONL (the files `marginwise generate` writes).
//!
//! Each resource keeps the fields its seed line carried, as JSON, and nothing else: the stand-in
//! answers exactly the fields it was seeded with and reports any other field as unknown instead
//! of inventing a value. Children (`__parentId` lines) are linked to their parent so that
//! `Product.variants` and `Order.lineItems` can be served as connections.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::{Map, Value};

/// The seed files inside a store folder (the names the pipeline's ingest reads).
pub const SEED_FILES: [&str; 3] = ["customers.jsonl", "products.jsonl", "orders.jsonl"];

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("cannot read {file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}: {message}")]
    Bad {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{dir}: none of customers.jsonl, products.jsonl, orders.jsonl is there")]
    Empty { dir: String },
}

/// The resource types the stand-in serves: the seeded ones, and the objects apps create to run
/// their Functions (see `crate::functions`), which are never seeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Customer,
    Product,
    ProductVariant,
    Order,
    LineItem,
    DiscountAutomaticNode,
    DiscountCodeNode,
    CartTransform,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Customer => "Customer",
            Kind::Product => "Product",
            Kind::ProductVariant => "ProductVariant",
            Kind::Order => "Order",
            Kind::LineItem => "LineItem",
            Kind::DiscountAutomaticNode => "DiscountAutomaticNode",
            Kind::DiscountCodeNode => "DiscountCodeNode",
            Kind::CartTransform => "CartTransform",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Some(match name {
            "Customer" => Kind::Customer,
            "Product" => Kind::Product,
            "ProductVariant" => Kind::ProductVariant,
            "Order" => Kind::Order,
            "LineItem" => Kind::LineItem,
            "DiscountAutomaticNode" => Kind::DiscountAutomaticNode,
            "DiscountCodeNode" => Kind::DiscountCodeNode,
            "CartTransform" => Kind::CartTransform,
            _ => return None,
        })
    }

    /// Types a seed file may hold (the others are created through mutations).
    pub fn is_seeded(self) -> bool {
        !matches!(
            self,
            Kind::DiscountAutomaticNode | Kind::DiscountCodeNode | Kind::CartTransform
        )
    }

    /// Owner types that carry metafields (`HasMetafields` in the Admin schema). Line items do not.
    pub fn has_metafields(self) -> bool {
        !matches!(self, Kind::LineItem)
    }

    /// The `MetafieldOwnerType` enum value of an owner.
    pub fn owner_type(self) -> &'static str {
        match self {
            Kind::Customer => "CUSTOMER",
            Kind::Product => "PRODUCT",
            Kind::ProductVariant => "PRODUCTVARIANT",
            Kind::Order => "ORDER",
            Kind::LineItem => "LINE_ITEM",
            Kind::DiscountAutomaticNode | Kind::DiscountCodeNode => "DISCOUNT",
            Kind::CartTransform => "CARTTRANSFORM",
        }
    }

    /// The connection on this type that lists its seeded children, if any.
    pub fn child_connection(self) -> Option<&'static str> {
        match self {
            Kind::Product => Some("variants"),
            Kind::Order => Some("lineItems"),
            _ => None,
        }
    }
}

/// Splits `gid://shopify/<Kind>/<number>` into its type name and number.
pub fn parse_gid(gid: &str) -> Option<(&str, u64)> {
    let rest = gid.strip_prefix("gid://shopify/")?;
    let (kind, number) = rest.split_once('/')?;
    let number = number.split('?').next()?.parse::<u64>().ok()?;
    Some((kind, number))
}

#[derive(Debug, Clone)]
pub struct Node {
    pub gid: String,
    pub kind: Kind,
    /// The seed line without `id` and `__parentId`.
    pub fields: Map<String, Value>,
    pub parent: Option<usize>,
    pub children: Vec<usize>,
}

impl Node {
    pub fn number(&self) -> u64 {
        parse_gid(&self.gid).map_or(0, |(_, number)| number)
    }
}

#[derive(Debug, Clone, Default)]
pub struct StoreData {
    pub nodes: Vec<Node>,
    pub by_gid: HashMap<String, usize>,
    pub customers: Vec<usize>,
    pub products: Vec<usize>,
    pub orders: Vec<usize>,
}

impl StoreData {
    /// Reads `customers.jsonl`, `products.jsonl` and `orders.jsonl` from `dir`. A missing file
    /// means an empty resource list; a folder with none of them is an error (most likely a typo).
    pub fn load_dir(dir: &Path) -> Result<StoreData, SeedError> {
        let mut data = StoreData::default();
        let mut found = 0;
        for name in SEED_FILES {
            let path = dir.join(name);
            if !path.exists() {
                continue;
            }
            found += 1;
            let file = File::open(&path).map_err(|source| SeedError::Io {
                file: path.display().to_string(),
                source,
            })?;
            data.add_lines(&path.display().to_string(), BufReader::new(file))?;
        }
        if found == 0 {
            return Err(SeedError::Empty {
                dir: dir.display().to_string(),
            });
        }
        data.link(&dir.display().to_string())?;
        Ok(data)
    }

    /// Seeds from JSONL text (tests and in-process demos).
    pub fn from_jsonl(files: &[(&str, &str)]) -> Result<StoreData, SeedError> {
        let mut data = StoreData::default();
        for (name, text) in files {
            data.add_lines(name, text.as_bytes())?;
        }
        data.link("seed")?;
        Ok(data)
    }

    fn add_lines(&mut self, file: &str, reader: impl BufRead) -> Result<(), SeedError> {
        for (index, line) in reader.lines().enumerate() {
            let line_number = index + 1;
            let line = line.map_err(|source| SeedError::Io {
                file: file.to_string(),
                source,
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let bad = |message: String| SeedError::Bad {
                file: file.to_string(),
                line: line_number,
                message,
            };
            let value: Value =
                serde_json::from_str(&line).map_err(|e| bad(format!("not JSON: {e}")))?;
            let Value::Object(mut fields) = value else {
                return Err(bad("not a JSON object".to_string()));
            };
            let gid = match fields.remove("id") {
                Some(Value::String(gid)) => gid,
                _ => return Err(bad("field `id`: missing or not a string".to_string())),
            };
            let kind = parse_gid(&gid)
                .and_then(|(kind, _)| Kind::from_name(kind))
                .filter(|kind| kind.is_seeded())
                .ok_or_else(|| bad(format!("field `id`: `{gid}` is not a GID of a served type")))?;
            if self.by_gid.contains_key(&gid) {
                return Err(bad(format!("field `id`: `{gid}` appears twice")));
            }
            // The parent is linked once every line is read: children may come first.
            if fields
                .get("__parentId")
                .is_some_and(|parent| !parent.is_string())
            {
                return Err(bad("field `__parentId`: not a string".to_string()));
            }
            let index = self.nodes.len();
            self.by_gid.insert(gid.clone(), index);
            self.nodes.push(Node {
                gid,
                kind,
                fields,
                parent: None,
                children: Vec::new(),
            });
        }
        Ok(())
    }

    fn link(&mut self, source: &str) -> Result<(), SeedError> {
        for index in 0..self.nodes.len() {
            let Some(node) = self.nodes.get_mut(index) else {
                continue;
            };
            let parent_gid = match node.fields.remove("__parentId") {
                Some(Value::String(parent)) => Some(parent),
                _ => None,
            };
            let kind = node.kind;
            match parent_gid {
                Some(parent_gid) => {
                    let parent = *self.by_gid.get(&parent_gid).ok_or_else(|| SeedError::Bad {
                        file: source.to_string(),
                        line: 0,
                        message: format!("`__parentId` `{parent_gid}` names no seeded resource"),
                    })?;
                    if let Some(node) = self.nodes.get_mut(index) {
                        node.parent = Some(parent);
                    }
                    if let Some(parent) = self.nodes.get_mut(parent) {
                        parent.children.push(index);
                    }
                }
                None => match kind {
                    Kind::Customer => self.customers.push(index),
                    Kind::Product => self.products.push(index),
                    Kind::Order => self.orders.push(index),
                    Kind::ProductVariant
                    | Kind::LineItem
                    | Kind::DiscountAutomaticNode
                    | Kind::DiscountCodeNode
                    | Kind::CartTransform => {}
                },
            }
        }
        Ok(())
    }

    pub fn node(&self, index: usize) -> Option<&Node> {
        self.nodes.get(index)
    }

    pub fn find(&self, gid: &str) -> Option<usize> {
        self.by_gid.get(gid).copied()
    }
}
