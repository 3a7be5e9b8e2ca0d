//! The background sender: claims due mail from the outbox, delivers it, and
//! reschedules what failed for now. Several senders (one per instance) may
//! share one outbox: each mail is claimed by one of them.

use std::{sync::Arc, time::Duration};

use lettre::{
    AsyncFileTransport, AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor, address::Envelope,
    transport::smtp::authentication::Credentials,
};
use secrecy::ExposeSecret as _;
use tokio::sync::Notify;

use crate::{
    config::{MailConfig, MailTransport, SmtpSecurity},
    infra::metrics::{MailOutcome, Metrics},
    store::{ClaimedMail, Store},
};

/// How many mails one claim takes.
const BATCH: u64 = 16;

/// How long a claim keeps other senders off a mail: past it, a sender that
/// died mid-delivery has its mail delivered by another (at least once).
const CLAIM: Duration = Duration::from_secs(300);

/// Where mail goes.
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>),
}

/// Why a delivery failed.
enum Failure {
    /// Worth another try later (connection refused, a 4xx answer).
    Temporary(String),
    /// Never worth retrying (a 5xx answer).
    Permanent(String),
}

impl Transport {
    fn new(config: &MailConfig) -> anyhow::Result<Self> {
        Ok(match &config.transport {
            MailTransport::Smtp(server) => {
                let builder = match server.security {
                    SmtpSecurity::StartTls => {
                        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&server.host)?
                    }
                    SmtpSecurity::ImplicitTls => {
                        AsyncSmtpTransport::<Tokio1Executor>::relay(&server.host)?
                    }
                    SmtpSecurity::None => {
                        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&server.host)
                    }
                };
                let mut builder = builder
                    .port(server.port)
                    .timeout(Some(Duration::from_secs(30)));
                if let Some((user, password)) = &server.credentials {
                    builder = builder.credentials(Credentials::new(
                        user.clone(),
                        password.expose_secret().to_owned(),
                    ));
                }
                Self::Smtp(builder.build())
            }
            MailTransport::Files(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| {
                    anyhow::anyhow!("cannot create ROSTER_MAIL_DIR {}: {e}", dir.display())
                })?;
                Self::Files(AsyncFileTransport::new(dir))
            }
        })
    }

    async fn send(&self, mail: &ClaimedMail) -> Result<(), Failure> {
        let envelope = Envelope::new(
            Some(
                mail.sender
                    .parse()
                    .map_err(|_| Failure::Permanent("bad sender".into()))?,
            ),
            vec![
                mail.recipient
                    .parse()
                    .map_err(|_| Failure::Permanent("bad recipient".into()))?,
            ],
        )
        .map_err(|_| Failure::Permanent("bad envelope".into()))?;
        let bytes = mail.message.as_bytes();
        match self {
            Self::Smtp(smtp) => smtp
                .send_raw(&envelope, bytes)
                .await
                .map(drop)
                .map_err(|e| {
                    // The error names the server's answer, never the message.
                    if e.is_permanent() {
                        Failure::Permanent(e.to_string())
                    } else {
                        Failure::Temporary(e.to_string())
                    }
                }),
            Self::Files(files) => files
                .send_raw(&envelope, bytes)
                .await
                .map(drop)
                .map_err(|e| Failure::Temporary(e.to_string())),
        }
    }
}

/// Delivers the outbox until stopped.
pub struct Sender {
    store: Store,
    transport: Transport,
    retry_delays: Vec<Duration>,
    poll: Duration,
    wake: Arc<Notify>,
    metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

impl Sender {
    /// A sender for the configured transport; `wake` is notified when mail
    /// is queued.
    ///
    /// # Errors
    ///
    /// When the transport cannot be built (a mail folder that cannot be made).
    pub fn new(
        config: &MailConfig,
        store: Store,
        wake: Arc<Notify>,
        metrics: Option<Arc<Metrics>>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            store,
            transport: Transport::new(config)?,
            retry_delays: config.retry_delays.clone(),
            poll: config.poll_interval,
            wake,
            metrics,
        })
    }

    /// Delivers due mail until `stop` is notified; the mail in flight when
    /// it is is finished first.
    pub async fn run(self, stop: Arc<Notify>) {
        loop {
            let delivered = match self.store.claim_mail(BATCH, CLAIM).await {
                Ok(batch) => {
                    let claimed = batch.len();
                    for mail in batch {
                        self.deliver(mail).await;
                    }
                    claimed
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim mail from the outbox");
                    0
                }
            };
            self.report_outbox().await;
            if delivered as u64 == BATCH {
                // There may be more due right now.
                continue;
            }
            tokio::select! {
                () = stop.notified() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.poll) => {}
            }
        }
    }

    async fn deliver(&self, mail: ClaimedMail) {
        let outcome = match self.transport.send(&mail).await {
            Ok(()) => {
                tracing::info!(template = mail.template, mail_id = %mail.id, "mail sent");
                self.store
                    .mail_sent(mail.id)
                    .await
                    .map(|()| MailOutcome::Sent)
            }
            Err(Failure::Temporary(why)) => {
                let attempt = usize::try_from(mail.attempts).unwrap_or(usize::MAX);
                match self.retry_delays.get(attempt.saturating_sub(1)) {
                    Some(delay) => {
                        tracing::warn!(template = mail.template, mail_id = %mail.id, attempt, error = %why, "mail not delivered: will retry");
                        self.store
                            .mail_retry(mail.id, *delay, &why)
                            .await
                            .map(|()| MailOutcome::Retried)
                    }
                    None => {
                        tracing::error!(template = mail.template, mail_id = %mail.id, attempt, error = %why, "mail not delivered: giving up");
                        self.store
                            .mail_failed(mail.id, &why)
                            .await
                            .map(|()| MailOutcome::Failed)
                    }
                }
            }
            Err(Failure::Permanent(why)) => {
                tracing::error!(template = mail.template, mail_id = %mail.id, error = %why, "mail refused: not retried");
                self.store
                    .mail_failed(mail.id, &why)
                    .await
                    .map(|()| MailOutcome::Failed)
            }
        };
        match outcome {
            Ok(outcome) => {
                if let Some(metrics) = &self.metrics {
                    metrics.mail(mail.template.as_str(), outcome);
                }
            }
            // The claim runs out and the mail is tried again.
            Err(e) => tracing::warn!(error = %e, mail_id = %mail.id, "cannot record a delivery"),
        }
    }

    async fn report_outbox(&self) {
        if let Some(metrics) = &self.metrics
            && let Ok(waiting) = self.store.mail_waiting().await
        {
            metrics.set_mail_waiting(waiting);
        }
    }
}
