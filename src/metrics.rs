//! Prometheus metrics, in the text exposition format (version 0.0.4).
//!
//! Small and hand-written: a few counters, one histogram family and a gauge
//! do not justify a metrics framework. Every label set is bounded by
//! construction — endpoints are route templates (or `unmatched`), statuses
//! are HTTP codes, failure reasons a fixed list — so an attacker cannot grow
//! the registry.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Histogram bucket upper bounds, in seconds: from a warm token (~1 ms) to
/// a queued argon2 verification (seconds).
const BUCKETS: [f64; 13] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Why a client authentication failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AuthFailure {
    /// Unknown, malformed or disabled client id.
    UnknownClient,
    WrongSecret,
    Throttled,
    /// A client assertion that is malformed, badly signed, stale, replayed
    /// or aimed elsewhere.
    BadAssertion,
    /// A client assertion whose keys could not be fetched.
    KeysUnavailable,
    /// No TLS client certificate, or not the one the client registered.
    BadCertificate,
}

impl AuthFailure {
    fn label(self) -> &'static str {
        match self {
            Self::UnknownClient => "unknown_client",
            Self::WrongSecret => "wrong_secret",
            Self::Throttled => "throttled",
            Self::BadAssertion => "bad_assertion",
            Self::KeysUnavailable => "keys_unavailable",
            Self::BadCertificate => "bad_certificate",
        }
    }
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    durations: Mutex<BTreeMap<String, Histogram>>,
    tokens_issued: AtomicU64,
    auth_failures: Mutex<BTreeMap<AuthFailure, u64>>,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
}

#[derive(Default, Clone)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Metrics {
    pub fn record_request(&self, endpoint: &str, status: u16, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        {
            let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
            *requests.entry((endpoint.to_owned(), status)).or_default() += 1;
        }
        let mut durations = self.durations.lock().unwrap_or_else(|p| p.into_inner());
        let histogram = match durations.get_mut(endpoint) {
            Some(h) => h,
            None => durations.entry(endpoint.to_owned()).or_default(),
        };
        for (bound, count) in BUCKETS.iter().zip(histogram.buckets.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        histogram.sum += seconds;
        histogram.count += 1;
    }

    pub fn token_issued(&self) {
        self.tokens_issued.fetch_add(1, Ordering::Relaxed);
    }

    pub fn auth_failed(&self, reason: AuthFailure) {
        *self
            .auth_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(reason)
            .or_default() += 1;
    }

    pub fn credential_cache(&self, hit: bool) {
        let counter = if hit {
            &self.cache_hits
        } else {
            &self.cache_misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition text; the argon2 queue's depth and its refusals (each
    /// a 503) are sampled by the caller.
    pub fn render(&self, argon2_queue: usize, argon2_busy: u64) -> String {
        let mut out = String::with_capacity(4096);
        self.render_requests(&mut out);
        self.render_durations(&mut out);
        scalar(
            &mut out,
            "tokenmint_tokens_issued_total",
            "counter",
            "Access tokens issued.",
            self.tokens_issued.load(Ordering::Relaxed),
        );
        self.render_auth_failures(&mut out);
        scalar(
            &mut out,
            "tokenmint_credential_cache_hits_total",
            "counter",
            "Authentications answered by the verified-credential cache.",
            self.cache_hits.load(Ordering::Relaxed),
        );
        scalar(
            &mut out,
            "tokenmint_credential_cache_misses_total",
            "counter",
            "Authentications of an enabled client that needed argon2.",
            self.cache_misses.load(Ordering::Relaxed),
        );
        scalar(
            &mut out,
            "tokenmint_argon2_queue_depth",
            "gauge",
            "argon2 verifications running or waiting.",
            argon2_queue,
        );
        scalar(
            &mut out,
            "tokenmint_argon2_busy_total",
            "counter",
            "Authentications answered 503 because the argon2 queue was full.",
            argon2_busy,
        );
        out
    }

    fn render_requests(&self, out: &mut String) {
        family(
            out,
            "tokenmint_http_requests_total",
            "counter",
            "HTTP requests by endpoint and status.",
        );
        let requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        for ((endpoint, status), n) in requests.iter() {
            let _ = writeln!(
                out,
                "tokenmint_http_requests_total{{endpoint=\"{}\",status=\"{status}\"}} {n}",
                escape(endpoint)
            );
        }
    }

    fn render_durations(&self, out: &mut String) {
        const NAME: &str = "tokenmint_http_request_duration_seconds";
        family(out, NAME, "histogram", "HTTP request latency by endpoint.");
        let durations = self.durations.lock().unwrap_or_else(|p| p.into_inner());
        for (endpoint, h) in durations.iter() {
            let endpoint = escape(endpoint);
            for (bound, n) in BUCKETS.iter().zip(h.buckets.iter()) {
                let _ = writeln!(
                    out,
                    "{NAME}_bucket{{endpoint=\"{endpoint}\",le=\"{bound}\"}} {n}"
                );
            }
            let count = h.count;
            let _ = writeln!(
                out,
                "{NAME}_bucket{{endpoint=\"{endpoint}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(out, "{NAME}_sum{{endpoint=\"{endpoint}\"}} {}", h.sum);
            let _ = writeln!(out, "{NAME}_count{{endpoint=\"{endpoint}\"}} {count}");
        }
    }

    fn render_auth_failures(&self, out: &mut String) {
        family(
            out,
            "tokenmint_auth_failures_total",
            "counter",
            "Failed client authentications by reason.",
        );
        let failures = self
            .auth_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for reason in [
            AuthFailure::UnknownClient,
            AuthFailure::WrongSecret,
            AuthFailure::Throttled,
            AuthFailure::BadAssertion,
            AuthFailure::KeysUnavailable,
        ] {
            let n = failures.get(&reason).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "tokenmint_auth_failures_total{{reason=\"{}\"}} {n}",
                reason.label()
            );
        }
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A family with one unlabelled sample.
fn scalar(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    family(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

/// Label values escape `\`, `"` and newlines (the exposition format's rule).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.record_request("/token", 200, Duration::from_millis(3));
        m.record_request("/token", 200, Duration::from_millis(30));
        m.auth_failed(AuthFailure::WrongSecret);
        let text = m.render(2, 0);
        assert!(
            text.contains("tokenmint_http_requests_total{endpoint=\"/token\",status=\"200\"} 2")
        );
        assert!(text.contains(
            "tokenmint_http_request_duration_seconds_bucket{endpoint=\"/token\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "tokenmint_http_request_duration_seconds_bucket{endpoint=\"/token\",le=\"0.05\"} 2"
        ));
        assert!(
            text.contains("tokenmint_http_request_duration_seconds_count{endpoint=\"/token\"} 2")
        );
        assert!(text.contains("tokenmint_auth_failures_total{reason=\"wrong_secret\"} 1"));
        assert!(text.contains("tokenmint_argon2_queue_depth 2"));
    }
}
