//! `${NAME}` in the string values of `weir.toml`, filled from variables the caller passes
//! (`weir deploy --var IMAGE=…`), so CI can deploy the image it just built without editing
//! the file.
//!
//! Rules: a reference is `${NAME}` with `NAME` made of ASCII letters, digits and `_`, not
//! starting with a digit; `$${` is a literal `${`; any other `$` is kept as written (so
//! `$WEIR_PARAMETERS` in a shell command stays a shell variable). Only string values are
//! interpolated, never keys or comments. A reference to a variable that was not passed, or a
//! malformed one, is an error at its file, line and column; nothing is deployed.

use std::borrow::Cow;
use std::collections::BTreeMap;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Variables for `${NAME}` references, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vars(BTreeMap<String, String>);

impl Vars {
    /// No variables: every `${NAME}` in the file is an error.
    pub fn new() -> Vars {
        Vars::default()
    }

    /// Sets `name` (checked like a reference's name) to `value`.
    pub fn insert(&mut self, name: &str, value: &str) -> Result<(), String> {
        if !valid_name(name) {
            return Err(format!(
                "invalid variable name {name:?}: use ASCII letters, digits and \"_\", not \
                 starting with a digit"
            ));
        }
        self.0.insert(name.to_string(), value.to_string());
        Ok(())
    }

    /// Adds one `--var` argument: `NAME=VALUE`, or `NAME` alone to take the value of the
    /// environment variable `NAME` (looked up with `env`).
    pub fn add_arg(
        &mut self,
        arg: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(), String> {
        match arg.split_once('=') {
            Some((name, value)) => self.insert(name, value),
            None => match env(arg) {
                Some(value) => self.insert(arg, &value),
                // An invalid name is reported as such, before its absence.
                None if !valid_name(arg) => self.insert(arg, ""),
                None => Err(format!(
                    "--var {arg}: the environment has no variable {arg}; set it, or pass \
                     --var {arg}=VALUE"
                )),
            },
        }
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

fn valid_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A problem with one reference: its byte offset in the decoded string, and the message.
type Problem = (usize, String);

/// `value` with its references replaced; `None` when it has none (nothing to replace).
fn expand(value: &str, vars: &Vars) -> Result<Option<String>, Vec<Problem>> {
    if !value.contains('$') {
        return Ok(None);
    }
    let mut out = String::with_capacity(value.len());
    let mut problems = Vec::new();
    let mut rest = value;
    let mut at = 0;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let consumed = if tail.starts_with("$${") {
            out.push_str("${");
            3
        } else if let Some(body) = tail.strip_prefix("${") {
            match body.find('}') {
                Some(end) if valid_name(&body[..end]) => {
                    let name = &body[..end];
                    match vars.get(name) {
                        Some(v) => out.push_str(v),
                        None => problems.push((
                            at + i,
                            format!(
                                "variable {name} is not set: pass `--var {name}=VALUE` to weir \
                                 deploy (or `--var {name}` to take it from the environment)"
                            ),
                        )),
                    }
                    end + 3
                }
                _ => {
                    problems.push((
                        at + i,
                        "invalid variable reference: write ${NAME} (letters, digits and \"_\"), \
                         or $${ for a literal ${"
                            .to_string(),
                    ));
                    2
                }
            }
        } else {
            out.push('$');
            1
        };
        at += i + consumed;
        rest = &rest[i + consumed..];
    }
    out.push_str(rest);
    if problems.is_empty() {
        Ok(Some(out))
    } else {
        Err(problems)
    }
}

/// Where byte `offset` of a string value's decoded text is in the file: exact when the value
/// is written without escapes (the usual case), else the start of the value.
fn source_offset(text: &str, span: std::ops::Range<usize>, value: &str, offset: usize) -> usize {
    let raw = text.get(span.clone()).unwrap_or_default();
    let quote = if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
        3
    } else {
        1
    };
    let body = span.start + quote;
    match text.get(body..body + value.len()) {
        Some(written) if written == value => body + offset,
        _ => span.start,
    }
}

/// Replaces the references in every string value under `table`, reporting each problem with
/// its byte offset in `text` through `report`.
pub(crate) fn apply(
    table: &mut DeTable<'_>,
    text: &str,
    vars: &Vars,
    report: &mut dyn FnMut(usize, String),
) {
    for (_, item) in table.iter_mut() {
        value(item, text, vars, report);
    }
}

fn value(
    item: &mut Spanned<DeValue<'_>>,
    text: &str,
    vars: &Vars,
    report: &mut dyn FnMut(usize, String),
) {
    let span = item.span();
    match item.get_mut() {
        DeValue::String(s) => match expand(s, vars) {
            Ok(None) => {}
            Ok(Some(new)) => *s = Cow::Owned(new),
            Err(problems) => {
                for (offset, message) in problems {
                    report(source_offset(text, span.clone(), s, offset), message);
                }
            }
        },
        DeValue::Array(items) => {
            for el in items.iter_mut() {
                value(el, text, vars, report);
            }
        }
        DeValue::Table(t) => apply(t, text, vars, report),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        let mut v = Vars::new();
        for (k, val) in pairs {
            v.insert(k, val).expect("valid name");
        }
        v
    }

    #[test]
    fn expands_escapes_and_keeps_other_dollars() {
        let v = vars(&[("IMAGE", "repo/flows:abc123"), ("TAG", "1")]);
        assert_eq!(expand("plain", &v), Ok(None));
        assert_eq!(expand("${IMAGE}", &v), Ok(Some("repo/flows:abc123".into())));
        assert_eq!(expand("a-${TAG}-b-${TAG}", &v), Ok(Some("a-1-b-1".into())));
        assert_eq!(
            expand("echo $HOME $${HOME} $", &v),
            Ok(Some("echo $HOME ${HOME} $".into()))
        );
    }

    #[test]
    fn unset_and_malformed_references_are_reported_where_they_are() {
        let v = vars(&[]);
        let Err(p) = expand("x ${IMAGE} ${bad-name} ${", &v) else {
            panic!("expected problems");
        };
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].0, 2);
        assert!(p[0].1.contains("variable IMAGE is not set"), "{}", p[0].1);
        assert_eq!(p[1].0, 11);
        assert!(p[1].1.contains("invalid variable reference"), "{}", p[1].1);
        assert_eq!(p[2].0, 23);
    }

    #[test]
    fn var_arguments() {
        let env = |k: &str| (k == "FROM_ENV").then(|| "e".to_string());
        let mut v = Vars::new();
        v.add_arg("IMAGE=repo:tag=x", env).expect("name=value");
        assert_eq!(v.get("IMAGE"), Some("repo:tag=x"));
        v.add_arg("FROM_ENV", env).expect("from env");
        assert_eq!(v.get("FROM_ENV"), Some("e"));
        let e = v.add_arg("MISSING", env).expect_err("unset");
        assert!(e.contains("the environment has no variable MISSING"), "{e}");
        let e = v.add_arg("1BAD=x", env).expect_err("bad name");
        assert!(e.contains("invalid variable name \"1BAD\""), "{e}");
        let e = v.add_arg("bad-name", env).expect_err("bad name");
        assert!(e.contains("invalid variable name"), "{e}");
    }
}
