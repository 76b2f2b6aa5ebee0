//! Talking to a store: exporting its history through bulk queries ([`export`]), applying a
//! metafield plan to it ([`apply`]), with the write-back state in [`state`] and the change
//! tolerance in [`diff`], and creating the discount and the cart transform that run the
//! Functions ([`install`]).
//!
//! This module holds what both directions share: reading metafields back, and waiting for a bulk
//! operation to finish.

pub mod apply;
pub mod diff;
pub mod export;
pub mod install;
pub mod state;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::admin::ops::{self, bulk_operation_status, read_metafields};
use crate::admin::{AdminClient, AdminError, Retry};
use state::{MetafieldKey, StateError, Stored};

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("bulk operation {id}: {message}")]
    Bulk { id: String, message: String },
    /// Not an outcome: the operation may still write. Run again later to settle it.
    #[error(
        "bulk operation {id}: still running after {seconds:.0} s; run again later to pick it up"
    )]
    BulkStillRunning { id: String, seconds: f64 },
}

/// Owners per read-back query: the API takes at most 250 ids, and 250 nodes with one metafield
/// each stay well under the 1000-point query limit.
pub const READ_BACK_PAGE: usize = 250;

/// Reads the current value and digest of `metafields` from the store (`None`: it holds none).
pub fn read_back(
    client: &mut AdminClient,
    metafields: &[MetafieldKey],
) -> Result<HashMap<MetafieldKey, Option<Stored>>, SyncError> {
    let mut groups: HashMap<(&str, &str), Vec<&MetafieldKey>> = HashMap::new();
    for m in metafields {
        groups
            .entry((m.namespace.as_str(), m.key.as_str()))
            .or_default()
            .push(m);
    }
    let mut found = HashMap::with_capacity(metafields.len());
    for ((namespace, key), members) in groups {
        for page in members.chunks(READ_BACK_PAGE) {
            let variables = read_metafields::Variables {
                ids: page.iter().map(|m| m.owner_id.clone()).collect(),
                namespace: namespace.to_string(),
                customer_key: key.to_string(),
                variant_key: key.to_string(),
            };
            let data = client.execute::<ops::ReadMetafields>("nodes", variables, Retry::Always)?;
            let mut values: HashMap<String, Option<Stored>> = HashMap::new();
            for node in data.nodes.into_iter().flatten() {
                use read_metafields::ReadMetafieldsNodes as On;
                let (id, metafield) = match node {
                    On::Customer(c) => (c.id, c.metafield.map(|m| (m.value, m.compare_digest))),
                    On::ProductVariant(v) => {
                        (v.id, v.metafield.map(|m| (m.value, m.compare_digest)))
                    }
                    _ => continue,
                };
                values.insert(
                    id,
                    metafield.map(|(value, digest)| Stored {
                        value,
                        digest: Some(digest),
                    }),
                );
            }
            for m in page {
                // An owner the store does not know holds no metafield either.
                let value = values.get(&m.owner_id).cloned().flatten();
                found.insert((*m).clone(), value);
            }
        }
    }
    Ok(found)
}

/// How often to ask a bulk operation for its status.
#[derive(Debug, Clone, Copy)]
pub struct Polling {
    pub first: Duration,
    pub max: Duration,
    /// Give up waiting after this long (the operation keeps running on the server).
    pub timeout: Duration,
}

impl Default for Polling {
    /// Shopify's guidance is to poll rather than hammer: start at half a second, back off to
    /// five, and give a large export a few hours.
    fn default() -> Polling {
        Polling {
            first: Duration::from_millis(500),
            max: Duration::from_secs(5),
            timeout: Duration::from_secs(6 * 3600),
        }
    }
}

/// A finished bulk operation.
#[derive(Debug, Clone)]
pub struct BulkFinished {
    pub id: String,
    pub status: bulk_operation_status::BulkOperationStatus,
    pub error_code: Option<String>,
    pub object_count: String,
    pub url: Option<String>,
    pub partial_data_url: Option<String>,
}

/// Polls the bulk operation `id` until it is no longer created or running.
pub fn wait_for_bulk(
    client: &mut AdminClient,
    id: &str,
    polling: Polling,
) -> Result<BulkFinished, SyncError> {
    use bulk_operation_status::BulkOperationStatus as S;
    let started = Instant::now();
    let mut interval = polling.first;
    loop {
        let data = client.execute::<ops::BulkOperationStatus>(
            "bulkOperation",
            bulk_operation_status::Variables { id: id.to_string() },
            Retry::Always,
        )?;
        let Some(op) = data.bulk_operation else {
            return Err(SyncError::Bulk {
                id: id.to_string(),
                message: "the store does not know this operation (results are kept 7 days)"
                    .to_string(),
            });
        };
        match op.status {
            S::CREATED | S::RUNNING | S::CANCELING => {}
            status => {
                return Ok(BulkFinished {
                    id: op.id,
                    status,
                    error_code: op.error_code.map(|c| format!("{c:?}")),
                    object_count: op.object_count,
                    url: op.url,
                    partial_data_url: op.partial_data_url,
                });
            }
        }
        if started.elapsed() > polling.timeout {
            return Err(SyncError::BulkStillRunning {
                id: id.to_string(),
                seconds: polling.timeout.as_secs_f64(),
            });
        }
        std::thread::sleep(interval);
        interval = (interval * 2).min(polling.max);
    }
}

/// Opens the state (default: next to the plan) and applies the plan in `plan_dir`.
pub fn apply_plan(
    client: &mut AdminClient,
    plan_dir: &std::path::Path,
    state_file: Option<&std::path::Path>,
    options: &apply::ApplyOptions,
) -> Result<apply::ApplyReport, SyncError> {
    let state_path = state_file.map_or_else(
        || plan_dir.join(state::STATE_FILE),
        std::path::Path::to_path_buf,
    );
    let shop = client.credentials().shop.clone();
    let mut state = state::State::open(&state_path, &shop)?;
    apply::apply(client, &mut state, plan_dir, options)
}

/// The report of an apply run, for people.
pub fn report_text(report: &apply::ApplyReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "plan: {} metafields, {} unchanged within tolerance, {} sent; {} written ({} by {} bulk operations)",
        report.planned,
        report.unchanged,
        report.changed,
        report.written,
        report.written_by_bulk,
        report.bulk_operations
    );
    if report.read_first > 0 {
        let _ = writeln!(
            out,
            "the state database knew no value and the store held some: {} read from the store \
             before writing (a new or lost state database)",
            report.read_first
        );
    }
    if report.recovered > 0 {
        let _ = writeln!(
            out,
            "recovered {} journaled writes of an interrupted run ({} had landed)",
            report.recovered, report.recovered_landed
        );
    }
    if report.redacted_not_written > 0 {
        let _ = writeln!(
            out,
            "{} values of redacted customers not written",
            report.redacted_not_written
        );
    }
    if report.redacted_purged > 0 {
        let _ = writeln!(
            out,
            "{} values of redacted customers that landed after the redaction deleted",
            report.redacted_purged
        );
    }
    let _ = writeln!(
        out,
        "deletions (opted out): {} planned, {} sent",
        report.deletions_planned, report.deletions_sent
    );
    let c = &report.client;
    let _ = writeln!(
        out,
        "API: {} requests, {:.0} cost points in {:.1} s; throttled {}, 5xx retries {}, connection retries {}, unknown outcomes read back {}",
        c.requests,
        report.points_spent,
        report.elapsed_seconds,
        c.throttled,
        c.retries_5xx,
        c.retries_connection,
        report.read_back
    );
    if report.rejected > 0 {
        let _ = writeln!(out, "{} values refused by the store:", report.rejected);
        for example in &report.rejection_examples {
            let _ = writeln!(out, "  {example}");
        }
    }
    out
}

/// Reads every marginwise metafield of the store back (customer profiles, variant data) through
/// bulk queries, which do not draw on the rate limit, as plan records.
pub fn read_store_metafields(
    client: &mut AdminClient,
    polling: Polling,
) -> Result<Vec<crate::plan::MetafieldsSetInput>, SyncError> {
    use marginwise_engine::format::{NAMESPACE, PROFILE_KEY, VARIANT_KEY};
    let queries = [
        format!(
            "{{ customers {{ edges {{ node {{ id metafield(namespace: \"{NAMESPACE}\", key: \"{PROFILE_KEY}\") {{ namespace key type value }} }} }} }} }}"
        ),
        format!(
            "{{ products {{ edges {{ node {{ id variants {{ edges {{ node {{ id metafield(namespace: \"{NAMESPACE}\", key: \"{VARIANT_KEY}\") {{ namespace key type value }} }} }} }} }} }} }} }}"
        ),
    ];
    #[derive(serde::Deserialize)]
    struct Line {
        id: String,
        metafield: Option<LineMetafield>,
    }
    #[derive(serde::Deserialize)]
    struct LineMetafield {
        namespace: String,
        key: String,
        #[serde(rename = "type")]
        kind: String,
        value: String,
    }
    let mut records = Vec::new();
    for query in queries {
        let data = client.execute::<ops::BulkOperationRunQuery>(
            "bulkOperationRunQuery",
            ops::bulk_operation_run_query::Variables {
                query,
                group_objects: false,
            },
            Retry::Always,
        )?;
        let payload = data
            .bulk_operation_run_query
            .ok_or_else(|| SyncError::Bulk {
                id: "(read-back)".to_string(),
                message: "bulkOperationRunQuery returned nothing".to_string(),
            })?;
        if let Some(error) = payload.user_errors.first() {
            return Err(SyncError::Bulk {
                id: "(read-back)".to_string(),
                message: error.message.clone(),
            });
        }
        let Some(operation) = payload.bulk_operation else {
            continue;
        };
        let finished = wait_for_bulk(client, &operation.id, polling)?;
        let Some(url) = finished.url else {
            continue;
        };
        let mut bytes = Vec::new();
        client.download(&url, &mut bytes)?;
        for (index, line) in bytes.split(|b| *b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let parsed: Line = serde_json::from_slice(line).map_err(|e| SyncError::Bulk {
                id: operation.id.clone(),
                message: format!("result line {}: {e}", index + 1),
            })?;
            if let Some(m) = parsed.metafield {
                records.push(crate::plan::MetafieldsSetInput {
                    owner_id: parsed.id,
                    namespace: m.namespace,
                    key: m.key,
                    kind: m.kind,
                    value: m.value,
                });
            }
        }
    }
    Ok(records)
}
