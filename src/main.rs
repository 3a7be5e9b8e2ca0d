//! The `roster` binary: parse the command line, then dispatch the subcommand.
//!
//! Exit codes: 0 success or clean shutdown; 1 runtime failure (including an
//! invalid value for `check-config`, as the contract asks, and a taken email
//! for `create-admin`); 2 bad configuration or usage.

/// jemalloc rather than glibc's malloc. Every value of every row sqlx reads
/// is allocated on the connection's worker thread and freed on the request's;
/// glibc's per-thread caches miss on both sides of that (`k6/callgrind.sh`
/// on W2c shows the cost; glibc also needed limiting to two arenas to keep
/// peak RSS down). jemalloc is built
/// unprefixed (see Cargo.toml), so it also serves the C code linked in —
/// SQLite's own allocations, including the copies of each value sqlx takes —
/// which otherwise still went to glibc.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser as _};
use roster::{
    auth::{AuthError, AuthService},
    cli::{Cli, Command},
    config::Config,
    domain::{Email, Password},
    infra::db::Database,
    infra::telemetry::{self, LogTarget},
    startup::Application,
    store::Store,
};
use secrecy::ExposeSecret as _;

/// A runtime failure.
const EXIT_FAILURE: u8 = 1;
/// Bad configuration or usage (clap uses 2 for usage errors too).
const EXIT_USAGE: u8 = 2;

/// Why a command failed, which decides the exit code.
enum Failure {
    /// Bad configuration or arguments: exit 2.
    Usage(String),
    /// Anything else: exit 1.
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Self::Runtime(e)
    }
}

fn main() -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(cli_main()),
        Err(e) => {
            eprintln!("roster: cannot start the async runtime: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

async fn cli_main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    // These need no configuration: they only describe the command line.
    // Rendered into memory first: the generators panic on a closed pipe.
    let mut text = Vec::new();
    match &command {
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "roster", &mut text);
        }
        Command::Man => {
            if let Err(e) = clap_mangen::Man::new(Cli::command()).render(&mut text) {
                eprintln!("roster: {e}");
                return ExitCode::from(EXIT_FAILURE);
            }
        }
        _ => {}
    }
    if matches!(command, Command::Completions { .. } | Command::Man) {
        use std::io::Write as _;
        return match std::io::stdout().write_all(&text) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::from(EXIT_FAILURE),
        };
    }
    let config = match Config::from_settings(&cli.settings) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("roster: {e}");
            let code = if matches!(command, Command::CheckConfig) {
                EXIT_FAILURE
            } else {
                EXIT_USAGE
            };
            return ExitCode::from(code);
        }
    };
    if matches!(command, Command::CheckConfig) {
        for (setting, value) in config.describe() {
            println!("{setting} = {value}");
        }
        return ExitCode::SUCCESS;
    }
    let target = if matches!(command, Command::Serve) {
        LogTarget::Stdout
    } else {
        LogTarget::Stderr
    };
    let telemetry = telemetry::init(&config.log, &config.otel, target);
    let result = run(command, config).await;
    let code = match &result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("roster: {message}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(Failure::Runtime(e)) => {
            tracing::error!(error = ?e, "roster failed");
            eprintln!("roster: {e:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    };
    // Exporting the last spans is blocking work: keep it off the runtime's workers.
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    code
}

async fn run(command: Command, config: Config) -> Result<(), Failure> {
    match command {
        Command::Serve => Ok(Application::build(config)
            .await?
            .run_until_stopped()
            .await?),
        Command::Migrate { status } => {
            let db = Database::connect(&config.database).await?;
            if !status {
                db.migrate().await?;
            }
            for m in db.migration_status().await? {
                let state = if m.applied { "applied" } else { "pending" };
                println!("{state:8} {}", m.name);
            }
            db.close().await;
            Ok(())
        }
        Command::CreateAdmin {
            email,
            password_stdin,
        } => create_admin(&config, &email, password_stdin).await,
        Command::Audit {
            user,
            event,
            after,
            before,
            limit,
        } => {
            let filter = audit_filter(
                user.as_deref(),
                &event,
                after.as_deref(),
                before.as_deref(),
                limit,
            )?;
            print_audit(&config, &filter).await
        }
        Command::CheckConfig | Command::Completions { .. } | Command::Man => Ok(()),
    }
}

/// `roster audit`'s filters, as `GET /audit` reads them.
fn audit_filter(
    user: Option<&str>,
    events: &[String],
    after: Option<&str>,
    before: Option<&str>,
    limit: u32,
) -> Result<roster::store::AuditFilter, Failure> {
    let user = user
        .map(|raw| {
            uuid::Uuid::parse_str(raw).map_err(|_| {
                Failure::Usage(format!("invalid --user: `{raw}` is not a user id (a UUID)"))
            })
        })
        .transpose()?;
    let events = events
        .iter()
        .map(|name| {
            roster::audit::Event::parse(name).ok_or_else(|| {
                Failure::Usage(format!("invalid --event: `{name}` is not an audit event"))
            })
        })
        .collect::<Result<_, _>>()?;
    let bound = |flag: &str, raw: Option<&str>| {
        roster::domain::listing::time_bound(raw)
            .map_err(|e| Failure::Usage(format!("invalid --{flag}: it {e}")))
    };
    Ok(roster::store::AuditFilter {
        user,
        subject: None,
        events,
        after: bound("after", after)?,
        before: bound("before", before)?,
        cursor: None,
        per_page: limit,
    })
}

/// Prints the newest events that match `filter`, one JSON object a line.
async fn print_audit(config: &Config, filter: &roster::store::AuditFilter) -> Result<(), Failure> {
    use std::io::Write as _;
    let db = Database::connect(&config.database).await?;
    db.migrate().await?;
    let store = Store::new(db.conn().clone());
    let page = store.audit_events(filter).await;
    db.close().await;
    let page = page.map_err(|e| Failure::Runtime(e.into()))?;
    let mut out = std::io::stdout().lock();
    for event in page.items {
        let line = serde_json::to_string(&roster::api::audit::AuditEvent::from(event))
            .map_err(|e| Failure::Runtime(e.into()))?;
        writeln!(out, "{line}").map_err(|e| Failure::Runtime(e.into()))?;
    }
    Ok(())
}

async fn create_admin(config: &Config, email: &str, password_stdin: bool) -> Result<(), Failure> {
    let password = if password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| Failure::Usage(format!("cannot read the password from stdin: {e}")))?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        config
            .bootstrap_admin
            .as_ref()
            .map(|a| a.password.expose_secret().to_owned())
            .or_else(|| std::env::var("ROSTER_ADMIN_PASSWORD").ok())
            .ok_or_else(|| {
                Failure::Usage(
                    "give the password with --password-stdin or ROSTER_ADMIN_PASSWORD".into(),
                )
            })?
    };
    let email =
        Email::parse(email).map_err(|e| Failure::Usage(format!("invalid --email: it {e}")))?;
    let password = Password::parse(&password)
        .map_err(|e| Failure::Usage(format!("invalid password: it {e}")))?;
    let db = Database::connect(&config.database).await?;
    db.migrate().await?;
    let store = Store::new(db.conn().clone()).with_write_timeout(config.database.acquire_timeout);
    // An operator's admin is mailed nothing: the links' base does not matter.
    let public_url = config.mail.public_url.clone().unwrap_or_else(|| {
        url::Url::parse("http://localhost").unwrap_or_else(|_| unreachable!("a valid URL"))
    });
    let auth = AuthService::new(config, store, None, public_url, Default::default())?;
    let created = auth.create_admin(&email, &password).await;
    db.close().await;
    let user = created.map_err(|e| match e {
        AuthError::EmailTaken => {
            Failure::Runtime(anyhow::anyhow!("{} is already taken", email.as_ref()))
        }
        other => Failure::Runtime(other.into()),
    })?;
    println!("created admin {} ({})", user.email.as_ref(), user.id);
    Ok(())
}
