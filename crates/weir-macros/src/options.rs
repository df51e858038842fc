//! Parsing of the `#[task(...)]` and `#[flow(...)]` option lists.

use proc_macro2::TokenStream;
use syn::{Expr, ExprArray, Lit, LitStr, Path, meta::ParseNestedMeta, parse::Parser};

/// Options of `#[task(...)]`, validated at compile time.
#[derive(Default)]
pub struct TaskOptions {
    pub name: Option<String>,
    pub retries: u32,
    pub retry_delay_ns: u64,
    pub backoff: f64,
    pub max_delay_ns: Option<u64>,
    pub jitter: f64,
    pub retry_if: Option<Path>,
    pub timeout_ns: Option<u64>,
    pub cache: bool,
    pub cache_key: Option<Path>,
    pub cache_expiration_ns: Option<u64>,
    pub persist_result: bool,
    pub fingerprint: bool,
    pub tags: Vec<String>,
}

/// Options of `#[flow(...)]`.
#[derive(Default)]
pub struct FlowOptions {
    pub name: Option<String>,
}

fn duration_ns(lit: &LitStr) -> syn::Result<u64> {
    let d = weir_core::retry::parse_duration(&lit.value())
        .map_err(|e| syn::Error::new(lit.span(), e))?;
    u64::try_from(d.as_nanos()).map_err(|_| syn::Error::new(lit.span(), "duration too large"))
}

fn number(meta: &ParseNestedMeta) -> syn::Result<f64> {
    let lit: Lit = meta.value()?.parse()?;
    match &lit {
        Lit::Float(f) => f.base10_parse(),
        Lit::Int(i) => i.base10_parse::<u32>().map(f64::from),
        _ => Err(syn::Error::new_spanned(&lit, "expected a number")),
    }
}

fn string(meta: &ParseNestedMeta) -> syn::Result<LitStr> {
    meta.value()?.parse()
}

fn boolean(meta: &ParseNestedMeta) -> syn::Result<bool> {
    if meta.input.is_empty() || meta.input.peek(syn::Token![,]) {
        return Ok(true);
    }
    let lit: syn::LitBool = meta.value()?.parse()?;
    Ok(lit.value)
}

fn valid_name(lit: &LitStr) -> syn::Result<String> {
    let v = lit.value();
    if v.is_empty() || v.contains('/') || v.chars().any(char::is_whitespace) {
        return Err(syn::Error::new(
            lit.span(),
            "name must be non-empty, without '/' or spaces",
        ));
    }
    Ok(v)
}

/// Parses `#[task(...)]` arguments.
pub fn parse_task(args: TokenStream) -> syn::Result<TaskOptions> {
    let mut o = TaskOptions {
        backoff: 1.0,
        fingerprint: true,
        ..Default::default()
    };
    let parser = syn::meta::parser(|meta| {
        let key = meta
            .path
            .get_ident()
            .map(|i| i.to_string())
            .unwrap_or_default();
        match key.as_str() {
            "name" => o.name = Some(valid_name(&string(&meta)?)?),
            "retries" => {
                let lit: syn::LitInt = meta.value()?.parse()?;
                o.retries = lit.base10_parse()?;
            }
            "retry_delay" => o.retry_delay_ns = duration_ns(&string(&meta)?)?,
            "max_delay" => o.max_delay_ns = Some(duration_ns(&string(&meta)?)?),
            "backoff" => {
                o.backoff = number(&meta)?;
                if !(o.backoff >= 1.0 && o.backoff.is_finite()) {
                    return Err(meta.error("backoff must be a number >= 1.0"));
                }
            }
            "jitter" => {
                o.jitter = number(&meta)?;
                if !(0.0..=1.0).contains(&o.jitter) {
                    return Err(meta.error("jitter must be between 0.0 and 1.0"));
                }
            }
            "retry_if" => o.retry_if = Some(meta.value()?.parse()?),
            "timeout" => o.timeout_ns = Some(duration_ns(&string(&meta)?)?),
            "cache" => o.cache = boolean(&meta)?,
            "cache_key" => {
                o.cache_key = Some(meta.value()?.parse()?);
                o.cache = true;
            }
            "cache_expiration" => o.cache_expiration_ns = Some(duration_ns(&string(&meta)?)?),
            "persist_result" => o.persist_result = boolean(&meta)?,
            "fingerprint" => o.fingerprint = boolean(&meta)?,
            "tags" => {
                let arr: ExprArray = meta.value()?.parse()?;
                for e in arr.elems {
                    match e {
                        Expr::Lit(syn::ExprLit {
                            lit: Lit::Str(s), ..
                        }) => o.tags.push(s.value()),
                        other => {
                            return Err(syn::Error::new_spanned(other, "tags must be strings"));
                        }
                    }
                }
            }
            _ => {
                return Err(meta.error(
                    "unknown task option; expected one of name, retries, retry_delay, backoff, \
                     max_delay, jitter, retry_if, timeout, cache, cache_key, cache_expiration, \
                     persist_result, fingerprint, tags",
                ));
            }
        }
        Ok(())
    });
    parser.parse2(args)?;
    Ok(o)
}

/// Parses `#[flow(...)]` arguments.
pub fn parse_flow(args: TokenStream) -> syn::Result<FlowOptions> {
    let mut o = FlowOptions::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            o.name = Some(valid_name(&string(&meta)?)?);
            Ok(())
        } else {
            Err(meta.error("unknown flow option; expected `name`"))
        }
    });
    parser.parse2(args)?;
    Ok(o)
}
