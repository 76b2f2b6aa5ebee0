//! Exporting a store's history: one `bulkOperationRunQuery` per file the ingest reads
//! (customers, products with variants and unit costs, orders with line items), run at the same
//! time (a shop allows five), polled, and streamed into the input folder.
//!
//! The queries are the shapes documented at the top of `ingest`; the orders export runs with
//! `groupObjects: true` because the ingest folds an order as soon as its last line item is read.
//! A file is written under a temporary name and renamed when complete, so an interrupted export
//! never leaves a truncated file that looks whole.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::admin::ops::{self, bulk_operation_run_query};
use crate::admin::{AdminClient, Retry};
use crate::ingest::{CUSTOMERS_FILE, ORDERS_FILE, PRODUCTS_FILE};

use super::{Polling, SyncError, wait_for_bulk};

/// (file, bulk query, groupObjects) of every export.
pub const EXPORTS: [(&str, &str, bool); 3] = [
    (
        CUSTOMERS_FILE,
        include_str!("../../graphql/export/customers.graphql"),
        false,
    ),
    (
        PRODUCTS_FILE,
        include_str!("../../graphql/export/products.graphql"),
        false,
    ),
    (
        ORDERS_FILE,
        include_str!("../../graphql/export/orders.graphql"),
        true,
    ),
];

/// One exported file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportedFile {
    pub file: String,
    pub operation_id: String,
    pub objects: String,
    pub bytes: u64,
}

/// Runs the three exports into `out_dir`.
pub fn export(
    client: &mut AdminClient,
    out_dir: &Path,
    polling: Polling,
) -> Result<Vec<ExportedFile>, SyncError> {
    std::fs::create_dir_all(out_dir).map_err(|source| SyncError::Io {
        file: out_dir.display().to_string(),
        source,
    })?;
    let mut started = Vec::new();
    for (file, query, group_objects) in EXPORTS {
        let data = client.execute::<ops::BulkOperationRunQuery>(
            "bulkOperationRunQuery",
            bulk_operation_run_query::Variables {
                query: query.to_string(),
                group_objects,
            },
            // A repeated start only starts a second export of the same data.
            Retry::Always,
        )?;
        let payload = data
            .bulk_operation_run_query
            .ok_or_else(|| SyncError::Bulk {
                id: format!("({file})"),
                message: "bulkOperationRunQuery returned nothing".to_string(),
            })?;
        if let Some(error) = payload.user_errors.first() {
            return Err(SyncError::Bulk {
                id: format!("({file})"),
                message: format!(
                    "bulkOperationRunQuery: {} ({:?})",
                    error.message, error.code
                ),
            });
        }
        let operation = payload.bulk_operation.ok_or_else(|| SyncError::Bulk {
            id: format!("({file})"),
            message: "bulkOperationRunQuery started no operation".to_string(),
        })?;
        started.push((file, operation.id));
    }
    let mut exported = Vec::new();
    for (file, id) in started {
        let finished = wait_for_bulk(client, &id, polling)?;
        if finished.status != ops::bulk_operation_status::BulkOperationStatus::COMPLETED {
            return Err(SyncError::Bulk {
                id,
                message: format!(
                    "ended {:?} (error code {}) while exporting {file}",
                    finished.status,
                    finished.error_code.as_deref().unwrap_or("none")
                ),
            });
        }
        let path = out_dir.join(file);
        let partial = out_dir.join(format!("{file}.part"));
        let io = |source| SyncError::Io {
            file: partial.display().to_string(),
            source,
        };
        let mut out = BufWriter::new(File::create(&partial).map_err(io)?);
        // No url: the query matched nothing, and the file is empty.
        let bytes = match &finished.url {
            Some(url) => client.download(url, &mut out)?,
            None => 0,
        };
        out.flush().map_err(io)?;
        // On disk before the rename makes it the export's file.
        out.get_ref().sync_all().map_err(io)?;
        drop(out);
        // Under the folder's lock: a redaction rewriting the old file (the privacy webhook
        // serves export folders) renames its copy before this, never over the new file.
        let lock = crate::folder_lock::lock(out_dir).map_err(|source| SyncError::Io {
            file: out_dir.display().to_string(),
            source,
        })?;
        std::fs::rename(&partial, &path).map_err(|source| SyncError::Io {
            file: path.display().to_string(),
            source,
        })?;
        drop(lock);
        exported.push(ExportedFile {
            file: file.to_string(),
            operation_id: id,
            objects: finished.object_count,
            bytes,
        });
    }
    Ok(exported)
}
