//! Fetching the public keys of clients (`jwks_uri`) and of trusted issuers
//! (their `jwks_uri`, or OIDC discovery), with every bound a request path
//! needs: a deadline, a size cap, no redirects, `https` only unless plain
//! HTTP is allowed, and a cache so that a key set is fetched once, not once
//! per request.
//!
//! Cache rules:
//! - a key set is fresh for its `Cache-Control: max-age`, held between
//!   `MIN_TTL` and `MAX_TTL` (`DEFAULT_TTL` without one);
//! - an unknown `kid` may mean the set rotated: it is refetched, but at most
//!   once per `REFETCH_INTERVAL` per URL, so that made-up `kid`s cannot turn
//!   tokenmint into a traffic source against the key host;
//! - a failed fetch is retried at most once per `RETRY_INTERVAL`, and a set
//!   that was fetched before keeps serving (up to `MAX_STALE`) while its host
//!   is down;
//! - one fetch per URL at a time: concurrent requests wait for it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::crypto::{KeySet, MAX_JWKS_BYTES};

pub const DEFAULT_TTL: Duration = Duration::from_secs(300);
pub const MIN_TTL: Duration = Duration::from_secs(60);
pub const MAX_TTL: Duration = Duration::from_secs(3600);
/// RFC 7523 leaves refetching to the server; once a minute is what
/// node-oidc-provider and Keycloak allow.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(60);
pub const RETRY_INTERVAL: Duration = Duration::from_secs(5);
pub const MAX_STALE: Duration = Duration::from_secs(24 * 3600);
/// The most URLs remembered; they come from registered clients and issuers
/// only, so this bounds memory against a registry that grows without end.
const MAX_ENTRIES: usize = 10_000;

/// Why keys could not be had. The message goes to the log; the caller
/// answers `invalid_client`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(pub String);

#[derive(Debug, Clone)]
pub struct FetchSettings {
    /// Allow `http://` URLs (private networks, tests).
    pub allow_http: bool,
    /// The whole fetch: connect, send, read.
    pub timeout: Duration,
}

#[derive(Default)]
struct Entry {
    set: Option<Arc<KeySet>>,
    /// The discovered `jwks_uri`, for a discovery entry.
    discovered: Option<String>,
    fetched_at: Option<Instant>,
    fresh_for: Duration,
    /// When the last attempt ended: the retry interval counts from there,
    /// so that a fetch that timed out is not started again by each caller
    /// that waited for it.
    attempted_at: Option<Instant>,
    /// Why the last attempt failed, for the callers it failed.
    last_error: Option<String>,
    /// The last refetch for an unknown `kid`, apart from the fetches that
    /// freshness asks for: a client that rotates right after a fetch is not
    /// made to wait a minute.
    refetched_for_kid_at: Option<Instant>,
}

impl Entry {
    fn is_fresh(&self) -> bool {
        self.fetched_at
            .is_some_and(|at| at.elapsed() < self.fresh_for)
    }

    fn usable_stale(&self) -> bool {
        self.fetched_at.is_some_and(|at| at.elapsed() < MAX_STALE)
    }

    fn may_attempt(&self, interval: Duration) -> bool {
        self.attempted_at.is_none_or(|at| at.elapsed() >= interval)
    }

    /// Records an attempt that ended now: how long what it fetched stays
    /// fresh, or why it failed.
    fn record(&mut self, outcome: Result<Duration, FetchError>, failed: &'static str) {
        self.attempted_at = Some(Instant::now());
        match outcome {
            Ok(fresh_for) => {
                self.fetched_at = self.attempted_at;
                self.fresh_for = fresh_for;
                self.last_error = None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "{failed}");
                self.last_error = Some(e.0);
            }
        }
    }

    fn failure(&self, url: &str) -> FetchError {
        FetchError(
            self.last_error
                .clone()
                .unwrap_or_else(|| format!("nothing could be fetched from {url} yet")),
        )
    }

    fn may_refetch_for_kid(&self) -> bool {
        self.refetched_for_kid_at
            .is_none_or(|at| at.elapsed() >= REFETCH_INTERVAL)
    }
}

pub struct KeyFetcher {
    http: reqwest::Client,
    settings: FetchSettings,
    entries: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Entry>>>>,
}

impl KeyFetcher {
    pub fn new(settings: FetchSettings) -> Result<Self, FetchError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            // A redirect could lead anywhere, including to http.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tokenmint/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FetchError(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            settings,
            entries: Mutex::new(HashMap::new()),
        })
    }

    fn entry(&self, key: &str) -> Arc<tokio::sync::Mutex<Entry>> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(key) {
            entries.clear();
        }
        entries.entry(key.to_owned()).or_default().clone()
    }

    /// The key set at `url`, fetched if the cache has none fresh, or if it
    /// lacks `kid` and the last fetch is old enough.
    pub async fn key_set(&self, url: &str, kid: Option<&str>) -> Result<Arc<KeySet>, FetchError> {
        let entry = self.entry(url);
        let mut entry = entry.lock().await;
        let has_kid = |e: &Entry| {
            e.set
                .as_ref()
                .is_some_and(|s| kid.is_none_or(|k| s.has_kid(k)))
        };
        let wanted = if entry.is_fresh() && has_kid(&entry) {
            false
        } else if entry.is_fresh() {
            // Fresh but without this kid: a rotation, at most once a minute.
            let wanted = entry.may_refetch_for_kid();
            if wanted {
                entry.refetched_for_kid_at = Some(Instant::now());
            }
            wanted
        } else {
            entry.may_attempt(RETRY_INTERVAL)
        };
        if wanted {
            let fetched = self.fetch(url).await.and_then(|(body, ttl)| {
                KeySet::parse(&body)
                    .map(|set| (set, ttl))
                    .map_err(|e| FetchError(format!("the key set at {url} is invalid: {e}")))
            });
            let outcome = fetched.map(|(set, ttl)| {
                entry.set = Some(Arc::new(set));
                ttl
            });
            entry.record(outcome, "could not fetch a key set");
        }
        match &entry.set {
            Some(set) if entry.usable_stale() => Ok(set.clone()),
            _ => Err(entry.failure(url)),
        }
    }

    /// The `jwks_uri` an OIDC issuer publishes in its discovery document
    /// (OpenID Connect Discovery 1.0 §4), which must name the same issuer.
    pub async fn discover(&self, issuer: &str) -> Result<String, FetchError> {
        // OpenID Connect Discovery §4: the path is appended to the issuer,
        // whose own trailing slash does not double.
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let entry = self.entry(&url);
        let mut entry = entry.lock().await;
        if !entry.is_fresh() && entry.may_attempt(RETRY_INTERVAL) {
            let fetched = self.fetch(&url).await.and_then(|(body, ttl)| {
                jwks_uri_of(&body, issuer)
                    .map(|uri| (uri, ttl))
                    .map_err(|e| FetchError(format!("the discovery document at {url}: {e}")))
            });
            let outcome = fetched.map(|(uri, ttl)| {
                entry.discovered = Some(uri);
                ttl
            });
            entry.record(outcome, "could not discover an issuer's keys");
        }
        match &entry.discovered {
            Some(uri) if entry.usable_stale() => Ok(uri.clone()),
            _ => Err(entry.failure(&url)),
        }
    }

    /// One GET, bounded in time and size; the body and how long it is fresh.
    async fn fetch(&self, url: &str) -> Result<(Vec<u8>, Duration), FetchError> {
        let plain_http = url.starts_with("http://");
        if !(url.starts_with("https://") || (plain_http && self.settings.allow_http)) {
            return Err(FetchError(format!(
                "{url} is not https (plain http needs TOKENMINT_ALLOW_HTTP_FETCH=true)"
            )));
        }
        let fail = |what: &str| FetchError(format!("{what} from {url}"));
        let mut response = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| FetchError(format!("cannot fetch {url}: {}", crate::fault::chain(&e))))?;
        if !response.status().is_success() {
            return Err(fail(&format!("status {}", response.status().as_u16())));
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
        {
            return Err(fail("a body over the size cap"));
        }
        let ttl = freshness(response.headers().get(reqwest::header::CACHE_CONTROL));
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|_| fail("a body cut short or too slow"))?
        {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(fail("a body over the size cap"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, ttl))
    }
}

/// How long a response stays fresh: its `max-age`, within bounds.
fn freshness(cache_control: Option<&reqwest::header::HeaderValue>) -> Duration {
    let max_age = cache_control.and_then(|v| v.to_str().ok()).and_then(|v| {
        v.split(',')
            .filter_map(|d| d.trim().strip_prefix("max-age="))
            .find_map(|n| n.trim_matches('"').parse::<u64>().ok())
    });
    max_age
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TTL)
        .clamp(MIN_TTL, MAX_TTL)
}

fn jwks_uri_of(document: &[u8], issuer: &str) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    struct Discovery {
        issuer: String,
        jwks_uri: String,
    }
    let doc: Discovery = serde_json::from_slice(document)
        .map_err(|_| "not JSON with issuer and jwks_uri".to_owned())?;
    // OpenID Connect Discovery 1.0 §4.3: the issuer MUST be identical.
    if doc.issuer != issuer {
        return Err(format!("it names another issuer ({:?})", doc.issuer));
    }
    Ok(doc.jwks_uri)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn freshness_is_bounded() {
        let f = |v: &str| freshness(Some(&HeaderValue::from_str(v).unwrap()));
        assert_eq!(freshness(None), DEFAULT_TTL);
        assert_eq!(f("public, max-age=600"), Duration::from_secs(600));
        assert_eq!(f("max-age=0"), MIN_TTL);
        assert_eq!(f("no-store"), DEFAULT_TTL);
        assert_eq!(f("max-age=99999999"), MAX_TTL);
    }

    #[test]
    fn discovery_must_name_the_same_issuer() {
        let doc = br#"{"issuer":"https://a.example","jwks_uri":"https://a.example/keys"}"#;
        assert_eq!(
            jwks_uri_of(doc, "https://a.example").unwrap(),
            "https://a.example/keys"
        );
        assert!(jwks_uri_of(doc, "https://b.example").is_err());
        assert!(jwks_uri_of(doc, "https://a.example/").is_err(), "exactly");
    }
}
