//! `Application`: connect, migrate, bind, route; then serve until stopped.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use poem::{Server, listener::TcpAcceptor};
use tokio::{net::TcpListener, sync::Notify};

use crate::{
    api::{self, AppState},
    auth::AuthService,
    config::{BootstrapAdmin, Config, JwtKey},
    domain::{Email, Password},
    infra::db::{Database, StatementObserver},
    infra::listener::HeadDeadlineAcceptor,
    infra::metrics::Metrics,
    mail::sender::Sender,
    store::Store,
};

/// A connection with no bytes moving for this long is closed: idle
/// keep-alive connections, and clients that stall mid-request, do not hold
/// sockets and memory forever. Clients that trickle bytes are cut off by
/// [`crate::config::ClientTimeouts`].
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long in-flight requests may take to finish after a stop signal.
pub const GRACE_PERIOD: Duration = Duration::from_secs(30);

/// A bound, migrated, ready-to-serve Roster.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    port: u16,
    state: AppState,
    stop: Arc<Notify>,
    sender: Sender,
    pruner: crate::audit::Pruner,
}

/// Stops a running [`Application`] as SIGTERM would (for tests and embedding).
#[derive(Debug, Clone)]
pub struct StopHandle(Arc<Notify>);

impl StopHandle {
    /// Asks the server to stop accepting and drain in-flight requests.
    pub fn stop(&self) {
        self.0.notify_one();
    }
}

impl Application {
    /// Connects to the database, applies pending migrations and binds the
    /// listener (port 0 picks a free port; see [`Self::port`]).
    ///
    /// # Errors
    ///
    /// When the database cannot be opened or migrated, or the address cannot be bound.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let mut db = Database::connect(&config.database).await?;
        db.migrate().await?;
        let metrics = if config.metrics {
            Some(Arc::new(Metrics::new(&db)?))
        } else {
            None
        };
        db.instrument(metrics.clone().map(|m| m as Arc<dyn StatementObserver>));
        let listener = TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("cannot listen on {}", config.bind))?;
        let port = listener.local_addr()?.port();
        // Links are never built from a request's Host: on a loopback
        // address without ROSTER_PUBLIC_URL they point at this listener.
        let public_url = match &config.mail.public_url {
            Some(url) => url.clone(),
            None => format!("http://localhost:{port}").parse()?,
        };
        let store = Store::new(db.conn().clone())
            .with_write_timeout(config.database.acquire_timeout)
            .with_metrics(metrics.clone());
        let pruner = crate::audit::Pruner::new(store.clone(), config.audit);
        let mail_wake = Arc::new(Notify::new());
        let sender = Sender::new(
            &config.mail,
            store.clone(),
            Arc::clone(&mail_wake),
            metrics.clone(),
        )?;
        if let crate::config::MailTransport::Files(dir) = &config.mail.transport {
            tracing::warn!(
                dir = %dir.display(),
                "ROSTER_SMTP_URL is not set: mail is written to files instead of sent"
            );
        }
        let auth = Arc::new(AuthService::new(
            &config,
            store,
            metrics.clone(),
            public_url,
            mail_wake,
        )?);
        if let Some(admin) = &config.bootstrap_admin {
            bootstrap_admin(&auth, admin).await?;
        }
        if matches!(config.jwt.key, JwtKey::Generated(_)) {
            tracing::warn!(
                "ROSTER_JWT_SECRET is not set: using a random key, so tokens will not survive a restart"
            );
        }
        Ok(Self {
            listener,
            port,
            state: AppState {
                db,
                config,
                started: Instant::now(),
                auth,
                metrics,
            },
            stop: Arc::new(Notify::new()),
            sender,
            pruner,
        })
    }

    /// The port actually bound.
    #[must_use]
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// The database pool (tests use it to inspect state).
    #[must_use]
    pub const fn db(&self) -> &Database {
        &self.state.db
    }

    /// A handle that stops the server like a signal does.
    #[must_use]
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(Arc::clone(&self.stop))
    }

    /// Serves until SIGINT, SIGTERM or [`StopHandle::stop`]; then stops
    /// accepting, lets in-flight requests finish (up to [`GRACE_PERIOD`]) and
    /// closes the pool.
    ///
    /// # Errors
    ///
    /// When the server fails.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Self {
            listener,
            port,
            state,
            stop,
            sender,
            pruner,
        } = self;
        let sender_stop = Arc::new(Notify::new());
        let sending = tokio::spawn(sender.run(Arc::clone(&sender_stop)));
        let pruning = tokio::spawn(pruner.run());
        tracing::info!(port, backend = ?state.db.backend(), "roster is serving");
        let endpoint = api::app(&state);
        let os_signal = shutdown_signal();
        let signal = async move {
            tokio::select! {
                () = stop.notified() => {}
                () = os_signal => {}
            }
            tracing::info!("stop requested: draining in-flight requests");
        };
        let acceptor = HeadDeadlineAcceptor::new(
            TcpAcceptor::from_tokio(listener)?,
            state.config.client_timeouts.head,
        );
        Server::new_with_acceptor(acceptor)
            .idle_timeout(IDLE_TIMEOUT)
            .run_with_graceful_shutdown(endpoint, signal, Some(GRACE_PERIOD))
            .await
            .context("server failed")?;
        // The mail in flight is finished; queued mail waits in the outbox.
        sender_stop.notify_one();
        pruning.abort();
        if tokio::time::timeout(GRACE_PERIOD, sending).await.is_err() {
            tracing::warn!("the mail sender did not finish in time");
        }
        state.db.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Creates the configured admin when no admin exists yet.
async fn bootstrap_admin(auth: &AuthService, admin: &BootstrapAdmin) -> anyhow::Result<()> {
    use secrecy::ExposeSecret as _;
    let email = Email::parse(&admin.email)
        .map_err(|e| anyhow::anyhow!("invalid ROSTER_ADMIN_EMAIL: {e}"))?;
    let password = Password::parse(admin.password.expose_secret())
        .map_err(|e| anyhow::anyhow!("invalid ROSTER_ADMIN_PASSWORD: it {e}"))?;
    if auth
        .bootstrap_admin(&email, &password)
        .await
        .map_err(|e| anyhow::anyhow!("creating the bootstrap admin: {e}"))?
    {
        tracing::info!(email = email.as_ref(), "created the bootstrap admin");
    }
    Ok(())
}

/// SIGINT or SIGTERM. The handlers are installed when this is called, before
/// the server accepts anything, so an early signal is never the default
/// (immediate) termination.
#[cfg(unix)]
fn shutdown_signal() -> impl Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = signal(SignalKind::interrupt()).ok();
    let terminate = signal(SignalKind::terminate()).ok();
    async move {
        let wait = |s: Option<tokio::signal::unix::Signal>| async move {
            match s {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = wait(interrupt) => {}
            () = wait(terminate) => {}
        }
    }
}

/// Ctrl-C elsewhere.
#[cfg(not(unix))]
fn shutdown_signal() -> impl Future<Output = ()> {
    async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
