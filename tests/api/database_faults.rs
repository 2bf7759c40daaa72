//! A database that stops answering: requests get 503 with Retry-After within
//! seconds instead of hanging, readiness fails, the process stays up, and
//! service resumes by itself when the database returns. The outage is made
//! by a TCP proxy between the server and Postgres that the test controls.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

use tokenmint::admin::ClientAdmin;
use tokenmint::clock::unix_now;

use crate::helpers::{TestApp, eventually, host_port, json, with_host};

const FORWARD: u8 = 0;
/// New connections are closed at once and open ones are cut.
const REFUSE: u8 = 1;
/// Bytes are held, neither delivered nor refused: packets silently dropped.
const BLACKHOLE: u8 = 2;

struct Proxy {
    address: SocketAddr,
    mode: Arc<AtomicU8>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mode = Arc::new(AtomicU8::new(FORWARD));
        let shared = mode.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if shared.load(Ordering::SeqCst) == REFUSE {
                    continue; // dropped: closed at once
                }
                let Ok(outbound) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (client_read, client_write) = inbound.into_split();
                let (server_read, server_write) = outbound.into_split();
                tokio::spawn(pump(client_read, server_write, shared.clone()));
                tokio::spawn(pump(server_read, client_write, shared.clone()));
            }
        });
        Self { address, mode }
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }
}

async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mode: Arc<AtomicU8>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            () = tokio::time::sleep(Duration::from_millis(50)) => {
                if mode.load(Ordering::SeqCst) == REFUSE { return; }
                continue;
            }
        };
        loop {
            match mode.load(Ordering::SeqCst) {
                FORWARD => break,
                REFUSE => return,
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

async fn timed_token(
    app: &TestApp,
    id: &str,
    secret: &str,
) -> (u16, Option<String>, serde_json::Value, Duration) {
    let started = Instant::now();
    let response = app
        .token("grant_type=client_credentials", Some((id, secret)))
        .await;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry_after, json(response).await, started.elapsed())
}

async fn ready(app: &TestApp) -> u16 {
    app.http
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_answers_503_then_recovers() {
    let admin_url = std::env::var("TOKENMINT_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let proxy = Proxy::start(host_port(&admin_url)).await;
    let settings = [
        ("TOKENMINT_DB_ACQUIRE_TIMEOUT", "2"),
        ("TOKENMINT_DB_QUERY_TIMEOUT", "2"),
    ];
    let Some(app) = TestApp::spawn_postgres_through(proxy.address, &settings).await else {
        return;
    };
    let (id, secret) = app.standard_client().await;
    assert_eq!(
        timed_token(&app, &id, &secret).await.0,
        200,
        "before the outage"
    );

    for (name, mode) in [("refused", REFUSE), ("black-holed", BLACKHOLE)] {
        proxy.set(mode);
        // A warm client may be served from memory for the first moments of
        // the outage (store::CLIENT_CACHE_TTL); after that, 503 — and never
        // a hang: within 10 s of the outage, every answer so far included.
        let outage = Instant::now();
        let (status, retry_after, body, took) = loop {
            let answer = timed_token(&app, &id, &secret).await;
            assert!(
                answer.3 < Duration::from_secs(10),
                "{name}: answered in {:?}",
                answer.3
            );
            if answer.0 != 200 || outage.elapsed() > Duration::from_secs(10) {
                break answer;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(status, 503, "{name}: 503, not a hang or a 500");
        assert!(
            outage.elapsed() < Duration::from_secs(10),
            "{name}: 503 within {took:?} of the outage"
        );
        assert_eq!(body["error"], "temporarily_unavailable", "{name}");
        assert!(retry_after.is_some(), "{name}: Retry-After");
        assert_eq!(ready(&app).await, 503, "{name}: not ready");
        let health = app.http.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(health.status(), 200, "{name}: the process stays up");

        proxy.set(FORWARD);
        let recovered = crate::helpers::eventually(std::time::Duration::from_secs(20), || async {
            let (status, ..) = timed_token(&app, &id, &secret).await;
            (status == 200 && ready(&app).await == 200).then_some(())
        })
        .await;
        assert!(
            recovered.is_some(),
            "{name}: service resumes by itself when the database returns"
        );
    }
}

/// Changes made on another instance reach this one through the database's
/// notifications; when the notification connection is cut, by polling
/// until it is back — a disabled client is refused, a rotated key
/// published, either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_arrive_with_the_notification_connection_cut() {
    let admin_url = std::env::var("TOKENMINT_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let proxy = Proxy::start(host_port(&admin_url)).await;
    let Some(app) = TestApp::spawn_postgres_through(proxy.address, &[]).await else {
        return;
    };
    // The other instance reaches the database directly.
    let direct: Vec<(String, String)> = app
        .env
        .iter()
        .map(|(k, v)| match k.as_str() {
            "DATABASE_URL" => (k.clone(), with_host(v, &host_port(&admin_url))),
            _ => (k.clone(), v.clone()),
        })
        .collect();
    let other = crate::helpers::Instance::start(&direct).await;
    let other_admin = ClientAdmin::new(other.store.as_ref(), &app.hasher);
    for round in ["listening", "cut"] {
        let (id, secret) = app.standard_client().await;
        assert_eq!(app.token_status(&id, &secret).await, 200, "{round}: warm");
        if round == "cut" {
            // Every connection through the proxy is cut, the notification
            // one with them; the pool reconnects at once, the listener a
            // second later.
            proxy.set(REFUSE);
            tokio::time::sleep(Duration::from_millis(200)).await;
            proxy.set(FORWARD);
        }
        other_admin
            .set_enabled(&id, false, unix_now())
            .await
            .unwrap();
        let refused = eventually(Duration::from_secs(3), || async {
            (app.token_status(&id, &secret).await == 401).then_some(())
        })
        .await;
        assert!(
            refused.is_some(),
            "{round}: the disabling reached this instance"
        );
    }
    other.stop().await;
}
