//! `marginwise refresh`: the job a store runs on a schedule. It exports the store's history,
//! scores it and writes what changed, in one folder of its own, and leaves a record of how it
//! went for whoever watches the schedule.
//!
//! The folder holds:
//! - `export/`: the last complete export (`customers.jsonl`, `products.jsonl`, `orders.jsonl`),
//!   and while a run exports, the new one in `export/.next/`;
//! - `plan/`: the plan `score` wrote from it, its summary and report, and the write-back state
//!   database (`sync-state.sqlite`, with the privacy webhook's suppression list);
//! - `refresh.lock`: held by the run under way, so that a run started while another is still
//!   going (a slow export, a schedule that fires twice) stops within two seconds and touches
//!   nothing;
//! - `last-refresh.json`: what the last run did, or the stage it failed at and why, and when a
//!   run last succeeded.
//!
//! `marginwise webhooks --plan DIR/plan --export DIR/export` (or a shops file entry naming them)
//! keeps the folder within reach of the privacy webhooks.
//!
//! A run, in order:
//! 1. takes the lock, and opens the state database, which refuses a folder of another shop
//!    before anything is asked of the store;
//! 2. exports into `export/.next/` (left over by an interrupted run, it is removed first), so a
//!    failed or interrupted export leaves the last complete one as it was (`shop/redact` removes
//!    that folder's files too);
//! 3. removes every customer on the suppression list from the new export (their record, their
//!    orders, the orders their redaction named, and those orders' line items): a customer
//!    redacted since the last run may still be in what the store answers, and the app must not
//!    keep their data again. Only then do the new files replace the old ones, one rename each,
//!    under the export folder's lock ([`folder_lock`]), and the list is read once more: a
//!    redaction recorded meanwhile scrubbed the old files, which the swap replaced;
//!
//! [`folder_lock`]: crate::folder_lock
//! 4. scores `export/` into `plan/` (the plan files are replaced whole, see [`plan::write_plan`]);
//! 5. takes the suppression list again and removes the customers added to it meanwhile from the
//!    export and the plan: a redaction handled while the run was going may have scrubbed files
//!    this run then replaced. (`apply` leaves their values out anyway, batch by batch.);
//! 6. applies the plan: only what changed, resuming writes an interrupted run left in flight.
//!
//! Running it often enough also keeps an expiring token alive: every run renews the access
//! token, and with it the refresh token, when they are due (see `admin`).
//!
//! [`plan::write_plan`]: crate::plan::write_plan

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::admin::AdminClient;
use crate::pipeline::{self, RunOptions};
use crate::plan::{PlanCounts, customer_gid};
use crate::privacy::exports::{self, EXPORT_FILES, Owner};
use crate::privacy::local;
use crate::progress::Progress;
use crate::say;
use crate::sync::apply::{ApplyOptions, ApplyReport, BatchHook};
use crate::sync::export::ExportedFile;
use crate::sync::state::{STATE_FILE, State};
use crate::sync::{self, Polling};

/// The folders and files of a refresh folder.
pub const EXPORT_DIR: &str = "export";
/// Inside the export folder: where a run writes the new export until it is complete.
pub const NEXT_EXPORT_DIR: &str = ".next";
pub const PLAN_DIR: &str = "plan";
pub const LOCK_FILE: &str = "refresh.lock";
pub const RECORD_FILE: &str = "last-refresh.json";

/// What a run does, beyond the store it talks to.
#[derive(Debug, Clone)]
pub struct RefreshOptions {
    /// The refresh folder.
    pub dir: PathBuf,
    /// How the export is scored (bundle parents, opt-out tag, ...).
    pub run: RunOptions,
    /// How the plan is written (its `work_dir` is set to the plan folder).
    pub apply: ApplyOptions,
    /// How bulk queries are polled.
    pub polling: Polling,
    /// Called once the plan is written, before the suppression list is taken again (tests use it
    /// to record a redaction that lands while the plan is being written).
    pub after_score: Option<BatchHook>,
    /// Called just before the new export replaces the last one (tests use it to record a
    /// redaction whose scrub of the last export the swap then undoes).
    pub before_swap: Option<BatchHook>,
}

impl RefreshOptions {
    pub fn export_dir(&self) -> PathBuf {
        self.dir.join(EXPORT_DIR)
    }

    pub fn plan_dir(&self) -> PathBuf {
        self.dir.join(PLAN_DIR)
    }

    pub fn state_file(&self) -> PathBuf {
        self.plan_dir().join(STATE_FILE)
    }
}

/// One stage's wall time.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StageTime {
    pub stage: String,
    pub seconds: f64,
}

/// Customers kept out of this run's export and plan because they are on the suppression list.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct RedactionsKept {
    /// Customers on the list when the new export was checked.
    pub customers: u64,
    /// Orders named by their redactions on the list then (kept out even without their
    /// customer).
    #[serde(default)]
    pub orders: u64,
    /// Lines of the new export removed for them (their records, orders and line items).
    pub export_lines_removed: u64,
    /// Customers added to the list while the run was going, removed again afterwards.
    pub late_customers: u64,
    /// Lines removed for those from the export and the plan.
    pub late_lines_removed: u64,
}

/// What a run did: written to `last-refresh.json` whether it succeeded or not.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RefreshRecord {
    pub shop: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub ok: bool,
    /// The stage that failed, and the error.
    pub failed_stage: Option<String>,
    pub error: Option<String>,
    /// When a run last succeeded (this one, or the one before a failure).
    pub last_success_at: Option<String>,
    pub stages: Vec<StageTime>,
    pub exported: Vec<ExportedSummary>,
    pub redactions: RedactionsKept,
    pub plan: Option<PlanSummary>,
    pub applied: Option<AppliedSummary>,
}

/// One exported file.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ExportedSummary {
    pub file: String,
    pub objects: String,
    pub bytes: u64,
}

/// The plan's record counts.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct PlanSummary {
    pub profiles: u64,
    pub variants: u64,
    pub deletions: u64,
    /// Customers on the suppression list left out of the plan.
    #[serde(default)]
    pub suppressed: u64,
}

/// What the write-back did.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct AppliedSummary {
    pub planned: u64,
    pub unchanged: u64,
    pub written: u64,
    pub rejected: u64,
    pub redacted_not_written: u64,
    pub deletions_sent: u64,
    pub recovered: u64,
}

impl From<&ApplyReport> for AppliedSummary {
    fn from(report: &ApplyReport) -> AppliedSummary {
        AppliedSummary {
            planned: report.planned,
            unchanged: report.unchanged,
            written: report.written,
            rejected: report.rejected,
            redacted_not_written: report.redacted_not_written,
            deletions_sent: report.deletions_sent,
            recovered: report.recovered,
        }
    }
}

impl From<PlanCounts> for PlanSummary {
    fn from(counts: PlanCounts) -> PlanSummary {
        PlanSummary {
            profiles: counts.profiles,
            variants: counts.variants,
            deletions: counts.deletions,
            suppressed: counts.suppressed,
        }
    }
}

/// Runs one refresh of the store `client` talks to. The record is written to
/// `last-refresh.json` before this returns, also when a stage failed (the error is returned
/// too); a run that found the lock held writes nothing.
pub fn refresh(
    client: &mut AdminClient,
    options: &RefreshOptions,
    progress: Progress,
) -> anyhow::Result<RefreshRecord> {
    let dir = &options.dir;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let _lock = RunLock::take(dir)?;
    let record_path = dir.join(RECORD_FILE);
    let shop = client.credentials().shop.clone();
    let last_success_at = match read_record(&record_path) {
        // Only this shop's: a folder of another shop is refused below, and must not lend this
        // shop its last success.
        Ok(previous) => previous
            .filter(|p| p.shop == *shop)
            .and_then(|p| p.last_success_at),
        Err(error) => {
            // Kept for whoever wants to know when a run last succeeded; a new one is written.
            let kept = dir.join(format!("{RECORD_FILE}.corrupt"));
            let _ = std::fs::rename(&record_path, &kept);
            eprintln!(
                "note: {error:#}; kept as {}, and when a run last succeeded is not known",
                kept.display()
            );
            None
        }
    };
    let mut run = Run {
        client,
        options,
        progress,
        record: RefreshRecord {
            shop,
            started_at: now(),
            finished_at: None,
            ok: false,
            failed_stage: None,
            error: None,
            last_success_at,
            stages: Vec::new(),
            exported: Vec::new(),
            redactions: RedactionsKept::default(),
            plan: None,
            applied: None,
        },
    };
    // A record of the run under way (no `finished_at`), so a run that is killed or hangs does
    // not leave the last run's "ok" standing.
    write_record(&record_path, &run.record)?;
    let result = run.stages();
    let mut record = run.record;
    record.finished_at = Some(now());
    match &result {
        Ok(()) => {
            record.ok = true;
            record.last_success_at = Some(record.started_at.clone());
        }
        Err(error) => record.error = Some(format!("{error:#}")),
    }
    let written = write_record(&record_path, &record);
    match (result, written) {
        (Ok(()), Ok(())) => Ok(record),
        (Ok(()), Err(error)) => Err(error),
        (Err(error), Ok(())) => Err(error),
        (Err(error), Err(record_error)) => Err(error.context(format!(
            "(and the record was not written: {record_error:#})"
        ))),
    }
}

struct Run<'a> {
    client: &'a mut AdminClient,
    options: &'a RefreshOptions,
    progress: Progress,
    record: RefreshRecord,
}

impl Run<'_> {
    fn stages(&mut self) -> anyhow::Result<()> {
        let options = self.options;
        let plan_dir = options.plan_dir();
        let export_dir = options.export_dir();
        let next_dir = export_dir.join(NEXT_EXPORT_DIR);

        let suppressed = self.stage("state", |run| {
            std::fs::create_dir_all(&plan_dir)
                .with_context(|| format!("creating {}", plan_dir.display()))?;
            run.suppressed()
        })?;

        self.stage("export", |run| {
            remove_dir_if_present(&next_dir)?;
            let files = sync::export::export(run.client, &next_dir, options.polling)
                .with_context(|| format!("exporting the store into {}", next_dir.display()));
            let files = match files {
                Ok(files) => files,
                Err(error) => {
                    // What completed holds customers' data nobody will use: not left behind.
                    let _ = remove_dir_if_present(&next_dir);
                    return Err(error);
                }
            };
            run.record.exported = files.iter().map(summary).collect();
            for file in &files {
                say!(
                    "exported {}: {} objects, {} bytes (bulk operation {})",
                    file.file,
                    file.objects,
                    file.bytes,
                    file.operation_id
                )?;
            }
            Ok(())
        })?;

        let suppressed = self.stage("redactions", |run| {
            let result = (|| {
                // Taken again now: a redaction handled during the export is on the list, and its
                // customer may be in what the store answered.
                let now_suppressed = run.suppressed()?;
                let scrubbed = scrub(&next_dir, &now_suppressed)?;
                run.record.redactions.customers = customers(&now_suppressed).count() as u64;
                run.record.redactions.orders = orders(&now_suppressed).count() as u64;
                run.record.redactions.export_lines_removed = scrubbed;
                if scrubbed > 0 {
                    say!(
                        "kept {} lines of customers redacted earlier out of the new export",
                        scrubbed
                    )?;
                }
                if let Some(hook) = &options.before_swap {
                    (hook.0)(0);
                }
                replace_export(&next_dir, &export_dir)?;
                Ok(now_suppressed)
            })();
            let now_suppressed = match result {
                Ok(now_suppressed) => now_suppressed,
                Err(error) => {
                    let _ = remove_dir_if_present(&next_dir);
                    return Err(error);
                }
            };
            // And once more after the swap: the webhook puts a customer on the list before it
            // scrubs, so one whose scrub of the old files the swap just undid is on it now.
            let after_swap = run.suppressed()?;
            let undone: BTreeSet<Redacted> =
                after_swap.difference(&now_suppressed).copied().collect();
            let removed = scrub(&export_dir, &undone)?;
            run.record.redactions.late_customers += customers(&undone).count() as u64;
            run.record.redactions.late_lines_removed += removed;
            Ok(after_swap
                .union(&suppressed)
                .copied()
                .collect::<BTreeSet<Redacted>>())
        })?;

        let scored = self.stage("score", |run| {
            let outcome = pipeline::run(&export_dir, &plan_dir, &options.run, run.progress)
                .with_context(|| format!("scoring {}", export_dir.display()))?;
            run.record.plan = Some(outcome.plan.into());
            crate::stdout::write(format_args!("{}", pipeline::summary_text(&outcome)))?;
            if let Some(hook) = &options.after_score {
                (hook.0)(0);
            }
            Ok(())
        });

        // Also when scoring failed: it may have failed after the new plan was in place (writing
        // the summary or the report), and the export was swapped before it.
        let late = self.stage("late redactions", |run| {
            let late: BTreeSet<Redacted> =
                run.suppressed()?.difference(&suppressed).copied().collect();
            if late.is_empty() {
                return Ok(());
            }
            let mut removed = scrub(&export_dir, &late)?;
            for customer in customers(&late) {
                removed += local::scrub_plan(&plan_dir, &customer_gid(customer))?;
            }
            run.record.redactions.late_customers += customers(&late).count() as u64;
            run.record.redactions.late_lines_removed += removed;
            say!(
                "{} customers were redacted while this run went on: {} of their lines removed \
                 from the export and the plan",
                customers(&late).count(),
                removed
            )?;
            Ok(())
        });
        scored?;
        late?;

        self.stage("apply", |run| {
            let mut apply_options = options.apply.clone();
            apply_options.work_dir = plan_dir.clone();
            let report = sync::apply_plan(
                run.client,
                &plan_dir,
                Some(&options.state_file()),
                &apply_options,
            )
            .with_context(|| format!("applying the plan in {}", plan_dir.display()))?;
            run.record.applied = Some(AppliedSummary::from(&report));
            crate::stdout::write(format_args!("{}", sync::report_text(&report)))?;
            if report.rejected > 0 {
                anyhow::bail!(
                    "the store refused {} of the plan's values (listed above; the rest of the \
                     plan was applied)",
                    report.rejected
                );
            }
            Ok(())
        })
    }

    /// Runs one stage, timing it; a failure names the stage in the record.
    fn stage<T>(
        &mut self,
        name: &'static str,
        work: impl FnOnce(&mut Self) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let started = std::time::Instant::now();
        let result = work(self);
        self.record.stages.push(StageTime {
            stage: name.to_string(),
            seconds: started.elapsed().as_secs_f64(),
        });
        if result.is_err() && self.record.failed_stage.is_none() {
            self.record.failed_stage = Some(name.to_string());
        }
        result.with_context(|| format!("refresh stage `{name}`"))
    }

    /// The customers and orders on the suppression list now (opening the state database checks
    /// that it is this shop's).
    fn suppressed(&self) -> anyhow::Result<BTreeSet<Redacted>> {
        let state = match State::open(&self.options.state_file(), &self.record.shop) {
            Ok(state) => state,
            // `refresh` has no --state: the folder is the store's.
            Err(crate::sync::state::StateError::OtherShop {
                recorded,
                requested,
                ..
            }) => anyhow::bail!(
                "{} is {recorded}'s refresh folder, not {requested}'s: give each store its own \
                 folder (--dir, or its \"refresh\" in the shops file)",
                self.options.dir.display()
            ),
            Err(error) => return Err(error.into()),
        };
        let mut suppressed: BTreeSet<Redacted> = state
            .redacted_customers()?
            .into_iter()
            .map(Redacted::Customer)
            .collect();
        suppressed.extend(state.redacted_orders()?.into_iter().map(Redacted::Order));
        Ok(suppressed)
    }
}

fn summary(file: &ExportedFile) -> ExportedSummary {
    ExportedSummary {
        file: file.file.clone(),
        objects: file.objects.clone(),
        bytes: file.bytes,
    }
}

/// One entry of the suppression list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Redacted {
    Customer(u64),
    /// An order a `customers/redact` named as the customer's.
    Order(u64),
}

fn customers(redacted: &BTreeSet<Redacted>) -> impl Iterator<Item = u64> + '_ {
    redacted.iter().filter_map(|r| match r {
        Redacted::Customer(id) => Some(*id),
        Redacted::Order(_) => None,
    })
}

fn orders(redacted: &BTreeSet<Redacted>) -> impl Iterator<Item = u64> + '_ {
    redacted.iter().filter_map(|r| match r {
        Redacted::Order(id) => Some(*id),
        Redacted::Customer(_) => None,
    })
}

/// Removes the lines of the `redacted` customers and orders from the export in `dir` (their
/// records, the customers' orders, and every line nested under those); the lines removed.
fn scrub(dir: &Path, redacted: &BTreeSet<Redacted>) -> anyhow::Result<u64> {
    if redacted.is_empty() {
        return Ok(0);
    }
    let mut owner = Owner::customers(customers(redacted));
    owner.order_ids.extend(orders(redacted));
    let scrubbed = exports::scrub_exports(&[dir.to_path_buf()], &owner)?;
    Ok(scrubbed.lines_removed())
}

/// Moves the three files of a complete export in `next` over those in `current` (its parent),
/// then removes `next`.
fn replace_export(next: &Path, current: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(current).with_context(|| format!("creating {}", current.display()))?;
    // Under both folders' locks (`.next`'s first; the webhook holds one at a time): a redaction
    // rewriting the old files renames its copy before or after these renames, never over the
    // new files, and none is writing a temporary in `.next` while it is removed (see
    // `folder_lock`). A kill between two renames leaves some files of the new export beside some
    // of the last.
    let _next_lock =
        crate::folder_lock::lock(next).with_context(|| format!("locking {}", next.display()))?;
    let _lock = crate::folder_lock::lock(current)
        .with_context(|| format!("locking {}", current.display()))?;
    for name in EXPORT_FILES {
        let from = next.join(name);
        let to = current.join(name);
        std::fs::rename(&from, &to)
            .with_context(|| format!("moving {} to {}", from.display(), to.display()))?;
    }
    // The swap is done: a folder left behind is untidy, not a failed swap (the next run removes
    // it), and must not skip the scrub after the swap.
    if let Err(error) = remove_dir_if_present(next) {
        eprintln!("note: {error:#}; the next run removes it");
    }
    Ok(())
}

fn remove_dir_if_present(dir: &Path) -> anyhow::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error).with_context(|| format!("removing {}", dir.display())),
    }
}

fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map_or_else(|_| jiff::Timestamp::now().to_string(), |t| t.to_string())
}

/// The record of the last run, if there is one.
pub fn read_record(path: &Path) -> anyhow::Result<Option<RefreshRecord>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .with_context(|| format!("{} is not a refresh record", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
    }
}

fn write_record(path: &Path, record: &RefreshRecord) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(record).context("rendering the refresh record")?;
    text.push('\n');
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut file = tempfile::Builder::new()
        .prefix(".last-refresh.")
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.as_file().sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    file.persist(path)
        .map(drop)
        .with_context(|| format!("writing {}", path.display()))
}

/// Runs `work` while no `marginwise refresh` can run in `dir`, when `dir` is a refresh folder
/// (it has a `refresh.lock`) with no run under way; `Ok(None)` otherwise. The privacy webhook
/// clears what a killed run left (`export/.next`, plan temporaries) this way, never a live run's
/// files; a run starting meanwhile waits for it (up to two seconds, then it stops as when
/// another run holds the lock). An error: the lock file exists but cannot be opened or locked
/// (a server running as a user it is not readable by), so whether a run is under way is unknown.
pub fn when_idle<T>(dir: &Path, work: impl FnOnce() -> T) -> std::io::Result<Option<T>> {
    let path = dir.join(LOCK_FILE);
    let named =
        |e: std::io::Error| std::io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    let file = match std::fs::OpenOptions::new().read(true).open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(named(e)),
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
        Err(std::fs::TryLockError::Error(e)) => return Err(named(e)),
    }
    let done = work();
    drop(file);
    Ok(Some(done))
}

/// Whether the process a lock file names (`process <pid> since <time>`) has ended: only a killed
/// run's name stays in the file (a run clears it when it lets go), so the holder is then the
/// privacy webhook's idle check. Known on Linux only (`/proc`); elsewhere it is taken to be alive.
fn holder_is_gone(holder: &str) -> bool {
    let pid = holder
        .strip_prefix("process ")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|pid| pid.parse::<u32>().ok());
    match pid {
        Some(pid) if cfg!(target_os = "linux") => {
            !Path::new("/proc").join(pid.to_string()).exists()
        }
        _ => false,
    }
}

/// How long a run waits for `refresh.lock` before it stops (see [`RunLock::take`]).
const RUN_LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// The lock a run holds on `refresh.lock` (released when dropped, also when the process dies).
/// The file says which process holds it, for the message another run prints.
struct RunLock {
    file: File,
}

impl Drop for RunLock {
    /// The file no longer names this process once it lets go (a killed run's name stays, but
    /// its lock is gone with it).
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
    }
}

impl RunLock {
    fn take(dir: &Path) -> anyhow::Result<RunLock> {
        let path = dir.join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening the lock {}", path.display()))?;
        // A held lock is tried again for a moment before the run gives up: the privacy webhook
        // holds it for the few milliseconds it takes to clear a killed run's leftovers
        // (`when_idle`), while an overlapping run holds it for minutes.
        let patience = std::time::Instant::now() + RUN_LOCK_PATIENCE;
        let mut taken = file.try_lock();
        while matches!(taken, Err(std::fs::TryLockError::WouldBlock))
            && std::time::Instant::now() < patience
        {
            std::thread::sleep(std::time::Duration::from_millis(50));
            taken = file.try_lock();
        }
        match taken {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                // Said from what the file says: the holder may live in another pid namespace,
                // or `/proc` may hide it, so a name is only ever "probably" gone.
                let by = if holder.is_empty() {
                    "by a run just starting, or by the privacy webhook clearing a killed run's \
                     leftovers"
                        .to_string()
                } else if holder_is_gone(holder) {
                    format!(
                        "the file names {holder}, which has ended without letting go (probably \
                         killed): the privacy webhook is likely clearing what it left; try again"
                    )
                } else {
                    format!("by another `marginwise refresh`, {holder}")
                };
                anyhow::bail!(
                    "{} is held ({by}); this run in {} did nothing",
                    path.display(),
                    dir.display()
                );
            }
            Err(std::fs::TryLockError::Error(error)) => {
                return Err(error).with_context(|| format!("taking the lock {}", path.display()));
            }
        }
        let holder = format!("process {} since {}", std::process::id(), now());
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(holder.as_bytes()))
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(RunLock { file })
    }
}

/// How a refresh folder stands, for whoever watches the schedule (`marginwise refresh
/// --status`).
#[derive(Debug, Clone)]
pub struct Status {
    pub dir: PathBuf,
    /// The last run's record; `None` when no run has finished there.
    pub record: Option<RefreshRecord>,
    /// Seconds since a run last succeeded, when one has.
    pub since_success_seconds: Option<i64>,
    /// No run succeeded within the allowed age (or none ever did).
    pub stale: bool,
}

impl Status {
    /// One line for people: the shop, the last run, the last success and whether it is stale.
    pub fn line(&self) -> String {
        let Some(record) = &self.record else {
            return format!(
                "{}: no refresh has finished here (no {RECORD_FILE}): STALE",
                self.dir.display()
            );
        };
        let last = if record.finished_at.is_none() {
            format!(
                "last run {} has not finished (it is running, or it was killed)",
                record.started_at
            )
        } else if record.ok {
            format!("last run {} succeeded", record.started_at)
        } else {
            let error = record.error.as_deref().unwrap_or("no error recorded");
            format!(
                "last run {} failed at stage `{}`: {}",
                record.started_at,
                record.failed_stage.as_deref().unwrap_or("?"),
                error.lines().next().unwrap_or(error)
            )
        };
        let success = match (&record.last_success_at, self.since_success_seconds) {
            (Some(at), Some(seconds)) => format!("last success {at} ({})", age(seconds)),
            _ => "no run has succeeded yet".to_string(),
        };
        format!(
            "{} ({}): {last}; {success}{}",
            record.shop,
            self.dir.display(),
            if self.stale { ": STALE" } else { "" }
        )
    }
}

fn age(seconds: i64) -> String {
    match seconds {
        s if s < 3_600 => format!("{} min ago", s / 60),
        s if s < 2 * 86_400 => format!("{} h ago", s / 3_600),
        s => format!("{} days ago", s / 86_400),
    }
}

/// How the refresh folder `dir` stands at `now`: stale when no run succeeded in the last
/// `max_age_seconds`.
pub fn status(dir: &Path, max_age_seconds: i64, now: jiff::Timestamp) -> anyhow::Result<Status> {
    let record = read_record(&dir.join(RECORD_FILE))?;
    let since_success_seconds = record
        .as_ref()
        .and_then(|r| r.last_success_at.as_deref())
        .map(|at| {
            at.parse::<jiff::Timestamp>().with_context(|| {
                format!(
                    "{}: last_success_at {at:?}",
                    dir.join(RECORD_FILE).display()
                )
            })
        })
        .transpose()?
        .map(|at| now.as_second().saturating_sub(at.as_second()));
    let stale = since_success_seconds.is_none_or(|seconds| seconds > max_age_seconds);
    Ok(Status {
        dir: dir.to_path_buf(),
        record,
        since_success_seconds,
        stale,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;

    #[test]
    fn when_idle_runs_only_in_an_idle_refresh_folder_and_names_a_lock_it_cannot_open() {
        let dir = tempfile::tempdir().unwrap();
        // Not a refresh folder.
        assert!(when_idle(dir.path(), || ()).unwrap().is_none());
        let lock = dir.path().join(LOCK_FILE);
        std::fs::write(&lock, "").unwrap();
        assert_eq!(when_idle(dir.path(), || 7).unwrap(), Some(7));
        // A run under way.
        let held = File::open(&lock).unwrap();
        held.lock().unwrap();
        assert!(when_idle(dir.path(), || ()).unwrap().is_none());
        drop(held);
        // A lock file that cannot be opened (a link to itself here; another user's in life).
        std::fs::remove_file(&lock).unwrap();
        std::os::unix::fs::symlink(&lock, &lock).unwrap();
        let error = when_idle(dir.path(), || ()).unwrap_err();
        assert!(
            error.to_string().contains(&lock.display().to_string()),
            "{error}"
        );
    }

    fn record(ok: bool, started_at: &str, last_success_at: Option<&str>) -> RefreshRecord {
        RefreshRecord {
            shop: "a.myshopify.com".to_string(),
            started_at: started_at.to_string(),
            finished_at: Some(started_at.to_string()),
            ok,
            failed_stage: (!ok).then(|| "export".to_string()),
            error: (!ok).then(|| "refresh stage `export`: ended FAILED\nmore".to_string()),
            last_success_at: last_success_at.map(str::to_string),
            stages: Vec::new(),
            exported: Vec::new(),
            redactions: RedactionsKept::default(),
            plan: None,
            applied: None,
        }
    }

    #[test]
    fn a_folder_is_stale_once_its_last_success_is_older_than_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let now: jiff::Timestamp = "2026-11-22T12:00:00Z".parse().unwrap();
        let hours = |h: i64| h * 3_600;

        let missing = status(dir.path(), hours(48), now).unwrap();
        assert!(missing.stale && missing.record.is_none());
        assert!(
            missing.line().contains("no refresh has finished here"),
            "{}",
            missing.line()
        );

        let path = dir.path().join(RECORD_FILE);
        // Failed now, succeeded 30 hours ago: within 48 h, not within 24 h.
        write_record(
            &path,
            &record(false, "2026-11-22T11:00:00Z", Some("2026-11-21T06:00:00Z")),
        )
        .unwrap();
        let within = status(dir.path(), hours(48), now).unwrap();
        assert!(!within.stale);
        assert_eq!(within.since_success_seconds, Some(hours(30)));
        assert_eq!(
            within.line(),
            format!(
                "a.myshopify.com ({}): last run 2026-11-22T11:00:00Z failed at stage `export`: \
                 refresh stage `export`: ended FAILED; last success 2026-11-21T06:00:00Z (30 h ago)",
                dir.path().display()
            )
        );
        let over = status(dir.path(), hours(24), now).unwrap();
        assert!(
            over.stale && over.line().ends_with(": STALE"),
            "{}",
            over.line()
        );

        // Never succeeded.
        write_record(&path, &record(false, "2026-11-22T11:00:00Z", None)).unwrap();
        let never = status(dir.path(), hours(48), now).unwrap();
        assert!(never.stale && never.line().contains("no run has succeeded yet"));

        // A record that is not one is an error naming the file, not a panic or "fresh".
        std::fs::write(&path, "{").unwrap();
        let error = format!("{:#}", status(dir.path(), hours(48), now).unwrap_err());
        assert!(
            error.contains(RECORD_FILE) && error.contains("not a refresh record"),
            "{error}"
        );
    }
}
