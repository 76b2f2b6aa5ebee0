//! The HTTP edge of the privacy webhooks: `POST /webhooks/compliance` on a loopback address.
//!
//! `tiny_http` reads requests on its own threads; this server takes them one at a time on a
//! serving thread, which checks what needs no shop's data (the path, the body's arrival and
//! size, and with several shops the signature, the topic and the shop named), then hands each
//! delivery to its shop's worker thread. A worker owns its shop's handler (one Admin client, one
//! state database) and answers that shop's deliveries one at a time, after the work is done, well
//! within Shopify's 5 seconds (the Admin client is bounded for it); shops do not wait for each
//! other. At most [`QUEUED_PER_SHOP`] deliveries wait for a shop's worker; more are answered
//! 503, which Shopify retries.
//!
//! It speaks plain HTTP and listens on loopback only: Shopify delivers over HTTPS, so a TLS
//! proxy (or a tunnel) in front of it forwards to this address.
//!
//! tiny_http sets no read timeout, and it hands a request over once its headers are in, with a
//! body of more than about a kilobyte still to come. Read on the serving thread, a body that
//! stalls (a slow client, a proxy that streams) would hold up every delivery behind it. So each
//! body is read on a thread of its own and given [`BODY_DEADLINE`]; a request whose body is not
//! in by then is dropped and logged, and at most [`MAX_BODY_READERS`] such reads run at once
//! (more answer 503 at once, which Shopify retries).

use std::io::Read;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{
    COMPLIANCE_PATH, Delivery, HMAC_HEADER, MAX_BODY_BYTES, Router, SHOP_HEADER, TOPIC_HEADER,
    WEBHOOK_ID_HEADER,
};

/// How long a request's body may take to arrive once its headers are in. Shopify sends a whole
/// delivery at once and waits 5 seconds for the answer, which comes after the work.
pub const BODY_DEADLINE: Duration = Duration::from_secs(2);

/// Bodies being read at once; a request beyond them is answered 503 without being read.
pub const MAX_BODY_READERS: usize = 8;

/// Deliveries waiting for one shop's worker; one beyond them is answered 503.
pub const QUEUED_PER_SHOP: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(
        "--listen {0}: only a loopback address (127.0.0.1:<port>, [::1]:<port>) may be given; put a TLS proxy in front"
    )]
    NotLoopback(String),
    #[error("--listen {address}: {source}")]
    Bind {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("--listen {address}: {message}")]
    Start { address: String, message: String },
    #[error("the server at {address} stopped: {reason}")]
    Panicked { address: String, reason: String },
}

/// Where each request's log line goes (from the serving thread and every shop's worker).
pub type Log = Box<dyn Fn(&str) + Send + Sync>;

/// A delivery handed to a shop's worker.
struct Job {
    request: tiny_http::Request,
    body: Vec<u8>,
    topic: Option<String>,
    shop: Option<String>,
    hmac: Option<String>,
    webhook_id: Option<String>,
    described: String,
    started: Instant,
}

impl Job {
    /// Answers 503 without handling the delivery (Shopify sends it again), and logs why.
    fn refuse(self, log: &Log, why: &str) {
        log(&format!("{}: 503 {why}", self.described));
        let _ = self
            .request
            .respond(tiny_http::Response::from_string(why).with_status_code(503));
    }
}

/// Unblocks the server when the worker holding it panics, so that the serving loop ends and
/// `wait` says so at once, instead of that shop's deliveries going unanswered until its next one.
struct StopOnPanic(Arc<tiny_http::Server>);

impl Drop for StopOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.unblock();
        }
    }
}

/// Runs one shop's deliveries, one at a time, until the server stops; once it is stopping, the
/// deliveries still waiting are answered 503 (Shopify sends them again) instead of handled.
fn worker(
    mut handler: super::Handler,
    jobs: mpsc::Receiver<Job>,
    log: Arc<Log>,
    server: Arc<tiny_http::Server>,
    stopping: Arc<AtomicBool>,
) {
    let _stop_on_panic = StopOnPanic(server);
    for job in jobs {
        if stopping.load(Ordering::SeqCst) {
            job.refuse(&log, "the server is stopping");
            continue;
        }
        let outcome = handler.handle(&Delivery {
            topic: job.topic.as_deref(),
            shop_domain: job.shop.as_deref(),
            hmac: job.hmac.as_deref(),
            webhook_id: job.webhook_id.as_deref(),
            body: &job.body,
        });
        let status = outcome.status();
        log(&format!(
            "{}: {status} {outcome} ({} ms)",
            job.described,
            job.started.elapsed().as_millis()
        ));
        let _ = job.request.respond(
            tiny_http::Response::from_string(outcome.answer_text()).with_status_code(status),
        );
    }
}

/// The shops' workers, as the serving thread sees them.
struct Workers {
    routes: super::Routes,
    queues: Vec<mpsc::SyncSender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

/// A running server; stopped by [`WebhookServer::shutdown`] or when dropped.
pub struct WebhookServer {
    server: Arc<tiny_http::Server>,
    addr: SocketAddr,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl std::fmt::Debug for WebhookServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl WebhookServer {
    /// Binds `listen` (loopback addresses only; port 0 picks a free port) and serves deliveries
    /// to `router` (one shop's [`super::Handler`], or several) on a thread of its own.
    pub fn start(
        listen: &str,
        router: impl Into<Router>,
        log: Log,
    ) -> Result<WebhookServer, ServerError> {
        let addresses: Vec<SocketAddr> = listen
            .to_socket_addrs()
            .map_err(|source| ServerError::Bind {
                address: listen.to_string(),
                source,
            })?
            .collect();
        if addresses.is_empty() || !addresses.iter().all(|a| a.ip().is_loopback()) {
            return Err(ServerError::NotLoopback(listen.to_string()));
        }
        let listener =
            TcpListener::bind(addresses.as_slice()).map_err(|source| ServerError::Bind {
                address: listen.to_string(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| ServerError::Bind {
            address: listen.to_string(),
            source,
        })?;
        let server =
            tiny_http::Server::from_listener(listener, None).map_err(|e| ServerError::Start {
                address: listen.to_string(),
                message: e.to_string(),
            })?;
        let server = Arc::new(server);
        // The workers start once the address is bound: a refused address leaves none behind.
        let (routes, handlers) = router.into().into_parts();
        let log = Arc::new(log);
        let stopping = Arc::new(AtomicBool::new(false));
        let mut queues = Vec::with_capacity(handlers.len());
        let mut threads = Vec::with_capacity(handlers.len());
        for (index, handler) in handlers.into_iter().enumerate() {
            let (queue, jobs) = mpsc::sync_channel(QUEUED_PER_SHOP);
            let (log, server, stopping) =
                (Arc::clone(&log), Arc::clone(&server), Arc::clone(&stopping));
            let thread = std::thread::Builder::new()
                .name(format!("privacy-webhooks-{}", routes.shop(index)))
                .spawn(move || worker(handler, jobs, log, server, stopping))
                .map_err(|e| ServerError::Start {
                    address: listen.to_string(),
                    message: e.to_string(),
                })?;
            queues.push(queue);
            threads.push(thread);
        }
        let workers = Workers {
            routes,
            queues,
            threads,
        };
        let serving = Arc::clone(&server);
        let thread = std::thread::Builder::new()
            .name("privacy-webhooks".to_string())
            .spawn(move || {
                let readers = Arc::new(AtomicUsize::new(0));
                // `incoming_requests` ends when the server is unblocked (shutdown).
                let mut served = Ok(());
                for request in serving.incoming_requests() {
                    served = answer(request, &workers, &log, &readers);
                    if served.is_err() {
                        break;
                    }
                }
                // The deliveries under way finish before the server is said to have stopped;
                // those still waiting are answered 503.
                stopping.store(true, Ordering::SeqCst);
                let Workers {
                    queues, threads, ..
                } = workers;
                drop(queues);
                for thread in threads {
                    // A worker that panicked: the server stops with an error, as when the
                    // serving thread panics.
                    if thread.join().is_err() && served.is_ok() {
                        served = Err("a shop's worker thread panicked".to_string());
                    }
                }
                served
            })
            .map_err(|e| ServerError::Start {
                address: listen.to_string(),
                message: e.to_string(),
            })?;
        Ok(WebhookServer {
            server,
            addr,
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The full URL of the compliance endpoint.
    pub fn url(&self) -> String {
        format!("http://{}{COMPLIANCE_PATH}", self.addr)
    }

    /// Serves until the process is stopped; an error when the serving thread or a shop's worker
    /// panicked (it serves nothing any more, and the process must not look as if it stopped
    /// cleanly).
    pub fn wait(mut self) -> Result<(), ServerError> {
        let reason = match self.thread.take().map(JoinHandle::join) {
            Some(Err(_)) => "its thread panicked".to_string(),
            Some(Ok(Err(reason))) => reason,
            _ => return Ok(()),
        };
        Err(ServerError::Panicked {
            address: self.addr.to_string(),
            reason,
        })
    }

    /// Stops accepting requests, lets the deliveries being handled finish (one per shop at
    /// most), answers those still waiting 503, and returns.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for WebhookServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A header's value, if present and valid ASCII.
fn header(request: &tiny_http::Request, name: &'static str) -> Option<String> {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str().to_string())
}

/// A header value fit for a log line (it is not authenticated yet): printable, short.
fn loggable(value: Option<&str>) -> String {
    match value {
        None => "-".to_string(),
        Some(v) => v
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(100)
            .collect(),
    }
}

/// The request's body, read on its own thread within [`BODY_DEADLINE`]: `None` (the request
/// dropped, its connection closed) when it did not arrive in time.
fn read_body(
    mut request: tiny_http::Request,
    readers: &Arc<AtomicUsize>,
) -> Option<(tiny_http::Request, std::io::Result<Vec<u8>>)> {
    let (sender, receiver) = mpsc::channel();
    let reading = Arc::clone(readers);
    reading.fetch_add(1, Ordering::SeqCst);
    let spawned = std::thread::Builder::new()
        .name("privacy-webhook-body".to_string())
        .spawn(move || {
            let mut body = Vec::new();
            let read = request
                .as_reader()
                .take(MAX_BODY_BYTES as u64 + 1)
                .read_to_end(&mut body)
                .map(|_| body);
            reading.fetch_sub(1, Ordering::SeqCst);
            // The serving thread may have given up waiting: then the request is dropped here.
            let _ = sender.send((request, read));
        });
    if spawned.is_err() {
        readers.fetch_sub(1, Ordering::SeqCst);
        return None;
    }
    receiver.recv_timeout(BODY_DEADLINE).ok()
}

/// Answers one request, or hands it to its shop's worker; an error when that worker is gone (it
/// panicked), which stops the server.
fn answer(
    request: tiny_http::Request,
    workers: &Workers,
    log: &Log,
    readers: &Arc<AtomicUsize>,
) -> Result<(), String> {
    let started = Instant::now();
    let path = request.url().split('?').next().unwrap_or_default();
    if path == crate::authorize::CALLBACK_PATH && *request.method() == tiny_http::Method::Get {
        // `marginwise auth` with this host as its redirect URI: the merchant pastes the address
        // into the terminal. Nothing of the query (the code) is read, shown or logged here.
        log(&format!(
            "GET {path}: the page that says to paste the address"
        ));
        let _ = request.respond(crate::authorize::page(
            200,
            "Almost done: copy this page's address",
            "Copy the whole address of this page from the browser's address bar, and paste it \
             into the terminal where marginwise auth is waiting.",
        ));
        return Ok(());
    }
    let refusal = if path != COMPLIANCE_PATH {
        Some((404, "not found"))
    } else if *request.method() != tiny_http::Method::Post {
        Some((405, "POST only"))
    } else if request.body_length().is_some_and(|n| n > MAX_BODY_BYTES) {
        Some((413, "body too large"))
    } else {
        None
    };
    let refusal = refusal.or_else(|| {
        (readers.load(Ordering::SeqCst) >= MAX_BODY_READERS)
            .then_some((503, "busy: too many bodies being read"))
    });
    if let Some((status, text)) = refusal {
        log(&format!(
            "{} {}: {status} {text}",
            request.method(),
            loggable(Some(request.url()))
        ));
        let _ = request.respond(tiny_http::Response::from_string(text).with_status_code(status));
        return Ok(());
    }
    let (topic, shop, hmac, webhook_id) = (
        header(&request, TOPIC_HEADER),
        header(&request, SHOP_HEADER),
        header(&request, HMAC_HEADER),
        header(&request, WEBHOOK_ID_HEADER),
    );
    let described = format!(
        "{} {} webhook {}",
        loggable(topic.as_deref()),
        loggable(shop.as_deref()),
        loggable(webhook_id.as_deref())
    );
    let Some((request, read)) = read_body(request, readers) else {
        log(&format!(
            "{described}: dropped, body not received within {} s",
            BODY_DEADLINE.as_secs()
        ));
        return Ok(());
    };
    let body = match &read {
        Ok(body) => body.as_slice(),
        Err(_) => &[],
    };
    let (status, text, line) = match &read {
        Err(e) => (400, "unreadable body", format!("refused: {e}")),
        Ok(_) if body.len() > MAX_BODY_BYTES => (
            413,
            "body too large",
            format!("refused: body over {MAX_BODY_BYTES} bytes"),
        ),
        Ok(_) => {
            let delivery = Delivery {
                topic: topic.as_deref(),
                shop_domain: shop.as_deref(),
                hmac: hmac.as_deref(),
                webhook_id: webhook_id.as_deref(),
                body,
            };
            match workers.routes.route(&delivery) {
                Err(outcome) => (outcome.status(), outcome.answer_text(), outcome.to_string()),
                Ok(index) => {
                    let served = workers.routes.shop(index).to_string();
                    let job = Job {
                        body: body.to_vec(),
                        request,
                        topic,
                        shop,
                        hmac,
                        webhook_id,
                        described,
                        started,
                    };
                    let Some(queue) = workers.queues.get(index) else {
                        // A route names one of the workers; were it not so, say it and stop.
                        job.refuse(log, "no worker for this shop");
                        return Err(format!("no worker for {served}"));
                    };
                    match queue.try_send(job) {
                        Ok(()) => {}
                        Err(mpsc::TrySendError::Full(job)) => job.refuse(
                            log,
                            &format!("busy: {QUEUED_PER_SHOP} deliveries for {served} waiting"),
                        ),
                        // The worker is gone: it panicked. Stop serving, so that `wait` says so
                        // instead of the shop's deliveries going unanswered.
                        Err(mpsc::TrySendError::Disconnected(job)) => {
                            let why = format!("the worker of {served} stopped: it panicked");
                            job.refuse(log, &why);
                            return Err(why);
                        }
                    }
                    return Ok(());
                }
            }
        }
    };
    log(&format!(
        "{described}: {status} {line} ({} ms)",
        started.elapsed().as_millis()
    ));
    let _ = request.respond(tiny_http::Response::from_string(text).with_status_code(status));
    Ok(())
}
