//! Logging through `tracing`: human-readable text by default, one JSON object
//! per line with `TOKENMINT_LOG_FORMAT=json`. Both carry every enclosing span
//! (in JSON, the `spans` list), so every line logged during a request has its
//! `request_id`. Logs go to stderr so that the CLI's `--json` output on
//! stdout stays machine-readable.
//!
//! Distributed tracing: when the standard OpenTelemetry variables ask for it
//! (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
//! and not `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`), spans
//! are also exported over OTLP/HTTP (`OTEL_EXPORTER_OTLP_PROTOCOL`:
//! `http/protobuf` or `http/json`) from the SDK's own thread, and a W3C
//! `traceparent` on a request becomes its parent. Without those variables
//! nothing is installed: the extra spans (`otel` target, store, argon2,
//! signing) are debug-level or gated on `otel_enabled`, so no layer wants
//! them and they cost nothing.

use std::sync::OnceLock;

use opentelemetry::propagation::Extractor;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::filter::{EnvFilter, FilterFn};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{Layer as _, fmt};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The target of spans that exist only for tracing (the HTTP server span):
/// the log output never shows them.
pub const OTEL_TARGET: &str = "tokenmint::otel";

static OTEL: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Whether spans are being exported; callers skip tracing-only work otherwise.
pub fn otel_enabled() -> bool {
    OTEL.get().is_some()
}

/// Installs the global subscriber. `filter` is a tracing directive such as
/// `info` or `tokenmint=debug`; an invalid one falls back to `info` with a
/// warning rather than silencing the server. Exports spans when the OTel
/// variables ask for it (`serve` only: one-shot commands pass `false`).
pub fn init(filter: &str, format: LogFormat, tracing: bool) {
    let (env_filter, bad) = match EnvFilter::try_new(filter) {
        Ok(f) => (f, false),
        Err(_) => (EnvFilter::new("info"), true),
    };
    let not_tracing_only = FilterFn::new(|meta| meta.target() != OTEL_TARGET);
    let logs = fmt::layer().with_writer(std::io::stderr).with_target(true);
    let logs = match format {
        LogFormat::Text => logs.with_ansi(false).boxed(),
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .boxed(),
    }
    .with_filter(not_tracing_only)
    .with_filter(env_filter);
    let (exporter, problem) = if tracing && otel_requested() {
        match otel_provider() {
            Ok(provider) => (Some(provider), None),
            Err(e) => (None, Some(e)),
        }
    } else {
        (None, None)
    };
    let spans = exporter.as_ref().map(|provider| {
        // Our spans (at debug and above), not events: events would become
        // span events on every export and add nothing a log line has not.
        let ours = FilterFn::new(|meta| {
            meta.is_span()
                && meta.target().starts_with("tokenmint")
                && *meta.level() <= tracing::Level::DEBUG
        });
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("tokenmint"))
            .with_filter(ours)
    });
    let result = tracing_subscriber::registry()
        .with(logs)
        .with(spans)
        .try_init();
    if result.is_ok() {
        if let Some(provider) = exporter {
            opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
            let _ = OTEL.set(provider);
            tracing::info!("exporting spans over OTLP (OTEL_EXPORTER_OTLP_*)");
        }
        if let Some(problem) = problem {
            tracing::warn!(%problem, "not exporting spans: the OTLP exporter could not be built");
        }
        if bad {
            tracing::warn!(filter, "invalid log filter (TOKENMINT_LOG); using 'info'");
        }
    }
}

/// Flushes and stops the span exporter, if one runs: the last spans of a
/// process that is exiting are sent, not lost.
pub fn shutdown() {
    if let Some(provider) = OTEL.get() {
        let _ = provider.shutdown();
    }
}

/// Makes the W3C `traceparent` (and `tracestate`) of a request the parent of
/// `span`, when spans are exported.
pub fn set_remote_parent(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    if !otel_enabled() {
        return;
    }
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(headers))
    });
    let _ = span.set_parent(parent);
}

struct HeaderExtractor<'a>(&'a axum::http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The OpenTelemetry specification's switches: an endpoint is set, the SDK
/// is not disabled, and the traces exporter is not `none`.
fn otel_requested() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let is = |name: &str, value: &str| {
        std::env::var(name).is_ok_and(|v| v.trim().eq_ignore_ascii_case(value))
    };
    (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
        && !is("OTEL_SDK_DISABLED", "true")
        && !is("OTEL_TRACES_EXPORTER", "none")
}

/// The exporter and provider, configured by the `OTEL_*` variables
/// (endpoint, protocol, headers, timeout, batch settings, resource); the
/// service name defaults to `tokenmint`.
fn otel_provider() -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT"))
        .unwrap_or_default();
    if endpoint
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("https://")
    {
        return Err(opentelemetry_otlp::ExporterBuildError::InvalidConfiguration(
            "the OTLP endpoint is https://, and this build exports over plain HTTP only (use a collector beside the process)".to_owned(),
        ));
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("tokenmint");
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}
