//! `parley serve`: bind, open the app, tell systemd, run until a signal, shut down cleanly;
//! with the watchdog pings and the SIGHUP certificate reload beside it.
//!
//! Must not: hold rules or touch the store beyond opening the app.

use anyhow::Context;

use crate::app::App;
use crate::config::Config;

pub(super) async fn serve(config: Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let app = App::open(config.clone())?;
    tracing::info!(
        data_dir = %config.data_dir.display(),
        registration = config.registration.as_str(),
        tls = app.tls().is_some(),
        "parley {} starting",
        env!("CARGO_PKG_VERSION")
    );
    spawn_watchdog(&app);
    spawn_tls_reloader(&app);
    crate::systemd::notify("READY=1");
    let signalled = shutdown_signal();
    let stopping = async {
        signalled.await;
        crate::systemd::notify("STOPPING=1");
    };
    crate::server::run(listener, app, stopping).await?;
    Ok(())
}

/// Pings systemd's watchdog (when it asked for pings) while the store answers and the accept
/// loop comes round; a stuck server stops pinging and systemd restarts it.
fn spawn_watchdog(app: &App) {
    let Some(every) = crate::systemd::watchdog_interval() else {
        return;
    };
    let app = app.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if app.healthy(every.max(crate::server::LIVENESS_TICK * 3)) {
                crate::systemd::notify("WATCHDOG=1");
            } else {
                tracing::error!("unhealthy: not pinging the systemd watchdog");
            }
        }
    });
}

/// Handles SIGHUP (`systemctl reload`): reloads the TLS certificate and key when HTTPS is on,
/// and otherwise just says there is nothing to reload. Without a handler, SIGHUP's default
/// action would end the process.
fn spawn_tls_reloader(app: &App) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let tls = app.tls().cloned();
        // Installed before the server starts listening, for the same reason as shutdown_signal.
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; reload disabled");
            return;
        };
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                match &tls {
                    None => tracing::info!("SIGHUP: nothing to reload (no TLS configured)"),
                    Some(tls) => match tls.reload() {
                        Ok(()) => tracing::info!("TLS certificate reloaded"),
                        Err(e) => {
                            tracing::error!(error = %e, "TLS reload failed; keeping the old certificate")
                        }
                    },
                }
            }
        });
    }
}

/// Resolves on Ctrl-C or SIGTERM (what systemd sends). The handlers are installed when this is
/// called, not when the future is first polled, so a signal sent the moment the "listening"
/// line appears is already ours (otherwise its default action would kill the process).
fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let handlers = signal(SignalKind::terminate()).and_then(|terminate| {
            signal(SignalKind::interrupt()).map(|interrupt| (terminate, interrupt))
        });
        async move {
            match handlers {
                Ok((mut terminate, mut interrupt)) => tokio::select! {
                    _ = terminate.recv() => tracing::info!("SIGTERM received"),
                    _ = interrupt.recv() => tracing::info!("interrupt received"),
                },
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM/SIGINT");
                    std::future::pending::<()>().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("interrupt received");
    }
}
