//! Log output: JSON lines for machines, pretty output on a terminal.

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTarget {
    /// The server's logs: stdout, as collectors expect.
    Stdout,
    /// One-shot commands, whose stdout is their result.
    Stderr,
}

/// Installs the global subscriber. A second call (tests) is a no-op.
pub fn init(log: &LogConfig, target: LogTarget) {
    let filter = EnvFilter::try_new(&log.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(move || -> Box<dyn std::io::Write> {
            match target {
                LogTarget::Stdout => Box::new(std::io::stdout()),
                LogTarget::Stderr => Box::new(std::io::stderr()),
            }
        });
    // `try_init` fails only when a subscriber is already installed.
    let _ = match log.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}
