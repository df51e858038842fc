//! Values with rules of their own: result-storage URLs, retry delays, `env` and `secrets`
//! tables, and parameter values as JSON.

use super::{EnvTable, Item, Parser, entries, integer, kind};
use serde_json::Value;
use toml::de::DeValue;

impl Parser<'_> {
    /// A result-storage URL, checked by weir-core's rule and kept in its canonical form.
    pub(super) fn storage_url(&mut self, key: &str, item: &Item<'_>, ctx: &str) -> Option<String> {
        let text = self.string(key, item, ctx)?;
        match weir_core::storage::StorageUrl::parse(&text) {
            Ok(url) => Some(url.to_string()),
            Err(e) => {
                self.invalid(key, item.span().start, ctx, &e.to_string());
                None
            }
        }
    }

    pub(super) fn retry_delay(&mut self, item: &Item<'_>, ctx: &str) -> Option<u64> {
        const KEY: &str = "retry_delay";
        let at = item.span().start;
        let secs = match item.get_ref() {
            DeValue::String(s) => match weir_core::retry::parse_duration(s) {
                Ok(d) if d.subsec_nanos() == 0 => d.as_secs(),
                Ok(_) => {
                    self.invalid(KEY, at, ctx, "must be a whole number of seconds");
                    return None;
                }
                Err(e) => {
                    self.invalid(KEY, at, ctx, &e);
                    return None;
                }
            },
            v => match integer(v).map(u64::try_from) {
                Some(Ok(n)) => n,
                Some(Err(_)) => {
                    self.invalid(KEY, at, ctx, "must not be negative");
                    return None;
                }
                None => {
                    self.wrong_type(KEY, item, ctx, "a duration such as \"30s\" or \"5m\"");
                    return None;
                }
            },
        };
        Some(secs)
    }

    /// `env` or `secrets`: variable names to strings (secret references for `secrets`).
    pub(super) fn env_table(
        &mut self,
        key: &str,
        item: &Item<'_>,
        ctx: &str,
        secrets: bool,
    ) -> Option<EnvTable> {
        let table = self.table(key, item, ctx)?;
        let mut out = EnvTable::new();
        let mut ok = true;
        for (name, name_at, v) in entries(table) {
            if let Err(problem) = weir_core::deployment::check_env_name(name) {
                self.invalid(key, name_at, ctx, &problem);
                ok = false;
                continue;
            }
            let value = match v.get_ref() {
                DeValue::String(s) => s.to_string(),
                DeValue::Integer(i) if !secrets => i.to_string(),
                DeValue::Float(f) if !secrets => f.to_string(),
                DeValue::Boolean(b) if !secrets => b.to_string(),
                other => {
                    let expected = if secrets {
                        "a secret reference string"
                    } else {
                        "a string"
                    };
                    let problem = format!("{name}: expected {expected}, got {}", kind(other));
                    self.invalid(key, v.span().start, ctx, &problem);
                    ok = false;
                    continue;
                }
            };
            if secrets {
                let problem = weir_core::secret::SecretRef::parse(&value)
                    .err()
                    .map(|e| format!("{name}: {e}"));
                if let Some(problem) = problem {
                    self.invalid(key, v.span().start, ctx, &problem);
                    ok = false;
                    continue;
                }
            }
            out.insert(name.to_string(), (value, name_at));
        }
        ok.then_some(out)
    }

    /// Any TOML value as JSON, for parameters.
    pub(super) fn json(&mut self, path: &str, item: &Item<'_>, ctx: &str) -> Option<Value> {
        Some(match item.get_ref() {
            DeValue::String(s) => Value::String(s.to_string()),
            DeValue::Integer(_) => match integer(item.get_ref()) {
                Some(i) => Value::from(i),
                None => {
                    self.invalid(path, item.span().start, ctx, "integer out of range");
                    return None;
                }
            },
            DeValue::Float(f) => match f
                .as_str()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
            {
                Some(n) => Value::Number(n),
                None => {
                    let problem = format!("{f} cannot be written in JSON");
                    self.invalid(path, item.span().start, ctx, &problem);
                    return None;
                }
            },
            DeValue::Boolean(b) => Value::Bool(*b),
            DeValue::Datetime(d) => Value::String(d.to_string()),
            DeValue::Array(items) => {
                let mut out = Vec::new();
                for (i, el) in items.iter().enumerate() {
                    out.push(self.json(&format!("{path}[{i}]"), el, ctx)?);
                }
                Value::Array(out)
            }
            DeValue::Table(t) => {
                let mut out = serde_json::Map::new();
                for (k, _, v) in entries(t) {
                    out.insert(k.to_string(), self.json(&format!("{path}.{k}"), v, ctx)?);
                }
                Value::Object(out)
            }
        })
    }
}
