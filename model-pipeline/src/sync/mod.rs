//! Talking to a store: exporting its history through bulk queries ([`export`]) and applying a
//! metafield plan to it ([`apply`]), with the write-back state in [`state`] and the change
//! tolerance in [`diff`].
//!
//! This module holds what both directions share: reading metafields back, and waiting for a bulk
//! operation to finish.

pub mod apply;
pub mod diff;
pub mod export;
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
            return Err(SyncError::Bulk {
                id: id.to_string(),
                message: format!(
                    "still running after {:.0} s; run again later to pick it up",
                    polling.timeout.as_secs_f64()
                ),
            });
        }
        std::thread::sleep(interval);
        interval = (interval * 2).min(polling.max);
    }
}
