//! The cart line fields both Functions read, under the same short aliases in both queries.
//!
//! A line's fields are read by position once the first line showed that the answer keeps the
//! query's order (see [`Layout`]), else by key.

use marginwise_engine::VariantInput;
use shopify_function::wasm_api::{InternedStringId, Value};

use crate::value::{integer, text};

/// The response keys of each cart line: short aliases in the queries, because the provider
/// compares a wanted key with every key before it (see the crate docs).
pub mod line_key {
    /// `id`, and in the cart transform also the variant's `id` under `MERCHANDISE`.
    pub const ID: &str = "i";
    /// `quantity`
    pub const QUANTITY: &str = "q";
    /// `cost`, then `amountPerQuantity` (`UNIT`), then `amount` (and in the cart transform
    /// `currencyCode`, `CURRENCY`).
    pub const COST: &str = "c";
    pub const UNIT: &str = "u";
    pub const AMOUNT: &str = "a";
    pub const CURRENCY: &str = "k";
    /// `merchandise`, then `... on ProductVariant { metafield(namespace: "$app", key: "offer") }`
    /// (`OFFER`), then its `value`.
    pub const MERCHANDISE: &str = "m";
    pub const OFFER: &str = "o";
    pub const VALUE: &str = "v";
    /// Cart transform only: `attribute(key: "_mw_bundle")`, then its `value` (`VALUE`).
    pub const MARKER: &str = "t";
}

/// The keys of a query's per-line objects that select more than one field, in the query's order.
///
/// A GraphQL answer lists an object's fields in the order the query selects them, and Shopify's
/// runner keeps that order in the MessagePack it hands the Function. The provider finds a field
/// by key by walking the keys before it; by position (`get_at_index`, which the provider also
/// accepts on objects) it skips the comparisons, about 150 instructions a field (1.08 K a line
/// on the offers query, measured). So the reader checks these keys on the first line, and when
/// they are exactly these, in this order, reads every line by position; otherwise every line is
/// read by key, as before. An object that selects one field (`cost`, the offers query's
/// `amountPerQuantity` and `merchandise`, `metafield`, `attribute`) has it at position 0 whatever
/// the order, and needs no check.
///
/// The tests compare each layout with its query file.
#[derive(Debug)]
pub struct Layout {
    /// The line object's keys.
    pub line: &'static [&'static str],
    /// `amountPerQuantity`'s keys.
    pub unit: &'static [&'static str],
    /// A product variant's keys under `merchandise` (other merchandise has none).
    pub merchandise: &'static [&'static str],
}

impl Layout {
    /// Where `key` sits in `keys`. The readers only ask for keys their layout lists (the tests
    /// check it); anything else gets a position past the end, which reads as absent.
    fn position(keys: &[&str], key: &str) -> usize {
        keys.iter().position(|k| *k == key).unwrap_or(usize::MAX)
    }
}

/// Fewest lines for which checking the first line's keys pays for itself. Measured on the budget
/// carts' read floors, by position against by key: 3 lines +409 (offers) and +1,460 (bundles)
/// instructions, 4 lines -675 and -124.
const MIN_LINES_BY_POSITION: usize = 4;

/// The per-line objects with more than one field.
pub(crate) enum Part {
    Line,
    Unit,
    Merchandise,
}

/// One field of a per-line object: its interned key, and its position in the layout.
#[derive(Clone, Copy)]
pub(crate) struct Field {
    key: InternedStringId,
    position: usize,
}

impl Field {
    fn new(root: &Value, keys: &[&str], key: &str) -> Self {
        Self {
            key: root.intern_utf8_str(key),
            position: Layout::position(keys, key),
        }
    }

    /// A field of a single-field object: always at position 0.
    fn only(root: &Value, key: &str) -> Self {
        Self {
            key: root.intern_utf8_str(key),
            position: 0,
        }
    }
}

/// Reads the lines of one query, by position when the first line allows it.
pub(crate) struct LineReader {
    layout: &'static Layout,
    by_position: bool,
    id: Field,
    quantity: Field,
    cost: Field,
    unit: Field,
    amount: Field,
    merchandise: Field,
    offer: Field,
    value: Field,
}

/// What both Functions read of one line.
pub(crate) struct CommonLine {
    pub id: String,
    pub quantity: i64,
    pub unit_price: String,
    pub variant: VariantInput,
    /// The line's `amountPerQuantity` and `merchandise` values, for the fields only one Function
    /// reads ([`LineReader::extra`]).
    pub unit: Value,
    pub merchandise: Value,
}

impl LineReader {
    /// A reader of `lines`, which holds `count` lines of a query laid out as `layout`.
    pub(crate) fn new(root: &Value, layout: &'static Layout, lines: &Value, count: usize) -> Self {
        let line = |key| Field::new(root, layout.line, key);
        let mut reader = Self {
            layout,
            by_position: false,
            id: line(line_key::ID),
            quantity: line(line_key::QUANTITY),
            cost: line(line_key::COST),
            unit: Field::only(root, line_key::UNIT),
            amount: Field::new(root, layout.unit, line_key::AMOUNT),
            merchandise: line(line_key::MERCHANDISE),
            offer: Field::new(root, layout.merchandise, line_key::OFFER),
            value: Field::only(root, line_key::VALUE),
        };
        reader.by_position =
            count >= MIN_LINES_BY_POSITION && reader.laid_out(&lines.get_at_index(0));
        reader
    }

    /// Whether `line`'s objects hold exactly the layout's keys in its order. Merchandise that is
    /// not a product variant has no keys to check: with more than one key to check, the lines are
    /// then read by key.
    fn laid_out(&self, line: &Value) -> bool {
        let keys_are = |object: &Value, keys: &[&str]| {
            object.obj_len() == Some(keys.len())
                && keys
                    .iter()
                    .enumerate()
                    .all(|(at, key)| object.get_obj_key_at_index(at).as_deref() == Some(*key))
        };
        if !keys_are(line, self.layout.line) {
            return false;
        }
        let unit = self.get(&self.get(line, self.cost), self.unit);
        let merchandise = self.get(line, self.merchandise);
        (self.layout.unit.len() < 2 || keys_are(&unit, self.layout.unit))
            && (self.layout.merchandise.len() < 2
                || keys_are(&merchandise, self.layout.merchandise))
    }

    /// `object`'s `field`, by key: used before the layout is known, and by the check itself.
    fn get(&self, object: &Value, field: Field) -> Value {
        object.get_interned_obj_prop(field.key)
    }

    /// `object`'s `field`, by position when the layout was confirmed.
    pub(crate) fn field(&self, object: &Value, field: Field) -> Value {
        if self.by_position {
            object.get_at_index(field.position)
        } else {
            object.get_interned_obj_prop(field.key)
        }
    }

    /// A field only one Function reads, of the line object (`Part::Line`), its
    /// `amountPerQuantity` or its product variant; read with [`Self::field`].
    pub(crate) fn extra(&self, root: &Value, part: Part, key: &str) -> Field {
        let keys = match part {
            Part::Line => self.layout.line,
            Part::Unit => self.layout.unit,
            Part::Merchandise => self.layout.merchandise,
        };
        Field::new(root, keys, key)
    }

    /// The `value` of a metafield or attribute object.
    pub(crate) fn value(&self) -> Field {
        self.value
    }

    pub(crate) fn read(&self, line: &Value) -> CommonLine {
        let unit = self.field(&self.field(line, self.cost), self.unit);
        // The price is read before moving on to `merchandise`: read later it costs about 45
        // instructions more per line (measured).
        let unit_price = text(&self.field(&unit, self.amount)).unwrap_or_default();
        let merchandise = self.field(line, self.merchandise);
        let offer = self.field(&self.field(&merchandise, self.offer), self.value);
        CommonLine {
            id: text(&self.field(line, self.id)).unwrap_or_default(),
            // Unreadable quantities and prices read as 0 and "": the engine leaves the line out
            // with a reason.
            quantity: integer(&self.field(line, self.quantity)).unwrap_or(0),
            unit_price,
            variant: text(&offer).map_or(VariantInput::Missing, VariantInput::Text),
            unit,
            merchandise,
        }
    }
}
