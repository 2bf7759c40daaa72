//! Brute-force throttling (RFC 6749 §2.3.1): failed authentications are
//! limited per client id and per source address; a caller presenting an
//! already-verified secret is never throttled.

use crate::helpers::{Backend, TestApp, json};

const GRANT: &str = "grant_type=client_credentials";

async fn attempt(app: &TestApp, id: &str, secret: &str) -> reqwest::Response {
    app.token(GRANT, Some((id, secret))).await
}

async fn throttling(backend: Backend) {
    let env = [
        ("TOKENMINT_THROTTLE_CLIENT_FAILURES", "3"),
        ("TOKENMINT_THROTTLE_ADDRESS_FAILURES", "8"),
    ];
    let Some(app) = TestApp::spawn_with(backend, &env).await else {
        return;
    };
    let (id, secret) = app.standard_client().await;
    let (other, other_secret) = app.standard_client().await;
    assert_eq!(
        attempt(&app, &id, &secret).await.status(),
        200,
        "the client's secret is verified once"
    );

    for i in 1..=3 {
        assert_eq!(
            attempt(&app, &id, "guess").await.status(),
            401,
            "failure {i} is refused normally"
        );
    }
    let throttled = attempt(&app, &id, "guess").await;
    assert_eq!(throttled.status(), 429, "past the per-client limit");
    let retry_after: u64 = throttled.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(throttled.headers()["cache-control"], "no-store");
    assert_eq!(json(throttled).await["error"], "temporarily_unavailable");

    assert_eq!(
        attempt(&app, &id, &secret).await.status(),
        200,
        "the verified secret is never throttled"
    );
    assert_eq!(
        attempt(&app, &other, &other_secret).await.status(),
        200,
        "another client is served normally"
    );

    // Unknown ids are limited exactly like real ones: the limit is no oracle.
    for _ in 1..=3 {
        assert_eq!(attempt(&app, "ghost", "guess").await.status(), 401);
    }
    assert_eq!(
        attempt(&app, "ghost", "guess").await.status(),
        429,
        "an unknown id is limited alike"
    );

    // Six failures so far from this address; two more reach its limit of 8.
    assert_eq!(attempt(&app, "ghost-2", "guess").await.status(), 401);
    assert_eq!(attempt(&app, "ghost-3", "guess").await.status(), 401);
    assert_eq!(
        attempt(&app, "ghost-4", "guess").await.status(),
        429,
        "past the per-address limit"
    );
    assert_eq!(
        attempt(&app, &other, &other_secret).await.status(),
        200,
        "verified secrets pass the address limit too"
    );
    let (fresh, fresh_secret) = app.standard_client().await;
    assert_eq!(
        attempt(&app, &fresh, &fresh_secret).await.status(),
        429,
        "a secret not yet verified waits out the address limit"
    );

    // Introspection and revocation authenticate through the same throttle.
    let response = app.introspect("x", Some(("ghost-5", "guess"))).await;
    assert_eq!(response.status(), 429, "introspection is throttled alike");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_sqlite() {
    throttling(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_postgres() {
    throttling(Backend::Postgres).await;
}
