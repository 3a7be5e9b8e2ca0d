//! The `roster` binary: parse the command line, then dispatch the subcommand.

use std::process::ExitCode;

use clap::Parser as _;
use roster::{
    cli::{Cli, Command},
    config::Config,
    db::Database,
    startup::Application,
    telemetry::{self, LogTarget},
};

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
    telemetry::init(&config.log, target);
    match run(command, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = ?e, "roster failed");
            eprintln!("roster: {e:#}");
            ExitCode::FAILURE
        }
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
    }
}
