//! The HTTP/1.1 side: one thread per connection, keep-alive, `Content-Length` and chunked
//! bodies, `Expect: 100-continue`. Request heads are parsed by `httparse`; the server owns the
//! socket so that a fault can close it at an exact point (before reading, or after a write was
//! applied and before any answer).
//!
//! Routes:
//! - `POST /admin/api/2026-04/graphql.json`: the Admin GraphQL subset (token checked).
//! - `POST /admin/oauth/access_token`: the grants ([`crate::oauth`]).
//! - `GET /admin/oauth/authorize`: the merchant's approval, given at once ([`crate::oauth`]).
//! - `POST /_staged/` (multipart form) and `PUT /_staged/<key>`: staged upload targets.
//! - `GET /_bulk/<id>.jsonl`: bulk operation results.
//! - `POST /_control`, `GET /_control`, `GET /_control/stats`, `GET /_control/writes`,
//!   `GET /_control/metafields`: faults, throttle settings and counters for tests.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};

use crate::bulk;
use crate::cost::{self, MAX_QUERY_COST, MUTATION_COST, default_maximum};
use crate::exec::{self, Exec, OpKind};
use crate::oauth::{AUTHORIZE_PATH, Approval, TOKEN_PATH};
use crate::out::Out;
use crate::state::{BulkHold, Faults, Shared, lock, now_rfc3339};

/// The one API version served.
pub const GRAPHQL_PATH: &str = "/admin/api/2026-04/graphql.json";
const MAX_HEAD_BYTES: usize = 64 * 1024;
const MAX_BODY_BYTES: usize = bulk::MAX_UPLOAD_BYTES + 1024 * 1024;
/// Idle keep-alive connections are closed after this long.
const IDLE_LIMIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(200);

pub struct HttpRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct HttpResponse {
    status: u16,
    content_type: &'static str,
    /// A redirect's `Location`.
    location: Option<String>,
    body: Vec<u8>,
}

impl HttpResponse {
    fn json(status: u16, body: String) -> HttpResponse {
        HttpResponse {
            status,
            content_type: "application/json; charset=utf-8",
            location: None,
            body: body.into_bytes(),
        }
    }

    fn text(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            content_type: "text/plain; charset=utf-8",
            location: None,
            body: body.as_bytes().to_vec(),
        }
    }
}

/// What to do with a request.
pub enum Reply {
    Respond(HttpResponse),
    /// Close the connection without an answer.
    Drop,
    /// Wait, then answer.
    Late(Duration, HttpResponse),
}

/// Accepts connections until shutdown.
pub fn serve(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.shutdown.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let shared = Arc::clone(&shared);
        thread::spawn(move || {
            let _ = handle_connection(stream, &shared);
        });
    }
}

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Reads more bytes; `Ok(false)` on end of stream. Gives up after `limit` without data.
    fn fill(&mut self, shared: &Shared, limit: Duration) -> io::Result<bool> {
        let started = Instant::now();
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.buf
                        .extend_from_slice(chunk.get(..n).unwrap_or_default());
                    return Ok(true);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if shared.shutdown.load(Ordering::SeqCst) || started.elapsed() > limit {
                        return Ok(false);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Makes sure `n` bytes are buffered.
    fn need(&mut self, shared: &Shared, n: usize) -> io::Result<bool> {
        while self.buf.len() < n {
            if !self.fill(shared, Duration::from_secs(30))? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn line_end(&self, from: usize) -> Option<usize> {
        self.buf
            .get(from..)?
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|p| p + from)
    }
}

fn handle_connection(stream: TcpStream, shared: &Arc<Shared>) -> io::Result<()> {
    stream.set_read_timeout(Some(POLL))?;
    stream.set_nodelay(true)?;
    let mut conn = Conn {
        stream,
        buf: Vec::new(),
    };
    loop {
        let Some(request) = read_request(&mut conn, shared)? else {
            return Ok(());
        };
        let close = request
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        match route(shared, request) {
            Reply::Drop => {
                let _ = conn.stream.shutdown(Shutdown::Both);
                return Ok(());
            }
            Reply::Respond(response) => write_response(&mut conn.stream, &response, close)?,
            Reply::Late(delay, response) => {
                thread::sleep(delay);
                write_response(&mut conn.stream, &response, close)?;
            }
        }
        if close {
            return Ok(());
        }
    }
}

fn read_request(conn: &mut Conn, shared: &Shared) -> io::Result<Option<HttpRequest>> {
    // The head.
    let head_end = loop {
        if let Some(end) = conn.buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        if conn.buf.len() > MAX_HEAD_BYTES {
            return Ok(None);
        }
        let limit = if conn.buf.is_empty() {
            IDLE_LIMIT
        } else {
            Duration::from_secs(30)
        };
        if !conn.fill(shared, limit)? {
            return Ok(None);
        }
    };
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut headers);
    let head = conn.buf.get(..head_end).unwrap_or_default();
    if !matches!(parsed.parse(head), Ok(httparse::Status::Complete(_))) {
        let _ = write_response(
            &mut conn.stream,
            &HttpResponse::text(400, "Bad Request"),
            true,
        );
        return Ok(None);
    }
    let method = parsed.method.unwrap_or("").to_string();
    let target = parsed.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (path, query) = (path.to_string(), query.to_string());
    let headers: Vec<(String, String)> = parsed
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    conn.buf.drain(..head_end);
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    };
    if find("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        conn.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let chunked =
        find("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        match read_chunked(conn, shared)? {
            Some(body) => body,
            None => return Ok(None),
        }
    } else {
        let length = match find("content-length").map(|v| v.parse::<usize>()) {
            None => 0,
            Some(Ok(n)) if n <= MAX_BODY_BYTES => n,
            Some(_) => {
                let _ = write_response(
                    &mut conn.stream,
                    &HttpResponse::text(413, "Payload Too Large"),
                    true,
                );
                return Ok(None);
            }
        };
        if !conn.need(shared, length)? {
            return Ok(None);
        }
        conn.buf.drain(..length).collect()
    };
    Ok(Some(HttpRequest {
        method,
        path,
        query,
        headers,
        body,
    }))
}

fn read_chunked(conn: &mut Conn, shared: &Shared) -> io::Result<Option<Vec<u8>>> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(end) = conn.line_end(0) {
                break end;
            }
            if !conn.fill(shared, Duration::from_secs(30))? {
                return Ok(None);
            }
        };
        let size_text =
            String::from_utf8_lossy(conn.buf.get(..line_end).unwrap_or_default()).into_owned();
        let size_text = size_text.split(';').next().unwrap_or("").trim().to_string();
        let Ok(size) = usize::from_str_radix(&size_text, 16) else {
            return Ok(None);
        };
        conn.buf.drain(..line_end + 2);
        if size == 0 {
            // Trailers end with an empty line.
            loop {
                let end = loop {
                    if let Some(end) = conn.line_end(0) {
                        break end;
                    }
                    if !conn.fill(shared, Duration::from_secs(30))? {
                        return Ok(None);
                    }
                };
                conn.buf.drain(..end + 2);
                if end == 0 {
                    return Ok(Some(body));
                }
            }
        }
        if body.len() + size > MAX_BODY_BYTES || !conn.need(shared, size + 2)? {
            return Ok(None);
        }
        body.extend(conn.buf.drain(..size));
        conn.buf.drain(..2);
    }
}

fn write_response(stream: &mut TcpStream, response: &HttpResponse, close: bool) -> io::Result<()> {
    let reason = match response.status {
        200 => "OK",
        201 => "Created",
        302 => "Found",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    };
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nServer: local-store (a local stand-in for the Shopify Admin API, not Shopify)\r\n",
        response.status,
        response.content_type,
        response.body.len()
    );
    if let Some(location) = &response.location {
        head.push_str(&format!("Location: {location}\r\n"));
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(&response.body)?;
    stream.flush()
}

fn route(shared: &Arc<Shared>, request: HttpRequest) -> Reply {
    let method = request.method.as_str();
    let path = request.path.as_str();
    match (method, path) {
        ("POST", GRAPHQL_PATH) => graphql(shared, &request),
        (_, GRAPHQL_PATH) => Reply::Respond(HttpResponse::text(405, "Method Not Allowed")),
        ("POST", TOKEN_PATH) => Reply::Respond(access_token(shared, &request)),
        ("GET", AUTHORIZE_PATH) => Reply::Respond(authorize(shared, &request)),
        (_, TOKEN_PATH) => Reply::Respond(HttpResponse::text(405, "Method Not Allowed")),
        ("POST", "/_staged/") => Reply::Respond(upload_form(shared, &request)),
        ("PUT", _) if path.starts_with("/_staged/") => Reply::Respond(upload_put(shared, &request)),
        ("GET", _) if path.starts_with("/_bulk/") => {
            let file = lock(&shared.files).get(path).cloned();
            Reply::Respond(match file {
                Some(bytes) => HttpResponse {
                    status: 200,
                    content_type: "application/jsonl",
                    location: None,
                    body: bytes.as_ref().clone(),
                },
                None => HttpResponse::text(404, "Not Found"),
            })
        }
        ("POST", "/_control") => Reply::Respond(control(shared, &request.body)),
        ("GET", "/_control") => Reply::Respond(control(shared, b"{}")),
        ("GET", "/_control/stats") => Reply::Respond(HttpResponse::json(
            200,
            serde_json::to_string(&shared.stats()).unwrap_or_default(),
        )),
        ("GET", "/_control/writes") => {
            let counts = lock(&shared.metafields).write_counts();
            Reply::Respond(HttpResponse::json(
                200,
                serde_json::to_string(&counts).unwrap_or_default(),
            ))
        }
        ("GET", "/_control/metafields") => {
            let records = lock(&shared.metafields).all();
            let mut body = String::new();
            for record in records {
                body.push_str(&serde_json::to_string(&record).unwrap_or_default());
                body.push('\n');
            }
            Reply::Respond(HttpResponse {
                status: 200,
                content_type: "application/jsonl",
                location: None,
                body: body.into_bytes(),
            })
        }
        _ => Reply::Respond(HttpResponse::text(404, "Not Found")),
    }
}

#[derive(Debug, Deserialize)]
struct GraphqlBody {
    query: Option<String>,
    variables: Option<Value>,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
}

fn cost_extension(shared: &Shared, requested: u64, actual: Option<u64>) -> Out {
    let status = lock(&shared.bucket).status(Instant::now());
    Out::obj(vec![(
        "cost",
        Out::obj(vec![
            ("requestedQueryCost", Out::Int(requested as i64)),
            (
                "actualQueryCost",
                actual.map_or(Out::Null, |a| Out::Int(a as i64)),
            ),
            (
                "throttleStatus",
                Out::obj(vec![
                    ("maximumAvailable", Out::Float(status.maximum_available)),
                    (
                        "currentlyAvailable",
                        Out::Int(status.currently_available as i64),
                    ),
                    ("restoreRate", Out::Float(status.restore_rate)),
                ]),
            ),
        ]),
    )])
}

fn graphql_answer(errors: Vec<Out>, data: Option<Out>, extensions: Out) -> HttpResponse {
    let mut fields = Vec::new();
    if !errors.is_empty() {
        fields.push(("errors".to_string(), Out::List(errors)));
    }
    if let Some(data) = data {
        fields.push(("data".to_string(), data));
    }
    fields.push(("extensions".to_string(), extensions));
    HttpResponse::json(200, Out::Obj(fields).to_json())
}

/// `POST /admin/oauth/access_token`: the grants.
fn access_token(shared: &Shared, request: &HttpRequest) -> HttpResponse {
    let answer = lock(&shared.grants).exchange(
        request.header("content-type"),
        &request.body,
        Instant::now(),
    );
    let mut stats = lock(&shared.stats);
    if answer.issued {
        stats.tokens_granted += 1;
    } else {
        stats.grants_refused += 1;
    }
    if answer.refreshed {
        stats.tokens_refreshed += 1;
    }
    HttpResponse::json(answer.status, answer.body)
}

/// `GET /admin/oauth/authorize`: the merchant approves at once; the browser is sent to the
/// app's callback.
fn authorize(shared: &Shared, request: &HttpRequest) -> HttpResponse {
    let unix_now = jiff::Timestamp::now().as_second();
    match lock(&shared.grants).approve(&request.query, Instant::now(), unix_now) {
        Approval::Redirect(location) => HttpResponse {
            status: 302,
            content_type: "text/plain; charset=utf-8",
            body: format!("Redirecting to {location}").into_bytes(),
            location: Some(location),
        },
        Approval::Refused(message) => HttpResponse::text(400, &message),
    }
}

fn graphql(shared: &Arc<Shared>, request: &HttpRequest) -> Reply {
    let token = request.header("x-shopify-access-token");
    let authorized = token == Some(shared.token.as_str())
        || token.is_some_and(|token| lock(&shared.grants).authorize(token, Instant::now()));
    if !authorized {
        lock(&shared.stats).unauthorized += 1;
        return Reply::Respond(HttpResponse::json(
            401,
            json!({"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}).to_string(),
        ));
    }
    lock(&shared.stats).graphql_requests += 1;
    let body: GraphqlBody = match serde_json::from_slice(&request.body) {
        Ok(body) => body,
        Err(e) => {
            return Reply::Respond(HttpResponse::json(
                400,
                json!({"errors": {"query": [format!("Required parameter missing or invalid: {e}")]}}).to_string(),
            ));
        }
    };
    let prepared = body.query.as_deref().map(|query| {
        exec::prepare(
            query,
            body.variables.as_ref(),
            body.operation_name.as_deref(),
        )
    });
    let is_write = matches!(&prepared, Some(Ok(p)) if p.kind == OpKind::Mutation);
    let decision = lock(&shared.faults).decide(is_write);
    if decision.drop_before {
        lock(&shared.stats).dropped_before += 1;
        return Reply::Drop;
    }
    if let Some(status) = decision.error_5xx {
        lock(&shared.stats).injected_5xx += 1;
        return Reply::Respond(HttpResponse::text(
            status,
            "local-store: injected server error",
        ));
    }
    let delay = Duration::from_millis(decision.delay_ms);
    if decision.delay_ms > 0 {
        lock(&shared.stats).slowed += 1;
    }
    let answer = |response: HttpResponse| {
        if decision.delay_ms > 0 {
            Reply::Late(delay, response)
        } else {
            Reply::Respond(response)
        }
    };
    let prepared = match prepared {
        None => {
            return answer(HttpResponse::json(
                400,
                json!({"errors": {"query": "Required parameter missing or invalid"}}).to_string(),
            ));
        }
        Some(Err(error)) => {
            let extensions = cost_extension(shared, 0, Some(0));
            return answer(graphql_answer(vec![error.to_out()], None, extensions));
        }
        Some(Ok(prepared)) => prepared,
    };
    let requested = match prepared.kind {
        OpKind::Mutation => prepared.root_selection().map_or(0, |selection| {
            (prepared.fields_for(selection, "Mutation").len() as u64).saturating_mul(MUTATION_COST)
        }),
        OpKind::Query => prepared
            .root_selection()
            .map_or(0, |selection| cost::selection_cost(&prepared, selection)),
    };
    if requested > MAX_QUERY_COST {
        lock(&shared.stats).max_cost_exceeded += 1;
        let mut error = exec::GqlError::new(format!(
            "Query cost is {requested}, which exceeds the single query max cost limit ({MAX_QUERY_COST})."
        ))
        .code("MAX_COST_EXCEEDED");
        error.extra = vec![
            ("cost".to_string(), Out::Int(requested as i64)),
            ("maxCost".to_string(), Out::Int(MAX_QUERY_COST as i64)),
        ];
        let extensions = cost_extension(shared, requested, None);
        return answer(graphql_answer(vec![error.to_out()], None, extensions));
    }
    let now = Instant::now();
    let admitted = if decision.throttle {
        lock(&shared.bucket).drain(now);
        false
    } else {
        lock(&shared.bucket).try_take(requested, now)
    };
    if !admitted {
        lock(&shared.stats).throttled += 1;
        let error = Out::obj(vec![
            ("message", Out::str("Throttled")),
            (
                "extensions",
                Out::obj(vec![
                    ("code", Out::str("THROTTLED")),
                    (
                        "documentation",
                        Out::str("https://shopify.dev/api/usage/rate-limits"),
                    ),
                ]),
            ),
        ]);
        let extensions = cost_extension(shared, requested, None);
        return answer(graphql_answer(vec![error], None, extensions));
    }
    let mut exec = Exec::new(shared, &prepared, now_rfc3339());
    let data = exec.run();
    let actual = requested.saturating_sub(exec.refund);
    lock(&shared.bucket).refund(requested - actual, Instant::now());
    let errors: Vec<Out> = exec.errors.iter().map(|e| e.to_out()).collect();
    let data = (errors.is_empty() || exec.side_effects).then_some(data);
    let extensions = cost_extension(shared, requested, Some(actual));
    let response = graphql_answer(errors, data, extensions);
    if decision.drop_after {
        lock(&shared.stats).dropped_after += 1;
        return Reply::Drop;
    }
    answer(response)
}

/// `POST /_control`: every field optional.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ControlBody {
    faults: Option<Faults>,
    restore_rate: Option<f64>,
    maximum_available: Option<f64>,
    drain_bucket: Option<bool>,
    reset_stats: Option<bool>,
    bulk_hold: Option<BulkHold>,
    /// Refuse every token the client credentials grant issued so far.
    expire_tokens: Option<bool>,
}

fn control(shared: &Arc<Shared>, body: &[u8]) -> HttpResponse {
    let body: ControlBody = match serde_json::from_slice(body) {
        Ok(body) => body,
        Err(e) => {
            return HttpResponse::json(
                400,
                json!({"error": format!("bad control body: {e}")}).to_string(),
            );
        }
    };
    apply_control(
        shared,
        body.faults,
        body.restore_rate,
        body.maximum_available,
        body.drain_bucket.unwrap_or(false),
        body.reset_stats.unwrap_or(false),
        body.bulk_hold,
    );
    if body.expire_tokens == Some(true) {
        lock(&shared.grants).expire_all();
    }
    let faults = lock(&shared.faults).faults.clone();
    let status = lock(&shared.bucket).status(Instant::now());
    let hold = *lock(&shared.bulk_hold);
    HttpResponse::json(
        200,
        json!({
            "faults": faults,
            "restore_rate": status.restore_rate,
            "maximum_available": status.maximum_available,
            "currently_available": status.currently_available,
            "bulk_hold": hold,
        })
        .to_string(),
    )
}

pub fn apply_control(
    shared: &Shared,
    faults: Option<Faults>,
    restore_rate: Option<f64>,
    maximum_available: Option<f64>,
    drain_bucket: bool,
    reset_stats: bool,
    bulk_hold: Option<BulkHold>,
) {
    if let Some(faults) = faults {
        lock(&shared.faults).set(faults);
    }
    if restore_rate.is_some() || maximum_available.is_some() {
        let now = Instant::now();
        let mut bucket = lock(&shared.bucket);
        let current = bucket.status(now);
        let rate = restore_rate.unwrap_or(current.restore_rate);
        let maximum = maximum_available.unwrap_or_else(|| default_maximum(rate));
        bucket.reconfigure(maximum, rate, now);
    }
    if drain_bucket {
        lock(&shared.bucket).drain(Instant::now());
    }
    if reset_stats {
        *lock(&shared.stats) = Default::default();
        lock(&shared.metafields).reset_write_counts();
    }
    if let Some(hold) = bulk_hold {
        *lock(&shared.bulk_hold) = hold;
        shared.bulk_wakeup.notify_all();
    }
}

fn upload_form(shared: &Shared, request: &HttpRequest) -> HttpResponse {
    let boundary = request
        .header("content-type")
        .and_then(|ct| {
            ct.split(';')
                .find_map(|p| p.trim().strip_prefix("boundary="))
        })
        .map(|b| b.trim_matches('"').to_string());
    let Some(boundary) = boundary else {
        return HttpResponse::text(400, "multipart/form-data with a boundary expected");
    };
    let parts = match bulk::parse_multipart(&request.body, &boundary) {
        Ok(parts) => parts,
        Err(message) => return HttpResponse::text(400, &message),
    };
    let field = |name: &str| {
        parts
            .iter()
            .find(|p| p.name == name)
            .map(|p| String::from_utf8_lossy(p.body).into_owned())
    };
    let (Some(key), Some(signature)) = (field("key"), field("x-goog-signature")) else {
        return HttpResponse::text(400, "the form needs the key and x-goog-signature fields");
    };
    let Some(file) = parts.iter().find(|p| p.name == "file") else {
        return HttpResponse::text(400, "the form needs a file field");
    };
    match bulk::store_upload(shared, &key, &signature, file.body.to_vec()) {
        Ok(()) => {
            let status = field("success_action_status")
                .and_then(|s| s.parse::<u16>().ok())
                .unwrap_or(204);
            let body = format!(
                "<?xml version='1.0' encoding='UTF-8'?><PostResponse><Location>{}/_staged/{key}</Location><Key>{key}</Key></PostResponse>",
                shared.base_url
            );
            HttpResponse {
                status: if status == 201 { 201 } else { 204 },
                content_type: "application/xml",
                location: None,
                body: if status == 201 {
                    body.into_bytes()
                } else {
                    Vec::new()
                },
            }
        }
        Err((status, message)) => HttpResponse::text(status, &message),
    }
}

fn upload_put(shared: &Shared, request: &HttpRequest) -> HttpResponse {
    let key = request.path.trim_start_matches("/_staged/");
    let signature = request
        .query
        .split('&')
        .find_map(|pair| pair.strip_prefix("signature="))
        .unwrap_or("");
    match bulk::store_upload(shared, key, signature, request.body.clone()) {
        Ok(()) => HttpResponse::text(200, ""),
        Err((status, message)) => HttpResponse::text(status, &message),
    }
}
