//! Validated configuration: raw [`Settings`] become a typed [`Config`] once, at start-up.
//!
//! Each rejected value produces one [`ConfigError`] line that names the setting
//! and says what would be accepted. Secrets are held in [`SecretString`], so
//! `Debug` and `roster check-config` never print them.

use std::{fmt, net::SocketAddr, path::PathBuf, time::Duration};

use jsonwebtoken::{Algorithm, EncodingKey};
use secrecy::{ExposeSecret, SecretString};

use crate::cli::Settings;

/// A setting that cannot be used, with the reason.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid {setting}: {reason}")]
pub struct ConfigError {
    /// The environment variable that names the setting.
    pub setting: &'static str,
    /// What is wrong and what would be accepted.
    pub reason: String,
}

impl ConfigError {
    fn new(setting: &'static str, reason: impl Into<String>) -> Self {
        Self {
            setting,
            reason: reason.into(),
        }
    }
}

/// Everything the service needs, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// Database connection and pool.
    pub database: DatabaseConfig,
    /// Listen address; port 0 picks a free port.
    pub bind: SocketAddr,
    /// Token signing and lifetimes.
    pub jwt: JwtConfig,
    /// bcrypt work factor (4-31).
    pub bcrypt_cost: u32,
    /// The algorithm new password hashes are made with.
    pub password_hash: crate::auth::password::Algorithm,
    /// Whether `POST /auth/register` is open.
    pub allow_registration: bool,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// How long a client may take to send a request (not settable from the
    /// environment; tests shorten it).
    pub client_timeouts: ClientTimeouts,
    /// Login throttling.
    pub login_limits: LoginLimits,
    /// Serve `/docs` and `/openapi.json`.
    pub docs: bool,
    /// Serve `/metrics`.
    pub metrics: bool,
    /// First admin to create at start-up when no admin exists.
    pub bootstrap_admin: Option<BootstrapAdmin>,
    /// Log output.
    pub log: LogConfig,
    /// Trace export.
    pub otel: OtelConfig,
    /// Where mail goes and where its links point.
    pub mail: MailConfig,
    /// One-time tokens and the account lifecycle's switches.
    pub lifecycle: LifecycleConfig,
    /// The audit log's retention.
    pub audit: AuditConfig,
}

/// How long audit events are kept, and how often old ones are pruned.
#[derive(Debug, Clone, Copy)]
pub struct AuditConfig {
    /// Events older than this are deleted.
    pub retention: Duration,
    /// How often the pruner looks.
    pub prune_interval: Duration,
}

/// Mail delivery.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// An SMTP server, or a folder of `.eml` files.
    pub transport: MailTransport,
    /// The From address.
    pub from: lettre::message::Mailbox,
    /// The base of every link in a mail; `None` until the listener is
    /// bound on a loopback address (then `http://localhost:PORT`).
    pub public_url: Option<url::Url>,
    /// The delays between delivery attempts of a mail that failed for now;
    /// after the last one it is recorded as failed (not settable from the
    /// environment; tests shorten it).
    pub retry_delays: Vec<Duration>,
    /// How often the sender looks for due mail when nothing woke it.
    pub poll_interval: Duration,
}

/// Where mail is delivered.
#[derive(Debug, Clone)]
pub enum MailTransport {
    /// An SMTP server.
    Smtp(SmtpServer),
    /// `.eml` files in a folder (no `ROSTER_SMTP_URL`).
    Files(PathBuf),
}

/// An SMTP server from `ROSTER_SMTP_URL`.
#[derive(Clone)]
pub struct SmtpServer {
    /// How the connection is secured.
    pub security: SmtpSecurity,
    /// Host name (checked against the certificate).
    pub host: String,
    /// Port.
    pub port: u16,
    /// User name and password, from the URL.
    pub credentials: Option<(String, SecretString)>,
}

impl fmt::Debug for SmtpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl SmtpServer {
    /// The server as `check-config` prints it, the password redacted.
    #[must_use]
    pub fn describe(&self) -> String {
        let (scheme, query) = match self.security {
            SmtpSecurity::StartTls => ("smtp", ""),
            SmtpSecurity::ImplicitTls => ("smtps", ""),
            SmtpSecurity::None => ("smtp", "?tls=none"),
        };
        let user = self
            .credentials
            .as_ref()
            .map(|(user, _)| format!("{user}:[redacted]@"))
            .unwrap_or_default();
        format!("{scheme}://{user}{}:{}{query}", self.host, self.port)
    }
}

/// How an SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `smtp://`: STARTTLS, required.
    StartTls,
    /// `smtps://`: TLS from the first byte.
    ImplicitTls,
    /// `smtp://…?tls=none`: plain text, for a relay on the same host.
    None,
}

/// One-time tokens and the lifecycle's switches.
#[derive(Debug, Clone, Copy)]
pub struct LifecycleConfig {
    /// Lifetime of verification and email change links.
    pub verify_ttl: Duration,
    /// Lifetime of password reset links.
    pub reset_ttl: Duration,
    /// Lifetime of invitation links.
    pub invite_ttl: Duration,
    /// Refuse the right password of an unverified account.
    pub require_verified_email: bool,
    /// A user's own email change waits for the new address's confirmation.
    pub confirm_email_change: bool,
    /// At most one reset mail, and one verification mail, per account per
    /// this long.
    pub mail_interval: Duration,
}

/// Deadlines for a client's request to arrive: slow-loris clients that
/// trickle bytes never hold a connection or a worker for long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientTimeouts {
    /// From the connection's start, or the first byte of a later request on
    /// it, until the blank line that ends the head; past it the connection
    /// is closed.
    pub head: Duration,
    /// For the whole body once the head is in; past it a `400` problem.
    pub body: Duration,
}

impl Default for ClientTimeouts {
    fn default() -> Self {
        Self {
            head: Duration::from_secs(10),
            body: Duration::from_secs(30),
        }
    }
}

/// Which database, and how many connections.
#[derive(Clone)]
pub struct DatabaseConfig {
    /// Connection URL; may hold a password, so `Debug` hides it.
    pub url: SecretString,
    /// Which driver the URL selects.
    pub backend: Backend,
    /// Pool maximum.
    pub max_connections: u32,
    /// Pool minimum.
    pub min_connections: u32,
    /// Wait for a pooled connection before giving up with 503.
    pub acquire_timeout: Duration,
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &redact_url(self.url.expose_secret()))
            .field("backend", &self.backend)
            .field("max_connections", &self.max_connections)
            .field("min_connections", &self.min_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish()
    }
}

/// The database driver a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `sqlite://…` or `sqlite::memory:`.
    Sqlite,
    /// `postgres://…` or `postgresql://…`.
    Postgres,
}

/// Signing key and token lifetimes.
#[derive(Debug, Clone)]
pub struct JwtConfig {
    /// How tokens are signed.
    pub key: JwtKey,
    /// `iss` claim.
    pub issuer: String,
    /// `aud` claim.
    pub audience: String,
    /// Access token lifetime.
    pub access_ttl: Duration,
    /// Refresh token lifetime.
    pub refresh_ttl: Duration,
    /// Keys of earlier configurations, for verification only.
    pub previous: Vec<JwtKey>,
}

/// The configured signing key.
#[derive(Debug, Clone)]
pub enum JwtKey {
    /// HS256 with `ROSTER_JWT_SECRET`.
    Secret(SecretString),
    /// HS256 with a key generated for this process: tokens die on restart.
    Generated(SecretString),
    /// EdDSA or RS256 with a PEM private key file.
    PrivateKey {
        /// `EdDSA` or `RS256`, from the key's type.
        algorithm: Algorithm,
        /// Where the key was read from.
        path: PathBuf,
        /// The PEM text.
        pem: SecretString,
    },
}

/// Login throttling limits.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    /// Failures per account within `window`.
    pub max_failures: u32,
    /// Failures per client address within `window`.
    pub max_failures_per_ip: u32,
    /// Counting window.
    pub window: Duration,
}

/// The admin created at start-up when none exists.
#[derive(Debug, Clone)]
pub struct BootstrapAdmin {
    /// Email of the admin.
    pub email: String,
    /// Its password.
    pub password: SecretString,
}

/// Log format and filter.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Output format.
    pub format: LogFormat,
    /// `EnvFilter` directives.
    pub filter: String,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable, for terminals.
    Pretty,
}

/// Trace export settings.
#[derive(Debug, Clone)]
pub struct OtelConfig {
    /// OTLP/HTTP endpoint; no export when unset.
    pub endpoint: Option<String>,
    /// `service.name`.
    pub service_name: String,
}

const MIN_SECRET_BYTES: usize = 32;

impl Config {
    /// Validates raw settings.
    ///
    /// # Errors
    ///
    /// The first setting that cannot be used, by name.
    pub fn from_settings(s: &Settings) -> Result<Self, ConfigError> {
        let backend = parse_backend(&s.database_url)?;
        let in_memory = backend == Backend::Sqlite && s.database_url.contains(":memory:");
        let max_connections = match &s.db_max_connections {
            Some(v) => parse_range("ROSTER_DB_MAX_CONNECTIONS", v, 1, 10_000)?,
            None if in_memory => 1,
            None => 16,
        };
        if in_memory && max_connections != 1 {
            return Err(ConfigError::new(
                "ROSTER_DB_MAX_CONNECTIONS",
                "an in-memory SQLite database needs exactly 1 connection (each connection would be a different database)",
            ));
        }
        let min_connections = parse_range(
            "ROSTER_DB_MIN_CONNECTIONS",
            &s.db_min_connections,
            0,
            10_000,
        )?;
        if min_connections > max_connections {
            return Err(ConfigError::new(
                "ROSTER_DB_MIN_CONNECTIONS",
                format!(
                    "{min_connections} is more than ROSTER_DB_MAX_CONNECTIONS ({max_connections})"
                ),
            ));
        }
        let database = DatabaseConfig {
            url: SecretString::from(s.database_url.clone()),
            backend,
            max_connections,
            min_connections,
            acquire_timeout: parse_seconds("ROSTER_DB_ACQUIRE_TIMEOUT", &s.db_acquire_timeout)?,
        };

        let bind = s.bind.parse::<SocketAddr>().map_err(|_| {
            ConfigError::new(
                "ROSTER_BIND",
                format!("`{}` is not an address such as 127.0.0.1:8080", s.bind),
            )
        })?;

        let jwt = JwtConfig {
            key: parse_jwt_key(s.jwt_secret.as_deref(), s.jwt_private_key_file.as_deref())?,
            issuer: non_empty("ROSTER_JWT_ISSUER", &s.jwt_issuer)?,
            audience: non_empty("ROSTER_JWT_AUDIENCE", &s.jwt_audience)?,
            access_ttl: parse_seconds("ROSTER_ACCESS_TOKEN_TTL", &s.access_token_ttl)?,
            refresh_ttl: parse_seconds("ROSTER_REFRESH_TOKEN_TTL", &s.refresh_token_ttl)?,
            previous: parse_previous_keys(
                s.jwt_previous_secrets.as_deref(),
                s.jwt_previous_key_files.as_deref(),
            )?,
        };

        let login_limits = LoginLimits {
            max_failures: parse_range(
                "ROSTER_LOGIN_MAX_FAILURES",
                &s.login_max_failures,
                1,
                1_000_000,
            )?,
            max_failures_per_ip: parse_range(
                "ROSTER_LOGIN_MAX_FAILURES_PER_IP",
                &s.login_max_failures_per_ip,
                1,
                1_000_000,
            )?,
            window: parse_seconds("ROSTER_LOGIN_WINDOW", &s.login_window)?,
        };

        let bootstrap_admin = match (&s.admin_email, &s.admin_password) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "ROSTER_ADMIN_PASSWORD",
                    "must be set when ROSTER_ADMIN_EMAIL is",
                ));
            }
            (Some(email), Some(password)) => Some(BootstrapAdmin {
                email: non_empty("ROSTER_ADMIN_EMAIL", email)?,
                password: SecretString::from(password.clone()),
            }),
        };

        let format = match s.log_format.as_deref() {
            None => {
                if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                    LogFormat::Pretty
                } else {
                    LogFormat::Json
                }
            }
            Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            Some(other) => {
                return Err(ConfigError::new(
                    "ROSTER_LOG_FORMAT",
                    format!("`{other}` is neither `json` nor `pretty`"),
                ));
            }
        };
        tracing_subscriber::EnvFilter::try_new(&s.log_filter)
            .map_err(|e| ConfigError::new("RUST_LOG", e.to_string()))?;

        let mail = MailConfig {
            transport: match s.smtp_url.as_deref().filter(|u| !u.is_empty()) {
                Some(url) => MailTransport::Smtp(parse_smtp_url(url)?),
                None => {
                    MailTransport::Files(PathBuf::from(non_empty("ROSTER_MAIL_DIR", &s.mail_dir)?))
                }
            },
            from: s.mail_from.trim().parse().map_err(|_| {
                ConfigError::new(
                    "ROSTER_MAIL_FROM",
                    format!(
                        "`{}` is not an address such as `Roster <roster@example.com>`",
                        s.mail_from
                    ),
                )
            })?,
            public_url: match s.public_url.as_deref().filter(|u| !u.is_empty()) {
                Some(url) => Some(parse_public_url(url)?),
                None if bind.ip().is_loopback() => None,
                None => {
                    return Err(ConfigError::new(
                        "ROSTER_PUBLIC_URL",
                        format!(
                            "must be set when ROSTER_BIND ({bind}) is not a loopback address: it is the base of every link in a mail"
                        ),
                    ));
                }
            },
            retry_delays: default_retry_delays(),
            poll_interval: Duration::from_secs(5),
        };
        let lifecycle = LifecycleConfig {
            verify_ttl: parse_seconds("ROSTER_VERIFY_TOKEN_TTL", &s.verify_token_ttl)?,
            reset_ttl: parse_seconds("ROSTER_RESET_TOKEN_TTL", &s.reset_token_ttl)?,
            invite_ttl: parse_seconds("ROSTER_INVITE_TOKEN_TTL", &s.invite_token_ttl)?,
            require_verified_email: parse_bool(
                "ROSTER_REQUIRE_VERIFIED_EMAIL",
                &s.require_verified_email,
            )?,
            confirm_email_change: parse_bool(
                "ROSTER_CONFIRM_EMAIL_CHANGE",
                &s.confirm_email_change,
            )?,
            mail_interval: Duration::from_secs(60),
        };
        let bcrypt_cost = parse_range("ROSTER_BCRYPT_COST", &s.bcrypt_cost, 4, 31)?;
        let password_hash = match s.password_hash.trim().to_ascii_lowercase().as_str() {
            "bcrypt" => crate::auth::password::Algorithm::Bcrypt { cost: bcrypt_cost },
            "argon2id" => crate::auth::password::Algorithm::Argon2id {
                // At least 8 KiB, argon2's minimum for one lane; at most 4 GiB.
                memory_kib: parse_range(
                    "ROSTER_ARGON2_MEMORY_KIB",
                    &s.argon2_memory_kib,
                    8,
                    4 * 1024 * 1024,
                )?,
                iterations: parse_range("ROSTER_ARGON2_ITERATIONS", &s.argon2_iterations, 1, 100)?,
            },
            other => {
                return Err(ConfigError::new(
                    "ROSTER_PASSWORD_HASH",
                    format!("`{other}` is not `bcrypt` or `argon2id`"),
                ));
            }
        };
        let audit = AuditConfig {
            retention: Duration::from_secs(
                86_400
                    * parse_range::<u64>(
                        "ROSTER_AUDIT_RETENTION_DAYS",
                        &s.audit_retention_days,
                        1,
                        36_500,
                    )?,
            ),
            prune_interval: Duration::from_secs(3600),
        };

        Ok(Self {
            database,
            bind,
            jwt,
            bcrypt_cost,
            password_hash,
            allow_registration: parse_bool("ROSTER_ALLOW_REGISTRATION", &s.allow_registration)?,
            max_body_bytes: parse_range("ROSTER_MAX_BODY_BYTES", &s.max_body_bytes, 1, 1 << 30)?,
            client_timeouts: ClientTimeouts::default(),
            login_limits,
            docs: parse_bool("ROSTER_DOCS", &s.docs)?,
            metrics: parse_bool("ROSTER_METRICS", &s.metrics)?,
            bootstrap_admin,
            log: LogConfig {
                format,
                filter: s.log_filter.clone(),
            },
            otel: OtelConfig {
                endpoint: s.otlp_endpoint.clone().filter(|e| !e.is_empty()),
                service_name: non_empty("OTEL_SERVICE_NAME", &s.otel_service_name)?,
            },
            mail,
            lifecycle,
            audit,
        })
    }

    /// The effective values as `(variable, value)` rows, secrets redacted, for `check-config`.
    #[must_use]
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let key = match &self.jwt.key {
            JwtKey::Secret(_) => "HS256 with ROSTER_JWT_SECRET ([redacted])".to_owned(),
            JwtKey::Generated(_) => {
                "HS256 with a random per-process key (tokens die on restart)".to_owned()
            }
            JwtKey::PrivateKey {
                algorithm, path, ..
            } => format!("{algorithm:?} with {}", path.display()),
        };
        let admin = self.bootstrap_admin.as_ref().map_or_else(
            || "(unset)".to_owned(),
            |a| format!("{} (password [redacted])", a.email),
        );
        vec![
            (
                "DATABASE_URL",
                redact_url(self.database.url.expose_secret()),
            ),
            ("ROSTER_BIND", self.bind.to_string()),
            ("ROSTER_JWT_SECRET / ROSTER_JWT_PRIVATE_KEY_FILE", key),
            (
                "ROSTER_JWT_PREVIOUS_SECRETS / ROSTER_JWT_PREVIOUS_KEY_FILES",
                previous_keys(&self.jwt.previous),
            ),
            ("ROSTER_JWT_ISSUER", self.jwt.issuer.clone()),
            ("ROSTER_JWT_AUDIENCE", self.jwt.audience.clone()),
            (
                "ROSTER_ACCESS_TOKEN_TTL",
                self.jwt.access_ttl.as_secs().to_string(),
            ),
            (
                "ROSTER_REFRESH_TOKEN_TTL",
                self.jwt.refresh_ttl.as_secs().to_string(),
            ),
            ("ROSTER_BCRYPT_COST", self.bcrypt_cost.to_string()),
            (
                "ROSTER_PASSWORD_HASH",
                match self.password_hash {
                    crate::auth::password::Algorithm::Bcrypt { .. } => "bcrypt".into(),
                    crate::auth::password::Algorithm::Argon2id {
                        memory_kib,
                        iterations,
                    } => format!("argon2id (m = {memory_kib} KiB, t = {iterations}, p = 1)"),
                },
            ),
            (
                "ROSTER_ALLOW_REGISTRATION",
                self.allow_registration.to_string(),
            ),
            ("ROSTER_MAX_BODY_BYTES", self.max_body_bytes.to_string()),
            (
                "ROSTER_LOGIN_MAX_FAILURES",
                self.login_limits.max_failures.to_string(),
            ),
            (
                "ROSTER_LOGIN_MAX_FAILURES_PER_IP",
                self.login_limits.max_failures_per_ip.to_string(),
            ),
            (
                "ROSTER_LOGIN_WINDOW",
                self.login_limits.window.as_secs().to_string(),
            ),
            ("ROSTER_DOCS", self.docs.to_string()),
            ("ROSTER_METRICS", self.metrics.to_string()),
            (
                "ROSTER_DB_MAX_CONNECTIONS",
                self.database.max_connections.to_string(),
            ),
            (
                "ROSTER_DB_MIN_CONNECTIONS",
                self.database.min_connections.to_string(),
            ),
            (
                "ROSTER_DB_ACQUIRE_TIMEOUT",
                self.database.acquire_timeout.as_secs().to_string(),
            ),
            ("ROSTER_ADMIN_EMAIL / ROSTER_ADMIN_PASSWORD", admin),
            (
                "ROSTER_LOG_FORMAT",
                match self.log.format {
                    LogFormat::Json => "json",
                    LogFormat::Pretty => "pretty",
                }
                .to_owned(),
            ),
            ("RUST_LOG", self.log.filter.clone()),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                self.otel
                    .endpoint
                    .clone()
                    .unwrap_or_else(|| "(unset)".to_owned()),
            ),
            ("OTEL_SERVICE_NAME", self.otel.service_name.clone()),
            (
                "ROSTER_SMTP_URL / ROSTER_MAIL_DIR",
                match &self.mail.transport {
                    MailTransport::Smtp(server) => server.describe(),
                    MailTransport::Files(dir) => {
                        format!("(unset) mail written to {}", dir.display())
                    }
                },
            ),
            ("ROSTER_MAIL_FROM", self.mail.from.to_string()),
            (
                "ROSTER_PUBLIC_URL",
                self.mail.public_url.as_ref().map_or_else(
                    || format!("http://localhost:{}", self.bind.port()),
                    ToString::to_string,
                ),
            ),
            (
                "ROSTER_AUDIT_RETENTION_DAYS",
                (self.audit.retention.as_secs() / 86_400).to_string(),
            ),
            (
                "ROSTER_VERIFY_TOKEN_TTL",
                self.lifecycle.verify_ttl.as_secs().to_string(),
            ),
            (
                "ROSTER_RESET_TOKEN_TTL",
                self.lifecycle.reset_ttl.as_secs().to_string(),
            ),
            (
                "ROSTER_INVITE_TOKEN_TTL",
                self.lifecycle.invite_ttl.as_secs().to_string(),
            ),
            (
                "ROSTER_REQUIRE_VERIFIED_EMAIL",
                self.lifecycle.require_verified_email.to_string(),
            ),
            (
                "ROSTER_CONFIRM_EMAIL_CHANGE",
                self.lifecycle.confirm_email_change.to_string(),
            ),
        ]
    }
}

fn parse_backend(url: &str) -> Result<Backend, ConfigError> {
    let scheme = url.split(':').next().unwrap_or_default();
    match scheme {
        "sqlite" if cfg!(feature = "sqlite") => Ok(Backend::Sqlite),
        "postgres" | "postgresql" if cfg!(feature = "postgres") => Ok(Backend::Postgres),
        "sqlite" => Err(ConfigError::new(
            "DATABASE_URL",
            "roster was built without sqlite support (rebuild with the `sqlite` feature)",
        )),
        "postgres" | "postgresql" => Err(ConfigError::new(
            "DATABASE_URL",
            "roster was built without postgres support (rebuild with the `postgres` feature)",
        )),
        _ => Err(ConfigError::new(
            "DATABASE_URL",
            format!(
                "unknown scheme `{scheme}`: use sqlite://path?mode=rwc or postgres://user@host/db"
            ),
        )),
    }
}

/// The keys of `ROSTER_JWT_PREVIOUS_SECRETS` and
/// `ROSTER_JWT_PREVIOUS_KEY_FILES`, each a comma-separated list.
/// The previous keys as `check-config` shows them: secrets counted, files named.
fn previous_keys(keys: &[JwtKey]) -> String {
    if keys.is_empty() {
        return "(none)".to_owned();
    }
    keys.iter()
        .map(|key| match key {
            JwtKey::Secret(_) | JwtKey::Generated(_) => "HS256 [redacted]".to_owned(),
            JwtKey::PrivateKey {
                algorithm, path, ..
            } => format!("{algorithm:?} with {}", path.display()),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse_previous_keys(
    secrets: Option<&str>,
    files: Option<&str>,
) -> Result<Vec<JwtKey>, ConfigError> {
    let items = |list: Option<&str>| -> Vec<String> {
        list.unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(ToOwned::to_owned)
            .collect()
    };
    let mut keys = Vec::new();
    for secret in items(secrets) {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(ConfigError::new(
                "ROSTER_JWT_PREVIOUS_SECRETS",
                format!(
                    "each must be at least {MIN_SECRET_BYTES} bytes (one has {})",
                    secret.len()
                ),
            ));
        }
        keys.push(JwtKey::Secret(SecretString::from(secret)));
    }
    for path in items(files) {
        keys.push(read_key_file("ROSTER_JWT_PREVIOUS_KEY_FILES", &path)?);
    }
    Ok(keys)
}

/// A PEM Ed25519 or RSA private key file, for `setting`.
fn read_key_file(setting: &'static str, path: &str) -> Result<JwtKey, ConfigError> {
    let pem = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(setting, format!("cannot read `{path}`: {e}")))?;
    let algorithm = if EncodingKey::from_ed_pem(pem.as_bytes()).is_ok() {
        Algorithm::EdDSA
    } else if EncodingKey::from_rsa_pem(pem.as_bytes()).is_ok() {
        Algorithm::RS256
    } else {
        return Err(ConfigError::new(
            setting,
            format!("`{path}` is not a PEM Ed25519 or RSA private key"),
        ));
    };
    Ok(JwtKey::PrivateKey {
        algorithm,
        path: PathBuf::from(path),
        pem: SecretString::from(pem),
    })
}

fn parse_jwt_key(secret: Option<&str>, key_file: Option<&str>) -> Result<JwtKey, ConfigError> {
    if let Some(path) = key_file.filter(|p| !p.is_empty()) {
        return read_key_file("ROSTER_JWT_PRIVATE_KEY_FILE", path);
    }
    match secret {
        Some(s) if s.len() < MIN_SECRET_BYTES => Err(ConfigError::new(
            "ROSTER_JWT_SECRET",
            format!(
                "must be at least {MIN_SECRET_BYTES} bytes (got {}); generate one with `openssl rand -base64 48`",
                s.len()
            ),
        )),
        Some(s) => Ok(JwtKey::Secret(SecretString::from(s.to_owned()))),
        None => {
            use base64::Engine as _;
            let bytes: [u8; 48] = rand::random();
            Ok(JwtKey::Generated(SecretString::from(
                base64::engine::general_purpose::STANDARD.encode(bytes),
            )))
        }
    }
}

fn parse_range<T>(setting: &'static str, raw: &str, min: T, max: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
{
    match raw.trim().parse::<T>() {
        Ok(v) if v >= min && v <= max => Ok(v),
        _ => Err(ConfigError::new(
            setting,
            format!("`{raw}` is not a whole number from {min} to {max}"),
        )),
    }
}

fn parse_seconds(setting: &'static str, raw: &str) -> Result<Duration, ConfigError> {
    // Up to ten years: anything longer is a typo, and it keeps timestamps in range.
    parse_range::<u64>(setting, raw, 1, 10 * 365 * 24 * 3600).map(Duration::from_secs)
}

fn parse_bool(setting: &'static str, raw: &str) -> Result<bool, ConfigError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::new(
            setting,
            format!("`{raw}` is not a boolean (true or false)"),
        )),
    }
}

fn non_empty(setting: &'static str, raw: &str) -> Result<String, ConfigError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        Err(ConfigError::new(setting, "must not be empty"))
    } else {
        Ok(trimmed.to_owned())
    }
}

/// Retries after 30 s, 2 min, 10 min, 30 min, 1 h and 2 h: six more tries
/// over 3 h 42 min, the first within a minute.
fn default_retry_delays() -> Vec<Duration> {
    [30, 120, 600, 1800, 3600, 7200]
        .into_iter()
        .map(Duration::from_secs)
        .collect()
}

fn parse_smtp_url(raw: &str) -> Result<SmtpServer, ConfigError> {
    const SETTING: &str = "ROSTER_SMTP_URL";
    let bad = |why: &str| {
        // The URL may hold a password: name the problem, never echo the value.
        ConfigError::new(
            SETTING,
            format!(
                "{why} (expected smtp://user:pass@host:587, smtps://host:465 or smtp://host:25?tls=none)"
            ),
        )
    };
    let url = url::Url::parse(raw).map_err(|_| bad("not a URL"))?;
    let mut security = match url.scheme() {
        "smtp" => SmtpSecurity::StartTls,
        "smtps" => SmtpSecurity::ImplicitTls,
        _ => return Err(bad("the scheme is neither smtp nor smtps")),
    };
    for (key, value) in url.query_pairs() {
        match (key.as_ref(), value.as_ref(), security) {
            ("tls", "none", SmtpSecurity::StartTls) => security = SmtpSecurity::None,
            ("tls", "required", SmtpSecurity::StartTls) => {}
            _ => return Err(bad("the only query it takes is tls=none (on smtp://)")),
        }
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = url.port().unwrap_or(match security {
        SmtpSecurity::StartTls => 587,
        SmtpSecurity::ImplicitTls => 465,
        SmtpSecurity::None => 25,
    });
    let decode = |part: &str| {
        percent_decode(part)
            .ok_or_else(|| bad("the user or password is not valid percent-encoded UTF-8"))
    };
    let credentials = if url.username().is_empty() {
        None
    } else {
        Some((
            decode(url.username())?,
            SecretString::from(decode(url.password().unwrap_or_default())?),
        ))
    };
    Ok(SmtpServer {
        security,
        host,
        port,
        credentials,
    })
}

/// `%XX` sequences decoded, as URLs carry user names and passwords.
fn percent_decode(part: &str) -> Option<String> {
    percent_encoding::percent_decode_str(part)
        .decode_utf8()
        .ok()
        .map(std::borrow::Cow::into_owned)
}

fn parse_public_url(raw: &str) -> Result<url::Url, ConfigError> {
    const SETTING: &str = "ROSTER_PUBLIC_URL";
    let bad = || {
        ConfigError::new(
            SETTING,
            format!("`{raw}` is not an absolute http(s) URL such as https://id.example.com"),
        )
    };
    let mut url = url::Url::parse(raw.trim()).map_err(|_| bad())?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
    {
        return Err(bad());
    }
    // Links append `/account/…` to the path: keep it without a trailing slash.
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&path);
    Ok(url)
}

/// Hides the password of `scheme://user:password@host/…`.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:[redacted]@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(edit: impl FnOnce(&mut Settings)) -> Result<Config, ConfigError> {
        let mut s = Settings::default();
        edit(&mut s);
        Config::from_settings(&s)
    }

    #[test]
    fn defaults_are_valid() {
        let c = check(|_| {}).expect("defaults parse");
        assert_eq!(c.database.backend, Backend::Sqlite);
        assert_eq!(c.database.max_connections, 16);
        assert_eq!(c.bcrypt_cost, 12);
        assert_eq!(c.max_body_bytes, 65536);
        assert!(matches!(c.jwt.key, JwtKey::Generated(_)));
    }

    #[test]
    fn each_bad_value_names_its_setting() {
        type Edit = Box<dyn FnOnce(&mut Settings)>;
        let cases: Vec<(&str, Edit)> = vec![
            (
                "DATABASE_URL",
                Box::new(|s| s.database_url = "mysql://x".into()),
            ),
            ("ROSTER_BIND", Box::new(|s| s.bind = "localhost".into())),
            (
                "ROSTER_JWT_SECRET",
                Box::new(|s| s.jwt_secret = Some("short".into())),
            ),
            (
                "ROSTER_JWT_PRIVATE_KEY_FILE",
                Box::new(|s| s.jwt_private_key_file = Some("/nonexistent/key.pem".into())),
            ),
            (
                "ROSTER_JWT_PREVIOUS_SECRETS",
                Box::new(|s| s.jwt_previous_secrets = Some("too-short, also".into())),
            ),
            (
                "ROSTER_JWT_PREVIOUS_KEY_FILES",
                Box::new(|s| s.jwt_previous_key_files = Some("/nonexistent/old.pem".into())),
            ),
            (
                "ROSTER_BCRYPT_COST",
                Box::new(|s| s.bcrypt_cost = "3".into()),
            ),
            (
                "ROSTER_BCRYPT_COST",
                Box::new(|s| s.bcrypt_cost = "32".into()),
            ),
            (
                "ROSTER_BCRYPT_COST",
                Box::new(|s| s.bcrypt_cost = "twelve".into()),
            ),
            (
                "ROSTER_ACCESS_TOKEN_TTL",
                Box::new(|s| s.access_token_ttl = "0".into()),
            ),
            (
                "ROSTER_REFRESH_TOKEN_TTL",
                Box::new(|s| s.refresh_token_ttl = "-1".into()),
            ),
            (
                "ROSTER_ALLOW_REGISTRATION",
                Box::new(|s| s.allow_registration = "maybe".into()),
            ),
            (
                "ROSTER_MAX_BODY_BYTES",
                Box::new(|s| s.max_body_bytes = "0".into()),
            ),
            (
                "ROSTER_LOGIN_MAX_FAILURES",
                Box::new(|s| s.login_max_failures = "0".into()),
            ),
            (
                "ROSTER_LOGIN_WINDOW",
                Box::new(|s| s.login_window = "x".into()),
            ),
            ("ROSTER_DOCS", Box::new(|s| s.docs = "2".into())),
            ("ROSTER_METRICS", Box::new(|s| s.metrics = "".into())),
            (
                "ROSTER_DB_MAX_CONNECTIONS",
                Box::new(|s| s.db_max_connections = Some("0".into())),
            ),
            (
                "ROSTER_DB_MIN_CONNECTIONS",
                Box::new(|s| {
                    s.db_max_connections = Some("2".into());
                    s.db_min_connections = "3".into();
                }),
            ),
            (
                "ROSTER_DB_MAX_CONNECTIONS",
                Box::new(|s| {
                    s.database_url = "sqlite::memory:".into();
                    s.db_max_connections = Some("4".into());
                }),
            ),
            (
                "ROSTER_DB_ACQUIRE_TIMEOUT",
                Box::new(|s| s.db_acquire_timeout = "0".into()),
            ),
            (
                "ROSTER_ADMIN_PASSWORD",
                Box::new(|s| s.admin_email = Some("a@b.io".into())),
            ),
            (
                "ROSTER_LOG_FORMAT",
                Box::new(|s| s.log_format = Some("xml".into())),
            ),
            (
                "OTEL_SERVICE_NAME",
                Box::new(|s| s.otel_service_name = " ".into()),
            ),
        ];
        for (setting, edit) in cases {
            let err = check(edit).expect_err(setting);
            assert_eq!(err.setting, setting, "{err}");
            let line = err.to_string();
            assert!(line.contains(setting) && !line.contains('\n'), "{line}");
        }
    }

    #[test]
    fn in_memory_sqlite_defaults_to_one_connection() {
        let c = check(|s| s.database_url = "sqlite::memory:".into()).expect("valid");
        assert_eq!(c.database.max_connections, 1);
    }

    #[test]
    fn secrets_are_redacted_in_debug_and_describe() {
        let c = check(|s| {
            s.jwt_secret = Some("s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t".into());
            s.database_url = "postgres://roster:pg-pass@db/roster".into();
            s.admin_email = Some("root@x.io".into());
            s.admin_password = Some("admin-pass-123".into());
        })
        .expect("valid");
        let debug = format!("{c:?}");
        let describe = format!("{:?}", c.describe());
        for text in [debug, describe] {
            for secret in ["s3cr3t", "pg-pass", "admin-pass-123"] {
                assert!(!text.contains(secret), "{secret} leaked: {text}");
            }
            assert!(
                text.contains("postgres://roster:[redacted]@db/roster"),
                "{text}"
            );
        }
    }

    #[test]
    fn redact_url_leaves_passwordless_urls_alone() {
        assert_eq!(
            redact_url("sqlite://roster.db?mode=rwc"),
            "sqlite://roster.db?mode=rwc"
        );
        assert_eq!(redact_url("postgres://u@h/d"), "postgres://u@h/d");
        assert_eq!(
            redact_url("postgres://u:p@h/d"),
            "postgres://u:[redacted]@h/d"
        );
    }
}
