//! The metafield plan: what `metafieldsSet` (through `bulkOperationRunMutation`) will write, and
//! what `metafieldsDelete` will remove.
//!
//! Every value is produced by the engine's own encoders ([`Profile::encode`],
//! [`VariantData::encode`]): the format is defined once, next to the decoders the Functions use,
//! and the round-trip test reads this file back through those decoders.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use marginwise_engine::format::{NAMESPACE, PROFILE_KEY, VARIANT_KEY};
use marginwise_engine::{Currency, Profile, VariantData};

use crate::score::Scored;

/// File names inside the output folder.
pub const PLAN_FILE: &str = "metafields.jsonl";
pub const DELETIONS_FILE: &str = "deletions.jsonl";

/// The metafield type of both values: single-line text is what the Functions read as a string
/// (one read instead of one per key, see the engine's format module).
pub const METAFIELD_TYPE: &str = "single_line_text_field";

/// One `MetafieldsSetInput`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MetafieldsSetInput {
    #[serde(rename = "ownerId")]
    pub owner_id: String,
    pub namespace: String,
    pub key: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

/// One `MetafieldIdentifierInput` for `metafieldsDelete`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MetafieldIdentifierInput {
    #[serde(rename = "ownerId")]
    pub owner_id: String,
    pub namespace: String,
    pub key: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("cannot write {file}: {source}")]
    Write {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {file}: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the suppression list in {file}: {message}")]
    Suppression { file: String, message: String },
    #[error("{file}:{line}: {message}")]
    Malformed {
        file: String,
        line: u64,
        message: String,
    },
}

/// How many records of each kind were written.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct PlanCounts {
    pub profiles: u64,
    pub variants: u64,
    pub deletions: u64,
    /// Customers left out because they are on the suppression list of the state database beside
    /// the plan (a `customers/redact` recorded them).
    pub suppressed: u64,
}

pub fn customer_gid(id: u64) -> String {
    format!("gid://shopify/Customer/{id}")
}

pub fn variant_gid(id: u64) -> String {
    format!("gid://shopify/ProductVariant/{id}")
}

fn set_input(owner_id: String, key: &str, value: String) -> MetafieldsSetInput {
    MetafieldsSetInput {
        owner_id,
        namespace: NAMESPACE.to_string(),
        key: key.to_string(),
        kind: METAFIELD_TYPE.to_string(),
        value,
    }
}

/// The profile record of one customer.
pub fn profile_record(customer_id: u64, profile: &Profile) -> MetafieldsSetInput {
    set_input(customer_gid(customer_id), PROFILE_KEY, profile.encode())
}

/// The offer-data record of one variant.
pub fn variant_record(variant_id: u64, data: &VariantData, shop: Currency) -> MetafieldsSetInput {
    set_input(
        variant_gid(variant_id),
        VARIANT_KEY,
        data.encode(shop.exponent),
    )
}

/// Why `record` is not something `score` writes: a metafield other than `$app.profile` on a
/// customer or `$app.offer` on a product variant, another type, or a value the Functions' decoders
/// refuse (they would skip it at checkout). `shop_exponent` decodes the unit cost of an offer.
pub fn check_record(record: &MetafieldsSetInput, shop_exponent: u8) -> Result<(), String> {
    use crate::ingest::records::{GidKind, parse_gid};
    if record.namespace != NAMESPACE {
        return Err(format!(
            "field `namespace`: {:?} is not {NAMESPACE:?}, the app's namespace the Functions read",
            record.namespace
        ));
    }
    let (owner_kind, format) = match record.key.as_str() {
        PROFILE_KEY => (GidKind::Customer, "a customer profile"),
        VARIANT_KEY => (GidKind::ProductVariant, "a variant's offer data"),
        other => {
            return Err(format!(
                "field `key`: {other:?} is neither {PROFILE_KEY:?} nor {VARIANT_KEY:?}"
            ));
        }
    };
    if record.kind != METAFIELD_TYPE {
        return Err(format!(
            "field `type`: {:?} is not {METAFIELD_TYPE:?}, the type of `{NAMESPACE}.{}`",
            record.kind, record.key
        ));
    }
    match parse_gid(&record.owner_id) {
        Some(gid) if gid.kind == owner_kind => {}
        _ => {
            return Err(format!(
                "field `ownerId`: {:?} is not a {} GID (gid://shopify/{}/<number>), the owner of \
                 `{NAMESPACE}.{}`",
                record.owner_id,
                owner_kind.name(),
                owner_kind.name(),
                record.key
            ));
        }
    }
    let decoded = match owner_kind {
        GidKind::Customer => Profile::decode(&record.value).map(|_| ()),
        _ => VariantData::decode(&record.value, shop_exponent).map(|_| ()),
    };
    decoded.map_err(|error| {
        format!(
            "field `value`: {:?} of {} is not {format} the Functions can read: {error}",
            record.value, record.owner_id
        )
    })
}

/// Writes the plan and the deletions into `dir`. Customers on the suppression list of the state
/// database `state_file` (by default `sync-state.sqlite` in `dir`, where `apply` and the privacy
/// webhook keep it) get no profile line.
pub fn write_plan(
    scored: &Scored,
    shop: Currency,
    dir: &Path,
    state_file: &Path,
) -> Result<PlanCounts, PlanError> {
    write_plan_then(scored, shop, dir, state_file, || {})
}

/// [`write_plan`], running `before_renames` once both temporaries are written (a test records a
/// redaction there).
fn write_plan_then(
    scored: &Scored,
    shop: Currency,
    dir: &Path,
    state_file: &Path,
    before_renames: impl FnOnce(),
) -> Result<PlanCounts, PlanError> {
    // Both files are written under temporary names and renamed over the old ones only once both
    // are whole, under the folder's lock (`folder_lock`): a failed run leaves the last plan as it
    // was, and a redaction rewriting the plan meanwhile neither has this run's lines written into
    // a file no longer in the folder nor renames its copy of the old plan over the new one. A
    // kill between the two renames leaves the new profiles beside the last deletions.
    let folder_error = |source| PlanError::Write {
        file: dir.display().to_string(),
        source,
    };
    remove_abandoned_temporaries(dir).map_err(folder_error)?;
    let suppressed = suppressed_customers(state_file)?;
    let (mut profiles, mut counts) = write_profiles(scored, shop, dir, &suppressed, Lock::Take)?;
    let mut deletions_count = 0;
    let deletions = write_records(dir, DELETIONS_FILE, Lock::Take, |out| {
        for id in &scored.opted_out {
            let record = MetafieldIdentifierInput {
                owner_id: customer_gid(*id),
                namespace: NAMESPACE.to_string(),
                key: PROFILE_KEY.to_string(),
            };
            serde_json::to_writer(&mut *out, &record)?;
            out.write_all(b"\n")?;
            deletions_count += 1;
        }
        Ok(())
    })?;
    before_renames();
    let _lock = crate::folder_lock::lock(dir).map_err(folder_error)?;
    // The list read again under the lock: a `customers/redact` records the customer before it
    // takes this lock to scrub the plan, so one recorded while this plan was written is either
    // on the list now or scrubs the plan after the rename.
    let now = suppressed_customers(state_file)?;
    let late = scored
        .customers
        .iter()
        .any(|c| now.contains(&c.customer_id) && !suppressed.contains(&c.customer_id));
    if late {
        (profiles, counts) = write_profiles(scored, shop, dir, &now, Lock::Held)?;
    }
    persist(profiles, dir, PLAN_FILE)?;
    persist(deletions, dir, DELETIONS_FILE)?;
    Ok(PlanCounts {
        deletions: deletions_count,
        ..counts
    })
}

fn suppressed_customers(state_file: &Path) -> Result<HashSet<u64>, PlanError> {
    crate::sync::state::State::suppressed_customers(state_file)
        .map(|ids| ids.into_iter().collect())
        .map_err(|error| PlanError::Suppression {
            file: state_file.display().to_string(),
            message: error.to_string(),
        })
}

/// The profiles of every scored customer not in `suppressed`, then every variant's record,
/// written into a temporary of [`PLAN_FILE`].
fn write_profiles(
    scored: &Scored,
    shop: Currency,
    dir: &Path,
    suppressed: &HashSet<u64>,
    lock: Lock,
) -> Result<(Written, PlanCounts), PlanError> {
    let mut counts = PlanCounts::default();
    let written = write_records(dir, PLAN_FILE, lock, |out| {
        for customer in &scored.customers {
            if suppressed.contains(&customer.customer_id) {
                counts.suppressed += 1;
                continue;
            }
            serde_json::to_writer(
                &mut *out,
                &profile_record(customer.customer_id, &customer.profile),
            )?;
            out.write_all(b"\n")?;
            counts.profiles += 1;
        }
        for (variant_id, data) in &scored.variants {
            serde_json::to_writer(&mut *out, &variant_record(*variant_id, data, shop))?;
            out.write_all(b"\n")?;
            counts.variants += 1;
        }
        Ok(())
    })?;
    Ok((written, counts))
}

/// Whether a temporary is created while this process already holds the folder's lock (taking
/// it again through another descriptor would wait for ever).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lock {
    Take,
    Held,
}

/// A plan file written whole under a temporary name, not yet renamed. Its descriptor holds a
/// lock on it from the moment it is created until it is renamed (or removed when the run fails):
/// that is how [`remove_abandoned_temporaries`] tells a live writer's temporary from a killed
/// one's.
struct Written {
    path: tempfile::TempPath,
    held: File,
}

/// `name`'s records written by `write` into a temporary file in `dir` (readable by its owner
/// only: the plan holds every customer's profile), flushed and synced, not yet renamed.
fn write_records(
    dir: &Path,
    name: &str,
    lock: Lock,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<Written, PlanError> {
    let path = dir.join(name);
    let error = |source| PlanError::Write {
        file: path.display().to_string(),
        source,
    };
    let temporary = {
        // Created and locked under the folder's lock, which the cleanup takes too: it never sees
        // this temporary before it is locked.
        let _folder = match lock {
            Lock::Take => crate::folder_lock::lock(dir).map_err(error)?,
            Lock::Held => None,
        };
        let temporary = tempfile::Builder::new()
            .prefix(&temporary_prefix(name))
            .suffix(TEMPORARY_SUFFIX)
            .tempfile_in(dir)
            .map_err(error)?;
        temporary.as_file().lock().map_err(error)?;
        temporary
    };
    let (file, temporary) = temporary.into_parts();
    let mut out = BufWriter::with_capacity(1 << 20, file);
    write(&mut out).map_err(error)?;
    let file = out.into_inner().map_err(|e| error(e.into_error()))?;
    file.sync_all().map_err(error)?;
    Ok(Written {
        path: temporary,
        held: file,
    })
}

/// How long a temporary this process may not open goes unchanged before it counts as abandoned
/// (a writer running as another user; one still being written changes every few milliseconds).
const STALE_TEMPORARY: std::time::Duration = std::time::Duration::from_secs(3_600);

/// Removes the plan temporaries ([`temporaries`]) in `dir` that no live writer holds: those a
/// `score` killed before its renames left, each a whole copy of the plan's customers. A live
/// writer locks its temporaries from creation to rename ([`write_records`]), so they are kept,
/// and two `score`s writing into one folder do not remove each other's. A temporary this process
/// may not open is removed once unchanged for an hour. Says how many were removed.
pub fn remove_abandoned_temporaries(dir: &Path) -> std::io::Result<u64> {
    let Some(_folder) = crate::folder_lock::lock(dir)? else {
        return Ok(0);
    };
    let named = |path: &Path, e: std::io::Error| {
        std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
    };
    let mut removed = 0;
    for path in temporaries(dir)? {
        let abandoned = match File::open(&path) {
            Ok(file) => match file.try_lock() {
                Ok(()) => true,
                Err(std::fs::TryLockError::WouldBlock) => false,
                Err(std::fs::TryLockError::Error(e)) => return Err(named(&path, e)),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok())
                .is_some_and(|age| age >= STALE_TEMPORARY),
            Err(e) => return Err(named(&path, e)),
        };
        if abandoned {
            match std::fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(named(&path, e)),
            }
        }
    }
    Ok(removed)
}

/// The plan-file temporaries in `dir` (`.<plan file>.<random>.tmp`, as [`write_plan`] names
/// them), in order; none when the folder does not exist.
pub fn temporaries(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let ours = [PLAN_FILE, DELETIONS_FILE]
            .iter()
            .any(|plan| name.starts_with(&temporary_prefix(plan)));
        if ours && name.ends_with(TEMPORARY_SUFFIX) {
            found.push(entry.path());
        }
    }
    found.sort();
    Ok(found)
}

/// How the temporary of a plan file `name` begins and ends.
fn temporary_prefix(name: &str) -> String {
    format!(".{name}.")
}
const TEMPORARY_SUFFIX: &str = ".tmp";

/// Renames `written` over `dir/name`. A plan file replaced keeps its permissions (one its owner
/// opened to a webhook server running as another user stays open to it); a new one is readable
/// by its owner only.
fn persist(written: Written, dir: &Path, name: &str) -> Result<(), PlanError> {
    let path = dir.join(name);
    let error = |source| PlanError::Write {
        file: path.display().to_string(),
        source,
    };
    match std::fs::metadata(&path) {
        Ok(old) => written
            .held
            .set_permissions(old.permissions())
            .map_err(error)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(error(e)),
    }
    written.path.persist(&path).map_err(|e| error(e.error))?;
    drop(written.held);
    Ok(())
}

/// Reads a plan file back (the demo and the round-trip test).
pub fn read_plan(path: &Path) -> Result<Vec<MetafieldsSetInput>, PlanError> {
    let file = File::open(path).map_err(|source| PlanError::Read {
        file: path.display().to_string(),
        source,
    })?;
    let mut records = Vec::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| PlanError::Read {
            file: path.display().to_string(),
            source,
        })?;
        let record = serde_json::from_str(&line).map_err(|e| PlanError::Malformed {
            file: path.display().to_string(),
            line: index as u64 + 1,
            message: e.to_string(),
        })?;
        records.push(record);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_live_writers_temporary_is_kept_and_a_killed_ones_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let killed = dir.path().join(format!(".{PLAN_FILE}.Killed.tmp"));
        std::fs::write(&killed, "a killed score's copy\n").unwrap();
        let live = write_records(dir.path(), PLAN_FILE, Lock::Take, |out| {
            out.write_all(b"live\n")
        })
        .unwrap();
        let live_path = live.path.to_path_buf();

        // What a second `score`, or a redaction, clears meanwhile.
        assert_eq!(remove_abandoned_temporaries(dir.path()).unwrap(), 1);
        assert!(!killed.exists());
        assert!(live_path.exists(), "a live writer's temporary was removed");

        persist(live, dir.path(), PLAN_FILE).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join(PLAN_FILE)).unwrap(),
            "live\n"
        );
        assert!(temporaries(dir.path()).unwrap().is_empty());
        assert_eq!(remove_abandoned_temporaries(dir.path()).unwrap(), 0);
        assert_eq!(
            remove_abandoned_temporaries(&dir.path().join("missing")).unwrap(),
            0
        );
    }

    /// A store of 300 generated customers, scored, and an empty plan folder.
    fn scored_store() -> (tempfile::TempDir, Scored, Currency) {
        let dir = tempfile::tempdir().unwrap();
        let seed = dir.path().join("seed");
        let progress = crate::progress::Progress::new(true);
        crate::generate::generate(
            &crate::generate::GeneratorConfig {
                customers: 300,
                seed: 5,
            },
            &seed,
            progress,
        )
        .unwrap();
        let data =
            crate::ingest::read_store(&seed, &crate::ingest::IngestOptions::default(), progress)
                .unwrap();
        let scored =
            crate::score::score(&data, &crate::score::ScoreOptions::default(), progress).unwrap();
        std::fs::create_dir_all(dir.path().join("plan")).unwrap();
        (dir, scored, data.currency)
    }

    fn state_file(plan: &Path) -> std::path::PathBuf {
        plan.join(crate::sync::state::STATE_FILE)
    }

    fn redact(state_file: &Path, customer: u64) {
        let mut state =
            crate::sync::state::State::open(state_file, "marginwise-test.myshopify.com").unwrap();
        state.record_redacted(&customer_gid(customer)).unwrap();
    }

    fn profile_owners(plan: &Path) -> Vec<String> {
        read_plan(&plan.join(PLAN_FILE))
            .unwrap()
            .into_iter()
            .filter(|record| record.key == PROFILE_KEY)
            .map(|record| record.owner_id)
            .collect()
    }

    #[test]
    fn customers_on_the_suppression_list_get_no_profile_line() {
        let (dir, scored, currency) = scored_store();
        let plan = dir.path().join("plan");
        let (first, second) = (
            scored.customers[0].customer_id,
            scored.customers[1].customer_id,
        );

        // No state database: everyone, and none is created.
        let state = state_file(&plan);
        let counts = write_plan(&scored, currency, &plan, &state).unwrap();
        assert_eq!(counts.profiles, scored.customers.len() as u64);
        assert_eq!(counts.suppressed, 0);
        assert!(!state.exists());

        // One redacted before the run, one while its plan was written.
        redact(&state, first);
        let counts =
            write_plan_then(&scored, currency, &plan, &state, || redact(&state, second)).unwrap();
        let owners = profile_owners(&plan);
        assert!(!owners.contains(&customer_gid(first)));
        assert!(
            !owners.contains(&customer_gid(second)),
            "a customer redacted while the plan was written is in it"
        );
        assert_eq!(owners.len(), scored.customers.len() - 2);
        assert_eq!(
            (counts.profiles, counts.suppressed),
            (owners.len() as u64, 2)
        );
        assert_eq!(counts.deletions, scored.opted_out.len() as u64);
        assert!(temporaries(&plan).unwrap().is_empty());
    }

    #[test]
    fn a_replaced_plan_file_keeps_its_permissions_and_a_new_one_is_its_owners() {
        let dir = tempfile::tempdir().unwrap();
        let plan = dir.path().join(PLAN_FILE);
        std::fs::write(&plan, "old\n").unwrap();
        std::fs::set_permissions(&plan, std::fs::Permissions::from_mode(0o640)).unwrap();
        let written = write_records(dir.path(), PLAN_FILE, Lock::Take, |out| {
            out.write_all(b"new\n")
        })
        .unwrap();
        persist(written, dir.path(), PLAN_FILE).unwrap();
        assert_eq!(std::fs::read_to_string(&plan).unwrap(), "new\n");
        assert_eq!(mode(&plan), 0o640);

        let written = write_records(dir.path(), DELETIONS_FILE, Lock::Take, |_| Ok(())).unwrap();
        persist(written, dir.path(), DELETIONS_FILE).unwrap();
        assert_eq!(mode(&dir.path().join(DELETIONS_FILE)), 0o600);
    }
}
