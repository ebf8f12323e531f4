//! The accept loop and graceful shutdown.
//!
//! On the shutdown signal: stop accepting, ask every connection to finish its in-flight
//! request and close (HTTP keep-alive ends), wait for them (at most `SHUTDOWN_GRACE`), then
//! close the store so the last commit is on disk. Tests run this same function on
//! 127.0.0.1:0.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, broadcast, mpsc};

use crate::app::App;

/// How long in-flight requests get to finish after the shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// A client must send its request headers within this time.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// A client must finish the TLS handshake within this time.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the accept loop proves it is alive (for the systemd watchdog).
pub const LIVENESS_TICK: Duration = Duration::from_secs(1);

/// Serves HTTP/1.1 (with upgrades, for WebSockets) on one connection until it ends or the stop
/// signal comes, then finishes the request in flight (at most `SHUTDOWN_GRACE`).
async fn serve_connection<I>(
    io: I,
    app: App,
    peer: std::net::SocketAddr,
    mut stop: broadcast::Receiver<()>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(crate::http::handle(&app, request, peer).await) }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = stop.recv() => {
            connection.as_mut().graceful_shutdown();
            match tokio::time::timeout(SHUTDOWN_GRACE, connection.as_mut()).await {
                Ok(result) => result,
                Err(_) => Ok(()),
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("listener: {0}")]
    Listener(#[from] std::io::Error),
}

pub async fn run(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let addr = listener.local_addr()?;
    tracing::info!(addr = %addr, "listening on {addr}");
    // Every connection task holds a receiver (the stop signal) and a sender clone (so we know
    // when the last one is gone).
    let (stop, _) = broadcast::channel::<()>(1);
    let (finished_tx, mut all_finished) = mpsc::channel::<()>(1);
    let connections = Arc::new(Semaphore::new(app.config().max_connections));
    tokio::pin!(shutdown);

    let mut liveness = tokio::time::interval(LIVENESS_TICK);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            _ = liveness.tick() => {
                app.mark_accept_loop_alive();
                continue;
            }
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Usually out of file descriptors: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            tracing::warn!(%peer, "connection limit reached; closing new connection");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let stop = stop.subscribe();
        let finished = finished_tx.clone();
        tokio::spawn(async move {
            match app.tls().map(|tls| tls.acceptor()) {
                Some(acceptor) => {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(tls_stream)) => serve_connection(tls_stream, app, peer, stop).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
                None => serve_connection(stream, app, peer, stop).await,
            }
            drop(permit);
            drop(finished);
        });
    }

    drop(listener);
    tracing::info!("shutting down: finishing in-flight requests");
    let _ = stop.send(());
    drop(finished_tx);
    let _ = all_finished.recv().await;
    app.close().await;
    tracing::info!("store closed; bye");
    Ok(())
}
