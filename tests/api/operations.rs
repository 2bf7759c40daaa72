//! What operators rely on: health and readiness, request ids, metrics that
//! move with traffic, and a SIGTERM that drains in-flight requests.

use std::collections::HashMap;

use crate::helpers::{ServerProcess, TestApp, both_stores, json};

both_stores!(
    health_readiness_and_request_ids,
    metrics_move_with_traffic,
    sigterm_drains_in_flight_requests,
    sigterm_turns_readiness_off_before_the_listener_closes
);

/// A client that sends requests and never reads the answers cannot hold the
/// server: its writes stall, the connection is closed, and SIGTERM still
/// ends the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_does_not_hold_the_shutdown() {
    let app = TestApp::spawn(crate::helpers::Backend::Sqlite)
        .await
        .unwrap();
    let server = ServerProcess::start(&app.env);
    let address = server.address.trim_start_matches("http://").to_owned();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(address.parse().unwrap()).await.unwrap();
    // Pipelined requests for a large answer, until neither side can send.
    let request = b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n".repeat(50);
    let mut blocked = 0;
    while blocked < 20 {
        match stream.try_write(&request) {
            Ok(_) => blocked = 0,
            Err(_) => {
                blocked += 1;
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
    server.terminate();
    let started = std::time::Instant::now();
    let (code, _) = tokio::task::spawn_blocking(move || server.stop())
        .await
        .unwrap();
    assert_eq!(code, Some(0), "exit 0");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "stopped after {:?}",
        started.elapsed()
    );
    drop(stream);
}

/// With a drain delay, SIGTERM makes `/readyz` answer 503 at once while
/// tokens are still served, so that a load balancer stops sending before
/// the listener closes; then the process exits 0.
async fn sigterm_turns_readiness_off_before_the_listener_closes(app: TestApp) {
    let (id, secret) = app.standard_client().await;
    let mut env = app.env.clone();
    env.push(("TOKENMINT_DRAIN_DELAY".into(), "2s".into()));
    let server = ServerProcess::start(&env);
    let http = reqwest::Client::new();
    let ready = http
        .get(format!("{}/readyz", server.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200, "ready before the signal");

    server.terminate();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let ready = http
        .get(format!("{}/readyz", server.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503, "not ready at once after SIGTERM");
    assert_eq!(json(ready).await["status"], "draining");
    let token = http
        .post(format!("{}/token", server.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", crate::helpers::basic_header(&id, &secret))
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 200, "still serving during the drain delay");

    let (code, output) = server.stop();
    assert_eq!(code, Some(0), "exit 0 after the drain");
    assert!(output.contains("draining: /readyz answers 503"), "{output}");
}

async fn health_readiness_and_request_ids(app: TestApp) {
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let first_id = health.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(json(health).await["status"], "ok");
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_ne!(
        ready.headers()["x-request-id"].to_str().unwrap(),
        first_id,
        "one id per request"
    );
    assert_eq!(json(ready).await["database"], "ok");

    // The container's HEALTHCHECK command.
    let port = app.address.rsplit(':').next().unwrap();
    let mut env = app.env.clone();
    env.push(("TOKENMINT_LISTEN".into(), format!("0.0.0.0:{port}")));
    let healthy = crate::helpers::run_binary(&["healthcheck"], &env, None);
    assert_eq!(
        healthy.status.code(),
        Some(0),
        "healthcheck against a live server"
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    env.push(("TOKENMINT_LISTEN".into(), format!("127.0.0.1:{closed}")));
    let unhealthy = crate::helpers::run_binary(&["healthcheck"], &env, None);
    assert_eq!(
        unhealthy.status.code(),
        Some(1),
        "healthcheck against nothing"
    );
}

/// Samples keyed by `name{labels}`, checking every line's syntax on the way.
async fn scrape(app: &TestApp) -> HashMap<String, f64> {
    let response = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    let mut samples = HashMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("malformed line {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("malformed value in {line:?}"));
        assert!(
            series.chars().next().unwrap().is_ascii_lowercase(),
            "{line:?}"
        );
        samples.insert(series.to_owned(), value);
    }
    samples
}

async fn metrics_move_with_traffic(app: TestApp) {
    let (id, secret) = app.standard_client().await;
    let before = scrape(&app).await;
    let get = |m: &HashMap<String, f64>, k: &str| m.get(k).copied().unwrap_or(0.0);

    app.token_for(&id, &secret).await; // argon2, then remembered
    app.token_for(&id, &secret).await; // from the cache
    assert_eq!(
        app.token("grant_type=client_credentials", Some((&id, "wrong")))
            .await
            .status(),
        401
    );
    assert_eq!(
        app.token("grant_type=client_credentials", Some(("nobody", "x")))
            .await
            .status(),
        401
    );
    assert_eq!(
        app.http
            .get(app.url("/nowhere"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    let after = scrape(&app).await;
    let delta = |k: &str| get(&after, k) - get(&before, k);
    assert_eq!(delta("tokenmint_tokens_issued_total"), 2.0, "tokens issued");
    assert_eq!(
        delta(r#"tokenmint_auth_failures_total{reason="wrong_secret"}"#),
        1.0
    );
    assert_eq!(
        delta(r#"tokenmint_auth_failures_total{reason="unknown_client"}"#),
        1.0
    );
    assert_eq!(
        delta("tokenmint_credential_cache_hits_total"),
        1.0,
        "the second token came from the cache"
    );
    assert_eq!(
        delta("tokenmint_credential_cache_misses_total"),
        2.0,
        "first success and the wrong secret"
    );
    assert_eq!(
        delta(r#"tokenmint_http_requests_total{endpoint="/token",status="200"}"#),
        2.0
    );
    assert_eq!(
        delta(r#"tokenmint_http_requests_total{endpoint="/token",status="401"}"#),
        2.0
    );
    assert_eq!(
        delta(r#"tokenmint_http_requests_total{endpoint="unmatched",status="404"}"#),
        1.0
    );
    assert_eq!(
        delta(r#"tokenmint_http_request_duration_seconds_count{endpoint="/token"}"#),
        4.0
    );
    assert_eq!(
        get(
            &after,
            r#"tokenmint_http_request_duration_seconds_bucket{endpoint="/token",le="+Inf"}"#
        ),
        get(
            &after,
            r#"tokenmint_http_request_duration_seconds_count{endpoint="/token"}"#
        ),
        "+Inf bucket equals the count"
    );
    assert!(after.contains_key("tokenmint_argon2_queue_depth"));
}

async fn sigterm_drains_in_flight_requests(app: TestApp) {
    // Eight clients whose first token needs argon2: on one argon2 permit they
    // queue, so several are still in flight when the signal arrives.
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(app.standard_client().await);
    }
    let server = ServerProcess::start(&app.env);
    let http = reqwest::Client::new();
    let url = format!("{}/token", server.address);
    let requests: Vec<_> = clients
        .iter()
        .map(|(id, secret)| {
            let request = http
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("authorization", crate::helpers::basic_header(id, secret))
                .body("grant_type=client_credentials")
                .send();
            tokio::spawn(request)
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    server.terminate();
    for (i, request) in requests.into_iter().enumerate() {
        let response = request
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("request {i} was cut off: {e}"));
        assert_eq!(
            response.status(),
            200,
            "request {i} completed during the drain"
        );
    }
    let (code, output) = server.stop();
    assert_eq!(code, Some(0), "exit 0 after draining");
    let signal_at = output
        .find("shutdown signal received")
        .expect("the drain is logged");
    let finished_after = output[signal_at..]
        .matches("request finished status=200")
        .count();
    assert!(
        finished_after >= 1,
        "some requests were still in flight at the signal and completed:\n{output}"
    );
}
