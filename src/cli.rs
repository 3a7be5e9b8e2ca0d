//! The command line: subcommands and every setting as a flag with its environment variable.
//!
//! Values stay raw strings here so that [`crate::config::Config::from_settings`]
//! can reject a bad one with a single line that names the setting.

use clap::{Args, Parser, Subcommand};

/// Defaults of the contract's "Running" table.
pub mod defaults {
    /// Embedded SQLite in the working directory, created on first start.
    pub const DATABASE_URL: &str = "sqlite://roster.db?mode=rwc";
    /// Loopback only: exposing the service is a deliberate choice.
    pub const BIND: &str = "127.0.0.1:8080";
    /// `iss` and `aud` claims.
    pub const JWT_ISSUER: &str = "roster";
    /// `aud` claim.
    pub const JWT_AUDIENCE: &str = "roster";
    /// Access token lifetime, seconds.
    pub const ACCESS_TOKEN_TTL: &str = "900";
    /// Refresh token lifetime, seconds (30 days).
    pub const REFRESH_TOKEN_TTL: &str = "2592000";
    /// bcrypt work factor.
    pub const BCRYPT_COST: &str = "12";
    /// `ROSTER_PASSWORD_HASH`.
    pub const PASSWORD_HASH: &str = "bcrypt";
    /// `ROSTER_ARGON2_MEMORY_KIB`: 19 MiB, OWASP's default.
    pub const ARGON2_MEMORY_KIB: &str = "19456";
    /// `ROSTER_ARGON2_ITERATIONS`.
    pub const ARGON2_ITERATIONS: &str = "2";
    /// Largest accepted request body, bytes.
    pub const MAX_BODY_BYTES: &str = "65536";
    /// Failed logins per account within the window.
    pub const LOGIN_MAX_FAILURES: &str = "10";
    /// Failed logins per client address within the window.
    pub const LOGIN_MAX_FAILURES_PER_IP: &str = "100";
    /// Login throttling window, seconds.
    pub const LOGIN_WINDOW: &str = "900";
    /// Pool minimum.
    pub const DB_MIN_CONNECTIONS: &str = "1";
    /// Seconds to wait for a pooled connection before answering 503.
    pub const DB_ACQUIRE_TIMEOUT: &str = "5";
    /// Log filter.
    pub const RUST_LOG: &str = "info";
    /// `service.name` of exported traces.
    pub const OTEL_SERVICE_NAME: &str = "roster";
    /// `ROSTER_MAIL_DIR`.
    pub const MAIL_DIR: &str = "./mail";
    /// `ROSTER_MAIL_FROM`.
    pub const MAIL_FROM: &str = "Roster <roster@localhost>";
    /// `ROSTER_AUDIT_RETENTION_DAYS`.
    pub const AUDIT_RETENTION_DAYS: &str = "90";
    /// `ROSTER_VERIFY_TOKEN_TTL`: 24 hours.
    pub const VERIFY_TOKEN_TTL: &str = "86400";
    /// `ROSTER_RESET_TOKEN_TTL`: 1 hour.
    pub const RESET_TOKEN_TTL: &str = "3600";
    /// `ROSTER_INVITE_TOKEN_TTL`: 7 days.
    pub const INVITE_TOKEN_TTL: &str = "604800";
}

/// The version and the database backends compiled in.
#[cfg(all(feature = "sqlite", feature = "postgres"))]
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (backends: sqlite, postgres)");
/// The version and the database backends compiled in.
#[cfg(all(feature = "sqlite", not(feature = "postgres")))]
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (backends: sqlite)");
/// The version and the database backends compiled in.
#[cfg(all(not(feature = "sqlite"), feature = "postgres"))]
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (backends: postgres)");

/// Roster: a user directory and authentication service.
#[derive(Debug, Parser)]
#[command(name = "roster", version = VERSION, about, long_about = None)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Settings shared by every subcommand.
    #[command(flatten)]
    pub settings: Settings,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations, then serve until SIGINT/SIGTERM (the default).
    Serve,
    /// Apply pending migrations and exit.
    Migrate {
        /// List every migration and whether it is applied, changing nothing.
        #[arg(long)]
        status: bool,
    },
    /// Validate the configuration and print the effective values, secrets redacted.
    CheckConfig,
    /// Create an admin account; exits 1 if the email is taken.
    CreateAdmin {
        /// Email of the new admin.
        #[arg(long)]
        email: String,
        /// Read the password from the first line of standard input
        /// (otherwise from `ROSTER_ADMIN_PASSWORD`).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Print recent audit events as JSON lines, newest first (read from the
    /// database: no token needed).
    Audit {
        /// Only events where this user id is the actor or the subject.
        #[arg(long)]
        user: Option<String>,
        /// Only events of this kind, such as `login.failed` (repeatable).
        #[arg(long)]
        event: Vec<String>,
        /// Only events strictly after this RFC 3339 time.
        #[arg(long)]
        after: Option<String>,
        /// Only events strictly before this RFC 3339 time.
        #[arg(long)]
        before: Option<String>,
        /// How many events, 1 to 1000.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
    },
    /// Print shell completions for bash, zsh, fish, elvish or powershell.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to standard output.
    Man,
}

/// Every setting of the contract's "Running" section. Flags win over the environment.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Database: `sqlite://…` or `postgres://…`.
    #[arg(long, env = "DATABASE_URL", default_value = defaults::DATABASE_URL, hide_env_values = true, global = true)]
    pub database_url: String,
    /// Listen address.
    #[arg(long, env = "ROSTER_BIND", default_value = defaults::BIND, global = true)]
    pub bind: String,
    /// HS256 signing key, at least 32 bytes; random per process when unset.
    #[arg(long, env = "ROSTER_JWT_SECRET", hide_env_values = true, global = true)]
    pub jwt_secret: Option<String>,
    /// PEM Ed25519 or RSA private key: switches signing to EdDSA / RS256 and publishes the JWKS.
    #[arg(long, env = "ROSTER_JWT_PRIVATE_KEY_FILE", global = true)]
    pub jwt_private_key_file: Option<String>,
    /// Comma-separated HS256 keys of earlier configurations: tokens they
    /// signed still verify; nothing new is signed with them.
    #[arg(
        long,
        env = "ROSTER_JWT_PREVIOUS_SECRETS",
        hide_env_values = true,
        global = true
    )]
    pub jwt_previous_secrets: Option<String>,
    /// Comma-separated PEM private key files of earlier configurations: their
    /// tokens still verify and their public keys stay in the JWKS.
    #[arg(long, env = "ROSTER_JWT_PREVIOUS_KEY_FILES", global = true)]
    pub jwt_previous_key_files: Option<String>,
    /// `iss` claim of issued tokens, required on presented ones.
    #[arg(long, env = "ROSTER_JWT_ISSUER", default_value = defaults::JWT_ISSUER, global = true)]
    pub jwt_issuer: String,
    /// `aud` claim of issued tokens, required on presented ones.
    #[arg(long, env = "ROSTER_JWT_AUDIENCE", default_value = defaults::JWT_AUDIENCE, global = true)]
    pub jwt_audience: String,
    /// Access token lifetime in seconds.
    #[arg(long, env = "ROSTER_ACCESS_TOKEN_TTL", default_value = defaults::ACCESS_TOKEN_TTL, global = true)]
    pub access_token_ttl: String,
    /// Refresh token (login session) lifetime in seconds.
    #[arg(long, env = "ROSTER_REFRESH_TOKEN_TTL", default_value = defaults::REFRESH_TOKEN_TTL, global = true)]
    pub refresh_token_ttl: String,
    /// bcrypt cost, 4-31.
    #[arg(long, env = "ROSTER_BCRYPT_COST", default_value = defaults::BCRYPT_COST, global = true)]
    pub bcrypt_cost: String,
    /// The algorithm of new password hashes: `bcrypt` or `argon2id` (both
    /// always verify; a login on an outdated hash stores a new one).
    #[arg(long, env = "ROSTER_PASSWORD_HASH", default_value = defaults::PASSWORD_HASH, global = true)]
    pub password_hash: String,
    /// argon2id memory per hash, KiB.
    #[arg(long, env = "ROSTER_ARGON2_MEMORY_KIB", default_value = defaults::ARGON2_MEMORY_KIB, global = true)]
    pub argon2_memory_kib: String,
    /// argon2id passes.
    #[arg(long, env = "ROSTER_ARGON2_ITERATIONS", default_value = defaults::ARGON2_ITERATIONS, global = true)]
    pub argon2_iterations: String,
    /// Allow open sign-up at `POST /auth/register`.
    #[arg(
        long,
        env = "ROSTER_ALLOW_REGISTRATION",
        default_value = "true",
        global = true
    )]
    pub allow_registration: String,
    /// Largest accepted request body in bytes; larger ones get 413.
    #[arg(long, env = "ROSTER_MAX_BODY_BYTES", default_value = defaults::MAX_BODY_BYTES, global = true)]
    pub max_body_bytes: String,
    /// Failed logins per account within the window before 429.
    #[arg(long, env = "ROSTER_LOGIN_MAX_FAILURES", default_value = defaults::LOGIN_MAX_FAILURES, global = true)]
    pub login_max_failures: String,
    /// Failed logins per client address within the window before 429.
    #[arg(long, env = "ROSTER_LOGIN_MAX_FAILURES_PER_IP", default_value = defaults::LOGIN_MAX_FAILURES_PER_IP, global = true)]
    pub login_max_failures_per_ip: String,
    /// Login throttling window in seconds.
    #[arg(long, env = "ROSTER_LOGIN_WINDOW", default_value = defaults::LOGIN_WINDOW, global = true)]
    pub login_window: String,
    /// Serve Swagger UI at `/docs` and the document at `/openapi.json`.
    #[arg(long, env = "ROSTER_DOCS", default_value = "true", global = true)]
    pub docs: String,
    /// Serve Prometheus metrics at `/metrics`.
    #[arg(long, env = "ROSTER_METRICS", default_value = "true", global = true)]
    pub metrics: String,
    /// Pool maximum; 16 by default, 1 for in-memory SQLite.
    #[arg(long, env = "ROSTER_DB_MAX_CONNECTIONS", global = true)]
    pub db_max_connections: Option<String>,
    /// Pool minimum.
    #[arg(long, env = "ROSTER_DB_MIN_CONNECTIONS", default_value = defaults::DB_MIN_CONNECTIONS, global = true)]
    pub db_min_connections: String,
    /// Seconds to wait for a pooled connection before answering 503.
    #[arg(long, env = "ROSTER_DB_ACQUIRE_TIMEOUT", default_value = defaults::DB_ACQUIRE_TIMEOUT, global = true)]
    pub db_acquire_timeout: String,
    /// At start-up, create this admin if no admin exists (with `ROSTER_ADMIN_PASSWORD`).
    #[arg(long, env = "ROSTER_ADMIN_EMAIL", global = true)]
    pub admin_email: Option<String>,
    /// Password of the bootstrap admin.
    #[arg(
        long,
        env = "ROSTER_ADMIN_PASSWORD",
        hide_env_values = true,
        global = true
    )]
    pub admin_password: Option<String>,
    /// `json` or `pretty`; `json` unless stdout is a terminal.
    #[arg(long, env = "ROSTER_LOG_FORMAT", global = true)]
    pub log_format: Option<String>,
    /// Log filter, in `tracing_subscriber::EnvFilter` syntax.
    #[arg(long, env = "RUST_LOG", default_value = defaults::RUST_LOG, global = true)]
    pub log_filter: String,
    /// OTLP/HTTP endpoint; traces are exported only when set.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", global = true)]
    pub otlp_endpoint: Option<String>,
    /// `service.name` of exported traces.
    #[arg(long, env = "OTEL_SERVICE_NAME", default_value = defaults::OTEL_SERVICE_NAME, global = true)]
    pub otel_service_name: String,
    /// SMTP server: `smtp://user:pass@host:587` (STARTTLS required),
    /// `smtps://host:465` (implicit TLS), `smtp://host:25?tls=none` (plain,
    /// for a local relay). Unset: mail is written to `ROSTER_MAIL_DIR`.
    #[arg(long, env = "ROSTER_SMTP_URL", hide_env_values = true, global = true)]
    pub smtp_url: Option<String>,
    /// Where mail goes as `.eml` files when no SMTP server is set.
    #[arg(long, env = "ROSTER_MAIL_DIR", default_value = defaults::MAIL_DIR, global = true)]
    pub mail_dir: String,
    /// The From address of every mail.
    #[arg(long, env = "ROSTER_MAIL_FROM", default_value = defaults::MAIL_FROM, global = true)]
    pub mail_from: String,
    /// The base of every link in a mail (`http://localhost:PORT` by default
    /// on a loopback address; required otherwise).
    #[arg(long, env = "ROSTER_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// Days an audit event is kept.
    #[arg(long, env = "ROSTER_AUDIT_RETENTION_DAYS", default_value = defaults::AUDIT_RETENTION_DAYS, global = true)]
    pub audit_retention_days: String,
    /// Lifetime of email verification and email change links, seconds.
    #[arg(long, env = "ROSTER_VERIFY_TOKEN_TTL", default_value = defaults::VERIFY_TOKEN_TTL, global = true)]
    pub verify_token_ttl: String,
    /// Lifetime of password reset links, seconds.
    #[arg(long, env = "ROSTER_RESET_TOKEN_TTL", default_value = defaults::RESET_TOKEN_TTL, global = true)]
    pub reset_token_ttl: String,
    /// Lifetime of invitation links, seconds.
    #[arg(long, env = "ROSTER_INVITE_TOKEN_TTL", default_value = defaults::INVITE_TOKEN_TTL, global = true)]
    pub invite_token_ttl: String,
    /// Refuse logins of accounts whose email is not verified.
    #[arg(
        long,
        env = "ROSTER_REQUIRE_VERIFIED_EMAIL",
        default_value = "false",
        global = true
    )]
    pub require_verified_email: String,
    /// A user's own email change waits for a link mailed to the new address.
    #[arg(
        long,
        env = "ROSTER_CONFIRM_EMAIL_CHANGE",
        default_value = "true",
        global = true
    )]
    pub confirm_email_change: String,
}

impl Default for Settings {
    /// The defaults, without reading flags or the environment (for tests and embedding).
    fn default() -> Self {
        Self {
            database_url: defaults::DATABASE_URL.into(),
            bind: defaults::BIND.into(),
            jwt_secret: None,
            jwt_private_key_file: None,
            jwt_previous_secrets: None,
            jwt_previous_key_files: None,
            jwt_issuer: defaults::JWT_ISSUER.into(),
            jwt_audience: defaults::JWT_AUDIENCE.into(),
            access_token_ttl: defaults::ACCESS_TOKEN_TTL.into(),
            refresh_token_ttl: defaults::REFRESH_TOKEN_TTL.into(),
            bcrypt_cost: defaults::BCRYPT_COST.into(),
            password_hash: defaults::PASSWORD_HASH.into(),
            argon2_memory_kib: defaults::ARGON2_MEMORY_KIB.into(),
            argon2_iterations: defaults::ARGON2_ITERATIONS.into(),
            allow_registration: "true".into(),
            max_body_bytes: defaults::MAX_BODY_BYTES.into(),
            login_max_failures: defaults::LOGIN_MAX_FAILURES.into(),
            login_max_failures_per_ip: defaults::LOGIN_MAX_FAILURES_PER_IP.into(),
            login_window: defaults::LOGIN_WINDOW.into(),
            docs: "true".into(),
            metrics: "true".into(),
            db_max_connections: None,
            db_min_connections: defaults::DB_MIN_CONNECTIONS.into(),
            db_acquire_timeout: defaults::DB_ACQUIRE_TIMEOUT.into(),
            admin_email: None,
            admin_password: None,
            log_format: None,
            log_filter: defaults::RUST_LOG.into(),
            otlp_endpoint: None,
            otel_service_name: defaults::OTEL_SERVICE_NAME.into(),
            smtp_url: None,
            mail_dir: defaults::MAIL_DIR.into(),
            mail_from: defaults::MAIL_FROM.into(),
            public_url: None,
            audit_retention_days: defaults::AUDIT_RETENTION_DAYS.into(),
            verify_token_ttl: defaults::VERIFY_TOKEN_TTL.into(),
            reset_token_ttl: defaults::RESET_TOKEN_TTL.into(),
            invite_token_ttl: defaults::INVITE_TOKEN_TTL.into(),
            require_verified_email: "false".into(),
            confirm_email_change: "true".into(),
        }
    }
}
