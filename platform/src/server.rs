//! The HTTP listener: how many connections it holds and for how long, before
//! any route sees a request.
//!
//! - **Header time** ([`ServerArgs::header_timeout_secs`], 10 s): an HTTP/1
//!   connection must send a whole request head within this time of opening,
//!   and again within this time of its previous answer (an idle keep-alive
//!   connection). Past it, the connection is closed. Half a request line, or
//!   nothing at all, holds a connection no longer than that (a connection's
//!   first bytes, which say whether it speaks HTTP/1 or HTTP/2, are held to
//!   the same time).
//! - **Idle time** ([`ServerArgs::idle_timeout_secs`], 60 s): a connection on
//!   which no byte moves either way for this long is closed, whatever the
//!   protocol (HTTP/2 too) and whatever it waits for (a client that stops
//!   reading an answer, say). It is longer than any route's time limit
//!   ([`crate::limits`]), so a request at work is not cut.
//! - **Connections** ([`ServerArgs::max_connections`], 10,000, and
//!   [`ServerArgs::max_connections_per_ip`], 512): past the first, the
//!   listener stops accepting until a connection closes (the kernel's backlog
//!   holds the rest); past the second, a new connection from that address is
//!   answered 503 `too_many_connections` (JSON, `Connection: close`) and
//!   closed.
//!
//! A request body that pauses is [`crate::limits`]' concern (408). On the
//! shutdown signal the listener stops accepting, asks every connection to
//! finish its request in flight, and waits up to [`DRAIN`] for them.

use crate::shutdown::Shutdown;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// How long a stopping listener waits for its connections' requests in flight.
pub const DRAIN: Duration = Duration::from_secs(30);

/// The listener's settings (flags and environment variables of every service).
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Seconds an HTTP/1 connection has to send a whole request head, from its
    /// opening or its previous answer; past it, it is closed.
    #[arg(long = "header-timeout-secs", env = "ALPES_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub header_timeout_secs: u64,
    /// Seconds a connection may stay open with no byte moving either way.
    #[arg(long = "idle-timeout-secs", env = "ALPES_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    pub idle_timeout_secs: u64,
    /// Connections the listener holds open at once.
    #[arg(long = "max-connections", env = "ALPES_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Connections one client address may hold open at once.
    #[arg(long = "max-connections-per-ip", env = "ALPES_MAX_CONNECTIONS_PER_IP", default_value_t = 512)]
    pub max_connections_per_ip: usize,
}

impl Default for ServerArgs {
    fn default() -> Self {
        ServerArgs {
            header_timeout_secs: 10,
            idle_timeout_secs: 60,
            max_connections: 10_000,
            max_connections_per_ip: 512,
        }
    }
}

impl ServerArgs {
    /// Why these settings cannot serve, if they cannot: a zero limit, or an
    /// idle time no longer than `request_timeout_secs` (it would cut requests
    /// at work).
    pub fn check(&self, request_timeout_secs: u64) -> Result<(), String> {
        if self.header_timeout_secs == 0 || self.idle_timeout_secs == 0 {
            return Err("--header-timeout-secs and --idle-timeout-secs must be at least 1".into());
        }
        if self.max_connections == 0 || self.max_connections_per_ip == 0 {
            return Err("--max-connections and --max-connections-per-ip must be at least 1".into());
        }
        if self.idle_timeout_secs <= request_timeout_secs {
            return Err(format!(
                "--idle-timeout-secs ({}) must be longer than --request-timeout-secs ({request_timeout_secs})",
                self.idle_timeout_secs
            ));
        }
        Ok(())
    }
}

/// Serves `router` on `listener` under `args` until `shutdown` fires, then
/// drains (see the module docs). Each request carries its client's
/// address, as axum's [`ConnectInfo`].
pub async fn serve(listener: TcpListener, router: Router, args: ServerArgs, shutdown: Shutdown) -> io::Result<()> {
    let header = Duration::from_secs(args.header_timeout_secs);
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(header);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let open = Arc::new(Semaphore::new(args.max_connections));
    let per_ip = Arc::new(PerIp::new(args.max_connections_per_ip));
    let idle = Duration::from_secs(args.idle_timeout_secs);
    let graceful = GracefulShutdown::new();
    loop {
        let permit = tokio::select! {
            p = open.clone().acquire_owned() => p.map_err(io::Error::other)?,
            () = shutdown.wait() => break,
        };
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors, or a connection reset before it was
                    // accepted: the listener itself is fine. Wait a little, as
                    // a full table takes a moment to drain.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.wait() => break,
        };
        let Some(slot) = per_ip.take(addr.ip()) else {
            // The refusal holds its place among the open connections until it is written.
            tokio::spawn(async move {
                let _held = permit;
                refuse(stream).await;
            });
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (builder, router, watcher) = (builder.clone(), router.clone(), graceful.watcher());
        tokio::spawn(async move {
            let _held = (permit, slot);
            if !spoken(&stream, header).await {
                return;
            }
            let last = Arc::new(AtomicU64::new(0));
            let start = Instant::now();
            let io = TokioIo::new(Watched {
                inner: stream,
                start,
                last: last.clone(),
            });
            let service = hyper_util::service::TowerToHyperService::new(tower::ServiceExt::map_request(
                router,
                move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(addr));
                    req
                },
            ));
            let conn = watcher.watch(builder.serve_connection_with_upgrades(io, service).into_owned());
            tokio::pin!(conn);
            let mut deadline = start + idle;
            loop {
                tokio::select! {
                    _ = &mut conn => break,
                    () = tokio::time::sleep_until(deadline) => {
                        let moved = start + Duration::from_millis(last.load(Ordering::Relaxed));
                        if moved + idle <= Instant::now() {
                            tracing::debug!("closing an idle connection");
                            break;
                        }
                        deadline = moved + idle;
                    }
                }
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        tracing::warn!(secs = DRAIN.as_secs(), "connections still open after the drain time; closing them");
    }
    Ok(())
}

/// Whether the client said, within `within`, which protocol it speaks: a
/// first byte that does not begin HTTP/2's preface, or the whole preface.
/// Until then the connection is nobody's, and no protocol's timer runs: this
/// is the header time of a connection that sends nothing, or a part of the
/// preface.
async fn spoken(stream: &TcpStream, within: Duration) -> bool {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let deadline = Instant::now() + within;
    let mut seen = [0u8; PREFACE.len()];
    loop {
        let n = match tokio::time::timeout_at(deadline, stream.peek(&mut seen)).await {
            Ok(Ok(n)) => n,
            Ok(Err(_)) | Err(_) => return false,
        };
        if n == 0 {
            return false;
        }
        if n == PREFACE.len() || seen[..n] != PREFACE[..n] {
            return true;
        }
        // A part of the preface: the rest is on its way, or never comes.
        if Instant::now() + PEEK_AGAIN >= deadline {
            return false;
        }
        tokio::time::sleep(PEEK_AGAIN).await;
    }
}

/// How often [`spoken`] looks again at a connection that sent a part of
/// HTTP/2's preface.
const PEEK_AGAIN: Duration = Duration::from_millis(20);

/// Answers a connection over its address' limit, and closes it.
async fn refuse(mut stream: TcpStream) {
    let body = crate::http::ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "too_many_connections",
        "this address holds too many open connections; close some and retry",
    )
    .json_body();
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let answer = [head.as_bytes(), &body].concat();
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&answer)).await;
    let _ = stream.shutdown().await;
}

/// Open connections by client address, each at most `limit`.
#[derive(Debug)]
struct PerIp {
    limit: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place in [`PerIp`], given back when dropped.
struct Slot {
    of: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    fn new(limit: usize) -> Self {
        PerIp {
            limit,
            open: Mutex::new(HashMap::new()),
        }
    }

    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = open.entry(ip).or_insert(0);
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(Slot { of: self.clone(), ip })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.of.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// A connection that notes when a byte last moved on it, in milliseconds
/// since `start`.
struct Watched {
    inner: TcpStream,
    start: Instant,
    last: Arc<AtomicU64>,
}

impl Watched {
    fn moved(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.moved();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.moved();
        }
        polled
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.moved();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_at_most_its_limit_and_a_closed_connection_gives_its_place_back() {
        let per_ip = Arc::new(PerIp::new(2));
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let first = per_ip.take(a).expect("first");
        let _second = per_ip.take(a).expect("second");
        assert!(per_ip.take(a).is_none(), "a third from the same address");
        assert!(per_ip.take(b).is_some(), "another address has its own count");
        drop(first);
        assert!(per_ip.take(a).is_some(), "a place given back");
    }

    #[test]
    fn the_idle_time_must_outlast_a_request_and_no_limit_is_zero() {
        assert!(ServerArgs::default().check(30).is_ok());
        assert!(ServerArgs::default().check(60).is_err());
        let zero = ServerArgs {
            max_connections_per_ip: 0,
            ..ServerArgs::default()
        };
        assert!(zero.check(30).is_err());
    }
}
