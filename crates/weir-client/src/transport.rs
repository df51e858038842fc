//! What a failed connection to the server means, in words a user can act on.
//!
//! A transport error from the HTTP stack is a chain of causes; the useful one is at the bottom
//! (a refused connection, a TLS certificate the client does not trust). This module finds it
//! and says what to do, instead of one "cannot reach the server" for every cause.

use std::error::Error as _;

/// The TLS failure in `e`'s chain of causes, if there is one.
fn tls_error(e: &reqwest::Error) -> Option<&rustls::Error> {
    e.source().and_then(find_tls)
}

/// Searches `e` and its causes for a TLS error. The TLS stream wraps it in I/O errors (at
/// times two deep), whose `source` skips the wrapped error, so look inside those too.
fn find_tls<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(t) = e.downcast_ref::<rustls::Error>() {
        return Some(t);
    }
    if let Some(inner) = e
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
        && let Some(t) = find_tls(inner)
    {
        return Some(t);
    }
    e.source().and_then(find_tls)
}

/// The I/O error at the bottom of `e`'s chain, if there is one.
fn io_error(e: &reqwest::Error) -> Option<&std::io::Error> {
    let mut cause = e.source();
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        cause = c.source();
    }
    None
}

/// Whether `e` is a TLS handshake failure (retrying will not help).
pub fn is_tls_failure(e: &reqwest::Error) -> bool {
    tls_error(e).is_some()
}

/// A message for a failed request to the server at `url`: what happened and what to do.
pub fn explain(url: &str, e: &reqwest::Error) -> String {
    if let Some(tls) = tls_error(e) {
        return explain_tls(url, tls);
    }
    if e.is_timeout() {
        return format!(
            "the Weir server at {url} did not answer in time: it may be overloaded, or a \
             firewall drops the connection"
        );
    }
    let io = io_error(e);
    if let Some(io) = io {
        match io.kind() {
            std::io::ErrorKind::ConnectionRefused => {
                return format!(
                    "cannot reach the Weir server at {url}: nothing is listening there; is a \
                     server running? (start one with `weir up`, or pass --api-url)"
                );
            }
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof
                if url.starts_with("http://") =>
            {
                return format!(
                    "the connection to {url} was closed before an answer; if the server \
                     serves HTTPS, use an https:// URL"
                );
            }
            _ => {}
        }
    }
    if e.is_connect() {
        let cause = io.map(|io| io.to_string()).unwrap_or_else(|| chain(e));
        return format!("cannot reach the Weir server at {url}: {cause}");
    }
    if url.starts_with("http://") && e.is_request() {
        return format!(
            "the connection to {url} broke ({}); if the server serves HTTPS, use an https:// URL",
            chain(e)
        );
    }
    format!("request to the Weir server at {url} failed: {}", chain(e))
}

fn explain_tls(url: &str, e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    let host = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| url.to_string());
    match e {
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => format!(
            "TLS to {url} failed: the server's certificate is not signed by a CA this client \
             trusts; pass that CA's certificate with --ca-file (or WEIR_CA_FILE)"
        ),
        rustls::Error::InvalidCertificate(
            C::NotValidForName | C::NotValidForNameContext { .. },
        ) => {
            format!(
                "TLS to {url} failed: the server's certificate is not valid for {host:?}; connect \
                 with a name the certificate lists, or issue it with {host:?} as a \
                 subjectAltName"
            )
        }
        rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            format!("TLS to {url} failed: the server's certificate has expired; renew it")
        }
        rustls::Error::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => {
            format!(
                "TLS to {url} failed: the server's certificate is not valid yet; check the clocks of \
             both machines"
            )
        }
        // The verifier reports this one as an opaque "other" error carrying its own name.
        rustls::Error::InvalidCertificate(other)
            if format!("{other:?}").contains("CaUsedAsEndEntity") =>
        {
            format!(
                "TLS to {url} failed: the server presents a CA certificate as its own (as \
                 `openssl req -x509` makes by default); issue a server certificate signed by \
                 that CA (basicConstraints CA:FALSE, subjectAltName {host:?}) and pass the CA \
                 with --ca-file"
            )
        }
        rustls::Error::InvalidMessage(_) => format!(
            "TLS to {url} failed: the server did not answer in TLS; if it serves plain HTTP, \
             use an http:// URL"
        ),
        other => format!("TLS to {url} failed: {other}"),
    }
}

/// The causes of `e`, outermost first, joined.
fn chain(e: &reqwest::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cause = c.source();
    }
    parts.join(": ")
}
