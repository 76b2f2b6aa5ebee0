//! A customer's lines in the bulk export folders (`marginwise export --out DIR`), found for a
//! data request and removed for a redaction.
//!
//! An export folder holds the store's history as the Admin API's bulk operations wrote it
//! (see `ingest`): `customers.jsonl` (one line per customer), `products.jsonl` (nothing about
//! customers) and `orders.jsonl`, where each line item is a line of its own whose `__parentId` is
//! its order's GID. A customer's lines are:
//! - the line whose `id` is the customer's GID, and every line whose `customer.id` is (their
//!   orders), and the orders Shopify names in the request (`orders_to_redact`,
//!   `orders_requested`), which may have lost their customer since;
//! - every line whose `__parentId` names one of those lines, and so on down: an export with
//!   deeper nesting loses the children of a removed line too, wherever they are in the file.
//!
//! Each line is read as JSON and its GIDs as the ingest reads them (`gid://shopify/Kind/number`,
//! with Shopify's escaped slashes and an ignored `?query`), never by searching the text for the
//! id: `Customer/12` must not take `Customer/123` with it. A line that is not a JSON object, or
//! whose `id`, `__parentId` or `customer.id` cannot be read, may be anyone's: it is kept as it
//! is, never a reason to fail the redaction, and counted so the merchant sees that the folder
//! holds lines nobody can attribute.
//!
//! Files are streamed (an orders export runs to gigabytes): a first read finds whether the
//! customer has any line at all, and only then is the file rewritten, once, through a temporary
//! beside it renamed over it (`local::replace_atomically`, which `local::scrub_plan` uses too).
//! The lines kept are copied byte for byte, in their order. A second redaction of the same
//! customer reads each file once and writes nothing. What is remembered between lines is the ids
//! of the customer's lines only, never the whole file's.
//!
//! What it deliberately does not do: it does not touch `products.jsonl`, nor a `.part` file an
//! `export` is writing at that moment (a plain `export` that completes after a redaction brings
//! the customer back; `marginwise refresh` takes every customer on the suppression list out of
//! each new export before it replaces the last one, and again after scoring; `shop/redact`
//! removes `.part` files), and it keeps no record of whose lines went.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use super::PrivacyError;
use super::local::{self, io, open_if_present};
use crate::ingest::records::{GidKind, parse_gid};
use crate::ingest::{CUSTOMERS_FILE, ORDERS_FILE, PRODUCTS_FILE};

/// The export files that hold lines about customers, in the order they are handled.
pub const CUSTOMER_FILES: [&str; 2] = [CUSTOMERS_FILE, ORDERS_FILE];
/// Every file `export` writes into a folder (what `shop/redact` removes).
pub const EXPORT_FILES: [&str; 3] = [CUSTOMERS_FILE, PRODUCTS_FILE, ORDERS_FILE];

/// Whose lines are looked for: a customer (or several: `marginwise refresh` keeps every redacted
/// customer out of a new export at once), and the orders Shopify named as theirs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The customers' numeric ids (the number in `gid://shopify/Customer/<id>`).
    pub customer_ids: HashSet<u64>,
    /// Orders named by the request, by numeric id.
    pub order_ids: HashSet<u64>,
}

impl Owner {
    /// The customer and the orders of a payload's `orders_to_redact` or `orders_requested`
    /// (numbers, or strings of digits; anything else names no order).
    pub fn new(customer_id: u64, named_orders: &[serde_json::Value]) -> Owner {
        let order_ids = named_orders
            .iter()
            .filter_map(|value| match value {
                serde_json::Value::Number(n) => n.as_u64(),
                serde_json::Value::String(text) => text.trim().parse().ok(),
                _ => None,
            })
            .filter(|n| *n > 0)
            .collect();
        Owner {
            customer_ids: HashSet::from([customer_id]),
            order_ids,
        }
    }

    /// Every one of `customer_ids`, with no orders named.
    pub fn customers(customer_ids: impl IntoIterator<Item = u64>) -> Owner {
        Owner {
            customer_ids: customer_ids.into_iter().collect(),
            order_ids: HashSet::new(),
        }
    }
}

/// What a redaction removed from the export folders, summed over them: counts only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportsScrubbed {
    /// Export files read (a folder given without its files, or not there, adds none).
    pub files_read: u64,
    /// Files rewritten without the customer's lines.
    pub files_rewritten: u64,
    /// The customer's own lines in `customers.jsonl`.
    pub customer_lines_removed: u64,
    /// The customer's orders (lines of `orders.jsonl` naming the customer, or an order the
    /// request named).
    pub order_lines_removed: u64,
    /// Lines nested under a removed line (an order's line items, and anything below them).
    pub nested_lines_removed: u64,
    /// Lines that could not be read, so whose they are is unknown: kept unchanged.
    pub unreadable_lines_kept: u64,
}

impl ExportsScrubbed {
    /// Every line removed.
    pub fn lines_removed(&self) -> u64 {
        self.customer_lines_removed
            .saturating_add(self.order_lines_removed)
            .saturating_add(self.nested_lines_removed)
    }
}

/// Removes `owner`'s lines from the export files in each of `dirs`.
pub fn scrub_exports(dirs: &[PathBuf], owner: &Owner) -> Result<ExportsScrubbed, PrivacyError> {
    let mut total = ExportsScrubbed::default();
    for dir in dirs {
        // Held while the folder's files are read and replaced (see `folder_lock`).
        let _lock = crate::folder_lock::lock(dir).map_err(io(dir))?;
        for name in CUSTOMER_FILES {
            scrub_file(dir, name, owner, &mut total)?;
        }
    }
    Ok(total)
}

fn scrub_file(
    dir: &Path,
    name: &str,
    owner: &Owner,
    total: &mut ExportsScrubbed,
) -> Result<(), PrivacyError> {
    let path = dir.join(name);
    let Some(file) = open_if_present(&path)? else {
        return Ok(());
    };
    total.files_read += 1;
    let mut matcher = Matcher::new(owner);
    // Read first, write only when the customer is there: a redaction repeated, or of a customer
    // the export never held, costs one read and leaves the file as it is.
    let found = pass(&path, file, &mut matcher, &mut Sink::Nothing)?;
    total.unreadable_lines_kept += found.unreadable;
    if found.removed() == 0 {
        return Ok(());
    }
    let temporary = dir.join(local::redacting_name(name));
    loop {
        let Some(file) = open_if_present(&path)? else {
            return Ok(());
        };
        let mut removed = Pass::default();
        let replaced = local::replace_atomically(&path, &temporary, |kept| {
            removed = pass(&path, file, &mut matcher, &mut Sink::Kept(kept, &temporary))?;
            Ok(removed.removed() > 0)
        })?;
        if replaced {
            total.files_rewritten += 1;
        }
        if name == CUSTOMERS_FILE {
            total.customer_lines_removed += removed.roots;
        } else {
            total.order_lines_removed += removed.roots;
        }
        total.nested_lines_removed += removed.nested;
        // A line whose parent comes after it in the file was kept by the first read and found
        // now; its own children may come before it, so the file is read again until a pass
        // finds no new id. Bulk exports put children after their parent: one rewrite.
        if !removed.found_new_ids {
            return Ok(());
        }
    }
}

/// What an export holds about one customer, for a data request: per folder, per file, the
/// customer's lines as JSON. Lines are read one at a time; only the customer's are kept.
pub fn customer_lines(
    dirs: &[PathBuf],
    owner: &Owner,
) -> Result<Vec<serde_json::Value>, PrivacyError> {
    let mut folders = Vec::new();
    for dir in dirs {
        let mut files = serde_json::Map::new();
        for name in CUSTOMER_FILES {
            let path = dir.join(name);
            let mut matcher = Matcher::new(owner);
            // The ids found grow while children are found; the pass that finds no new id found
            // every line, and its lines are the ones kept.
            let lines = loop {
                let Some(file) = open_if_present(&path)? else {
                    break None;
                };
                let mut lines = Vec::new();
                let found = pass(&path, file, &mut matcher, &mut Sink::Found(&mut lines))?;
                if !found.found_new_ids {
                    break Some(lines);
                }
            };
            if let Some(lines) = lines {
                files.insert(name.to_string(), serde_json::Value::Array(lines));
            }
        }
        if !files.is_empty() {
            folders.push(serde_json::Value::Object(files));
        }
    }
    Ok(folders)
}

/// What one read of a file met.
#[derive(Debug, Clone, Copy, Default)]
struct Pass {
    roots: u64,
    nested: u64,
    unreadable: u64,
    /// A line of the customer whose id was not known before this pass.
    found_new_ids: bool,
}

impl Pass {
    fn removed(&self) -> u64 {
        self.roots + self.nested
    }
}

/// Where a pass puts lines: nowhere (counting), the lines kept (a rewrite), or the customer's
/// lines as JSON (a data request).
enum Sink<'a> {
    Nothing,
    Kept(&'a mut std::io::BufWriter<File>, &'a Path),
    Found(&'a mut Vec<serde_json::Value>),
}

fn pass(
    path: &Path,
    file: File,
    matcher: &mut Matcher<'_>,
    sink: &mut Sink<'_>,
) -> Result<Pass, PrivacyError> {
    let mut counts = Pass::default();
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut line = Vec::new();
    loop {
        line.clear();
        // Bytes, not `lines()`: a line that is not UTF-8 is kept as it is, and so are its line
        // ending and a last line without one.
        if reader.read_until(b'\n', &mut line).map_err(io(path))? == 0 {
            return Ok(counts);
        }
        let verdict = matcher.judge(&line);
        match verdict {
            Verdict::Customers { root, new_id } => {
                if root {
                    counts.roots += 1;
                } else {
                    counts.nested += 1;
                }
                counts.found_new_ids |= new_id;
                if let Sink::Found(found) = sink
                    && let Ok(value) = serde_json::from_slice(&line)
                {
                    found.push(value);
                }
            }
            Verdict::Unreadable | Verdict::Other => {
                if verdict == Verdict::Unreadable {
                    counts.unreadable += 1;
                }
                if let Sink::Kept(kept, temporary) = sink {
                    kept.write_all(&line).map_err(io(temporary))?;
                }
            }
        }
    }
}

/// An id as the ingest reads it: a GID's resource type and number (its `?query` ignored), or,
/// for a text that is not a GID, the text itself. The type is kept whole (the ingest folds the
/// types it does not read into one), so nested resources of different types never collide.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum IdKey {
    Gid { kind: Box<str>, number: u64 },
    Text(Box<str>),
}

fn id_key(text: &str) -> IdKey {
    if let Some(gid) = parse_gid(text)
        && let Some((kind, _)) = text
            .strip_prefix("gid://shopify/")
            .and_then(|rest| rest.split_once('/'))
    {
        return IdKey::Gid {
            kind: kind.into(),
            number: gid.number,
        };
    }
    IdKey::Text(text.into())
}

/// The fields of a line that say whose it is; every other field is skipped unread.
#[derive(serde::Deserialize)]
struct ExportLine {
    id: Option<serde_json::Value>,
    #[serde(rename = "__parentId")]
    parent_id: Option<serde_json::Value>,
    customer: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// One of the customer's lines: one that names them (`root`) or nested under one.
    Customers { root: bool, new_id: bool },
    /// Not readable enough to say whose it is.
    Unreadable,
    /// Someone else's, or no one's (a blank line).
    Other,
}

/// Judges lines, remembering the ids of the customer's lines met so far.
struct Matcher<'a> {
    owner: &'a Owner,
    ids: HashSet<IdKey>,
}

impl<'a> Matcher<'a> {
    fn new(owner: &'a Owner) -> Matcher<'a> {
        Matcher {
            owner,
            ids: HashSet::new(),
        }
    }

    fn judge(&mut self, line: &[u8]) -> Verdict {
        let text = line.trim_ascii();
        if text.is_empty() {
            return Verdict::Other;
        }
        // A struct also deserializes from a JSON array; a line of the export is an object.
        if !text.starts_with(b"{") {
            return Verdict::Unreadable;
        }
        let Ok(fields) = serde_json::from_slice::<ExportLine>(text) else {
            return Verdict::Unreadable;
        };
        let mut unreadable = false;
        let mut text_of = |value: Option<&serde_json::Value>| match value {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(text)) => Some(text.clone()),
            Some(_) => {
                unreadable = true;
                None
            }
        };
        let id = text_of(fields.id.as_ref());
        let parent = text_of(fields.parent_id.as_ref());
        let customer = match &fields.customer {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::Object(reference)) => text_of(reference.get("id")),
            Some(_) => {
                unreadable = true;
                None
            }
        };
        let is_customer = |text: &str| {
            parse_gid(text).is_some_and(|g| {
                g.kind == GidKind::Customer && self.owner.customer_ids.contains(&g.number)
            })
        };
        let names_customer = customer.as_deref().is_some_and(is_customer);
        // A `customer.id` that is not a customer's GID may be this customer's.
        let unreadable = unreadable
            || customer
                .as_deref()
                .is_some_and(|text| parse_gid(text).is_none_or(|g| g.kind != GidKind::Customer));
        let own_key = id.as_deref().map(id_key);
        let root = names_customer
            || id.as_deref().is_some_and(is_customer)
            || id.as_deref().and_then(parse_gid).is_some_and(|g| {
                g.kind == GidKind::Order && self.owner.order_ids.contains(&g.number)
            });
        let nested = !root
            && parent
                .as_deref()
                .is_some_and(|text| self.ids.contains(&id_key(text)));
        if root || nested {
            let new_id = own_key.is_some_and(|key| self.ids.insert(key));
            return Verdict::Customers { root, new_id };
        }
        if unreadable {
            Verdict::Unreadable
        } else {
            Verdict::Other
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(customer_id: u64, orders: &[u64]) -> Owner {
        Owner {
            customer_ids: HashSet::from([customer_id]),
            order_ids: orders.iter().copied().collect(),
        }
    }

    fn judge_all(owner: &Owner, lines: &[&str]) -> Vec<Verdict> {
        let mut matcher = Matcher::new(owner);
        lines.iter().map(|l| matcher.judge(l.as_bytes())).collect()
    }

    const THEIRS: Verdict = Verdict::Customers {
        root: true,
        new_id: true,
    };
    const NESTED: Verdict = Verdict::Customers {
        root: false,
        new_id: true,
    };

    #[test]
    fn gids_are_matched_as_the_ingest_reads_them_not_as_text() {
        let owner = owner(12, &[]);
        let verdicts = judge_all(
            &owner,
            &[
                r#"{"id":"gid:\/\/shopify\/Customer\/12"}"#,
                r#"{"id":"gid://shopify/Customer/123"}"#,
                r#"{"id":"gid://shopify/Customer/12?from=import"}"#,
                r#"{"id":"gid://shopify/Order/12","customer":{"id":"gid://shopify/Customer/1"}}"#,
                r#"{"id":"gid://shopify/Order/7","customer":{"id":"gid://shopify/Customer/12"}}"#,
                r#"{"id":"gid://shopify/Order/8","customer":null}"#,
                r#"{"id":"gid://shopify/Order/9","note":"gid://shopify/Customer/12"}"#,
            ],
        );
        assert_eq!(
            verdicts,
            [
                THEIRS,
                Verdict::Other,
                Verdict::Customers {
                    root: true,
                    new_id: false
                },
                Verdict::Other,
                THEIRS,
                Verdict::Other,
                Verdict::Other,
            ]
        );
    }

    #[test]
    fn children_of_removed_lines_go_at_any_depth_and_types_do_not_collide() {
        let owner = owner(1, &[]);
        let verdicts = judge_all(
            &owner,
            &[
                r#"{"id":"gid://shopify/Order/5","customer":{"id":"gid://shopify/Customer/1"}}"#,
                r#"{"id":"gid://shopify/LineItem/50","__parentId":"gid://shopify/Order/5"}"#,
                r#"{"id":"gid://shopify/Fulfillment/5","__parentId":"gid://shopify/LineItem/50"}"#,
                r#"{"id":"gid://shopify/Refund/9","__parentId":"gid://shopify/Fulfillment/5"}"#,
                // The same number under another type is someone else's.
                r#"{"id":"gid://shopify/Refund/10","__parentId":"gid://shopify/Return/5"}"#,
                r#"{"id":"gid://shopify/LineItem/51","__parentId":"gid://shopify/Order/6"}"#,
            ],
        );
        assert_eq!(
            verdicts,
            [
                THEIRS,
                NESTED,
                NESTED,
                NESTED,
                Verdict::Other,
                Verdict::Other
            ]
        );
    }

    #[test]
    fn a_line_that_cannot_be_read_is_unreadable_unless_it_is_known_to_be_theirs() {
        let owner = owner(1, &[77]);
        let verdicts = judge_all(
            &owner,
            &[
                "not json",
                r#"["gid://shopify/Customer/1"]"#,
                r#"{"id":"gid://shopify/Order/2","customer":{"id":42}}"#,
                r#"{"id":"gid://shopify/Order/3","customer":{"id":"someone"}}"#,
                r#"{"id":5}"#,
                "",
                "\r\n",
                // Named by the request: theirs although its customer cannot be read.
                r#"{"id":"gid://shopify/Order/77","customer":"x"}"#,
                r#"{"id":"gid://shopify/Order/4","customer":{"id":"gid://shopify/Customer/2"}}"#,
            ],
        );
        assert_eq!(
            verdicts,
            [
                Verdict::Unreadable,
                Verdict::Unreadable,
                Verdict::Unreadable,
                Verdict::Unreadable,
                Verdict::Unreadable,
                Verdict::Other,
                Verdict::Other,
                THEIRS,
                Verdict::Other,
            ]
        );
    }

    /// The ingest needs an order's line items right after it, but a file put together by hand
    /// (or a deeper export) may have a child before its parent: it goes all the same.
    #[test]
    fn children_before_their_parents_are_removed_too() {
        let dir = std::env::temp_dir().join(format!("mw-exports-order-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::create_dir_all(&dir);
        let lines = [
            (
                r#"{"id":"gid://shopify/Refund/1","__parentId":"gid://shopify/LineItem/50"}"#,
                true,
            ),
            (
                r#"{"id":"gid://shopify/LineItem/50","__parentId":"gid://shopify/Order/5"}"#,
                true,
            ),
            (
                r#"{"id":"gid://shopify/LineItem/60","__parentId":"gid://shopify/Order/6"}"#,
                false,
            ),
            (
                r#"{"id":"gid://shopify/Order/5","customer":{"id":"gid://shopify/Customer/1"}}"#,
                true,
            ),
            (
                r#"{"id":"gid://shopify/Order/6","customer":{"id":"gid://shopify/Customer/2"}}"#,
                false,
            ),
        ];
        let text = |keep_theirs: bool| -> String {
            lines
                .iter()
                .filter(|(_, theirs)| keep_theirs || !theirs)
                .map(|(line, _)| format!("{line}\n"))
                .collect()
        };
        let path = dir.join(ORDERS_FILE);
        let _ = std::fs::write(&path, text(true));
        let dirs = [dir.clone()];
        let owner = owner(1, &[]);
        let found = customer_lines(&dirs, &owner).unwrap_or_else(|e| unreachable!("{e}"));
        let found = found.first().and_then(|f| f.get(ORDERS_FILE)).cloned();
        assert_eq!(
            found.and_then(|f| f.as_array().map(Vec::len)),
            Some(3),
            "every line of theirs, found for a data request"
        );
        let scrubbed = scrub_exports(&dirs, &owner).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            (scrubbed.order_lines_removed, scrubbed.nested_lines_removed),
            (1, 2)
        );
        assert_eq!(std::fs::read_to_string(&path).ok(), Some(text(false)));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn named_orders_are_read_from_numbers_and_digit_strings() {
        let owner = Owner::new(
            1,
            &[
                serde_json::json!(299938),
                serde_json::json!("280263"),
                serde_json::json!("x"),
                serde_json::json!(0),
            ],
        );
        let mut expected: Vec<u64> = owner.order_ids.iter().copied().collect();
        expected.sort_unstable();
        assert_eq!(expected, [280263, 299938]);
    }
}
