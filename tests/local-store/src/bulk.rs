//! Bulk operations and staged uploads.
//!
//! Behaviour from Shopify's bulk-operations guides and the 2026-04 reference:
//! - `bulkOperationRunQuery` runs in the background; the query must have a connection, at most
//!   five connections, nested at most two levels. The result is JSONL with one object per line;
//!   objects of a nested connection are lines of their own carrying `__parentId`. With
//!   `groupObjects: true` children directly follow their parent; without it (the default) the
//!   order is not promised, and the stand-in writes every parent first and the children after
//!   them, so a reader that silently relies on grouping fails here too.
//! - `bulkOperationRunMutation` runs the mutation once per line of a JSONL file uploaded through
//!   `stagedUploadsCreate` (resource `BULK_MUTATION_VARIABLES`), and its result has one line per
//!   input line: `{"data": ...}` or `{"errors": ...}` with a zero-based `__lineNumber`.
//! - Lifecycle CREATED -> RUNNING -> COMPLETED (or FAILED with `errorCode`, or CANCELED);
//!   `objectCount` and `rootObjectCount` count lines as they are written; `url` is null when
//!   there is nothing to download. Up to five operations at once (2026-01 and later).
//!
//! The stand-in keeps uploads and results in memory and serves them from its own port.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::exec::{self, Exec, Item, Prepared, connection_node_selection, count_connections};
use crate::out::Out;
use crate::state::{BulkHold, Shared, lock, now_rfc3339};

/// Largest staged upload accepted (the bulk mutation variables file limit).
pub const MAX_UPLOAD_BYTES: usize = 100 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpType {
    Query,
    Mutation,
}

impl OpType {
    fn name(self) -> &'static str {
        match self {
            OpType::Query => "QUERY",
            OpType::Mutation => "MUTATION",
        }
    }
}

#[derive(Debug, Clone)]
pub struct BulkOp {
    pub id: u64,
    pub op_type: OpType,
    pub status: &'static str,
    pub error_code: Option<&'static str>,
    pub created_at: String,
    pub completed_at: Option<String>,
    pub object_count: u64,
    pub root_object_count: u64,
    pub file_size: Option<u64>,
    pub url: Option<String>,
    pub partial_data_url: Option<String>,
    pub query: String,
    pub cancel_requested: bool,
}

#[derive(Debug, Default)]
pub struct BulkState {
    pub ops: Vec<BulkOp>,
    next_id: u64,
    next_upload: u64,
}

impl BulkState {
    fn active(&self) -> usize {
        self.ops
            .iter()
            .filter(|op| matches!(op.status, "CREATED" | "RUNNING" | "CANCELING"))
            .count()
    }
}

fn gid(id: u64) -> String {
    format!("gid://shopify/BulkOperation/{id}")
}

fn operation_json(op: &BulkOp) -> Value {
    json!({
        "__typename": "BulkOperation",
        "id": gid(op.id),
        "type": op.op_type.name(),
        "status": op.status,
        "errorCode": op.error_code,
        "createdAt": op.created_at,
        "completedAt": op.completed_at,
        "objectCount": op.object_count.to_string(),
        "rootObjectCount": op.root_object_count.to_string(),
        "fileSize": op.file_size.map(|n| n.to_string()),
        "url": op.url,
        "partialDataUrl": op.partial_data_url,
        "query": op.query,
    })
}

/// The shape of `BulkOperation`, for checking payload selections.
pub fn operation_template() -> Value {
    operation_json(&BulkOp {
        id: 0,
        op_type: OpType::Query,
        status: "CREATED",
        error_code: None,
        created_at: String::new(),
        completed_at: None,
        object_count: 0,
        root_object_count: 0,
        file_size: None,
        url: None,
        partial_data_url: None,
        query: String::new(),
        cancel_requested: false,
    })
}

/// The most recent operation of a type (`currentBulkOperation`).
pub fn current(shared: &Shared, op_type: &str) -> Option<Value> {
    let state = lock(&shared.bulk);
    state
        .ops
        .iter()
        .rev()
        .find(|op| op.op_type.name() == op_type)
        .map(operation_json)
}

pub fn get(shared: &Shared, wanted: &str) -> Option<Value> {
    let id = wanted
        .strip_prefix("gid://shopify/BulkOperation/")?
        .parse::<u64>()
        .ok()?;
    let state = lock(&shared.bulk);
    state.ops.iter().find(|op| op.id == id).map(operation_json)
}

/// `bulkOperations(query:)`, newest first unless `reverse`; filters `status:` and
/// `operation_type:` (the ones the stand-in knows).
pub fn list(shared: &Shared, filter: Option<&str>, reverse: bool) -> Result<Vec<Value>, String> {
    let mut status = None;
    let mut op_type = None;
    for term in filter.unwrap_or("").split_whitespace() {
        match term.split_once(':') {
            Some(("status", value)) => status = Some(value.to_ascii_uppercase()),
            Some(("operation_type", value)) => op_type = Some(value.to_ascii_uppercase()),
            _ => {
                return Err(format!(
                    "This local stand-in filters bulk operations only by status: and operation_type:, not `{term}`"
                ));
            }
        }
    }
    let state = lock(&shared.bulk);
    let mut ops: Vec<Value> = state
        .ops
        .iter()
        .rev()
        .filter(|op| status.as_deref().is_none_or(|s| op.status == s))
        .filter(|op| op_type.as_deref().is_none_or(|t| op.op_type.name() == t))
        .map(operation_json)
        .collect();
    if reverse {
        ops.reverse();
    }
    Ok(ops)
}

fn user_error(type_name: &str, field: &[&str], message: impl Into<String>, code: &str) -> Value {
    json!({
        "__typename": type_name,
        "field": field,
        "message": message.into(),
        "code": code,
    })
}

fn payload(type_name: &str, op: Option<Value>, errors: Vec<Value>) -> Value {
    json!({
        "__typename": type_name,
        "bulkOperation": op,
        "userErrors": errors,
    })
}

/// Registers a new operation unless the concurrency limit is reached.
fn create(shared: &Shared, op_type: OpType, query: &str, now: &str) -> Result<BulkOp, String> {
    let mut state = lock(&shared.bulk);
    if state.active() >= shared.max_bulk_operations {
        return Err(format!(
            "A maximum of {} bulk operations can run at the same time for this app and shop.",
            shared.max_bulk_operations
        ));
    }
    state.next_id += 1;
    let op = BulkOp {
        id: 4_100_000_000 + state.next_id,
        op_type,
        status: "CREATED",
        error_code: None,
        created_at: now.to_string(),
        completed_at: None,
        object_count: 0,
        root_object_count: 0,
        file_size: None,
        url: None,
        partial_data_url: None,
        query: query.to_string(),
        cancel_requested: false,
    };
    state.ops.push(op.clone());
    drop(state);
    lock(&shared.stats).bulk_operations += 1;
    Ok(op)
}

fn update(shared: &Shared, id: u64, change: impl FnOnce(&mut BulkOp)) {
    let mut state = lock(&shared.bulk);
    if let Some(op) = state.ops.iter_mut().find(|op| op.id == id) {
        change(op);
    }
}

fn cancel_requested(shared: &Shared, id: u64) -> bool {
    lock(&shared.bulk)
        .ops
        .iter()
        .any(|op| op.id == id && op.cancel_requested)
}

/// Waits while new operations are held in `state` (tests use this to see each state).
fn wait_while_held(shared: &Shared, state: BulkHold) {
    let mut hold = lock(&shared.bulk_hold);
    while *hold == state && !shared.shutdown.load(Ordering::SeqCst) {
        hold = shared
            .bulk_wakeup
            .wait_timeout(hold, Duration::from_millis(100))
            .map(|(guard, _)| guard)
            .unwrap_or_else(|poisoned| poisoned.into_inner().0);
    }
}

/// Collects result lines and publishes them as a file.
struct ResultFile {
    bytes: Vec<u8>,
    objects: u64,
    roots: u64,
}

impl ResultFile {
    fn push(&mut self, line: &Out, root: bool) {
        self.bytes
            .extend_from_slice(line.to_jsonl_line().as_bytes());
        self.bytes.push(b'\n');
        self.objects += 1;
        self.roots += u64::from(root);
    }
}

fn publish(shared: &Shared, id: u64, suffix: &str, bytes: Vec<u8>) -> String {
    let path = format!("/_bulk/{id}{suffix}.jsonl");
    lock(&shared.files).insert(path.clone(), Arc::new(bytes));
    format!("{}{path}", shared.base_url)
}

/// Ends an operation: COMPLETED, FAILED (with partial data) or CANCELED.
fn finish(shared: &Shared, id: u64, result: ResultFile, outcome: Outcome) {
    let size = result.bytes.len() as u64;
    let objects = result.objects;
    let roots = result.roots;
    let url = match outcome {
        Outcome::Completed if objects > 0 => Some(publish(shared, id, "", result.bytes)),
        Outcome::Failed if objects > 0 => Some(publish(shared, id, "-partial", result.bytes)),
        _ => None,
    };
    update(shared, id, |op| {
        op.object_count = objects;
        op.root_object_count = roots;
        op.completed_at = Some(now_rfc3339());
        match outcome {
            Outcome::Completed => {
                op.status = "COMPLETED";
                op.file_size = url.as_ref().map(|_| size);
                op.url = url;
            }
            Outcome::Failed => {
                op.status = "FAILED";
                op.error_code = Some("INTERNAL_SERVER_ERROR");
                op.partial_data_url = url;
            }
            Outcome::Canceled => op.status = "CANCELED",
        }
    });
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Completed,
    Failed,
    Canceled,
}

/// `bulkOperationRunQuery`.
pub fn run_query(shared: &Arc<Shared>, query: &str, group_objects: bool, now: &str) -> Value {
    const TYPE: &str = "BulkOperationRunQueryPayload";
    const ERROR: &str = "BulkOperationUserError";
    let invalid = |message: String| {
        payload(
            TYPE,
            None,
            vec![user_error(ERROR, &["query"], message, "INVALID")],
        )
    };
    let prepared = match exec::prepare(query, None, None) {
        Ok(prepared) if prepared.kind == exec::OpKind::Query => prepared,
        Ok(_) => return invalid("Bulk queries must be queries, not mutations.".to_string()),
        Err(error) => return invalid(format!("Invalid bulk query: {}", error.message)),
    };
    let Some(selection) = prepared.root_selection() else {
        return invalid("Invalid bulk query: no selection.".to_string());
    };
    let roots = prepared.fields_for(selection, "QueryRoot");
    let root = match roots.as_slice() {
        [root] if matches!(root.name.as_str(), "customers" | "products" | "orders") => *root,
        _ => {
            return invalid(
                "Bulk queries must contain at least one connection; this local stand-in serves exactly one root connection: customers, products or orders.".to_string(),
            );
        }
    };
    if count_connections(&prepared, selection) > 5 {
        return invalid("Bulk queries cannot contain more than 5 connections.".to_string());
    }
    if connection_node_selection(&prepared, root).is_none() {
        return invalid(
            "Bulk query connections must select `edges { node { ... } }` or `nodes`.".to_string(),
        );
    }
    // Validate before accepting: the filter and sort arguments, then the selection against the
    // first object (seed lines of one type share their fields).
    {
        let mut check = Exec::new(shared, &prepared, now.to_string());
        check.bulk_children = Some(Vec::new());
        let path = vec![root.name.clone()];
        let items = check.root_items(root, &path);
        if let (Some(first), Some(node_selection)) = (
            items.as_ref().and_then(|items| items.first().cloned()),
            connection_node_selection(&prepared, root),
        ) {
            check.bulk_level = 1;
            let _ = check.project(&first, node_selection, &path, root);
            for pending in check.bulk_children.take().unwrap_or_default() {
                if let (Some(child), Some(child_selection)) = (
                    pending.items.first(),
                    connection_node_selection(&prepared, pending.field),
                ) {
                    check.bulk_level = 2;
                    check.bulk_children = Some(Vec::new());
                    let _ = check.project(child, child_selection, &path, pending.field);
                }
            }
        }
        if let Some(error) = check.errors.first() {
            return invalid(format!("Invalid bulk query: {}", error.message));
        }
    }
    let op = match create(shared, OpType::Query, query, now) {
        Ok(op) => op,
        Err(message) => {
            return payload(
                TYPE,
                None,
                vec![user_error(ERROR, &[], message, "LIMIT_REACHED")],
            );
        }
    };
    let op_json = operation_json(&op);
    let shared = Arc::clone(shared);
    let id = op.id;
    let fail_after = lock(&shared.faults).faults.bulk_fail_after;
    thread::spawn(move || {
        wait_while_held(&shared, BulkHold::Created);
        update(&shared, id, |op| op.status = "RUNNING");
        wait_while_held(&shared, BulkHold::Running);
        let outcome = run_query_lines(&shared, &prepared, id, group_objects, fail_after);
        finish(&shared, id, outcome.1, outcome.0);
    });
    payload(TYPE, Some(op_json), Vec::new())
}

fn run_query_lines(
    shared: &Arc<Shared>,
    prepared: &Prepared,
    id: u64,
    group_objects: bool,
    fail_after: Option<u64>,
) -> (Outcome, ResultFile) {
    let mut file = ResultFile {
        bytes: Vec::new(),
        objects: 0,
        roots: 0,
    };
    let mut deferred: Vec<Out> = Vec::new();
    let Some(selection) = prepared.root_selection() else {
        return (Outcome::Failed, file);
    };
    let roots = prepared.fields_for(selection, "QueryRoot");
    let (Some(root), Some(node_selection)) = (
        roots.first(),
        roots
            .first()
            .and_then(|root| connection_node_selection(prepared, root)),
    ) else {
        return (Outcome::Failed, file);
    };
    let mut exec = Exec::new(shared, prepared, now_rfc3339());
    let path = vec![root.name.clone()];
    let items = exec.root_items(root, &path).unwrap_or_default();
    let failing = |file: &ResultFile| fail_after.is_some_and(|n| file.objects >= n);
    for (count, item) in items.iter().enumerate() {
        if count % 256 == 0 {
            if cancel_requested(shared, id) || shared.shutdown.load(Ordering::SeqCst) {
                return (Outcome::Canceled, file);
            }
            let (objects, roots) = (file.objects, file.roots);
            update(shared, id, |op| {
                op.object_count = objects;
                op.root_object_count = roots;
            });
        }
        exec.bulk_children = Some(Vec::new());
        exec.bulk_level = 1;
        let line = exec.project(item, node_selection, &path, root);
        let parent_gid = item_gid(shared, item);
        file.push(&line, true);
        if failing(&file) {
            return (Outcome::Failed, file);
        }
        for pending in exec.bulk_children.take().unwrap_or_default() {
            let Some(child_selection) = connection_node_selection(prepared, pending.field) else {
                continue;
            };
            for child in &pending.items {
                exec.bulk_children = Some(Vec::new());
                exec.bulk_level = 2;
                let mut child_line = exec.project(child, child_selection, &path, pending.field);
                if let Out::Obj(fields) = &mut child_line {
                    fields.push((
                        "__parentId".to_string(),
                        Out::str(
                            parent_gid
                                .clone()
                                .unwrap_or_else(|| pending.parent_gid.clone()),
                        ),
                    ));
                }
                if group_objects {
                    file.push(&child_line, false);
                    if failing(&file) {
                        return (Outcome::Failed, file);
                    }
                } else {
                    deferred.push(child_line);
                }
            }
        }
    }
    for line in deferred {
        file.push(&line, false);
        if failing(&file) {
            return (Outcome::Failed, file);
        }
    }
    (Outcome::Completed, file)
}

fn item_gid(shared: &Shared, item: &Item) -> Option<String> {
    match item {
        Item::Node(index) => shared.data.node(*index).map(|node| node.gid.clone()),
        Item::Json(value) => value.get("id").and_then(|v| v.as_str()).map(str::to_string),
    }
}

/// `bulkOperationRunMutation`.
pub fn run_mutation(
    shared: &Arc<Shared>,
    mutation: &str,
    staged_upload_path: &str,
    _client_identifier: Option<String>,
    now: &str,
) -> Value {
    const TYPE: &str = "BulkOperationRunMutationPayload";
    const ERROR: &str = "BulkMutationUserError";
    let fail = |field: &str, message: String, code: &str| {
        payload(TYPE, None, vec![user_error(ERROR, &[field], message, code)])
    };
    let mut prepared = match exec::prepare(mutation, None, None) {
        Ok(prepared) if prepared.kind == exec::OpKind::Mutation => prepared,
        Ok(_) => {
            return fail(
                "mutation",
                "The mutation must be a mutation operation.".to_string(),
                "INVALID_MUTATION",
            );
        }
        Err(error) => {
            return fail(
                "mutation",
                format!("Invalid mutation: {}", error.message),
                "INVALID_MUTATION",
            );
        }
    };
    let roots: Vec<String> = prepared
        .root_selection()
        .map(|selection| {
            prepared
                .fields_for(selection, "Mutation")
                .iter()
                .map(|f| f.name.clone())
                .collect()
        })
        .unwrap_or_default();
    if !matches!(roots.as_slice(), [one] if one == "metafieldsSet" || one == "metafieldsDelete") {
        return fail(
            "mutation",
            "This local stand-in runs exactly one metafieldsSet or metafieldsDelete per bulk mutation.".to_string(),
            "INVALID_MUTATION",
        );
    }
    let Some(bytes) = lock(&shared.files).get(staged_upload_path).cloned() else {
        return fail(
            "stagedUploadPath",
            "The JSONL file could not be found. Try uploading the file again.".to_string(),
            "NO_SUCH_FILE",
        );
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return fail(
            "stagedUploadPath",
            "The JSONL file is not UTF-8.".to_string(),
            "INVALID_STAGED_UPLOAD_FILE",
        );
    };
    let mut lines = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(vars)) => lines.push(vars),
            _ => {
                return fail(
                    "stagedUploadPath",
                    format!("Line {} of the JSONL file is not a JSON object.", index + 1),
                    "INVALID_STAGED_UPLOAD_FILE",
                );
            }
        }
    }
    let op = match create(shared, OpType::Mutation, mutation, now) {
        Ok(op) => op,
        Err(message) => return fail("mutation", message, "LIMIT_REACHED"),
    };
    let op_json = operation_json(&op);
    let shared = Arc::clone(shared);
    let id = op.id;
    let fail_after = lock(&shared.faults).faults.bulk_fail_after;
    thread::spawn(move || {
        wait_while_held(&shared, BulkHold::Created);
        update(&shared, id, |op| op.status = "RUNNING");
        wait_while_held(&shared, BulkHold::Running);
        let mut file = ResultFile {
            bytes: Vec::new(),
            objects: 0,
            roots: 0,
        };
        let mut outcome = Outcome::Completed;
        for (line_number, vars) in lines.into_iter().enumerate() {
            if line_number % 64 == 0 {
                if cancel_requested(&shared, id) || shared.shutdown.load(Ordering::SeqCst) {
                    outcome = Outcome::Canceled;
                    break;
                }
                let objects = file.objects;
                update(&shared, id, |op| {
                    op.object_count = objects;
                    op.root_object_count = objects;
                });
            }
            if fail_after.is_some_and(|n| file.objects >= n) {
                outcome = Outcome::Failed;
                break;
            }
            prepared.vars = vars;
            let mut exec = Exec::new(&shared, &prepared, now_rfc3339());
            let data = exec.run();
            let mut fields = Vec::new();
            if !exec.errors.is_empty() {
                fields.push((
                    "errors".to_string(),
                    Out::List(exec.errors.iter().map(|e| e.to_out()).collect()),
                ));
            }
            if exec.errors.is_empty() || exec.side_effects {
                fields.push(("data".to_string(), data));
            }
            fields.push(("__lineNumber".to_string(), Out::Int(line_number as i64)));
            file.push(&Out::Obj(fields), true);
        }
        finish(&shared, id, file, outcome);
    });
    payload(TYPE, Some(op_json), Vec::new())
}

/// `bulkOperationCancel`.
pub fn cancel(shared: &Shared, id: &str) -> Value {
    const TYPE: &str = "BulkOperationCancelPayload";
    let number = id
        .strip_prefix("gid://shopify/BulkOperation/")
        .and_then(|n| n.parse::<u64>().ok());
    let mut state = lock(&shared.bulk);
    let Some(op) = state.ops.iter_mut().find(|op| Some(op.id) == number) else {
        return json!({"__typename": TYPE, "bulkOperation": null, "userErrors": [
            {"__typename": "UserError", "field": ["id"], "message": "Bulk operation does not exist"}
        ]});
    };
    if !matches!(op.status, "CREATED" | "RUNNING") {
        let message = format!(
            "A bulk operation cannot be canceled when it is {}",
            op.status.to_lowercase()
        );
        let op_json = operation_json(op);
        return json!({"__typename": TYPE, "bulkOperation": op_json, "userErrors": [
            {"__typename": "UserError", "field": null, "message": message}
        ]});
    }
    op.cancel_requested = true;
    op.status = "CANCELING";
    let op_json = operation_json(op);
    drop(state);
    // A held operation must see the cancel too.
    shared.bulk_wakeup.notify_all();
    json!({"__typename": TYPE, "bulkOperation": op_json, "userErrors": []})
}

/// The signature a staged upload's form must carry (it stands in for Shopify's signed policy).
pub fn upload_signature(shared: &Shared, key: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(shared.token.as_bytes());
    hasher.update([0]);
    hasher.update(key.as_bytes());
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `stagedUploadsCreate`: targets on this server for `BULK_MUTATION_VARIABLES`.
pub fn staged_uploads_create(shared: &Shared, inputs: &[Value]) -> Value {
    const TYPE: &str = "StagedUploadsCreatePayload";
    let mut targets = Vec::new();
    let mut errors = Vec::new();
    for (index, input) in inputs.iter().enumerate() {
        let text = |name: &str| input.get(name).and_then(|v| v.as_str()).map(str::to_string);
        let resource = text("resource").unwrap_or_default();
        if resource != "BULK_MUTATION_VARIABLES" {
            errors.push(json!({"__typename": "UserError", "field": ["input", index.to_string(), "resource"],
                "message": format!("This local stand-in (not Shopify) stages only BULK_MUTATION_VARIABLES uploads, not `{resource}`")}));
            continue;
        }
        let (Some(filename), Some(mime_type)) = (text("filename"), text("mimeType")) else {
            errors.push(
                json!({"__typename": "UserError", "field": ["input", index.to_string()],
                "message": "filename and mimeType are required"}),
            );
            continue;
        };
        let method = text("httpMethod").unwrap_or_else(|| "PUT".to_string());
        let upload = {
            let mut state = lock(&shared.bulk);
            state.next_upload += 1;
            state.next_upload
        };
        let key = format!("tmp/{}/bulk/{upload:016x}/{filename}", shared.app_id);
        let signature = upload_signature(shared, &key);
        let target = if method == "POST" {
            json!({
                "__typename": "StagedMediaUploadTarget",
                "url": format!("{}/_staged/", shared.base_url),
                "resourceUrl": null,
                "parameters": [
                    {"__typename": "StagedUploadParameter", "name": "key", "value": key},
                    {"__typename": "StagedUploadParameter", "name": "Content-Type", "value": mime_type},
                    {"__typename": "StagedUploadParameter", "name": "success_action_status", "value": "201"},
                    {"__typename": "StagedUploadParameter", "name": "acl", "value": "private"},
                    {"__typename": "StagedUploadParameter", "name": "x-goog-signature", "value": signature},
                ],
            })
        } else {
            json!({
                "__typename": "StagedMediaUploadTarget",
                "url": format!("{}/_staged/{key}?signature={signature}", shared.base_url),
                "resourceUrl": null,
                "parameters": [
                    {"__typename": "StagedUploadParameter", "name": "content_type", "value": mime_type},
                    {"__typename": "StagedUploadParameter", "name": "acl", "value": "private"},
                ],
            })
        };
        targets.push(target);
    }
    json!({"__typename": TYPE, "stagedTargets": targets, "userErrors": errors})
}

/// One part of a `multipart/form-data` body.
pub struct FormPart<'b> {
    pub name: String,
    pub body: &'b [u8],
}

/// Splits a `multipart/form-data` body (RFC 7578) into its named parts; part headers are parsed
/// with `httparse`.
pub fn parse_multipart<'b>(body: &'b [u8], boundary: &str) -> Result<Vec<FormPart<'b>>, String> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut parts = Vec::new();
    let mut rest = body;
    let start = find(rest, delimiter).ok_or("no multipart boundary in the body")?;
    rest = rest.get(start + delimiter.len()..).unwrap_or_default();
    loop {
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        rest = rest
            .strip_prefix(b"\r\n")
            .ok_or("a boundary line does not end in CRLF")?;
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let (header_len, headers) = match httparse::parse_headers(rest, &mut headers) {
            Ok(httparse::Status::Complete((len, headers))) => (len, headers),
            _ => return Err("a part's headers are malformed".to_string()),
        };
        let disposition = headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-disposition"))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .ok_or("a part has no Content-Disposition")?;
        let name = disposition
            .split(';')
            .filter_map(|p| p.trim().strip_prefix("name="))
            .next()
            .map(|n| n.trim_matches('"').to_string())
            .ok_or("a part has no name")?;
        rest = rest.get(header_len..).unwrap_or_default();
        let mut end_marker = b"\r\n".to_vec();
        end_marker.extend_from_slice(delimiter);
        let end = find(rest, &end_marker).ok_or("a part is not closed by a boundary")?;
        parts.push(FormPart {
            name,
            body: rest.get(..end).unwrap_or_default(),
        });
        rest = rest.get(end + end_marker.len()..).unwrap_or_default();
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Stores an upload under its key, after checking the signature.
pub fn store_upload(
    shared: &Shared,
    key: &str,
    signature: &str,
    bytes: Vec<u8>,
) -> Result<(), (u16, String)> {
    if signature != upload_signature(shared, key) {
        return Err((403, "SignatureDoesNotMatch".to_string()));
    }
    if bytes.len() > MAX_UPLOAD_BYTES {
        return Err((400, "EntityTooLarge".to_string()));
    }
    lock(&shared.files).insert(key.to_string(), Arc::new(bytes));
    lock(&shared.stats).staged_uploads += 1;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn multipart_parts_are_split_at_the_boundary() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\ntmp/1/a.jsonl\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jsonl\"\r\nContent-Type: text/jsonl\r\n\r\n{\"a\":1}\n{\"a\":2}\n\r\n--XyZ--\r\n";
        let parts = parse_multipart(body, "XyZ").unwrap();
        let names: Vec<&str> = parts.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["key", "file"]);
        assert_eq!(parts[0].body, b"tmp/1/a.jsonl");
        assert_eq!(parts[1].body, b"{\"a\":1}\n{\"a\":2}\n");
    }
}
