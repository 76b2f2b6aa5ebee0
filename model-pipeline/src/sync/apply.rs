//! Applying a metafield plan: write what changed, exactly once, and delete opted-out profiles.
//!
//! A run has three steps, after a check of the whole plan (every record must be a value `score`
//! could have written, readable by the Functions' decoders; a bad one stops the run before
//! anything is sent, naming the file and line):
//! 1. **Recover.** Journal rows left by an earlier run are writes whose outcome is unknown. A
//!    bulk mutation recorded for them is waited for and its result read; whatever is still
//!    unknown is read back from the store, and what the store holds becomes the known value.
//! 2. **Diff.** Every plan record is compared with the known value ([`super::diff`]); only those
//!    that changed beyond the tolerance are written, each against the digest of the known value
//!    (`compareDigest`; `null` when none is known, which means "must not exist yet"). A state
//!    database that knows no value at all (new, or lost) is filled from the store first when the
//!    store holds any of the plan's values (one page of 250 tells), so a moved folder does not
//!    send every value again.
//! 3. **Write.** Below [`ApplyOptions::bulk_threshold`] changed values, `metafieldsSet` in
//!    batches of 25; at or above it, one bulk mutation per variables file of up to 90 MB, its
//!    result checked line by line. Each batch is journaled before it is sent and settled in the
//!    transaction that records its result. Values of customers on the suppression list (redacted
//!    by the privacy webhook, [`super::state`]) are left out of each batch in the transaction
//!    that journals it, and counted ([`ApplyReport::redacted_not_written`]), not an error. A value
//!    of theirs that lands anyway (its batch was in flight when the redaction was recorded, so it
//!    reached the store after the webhook's delete) goes on the purge list in the transaction that
//!    settles it, and the run deletes it again before it ends ([`ApplyReport::redacted_purged`]);
//!    an interrupted run's purge list is worked off first by the next.
//!
//! Why this writes nothing twice: a write is only sent against the digest of the value it
//! replaces, so a second copy of a write that already landed is refused by the store
//! (`STALE_OBJECT`) instead of applied; after an unknown outcome (a dropped connection, a 5xx, a
//! crash) the batch is read back first, and only what did not land is sent again. Why nothing
//! is lost: a write leaves the journal only in the transaction that records its outcome.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::admin::ops::{
    self, bulk_operation_run_mutation, metafields_delete, metafields_set, staged_uploads_create,
};
use crate::admin::{AdminClient, AdminError, ClientCounters, Retry};
use crate::plan::{self, DELETIONS_FILE, MetafieldIdentifierInput, MetafieldsSetInput, PLAN_FILE};

use super::diff::{Tolerance, needs_write};
use super::state::{InFlight, MetafieldKey, State, Stored};
use super::{Polling, SyncError, read_back, wait_for_bulk};

/// Metafields per `metafieldsSet` call (Shopify's limit).
pub const SET_BATCH: usize = 25;
/// Identifiers per `metafieldsDelete` call.
pub const DELETE_BATCH: usize = 25;
/// A bulk mutation's variables file may hold 100 MB; stay below it.
pub const BULK_FILE_LIMIT: usize = 90 << 20;
/// The currency exponent variant costs are decoded with for the diff. Both sides of a
/// comparison are decoded the same way, so any exponent that accepts every shop currency's
/// decimals works; 3 is the largest ISO 4217 uses.
pub const COMPARE_EXPONENT: u8 = 3;
/// Rejections quoted in the report.
const REJECTION_EXAMPLES: usize = 10;

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub tolerance: Tolerance,
    /// The shop currency's exponent (decodes variant costs for the diff).
    pub shop_exponent: u8,
    /// Changed values at or above this count go through a bulk mutation.
    pub bulk_threshold: usize,
    pub polling: Polling,
    /// How often a write that met a conflict is read back and sent again.
    pub conflict_rounds: u32,
    /// Where bulk results are downloaded to (the state database's folder).
    pub work_dir: PathBuf,
    /// Called just before each batch is checked against the suppression list and journaled
    /// (tests use it to record a redaction between two batches).
    pub before_batch: Option<BatchHook>,
    /// Called after each `metafieldsSet` batch is journaled, before it is sent (tests use it to
    /// record a redaction while a batch is in flight).
    pub batch_in_flight: Option<BatchHook>,
}

/// A function called with the number of batches this run has started so far, before the next.
#[derive(Clone)]
pub struct BatchHook(pub std::sync::Arc<dyn Fn(u64) + Send + Sync>);

impl std::fmt::Debug for BatchHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BatchHook")
    }
}

impl ApplyOptions {
    pub fn new(work_dir: &Path, shop_exponent: u8) -> ApplyOptions {
        ApplyOptions {
            tolerance: Tolerance::default(),
            shop_exponent,
            // 400 calls of 25: below that, batches finish sooner than a bulk operation starts.
            bulk_threshold: 10_000,
            polling: Polling::default(),
            conflict_rounds: 3,
            work_dir: work_dir.to_path_buf(),
            before_batch: None,
            batch_in_flight: None,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ApplyReport {
    pub planned: u64,
    /// Plan records within tolerance of the known value: not sent.
    pub unchanged: u64,
    /// Plan records sent this run.
    pub changed: u64,
    /// Metafields this run confirmed written.
    pub written: u64,
    /// Of those, written by bulk mutations.
    pub written_by_bulk: u64,
    pub bulk_operations: u64,
    /// Journal rows an earlier, interrupted run left.
    pub recovered: u64,
    /// Of those, writes that had landed.
    pub recovered_landed: u64,
    /// Writes that met a conflict or an unknown outcome and were read back.
    pub read_back: u64,
    /// Plan values read from the store before anything was written, because the state database
    /// knew none and the store held some (a new or lost state database).
    pub read_first: u64,
    /// Writes the store refused for good (invalid values).
    pub rejected: u64,
    pub rejection_examples: Vec<String>,
    /// Values not written because their owner is on the suppression list (redacted by the
    /// privacy webhook), counted at each batch they were left out of.
    pub redacted_not_written: u64,
    pub deletions_planned: u64,
    pub deletions_sent: u64,
    /// Metafields of redacted customers deleted again: a write in flight when the redaction was
    /// recorded landed after the webhook had deleted them.
    pub redacted_purged: u64,
    pub elapsed_seconds: f64,
    pub points_spent: f64,
    pub client: ClientCounters,
}

struct Run<'a> {
    client: &'a mut AdminClient,
    state: &'a mut State,
    options: &'a ApplyOptions,
    report: ApplyReport,
    /// Batches started so far (what [`ApplyOptions::before_batch`] is called with).
    batches_started: u64,
}

/// Applies the plan in `plan_dir` (`metafields.jsonl`, `deletions.jsonl`).
pub fn apply(
    client: &mut AdminClient,
    state: &mut State,
    plan_dir: &Path,
    options: &ApplyOptions,
) -> Result<ApplyReport, SyncError> {
    let started = Instant::now();
    let points_before = client.pacer.points_spent;
    let counters_before = client.counters;
    check_plan(plan_dir, options.shop_exponent)?;
    let mut run = Run {
        client,
        state,
        options,
        report: ApplyReport::default(),
        batches_started: 0,
    };
    run.recover()?;
    let pending = run.diff(&plan_dir.join(PLAN_FILE))?;
    let pending = run.read_first_when_nothing_is_known(pending)?;
    run.report.changed = pending.len() as u64;
    if pending.len() >= options.bulk_threshold.max(1) {
        run.write_bulk(pending)?;
    } else {
        run.write_batches(pending, 0)?;
    }
    run.purge()?;
    run.delete(&plan_dir.join(DELETIONS_FILE))?;
    let mut report = run.report;
    report.elapsed_seconds = started.elapsed().as_secs_f64();
    report.points_spent = client.pacer.points_spent - points_before;
    report.client = counters_difference(client.counters, counters_before);
    Ok(report)
}

/// Reads the plan's files (`metafields.jsonl`, and `deletions.jsonl` when there is one) and
/// refuses the first record that is not what `score` writes ([`plan::check_record`]), with its
/// file and line. Nothing is sent before the whole plan has passed.
pub fn check_plan(plan_dir: &Path, shop_exponent: u8) -> Result<(), SyncError> {
    let path = plan_dir.join(PLAN_FILE);
    for_each_line(&path, true, |record: MetafieldsSetInput| {
        plan::check_record(&record, shop_exponent)
    })?;
    for_each_line(
        &plan_dir.join(DELETIONS_FILE),
        false,
        |record: MetafieldIdentifierInput| {
            use crate::ingest::records::{GidKind, parse_gid};
            use marginwise_engine::format::{NAMESPACE, PROFILE_KEY};
            if record.namespace != NAMESPACE || record.key != PROFILE_KEY {
                return Err(format!(
                    "fields `namespace`, `key`: {:?}.{:?} is not the profile `{NAMESPACE}.{PROFILE_KEY}`, \
                     the only metafield a plan deletes",
                    record.namespace, record.key
                ));
            }
            match parse_gid(&record.owner_id) {
                Some(gid) if gid.kind == GidKind::Customer => Ok(()),
                _ => Err(format!(
                    "field `ownerId`: {:?} is not a Customer GID (gid://shopify/Customer/<number>)",
                    record.owner_id
                )),
            }
        },
    )
}

/// Decodes each non-blank line of the JSONL file at `path` as `T` and checks it, stopping at the
/// first problem with the file and line. A missing file is an error only when `required`.
fn for_each_line<T: serde::de::DeserializeOwned>(
    path: &Path,
    required: bool,
    mut check: impl FnMut(T) -> Result<(), String>,
) -> Result<(), SyncError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(()),
        Err(source) => {
            return Err(SyncError::Io {
                file: path.display().to_string(),
                source,
            });
        }
    };
    let malformed = |line: usize, message: String| plan::PlanError::Malformed {
        file: path.display().to_string(),
        line: line as u64 + 1,
        message,
    };
    let mut reader = BufReader::new(file);
    let mut bytes = Vec::new();
    for index in 0.. {
        bytes.clear();
        let read = reader
            .read_until(b'\n', &mut bytes)
            .map_err(|source| SyncError::Io {
                file: path.display().to_string(),
                source,
            })?;
        if read == 0 {
            break;
        }
        let text = std::str::from_utf8(&bytes)
            .map_err(|e| malformed(index, format!("not UTF-8 after byte {}", e.valid_up_to())))?;
        if text.trim().is_empty() {
            continue;
        }
        let record: T = serde_json::from_str(text).map_err(|e| malformed(index, e.to_string()))?;
        check(record).map_err(|message| malformed(index, message))?;
    }
    Ok(())
}

fn counters_difference(now: ClientCounters, before: ClientCounters) -> ClientCounters {
    ClientCounters {
        requests: now.requests - before.requests,
        throttled: now.throttled - before.throttled,
        retries_5xx: now.retries_5xx - before.retries_5xx,
        retries_connection: now.retries_connection - before.retries_connection,
        ambiguous: now.ambiguous - before.ambiguous,
        seconds_waiting_for_points: now.seconds_waiting_for_points
            - before.seconds_waiting_for_points,
        seconds_backing_off: now.seconds_backing_off - before.seconds_backing_off,
    }
}

fn key_of(record: &MetafieldsSetInput) -> MetafieldKey {
    MetafieldKey {
        owner_id: record.owner_id.clone(),
        namespace: record.namespace.clone(),
        key: record.key.clone(),
    }
}

fn to_input(write: &InFlight) -> metafields_set::MetafieldsSetInput {
    metafields_set::MetafieldsSetInput {
        compare_digest: write.compare_digest.clone(),
        key: write.metafield.key.clone(),
        namespace: Some(write.metafield.namespace.clone()),
        owner_id: write.metafield.owner_id.clone(),
        type_: Some(write.kind.clone()),
        value: write.value.clone(),
    }
}

/// How a `metafieldsSet` answer's user errors split a batch.
enum Verdict {
    /// Everything landed; the digests the answer returned, by position.
    Landed(Vec<Option<String>>),
    /// Nothing landed (the call is atomic): these indices were refused for good (with the
    /// message), the rest must be read back.
    Refused(Vec<(usize, String)>),
}

fn verdict(payload: metafields_set::MetafieldsSetMetafieldsSet, writes: &[InFlight]) -> Verdict {
    use metafields_set::MetafieldsSetUserErrorCode as Code;
    if payload.user_errors.is_empty() {
        let returned = payload.metafields.unwrap_or_default();
        // The answer lists the metafields in input order; a digest is kept only where key and
        // value confirm the position (a missing digest only costs a read-back later).
        let digests = writes
            .iter()
            .enumerate()
            .map(|(i, w)| {
                returned
                    .get(i)
                    .filter(|m| m.key == w.metafield.key && m.value == w.value)
                    .map(|m| m.compare_digest.clone())
            })
            .collect();
        return Verdict::Landed(digests);
    }
    let mut refused = Vec::new();
    for error in payload.user_errors {
        let conflict = matches!(
            error.code,
            Some(Code::STALE_OBJECT | Code::INVALID_COMPARE_DIGEST | Code::INTERNAL_ERROR)
        );
        let index = error.element_index.and_then(|i| usize::try_from(i).ok());
        if let (false, Some(index)) = (conflict, index) {
            let message = match &error.code {
                Some(Code::Other(code)) => format!("{code}: {}", error.message),
                Some(code) => format!("{code:?}: {}", error.message),
                None => error.message.clone(),
            };
            refused.push((index, message));
        }
    }
    Verdict::Refused(refused)
}

impl Run<'_> {
    fn recover(&mut self) -> Result<(), SyncError> {
        let journal = self.state.in_flight()?;
        if journal.is_empty() {
            // What an interrupted run (or a redaction during one) left on the purge list.
            return self.purge();
        }
        self.report.recovered = journal.len() as u64;
        for (batch, operation_id) in self.state.pending_bulk_operations()? {
            let writes: Vec<InFlight> = journal
                .iter()
                .filter(|w| w.batch == batch)
                .cloned()
                .collect();
            match wait_for_bulk(self.client, &operation_id, self.options.polling) {
                Ok(finished) => {
                    let landed = self.settle_bulk_result(batch, &finished, &writes)?;
                    self.report.recovered_landed += landed;
                }
                // The operation is gone: what landed is found by reading back below. One still
                // running is not gone (it may write after the read-back): the error stops the run
                // with its journal intact.
                Err(SyncError::Bulk { .. }) => {}
                Err(other) => return Err(other),
            }
        }
        let left = self.state.in_flight()?;
        let keys: Vec<MetafieldKey> = left.iter().map(|w| w.metafield.clone()).collect();
        let found = read_back(self.client, &keys)?;
        let mut known = Vec::with_capacity(left.len());
        for write in &left {
            let stored = found.get(&write.metafield).cloned().flatten();
            if stored.as_ref().is_some_and(|s| s.value == write.value) {
                self.report.recovered_landed += 1;
            }
            known.push((write.metafield.clone(), stored));
        }
        self.state.settle(&known)?;
        // Only now that no recorded write can still land: what a redaction left on the purge list.
        self.purge()
    }

    /// The plan records that must be written, each against the digest of the known value.
    fn diff(&mut self, plan_path: &Path) -> Result<Vec<InFlight>, SyncError> {
        let file = File::open(plan_path).map_err(|source| SyncError::Io {
            file: plan_path.display().to_string(),
            source,
        })?;
        let mut pending = Vec::new();
        for (index, line) in BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|source| SyncError::Io {
                file: plan_path.display().to_string(),
                source,
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let record: MetafieldsSetInput =
                serde_json::from_str(&line).map_err(|e| plan::PlanError::Malformed {
                    file: plan_path.display().to_string(),
                    line: index as u64 + 1,
                    message: e.to_string(),
                })?;
            self.report.planned += 1;
            let metafield = key_of(&record);
            let stored = self.state.stored(&metafield)?;
            let write = match &stored {
                None => true,
                Some(s) => needs_write(
                    &record.key,
                    &s.value,
                    &record.value,
                    &self.options.tolerance,
                    self.options.shop_exponent,
                ),
            };
            if !write {
                self.report.unchanged += 1;
                continue;
            }
            pending.push(InFlight {
                metafield,
                kind: record.kind,
                value: record.value,
                compare_digest: stored.and_then(|s| s.digest),
                batch: 0,
                line: None,
            });
        }
        Ok(pending)
    }

    /// Writes in `metafieldsSet` batches of 25, reading back after conflicts and unknown
    /// outcomes and sending again what did not land (at most `conflict_rounds` times).
    fn write_batches(&mut self, writes: Vec<InFlight>, first_round: u32) -> Result<(), SyncError> {
        let mut queue: VecDeque<(Vec<InFlight>, u32)> = VecDeque::new();
        let mut writes = writes;
        while !writes.is_empty() {
            let rest = writes.split_off(writes.len().min(SET_BATCH));
            queue.push_back((writes, first_round));
            writes = rest;
        }
        while let Some((batch, round)) = queue.pop_front() {
            let Some(batch) = self.begin_batch(batch, None)? else {
                continue;
            };
            if let Some(hook) = &self.options.batch_in_flight {
                (hook.0)(self.batches_started);
            }
            let variables = metafields_set::Variables {
                metafields: batch.iter().map(to_input).collect(),
            };
            let answer = self.client.execute::<ops::MetafieldsSet>(
                "metafieldsSet",
                variables,
                Retry::UnlessAmbiguous,
            );
            let unresolved = match answer {
                Ok(data) => match data.metafields_set.map(|p| verdict(p, &batch)) {
                    Some(Verdict::Landed(digests)) => {
                        let known: Vec<(MetafieldKey, Option<Stored>)> = batch
                            .iter()
                            .zip(digests)
                            .map(|(w, digest)| {
                                (
                                    w.metafield.clone(),
                                    Some(Stored {
                                        value: w.value.clone(),
                                        digest,
                                    }),
                                )
                            })
                            .collect();
                        self.state.settle(&known)?;
                        self.report.written += batch.len() as u64;
                        Vec::new()
                    }
                    Some(Verdict::Refused(refused)) => {
                        let mut rest = Vec::new();
                        let mut dropped = Vec::new();
                        for (i, write) in batch.into_iter().enumerate() {
                            match refused.iter().find(|(index, _)| *index == i) {
                                Some((_, message)) => {
                                    self.reject(&write, message);
                                    dropped.push(write.metafield);
                                }
                                None => rest.push(write),
                            }
                        }
                        self.state.abandon(&dropped)?;
                        rest
                    }
                    // No payload and no error: treat it like an unknown outcome.
                    None => batch,
                },
                Err(AdminError::Ambiguous { .. }) => batch,
                Err(other) => return Err(other.into()),
            };
            if unresolved.is_empty() {
                continue;
            }
            let again = self.reconcile(unresolved, round)?;
            let mut again = again;
            while !again.is_empty() {
                let rest = again.split_off(again.len().min(SET_BATCH));
                queue.push_back((again, round + 1));
                again = rest;
            }
        }
        Ok(())
    }

    /// Journals the next batch, leaving out (and counting) the values of redacted customers;
    /// `None` when none is left to send. The check runs in the journal's transaction, after
    /// [`ApplyOptions::before_batch`].
    fn begin_batch(
        &mut self,
        writes: Vec<InFlight>,
        per_line: Option<usize>,
    ) -> Result<Option<Vec<InFlight>>, SyncError> {
        if let Some(hook) = &self.options.before_batch {
            (hook.0)(self.batches_started);
        }
        self.batches_started += 1;
        let journaled = self.state.begin_batch(writes, per_line)?;
        self.report.redacted_not_written += journaled.suppressed;
        Ok(journaled.batch.map(|_| journaled.writes))
    }

    fn reject(&mut self, write: &InFlight, message: &str) {
        self.report.rejected += 1;
        if self.report.rejection_examples.len() < REJECTION_EXAMPLES {
            self.report.rejection_examples.push(format!(
                "{} {}.{}: {message}",
                write.metafield.owner_id, write.metafield.namespace, write.metafield.key
            ));
        }
    }

    /// With a state database that knows no value (new, or lost: the folder moved to another
    /// machine) the store may already hold the plan's values, and every write would go out as
    /// "must not exist yet", be refused and be read back. So a first page of them is read; when
    /// the store holds any, all are read before anything is written, the store's values become
    /// the known ones, and only what differs beyond the tolerance is written, against the digest
    /// read. On a store that holds none (a first install) this costs the one page.
    fn read_first_when_nothing_is_known(
        &mut self,
        pending: Vec<InFlight>,
    ) -> Result<Vec<InFlight>, SyncError> {
        if pending.is_empty() || self.state.stored_count()? > 0 {
            return Ok(pending);
        }
        let keys: Vec<MetafieldKey> = pending.iter().map(|w| w.metafield.clone()).collect();
        let (first, rest) = keys.split_at(keys.len().min(super::READ_BACK_PAGE));
        let mut found = read_back(self.client, first)?;
        if found.values().all(Option::is_none) {
            return Ok(pending);
        }
        found.extend(read_back(self.client, rest)?);
        self.report.read_first = keys.len() as u64;
        let mut known = Vec::with_capacity(pending.len());
        let mut still = Vec::new();
        for mut write in pending {
            let stored = found.get(&write.metafield).cloned().flatten();
            let needed = self.still_needed(&write, stored.as_ref());
            known.push((write.metafield.clone(), stored.clone()));
            if needed {
                write.compare_digest = stored.and_then(|s| s.digest);
                still.push(write);
            } else {
                self.report.unchanged += 1;
            }
        }
        self.state.settle(&known)?;
        Ok(still)
    }

    /// Whether `write` still has to be sent when the store holds `stored` (nothing, or a value
    /// that differs beyond the tolerance).
    fn still_needed(&self, write: &InFlight, stored: Option<&Stored>) -> bool {
        stored.is_none_or(|s| {
            needs_write(
                &write.metafield.key,
                &s.value,
                &write.value,
                &self.options.tolerance,
                self.options.shop_exponent,
            )
        })
    }

    /// Reads back writes whose outcome is unknown or that met a conflict; settles what the
    /// store holds and returns the writes still to send (against the digest just read).
    fn reconcile(&mut self, writes: Vec<InFlight>, round: u32) -> Result<Vec<InFlight>, SyncError> {
        self.report.read_back += writes.len() as u64;
        let keys: Vec<MetafieldKey> = writes.iter().map(|w| w.metafield.clone()).collect();
        let found = read_back(self.client, &keys)?;
        let mut known = Vec::with_capacity(writes.len());
        let mut again = Vec::new();
        let mut gave_up = Vec::new();
        for mut write in writes {
            let stored = found.get(&write.metafield).cloned().flatten();
            let landed = stored.as_ref().is_some_and(|s| s.value == write.value);
            if landed {
                self.report.written += 1;
            } else {
                let still_needed = self.still_needed(&write, stored.as_ref());
                if still_needed {
                    if round + 1 >= self.options.conflict_rounds {
                        gave_up.push(write.clone());
                    } else {
                        write.compare_digest = stored.as_ref().and_then(|s| s.digest.clone());
                        again.push(write.clone());
                    }
                }
            }
            known.push((write.metafield, stored));
        }
        self.state.settle(&known)?;
        for write in gave_up {
            self.reject(
                &write,
                "kept changing under us (conflict after every read-back); run again",
            );
        }
        Ok(again)
    }

    fn write_bulk(&mut self, writes: Vec<InFlight>) -> Result<(), SyncError> {
        // Split into variables files under the size limit, 25 writes per line.
        let mut parts: Vec<Vec<InFlight>> = Vec::new();
        let mut current: Vec<InFlight> = Vec::new();
        let mut bytes = 0usize;
        for write in writes {
            let size = write.value.len() + write.metafield.owner_id.len() + 200;
            if bytes + size > BULK_FILE_LIMIT && !current.is_empty() {
                parts.push(std::mem::take(&mut current));
                bytes = 0;
            }
            bytes += size;
            current.push(write);
        }
        if !current.is_empty() {
            parts.push(current);
        }
        for part in parts {
            self.write_bulk_part(part)?;
        }
        Ok(())
    }

    fn write_bulk_part(&mut self, writes: Vec<InFlight>) -> Result<(), SyncError> {
        let Some(writes) = self.begin_batch(writes, Some(SET_BATCH))? else {
            return Ok(());
        };
        let Some(batch) = writes.first().map(|w| w.batch) else {
            return Ok(());
        };
        let mut jsonl = Vec::new();
        for chunk in writes.chunks(SET_BATCH) {
            let variables = metafields_set::Variables {
                metafields: chunk.iter().map(to_input).collect(),
            };
            serde_json::to_writer(&mut jsonl, &variables).map_err(|e| SyncError::Io {
                file: "bulk mutation variables".to_string(),
                source: e.into(),
            })?;
            jsonl.push(b'\n');
        }

        let staged = self.client.execute::<ops::StagedUploadsCreate>(
            "stagedUploadsCreate",
            staged_uploads_create::Variables {
                input: vec![staged_uploads_create::StagedUploadInput {
                    filename: "marginwise-metafields.jsonl".to_string(),
                    file_size: Some(jsonl.len().to_string()),
                    http_method: Some(staged_uploads_create::StagedUploadHttpMethodType::POST),
                    mime_type: "text/jsonl".to_string(),
                    resource: staged_uploads_create::StagedUploadTargetGenerateUploadResource::BULK_MUTATION_VARIABLES,
                }],
            },
            Retry::Always,
        )?;
        let bulk_error = |message: String| SyncError::Bulk {
            id: format!("(batch {batch})"),
            message,
        };
        let payload = staged
            .staged_uploads_create
            .ok_or_else(|| bulk_error("stagedUploadsCreate returned nothing".to_string()))?;
        if let Some(error) = payload.user_errors.first() {
            return Err(bulk_error(format!(
                "stagedUploadsCreate: {}",
                error.message
            )));
        }
        let target = payload
            .staged_targets
            .and_then(|t| t.into_iter().next())
            .ok_or_else(|| bulk_error("stagedUploadsCreate returned no target".to_string()))?;
        let url = target
            .url
            .ok_or_else(|| bulk_error("the staged target has no url".to_string()))?;
        let parameters: Vec<(String, String)> = target
            .parameters
            .into_iter()
            .map(|p| (p.name, p.value))
            .collect();
        let staged_path = parameters
            .iter()
            .find(|(name, _)| name == "key")
            .map(|(_, value)| value.clone())
            .ok_or_else(|| bulk_error("the staged target has no `key` parameter".to_string()))?;
        self.client
            .upload_form(&url, &parameters, "marginwise-metafields.jsonl", &jsonl)?;

        let run = self.client.execute::<ops::BulkOperationRunMutation>(
            "bulkOperationRunMutation",
            bulk_operation_run_mutation::Variables {
                mutation: ops::metafields_set_document().to_string(),
                staged_upload_path: staged_path,
                client_identifier: Some(format!("marginwise-batch-{batch}")),
            },
            Retry::UnlessAmbiguous,
        );
        let operation = match run {
            Ok(data) => {
                let payload = data.bulk_operation_run_mutation.ok_or_else(|| {
                    bulk_error("bulkOperationRunMutation returned nothing".to_string())
                })?;
                if let Some(error) = payload.user_errors.first() {
                    return Err(bulk_error(format!(
                        "bulkOperationRunMutation: {} ({:?})",
                        error.message, error.code
                    )));
                }
                payload.bulk_operation.map(|op| op.id)
            }
            Err(AdminError::Ambiguous { .. }) => None,
            Err(other) => return Err(other.into()),
        };
        let Some(operation) = operation else {
            // Whether the operation started is unknown: read back and write the rest in batches.
            // Should it be running after all, compareDigest makes each value land once.
            let again = self.reconcile(writes, 0)?;
            return self.write_batches(again, 1);
        };
        self.state.set_bulk_operation(batch, &operation)?;
        self.report.bulk_operations += 1;
        let finished = wait_for_bulk(self.client, &operation, self.options.polling)?;
        let landed = self.settle_bulk_result(batch, &finished, &writes)?;
        self.report.written += landed;
        self.report.written_by_bulk += landed;
        // Lines that did not land (conflicts, errors, a failed operation): look, then retry.
        let left: Vec<InFlight> = self
            .state
            .in_flight()?
            .into_iter()
            .filter(|w| w.batch == batch)
            .collect();
        if left.is_empty() {
            return Ok(());
        }
        let again = self.reconcile(left, 0)?;
        self.write_batches(again, 1)
    }

    /// Reads a finished bulk mutation's result line by line and settles every write whose line
    /// succeeded; refused values are abandoned. Returns how many writes landed.
    fn settle_bulk_result(
        &mut self,
        batch: i64,
        finished: &super::BulkFinished,
        writes: &[InFlight],
    ) -> Result<u64, SyncError> {
        let Some(url) = finished.url.clone().or(finished.partial_data_url.clone()) else {
            return Ok(0);
        };
        let path = self
            .options
            .work_dir
            .join(format!("bulk-result-{batch}.jsonl"));
        let io = |source| SyncError::Io {
            file: path.display().to_string(),
            source,
        };
        {
            let mut out = BufWriter::new(File::create(&path).map_err(io)?);
            self.client.download(&url, &mut out)?;
            out.flush().map_err(io)?;
        }
        let mut by_line: HashMap<i64, Vec<&InFlight>> = HashMap::new();
        for write in writes {
            if let Some(line) = write.line {
                by_line.entry(line).or_default().push(write);
            }
        }
        #[derive(serde::Deserialize)]
        struct ResultLine {
            data: Option<metafields_set::ResponseData>,
            #[serde(rename = "__lineNumber")]
            line_number: Option<i64>,
        }
        let mut known = Vec::new();
        let mut dropped = Vec::new();
        let mut rejections = Vec::new();
        let file = File::open(&path).map_err(io)?;
        for (index, line) in BufReader::new(file).lines().enumerate() {
            let line = line.map_err(io)?;
            if line.trim().is_empty() {
                continue;
            }
            let parsed: ResultLine = serde_json::from_str(&line).map_err(|e| SyncError::Bulk {
                id: finished.id.clone(),
                message: format!("result line {}: {e}", index + 1),
            })?;
            let (Some(number), Some(data)) = (parsed.line_number, parsed.data) else {
                // A line with top-level errors: its writes stay journaled and are read back.
                continue;
            };
            let Some(line_writes) = by_line.get(&number) else {
                continue;
            };
            let owned: Vec<InFlight> = line_writes.iter().map(|w| (*w).clone()).collect();
            match data.metafields_set.map(|p| verdict(p, &owned)) {
                Some(Verdict::Landed(digests)) => {
                    for (write, digest) in owned.into_iter().zip(digests) {
                        known.push((
                            write.metafield,
                            Some(Stored {
                                value: write.value,
                                digest,
                            }),
                        ));
                    }
                }
                Some(Verdict::Refused(refused)) => {
                    for (i, message) in refused {
                        if let Some(write) = owned.get(i) {
                            rejections.push((write.clone(), message));
                            dropped.push(write.metafield.clone());
                        }
                    }
                }
                None => {}
            }
        }
        let landed = known.len() as u64;
        self.state.settle(&known)?;
        self.state.abandon(&dropped)?;
        for (write, message) in rejections {
            self.reject(&write, &message);
        }
        let _ = std::fs::remove_file(&path);
        Ok(landed)
    }

    fn delete(&mut self, path: &Path) -> Result<(), SyncError> {
        let file = match File::open(path) {
            Ok(file) => file,
            // An older plan without deletions deletes nothing.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(SyncError::Io {
                    file: path.display().to_string(),
                    source,
                });
            }
        };
        let mut pending = Vec::new();
        for (index, line) in BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|source| SyncError::Io {
                file: path.display().to_string(),
                source,
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let record: MetafieldIdentifierInput =
                serde_json::from_str(&line).map_err(|e| plan::PlanError::Malformed {
                    file: path.display().to_string(),
                    line: index as u64 + 1,
                    message: e.to_string(),
                })?;
            self.report.deletions_planned += 1;
            let metafield = MetafieldKey {
                owner_id: record.owner_id,
                namespace: record.namespace,
                key: record.key,
            };
            if !self.state.is_deleted(&metafield)? {
                pending.push(metafield);
            }
        }
        for chunk in pending.chunks(DELETE_BATCH) {
            self.send_deletes(chunk)?;
            self.state.record_deleted(chunk)?;
            self.report.deletions_sent += chunk.len() as u64;
        }
        Ok(())
    }

    /// Deletes the metafields on the purge list (redacted customers' values that landed after
    /// the redaction), taking each off the list once the store confirmed it.
    fn purge(&mut self) -> Result<(), SyncError> {
        let pending = self.state.purge_pending()?;
        for chunk in pending.chunks(DELETE_BATCH) {
            self.send_deletes(chunk)?;
            self.state.purged(chunk)?;
            self.report.redacted_purged += chunk.len() as u64;
        }
        Ok(())
    }

    fn send_deletes(&mut self, chunk: &[MetafieldKey]) -> Result<(), SyncError> {
        {
            let data = self.client.execute::<ops::MetafieldsDelete>(
                "metafieldsDelete",
                metafields_delete::Variables {
                    metafields: chunk
                        .iter()
                        .map(|m| metafields_delete::MetafieldIdentifierInput {
                            key: m.key.clone(),
                            namespace: m.namespace.clone(),
                            owner_id: m.owner_id.clone(),
                        })
                        .collect(),
                },
                // Deleting twice is deleting once.
                Retry::Always,
            )?;
            if let Some(error) = data
                .metafields_delete
                .as_ref()
                .and_then(|p| p.user_errors.first())
            {
                return Err(SyncError::Admin(AdminError::UserErrors {
                    operation: "metafieldsDelete",
                    message: error.message.clone(),
                }));
            }
        }
        Ok(())
    }
}
