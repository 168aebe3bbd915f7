//! Loopback HTTP(S) infrastructure for the fetch tests: a small std-only HTTP/1.1
//! file server with fault injection and a request log ([`FeedServer`]), a CONNECT
//! proxy ([`Proxy`]) and a throwaway TEST-ONLY certificate authority ([`TestTls`]).
//!
//! Invariants: every listener binds 127.0.0.1 (port 0 unless asked), files are read
//! from disk on every request (a test may republish in place), every request is
//! logged before it is answered (faults included), and dropping a server returns
//! within about a second whatever its connections are doing: every socket has
//! short read and write timeouts and every wait polls the shared stop flag.

use airlock_format::hash::sha256_hex;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig, ServerConnection, StreamOwned};
use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often a blocked connection looks at the stop flag (socket read/write timeout).
const POLL: Duration = Duration::from_millis(50);
/// Largest request head (request line and headers) accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Largest request body read (and thrown away).
const MAX_REQUEST_BODY: usize = 1024 * 1024;
/// Size of each chunk [`Fault::Endless`] sends.
const ENDLESS_CHUNK: usize = 64 * 1024;

/// The proxy variables a fetch may read, in both cases.
pub const PROXY_VARS: [&str; 8] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// Removes every proxy variable from `cmd`'s environment, so a test sets only the
/// ones it means (CI machines may have proxies configured).
pub fn without_proxies(cmd: &mut Command) -> &mut Command {
    for v in PROXY_VARS {
        cmd.env_remove(v);
    }
    cmd
}

/// `"<first 16 hex digits of the SHA-256 of bytes>"`, the ETag [`FeedServer`] sends.
pub fn etag(bytes: &[u8]) -> String {
    format!("\"{}\"", &sha256_hex(bytes)[..16])
}

/// One request a server received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// The request target as sent (path and query).
    pub path: String,
    /// Header names lowercased, values trimmed, in order.
    pub headers: Vec<(String, String)>,
    /// The status answered, `None` while unanswered or when never answered (stalls).
    pub status: Option<u16>,
}

impl Request {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A misbehaviour [`FeedServer`] shows for one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer `code` (with a short body) to the next `times` requests, then serve normally.
    Status {
        /// The status code.
        code: u16,
        /// How many requests get it (`usize::MAX`: all of them).
        times: usize,
    },
    /// Read the request and never answer (the socket stays open until the server drops).
    Stall,
    /// Send the headers with the real file's Content-Length and half the body, then stall.
    StallBody,
    /// `200` with `Transfer-Encoding: chunked`, streaming bytes until the client goes away.
    Endless,
    /// The real file followed by these bytes, with an honest Content-Length.
    Append(Vec<u8>),
    /// These bytes instead of the file.
    Body(Vec<u8>),
    /// Read the request and close the connection without answering, for the next
    /// `times` requests (a dropped connection), then serve normally.
    Drop {
        /// How many requests get it (`usize::MAX`: all of them).
        times: usize,
    },
}

/// Locks, ignoring poisoning (a panicking test thread must not hide the log).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn is_idle(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Sleeps `d` in slices, returning early (false) when `stop` is set.
fn sleep_unless(stop: &AtomicBool, d: Duration) -> bool {
    let mut left = d;
    while !left.is_zero() {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        let step = left.min(POLL);
        std::thread::sleep(step);
        left -= step;
    }
    !stop.load(Ordering::SeqCst)
}

/// Waits until `stop` is set.
fn stall(stop: &AtomicBool) {
    while sleep_unless(stop, POLL) {}
}

/// `write_all` over a socket with a write timeout: keeps going after a timeout
/// (so framing is never broken) until everything is written or `stop` is set.
fn write_all(w: &mut impl Write, mut buf: &[u8], stop: &AtomicBool) -> io::Result<()> {
    while !buf.is_empty() {
        match w.write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if is_idle(&e) && !stop.load(Ordering::SeqCst) => {}
            Err(e) => return Err(e),
        }
    }
    loop {
        match w.flush() {
            Ok(()) => return Ok(()),
            Err(e) if is_idle(&e) && !stop.load(Ordering::SeqCst) => {}
            Err(e) => return Err(e),
        }
    }
}

/// A listener on 127.0.0.1 that runs `handle` on a thread per connection, and on
/// drop sets the stop flag, wakes the accept loop and joins every thread.
struct Acceptor {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Acceptor {
    fn start<F>(port: u16, stop: Arc<AtomicBool>, handle: F) -> io::Result<Acceptor>
    where
        F: Fn(TcpStream) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let addr = listener.local_addr()?;
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let handle = Arc::new(handle);
        let (flag, threads) = (Arc::clone(&stop), Arc::clone(&conns));
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let h = Arc::clone(&handle);
                let t = std::thread::spawn(move || h(stream));
                let mut all = lock(&threads);
                all.retain(|t| !t.is_finished());
                all.push(t);
            }
        });
        Ok(Acceptor {
            addr,
            stop,
            thread: Some(thread),
            conns,
        })
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop; it sees the flag and ends.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let threads = std::mem::take(&mut *lock(&self.conns));
        for t in threads {
            let _ = t.join();
        }
    }
}

/// A parsed request head.
struct Head {
    method: String,
    target: String,
    version: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What reading a request head gave.
enum ReadHead {
    Head(Head),
    /// Unparseable or too large: answer 400/431 and close.
    Bad(u16),
    /// End of stream, an error, or the server stopping.
    Closed,
}

/// Reads one request head from `r`, keeping bytes after it in `buf`.
fn read_head(r: &mut impl Read, buf: &mut Vec<u8>, stop: &AtomicBool) -> ReadHead {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            if end > MAX_HEAD {
                return ReadHead::Bad(431);
            }
            let head: Vec<u8> = buf.drain(..end + 4).collect();
            return parse_head(&head[..end]).map_or(ReadHead::Bad(400), ReadHead::Head);
        }
        if buf.len() > MAX_HEAD {
            return ReadHead::Bad(431);
        }
        match r.read(&mut chunk) {
            Ok(0) => return ReadHead::Closed,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if is_idle(&e) => {
                if stop.load(Ordering::SeqCst) {
                    return ReadHead::Closed;
                }
            }
            Err(_) => return ReadHead::Closed,
        }
    }
}

fn parse_head(head: &[u8]) -> Option<Head> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let mut parts = lines.next()?.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || method.is_empty() || target.is_empty() {
        return None;
    }
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':')?;
        if name.is_empty() || name.contains(' ') {
            return None;
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    Some(Head {
        method: method.to_string(),
        target: target.to_string(),
        version: version.to_string(),
        headers,
    })
}

/// Reads and discards a request body announced by Content-Length; false when the
/// connection cannot continue (chunked body, too large, or closed).
fn skip_body(r: &mut impl Read, buf: &mut Vec<u8>, head: &Head, stop: &AtomicBool) -> bool {
    if head.header("transfer-encoding").is_some() {
        return false;
    }
    let Some(len) = head.header("content-length") else {
        return true;
    };
    let Ok(mut left) = len.parse::<usize>() else {
        return false;
    };
    if left > MAX_REQUEST_BODY {
        return false;
    }
    let from_buf = left.min(buf.len());
    buf.drain(..from_buf);
    left -= from_buf;
    let mut chunk = [0u8; 4096];
    while left > 0 {
        match r.read(&mut chunk[..left.min(4096)]) {
            Ok(0) => return false,
            Ok(n) => left -= n,
            Err(e) if is_idle(&e) && !stop.load(Ordering::SeqCst) => {}
            Err(_) => return false,
        }
    }
    true
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn http_date(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let (era, doe) = (z / 146_097, z % 146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// A server connection, plain or TLS.
enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

impl Conn {
    fn close(mut self, stop: &AtomicBool) {
        if let Conn::Tls(s) = &mut self {
            s.conn.send_close_notify();
            let _ = write_all(s.as_mut(), &[], stop);
        }
        let tcp = match &self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => s.get_ref(),
        };
        let _ = tcp.shutdown(Shutdown::Both);
    }
}

/// State shared by a [`FeedServer`]'s threads.
struct Shared {
    root: PathBuf,
    stop: Arc<AtomicBool>,
    tls: Option<Arc<ServerConfig>>,
    faults: Mutex<HashMap<String, Fault>>,
    delay: Mutex<Duration>,
    log: Mutex<Vec<Request>>,
    connections: AtomicUsize,
}

impl Shared {
    /// The fault for `path`, counting down a [`Fault::Status`].
    fn take_fault(&self, path: &str) -> Option<Fault> {
        let mut faults = lock(&self.faults);
        let fault = faults.get_mut(path)?;
        let out = fault.clone();
        if let Fault::Status { times, .. } | Fault::Drop { times } = fault {
            *times = times.saturating_sub(1);
            if *times == 0 {
                faults.remove(path);
            }
        }
        Some(out)
    }

    fn set_status(&self, index: usize, code: u16) {
        if let Some(r) = lock(&self.log).get_mut(index) {
            r.status = Some(code);
        }
    }

    /// The file under the root that `path` names, if `path` is a plain relative
    /// path to a regular file inside it.
    fn file(&self, path: &str) -> Option<PathBuf> {
        let rel = Path::new(path.strip_prefix('/')?);
        if path.ends_with('/')
            || path.contains('\\')
            || path.contains('%')
            || !rel.components().all(|c| matches!(c, Component::Normal(_)))
        {
            return None;
        }
        let p = self.root.join(rel).canonicalize().ok()?;
        let root = self.root.canonicalize().ok()?;
        (p.starts_with(&root) && p.is_file()).then_some(p)
    }
}

/// One response.
struct Response<'a> {
    code: u16,
    headers: Vec<(&'static str, String)>,
    body: &'a [u8],
}

impl Response<'_> {
    fn bytes(&self, head_only: bool, keep_alive: bool) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {} {}\r\n", self.code, reason(self.code));
        for (n, v) in &self.headers {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        if self.code != 304 {
            out.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        out.push_str(if keep_alive {
            "Connection: keep-alive\r\n\r\n"
        } else {
            "Connection: close\r\n\r\n"
        });
        let mut bytes = out.into_bytes();
        if !head_only && self.code != 304 {
            bytes.extend_from_slice(self.body);
        }
        bytes
    }
}

/// A `200` for `body` served as `path`.
fn ok_response<'a>(path: &str, body: &'a [u8], last_modified: String) -> Response<'a> {
    Response {
        code: 200,
        headers: vec![
            ("Content-Type", content_type(path).into()),
            ("ETag", etag(body)),
            ("Last-Modified", last_modified),
        ],
        body,
    }
}

fn content_type(path: &str) -> &'static str {
    if path.ends_with(".xml") {
        "application/xml"
    } else {
        "application/octet-stream"
    }
}

/// A std-only HTTP/1.1 server for a directory, with keep-alive, conditional
/// requests, fault injection and a request log. Dropping it shuts it down.
pub struct FeedServer {
    shared: Arc<Shared>,
    acceptor: Acceptor,
}

impl fmt::Debug for FeedServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FeedServer")
            .field("url", &self.url())
            .field("root", &self.shared.root)
            .finish_non_exhaustive()
    }
}

impl FeedServer {
    /// Plain HTTP on 127.0.0.1 with a free port, serving the files under `root`.
    pub fn start(root: &Path) -> FeedServer {
        FeedServer::bind(root, 0, None).unwrap()
    }

    /// HTTPS with `tls`'s server certificate on 127.0.0.1 with a free port.
    pub fn start_tls(root: &Path, tls: &TestTls) -> FeedServer {
        FeedServer::bind(root, 0, Some(tls)).unwrap()
    }

    /// Serves `root` on 127.0.0.1:`port` (0: a free port), over TLS when `tls` is given.
    pub fn bind(root: &Path, port: u16, tls: Option<&TestTls>) -> io::Result<FeedServer> {
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            root: root.to_path_buf(),
            stop: Arc::clone(&stop),
            tls: tls.map(TestTls::server_config),
            faults: Mutex::default(),
            delay: Mutex::default(),
            log: Mutex::default(),
            connections: AtomicUsize::new(0),
        });
        let s = Arc::clone(&shared);
        let acceptor = Acceptor::start(port, stop, move |tcp| serve(&s, tcp))?;
        Ok(FeedServer { shared, acceptor })
    }

    /// `http://127.0.0.1:PORT/` (or `https://`).
    pub fn url(&self) -> String {
        let scheme = if self.shared.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}/", self.port())
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.acceptor.addr.port()
    }

    /// Makes requests for `path` (like `/feed.xml`) misbehave, replacing any fault it had.
    pub fn set_fault(&self, path: &str, fault: Fault) {
        lock(&self.shared.faults).insert(path.to_string(), fault);
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Sleeps `d` before every response.
    pub fn set_delay(&self, d: Duration) {
        *lock(&self.shared.delay) = d;
    }

    /// Every request received so far, in order (faulted ones included).
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.shared.log).clone()
    }

    /// The number of requests received so far.
    pub fn request_count(&self) -> usize {
        lock(&self.shared.log).len()
    }

    /// How many connections were accepted so far (TLS handshakes that failed included).
    pub fn connection_count(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Forgets the requests received so far.
    pub fn clear_log(&self) {
        lock(&self.shared.log).clear();
    }
}

/// Serves one connection until it closes, asks to close, or the server stops.
fn serve(shared: &Shared, tcp: TcpStream) {
    shared.connections.fetch_add(1, Ordering::SeqCst);
    let stop = &*shared.stop;
    let _ = tcp.set_read_timeout(Some(POLL));
    let _ = tcp.set_write_timeout(Some(POLL));
    let _ = tcp.set_nodelay(true);
    let mut conn = match &shared.tls {
        Some(cfg) => match ServerConnection::new(Arc::clone(cfg)) {
            Ok(c) => Conn::Tls(Box::new(StreamOwned::new(c, tcp))),
            Err(_) => return,
        },
        None => Conn::Plain(tcp),
    };
    let mut buf = Vec::new();
    loop {
        let head = match read_head(&mut conn, &mut buf, stop) {
            ReadHead::Head(h) => h,
            ReadHead::Bad(code) => {
                let r = Response {
                    code,
                    headers: vec![],
                    body: b"",
                };
                let _ = write_all(&mut conn, &r.bytes(false, false), stop);
                break;
            }
            ReadHead::Closed => break,
        };
        let body_ok = skip_body(&mut conn, &mut buf, &head, stop);
        let keep_alive = body_ok
            && head.version == "HTTP/1.1"
            && !head
                .header("connection")
                .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")));
        match answer(shared, &mut conn, head, keep_alive) {
            Ok(true) if keep_alive => {}
            _ => break,
        }
    }
    conn.close(stop);
}

/// Answers one request; `Ok(true)` when the connection may carry another one.
fn answer(shared: &Shared, conn: &mut Conn, head: Head, keep_alive: bool) -> io::Result<bool> {
    let stop = &*shared.stop;
    let index = {
        let mut log = lock(&shared.log);
        log.push(Request {
            method: head.method.clone(),
            path: head.target.clone(),
            headers: head.headers.clone(),
            status: None,
        });
        log.len() - 1
    };
    let delay = *lock(&shared.delay);
    if !sleep_unless(stop, delay) {
        return Ok(false);
    }
    let head_only = head.method == "HEAD";
    let path = head.target.split('?').next().unwrap_or_default();
    let send = |r: Response<'_>, conn: &mut Conn| -> io::Result<bool> {
        shared.set_status(index, r.code);
        write_all(conn, &r.bytes(head_only, keep_alive), stop)?;
        Ok(true)
    };
    if head.method != "GET" && !head_only {
        return send(
            Response {
                code: 405,
                headers: vec![("Allow", "GET, HEAD".into())],
                body: b"405 method not allowed\n",
            },
            conn,
        );
    }
    let file = shared.file(path);
    let not_found = Response {
        code: 404,
        headers: vec![("Content-Type", "text/plain".into())],
        body: b"404 not found\n",
    };
    let fault = shared.take_fault(path);
    let read = |p: &Path| -> Option<(Vec<u8>, String)> {
        let bytes = std::fs::read(p).ok()?;
        let modified = std::fs::metadata(p).and_then(|m| m.modified()).ok()?;
        Some((bytes, http_date(modified)))
    };
    let ok = |body, last_modified| ok_response(path, body, last_modified);
    match fault {
        Some(Fault::Status { code, .. }) => {
            let body = format!("{code} {} (injected fault)\n", reason(code));
            send(
                Response {
                    code,
                    headers: vec![("Content-Type", "text/plain".into())],
                    body: body.as_bytes(),
                },
                conn,
            )
        }
        Some(Fault::Drop { .. }) => Ok(false),
        Some(Fault::Stall) => {
            stall(stop);
            Ok(false)
        }
        Some(Fault::StallBody) => {
            let Some((bytes, _)) = file.as_deref().and_then(read) else {
                return send(not_found, conn);
            };
            shared.set_status(index, 200);
            let mut out = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\n\r\n",
                content_type(path),
                bytes.len()
            )
            .into_bytes();
            out.extend_from_slice(&bytes[..bytes.len() / 2]);
            write_all(conn, &out, stop)?;
            stall(stop);
            Ok(false)
        }
        Some(Fault::Endless) => {
            shared.set_status(index, 200);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
                content_type(path)
            );
            write_all(conn, head.as_bytes(), stop)?;
            let filler = b"<!-- endless -->\n";
            let data: Vec<u8> = filler.iter().copied().cycle().take(ENDLESS_CHUNK).collect();
            let mut chunk = format!("{:x}\r\n", data.len()).into_bytes();
            chunk.extend_from_slice(&data);
            chunk.extend_from_slice(b"\r\n");
            while !stop.load(Ordering::SeqCst) {
                write_all(conn, &chunk, stop)?;
            }
            Ok(false)
        }
        Some(Fault::Append(extra)) => {
            let Some((mut bytes, modified)) = file.as_deref().and_then(read) else {
                return send(not_found, conn);
            };
            bytes.extend_from_slice(&extra);
            send(ok(&bytes, modified), conn)
        }
        Some(Fault::Body(bytes)) => send(ok(&bytes, http_date(SystemTime::now())), conn),
        None => {
            let Some((bytes, modified)) = file.as_deref().and_then(read) else {
                return send(not_found, conn);
            };
            let tag = etag(&bytes);
            // RFC 9110 §13.2.2: If-None-Match, when present, decides alone.
            let not_modified = match head.header("if-none-match") {
                Some(inm) => inm
                    .split(',')
                    .map(|t| t.trim().trim_start_matches("W/"))
                    .any(|t| t == "*" || t == tag),
                None => head.header("if-modified-since") == Some(modified.as_str()),
            };
            if not_modified {
                send(
                    Response {
                        code: 304,
                        headers: vec![("ETag", tag), ("Last-Modified", modified)],
                        body: b"",
                    },
                    conn,
                )
            } else {
                send(ok(&bytes, modified), conn)
            }
        }
    }
}

/// Log of a [`Proxy`].
#[derive(Debug, Default)]
struct ProxyLog {
    lines: Vec<String>,
    connects: Vec<String>,
}

/// An HTTP proxy on 127.0.0.1 that only tunnels: `CONNECT host:port` gets
/// `200 Connection established` and bytes are piped both ways; anything else
/// gets `405`. Only loopback targets are dialled: any other host gets `502`
/// without a DNS lookup, so a test never reaches the network. Dropping it shuts
/// it down.
pub struct Proxy {
    log: Arc<Mutex<ProxyLog>>,
    acceptor: Acceptor,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl Proxy {
    /// A proxy on a free port.
    pub fn start() -> Proxy {
        let stop = Arc::new(AtomicBool::new(false));
        let log: Arc<Mutex<ProxyLog>> = Arc::default();
        let (l, s) = (Arc::clone(&log), Arc::clone(&stop));
        let acceptor = Acceptor::start(0, stop, move |tcp| tunnel(&l, &s, tcp)).unwrap();
        Proxy { log, acceptor }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.acceptor.addr.port())
    }

    /// The `host:port` of every CONNECT request, in order.
    pub fn connects(&self) -> Vec<String> {
        lock(&self.log).connects.clone()
    }

    /// Every request line received (`CONNECT 127.0.0.1:80 HTTP/1.1`, `GET http://... HTTP/1.1`).
    pub fn requests(&self) -> Vec<String> {
        lock(&self.log).lines.clone()
    }
}

/// Serves one proxy connection.
fn tunnel(log: &Mutex<ProxyLog>, stop: &Arc<AtomicBool>, mut client: TcpStream) {
    let _ = client.set_read_timeout(Some(POLL));
    let _ = client.set_write_timeout(Some(POLL));
    let mut buf = Vec::new();
    let head = match read_head(&mut client, &mut buf, stop) {
        ReadHead::Head(h) => h,
        ReadHead::Bad(_) | ReadHead::Closed => return,
    };
    lock(log)
        .lines
        .push(format!("{} {} {}", head.method, head.target, head.version));
    let refuse = |client: &mut TcpStream, code: u16| {
        let msg = format!(
            "HTTP/1.1 {code} {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            reason(code)
        );
        let _ = write_all(client, msg.as_bytes(), stop);
        let _ = client.shutdown(Shutdown::Both);
    };
    if head.method != "CONNECT" {
        return refuse(&mut client, 405);
    }
    lock(log).connects.push(head.target.clone());
    // Hermetic: only loopback targets are dialled (no DNS, nothing leaves the host).
    let host = head
        .target
        .rsplit_once(':')
        .map_or("", |(h, _)| h.trim_start_matches('[').trim_end_matches(']'));
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let upstream = head
        .target
        .to_socket_addrs()
        .ok()
        .filter(|_| loopback)
        .and_then(|addrs| {
            addrs
                .into_iter()
                .find_map(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).ok())
        });
    let Some(mut upstream) = upstream else {
        return refuse(&mut client, 502);
    };
    let _ = upstream.set_read_timeout(Some(POLL));
    let _ = upstream.set_write_timeout(Some(POLL));
    let ready = b"HTTP/1.1 200 Connection established\r\n\r\n";
    if write_all(&mut client, ready, stop).is_err() || write_all(&mut upstream, &buf, stop).is_err()
    {
        return;
    }
    let (Ok(c2), Ok(u2)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let s = Arc::clone(stop);
    let up = std::thread::spawn(move || pump(c2, u2, &s));
    pump(upstream, client, stop);
    let _ = up.join();
}

/// Copies `from` to `to` until end of stream (then half-closes `to`), an error
/// (then closes both), or the stop flag.
fn pump(mut from: TcpStream, mut to: TcpStream, stop: &AtomicBool) {
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        match from.read(&mut chunk) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                if write_all(&mut to, &chunk[..n], stop).is_err() {
                    break;
                }
            }
            Err(e) if is_idle(&e) && !stop.load(Ordering::SeqCst) => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

/// A TEST-ONLY certificate authority and a server certificate it signed for
/// `localhost` and `127.0.0.1` (ECDSA P-256, generated afresh each time).
#[derive(Debug, Clone)]
pub struct TestTls {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// The CA certificate, DER.
    pub ca_der: Vec<u8>,
    cert_der: Vec<u8>,
    key_pkcs8: Vec<u8>,
}

impl TestTls {
    /// A new CA and server certificate.
    pub fn generate() -> TestTls {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose, date_time_ymd,
        };
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "airlock TEST-ONLY CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca.not_before = date_time_ymd(2020, 1, 1);
        ca.not_after = date_time_ymd(2099, 12, 31);
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);

        let mut leaf =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        leaf.distinguished_name
            .push(DnType::CommonName, "localhost");
        leaf.use_authority_key_identifier_extension = true;
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf.not_before = date_time_ymd(2020, 1, 1);
        leaf.not_after = date_time_ymd(2099, 12, 31);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
        TestTls {
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().to_vec(),
            cert_der: leaf_cert.der().to_vec(),
            key_pkcs8: leaf_key.serialize_der(),
        }
    }

    /// Writes the CA certificate (PEM) to `path`.
    pub fn write_ca(&self, path: &Path) {
        std::fs::write(path, &self.ca_pem).unwrap();
    }

    /// A rustls server configuration (ring provider) presenting the server certificate.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8.clone()));
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(self.cert_der.clone())], key)
            .unwrap();
        Arc::new(config)
    }

    /// A rustls client configuration (ring provider) that trusts only the CA.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.ca_der.clone()))
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }

    /// The server name clients should check for `127.0.0.1`.
    pub fn server_name() -> ServerName<'static> {
        ServerName::try_from("127.0.0.1").unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// A temporary root with `feed.xml` and `mitigations/a.xml`.
    fn root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("feed.xml"), b"<feed/>\n").unwrap();
        std::fs::create_dir(dir.path().join("mitigations")).unwrap();
        std::fs::write(dir.path().join("mitigations/a.xml"), b"<doc>a</doc>\n").unwrap();
        dir
    }

    fn connect(port: u16) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    }

    /// Reads one response (status, lowercased headers, body by Content-Length).
    fn response(s: &mut impl Read) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(s.read(&mut byte).unwrap(), 1, "closed mid-head: {head:?}");
            head.push(byte[0]);
        }
        let text = String::from_utf8(head).unwrap();
        let mut lines = text.trim_end().split("\r\n");
        let code = lines.next().unwrap()[9..12].parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.to_ascii_lowercase(), v.trim().to_string())
            })
            .collect();
        let len = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map_or(0, |(_, v)| v.parse().unwrap());
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).unwrap();
        (code, headers, body)
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} in {headers:?}"))
    }

    fn get(path: &str, extra: &str) -> String {
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n")
    }

    #[test]
    fn imf_fixdate() {
        let t = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(http_date(leap), "Tue, 29 Feb 2000 00:00:00 GMT");
    }

    #[test]
    fn get_then_not_modified_with_keep_alive() {
        let dir = root();
        let server = FeedServer::start(dir.path());
        let mut s = connect(server.port());
        s.write_all(get("/feed.xml", "").as_bytes()).unwrap();
        let (code, headers, body) = response(&mut s);
        assert_eq!(code, 200);
        assert_eq!(body, b"<feed/>\n");
        assert_eq!(header(&headers, "etag"), etag(b"<feed/>\n"));
        let last_modified = header(&headers, "last-modified").to_string();
        assert!(last_modified.ends_with(" GMT"), "{last_modified}");

        // Same connection: a conditional request by ETag, then by date alone.
        let tag = header(&headers, "etag").to_string();
        s.write_all(get("/feed.xml", &format!("If-None-Match: {tag}\r\n")).as_bytes())
            .unwrap();
        let (code, _, body) = response(&mut s);
        assert_eq!((code, body.len()), (304, 0));
        s.write_all(
            get(
                "/feed.xml",
                &format!("If-Modified-Since: {last_modified}\r\n"),
            )
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(response(&mut s).0, 304);
        // A stale ETag wins over a matching date.
        s.write_all(
            get(
                "/feed.xml",
                &format!("If-None-Match: \"0\"\r\nIf-Modified-Since: {last_modified}\r\n"),
            )
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(response(&mut s).0, 200);

        // Republished in place: served fresh.
        std::fs::write(dir.path().join("feed.xml"), b"<feed>2</feed>\n").unwrap();
        s.write_all(get("/feed.xml", &format!("If-None-Match: {tag}\r\n")).as_bytes())
            .unwrap();
        let (code, _, body) = response(&mut s);
        assert_eq!((code, body.as_slice()), (200, &b"<feed>2</feed>\n"[..]));

        let log = server.requests();
        assert_eq!(log.len(), 5);
        assert_eq!(
            log.iter().map(|r| r.status).collect::<Vec<_>>(),
            [Some(200), Some(304), Some(304), Some(200), Some(200)]
        );
        assert_eq!(log[1].header("If-None-Match"), Some(tag.as_str()));
        assert_eq!(log[0].header("host"), Some("127.0.0.1"));
    }

    #[test]
    fn missing_escaping_and_other_methods() {
        let outer = tempfile::tempdir().unwrap();
        std::fs::write(outer.path().join("secret"), b"x").unwrap();
        let dir = outer.path().join("srv");
        std::fs::create_dir_all(dir.join("mitigations")).unwrap();
        std::fs::write(dir.join("feed.xml"), b"<feed/>\n").unwrap();
        std::fs::write(dir.join("mitigations/a.xml"), b"<doc>a</doc>\n").unwrap();
        let server = FeedServer::start(&dir);
        for path in [
            "/nope.xml",
            "/../secret",
            "/mitigations/../feed.xml",
            "/mitigations/",
            "/",
            "/%2e%2e/secret",
        ] {
            let mut s = connect(server.port());
            s.write_all(get(path, "").as_bytes()).unwrap();
            assert_eq!(response(&mut s).0, 404, "{path}");
        }
        // A request head over the bound is refused.
        let mut s = connect(server.port());
        let huge = format!(
            "GET /feed.xml HTTP/1.1\r\nX: {}\r\n\r\n",
            "a".repeat(MAX_HEAD)
        );
        s.write_all(huge.as_bytes()).unwrap();
        assert_eq!(response(&mut s).0, 431);
        let mut s = connect(server.port());
        s.write_all(b"POST /feed.xml HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
            .unwrap();
        assert_eq!(response(&mut s).0, 405);
        // HEAD: the headers of a GET, no body.
        s.write_all(b"HEAD /mitigations/a.xml HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).unwrap();
        let text = String::from_utf8(rest).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("Content-Length: 13\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\n"), "{text}");
    }

    #[test]
    fn faults() {
        let dir = root();
        let server = FeedServer::start(dir.path());
        server.set_fault(
            "/feed.xml",
            Fault::Status {
                code: 503,
                times: 2,
            },
        );
        let mut s = connect(server.port());
        for expect in [503, 503, 200] {
            s.write_all(get("/feed.xml", "").as_bytes()).unwrap();
            assert_eq!(response(&mut s).0, expect);
        }
        server.set_fault("/mitigations/a.xml", Fault::Append(b"!!".to_vec()));
        s.write_all(get("/mitigations/a.xml", "").as_bytes())
            .unwrap();
        assert_eq!(response(&mut s).2, b"<doc>a</doc>\n!!");
        server.set_fault("/mitigations/a.xml", Fault::Body(b"other".to_vec()));
        s.write_all(get("/mitigations/a.xml", "").as_bytes())
            .unwrap();
        assert_eq!(response(&mut s).2, b"other");
        server.clear_faults();
        s.write_all(get("/mitigations/a.xml", "").as_bytes())
            .unwrap();
        assert_eq!(response(&mut s).2, b"<doc>a</doc>\n");

        // Drop: the connection closes unanswered, once.
        server.set_fault("/feed.xml", Fault::Drop { times: 1 });
        let mut s = connect(server.port());
        s.write_all(get("/feed.xml", "").as_bytes()).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        assert!(rest.is_empty());
        let mut s = connect(server.port());
        s.write_all(get("/feed.xml", "").as_bytes()).unwrap();
        assert_eq!(response(&mut s).0, 200);

        // StallBody: the declared length, half the bytes, then nothing.
        server.set_fault("/mitigations/a.xml", Fault::StallBody);
        let mut s = connect(server.port());
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        s.write_all(get("/mitigations/a.xml", "").as_bytes())
            .unwrap();
        let mut got = Vec::new();
        let mut chunk = [0u8; 256];
        loop {
            match s.read(&mut chunk) {
                Ok(0) => panic!("closed"),
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(e) if is_idle(&e) => break,
                Err(e) => panic!("{e}"),
            }
        }
        let text = String::from_utf8(got).unwrap();
        assert!(text.contains("Content-Length: 13\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\n<doc>a"), "{text}");

        // Endless: far more bytes than any file, chunked.
        server.set_fault("/feed.xml", Fault::Endless);
        let mut s = connect(server.port());
        s.write_all(get("/feed.xml", "").as_bytes()).unwrap();
        let mut total = 0;
        let mut chunk = vec![0u8; 64 * 1024];
        while total < 4 * 1024 * 1024 {
            total += s.read(&mut chunk).unwrap();
        }
        drop(s);

        // Stall: the request is logged and never answered.
        server.set_fault("/feed.xml", Fault::Stall);
        let mut s = connect(server.port());
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        s.write_all(get("/feed.xml", "").as_bytes()).unwrap();
        let e = s.read(&mut chunk).unwrap_err();
        assert!(is_idle(&e), "{e}");
        let log = server.requests();
        assert_eq!(log.len(), 11);
        assert_eq!(log[6].status, None);
        assert_eq!(log[10].status, None);
        assert_eq!(server.connection_count(), 6);

        // Dropping the server ends stalled connections promptly.
        let t = Instant::now();
        drop(server);
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        let mut rest = Vec::new();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let _ = s.read_to_end(&mut rest);
        assert!(rest.is_empty());
    }

    #[test]
    fn delay_and_connection_close() {
        let dir = root();
        let server = FeedServer::start(dir.path());
        server.set_delay(Duration::from_millis(100));
        let mut s = connect(server.port());
        let t = Instant::now();
        s.write_all(get("/feed.xml", "Connection: close\r\n").as_bytes())
            .unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        assert!(t.elapsed() >= Duration::from_millis(100));
        let text = String::from_utf8(all).unwrap();
        assert!(text.contains("Connection: close\r\n"), "{text}");
        assert!(text.ends_with("<feed/>\n"), "{text}");
    }

    #[test]
    fn proxy_tunnels_connect_and_refuses_the_rest() {
        let dir = root();
        let server = FeedServer::start(dir.path());
        let proxy = Proxy::start();
        let port: u16 = proxy.url().rsplit(':').next().unwrap().parse().unwrap();
        let mut s = connect(port);
        let target = format!("127.0.0.1:{}", server.port());
        s.write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes())
            .unwrap();
        let (code, _, _) = response(&mut s);
        assert_eq!(code, 200);
        for _ in 0..2 {
            s.write_all(get("/mitigations/a.xml", "").as_bytes())
                .unwrap();
            let (code, _, body) = response(&mut s);
            assert_eq!((code, body.as_slice()), (200, &b"<doc>a</doc>\n"[..]));
        }
        assert_eq!(proxy.connects(), std::slice::from_ref(&target));
        assert_eq!(server.requests().len(), 2);

        let mut s = connect(port);
        s.write_all(
            format!("GET http://{target}/feed.xml HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes(),
        )
        .unwrap();
        assert_eq!(response(&mut s).0, 405);
        assert_eq!(proxy.connects().len(), 1);
        assert_eq!(
            proxy.requests(),
            [
                format!("CONNECT {target} HTTP/1.1"),
                format!("GET http://{target}/feed.xml HTTP/1.1")
            ]
        );
        assert_eq!(server.requests().len(), 2);

        // Not loopback: refused without leaving the host.
        let mut s = connect(port);
        s.write_all(b"CONNECT vendor.example:443 HTTP/1.1\r\n\r\n")
            .unwrap();
        assert_eq!(response(&mut s).0, 502);
        assert_eq!(proxy.connects()[1], "vendor.example:443");
    }

    #[test]
    fn tls_with_the_test_ca() {
        let dir = root();
        let tls = TestTls::generate();
        assert!(tls.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let server = FeedServer::start_tls(dir.path(), &tls);
        assert!(server.url().starts_with("https://127.0.0.1:"));
        let client =
            rustls::ClientConnection::new(tls.client_config(), TestTls::server_name()).unwrap();
        let mut s = StreamOwned::new(client, connect(server.port()));
        s.write_all(get("/feed.xml", "").as_bytes()).unwrap();
        let (code, _, body) = response(&mut s);
        assert_eq!((code, body.as_slice()), (200, &b"<feed/>\n"[..]));
        s.write_all(get("/feed.xml", "Connection: close\r\n").as_bytes())
            .unwrap();
        assert_eq!(response(&mut s).0, 200);
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());

        // A client that trusts another CA refuses the certificate.
        let other = TestTls::generate();
        let client =
            rustls::ClientConnection::new(other.client_config(), TestTls::server_name()).unwrap();
        let mut s = StreamOwned::new(client, connect(server.port()));
        let e = s.write_all(get("/feed.xml", "").as_bytes()).and_then(|()| {
            let mut b = [0u8; 1];
            s.read(&mut b).map(|_| ())
        });
        assert!(e.is_err());
        assert_eq!(server.requests().len(), 2);
    }
}
