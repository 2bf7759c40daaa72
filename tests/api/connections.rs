//! Idle and slow connections cannot deny service: a header-read timeout
//! that also bounds idle keep-alive time, a cap on open connections, the
//! open-file limit raised at start. And the private listeners: `/metrics`
//! and the admin API leave the public listener once one exists.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Backend, TestApp, json};

async fn idle_and_slow_connections(backend: Backend) {
    tokenmint::net::raise_open_file_limit();
    let env = [("TOKENMINT_HEADER_READ_TIMEOUT", "2")];
    let Some(app) = TestApp::spawn_with(backend, &env).await else {
        return;
    };
    let (id, secret) = app.standard_client().await;
    let address = app.address.trim_start_matches("http://").to_owned();

    // 1,000 idle connections and 1,000 that send half a request head.
    let mut held = Vec::new();
    for i in 0..2000 {
        let mut stream = TcpStream::connect(&address).await.expect("connects");
        if i % 2 == 1 {
            stream
                .write_all(b"POST /token HTTP/1.1\r\nHost: x\r\n")
                .await
                .unwrap();
        }
        held.push(stream);
    }
    assert_eq!(
        app.token_status(&id, &secret).await,
        200,
        "a normal client, with 2,000 idle and slow connections open"
    );

    // A connection kept alive after a response is held no longer either.
    let mut kept = TcpStream::connect(&address).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = kept.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "kept-alive answer");

    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut slow = held.swap_remove(1);
    let mut idle = held.swap_remove(0);
    for (case, stream) in [
        ("idle", &mut idle),
        ("slowloris", &mut slow),
        ("idle after a response", &mut kept),
    ] {
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
        let closed = match read {
            Ok(Ok(0)) | Ok(Err(_)) => true,
            // hyper may answer 408 before closing.
            Ok(Ok(n)) => buf[..n].starts_with(b"HTTP/1.1 408"),
            Err(_) => false,
        };
        assert!(closed, "{case}: closed after the header-read timeout");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_connections_sqlite() {
    idle_and_slow_connections(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_connections_postgres() {
    idle_and_slow_connections(Backend::Postgres).await;
}

/// A request whose head arrived but whose body stalls is answered 408 in
/// the usual JSON once the body deadline passes, not held for the whole
/// request timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_is_cut_off() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&address).await.unwrap();
    stream
        .write_all(b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 40\r\n\r\ngrant_type=")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(25), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("invalid_request"), "a JSON error: {answer}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "cut off at the body deadline"
    );
}

/// Past `max_connections`, a new connection waits for a place (here, for an
/// idle one to time out) instead of costing a file descriptor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_holds_and_frees() {
    let env = [
        ("TOKENMINT_HEADER_READ_TIMEOUT", "1"),
        ("TOKENMINT_MAX_CONNECTIONS", "8"),
    ];
    let app = TestApp::spawn_with(Backend::Sqlite, &env).await.unwrap();
    let (id, secret) = app.standard_client().await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(TcpStream::connect(&address).await.unwrap());
    }
    let started = std::time::Instant::now();
    assert_eq!(
        app.token_status(&id, &secret).await,
        200,
        "served once a place frees"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "it waited for a place: {:?}",
        started.elapsed()
    );
}

/// With a private listener, the public one serves neither `/metrics` nor
/// the admin API, and its OpenAPI document lists only what it serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_admin_stay_off_the_public_listener() {
    let env = [
        ("TOKENMINT_ADMIN_LISTEN", "127.0.0.1:0"),
        ("TOKENMINT_METRICS_LISTEN", "127.0.0.1:0"),
    ];
    let app = TestApp::spawn_with(Backend::Sqlite, &env).await.unwrap();
    let get = |url: String| {
        let http = app.http.clone();
        async move { http.get(url).send().await.unwrap() }
    };
    assert_eq!(
        get(app.url("/metrics")).await.status(),
        404,
        "public /metrics"
    );
    let admin = app.admin_address.clone().unwrap();
    let metrics = app.metrics_address.clone().unwrap();
    assert_eq!(
        get(format!("{admin}/metrics")).await.status(),
        404,
        "metrics has its own listener"
    );
    let scraped = get(format!("{metrics}/metrics")).await;
    assert_eq!(scraped.status(), 200);
    assert!(
        scraped
            .text()
            .await
            .unwrap()
            .contains("tokenmint_auth_failures_total")
    );
    assert_eq!(get(format!("{metrics}/token")).await.status(), 404);

    let document = json(get(app.url("/openapi.json")).await).await;
    let paths: Vec<&String> = document["paths"].as_object().unwrap().keys().collect();
    assert!(paths.iter().any(|p| *p == "/token"), "{paths:?}");
    assert!(
        !paths
            .iter()
            .any(|p| p.starts_with("/admin") || *p == "/metrics"),
        "the public document lists only public routes: {paths:?}"
    );

    // With only the admin listener, /metrics moves there.
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[("TOKENMINT_ADMIN_LISTEN", "127.0.0.1:0")],
    )
    .await
    .unwrap();
    let admin = app.admin_address.clone().unwrap();
    assert_eq!(
        app.http
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let scraped = app
        .http
        .get(format!("{admin}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status(), 200, "metrics on the admin listener");
}
