//! What the pipeline keeps on disk about a customer or a shop, found and removed.
//!
//! Two places hold per-customer values, both keyed by the owner's GID:
//! - the write-back state database (`sync::state`): the tables `stored` (the value the store holds),
//!   `inflight` (the journal) and `deleted` (profiles deleted for opted-out customers). Its table
//!   `redacted` is the suppression list: the GIDs of redacted customers, ids only, kept on
//!   purpose so that `apply` never writes their profile again ([`suppress_owner`]);
//! - the plan folder: `metafields.jsonl` (the profile to write) and `deletions.jsonl`.
//!
//! The state database is reached with its own connection rather than through `sync::state::State`,
//! whose `open` creates a database where none exists: a redaction must never create one. The test
//! `the_state_database_has_no_table_the_redaction_does_not_know` fails when a table is added to the
//! state, so that whoever adds one decides whether it holds data about customers.
//!
//! A plan file is rewritten beside itself and renamed over the old one, so a reader (an `apply` run)
//! sees either the old file or the new one, never half of one ([`replace_atomically`], which the
//! export folders' rewrite in `super::exports` shares).

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::PrivacyError;
use crate::plan::{DELETIONS_FILE, PLAN_FILE};
use crate::sync::state::open_existing;

/// What a table of the state database holds about customers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holds {
    /// Nothing about any customer.
    Nothing,
    /// Rows about an owner (`owner_id`), removed by a redaction.
    OwnerData,
    /// The suppression list: redacted owners' GIDs and nothing else, written by a redaction.
    RedactedIds,
    /// The purge list: identifiers (owner, namespace, key, no value) of redacted owners'
    /// metafields a write may have reached after the redaction; `apply` deletes them in the
    /// store and then the rows.
    RedactedMetafields,
}

/// The tables of the state database, and what each holds about customers.
pub const STATE_TABLES: [(&str, Holds); 7] = [
    ("meta", Holds::Nothing),
    ("stored", Holds::OwnerData),
    ("inflight", Holds::OwnerData),
    ("deleted", Holds::OwnerData),
    ("bulk", Holds::Nothing),
    ("redacted", Holds::RedactedIds),
    ("purge", Holds::RedactedMetafields),
];

/// The plan files that name customers.
pub const PLAN_FILES: [&str; 2] = [PLAN_FILE, DELETIONS_FILE];

/// One row of the state database about an owner.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StateRow {
    /// `stored`: the value the store holds; `inflight`: a write whose outcome was not known yet;
    /// `deleted`: a metafield deleted for an opted-out customer.
    pub table: &'static str,
    pub namespace: String,
    pub key: String,
    pub value: Option<String>,
}

fn sqlite(file: &Path) -> impl Fn(rusqlite::Error) -> PrivacyError + '_ {
    move |source| PrivacyError::Sqlite {
        file: file.display().to_string(),
        source,
    }
}

/// Opens an existing state database of `shop` (`None` when there is none), refusing one that
/// belongs to another shop.
pub fn open_state(file: &Path, shop: &str) -> Result<Option<Connection>, PrivacyError> {
    if !file.exists() {
        return Ok(None);
    }
    let error = sqlite(file);
    let connection = open_existing(
        file,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(&error)?;
    // What is deleted is overwritten, not left in free pages for anyone reading the file.
    connection
        .pragma_update(None, "secure_delete", "ON")
        .map_err(&error)?;
    let recorded = recorded_shop(&connection).map_err(&error)?;
    match recorded {
        Some(recorded) if recorded != shop => Err(PrivacyError::OtherShop {
            file: file.display().to_string(),
            recorded,
            expected: shop.to_string(),
        }),
        _ => Ok(Some(connection)),
    }
}

fn recorded_shop(connection: &Connection) -> Result<Option<String>, rusqlite::Error> {
    let has_meta: bool = connection
        .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'")?
        .exists([])?;
    if !has_meta {
        return Ok(None);
    }
    connection
        .query_row("SELECT value FROM meta WHERE name = 'shop'", [], |r| {
            r.get(0)
        })
        .optional()
}

/// Every row about `owner_id`.
pub fn owner_rows(
    connection: &Connection,
    file: &Path,
    owner_id: &str,
) -> Result<Vec<StateRow>, PrivacyError> {
    let error = sqlite(file);
    let mut rows = Vec::new();
    for (table, sql) in [
        (
            "stored",
            "SELECT namespace, key, value FROM stored WHERE owner_id = ?1 ORDER BY namespace, key",
        ),
        (
            "inflight",
            "SELECT namespace, key, value FROM inflight WHERE owner_id = ?1 ORDER BY namespace, key",
        ),
        (
            "deleted",
            "SELECT namespace, key, NULL FROM deleted WHERE owner_id = ?1 ORDER BY namespace, key",
        ),
    ] {
        let mut statement = connection.prepare(sql).map_err(&error)?;
        let found = statement
            .query_map(params![owner_id], |r| {
                Ok(StateRow {
                    table,
                    namespace: r.get(0)?,
                    key: r.get(1)?,
                    value: r.get(2)?,
                })
            })
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(&error)?;
        rows.extend(found);
    }
    Ok(rows)
}

/// Puts `owner_id` on the suppression list (creating the list in a database an older version
/// made), committed on its own before anything is removed: from then on no batch an `apply`
/// journals carries the owner's value, and no value that lands is recorded. Idempotent.
pub fn suppress_owner(
    connection: &Connection,
    file: &Path,
    owner_id: &str,
) -> Result<(), PrivacyError> {
    let error = sqlite(file);
    connection
        .execute_batch(crate::sync::state::CREATE_REDACTED)
        .map_err(&error)?;
    connection
        .execute(
            "INSERT OR IGNORE INTO redacted (owner_id) VALUES (?1)",
            params![owner_id],
        )
        .map_err(&error)?;
    Ok(())
}

/// [`suppress_owner`] for each of `owner_ids`, in one transaction.
pub fn suppress_owners(
    connection: &mut Connection,
    file: &Path,
    owner_ids: &[String],
) -> Result<(), PrivacyError> {
    let error = sqlite(file);
    let transaction = connection.transaction().map_err(&error)?;
    for owner_id in owner_ids {
        suppress_owner(&transaction, file, owner_id)?;
    }
    transaction.commit().map_err(&error)
}

/// The state database for a redaction, created with `apply`'s schema when it does not exist yet:
/// a redaction that arrives before the first `apply` (or after the file was moved) must still put
/// the customer on the suppression list, or the next `apply` of a plan scored from an export that
/// holds the customer would write the profile back.
pub fn open_or_create_state(file: &Path, shop: &str) -> Result<Connection, PrivacyError> {
    if !file.exists() {
        if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        crate::sync::state::State::open(file, shop).map_err(|error| match error {
            crate::sync::state::StateError::Sqlite { file, source } => {
                PrivacyError::Sqlite { file, source }
            }
            crate::sync::state::StateError::OtherShop {
                file,
                recorded,
                requested,
            } => PrivacyError::OtherShop {
                file,
                recorded,
                expected: requested,
            },
        })?;
    }
    open_state(file, shop)?.ok_or_else(|| PrivacyError::Io {
        file: file.display().to_string(),
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "the state database was removed while a redaction was creating it",
        ),
    })
}

/// Removes every row about `owner_id` in one transaction; returns how many went. The suppression
/// list keeps the owner's GID.
pub fn forget_owner(
    connection: &mut Connection,
    file: &Path,
    owner_id: &str,
) -> Result<u64, PrivacyError> {
    let error = sqlite(file);
    connection
        .execute_batch(crate::sync::state::CREATE_PURGE)
        .map_err(&error)?;
    let tx = connection.transaction().map_err(&error)?;
    // A journaled write's outcome is not known (an `apply` is sending it, a bulk operation is
    // running, or a run was interrupted): it may land after the metafield is deleted here, so it
    // goes on the purge list for `apply` to delete again. Its journal row stays, with the value
    // wiped: `apply` matches a bulk operation's results to its batch's rows by position, and
    // settles the row (putting what landed on the purge list) only while the row is there.
    tx.execute(
        "INSERT OR IGNORE INTO purge (owner_id, namespace, key)
         SELECT owner_id, namespace, key FROM inflight WHERE owner_id = ?1",
        params![owner_id],
    )
    .map_err(&error)?;
    let mut removed = tx
        .execute(
            "UPDATE inflight SET value = '', compare_digest = NULL WHERE owner_id = ?1 AND value != ''",
            params![owner_id],
        )
        .map_err(&error)? as u64;
    for (table, holds) in STATE_TABLES {
        if holds == Holds::OwnerData && table != "inflight" {
            let sql = format!("DELETE FROM {table} WHERE owner_id = ?1");
            removed += tx.execute(&sql, params![owner_id]).map_err(&error)? as u64;
        }
    }
    tx.commit().map_err(&error)?;
    // Copy the overwritten pages into the database file and empty the write-ahead log, which
    // still holds the pages as they were. Best effort: a reader (an `apply` run) may keep part
    // of the log alive; the log is checkpointed again when the last connection closes.
    let _ = connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    Ok(removed)
}

#[derive(serde::Deserialize)]
struct PlanLine {
    #[serde(rename = "ownerId")]
    owner_id: Option<String>,
}

fn names_owner(line: &str, owner_id: &str) -> bool {
    serde_json::from_str::<PlanLine>(line)
        .ok()
        .and_then(|l| l.owner_id)
        .is_some_and(|id| id == owner_id)
}

pub(super) fn io(file: &Path) -> impl Fn(std::io::Error) -> PrivacyError + '_ {
    move |source| PrivacyError::Io {
        file: file.display().to_string(),
        source,
    }
}

/// `path` opened for reading, or `None` when there is no such file (a plan without deletions).
pub(super) fn open_if_present(path: &Path) -> Result<Option<File>, PrivacyError> {
    match File::open(path) {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path)(e)),
    }
}

/// The plan lines about `owner_id`, as JSON, with the file each came from.
pub fn plan_lines(
    plan_dir: &Path,
    owner_id: &str,
) -> Result<Vec<(&'static str, serde_json::Value)>, PrivacyError> {
    let mut found = Vec::new();
    for name in PLAN_FILES {
        let path = plan_dir.join(name);
        let Some(file) = open_if_present(&path)? else {
            continue;
        };
        for line in BufReader::new(file).lines() {
            let line = line.map_err(io(&path))?;
            if names_owner(&line, owner_id)
                && let Ok(value) = serde_json::from_str(&line)
            {
                found.push((name, value));
            }
        }
    }
    Ok(found)
}

/// Removes the plan lines about `owner_id`; returns how many went. A file without any is left
/// untouched (not even rewritten).
pub fn scrub_plan(plan_dir: &Path, owner_id: &str) -> Result<u64, PrivacyError> {
    // Held while the files are read and replaced: `score` renaming a new plan in meanwhile would
    // otherwise be undone by this rename (see `folder_lock`).
    let _lock = crate::folder_lock::lock(plan_dir).map_err(io(plan_dir))?;
    let mut removed = 0u64;
    for name in PLAN_FILES {
        let path = plan_dir.join(name);
        let Some(file) = open_if_present(&path)? else {
            continue;
        };
        let temporary = plan_dir.join(redacting_name(name));
        let mut removed_here = 0u64;
        replace_atomically(&path, &temporary, |kept| {
            for line in BufReader::new(file).lines() {
                let line = line.map_err(io(&path))?;
                if names_owner(&line, owner_id) {
                    removed_here += 1;
                } else {
                    writeln!(kept, "{line}").map_err(io(&temporary))?;
                }
            }
            Ok(removed_here > 0)
        })?;
        removed += removed_here;
    }
    Ok(removed)
}

/// Rewrites `path` through `temporary` (a file beside it): `write` fills the temporary and says
/// whether what it wrote differs from `path`. Only then is the temporary given `path`'s
/// permissions, put on disk and renamed over `path`, so a reader sees the old file or the new one,
/// never half of one, and a crash leaves one of the two; otherwise (and when `write` fails) the
/// temporary is removed and `path` is left as it was, not even touched. Says whether `path` was
/// replaced.
///
/// The temporary is created readable by its owner only and gets `path`'s permissions once
/// written, so the copy of a private file is never readable by anyone else meanwhile.
pub(super) fn replace_atomically(
    path: &Path,
    temporary: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<bool, PrivacyError>,
) -> Result<bool, PrivacyError> {
    let permissions = std::fs::metadata(path).map_err(io(path))?.permissions();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut kept = BufWriter::new(options.open(temporary).map_err(io(temporary))?);
    let written = write(&mut kept).and_then(|changed| {
        let kept = kept
            .into_inner()
            .map_err(|e| io(temporary)(e.into_error()))?;
        if changed {
            kept.set_permissions(permissions).map_err(io(temporary))?;
            // On disk before it replaces the file: a crash leaves the old file or the new one.
            kept.sync_all().map_err(io(temporary))?;
        }
        Ok(changed)
    });
    match written {
        Ok(true) => {}
        Ok(false) | Err(_) => {
            let _ = std::fs::remove_file(temporary);
            return written;
        }
    }
    std::fs::rename(temporary, path).map_err(io(path))?;
    // The rename itself on disk too. Best effort: not every file system lets a folder be synced,
    // and the new file is complete either way.
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && let Ok(dir) = File::open(dir)
    {
        let _ = dir.sync_all();
    }
    Ok(true)
}

/// The temporaries `plan::write_plan` left in `plan_dir` when it was killed before renaming
/// them (`.<plan file>.<random>.tmp`).
pub fn plan_temporaries(plan_dir: &Path) -> Result<Vec<PathBuf>, PrivacyError> {
    crate::plan::temporaries(plan_dir).map_err(io(plan_dir))
}

/// Removes the plan temporaries no live `score` holds (what a killed one left: a redaction does
/// not wait for the next `score` to clear those copies); see
/// [`crate::plan::remove_abandoned_temporaries`].
pub fn remove_abandoned_plan_temporaries(plan_dir: &Path) -> Result<u64, PrivacyError> {
    crate::plan::remove_abandoned_temporaries(plan_dir).map_err(io(plan_dir))
}

/// The temporary a plan or export file is rewritten to while lines are removed from it.
pub fn redacting_name(file_name: &str) -> String {
    format!(".{file_name}.redacting")
}

/// Removes the folder `dir` if it exists and is empty; says whether it did.
pub fn remove_dir_if_empty(dir: &Path) -> Result<bool, PrivacyError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Ok(false);
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io(dir)(e)),
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io(dir)(e)),
    }
}

/// Removes `path` if it exists; says whether it did.
pub fn remove_if_present(path: &Path) -> Result<bool, PrivacyError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io(path)(e)),
    }
}

/// The data-request files written for customer `customer_id` of `shop` in `dir` (and the
/// temporaries of an interrupted write), whatever their request id.
pub fn customer_data_request_files(
    dir: &Path,
    shop: &str,
    customer_id: u64,
) -> Result<Vec<PathBuf>, PrivacyError> {
    let prefix = format!("{shop}--customer-{customer_id}--request-");
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(io(dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(rest) = name.strip_prefix(&prefix)
            && (rest.ends_with(".json") || rest.ends_with(".json.writing"))
        {
            found.push(entry.path());
        }
    }
    found.sort();
    Ok(found)
}

/// The state database file and the files SQLite keeps beside it.
pub fn state_files(state_file: &Path) -> Vec<PathBuf> {
    let mut files = vec![state_file.to_path_buf()];
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut name = state_file.as_os_str().to_os_string();
        name.push(suffix);
        files.push(PathBuf::from(name));
    }
    files
}

/// Whether the state database at `file` belongs to `shop` (or records no shop).
pub fn state_belongs_to(file: &Path, shop: &str) -> Result<bool, PrivacyError> {
    if !file.exists() {
        return Ok(true);
    }
    let error = sqlite(file);
    let connection = open_existing(file, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(&error)?;
    let recorded = recorded_shop(&connection).map_err(&error)?;
    Ok(recorded.is_none_or(|recorded| recorded == shop))
}

/// Writes `bytes` to `path` readable by its owner only, through a temporary file renamed over
/// it (a retried request replaces the file whole).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), PrivacyError> {
    let Some(dir) = path.parent() else {
        return Err(io(path)(std::io::Error::other("no parent folder")));
    };
    create_private_dir(dir)?;
    let temporary = path.with_extension("json.writing");
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&temporary).map_err(io(&temporary))?;
        file.write_all(bytes).map_err(io(&temporary))?;
        file.sync_all().map_err(io(&temporary))?;
    }
    std::fs::rename(&temporary, path).map_err(io(path))
}

fn create_private_dir(dir: &Path) -> Result<(), PrivacyError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::state::{InFlight, MetafieldKey, STATE_FILE, State};

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mw-privacy-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::create_dir_all(&dir);
        dir
    }

    #[test]
    fn the_state_database_has_no_table_the_redaction_does_not_know() {
        let dir = temp("tables");
        let file = dir.join(STATE_FILE);
        drop(State::open(&file, "s").unwrap_or_else(|e| unreachable!("{e}")));
        let connection = Connection::open(&file).unwrap_or_else(|e| unreachable!("{e}"));
        let mut statement = connection
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap_or_else(|e| unreachable!("{e}"));
        let tables: Vec<String> = statement
            .query_map([], |r| r.get(0))
            .and_then(Iterator::collect)
            .unwrap_or_else(|e| unreachable!("{e}"));
        let mut known: Vec<String> = STATE_TABLES.iter().map(|(t, _)| t.to_string()).collect();
        known.sort();
        assert_eq!(
            tables, known,
            "a new state table: does it hold customer data?"
        );
        // Every table said to hold something about owners has an `owner_id` column.
        for (table, holds) in STATE_TABLES {
            let has_owner = connection
                .prepare(&format!(
                    "SELECT 1 FROM pragma_table_info('{table}') WHERE name = 'owner_id'"
                ))
                .and_then(|mut s| s.exists([]))
                .unwrap_or_else(|e| unreachable!("{e}"));
            assert_eq!(has_owner, holds != Holds::Nothing, "{table}");
        }
        // `redacted` is the suppression list and survives the redaction on purpose, so it may
        // hold nothing but the owner's GID: the id is what `apply` needs to refuse the owner's
        // values, and a redacted customer's profile, value or anything else about them must not
        // be kept. A column added here would be customer data kept after a redaction.
        // The purge list, likewise, holds which metafields to delete, never a value.
        for (table, holds) in STATE_TABLES {
            let expected: &[&str] = match holds {
                Holds::RedactedIds => &["owner_id"],
                Holds::RedactedMetafields => &["owner_id", "namespace", "key"],
                Holds::Nothing | Holds::OwnerData => continue,
            };
            let columns: Vec<String> = connection
                .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
                .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
                .unwrap_or_else(|e| unreachable!("{e}"));
            assert_eq!(columns, expected, "{table} holds identifiers only");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn forgetting_an_owner_wipes_their_journaled_value_and_puts_it_on_the_purge_list() {
        let dir = temp("forget");
        let file = dir.join(STATE_FILE);
        let key = |owner: &str| MetafieldKey {
            owner_id: owner.to_string(),
            namespace: "$app".to_string(),
            key: "profile".to_string(),
        };
        {
            let mut state = State::open(&file, "s").unwrap_or_else(|e| unreachable!("{e}"));
            let batch = state
                .begin_batch(
                    vec![InFlight {
                        metafield: key("c1"),
                        kind: "single_line_text_field".into(),
                        value: "v".into(),
                        compare_digest: None,
                        batch: 0,
                        line: Some(0),
                    }],
                    None,
                )
                .unwrap_or_else(|e| unreachable!("{e}"))
                .batch
                .unwrap_or_else(|| unreachable!("journaled"));
            state
                .set_bulk_operation(batch, "gid://shopify/BulkOperation/1")
                .unwrap_or_else(|e| unreachable!("{e}"));
            state
                .record_deleted(&[key("c2")])
                .unwrap_or_else(|e| unreachable!("{e}"));
        }
        let mut connection = open_state(&file, "s")
            .unwrap_or_else(|e| unreachable!("{e}"))
            .unwrap_or_else(|| unreachable!("the state exists"));
        assert_eq!(forget_owner(&mut connection, &file, "c1").ok(), Some(1));
        drop(connection);
        let state = State::open(&file, "s").unwrap_or_else(|e| unreachable!("{e}"));
        // The journal row stays, value wiped, so the running bulk operation's results still line
        // up with its batch; the operation is still waited for, and the metafield is purged after.
        let journal = state.in_flight().unwrap_or_else(|e| unreachable!("{e}"));
        let rows: Vec<(MetafieldKey, &str)> = journal
            .iter()
            .map(|w| (w.metafield.clone(), w.value.as_str()))
            .collect();
        assert_eq!(rows, [(key("c1"), "")]);
        assert!(
            state
                .pending_bulk_operations()
                .is_ok_and(|ops| ops.len() == 1)
        );
        assert!(state.purge_pending().is_ok_and(|keys| keys == [key("c1")]));
        assert!(state.is_deleted(&key("c2")).is_ok_and(|d| d));
        assert!(matches!(
            open_state(&file, "other"),
            Err(PrivacyError::OtherShop { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
