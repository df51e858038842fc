//! The last admin key, recovery of admin access from the database, and request bodies over
//! the limit — against a real server over real HTTP.

mod common;

use common::{TestServer, options};
use std::time::Duration;
use uuid::Uuid;
use weir_core::api::CreateApiKey;
use weir_core::auth::Role;
use weir_testkit::{Backend, TestDb};

async fn sqlite(name: &str) -> TestDb {
    TestDb::new(Backend::Sqlite, name).await.expect("sqlite")
}

async fn admin(s: &TestServer, name: &str, expires_in_s: Option<u64>) -> (String, String) {
    let k = s
        .client
        .create_key(&CreateApiKey {
            name: name.into(),
            role: Role::Admin,
            project: None,
            expires_in_s,
        })
        .await
        .expect("create admin key");
    (k.key.id, k.secret)
}

async fn case_last_admin_key(db: &TestDb) {
    let s = TestServer::start(options(db)).await;
    let first = s.client.keys().await.expect("keys")[0].id.clone();
    let refused = s
        .client
        .revoke_key(&first)
        .await
        .expect_err("the only admin key");
    assert_eq!(refused.status().map(|c| c.as_u16()), Some(409), "{refused}");
    assert!(refused.to_string().contains("last admin key"), "{refused}");
    // An admin key that expires does not count: it would leave the server without admins.
    admin(&s, "temporary", Some(3600)).await;
    let refused = s
        .client
        .revoke_key(&first)
        .await
        .expect_err("still the last");
    assert_eq!(refused.status().map(|c| c.as_u16()), Some(409), "{refused}");
    // With another admin key that never expires, revoking works, and that one is then last.
    let (second, secret) = admin(&s, "second", None).await;
    let revoked = s.client.revoke_key(&first).await.expect("revoke");
    assert!(revoked.revoked_at.is_some());
    let by_second = s.client_with(&secret);
    let refused = by_second
        .revoke_key(&second)
        .await
        .expect_err("now the last");
    assert_eq!(refused.status().map(|c| c.as_u16()), Some(409), "{refused}");
    assert!(
        by_second.keys().await.is_ok(),
        "the server is still manageable"
    );
    // A scoped or non-admin key is revoked as before.
    let dev = s
        .client_with(&secret)
        .create_key(&CreateApiKey {
            name: "dev".into(),
            role: Role::Developer,
            project: None,
            expires_in_s: None,
        })
        .await
        .expect("developer key");
    by_second
        .revoke_key(&dev.key.id)
        .await
        .expect("revoke a developer key");
    s.stop().await;
}
weir_testkit::both_backends!(case_last_admin_key => sqlite_last_admin_key, postgres_last_admin_key);

/// `weir keys recover --db URL` writes an admin key the running server accepts, after every
/// admin key was revoked behind the API's back (a hand-edited database).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovered_admin_key_works() {
    let db = sqlite("recover").await;
    let s = TestServer::start(options(&db)).await;
    let recovered = weir_server::auth::recover_admin_key(&db.url)
        .await
        .expect("recover");
    let c = s.client_with(&recovered);
    let keys = c.keys().await.expect("the recovered key is an admin key");
    assert!(keys.iter().any(|k| k.name == "recovered-admin"));
    let audit = c.audit(None, 10).await.expect("audit");
    assert!(
        audit.items.iter().any(|e| e.action == "key.recover"),
        "{:?}",
        audit.items
    );
    let bad = weir_server::auth::recover_admin_key("mysql://nope").await;
    assert!(bad.is_err_and(|e| e.contains("mysql://nope")));
    s.stop().await;
}

/// A 5 MiB body to `POST …/cancel`, which takes no body, through an ordinary HTTP client:
/// over the limit it is a 413 the client reads in full (no reset while it was still
/// sending), with or without a declared length; under the limit the route answers as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_get_a_readable_413_on_every_route() {
    let db = sqlite("body_limit").await;
    let mut opts = options(&db);
    opts.max_body_bytes = 1024 * 1024;
    let s = TestServer::start(opts).await;
    let big = vec![b'x'; 5 * 1024 * 1024];
    let cancel = s.url(&format!("/api/v1/flow_runs/{}/cancel", Uuid::now_v7()));
    for round in 0..3 {
        let resp = s
            .http
            .post(&cancel)
            .body(big.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("round {round}: the client got no answer: {e}"));
        assert_eq!(resp.status().as_u16(), 413, "round {round}");
        let body = resp.text().await.expect("the whole answer is readable");
        assert!(body.contains("payload_too_large"), "{body}");
    }
    // Chunked, without Content-Length, over a plain socket: the 413 arrives, then a clean end.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = s.base.trim_start_matches("http://").to_string();
        let mut sock = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        let head = format!(
            "POST /api/v1/flow_runs/{}/cancel HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nTransfer-Encoding: chunked\r\n\r\n",
            Uuid::now_v7(),
            s.admin_key
        );
        sock.write_all(head.as_bytes()).await.expect("send head");
        let chunk = format!("10000\r\n{}\r\n", "y".repeat(0x10000));
        for _ in 0..40 {
            sock.write_all(chunk.as_bytes())
                .await
                .expect("send a chunk");
        }
        sock.write_all(b"0\r\n\r\n").await.expect("end the body");
        let mut answer = Vec::new();
        sock.read_to_end(&mut answer)
            .await
            .expect("read to a clean end, no reset");
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(answer.contains("payload_too_large"), "{answer}");
    }
    // Other routes too, and small bodies still work on the same server.
    let resp = s
        .http
        .post(s.url("/api/v1/logs/batch"))
        .body(big.clone())
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status().as_u16(), 413);
    let resp = s
        .http
        .post(&cancel)
        .body("{}")
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status().as_u16(), 404, "an unknown run, read normally");
    s.stop().await;

    // Under the default 16 MiB limit, the same 5 MiB body gets the route's own answer.
    let db = sqlite("body_limit_default").await;
    let s = TestServer::start(options(&db)).await;
    let resp = s
        .http
        .post(s.url(&format!("/api/v1/flow_runs/{}/cancel", Uuid::now_v7())))
        .timeout(Duration::from_secs(30))
        .body(big)
        .send()
        .await
        .expect("an answer, not a reset");
    assert_eq!(resp.status().as_u16(), 404);
    s.stop().await;
}
