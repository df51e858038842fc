//! HTTPS: `weir server --tls-cert/--tls-key` serves the API over rustls; clients verify the
//! certificate (trusting a given CA file), plain HTTP to the TLS port fails, and UI session
//! cookies are marked Secure.

use std::path::Path;
use std::time::Duration;
use weir_client::Client;
use weir_server::{Options, Server, TlsFiles};

/// A self-signed certificate for 127.0.0.1 and localhost, written as PEM files in `dir`.
fn certificate(dir: &Path) -> TlsFiles {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("generate a certificate");
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    std::fs::write(&files.cert, cert.cert.pem()).expect("write cert");
    std::fs::write(&files.key, cert.signing_key.serialize_pem()).expect("write key");
    files
}

async fn start(dir: &Path, tls: TlsFiles) -> Server {
    Server::start(Options {
        database_url: format!("sqlite://{}", dir.join("weir.db").display()),
        bind: "127.0.0.1:0".into(),
        tls: Some(tls),
        ..Options::default()
    })
    .await
    .expect("server starts with TLS")
}

#[tokio::test]
async fn https_with_a_trusted_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = certificate(dir.path());
    let server = start(dir.path(), files.clone()).await;
    let key = server.bootstrap_key.clone().expect("admin key");
    let url = format!("https://127.0.0.1:{}", server.addr.port());

    let trusted = Client::with_ca(&url, Some(key.clone()), Some(&files.cert)).expect("client");
    assert_eq!(
        trusted.ready().await.expect("ready over https").status,
        "ok"
    );
    assert!(
        trusted
            .projects()
            .await
            .expect("authenticated call")
            .is_empty()
    );

    // Without the CA the certificate is not trusted: the client refuses to talk.
    let untrusted = Client::with_ca(&url, Some(key), None).expect("client");
    let err = untrusted
        .ready()
        .await
        .expect_err("self-signed certificate must be refused");
    assert!(
        matches!(err, weir_client::Error::Transport { .. }),
        "{err:?}"
    );

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain =
        Client::new(&format!("http://127.0.0.1:{}", server.addr.port()), None).expect("client");
    let plain_answer = tokio::time::timeout(Duration::from_secs(15), plain.ready()).await;
    assert!(
        !matches!(plain_answer, Ok(Ok(_))),
        "plain HTTP must not be served: {plain_answer:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn session_cookies_are_secure_over_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = certificate(dir.path());
    let server = start(dir.path(), files.clone()).await;
    let key = server.bootstrap_key.clone().expect("admin key");
    let base = format!("https://127.0.0.1:{}", server.addr.port());
    let pem = std::fs::read(&files.cert).expect("read cert");
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("pem"))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let form = http
        .get(format!("{base}/login"))
        .send()
        .await
        .expect("login page");
    let csrf_cookie = form
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("weir_login_csrf="))
        .expect("login CSRF cookie")
        .to_string();
    let csrf = csrf_cookie
        .trim_start_matches("weir_login_csrf=")
        .split(';')
        .next()
        .expect("value")
        .to_string();
    let resp = http
        .post(format!("{base}/login"))
        .header(reqwest::header::COOKIE, format!("weir_login_csrf={csrf}"))
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(format!("key={key}&csrf={csrf}&next=%2F"))
        .send()
        .await
        .expect("log in");
    assert_eq!(resp.status(), reqwest::StatusCode::SEE_OTHER);
    let session = resp
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("weir_session="))
        .expect("session cookie")
        .to_string();
    for attr in ["HttpOnly", "SameSite=Strict", "Secure"] {
        assert!(
            session.contains(attr),
            "session cookie lacks {attr}: {session}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn unusable_certificates_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = TlsFiles {
        cert: dir.path().join("nope.pem"),
        key: dir.path().join("nope.key"),
    };
    let err = Server::start(Options {
        database_url: format!("sqlite://{}", dir.path().join("weir.db").display()),
        bind: "127.0.0.1:0".into(),
        tls: Some(missing),
        ..Options::default()
    })
    .await
    .err()
    .expect("a missing certificate is refused");
    assert!(err.to_string().contains("nope.pem"), "{err}");
}

/// PEM files of a certificate for `names` made from `params`.
fn files_for(dir: &Path, tag: &str, mut params: rcgen::CertificateParams) -> TlsFiles {
    let key = rcgen::KeyPair::generate().expect("key");
    params.distinguished_name = rcgen::DistinguishedName::new();
    let cert = params.self_signed(&key).expect("certificate");
    let files = TlsFiles {
        cert: dir.join(format!("{tag}-cert.pem")),
        key: dir.join(format!("{tag}-key.pem")),
    };
    std::fs::write(&files.cert, cert.pem()).expect("write cert");
    std::fs::write(&files.key, key.serialize_pem()).expect("write key");
    files
}

/// What `client` says when asking its server's readiness fails; a TLS failure is never
/// transient (it does not mend itself).
async fn tls_failure(client: Result<Client, weir_client::Error>) -> String {
    let e = client
        .expect("client")
        .ready()
        .await
        .expect_err("a TLS failure");
    assert!(
        !e.is_transient(),
        "a TLS failure does not mend itself: {e:?}"
    );
    e.to_string()
}

/// Not trusted: the certificate's issuer is unknown to the client, which says how to trust
/// it.
#[tokio::test]
async fn an_untrusted_certificate_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let own = certificate(dir.path());
    let server = start(dir.path(), own.clone()).await;
    let url = format!("https://127.0.0.1:{}", server.addr.port());
    let m = tls_failure(Client::with_ca(&url, None, None)).await;
    assert!(
        m.contains("not signed by a CA this client trusts") && m.contains("--ca-file"),
        "{m}"
    );
    server.stop().await;
}

/// Trusted, but asked for by a name it does not carry: the message names the name and the
/// certificate's subjectAltName.
#[tokio::test]
async fn a_certificate_for_another_name_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let own = certificate(dir.path());
    let server = start(dir.path(), own.clone()).await;
    let url = format!("https://localhost:{}", server.addr.port());
    let right = Client::with_ca(&url, None, Some(&own.cert)).expect("client");
    assert!(
        right.ready().await.is_ok(),
        "localhost is in the certificate"
    );
    server.stop().await;
    let other_name = files_for(
        dir.path(),
        "other",
        rcgen::CertificateParams::new(vec!["weir.example.invalid".to_string()]).expect("params"),
    );
    let server = start(dir.path(), other_name.clone()).await;
    let url = format!("https://127.0.0.1:{}", server.addr.port());
    let m = tls_failure(Client::with_ca(&url, None, Some(&other_name.cert))).await;
    assert!(
        m.contains("not valid for \"127.0.0.1\"") && m.contains("subjectAltName"),
        "{m}"
    );
    server.stop().await;
}

/// A CA certificate served as the server's own (what `openssl req -x509` makes) is named as
/// such.
#[tokio::test]
async fn a_ca_served_as_the_servers_certificate_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
    let mut ca_params = rcgen::CertificateParams::new(names).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = files_for(dir.path(), "ca", ca_params);
    let server = start(dir.path(), ca.clone()).await;
    let url = format!("https://127.0.0.1:{}", server.addr.port());
    let m = tls_failure(Client::with_ca(&url, None, Some(&ca.cert))).await;
    assert!(m.contains("presents a CA certificate as its own"), "{m}");
    server.stop().await;
}

/// https:// to a plain HTTP server says to use http://; once nothing listens there, the
/// failure is transient and the message says to start a server.
#[tokio::test]
async fn tls_to_plain_http_and_to_nothing_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = Server::start(Options {
        database_url: format!("sqlite://{}", dir.path().join("plain.db").display()),
        bind: "127.0.0.1:0".into(),
        ..Options::default()
    })
    .await
    .expect("plain server");
    let port = plain.addr.port();
    let m = tls_failure(Client::new(&format!("https://127.0.0.1:{port}"), None)).await;
    assert!(
        m.contains("did not answer in TLS") && m.contains("http://"),
        "{m}"
    );
    plain.stop().await;

    let e = Client::new(&format!("http://127.0.0.1:{port}"), None)
        .expect("client")
        .ready()
        .await
        .expect_err("refused");
    assert!(e.is_transient(), "{e:?}");
    let m = e.to_string();
    assert!(
        m.contains("nothing is listening") && m.contains("weir up"),
        "{m}"
    );
}
