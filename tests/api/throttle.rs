//! Brute-force throttling (RFC 6749 §2.3.1): failed authentications are
//! limited per (client id, address) and per source address; a caller
//! presenting an already-verified secret is never throttled, and no flood
//! from other addresses locks a client out.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use crate::helpers::{Backend, TestApp, both_stores, json, post_form};

both_stores!(
    no_lockout_from_other_addresses,
    a_flood_from_many_addresses_does_not_starve_a_new_client,
    a_burst_of_new_clients_from_one_address_is_served
);

/// After a restart every client is cold: 24 never-verified clients behind
/// one address (a connection pool, a NAT) asking at once all get tokens —
/// they wait their turn for argon2, none is told 503 — even after another
/// service behind the same address sent a wrong secret.
async fn a_burst_of_new_clients_from_one_address_is_served(app: TestApp) {
    let (misconfigured, _) = app.standard_client().await;
    assert_eq!(app.token_status(&misconfigured, "stale secret").await, 401);
    let mut clients = Vec::new();
    for _ in 0..24 {
        clients.push(app.standard_client().await);
    }
    let requests: Vec<_> = clients
        .into_iter()
        .map(|(id, secret)| {
            let http = app.http.clone();
            let url = app.url("/token");
            tokio::spawn(async move { post_form(&http, &url, GRANT, Some((&id, &secret))).await })
        })
        .collect();
    for (i, request) in requests.into_iter().enumerate() {
        assert_eq!(
            request.await.unwrap().status(),
            200,
            "client {i} of the burst"
        );
    }
}

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

/// Wrong secrets for a client's (public) id from several other addresses,
/// well past every limit, do not stop that client — never verified before —
/// from getting a token, introspecting and revoking from its own address.
async fn no_lockout_from_other_addresses(app: TestApp) {
    let (id, secret) = app.standard_client().await;
    let mut throttled = 0;
    for last in 2..=5u8 {
        let address = IpAddr::from([127, 0, 0, last]);
        let attacker = reqwest::Client::builder()
            .local_address(address)
            .build()
            .unwrap();
        // Past the default limit of 10 failures per id and address.
        for _ in 0..12 {
            let response =
                post_form(&attacker, &app.url("/token"), GRANT, Some((&id, "guess"))).await;
            match response.status().as_u16() {
                401 => {}
                429 => throttled += 1,
                other => panic!("{address}: a wrong secret answered {other}"),
            }
        }
    }
    assert!(
        throttled >= 4,
        "each attacking address is throttled ({throttled})"
    );

    assert_eq!(
        app.token_status(&id, &secret).await,
        200,
        "the correct secret, never verified before, gets a token"
    );
    let token = app.token_for(&id, &secret).await;
    let introspected = app.introspect(&token, Some((&id, &secret))).await;
    assert_eq!(introspected.status(), 200, "introspection by the client");
    assert_eq!(json(introspected).await["active"], true);
    let revoked = app.revoke(&token, Some((&id, &secret))).await;
    assert_eq!(revoked.status(), 200, "revocation by the client");
}

/// Wrong secrets from 100 addresses, each under its own limits and with two
/// connections — for made-up ids and for real clients' ids — while a client
/// that was never verified presents its correct secret: it gets its token,
/// not a 503.
async fn a_flood_from_many_addresses_does_not_starve_a_new_client(app: TestApp) {
    let (victim, _) = app.standard_client().await;
    let (other_victim, _) = app.standard_client().await;
    let (id, secret) = app.standard_client().await;
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicU32::new(0));
    let mut flood = Vec::new();
    for task in 0..200u16 {
        let n = u8::try_from(task % 100).unwrap();
        let attacker = reqwest::Client::builder()
            .local_address(IpAddr::from([127, 0, 1, n + 1]))
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let url = app.url("/token");
        let victim = if task < 100 {
            victim.clone()
        } else {
            other_victim.clone()
        };
        let (stop, refused) = (stop.clone(), refused.clone());
        flood.push(tokio::spawn(async move {
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let made_up = format!("ghost-{n}-{i}");
                // Mostly real ids (argon2 work), some made-up ones.
                let target = if i.is_multiple_of(4) {
                    &made_up
                } else {
                    victim.as_str()
                };
                let response = post_form(&attacker, &url, GRANT, Some((target, "guess"))).await;
                if matches!(response.status().as_u16(), 401 | 429 | 503) {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let status = app.token_status(&id, &secret).await;
    stop.store(true, Ordering::Relaxed);
    for task in flood {
        task.await.unwrap();
    }
    assert!(refused.load(Ordering::Relaxed) >= 100, "the flood ran");
    assert_eq!(
        status, 200,
        "the new client's correct secret during the flood"
    );
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap();
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("tokenmint_argon2_busy_total"),
        "503s for a full queue are counted"
    );
}

/// `POST /token` with a wrong secret for `id` and one forwarding header;
/// the status.
async fn forwarded_failure(app: &TestApp, id: &str, header: (&str, &str)) -> u16 {
    forwarded_request(app, id, "wrong", &[header]).await
}

/// `POST /token` for `id` with `secret` and these forwarding headers.
async fn forwarded_request(app: &TestApp, id: &str, secret: &str, headers: &[(&str, &str)]) -> u16 {
    let mut request = app
        .http
        .post(app.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", crate::helpers::basic_header(id, secret))
        .body(GRANT);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap().status().as_u16()
}

/// Behind a trusted reverse proxy (here: the test itself, on 127.0.0.1),
/// the per-address limit counts the callers it forwards for, one by one;
/// the same headers from a peer that is not a trusted proxy are ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_proxies_name_the_caller_and_no_one_else_can() {
    let limits = [
        ("TOKENMINT_THROTTLE_ADDRESS_FAILURES", "3"),
        ("TOKENMINT_THROTTLE_CLIENT_FAILURES", "off"),
    ];
    let proxied = [
        limits[0],
        limits[1],
        ("TOKENMINT_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1"),
    ];
    let app = TestApp::spawn_with(Backend::Sqlite, &proxied)
        .await
        .unwrap();
    let (id, secret) = app.standard_client().await;
    let flooder = ("x-forwarded-for", "203.0.113.7, 10.1.2.3");
    for _ in 0..3 {
        assert_eq!(forwarded_failure(&app, &id, flooder).await, 401);
    }
    assert_eq!(
        forwarded_failure(&app, &id, flooder).await,
        429,
        "the flooder, by its own address"
    );
    // Another caller behind the same proxy is not the flooder.
    let other = ("x-forwarded-for", "2001:db8::17");
    assert_eq!(
        forwarded_failure(&app, &id, other).await,
        401,
        "another caller"
    );
    // The proxy appends X-Forwarded-For and passes a caller's own
    // `Forwarded` through: that header is not read, so a caller cannot
    // charge its failures to someone else's address with it.
    let victim = "198.51.100.77";
    let charged_to_victim = [
        ("forwarded", "for=198.51.100.77"),
        ("x-forwarded-for", "192.0.2.99"),
    ];
    for _ in 0..4 {
        forwarded_request(&app, &id, "wrong", &charged_to_victim).await;
    }
    let victims_own = ("x-forwarded-for", victim);
    assert_eq!(
        forwarded_failure(&app, &id, victims_own).await,
        401,
        "not charged to the victim"
    );
    // A caller that puts the flooder's address in front of its own does not
    // inherit its limit: only hops right of the first untrusted one count.
    let spoof = ("x-forwarded-for", "203.0.113.7, 198.51.100.9");
    assert_eq!(
        forwarded_failure(&app, &id, spoof).await,
        401,
        "a forged left-most hop"
    );
    let own = [("x-forwarded-for", "198.51.100.10")];
    assert_eq!(
        forwarded_request(&app, &id, &secret, &own).await,
        200,
        "the client itself"
    );

    // The same headers from a peer that is not a trusted proxy: ignored,
    // every request counts against the peer.
    let direct = [
        limits[0],
        limits[1],
        ("TOKENMINT_TRUSTED_PROXIES", "10.0.0.0/8"),
    ];
    let app = TestApp::spawn_with(Backend::Sqlite, &direct).await.unwrap();
    let (id, _) = app.standard_client().await;
    for n in 0..3 {
        let fake = format!("203.0.113.{n}");
        assert_eq!(
            forwarded_failure(&app, &id, ("x-forwarded-for", &fake)).await,
            401
        );
    }
    let fresh = ("x-forwarded-for", "192.0.2.200");
    assert_eq!(
        forwarded_failure(&app, &id, fresh).await,
        429,
        "an untrusted peer's header is ignored"
    );
}
