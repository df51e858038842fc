//! What `weir-bench ui` measures: it logs in like a browser and times every page's requests
//! over one keep-alive connection, then reports nearest-rank percentiles.

use crate::procs::round;
use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};
use std::time::Instant;

/// The value of cookie `name` in a response's `Set-Cookie` headers.
fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            let first = c.split(';').next()?;
            let (n, v) = first.split_once('=')?;
            (n.trim() == name && !v.is_empty()).then(|| v.to_string())
        })
}

/// Logs in at `url` with `key` like the browser does; returns the session cookie's value.
async fn log_in(http: &reqwest::Client, url: &str, key: &str) -> Result<String> {
    let form = http.get(format!("{url}/login")).send().await?;
    let csrf = set_cookie(&form, "weir_login_csrf").context("no login CSRF cookie")?;
    let body: String = form_urlencoded_pairs(&[("key", key), ("csrf", &csrf), ("next", "/")]);
    let resp = http
        .post(format!("{url}/login"))
        .header("cookie", format!("weir_login_csrf={csrf}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await?;
    if resp.status().as_u16() != 303 {
        bail!("login answered {}", resp.status());
    }
    set_cookie(&resp, "weir_session").context("login set no session cookie")
}

/// `pairs` as an `application/x-www-form-urlencoded` body: every byte but RFC 3986's
/// unreserved characters percent-encoded.
fn form_urlencoded_pairs(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The nearest-rank percentile `p` (0–100) of sorted `xs`.
fn percentile(xs: &[f64], p: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * xs.len() as f64).ceil() as usize;
    xs[rank.clamp(1, xs.len()) - 1]
}

/// Requests `path` `warm + n` times with the session; returns the `n` measured wall times
/// in milliseconds, sorted.
async fn measure(
    http: &reqwest::Client,
    url: &str,
    session: &str,
    path: &str,
    n: u32,
) -> Result<Vec<f64>> {
    let mut times = Vec::with_capacity(n as usize);
    for k in 0..n + 3 {
        let t = Instant::now();
        let resp = http
            .get(format!("{url}{path}"))
            .header("cookie", format!("weir_session={session}"))
            .send()
            .await?;
        let status = resp.status();
        let body = resp.bytes().await?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        if !status.is_success() || body.is_empty() {
            bail!("{path} answered {status}");
        }
        if k >= 3 {
            times.push(ms);
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(times)
}

/// The measured wall times of every page, in milliseconds.
pub(super) struct PageTimes {
    /// Per page, in the order measured: its name and its sorted times.
    pages: Vec<(&'static str, Vec<f64>)>,
}

impl PageTimes {
    /// Per page `{"p50_ms", "p99_ms"}`, then `page_p50_ms`/`page_p99_ms` over every request
    /// and `slowest_page` (the highest p99; the first of equals).
    pub(super) fn report(&self) -> Map<String, Value> {
        let mut out = Map::new();
        let mut all = Vec::new();
        let mut slowest = ("", 0.0);
        for (name, times) in &self.pages {
            let p50 = percentile(times, 50.0);
            let p99 = percentile(times, 99.0);
            if p99 > slowest.1 {
                slowest = (name, p99);
            }
            out.insert(
                (*name).to_string(),
                json!({"p50_ms": round(p50, 2), "p99_ms": round(p99, 2)}),
            );
            all.extend_from_slice(times);
        }
        all.sort_by(f64::total_cmp);
        out.insert(
            "page_p50_ms".into(),
            json!(round(percentile(&all, 50.0), 2)),
        );
        out.insert(
            "page_p99_ms".into(),
            json!(round(percentile(&all, 99.0), 2)),
        );
        out.insert("slowest_page".into(), json!(slowest.0));
        out
    }
}

/// Logs in at `url` with `key` and requests every page `requests` times (after the warm-up).
pub(super) async fn measure_pages(
    url: &str,
    key: &str,
    pages: &[(&'static str, String)],
    requests: u32,
) -> Result<PageTimes> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let session = log_in(&http, url, key).await?;
    let mut measured = Vec::with_capacity(pages.len());
    for (name, path) in pages {
        measured.push((*name, measure(&http, url, &session, path, requests).await?));
    }
    Ok(PageTimes { pages: measured })
}
