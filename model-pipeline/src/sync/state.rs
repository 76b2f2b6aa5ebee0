//! The write-back state: an SQLite database next to the plan.
//!
//! - `stored`: per metafield (owner, namespace, key), the value the store is known to hold and its
//!   `compareDigest`, learnt from a successful write or a read-back. The next run diffs the plan
//!   against it and sends only what changed beyond the tolerance.
//! - `inflight`: the journal. Every write is recorded here, in its own transaction, before it is
//!   sent, and removed in the same transaction that records its result in `stored`. After a crash
//!   the rows left are exactly the writes whose outcome is unknown; the next run reads them back
//!   from the store before it writes anything.
//! - `bulk`: the bulk mutation a journal batch was handed to, once its id is known, so that a
//!   restarted run waits for it instead of racing it.
//! - `deleted`: profiles removed for opted-out customers, so a re-run does not delete again.
//! - `meta`: the shop the state belongs to; a state file is never used against another shop.
//! - `redacted`: the suppression list, the GIDs of customers redacted by the privacy webhook
//!   (`customers/redact`), and of the orders it named (`orders_to_redact`, which `marginwise
//!   refresh` keeps out of new exports even once they have lost their customer), ids only. A value whose owner is listed is never sent (checked in the
//!   transaction that journals each batch, [`State::begin_batch`]) and never recorded in `stored`,
//!   so neither an `apply` that was running during the redaction nor a plan line a later `score`
//!   brings back writes the profile again. Only `shop/redact` (which removes the database) ends it.
//!
//! The database runs in WAL mode with `synchronous = FULL`: a transaction that returned is on
//! disk, which is what "nothing lost" rests on.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

/// File name of the state database inside the plan folder.
pub const STATE_FILE: &str = "sync-state.sqlite";

/// The suppression list's table: the owner GIDs of redacted customers, nothing else. The privacy
/// webhook creates it too (in a database an older version created), so both use this statement.
pub const CREATE_REDACTED: &str =
    "CREATE TABLE IF NOT EXISTS redacted (owner_id TEXT PRIMARY KEY) WITHOUT ROWID;";

/// Metafields of redacted owners that a write may have reached after the redaction: a batch in
/// flight when it was recorded (its value landed after the webhook deleted the metafield), or a
/// journaled write the redaction forgot before its outcome was known. Identifiers only; `apply`
/// deletes each in the store and then its row. The privacy webhook creates it too.
pub const CREATE_PURGE: &str = "CREATE TABLE IF NOT EXISTS purge (
     owner_id TEXT NOT NULL, namespace TEXT NOT NULL, key TEXT NOT NULL,
     PRIMARY KEY (owner_id, namespace, key)) WITHOUT ROWID;";

/// Whether `owner_id` is on the suppression list (the table must exist).
pub const IS_REDACTED: &str = "SELECT 1 FROM redacted WHERE owner_id = ?1";

/// Opens the existing state database `file` as a reader beside `apply`: waits up to two seconds
/// for a writer (`apply` holds the write lock one batch at a time, the privacy webhook one
/// redaction) instead of failing at once. Neither creates the file nor checks its shop.
pub fn open_existing(file: &Path, flags: rusqlite::OpenFlags) -> rusqlite::Result<Connection> {
    let connection = Connection::open_with_flags(file, flags)?;
    connection.busy_timeout(std::time::Duration::from_secs(2))?;
    Ok(connection)
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state database {file}: {source}")]
    Sqlite {
        file: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "state database {file} belongs to shop {recorded}, not {requested}: pass another --state file"
    )]
    OtherShop {
        file: String,
        recorded: String,
        requested: String,
    },
}

/// Identifies one metafield.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetafieldKey {
    pub owner_id: String,
    pub namespace: String,
    pub key: String,
}

/// A metafield's known value in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub value: String,
    pub digest: Option<String>,
}

/// A journaled write: what was sent, with the digest it was sent against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    pub metafield: MetafieldKey,
    pub kind: String,
    pub value: String,
    pub compare_digest: Option<String>,
    pub batch: i64,
    /// The line of the bulk mutation's variables file that carries this write (bulk batches only).
    pub line: Option<i64>,
}

/// What [`State::begin_batch`] journaled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journaled {
    /// The batch number; `None` when every write was left out (nothing journaled, nothing to
    /// send).
    pub batch: Option<i64>,
    /// The writes to send, numbered with the batch.
    pub writes: Vec<InFlight>,
    /// Writes left out because their owner is on the suppression list.
    pub suppressed: u64,
}

pub struct State {
    connection: Connection,
    file: PathBuf,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").field("file", &self.file).finish()
    }
}

impl State {
    /// Opens (or creates) the state of `shop` at `file`.
    pub fn open(file: &Path, shop: &str) -> Result<State, StateError> {
        let name = file.display().to_string();
        let error = |source| StateError::Sqlite {
            file: name.clone(),
            source,
        };
        let connection = Connection::open(file).map_err(error)?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = FULL;
                 PRAGMA secure_delete = ON;
                 CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
                 CREATE TABLE IF NOT EXISTS stored (
                     owner_id TEXT NOT NULL, namespace TEXT NOT NULL, key TEXT NOT NULL,
                     value TEXT NOT NULL, digest TEXT,
                     PRIMARY KEY (owner_id, namespace, key)) WITHOUT ROWID;
                 CREATE TABLE IF NOT EXISTS inflight (
                     owner_id TEXT NOT NULL, namespace TEXT NOT NULL, key TEXT NOT NULL,
                     kind TEXT NOT NULL, value TEXT NOT NULL, compare_digest TEXT,
                     batch INTEGER NOT NULL, line INTEGER,
                     PRIMARY KEY (owner_id, namespace, key)) WITHOUT ROWID;
                 CREATE INDEX IF NOT EXISTS inflight_batch ON inflight (batch);
                 CREATE TABLE IF NOT EXISTS bulk (batch INTEGER PRIMARY KEY, operation_id TEXT NOT NULL);
                 CREATE TABLE IF NOT EXISTS deleted (
                     owner_id TEXT NOT NULL, namespace TEXT NOT NULL, key TEXT NOT NULL,
                     PRIMARY KEY (owner_id, namespace, key)) WITHOUT ROWID;",
            )
            .map_err(error)?;
        connection.execute_batch(CREATE_REDACTED).map_err(error)?;
        connection.execute_batch(CREATE_PURGE).map_err(error)?;
        let recorded: Option<String> = connection
            .query_row("SELECT value FROM meta WHERE name = 'shop'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(error)?;
        match recorded {
            Some(recorded) if recorded != shop => {
                return Err(StateError::OtherShop {
                    file: name,
                    recorded,
                    requested: shop.to_string(),
                });
            }
            Some(_) => {}
            None => {
                connection
                    .execute(
                        "INSERT INTO meta (name, value) VALUES ('shop', ?1)",
                        params![shop],
                    )
                    .map_err(error)?;
            }
        }
        Ok(State {
            connection,
            file: file.to_path_buf(),
        })
    }

    fn error(&self, source: rusqlite::Error) -> StateError {
        StateError::Sqlite {
            file: self.file.display().to_string(),
            source,
        }
    }

    pub fn stored(&self, metafield: &MetafieldKey) -> Result<Option<Stored>, StateError> {
        self.connection
            .prepare_cached(
                "SELECT value, digest FROM stored WHERE owner_id = ?1 AND namespace = ?2 AND key = ?3",
            )
            .and_then(|mut statement| {
                statement
                    .query_row(
                        params![metafield.owner_id, metafield.namespace, metafield.key],
                        |row| {
                            Ok(Stored {
                                value: row.get(0)?,
                                digest: row.get(1)?,
                            })
                        },
                    )
                    .optional()
            })
            .map_err(|e| self.error(e))
    }

    pub fn is_deleted(&self, metafield: &MetafieldKey) -> Result<bool, StateError> {
        self.connection
            .prepare_cached(
                "SELECT 1 FROM deleted WHERE owner_id = ?1 AND namespace = ?2 AND key = ?3",
            )
            .and_then(|mut statement| {
                statement.exists(params![
                    metafield.owner_id,
                    metafield.namespace,
                    metafield.key
                ])
            })
            .map_err(|e| self.error(e))
    }

    /// The next batch number (journal batches are numbered across runs).
    fn next_batch(&self) -> Result<i64, StateError> {
        let last: Option<i64> = self
            .connection
            .query_row(
                "SELECT value FROM meta WHERE name = 'last_batch'",
                [],
                |r| r.get::<_, String>(0),
            )
            .optional()
            .map_err(|e| self.error(e))?
            .and_then(|v| v.parse().ok());
        Ok(last.unwrap_or(0).saturating_add(1))
    }

    /// Journals `writes` as one batch (one transaction) and returns its number with the writes
    /// journaled; nothing may be sent before this returned. Writes whose owner is on the
    /// suppression list (`redacted`) are left out, decided inside the same transaction (which
    /// holds the write lock from its start), so a redaction is either recorded before the batch
    /// (and its customer left out) or after it was journaled. A batch left empty is not
    /// journaled: its number is `None`. With `per_line`, the writes kept are numbered into lines
    /// of that many (a bulk mutation's variables file), in order.
    pub fn begin_batch(
        &mut self,
        writes: Vec<InFlight>,
        per_line: Option<usize>,
    ) -> Result<Journaled, StateError> {
        let batch = self.next_batch()?;
        let file = self.file.display().to_string();
        let error = |source| StateError::Sqlite {
            file: file.clone(),
            source,
        };
        let tx = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(error)?;
        let mut kept = Vec::with_capacity(writes.len());
        let mut suppressed = 0u64;
        {
            let mut redacted = tx.prepare_cached(IS_REDACTED).map_err(error)?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO inflight
                     (owner_id, namespace, key, kind, value, compare_digest, batch, line)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(error)?;
            for mut write in writes {
                if redacted
                    .exists(params![write.metafield.owner_id])
                    .map_err(error)?
                {
                    suppressed += 1;
                    continue;
                }
                if let Some(per_line) = per_line {
                    write.line = Some((kept.len() / per_line.max(1)) as i64);
                }
                insert
                    .execute(params![
                        write.metafield.owner_id,
                        write.metafield.namespace,
                        write.metafield.key,
                        write.kind,
                        write.value,
                        write.compare_digest,
                        batch,
                        write.line
                    ])
                    .map_err(error)?;
                write.batch = batch;
                kept.push(write);
            }
            if !kept.is_empty() {
                tx.execute(
                    "INSERT OR REPLACE INTO meta (name, value) VALUES ('last_batch', ?1)",
                    params![batch.to_string()],
                )
                .map_err(error)?;
            }
        }
        tx.commit().map_err(error)?;
        Ok(Journaled {
            batch: (!kept.is_empty()).then_some(batch),
            writes: kept,
            suppressed,
        })
    }

    /// Whether `owner_id` is on the suppression list.
    pub fn is_redacted(&self, owner_id: &str) -> Result<bool, StateError> {
        self.connection
            .prepare_cached(IS_REDACTED)
            .and_then(|mut statement| statement.exists(params![owner_id]))
            .map_err(|e| self.error(e))
    }

    /// The customers on the suppression list of the state database `file`, as
    /// [`State::redacted_customers`] reads them; none when there is no database there. Opened
    /// without the shop check or any change to the file: `score` reads the database beside the
    /// plan it writes, which is that plan's shop's, and never creates one ([`open_existing`]). A
    /// database an older version wrote has no suppression list yet: none.
    pub fn suppressed_customers(file: &Path) -> Result<Vec<u64>, StateError> {
        if !file.exists() {
            return Ok(Vec::new());
        }
        let error = |source| StateError::Sqlite {
            file: file.display().to_string(),
            source,
        };
        let connection = open_existing(
            file,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(error)?;
        let has_list = connection
            .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'redacted'")
            .and_then(|mut statement| statement.exists([]))
            .map_err(error)?;
        if !has_list {
            return Ok(Vec::new());
        }
        State {
            connection,
            file: file.to_path_buf(),
        }
        .redacted_customers()
    }

    /// The customers on the suppression list, by numeric id (`gid://shopify/Customer/<id>`), in
    /// order.
    pub fn redacted_customers(&self) -> Result<Vec<u64>, StateError> {
        self.redacted_of(crate::ingest::records::GidKind::Customer)
    }

    /// The orders a `customers/redact` named (`orders_to_redact`), by numeric id, in order: they
    /// may have lost their customer since, so only their own id says whose they were.
    pub fn redacted_orders(&self) -> Result<Vec<u64>, StateError> {
        self.redacted_of(crate::ingest::records::GidKind::Order)
    }

    fn redacted_of(&self, kind: crate::ingest::records::GidKind) -> Result<Vec<u64>, StateError> {
        use crate::ingest::records::parse_gid;
        let mut statement = self
            .connection
            .prepare_cached("SELECT owner_id FROM redacted")
            .map_err(|e| self.error(e))?;
        let owners = statement
            .query_map([], |row| row.get::<_, String>(0))
            .and_then(Iterator::collect::<Result<Vec<String>, _>>)
            .map_err(|e| self.error(e))?;
        let mut ids: Vec<u64> = owners
            .iter()
            .filter_map(|owner| parse_gid(owner))
            .filter(|gid| gid.kind == kind)
            .map(|gid| gid.number)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    /// Puts `owner_id` on the suppression list (what the privacy webhook does, through its own
    /// connection; here for tests and tools).
    pub fn record_redacted(&mut self, owner_id: &str) -> Result<(), StateError> {
        self.connection
            .execute(
                "INSERT OR IGNORE INTO redacted (owner_id) VALUES (?1)",
                params![owner_id],
            )
            .map(|_| ())
            .map_err(|e| self.error(e))
    }

    /// The metafields on the purge list ([`CREATE_PURGE`]), to delete in the store.
    pub fn purge_pending(&self) -> Result<Vec<MetafieldKey>, StateError> {
        let mut statement = self
            .connection
            .prepare_cached("SELECT owner_id, namespace, key FROM purge ORDER BY owner_id, key")
            .map_err(|e| self.error(e))?;
        statement
            .query_map([], |r| {
                Ok(MetafieldKey {
                    owner_id: r.get(0)?,
                    namespace: r.get(1)?,
                    key: r.get(2)?,
                })
            })
            .and_then(Iterator::collect)
            .map_err(|e| self.error(e))
    }

    /// Takes metafields the store confirmed deleted off the purge list.
    pub fn purged(&mut self, metafields: &[MetafieldKey]) -> Result<(), StateError> {
        self.delete_rows("purge", metafields, None)
    }

    /// In one transaction: deletes the rows of `metafields` from `table`, then runs `then`.
    fn delete_rows(
        &mut self,
        table: &str,
        metafields: &[MetafieldKey],
        then: Option<&str>,
    ) -> Result<(), StateError> {
        let file = self.file.display().to_string();
        let error = |source| StateError::Sqlite {
            file: file.clone(),
            source,
        };
        let tx = self.connection.transaction().map_err(error)?;
        {
            let mut done = tx
                .prepare_cached(&format!(
                    "DELETE FROM {table} WHERE owner_id = ?1 AND namespace = ?2 AND key = ?3"
                ))
                .map_err(error)?;
            for m in metafields {
                done.execute(params![m.owner_id, m.namespace, m.key])
                    .map_err(error)?;
            }
            if let Some(sql) = then {
                tx.execute(sql, []).map_err(error)?;
            }
        }
        tx.commit().map_err(error)
    }

    /// Records the bulk operation a journal batch was handed to.
    pub fn set_bulk_operation(&mut self, batch: i64, operation_id: &str) -> Result<(), StateError> {
        self.connection
            .execute(
                "INSERT OR REPLACE INTO bulk (batch, operation_id) VALUES (?1, ?2)",
                params![batch, operation_id],
            )
            .map(|_| ())
            .map_err(|e| self.error(e))
    }

    /// Bulk operations recorded for batches still in the journal.
    pub fn pending_bulk_operations(&self) -> Result<Vec<(i64, String)>, StateError> {
        let mut statement = self
            .connection
            .prepare("SELECT batch, operation_id FROM bulk ORDER BY batch")
            .map_err(|e| self.error(e))?;
        statement
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(|e| self.error(e))
    }

    /// Every journaled write, in batch order.
    pub fn in_flight(&self) -> Result<Vec<InFlight>, StateError> {
        let mut statement = self
            .connection
            .prepare(
                "SELECT owner_id, namespace, key, kind, value, compare_digest, batch, line
                 FROM inflight ORDER BY batch, line, owner_id, namespace, key",
            )
            .map_err(|e| self.error(e))?;
        statement
            .query_map([], |r| {
                Ok(InFlight {
                    metafield: MetafieldKey {
                        owner_id: r.get(0)?,
                        namespace: r.get(1)?,
                        key: r.get(2)?,
                    },
                    kind: r.get(3)?,
                    value: r.get(4)?,
                    compare_digest: r.get(5)?,
                    batch: r.get(6)?,
                    line: r.get(7)?,
                })
            })
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(|e| self.error(e))
    }

    /// In one transaction: records what the store now holds for each metafield (a `None` value:
    /// it holds nothing), and removes those metafields from the journal. Batches left without
    /// journal rows lose their bulk-operation record too.
    pub fn settle(&mut self, known: &[(MetafieldKey, Option<Stored>)]) -> Result<(), StateError> {
        let file = self.file.display().to_string();
        let error = |source| StateError::Sqlite {
            file: file.clone(),
            source,
        };
        let tx = self.connection.transaction().map_err(error)?;
        {
            let mut upsert = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO stored (owner_id, namespace, key, value, digest)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(error)?;
            let mut remove = tx
                .prepare_cached(
                    "DELETE FROM stored WHERE owner_id = ?1 AND namespace = ?2 AND key = ?3",
                )
                .map_err(error)?;
            let mut done = tx
                .prepare_cached(
                    "DELETE FROM inflight WHERE owner_id = ?1 AND namespace = ?2 AND key = ?3",
                )
                .map_err(error)?;
            let mut undelete = tx
                .prepare_cached(
                    "DELETE FROM deleted WHERE owner_id = ?1 AND namespace = ?2 AND key = ?3",
                )
                .map_err(error)?;
            let mut redacted = tx.prepare_cached(IS_REDACTED).map_err(error)?;
            let mut purge = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO purge (owner_id, namespace, key) VALUES (?1, ?2, ?3)",
                )
                .map_err(error)?;
            for (m, stored) in known {
                let key = params![m.owner_id, m.namespace, m.key];
                // A redacted customer's value that landed (a write in flight when the redaction
                // was recorded) is not kept: its journal row goes, nothing is stored, and the
                // metafield goes on the purge list for `apply` to delete in the store.
                let suppressed = redacted.exists(params![m.owner_id]).map_err(error)?;
                match stored {
                    Some(_) if suppressed => {
                        remove.execute(key).map_err(error)?;
                        purge.execute(key).map_err(error)?;
                    }
                    Some(s) => {
                        upsert
                            .execute(params![m.owner_id, m.namespace, m.key, s.value, s.digest])
                            .map_err(error)?;
                        undelete.execute(key).map_err(error)?;
                    }
                    None => {
                        remove.execute(key).map_err(error)?;
                    }
                }
                done.execute(key).map_err(error)?;
            }
            tx.execute(
                "DELETE FROM bulk WHERE batch NOT IN (SELECT DISTINCT batch FROM inflight)",
                [],
            )
            .map_err(error)?;
        }
        tx.commit().map_err(error)
    }

    /// Removes writes the store refused for good (invalid values) from the journal; what the
    /// store holds for them is unchanged.
    pub fn abandon(&mut self, metafields: &[MetafieldKey]) -> Result<(), StateError> {
        self.delete_rows(
            "inflight",
            metafields,
            Some("DELETE FROM bulk WHERE batch NOT IN (SELECT DISTINCT batch FROM inflight)"),
        )
    }

    /// Records deleted metafields (and forgets their stored values).
    pub fn record_deleted(&mut self, metafields: &[MetafieldKey]) -> Result<(), StateError> {
        let file = self.file.display().to_string();
        let error = |source| StateError::Sqlite {
            file: file.clone(),
            source,
        };
        let tx = self.connection.transaction().map_err(error)?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO deleted (owner_id, namespace, key) VALUES (?1, ?2, ?3)",
                )
                .map_err(error)?;
            let mut forget = tx
                .prepare_cached(
                    "DELETE FROM stored WHERE owner_id = ?1 AND namespace = ?2 AND key = ?3",
                )
                .map_err(error)?;
            for m in metafields {
                insert
                    .execute(params![m.owner_id, m.namespace, m.key])
                    .map_err(error)?;
                forget
                    .execute(params![m.owner_id, m.namespace, m.key])
                    .map_err(error)?;
            }
        }
        tx.commit().map_err(error)
    }

    /// How many metafields the state knows.
    pub fn stored_count(&self) -> Result<u64, StateError> {
        self.connection
            .query_row("SELECT COUNT(*) FROM stored", [], |r| r.get(0))
            .map_err(|e| self.error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(owner: &str) -> MetafieldKey {
        MetafieldKey {
            owner_id: owner.to_string(),
            namespace: "$app".to_string(),
            key: "profile".to_string(),
        }
    }

    fn write(owner: &str, value: &str) -> InFlight {
        InFlight {
            metafield: key(owner),
            kind: "single_line_text_field".to_string(),
            value: value.to_string(),
            compare_digest: None,
            batch: 0,
            line: None,
        }
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mw-state-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::create_dir_all(&dir);
        dir.join(STATE_FILE)
    }

    #[test]
    fn the_journal_survives_reopening_until_settled() -> Result<(), StateError> {
        let file = temp("journal");
        {
            let mut state = State::open(&file, "a.myshopify.com")?;
            let journaled = state.begin_batch(vec![write("c1", "v1"), write("c2", "v2")], None)?;
            assert_eq!(journaled.batch, Some(1));
            let batch = 1;
            state.set_bulk_operation(batch, "gid://shopify/BulkOperation/9")?;
            // The process dies here: nothing settled.
        }
        let mut state = State::open(&file, "a.myshopify.com")?;
        let pending = state.in_flight()?;
        assert_eq!(pending.len(), 2);
        assert!(pending.iter().all(|w| w.batch == 1));
        assert_eq!(state.pending_bulk_operations()?.len(), 1);
        state.settle(&[(
            key("c1"),
            Some(Stored {
                value: "v1".into(),
                digest: Some("d1".into()),
            }),
        )])?;
        assert_eq!(state.in_flight()?.len(), 1);
        assert_eq!(state.pending_bulk_operations()?.len(), 1);
        state.settle(&[(key("c2"), None)])?;
        assert!(state.in_flight()?.is_empty());
        assert!(state.pending_bulk_operations()?.is_empty());
        assert_eq!(
            state.stored(&key("c1"))?,
            Some(Stored {
                value: "v1".into(),
                digest: Some("d1".into())
            })
        );
        assert_eq!(state.stored(&key("c2"))?, None);
        // Batch numbers keep growing across runs.
        assert_eq!(
            state.begin_batch(vec![write("c3", "v3")], None)?.batch,
            Some(2)
        );
        Ok(())
    }

    #[test]
    fn a_database_without_a_suppression_list_suppresses_nobody() -> Result<(), StateError> {
        let file = temp("older");
        assert!(State::suppressed_customers(&file)?.is_empty(), "no file");
        // What an older version left: the state tables, no `redacted` table.
        let older = Connection::open(&file).map_err(|source| StateError::Sqlite {
            file: file.display().to_string(),
            source,
        })?;
        older
            .execute_batch("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);")
            .map_err(|source| StateError::Sqlite {
                file: file.display().to_string(),
                source,
            })?;
        drop(older);
        assert!(State::suppressed_customers(&file)?.is_empty(), "no table");
        let state = State::open(&file, "a.myshopify.com")?;
        state
            .connection
            .execute(
                "INSERT INTO redacted (owner_id) VALUES ('gid://shopify/Customer/42')",
                [],
            )
            .map_err(|e| state.error(e))?;
        assert_eq!(State::suppressed_customers(&file)?, vec![42]);
        Ok(())
    }

    #[test]
    fn a_state_file_is_not_used_for_another_shop() -> Result<(), StateError> {
        let file = temp("shop");
        drop(State::open(&file, "a.myshopify.com")?);
        let error = State::open(&file, "b.myshopify.com")
            .err()
            .map(|e| e.to_string());
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.contains("a.myshopify.com") && e.contains("b.myshopify.com")),
            "{error:?}"
        );
        Ok(())
    }

    #[test]
    fn deletions_forget_the_value_and_a_new_write_undeletes() -> Result<(), StateError> {
        let file = temp("deleted");
        let mut state = State::open(&file, "s")?;
        let stored = Some(Stored {
            value: "v".into(),
            digest: None,
        });
        state.settle(&[(key("c1"), stored.clone())])?;
        state.record_deleted(&[key("c1")])?;
        assert!(state.is_deleted(&key("c1"))?);
        assert_eq!(state.stored(&key("c1"))?, None);
        state.settle(&[(key("c1"), stored)])?;
        assert!(!state.is_deleted(&key("c1"))?);
        Ok(())
    }

    #[test]
    fn the_suppression_list_survives_reopening_and_keeps_values_out() -> Result<(), StateError> {
        let file = temp("redacted");
        {
            let mut state = State::open(&file, "s")?;
            state.record_redacted("c1")?;
            // Idempotent.
            state.record_redacted("c1")?;
        }
        let mut state = State::open(&file, "s")?;
        assert!(state.is_redacted("c1")?);
        assert!(!state.is_redacted("c2")?);
        let journaled = state.begin_batch(vec![write("c1", "v1"), write("c2", "v2")], None)?;
        assert_eq!(journaled.suppressed, 1);
        assert_eq!(journaled.batch, Some(1));
        assert_eq!(
            journaled
                .writes
                .iter()
                .map(|w| (w.metafield.owner_id.as_str(), w.batch))
                .collect::<Vec<_>>(),
            [("c2", 1)]
        );
        assert_eq!(state.in_flight()?.len(), 1);
        // A batch of redacted owners only is not journaled at all.
        let empty = state.begin_batch(vec![write("c1", "v1")], None)?;
        assert_eq!(
            (empty.batch, empty.writes.len(), empty.suppressed),
            (None, 0, 1)
        );
        // A value that landed anyway (in flight when the redaction was recorded) is not kept.
        let stored = Some(Stored {
            value: "v".into(),
            digest: None,
        });
        state.settle(&[(key("c1"), stored.clone()), (key("c2"), stored.clone())])?;
        assert_eq!(state.stored(&key("c1"))?, None);
        assert_eq!(state.stored(&key("c2"))?, stored);
        Ok(())
    }
}
