//! Client authentication by a signed JWT (RFC 7523 §2.2, RFC 7521 §4.2):
//! `private_key_jwt`, where the client signs with a key of its own, and
//! workload identity federation, where the JWT is a platform's identity
//! token (Kubernetes, SPIFFE, a CI system) naming one of the client's
//! federated identities.
//!
//! Every refusal is the same `invalid_client` as a wrong secret; the reason
//! goes to the log at info, never the JWT. The work per request is bounded:
//! one JWT of at most 8 KiB, at most 16 signature checks (a set's keys, when
//! the JWT names no `kid`), and no more than one key fetch per URL at a time
//! (`key_fetch` bounds its rate and size).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::digest;

use serde::Deserialize;

use super::OAuthError;
use super::certificate_auth::check_certificate;
use super::client_auth::{ClientAssertion, PresentedCertificate};
use super::client_rows::ClientRows;
use crate::crypto::certificate::ClientCa;
use crate::crypto::{CompactJws, KeySet};
use crate::domain::client::{AuthMethod, Client, MAX_CLIENT_ID_LEN, validate_client_id};
use crate::domain::issuer::{KeySource, TrustedIssuer};
use crate::key_fetch::KeyFetcher;
use crate::metrics::{AuthFailure, Metrics};
use crate::store::{AssertionLedger, Store, StoreError, UsedAssertion};

/// Clock skew allowed on `exp`, `nbf` and `iat`.
pub const CLOCK_SKEW: i64 = 60;
/// The longest `jti` kept: the store holds each until the assertion expires.
const MAX_JTI_LEN: usize = 256;
/// Parsed stored key sets kept: about one per key client and issuer.
const MAX_PARSED_SETS: usize = 10_000;
/// How long a platform token's verified signature is remembered. Platform
/// tokens are presented again and again until they expire (a kubelet
/// refreshes the file, it does not mint one per request); the minute bounds
/// how long a key the issuer withdraws keeps vouching for what it signed
/// here, on top of the key-set cache.
const VERIFIED_TOKEN_TTL: Duration = Duration::from_secs(60);
/// Verified platform tokens remembered: a few per workload.
const MAX_VERIFIED_TOKENS: usize = 10_000;

/// The claims RFC 7523 §3 puts on an assertion, and those platform tokens
/// carry. Numbers may come as integers or (from some libraries) floats.
#[derive(Debug, Default, Deserialize)]
pub struct JwtClaims {
    pub iss: Option<String>,
    pub sub: Option<String>,
    #[serde(default)]
    pub aud: Audiences,
    pub exp: Option<NumericDate>,
    pub nbf: Option<NumericDate>,
    pub iat: Option<NumericDate>,
    pub jti: Option<String>,
}

/// RFC 7519 §4.1.3: one audience or an array of them.
#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
pub enum Audiences {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl Audiences {
    fn contains_any(&self, accepted: &[&str]) -> bool {
        match self {
            Self::None => false,
            Self::One(a) => accepted.contains(&a.as_str()),
            Self::Many(all) => all.iter().any(|a| accepted.contains(&a.as_str())),
        }
    }
}

/// RFC 7519 §2 NumericDate, whole seconds.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(from = "f64")]
pub struct NumericDate(pub i64);

impl From<f64> for NumericDate {
    fn from(f: f64) -> Self {
        // `as` saturates; NaN becomes 0, which every check below refuses.
        Self(f.floor() as i64)
    }
}

/// What a valid `private_key_jwt` assertion yields: the `jti` to spend, and
/// until when.
#[derive(Debug, PartialEq, Eq)]
pub struct SpendableJti {
    pub jti: String,
    pub exp: i64,
}

/// RFC 7523 §3's rules for a client's own assertion. `accepted_audiences`:
/// the issuer identifier and, for older clients, the token endpoint URL.
pub fn check_client_assertion(
    claims: &JwtClaims,
    client_id: &str,
    accepted_audiences: &[&str],
    max_age: i64,
    now: i64,
) -> Result<SpendableJti, &'static str> {
    // §3 items 1-2: iss and sub are the client id.
    if claims.iss.as_deref() != Some(client_id) || claims.sub.as_deref() != Some(client_id) {
        return Err("iss and sub must both be the client id");
    }
    // §3 item 3: the audience identifies the authorization server.
    if !claims.aud.contains_any(accepted_audiences) {
        return Err("aud does not name this server");
    }
    let exp = check_times(claims, now)?;
    // §3 item 4 lets the server bound how far ahead exp may be; the
    // single-use jti covers the rest.
    if exp > now.saturating_add(max_age).saturating_add(CLOCK_SKEW) {
        return Err("exp is further ahead than the maximum assertion age");
    }
    // §3 item 7: a jti, which the server may use once.
    let jti = match claims.jti.as_deref() {
        Some(jti) if !jti.is_empty() && jti.len() <= MAX_JTI_LEN => jti.to_owned(),
        Some(_) => return Err("jti is empty or too long"),
        None => return Err("jti is required"),
    };
    Ok(SpendableJti { jti, exp })
}

/// The rules for a platform identity token from a trusted issuer: its
/// audience, its lifetime cap and its age. Returns the subject.
pub fn check_platform_token<'c>(
    claims: &'c JwtClaims,
    issuer: &TrustedIssuer,
    default_audience: &str,
    now: i64,
) -> Result<&'c str, &'static str> {
    let audience = issuer.audience.as_deref().unwrap_or(default_audience);
    if !claims.aud.contains_any(&[audience]) {
        return Err("aud is not the audience this issuer's tokens must carry");
    }
    let exp = check_times(claims, now)?;
    let max_age = i64::from(issuer.max_token_age);
    // A token older, or made to live longer, than the issuer's cap is
    // refused: a long-lived platform token is a standing credential.
    let born = claims.iat.map_or(now, |d| d.0);
    if now.saturating_sub(born) > max_age + CLOCK_SKEW {
        return Err("the token is older than the issuer's maximum token age");
    }
    if exp.saturating_sub(born) > max_age + CLOCK_SKEW {
        return Err("the token lives longer than the issuer's maximum token age");
    }
    match claims.sub.as_deref() {
        Some(sub) if !sub.is_empty() => Ok(sub),
        _ => Err("sub is required"),
    }
}

/// `exp` (required), `nbf` and `iat` against now, with the clock skew.
fn check_times(claims: &JwtClaims, now: i64) -> Result<i64, &'static str> {
    let exp = claims.exp.ok_or("exp is required")?.0;
    if [claims.exp, claims.nbf, claims.iat]
        .iter()
        .flatten()
        .any(|date| date.0 < 0)
    {
        return Err("a date before 1970");
    }
    // Saturating: the numbers are the caller's, i64::MAX included.
    if exp.saturating_add(CLOCK_SKEW) <= now {
        return Err("the token has expired");
    }
    let ahead = now.saturating_add(CLOCK_SKEW);
    if claims.nbf.is_some_and(|nbf| nbf.0 > ahead) {
        return Err("the token is not valid yet (nbf)");
    }
    if claims.iat.is_some_and(|iat| iat.0 > ahead) {
        return Err("the token was issued in the future (iat)");
    }
    Ok(exp)
}

/// The `iss` a token is judged by: its own, or for a SPIFFE JWT-SVID
/// without one, its trust domain (`spiffe://example.org/ns/x` →
/// `spiffe://example.org`).
pub fn effective_issuer(claims: &JwtClaims) -> Option<String> {
    if let Some(iss) = &claims.iss {
        // Exact, as OpenID Connect Core §3.1.3.7 compares it: no trailing
        // slash or case folding.
        return Some(iss.clone());
    }
    let rest = claims.sub.as_deref()?.strip_prefix("spiffe://")?;
    let domain = rest.split('/').next().filter(|d| !d.is_empty())?;
    Some(format!("spiffe://{domain}"))
}

/// Why an assertion was refused: what the log says and the metric counts.
struct Refusal {
    reason: String,
    kind: AuthFailure,
}

impl Refusal {
    fn bad(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            kind: AuthFailure::BadAssertion,
        }
    }
}

enum Failure {
    Refused(Refusal),
    Store(StoreError),
}

impl From<Refusal> for Failure {
    fn from(r: Refusal) -> Self {
        Self::Refused(r)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// Settings of the assertion checks.
#[derive(Debug, Clone)]
pub struct AssertionSettings {
    /// The issuer identifier: the audience assertions must name.
    pub issuer: String,
    /// The token endpoint URL, also accepted as audience.
    pub token_endpoint: String,
    /// How far ahead a client assertion's `exp` may be, in seconds.
    pub max_age: i64,
    /// The CA `tls_client_auth` certificates must chain to.
    pub client_ca: Option<ClientCa>,
}

pub struct AssertionAuthenticator {
    clients: Arc<dyn ClientRows>,
    store: Arc<dyn Store>,
    fetcher: Arc<KeyFetcher>,
    ledger: AssertionLedger,
    settings: AssertionSettings,
    metrics: Arc<Metrics>,
    /// A key no client holds, verified against when there is no client, so
    /// that an unknown client costs what a known one does.
    decoy: KeySet,
    /// Stored key sets (a client's `jwks`, an issuer's), parsed once: keyed
    /// by the document itself, so a changed set is simply another entry.
    parsed: Mutex<HashMap<String, Arc<KeySet>>>,
    /// Platform tokens whose signature was verified, by SHA-256 of the JWT.
    verified: Mutex<HashMap<Vec<u8>, VerifiedToken>>,
}

/// A platform token verified recently (see `remembered`).
#[derive(Clone)]
struct VerifiedToken {
    at: Instant,
    /// The issuer as it was when the signature was checked: a hit counts
    /// only while the trusted issuer is still exactly this one.
    issuer: TrustedIssuer,
    claims: Arc<JwtClaims>,
}

impl AssertionAuthenticator {
    pub fn new(
        clients: Arc<dyn ClientRows>,
        store: Arc<dyn Store>,
        fetcher: Arc<KeyFetcher>,
        settings: AssertionSettings,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            clients,
            ledger: AssertionLedger::start(store.clone()),
            store,
            fetcher,
            settings,
            metrics,
            decoy: KeySet::decoy(),
            parsed: Mutex::new(HashMap::new()),
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// The client `assertion` proves, or `invalid_client`.
    pub async fn authenticate(
        &self,
        assertion: &ClientAssertion,
        now: i64,
    ) -> Result<Client, OAuthError> {
        let outcome = self.check(assertion, now).await;
        self.answer(outcome, "private_key_jwt")
    }

    /// The client `client_id` if `certificate` is the one it registered
    /// (RFC 8705 §2), or `invalid_client`. The certificate methods share
    /// this authenticator with assertions: both judge a presented key
    /// against the client's registered ones.
    pub async fn authenticate_certificate(
        &self,
        client_id: &str,
        certificate: Option<&PresentedCertificate>,
        now: i64,
    ) -> Result<Client, OAuthError> {
        let outcome = self.check_certificate(client_id, certificate, now).await;
        self.answer(outcome, "tls_client_auth")
    }

    /// Spends a one-time id in the shared ledger (`true` the first time).
    pub async fn spend_once(&self, used: UsedAssertion) -> Result<bool, StoreError> {
        self.ledger.spend(used).await
    }

    fn answer(
        &self,
        outcome: Result<Client, Failure>,
        method: &'static str,
    ) -> Result<Client, OAuthError> {
        match outcome {
            Ok(client) => Ok(client),
            Err(Failure::Store(e)) => Err(e.into()),
            Err(Failure::Refused(refusal)) => {
                self.metrics.auth_failed(refusal.kind);
                tracing::info!(reason = %refusal.reason, method, "client authentication failed");
                Err(OAuthError::InvalidClient("client authentication failed"))
            }
        }
    }

    async fn check_certificate(
        &self,
        client_id: &str,
        certificate: Option<&PresentedCertificate>,
        now: i64,
    ) -> Result<Client, Failure> {
        let refused = |reason: &str| Refusal {
            reason: reason.to_owned(),
            kind: AuthFailure::BadCertificate,
        };
        let client = self
            .client(client_id)
            .await?
            .filter(|c| c.enabled && c.auth_method.uses_certificate())
            .ok_or_else(|| refused("no enabled certificate client has this id"))?;
        let chain = certificate.map_or(&[][..], |c| &c.chain[..]);
        if chain.is_empty() {
            return Err(refused("no client certificate was presented").into());
        }
        let keys = if client.auth_method.uses_keys() {
            Some(self.client_keys(&client, None).await?)
        } else {
            None
        };
        check_certificate(
            &client,
            chain,
            self.settings.client_ca.as_ref(),
            keys.as_deref(),
            now,
        )
        .map_err(refused)?;
        Ok(client)
    }

    async fn check(&self, assertion: &ClientAssertion, now: i64) -> Result<Client, Failure> {
        let client = self.check_signed(assertion, now).await?;
        if assertion
            .client_id
            .as_deref()
            .is_some_and(|id| id != client.client_id)
        {
            return Err(Refusal::bad("client_id does not name the assertion's client").into());
        }
        Ok(client)
    }

    async fn check_signed(&self, assertion: &ClientAssertion, now: i64) -> Result<Client, Failure> {
        let digest = digest::digest(&digest::SHA256, assertion.jwt.as_bytes());
        if let Some((issuer, claims)) = self.remembered(digest.as_ref()).await? {
            return self.accept_platform_token(&issuer, &claims, now).await;
        }
        let jws = CompactJws::parse(&assertion.jwt).map_err(|e| Refusal::bad(e.0))?;
        let claims: JwtClaims = serde_json::from_slice(&jws.payload)
            .map_err(|_| Refusal::bad("the payload is not a JSON claims set"))?;
        // A client's own assertion names itself as issuer and subject; a
        // platform token names the platform and the workload.
        let own = claims.iss.is_some() && claims.iss == claims.sub;
        if own && assertion.client_id.is_none() {
            record_client_id(claims.sub.as_deref().unwrap_or_default());
        }
        if own {
            return self.check_own(&jws, &claims, now).await;
        }
        let (issuer, client) = self.check_federated(&jws, &claims, now).await?;
        self.remember(digest.as_ref().to_vec(), &issuer, claims);
        Ok(client)
    }

    async fn check_own(
        &self,
        jws: &CompactJws<'_>,
        claims: &JwtClaims,
        now: i64,
    ) -> Result<Client, Failure> {
        let client_id = claims.sub.as_deref().unwrap_or_default();
        let client = self.client(client_id).await?;
        let Some(client) = client.filter(|c| {
            c.enabled
                && c.auth_method == AuthMethod::PrivateKeyJwt
                && (c.jwks.is_some() || c.jwks_uri.is_some())
        }) else {
            self.decoy.verify(jws);
            return Err(
                Refusal::bad("no enabled private_key_jwt client with keys has this id").into(),
            );
        };
        let keys = self.client_keys(&client, jws.kid.as_deref()).await?;
        if !keys.verify(jws) {
            return Err(
                Refusal::bad("the signature does not verify with the client's keys").into(),
            );
        }
        let audiences = [
            self.settings.issuer.as_str(),
            self.settings.token_endpoint.as_str(),
        ];
        let spend = check_client_assertion(
            claims,
            &client.client_id,
            &audiences,
            self.settings.max_age,
            now,
        )
        .map_err(Refusal::bad)?;
        let first_use = self
            .ledger
            .spend(UsedAssertion {
                client_id: client.client_id.clone(),
                jti: spend.jti,
                expires_at: spend.exp.saturating_add(CLOCK_SKEW),
            })
            .await?;
        if !first_use {
            return Err(Refusal::bad("the jti was used before (a replay)").into());
        }
        Ok(client)
    }

    async fn check_federated(
        &self,
        jws: &CompactJws<'_>,
        claims: &JwtClaims,
        now: i64,
    ) -> Result<(TrustedIssuer, Client), Failure> {
        // The store in front of the database keeps this list in memory.
        let issuers = self.store.list_issuers().await?;
        let iss = effective_issuer(claims);
        let Some(issuer) = issuers
            .iter()
            .find(|i| Some(i.issuer.as_str()) == iss.as_deref())
        else {
            self.decoy.verify(jws);
            return Err(Refusal::bad("the token's issuer is not a trusted issuer").into());
        };
        let keys = match &issuer.keys {
            KeySource::Jwks(jwks) => self.stored(jwks)?,
            KeySource::JwksUri(uri) => self.fetched(uri, jws.kid.as_deref()).await?,
            KeySource::Discovery => {
                let uri = self
                    .fetcher
                    .discover(&issuer.issuer)
                    .await
                    .map_err(unavailable)?;
                self.fetched(&uri, jws.kid.as_deref()).await?
            }
        };
        if !keys.verify(jws) {
            return Err(Refusal::bad(format!(
                "the signature does not verify with the keys of issuer '{}'",
                issuer.name
            ))
            .into());
        }
        let client = self.accept_platform_token(issuer, claims, now).await?;
        Ok((issuer.clone(), client))
    }

    /// What a platform token with a good signature must still pass, on
    /// every presentation: its audience and age, and a client that lists
    /// its subject.
    async fn accept_platform_token(
        &self,
        issuer: &TrustedIssuer,
        claims: &JwtClaims,
        now: i64,
    ) -> Result<Client, Failure> {
        let subject = check_platform_token(claims, issuer, &self.settings.issuer, now)
            .map_err(Refusal::bad)?;
        let Some(client_id) = self
            .store
            .find_federated_client(&issuer.id, subject)
            .await?
        else {
            return Err(Refusal::bad(format!(
                "no client lists the subject {:?} of issuer '{}'",
                crate::domain::log_excerpt(subject),
                issuer.name
            ))
            .into());
        };
        record_client_id(&client_id);
        let client = self.client(&client_id).await?;
        client
            .filter(|c| {
                c.enabled
                    && c.auth_method == AuthMethod::PrivateKeyJwt
                    && c.federated
                        .iter()
                        .any(|f| f.issuer == issuer.name && f.subject == subject)
            })
            .ok_or_else(|| Refusal::bad("the subject's client is disabled or changed").into())
    }

    /// A platform token whose signature was verified within
    /// `VERIFIED_TOKEN_TTL` by an issuer that is still trusted exactly as
    /// it was (not removed, nor replaced under its name): its claims, so that
    /// presenting it again costs no signature check. Everything else is
    /// checked again by `accept_platform_token`.
    async fn remembered(
        &self,
        digest: &[u8],
    ) -> Result<Option<(TrustedIssuer, Arc<JwtClaims>)>, StoreError> {
        let hit = {
            let verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            match verified.get(digest) {
                Some(v) if v.at.elapsed() < VERIFIED_TOKEN_TTL => Some(v.clone()),
                _ => None,
            }
        };
        let Some(hit) = hit else { return Ok(None) };
        let issuers = self.store.list_issuers().await?;
        Ok(issuers
            .into_iter()
            .find(|i| *i == hit.issuer)
            .map(|issuer| (issuer, hit.claims)))
    }

    fn remember(&self, digest: Vec<u8>, issuer: &TrustedIssuer, claims: JwtClaims) {
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if verified.len() >= MAX_VERIFIED_TOKENS {
            verified.retain(|_, v| v.at.elapsed() < VERIFIED_TOKEN_TTL);
            if verified.len() >= MAX_VERIFIED_TOKENS {
                return;
            }
        }
        verified.insert(
            digest,
            VerifiedToken {
                at: Instant::now(),
                issuer: issuer.clone(),
                claims: Arc::new(claims),
            },
        );
    }

    /// The client's row: from memory when fresh enough, else from the store.
    async fn client(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        if client_id.is_empty()
            || client_id.len() > MAX_CLIENT_ID_LEN
            || validate_client_id(client_id).is_err()
        {
            return Ok(None);
        }
        match self.clients.cached(client_id) {
            Some(client) => Ok(Some(client)),
            None => self.clients.fresh(client_id).await,
        }
    }

    /// The client's registered keys, inline or fetched (`kid`: the key the
    /// caller needs, worth a refetch when the cached set lacks it).
    async fn client_keys(
        &self,
        client: &Client,
        kid: Option<&str>,
    ) -> Result<Arc<KeySet>, Failure> {
        match (&client.jwks, &client.jwks_uri) {
            (Some(jwks), _) => Ok(self.stored(jwks)?),
            (None, Some(uri)) => self.fetched(uri, kid).await,
            (None, None) => Err(Refusal::bad("the client has no keys").into()),
        }
    }

    /// A stored key set, parsed (EC points are validated then, which costs
    /// more than the signature check) at most once.
    fn stored(&self, jwks: &str) -> Result<Arc<KeySet>, Refusal> {
        let mut parsed = self.parsed.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(set) = parsed.get(jwks) {
            return Ok(set.clone());
        }
        let set = Arc::new(
            KeySet::parse(jwks.as_bytes())
                .map_err(|e| Refusal::bad(format!("the stored keys: {e}")))?,
        );
        if parsed.len() >= MAX_PARSED_SETS {
            parsed.clear();
        }
        parsed.insert(jwks.to_owned(), set.clone());
        Ok(set)
    }

    async fn fetched(&self, uri: &str, kid: Option<&str>) -> Result<Arc<KeySet>, Failure> {
        self.fetcher
            .key_set(uri, kid)
            .await
            .map_err(|e| unavailable(e).into())
    }
}

/// Names the client in the request's log lines (the `client_id` field of
/// the token span), escaped and bounded: it is caller input until verified.
fn record_client_id(client_id: &str) {
    tracing::Span::current().record(
        "client_id",
        tracing::field::debug(crate::domain::log_excerpt(client_id)),
    );
}

fn unavailable(e: crate::key_fetch::FetchError) -> Refusal {
    Refusal {
        reason: e.0,
        kind: AuthFailure::KeysUnavailable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(json: &str) -> JwtClaims {
        serde_json::from_str(json).unwrap()
    }

    const NOW: i64 = 1_700_000_000;
    const AUD: [&str; 2] = ["https://auth.example", "https://auth.example/token"];

    fn own(extra: &str) -> String {
        format!(
            r#"{{"iss":"svc","sub":"svc","aud":"https://auth.example","exp":{},"jti":"j1"{extra}}}"#,
            NOW + 300
        )
    }

    #[test]
    fn a_client_assertion_follows_rfc7523_section3() {
        let ok = check_client_assertion(&claims(&own("")), "svc", &AUD, 3600, NOW).unwrap();
        assert_eq!(
            ok,
            SpendableJti {
                jti: "j1".into(),
                exp: NOW + 300
            }
        );
        let check = |json: &str| check_client_assertion(&claims(json), "svc", &AUD, 3600, NOW);
        assert!(check(&own("").replace(r#""sub":"svc""#, r#""sub":"other""#)).is_err());
        assert!(check(&own("").replace("https://auth.example\"", "https://elsewhere\"")).is_err());
        assert!(check(&own("").replace(r#","jti":"j1""#, "")).is_err());
        for huge in [
            "9223372036854775807",
            "9223372036854775808",
            "1e300",
            "-1e300",
        ] {
            let json = own("").replace(&(NOW + 300).to_string(), huge);
            assert!(check(&json).is_err(), "exp {huge}: refused, no overflow");
        }
        let far = own("").replace(&(NOW + 300).to_string(), &(NOW + 7200).to_string());
        assert!(check(&far).is_err());
        let expired = own("").replace(&(NOW + 300).to_string(), &(NOW - 61).to_string());
        assert!(check(&expired).is_err());
        let skewed = own("").replace(&(NOW + 300).to_string(), &(NOW - 30).to_string());
        assert!(check(&skewed).is_ok(), "within the clock skew");
        assert!(check(&own(&format!(r#","nbf":{}"#, NOW + 120))).is_err());
        let endpoint = own("").replace(
            "\"https://auth.example\"",
            "[\"x\",\"https://auth.example/token\"]",
        );
        assert!(check(&endpoint).is_ok());
        let float = own("").replace(&(NOW + 300).to_string(), &format!("{}.5", NOW + 300));
        assert!(check(&float).is_ok());
    }

    #[test]
    fn a_platform_token_is_bound_by_audience_and_age() {
        let issuer = TrustedIssuer {
            name: "k8s".into(),
            id: "i1".into(),
            issuer: "https://k8s.example".into(),
            keys: KeySource::Discovery,
            audience: None,
            max_token_age: 3600,
            created_at: 0,
        };
        let token = |iat: i64, exp: i64, aud: &str| {
            claims(&format!(
                r#"{{"iss":"https://k8s.example","sub":"system:serviceaccount:a:b","aud":["{aud}"],"iat":{iat},"exp":{exp}}}"#
            ))
        };
        fn check(c: &JwtClaims, issuer: &TrustedIssuer) -> Result<String, &'static str> {
            check_platform_token(c, issuer, "https://auth.example", NOW).map(str::to_owned)
        }
        let check = |c: &JwtClaims| check(c, &issuer);
        assert_eq!(
            check(&token(NOW - 10, NOW + 600, "https://auth.example")).as_deref(),
            Ok("system:serviceaccount:a:b")
        );
        assert!(
            check(&token(
                NOW - 10,
                NOW + 600,
                "https://kubernetes.default.svc"
            ))
            .is_err()
        );
        assert!(check(&token(NOW - 4000, NOW + 600, "https://auth.example")).is_err());
        assert!(check(&token(NOW, NOW + 86_400, "https://auth.example")).is_err());
        assert!(check(&token(NOW - 700, NOW - 100, "https://auth.example")).is_err());
    }

    #[test]
    fn a_spiffe_svid_without_iss_is_judged_by_its_trust_domain() {
        let svid = claims(r#"{"sub":"spiffe://example.org/ns/pay/sa/api"}"#);
        assert_eq!(
            effective_issuer(&svid).as_deref(),
            Some("spiffe://example.org")
        );
        assert_eq!(effective_issuer(&claims(r#"{"sub":"x"}"#)), None);
        assert_eq!(
            effective_issuer(&claims(r#"{"iss":"https://a/","sub":"x"}"#)).as_deref(),
            Some("https://a/"),
            "compared exactly"
        );
    }
}
