//! TLS listeners for the lab's Talos nodes: apid (gRPC) and the Kubernetes
//! API on a VIP (HTTPS).
//!
//! Owns: binding `<address>:<port>`, the TLS handshakes (one task each, so a
//! slow client holds up nobody), the peer's client certificate roles handed
//! to handlers as [`Peer`] (tonic's connect info), replacing the certificate
//! for new connections ([`Listener::set_tls`]), and stopping: dropping a
//! [`Listener`] closes the socket, starts a graceful shutdown and, [`DRAIN`]
//! later, cuts every open connection (their next read or write fails), as a
//! reboot does. The drain lets an answer that was on its way when the node went
//! down (the reply to the `ApplyConfiguration` or `Upgrade` that rebooted it)
//! reach its client even when the machine is loaded.
//! Must not: know the Talos API (that is `api`) or node state.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;

/// Who is calling: the connection's remote address and, when the client
/// presented a certificate, the roles in it (its Organization values).
#[derive(Debug, Clone)]
pub struct Peer {
    pub remote: SocketAddr,
    pub roles: Option<Vec<String>>,
}

/// How long open connections outlive their listener.
pub const DRAIN: Duration = Duration::from_millis(1500);

/// When a listener went down; its connections die [`DRAIN`] after that.
#[derive(Default)]
pub struct KillSwitch {
    at: std::sync::OnceLock<std::time::Instant>,
}

impl KillSwitch {
    fn kill(&self) {
        let _ = self.at.set(std::time::Instant::now());
    }

    fn dead(&self) -> bool {
        self.at.get().is_some_and(|t| t.elapsed() >= DRAIN)
    }
}

/// A TLS connection that dies [`DRAIN`] after its listener is dropped.
pub struct Conn {
    inner: TlsStream<TcpStream>,
    peer: Peer,
    killed: Arc<KillSwitch>,
}

fn reset() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "the node went down")
}

impl AsyncRead for Conn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.killed.dead() {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.killed.dead() {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.killed.dead() {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = Peer;

    fn connect_info(&self) -> Peer {
        self.peer.clone()
    }
}

/// A running listener; dropping it takes the service down.
pub struct Listener {
    /// The TLS config new connections get (replaceable: a new certificate
    /// does not drop the connections that exist, as on a real node).
    tls: Arc<Mutex<Arc<rustls::ServerConfig>>>,
    killed: Arc<KillSwitch>,
    shutdown: Option<oneshot::Sender<()>>,
    accepting: JoinHandle<()>,
}

impl Listener {
    /// Serves new connections with `tls` from now on.
    pub fn set_tls(&self, tls: Arc<rustls::ServerConfig>) {
        *self.tls.lock().unwrap_or_else(|e| e.into_inner()) = tls;
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.killed.kill();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.accepting.abort();
    }
}

/// Binds `addr` (synchronously, so callers can hold locks) and accepts TLS
/// connections into a channel; returns the channel, the shutdown signal and
/// the listener handle the caller completes with its server task.
fn bind(
    addr: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
) -> io::Result<(mpsc::Receiver<io::Result<Conn>>, Listener, oneshot::Receiver<()>)> {
    // SO_REUSEADDR: a node that comes back after a reboot binds again at
    // once, whatever connections of its previous life are in TIME_WAIT.
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    let listener: TcpListener = socket.listen(1024)?;
    let killed = Arc::new(KillSwitch::default());
    let (tx, rx) = mpsc::channel(64);
    let (shutdown_tx, shutdown_rx) = oneshot::channel();
    let tls = Arc::new(Mutex::new(tls));
    let current = tls.clone();
    let kill = killed.clone();
    let accepting = tokio::spawn(async move {
        loop {
            let Ok((tcp, remote)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let config = current.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            let (tx, killed) = (tx.clone(), kill.clone());
            tokio::spawn(async move {
                let Ok(Ok(stream)) = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await else {
                    return;
                };
                let roles =
                    stream.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| super::pki::roles(c));
                let _ = tx.send(Ok(Conn { inner: stream, peer: Peer { remote, roles }, killed })).await;
            });
        }
    });
    Ok((rx, Listener { tls, killed, shutdown: Some(shutdown_tx), accepting }, shutdown_rx))
}

/// Serves a tonic router (apid) over TLS on `addr`.
pub fn serve_grpc(
    addr: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    router: tonic::transport::server::Router,
) -> io::Result<Listener> {
    let (conns, listener, shutdown) = bind(addr, tls)?;
    let incoming = tokio_stream::wrappers::ReceiverStream::new(conns);
    tokio::spawn(async move {
        let _ = router
            .serve_with_incoming_shutdown(incoming, async move {
                let _ = shutdown.await;
            })
            .await;
    });
    Ok(listener)
}

struct AxumConns {
    conns: mpsc::Receiver<io::Result<Conn>>,
    local: SocketAddr,
}

impl axum::serve::Listener for AxumConns {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn, SocketAddr) {
        loop {
            match self.conns.recv().await {
                Some(Ok(conn)) => {
                    let remote = conn.peer.remote;
                    return (conn, remote);
                }
                Some(Err(_)) => continue,
                None => std::future::pending().await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// Serves an axum router (HTTP/1.1) over TLS on `addr`.
pub fn serve_http(addr: SocketAddr, tls: Arc<rustls::ServerConfig>, router: axum::Router) -> io::Result<Listener> {
    let (conns, listener, shutdown) = bind(addr, tls)?;
    tokio::spawn(async move {
        let _ = axum::serve(AxumConns { conns, local: addr }, router)
            .with_graceful_shutdown(async move {
                let _ = shutdown.await;
            })
            .await;
    });
    Ok(listener)
}
