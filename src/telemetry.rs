//! Logging through `tracing`: human-readable text by default, one JSON object
//! per line with `TOKENMINT_LOG_FORMAT=json`. Both carry every enclosing span
//! (in JSON, the `spans` list), so every line logged during a request has its
//! `request_id`. Logs go to stderr so that the
//! CLI's `--json` output on stdout stays machine-readable.

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the global subscriber. `filter` is a tracing directive such as
/// `info` or `tokenmint=debug`; an invalid one falls back to `info` with a
/// warning rather than silencing the server.
pub fn init(filter: &str, format: LogFormat) {
    let (env_filter, bad) = match EnvFilter::try_new(filter) {
        Ok(f) => (f, false),
        Err(_) => (EnvFilter::new("info"), true),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr)
        .with_target(true);
    let result = match format {
        LogFormat::Text => builder.with_ansi(false).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
    if result.is_ok() && bad {
        tracing::warn!(filter, "invalid log filter (TOKENMINT_LOG); using 'info'");
    }
}
