//! Result storage against a real S3 API: moto's server (`WEIR_TEST_AWS_ENDPOINT`, started by
//! scripts/test.sh with moto's dummy credentials in `AWS_ACCESS_KEY_ID`/`_SECRET_ACCESS_KEY`).
//! Writes, reads, listings and content types through `object_store`, and the errors a user
//! can fix, each naming the URL (create-only writes under a race: `tests/create_only.rs`).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use weir_results::{Error, ResultStore};
use weir_testkit::moto;

fn store(endpoint: &str, url: &str) -> ResultStore {
    ResultStore::open(url)
        .expect("valid url")
        .with_endpoint(endpoint)
}

#[tokio::test]
async fn put_get_list_and_fetch_under_a_prefix() {
    let Some(ep) = moto::endpoint("put_get_list_and_fetch_under_a_prefix") else {
        return;
    };
    let bucket = moto::create_bucket(&ep, "rw");
    let s = store(&ep, &format!("s3://{bucket}/weir/dev/"));
    s.check().await.expect("the bucket is usable");
    assert_eq!(
        s.get("run/a/0.json").await.expect("get"),
        None,
        "nothing yet"
    );
    assert_eq!(
        s.put("run/a/0.json", b"{\"n\":1}".to_vec())
            .await
            .expect("put"),
        7
    );
    s.put_object("run/raw.txt", b"hello".to_vec(), "text/plain")
        .await
        .expect("put raw");
    let o = s
        .get_object("run/a/0.json")
        .await
        .expect("get")
        .expect("there");
    assert_eq!(&o.bytes[..], b"{\"n\":1}");
    assert_eq!(o.content_type.as_deref(), Some("application/json"));
    let listed = s.list("run").await.expect("list");
    let keys: Vec<(&str, u64)> = listed.iter().map(|l| (l.key.as_str(), l.size)).collect();
    assert_eq!(
        keys,
        [("run/a/0.json", 7), ("run/raw.txt", 5)],
        "keys relative to the root"
    );

    let location = s.location("run/raw.txt");
    assert_eq!(location, format!("s3://{bucket}/weir/dev/run/raw.txt"));
    let fetched = ResultStore::fetch_via(&location, &ep).await.expect("fetch");
    assert_eq!(&fetched.bytes[..], b"hello");
    assert_eq!(fetched.content_type.as_deref(), Some("text/plain"));
    let missing = ResultStore::fetch_via(&s.location("run/none.json"), &ep)
        .await
        .expect_err("missing");
    assert!(matches!(missing, Error::NotFound { .. }), "{missing}");
    s.delete("run/raw.txt").await.expect("delete");
    assert_eq!(s.get("run/raw.txt").await.expect("get"), None);
}

#[tokio::test]
async fn a_missing_bucket_is_named_with_what_to_do() {
    let Some(ep) = moto::endpoint("a_missing_bucket_is_named_with_what_to_do") else {
        return;
    };
    let bucket = moto::bucket_name("absent");
    let url = format!("s3://{bucket}/results");
    let s = store(&ep, &url);
    for e in [
        s.check().await.expect_err("check"),
        s.put("k.json", b"1".to_vec()).await.expect_err("put"),
        s.get("k.json").await.expect_err("get: not a missing key"),
        s.put_new("k.json", b"1".to_vec())
            .await
            .expect_err("put_new"),
    ] {
        assert!(matches!(e, Error::NoSuchBucket { .. }), "{e:?}");
        let text = e.to_string();
        assert!(text.contains(&url), "names the URL: {text}");
        assert!(
            text.contains("does not exist") && text.contains("create it"),
            "{text}"
        );
        assert!(text.contains(&ep), "names the endpoint: {text}");
    }
}

#[test]
fn bad_urls_are_refused_before_any_request() {
    for (url, needle) in [
        ("s3://Bad_Bucket/x", "bucket names"),
        ("ftp://host/dir", "scheme \"ftp\""),
        ("s3://bucket/a//b", "empty segment"),
        ("file://relative/dir", "absolute path"),
    ] {
        let e = ResultStore::open(url).expect_err(url).to_string();
        assert!(e.contains(url) && e.contains(needle), "{url}: {e}");
    }
}

/// A second moto server with authentication on: moto's dummy credentials belong to no user
/// there, so every request is refused (403).
struct AuthMoto {
    child: Child,
    endpoint: String,
}

impl Drop for AuthMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn auth_moto() -> Option<AuthMoto> {
    let program = std::env::var("WEIR_TEST_MOTO_SERVER").ok()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let child = Command::new(program)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .env("INITIAL_NO_AUTH_ACTION_COUNT", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto_server");
    let server = AuthMoto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "moto_server with auth did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(server)
}

#[tokio::test]
async fn refused_credentials_say_what_to_check() {
    if moto::endpoint("refused_credentials_say_what_to_check").is_none() {
        return;
    }
    let Some(server) = auth_moto() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "WEIR_TEST_MOTO_SERVER is not set and CI is (scripts/test-moto.sh prints it)"
        );
        eprintln!(
            "skipped refused_credentials_say_what_to_check: WEIR_TEST_MOTO_SERVER is not set"
        );
        return;
    };
    let url = "s3://weir-test-denied/results";
    let s = store(&server.endpoint, url);
    for e in [
        s.check().await.expect_err("check"),
        s.put("k.json", b"1".to_vec()).await.expect_err("put"),
    ] {
        assert!(matches!(e, Error::AccessDenied { .. }), "{e:?}");
        let text = e.to_string();
        assert!(
            text.contains(url) && text.contains("access denied"),
            "{text}"
        );
        assert!(
            text.contains("s3:PutObject") && text.contains("task role"),
            "{text}"
        );
    }
}
