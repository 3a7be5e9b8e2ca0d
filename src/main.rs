//! The `roster` binary: parse the command line, then dispatch the subcommand.

use std::process::ExitCode;

use clap::Parser as _;
use roster::{
    auth::{AuthError, AuthService},
    cli::{Cli, Command},
    config::Config,
    db::Database,
    domain::{Email, Password, Role},
    startup::Application,
    store::Store,
    telemetry::{self, LogTarget},
};
use secrecy::ExposeSecret as _;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_settings(&cli.settings) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("roster: {e}");
            return ExitCode::FAILURE;
        }
    };
    let command = cli.command.unwrap_or(Command::Serve);
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
    if let Err(e) = &result {
        tracing::error!(error = ?e, "roster failed");
        eprintln!("roster: {e:#}");
    }
    // Exporting the last spans is blocking work: keep it off the runtime's workers.
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => Application::build(config).await?.run_until_stopped().await,
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
        Command::CheckConfig => Ok(()),
        Command::CreateAdmin {
            email,
            password_stdin,
        } => {
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                line.trim_end_matches(['\r', '\n']).to_owned()
            } else {
                config
                    .bootstrap_admin
                    .as_ref()
                    .map(|a| a.password.expose_secret().to_owned())
                    .or_else(|| std::env::var("ROSTER_ADMIN_PASSWORD").ok())
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "give the password with --password-stdin or ROSTER_ADMIN_PASSWORD"
                        )
                    })?
            };
            let email =
                Email::parse(&email).map_err(|e| anyhow::anyhow!("invalid --email: {e}"))?;
            let password = Password::parse(&password)
                .map_err(|e| anyhow::anyhow!("invalid password: it {e}"))?;
            let db = Database::connect(&config.database).await?;
            db.migrate().await?;
            let auth = AuthService::new(&config, Store::new(db.conn().clone()), None)?;
            let created = auth.create_user(&email, &password, None, Role::Admin).await;
            db.close().await;
            let user = created.map_err(|e| match e {
                AuthError::EmailTaken => anyhow::anyhow!("{} is already taken", email.as_ref()),
                other => anyhow::anyhow!(other),
            })?;
            println!("created admin {} ({})", user.email, user.id);
            Ok(())
        }
    }
}
