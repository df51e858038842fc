//! Flow parameters checked against the flow's JSON Schema.
//!
//! Flows describe their parameters with the JSON Schema `schemars` derives for a parameter
//! struct (usually `#[serde(deny_unknown_fields)]`): an object with `properties`, `required`
//! and `additionalProperties: false`, nested structs under `$defs` reached through `$ref`.
//! This module checks a [`Parameters`] object against such a schema *before* a run is created,
//! so that a typo or a wrong type is refused with a message naming the parameter instead of
//! failing later inside the flow process.
//!
//! Supported keywords: `type` (a name or an array of names), `enum`, `const`, `minimum`,
//! `maximum`, `exclusiveMinimum`, `exclusiveMaximum`, integer `format`s (`uint32`, `int64`,
//! …), `minLength`, `maxLength`, `properties`, `required`, `additionalProperties`, `items`,
//! `prefixItems`, `minItems`, `maxItems`, `uniqueItems`, `anyOf`, `oneOf`, `allOf`, `$ref`
//! (local references such as `#/$defs/Name`) and `default`. Unknown keywords are ignored, and a
//! schema that is absent or `true` accepts anything.
//!
//! Integers are strict: `5.0` is not an integer here, because serde would refuse it for an
//! integer field.

use crate::api::Parameters;
use serde_json::{Number, Value};
use std::fmt;

/// One problem with one parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError {
    /// Path of the parameter at fault: `rows`, `source.host`, `files[2]`.
    pub param: String,
    /// The whole sentence, e.g. `parameter "n": expected an integer, got "nope"`.
    pub message: String,
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParamError {}

/// Checks `params` against `schema`: unknown parameters, missing required ones, types, ranges
/// and allowed values. Returns every problem found, not just the first.
pub fn validate(schema: &Value, params: &Parameters) -> Result<(), Vec<ParamError>> {
    check_root(schema, params, true)
}

/// Like [`validate`], but does not require the schema's required parameters to be present:
/// checks only the values that are given. For defaults that are completed later, e.g. a
/// deployment's parameters that a manual run may complete.
pub fn validate_present(schema: &Value, params: &Parameters) -> Result<(), Vec<ParamError>> {
    check_root(schema, params, false)
}

/// Returns `params` with every absent top-level parameter that has a `default` in the schema
/// filled with that default.
pub fn with_defaults(schema: &Value, params: &Parameters) -> Parameters {
    let mut out = params.clone();
    let root = resolve(schema, schema);
    if let Some(props) = root.get("properties").and_then(Value::as_object) {
        for (name, prop) in props {
            if out.contains_key(name) {
                continue;
            }
            let default = prop
                .get("default")
                .or_else(|| resolve(schema, prop).get("default"));
            if let Some(d) = default {
                out.insert(name.clone(), d.clone());
            }
        }
    }
    out
}

/// Reads a parameter value given on a command line (`--param rows=100`): JSON if it parses
/// as JSON (`100`, `true`, `[1,2]`, `"quoted"`), otherwise the text itself as a string.
pub fn parse_cli_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

/// Converts string values (as an HTML form sends them) to the type the schema asks for:
/// `"5"` → `5` for an integer or number parameter, `"true"`/`"on"` → `true` and
/// `"false"`/`"off"` → `false` for a boolean, JSON text for an array or object, `"null"` →
/// `null` where null is allowed. An empty string for a parameter that cannot be a string
/// becomes `null` where null is allowed and is dropped otherwise (so the default applies, or
/// [`validate`] reports it missing). Values that do not convert are left as they are, for
/// [`validate`] to report. Parameters whose schema allows strings are never touched.
pub fn coerce(schema: &Value, params: &Parameters) -> Parameters {
    let root = resolve(schema, schema);
    let props = root.get("properties").and_then(Value::as_object);
    let mut out = Parameters::new();
    for (name, value) in params {
        let prop = props.and_then(|p| p.get(name));
        match (value, prop) {
            (Value::String(text), Some(prop)) => {
                let mut types = Vec::new();
                allowed_types(schema, prop, &mut types, 0);
                if types.is_empty() || types.contains(&"string") {
                    out.insert(name.clone(), value.clone());
                } else if let Some(v) = convert(text, &types) {
                    out.insert(name.clone(), v);
                } else if !text.trim().is_empty() {
                    out.insert(name.clone(), value.clone());
                }
            }
            _ => {
                out.insert(name.clone(), value.clone());
            }
        }
    }
    out
}

/// The string `text` converted to the first of `types` it fits, if any.
fn convert(text: &str, types: &[&str]) -> Option<Value> {
    let t = text.trim();
    if t.is_empty() || t == "null" {
        return types.contains(&"null").then_some(Value::Null);
    }
    if types.contains(&"integer") {
        if let Ok(i) = t.parse::<i64>() {
            return Some(Value::from(i));
        }
        if let Ok(u) = t.parse::<u64>() {
            return Some(Value::from(u));
        }
    }
    if types.contains(&"number") {
        if let Ok(i) = t.parse::<i64>() {
            return Some(Value::from(i));
        }
        if let Some(n) = t.parse::<f64>().ok().and_then(Number::from_f64) {
            return Some(Value::Number(n));
        }
    }
    if types.contains(&"boolean") {
        match t.to_ascii_lowercase().as_str() {
            "true" | "on" => return Some(Value::Bool(true)),
            "false" | "off" => return Some(Value::Bool(false)),
            _ => {}
        }
    }
    if types.contains(&"array") || types.contains(&"object") {
        match serde_json::from_str::<Value>(t) {
            Ok(v @ Value::Array(_)) if types.contains(&"array") => return Some(v),
            Ok(v @ Value::Object(_)) if types.contains(&"object") => return Some(v),
            _ => {}
        }
    }
    None
}

/// Collects the JSON type names a schema allows; leaves `out` empty when it allows anything.
fn allowed_types(root: &Value, schema: &Value, out: &mut Vec<&'static str>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    let s = resolve(root, schema);
    let before = out.len();
    match s.get("type") {
        Some(Value::String(t)) => push_type(out, t),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).for_each(|t| {
            push_type(out, t);
        }),
        _ => {}
    }
    let values: Vec<&Value> = match (s.get("enum"), s.get("const")) {
        (Some(Value::Array(vs)), _) => vs.iter().collect(),
        (_, Some(c)) => vec![c],
        _ => Vec::new(),
    };
    for v in values {
        push_type(out, type_name(v));
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(branches) = s.get(key).and_then(Value::as_array) {
            for b in branches {
                let mut sub = Vec::new();
                allowed_types(root, b, &mut sub, depth + 1);
                if sub.is_empty() {
                    // A branch that accepts anything: so does the whole.
                    out.truncate(before);
                    return;
                }
                for t in sub {
                    push_type(out, t);
                }
            }
        }
    }
}

fn push_type(out: &mut Vec<&'static str>, t: &str) {
    let t = match t {
        "integer" => "integer",
        "number" => "number",
        "string" => "string",
        "boolean" => "boolean",
        "array" => "array",
        "object" => "object",
        "null" => "null",
        _ => return,
    };
    if !out.contains(&t) {
        out.push(t);
    }
}

/// How deep `$ref`s and nested schemas are followed before giving up (guards against cycles).
const MAX_DEPTH: usize = 64;

/// Follows `$ref` chains (local references only) to the schema they name.
fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    let mut s = schema;
    for _ in 0..MAX_DEPTH {
        match s
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| lookup(root, r))
        {
            Some(target) => s = target,
            None => break,
        }
    }
    s
}

fn lookup<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    if pointer.is_empty() {
        Some(root)
    } else {
        root.pointer(pointer)
    }
}

fn check_root(schema: &Value, params: &Parameters, require: bool) -> Result<(), Vec<ParamError>> {
    let mut c = Checker {
        root: schema,
        require,
        errors: Vec::new(),
    };
    let s = resolve(schema, schema);
    let takes_object = match s.get("type") {
        None => true,
        Some(Value::String(t)) => t == "object",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "object"),
        Some(_) => true,
    };
    if takes_object {
        c.check_object(s, params, "", 0);
    } else {
        // `()` or another non-object: the flow takes no parameters.
        for name in params.keys() {
            c.push(
                name.clone(),
                format!("unknown parameter {name:?} (this flow takes no parameters)"),
            );
        }
    }
    if c.errors.is_empty() {
        Ok(())
    } else {
        Err(c.errors)
    }
}

struct Checker<'a> {
    root: &'a Value,
    require: bool,
    errors: Vec<ParamError>,
}

impl<'a> Checker<'a> {
    fn push(&mut self, param: String, message: String) {
        self.errors.push(ParamError { param, message });
    }

    fn mismatch(&mut self, path: &str, expected: &str, value: &Value) {
        let message = format!(
            "parameter {path:?}: expected {expected}, got {}",
            show(value)
        );
        self.push(path.to_string(), message);
    }

    fn check(&mut self, schema: &'a Value, value: &Value, path: &str, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        match schema {
            Value::Bool(false) => {
                return self.push(
                    path.to_string(),
                    format!("parameter {path:?}: no value is allowed here"),
                );
            }
            Value::Object(_) => {}
            _ => return,
        }
        if let Some(target) = schema
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| lookup(self.root, r))
        {
            let before = self.errors.len();
            self.check(target, value, path, depth + 1);
            if self.errors.len() > before {
                return;
            }
        }
        if let Some(expected) = schema.get("type")
            && !type_allowed(expected, value)
        {
            return self.mismatch(path, &describe_type(expected), value);
        }
        if let Some(Value::Array(allowed)) = schema.get("enum")
            && !allowed.contains(value)
        {
            let list: Vec<String> = allowed.iter().map(show).collect();
            return self.mismatch(path, &format!("one of {}", list.join(", ")), value);
        }
        if let Some(c) = schema.get("const")
            && c != value
        {
            return self.mismatch(path, &show(c), value);
        }
        for (key, exclusive) in [("allOf", false), ("anyOf", true), ("oneOf", true)] {
            if let Some(branches) = schema.get(key).and_then(Value::as_array) {
                if exclusive {
                    self.check_any(branches, value, path, depth);
                } else {
                    for b in branches {
                        self.check(b, value, path, depth + 1);
                    }
                }
            }
        }
        match value {
            Value::Number(n) => self.check_number(schema, n, value, path),
            Value::String(s) => self.check_string(schema, s, path),
            Value::Array(items) => self.check_array(schema, items, path, depth),
            Value::Object(map) if has_object_keywords(schema) => {
                self.check_object(schema, map, path, depth)
            }
            _ => {}
        }
    }

    /// `anyOf`/`oneOf`: fine when some branch accepts the value.
    fn check_any(&mut self, branches: &'a [Value], value: &Value, path: &str, depth: usize) {
        let mut candidates = Vec::new();
        for b in branches {
            let mut sub = Checker {
                root: self.root,
                require: self.require,
                errors: Vec::new(),
            };
            sub.check(b, value, path, depth + 1);
            if sub.errors.is_empty() {
                return;
            }
            if shape_matches(self.root, b, value) {
                candidates.push(sub.errors);
            }
        }
        if candidates.len() == 1 {
            // The one branch of the right shape (e.g. the `T` of an `Option<T>`): its errors
            // say best what is wrong.
            self.errors.extend(candidates.into_iter().flatten());
        } else {
            let shapes: Vec<String> = branches
                .iter()
                .map(|b| describe_schema(self.root, b))
                .collect();
            self.mismatch(path, &shapes.join(" or "), value);
        }
    }

    fn check_number(&mut self, schema: &Value, n: &Number, value: &Value, path: &str) {
        let Some(x) = n.as_f64() else { return };
        let format = schema.get("format").and_then(Value::as_str).unwrap_or("");
        if let Some((lo, hi)) = int_format_range(format) {
            let exact = n.as_i64().map(i128::from).or(n.as_u64().map(i128::from));
            let inside = match exact {
                Some(i) => (lo..=hi).contains(&i),
                None => (lo as f64..=hi as f64).contains(&x),
            };
            if !inside {
                let message = format!(
                    "parameter {path:?}: {} is out of range for {format} (from {lo} to {hi})",
                    show(value),
                );
                return self.push(path.to_string(), message);
            }
        }
        let bound = |key: &str| schema.get(key).and_then(Value::as_f64);
        let problem = [
            ("minimum", "must be at least"),
            ("maximum", "must be at most"),
            ("exclusiveMinimum", "must be greater than"),
            ("exclusiveMaximum", "must be less than"),
        ]
        .into_iter()
        .find_map(|(key, words)| {
            let b = bound(key)?;
            let broken = match key {
                "minimum" => x < b,
                "maximum" => x > b,
                "exclusiveMinimum" => x <= b,
                _ => x >= b,
            };
            broken.then(|| format!("{words} {}", fmt_num(b)))
        });
        if let Some(p) = problem {
            self.push(
                path.to_string(),
                format!("parameter {path:?}: {p}, got {}", show(value)),
            );
        }
    }

    fn check_string(&mut self, schema: &Value, s: &str, path: &str) {
        let len = s.chars().count() as u64;
        let get = |key: &str| schema.get(key).and_then(Value::as_u64);
        if let Some(min) = get("minLength").filter(|m| len < *m) {
            let message = format!("parameter {path:?}: must be at least {min} characters long");
            self.push(path.to_string(), message);
        } else if let Some(max) = get("maxLength").filter(|m| len > *m) {
            let message = format!("parameter {path:?}: must be at most {max} characters long");
            self.push(path.to_string(), message);
        }
    }

    fn check_array(&mut self, schema: &'a Value, items: &[Value], path: &str, depth: usize) {
        let len = items.len() as u64;
        let get = |key: &str| schema.get(key).and_then(Value::as_u64);
        if let Some(min) = get("minItems").filter(|m| len < *m) {
            let message = format!("parameter {path:?}: needs at least {min} items, got {len}");
            self.push(path.to_string(), message);
        }
        if let Some(max) = get("maxItems").filter(|m| len > *m) {
            let message = format!("parameter {path:?}: allows at most {max} items, got {len}");
            self.push(path.to_string(), message);
        }
        if schema.get("uniqueItems") == Some(&Value::Bool(true)) {
            for (i, item) in items.iter().enumerate() {
                if items[..i].contains(item) {
                    let message = format!(
                        "parameter {path:?}: items must be unique; {} repeats",
                        show(item)
                    );
                    self.push(path.to_string(), message);
                    break;
                }
            }
        }
        let prefix = schema
            .get("prefixItems")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            if let Some(s) = prefix.get(i) {
                self.check(s, item, &item_path, depth + 1);
            } else if let Some(s) = schema.get("items") {
                if s == &Value::Bool(false) {
                    let message = format!(
                        "parameter {path:?}: allows at most {} items, got {len}",
                        prefix.len()
                    );
                    self.push(path.to_string(), message);
                    break;
                }
                self.check(s, item, &item_path, depth + 1);
            }
        }
    }

    fn check_object(&mut self, schema: &'a Value, map: &Parameters, path: &str, depth: usize) {
        let props = schema.get("properties").and_then(Value::as_object);
        let join = |name: &str| {
            if path.is_empty() {
                name.to_string()
            } else {
                format!("{path}.{name}")
            }
        };
        let extra = schema.get("additionalProperties");
        for (name, value) in map {
            let child = join(name);
            if let Some(s) = props.and_then(|p| p.get(name)) {
                self.check(s, value, &child, depth + 1);
                continue;
            }
            match extra {
                Some(Value::Bool(false)) => {
                    let names: Vec<&str> = props
                        .map(|p| p.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    let known = if names.is_empty() {
                        "none are allowed".to_string()
                    } else {
                        format!("known: {}", names.join(", "))
                    };
                    let message = if path.is_empty() {
                        if names.is_empty() {
                            format!("unknown parameter {name:?} (this flow takes no parameters)")
                        } else {
                            format!("unknown parameter {name:?} ({known})")
                        }
                    } else {
                        format!("parameter {path:?}: unknown field {name:?} ({known})")
                    };
                    self.push(child, message);
                }
                Some(s @ Value::Object(_)) => self.check(s, value, &child, depth + 1),
                _ => {}
            }
        }
        if !self.require {
            return;
        }
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for name in required.iter().filter_map(Value::as_str) {
                if map.contains_key(name) {
                    continue;
                }
                let message = if path.is_empty() {
                    format!("missing required parameter {name:?}")
                } else {
                    format!("parameter {path:?}: missing required field {name:?}")
                };
                self.push(join(name), message);
            }
        }
    }
}

fn has_object_keywords(schema: &Value) -> bool {
    ["properties", "required", "additionalProperties"]
        .iter()
        .any(|k| schema.get(k).is_some())
}

/// Whether `value` has the JSON type `schema` (after `$ref`s) asks for, ignoring everything
/// else; used to pick the branch of an `anyOf` whose errors to report.
fn shape_matches(root: &Value, schema: &Value, value: &Value) -> bool {
    let mut types = Vec::new();
    allowed_types(root, schema, &mut types, 0);
    types.is_empty()
        || types.iter().any(|t| match *t {
            "number" => value.is_number(),
            "integer" => is_integer(value),
            other => other == type_name(value),
        })
}

fn type_allowed(expected: &Value, value: &Value) -> bool {
    let one = |t: &str| match t {
        "integer" => is_integer(value),
        "number" => value.is_number(),
        other => other == type_name(value),
    };
    match expected {
        Value::String(t) => one(t),
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).any(one),
        _ => true,
    }
}

fn is_integer(value: &Value) -> bool {
    value.as_i64().is_some() || value.as_u64().is_some()
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn article(t: &str) -> String {
    match t {
        "integer" => "an integer".into(),
        "number" => "a number".into(),
        "string" => "a string".into(),
        "boolean" => "a boolean".into(),
        "array" => "an array".into(),
        "object" => "an object".into(),
        "null" => "null".into(),
        other => format!("{other:?}"),
    }
}

fn describe_type(expected: &Value) -> String {
    match expected {
        Value::String(t) => article(t),
        Value::Array(ts) => {
            let names: Vec<String> = ts.iter().filter_map(Value::as_str).map(article).collect();
            names.join(" or ")
        }
        other => other.to_string(),
    }
}

/// A short description of what a schema accepts, for "expected … or …" messages.
fn describe_schema(root: &Value, schema: &Value) -> String {
    let s = resolve(root, schema);
    if let Some(c) = s.get("const") {
        return show(c);
    }
    if let Some(Value::Array(vs)) = s.get("enum") {
        let list: Vec<String> = vs.iter().map(show).collect();
        return format!("one of {}", list.join(", "));
    }
    if let Some(t) = s.get("type") {
        return describe_type(t);
    }
    "a value of another shape".to_string()
}

/// Range of an integer `format` as schemars writes it.
fn int_format_range(format: &str) -> Option<(i128, i128)> {
    Some(match format {
        "uint8" => (0, u8::MAX.into()),
        "uint16" => (0, u16::MAX.into()),
        "uint32" => (0, u32::MAX.into()),
        "uint64" | "uint" => (0, u64::MAX.into()),
        "int8" => (i8::MIN.into(), i8::MAX.into()),
        "int16" => (i16::MIN.into(), i16::MAX.into()),
        "int32" => (i32::MIN.into(), i32::MAX.into()),
        "int64" | "int" => (i64::MIN.into(), i64::MAX.into()),
        _ => return None,
    })
}

fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        x.to_string()
    }
}

/// A value as JSON, shortened for messages.
fn show(value: &Value) -> String {
    let s = value.to_string();
    if s.chars().count() > 60 {
        let head: String = s.chars().take(57).collect();
        format!("{head}…")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What schemars 1.x derives for:
    ///
    /// ```ignore
    /// #[derive(JsonSchema, Deserialize)]
    /// #[serde(deny_unknown_fields)]
    /// struct Params {
    ///     n: u32,
    ///     #[serde(default = "five")] seconds: f64,
    ///     url: String,
    ///     limit: Option<u8>,
    ///     mode: Mode,              // enum Mode { Fast, Slow } (unit variants)
    ///     source: Option<Source>,  // struct Source { host: String, port: u16 }
    ///     files: Vec<String>,
    ///     #[serde(default)] dry_run: bool,
    ///     pair: (i32, String),
    /// }
    /// ```
    fn schema() -> Value {
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "Params",
            "type": "object",
            "properties": {
                "n": {"type": "integer", "format": "uint32", "minimum": 0},
                "seconds": {"type": "number", "format": "double", "default": 5.0},
                "url": {"type": "string", "minLength": 1},
                "limit": {"type": ["integer", "null"], "format": "uint8", "minimum": 0, "maximum": 255},
                "mode": {"$ref": "#/$defs/Mode"},
                "source": {"anyOf": [{"$ref": "#/$defs/Source"}, {"type": "null"}]},
                "files": {"type": "array", "items": {"type": "string"}},
                "dry_run": {"type": "boolean", "default": false},
                "pair": {
                    "type": "array",
                    "prefixItems": [{"type": "integer", "format": "int32"}, {"type": "string"}],
                    "minItems": 2, "maxItems": 2
                }
            },
            "required": ["n", "url", "mode", "files", "pair"],
            "additionalProperties": false,
            "$defs": {
                "Mode": {"type": "string", "enum": ["fast", "slow"]},
                "Source": {
                    "type": "object",
                    "properties": {
                        "host": {"type": "string"},
                        "port": {"type": "integer", "format": "uint16", "minimum": 0, "maximum": 65535}
                    },
                    "required": ["host", "port"],
                    "additionalProperties": false
                }
            }
        })
    }

    fn params(v: Value) -> Parameters {
        match v {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        }
    }

    fn valid() -> Value {
        json!({
            "n": 3, "url": "https://x", "mode": "fast", "files": ["a"], "pair": [1, "b"],
            "limit": null, "source": {"host": "db", "port": 5432}, "seconds": 1.5,
            "dry_run": true
        })
    }

    fn errors(v: Value) -> Vec<String> {
        match validate(&schema(), &params(v)) {
            Ok(()) => Vec::new(),
            Err(es) => es.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    fn with(changes: Value) -> Value {
        let mut v = valid();
        for (k, x) in params(changes) {
            if x == json!("__remove__") {
                v.as_object_mut().map(|m| m.remove(&k));
            } else {
                v[k] = x;
            }
        }
        v
    }

    #[test]
    fn valid_parameters_pass() {
        assert_eq!(errors(valid()), Vec::<String>::new());
        assert_eq!(
            errors(with(json!({"limit": 7, "source": null}))),
            Vec::<String>::new()
        );
        assert_eq!(
            errors(with(json!({"seconds": 2}))),
            Vec::<String>::new(),
            "int is a number"
        );
    }

    #[test]
    fn wrong_type_names_parameter_and_value() {
        assert_eq!(
            errors(with(json!({"n": "nope"}))),
            vec![r#"parameter "n": expected an integer, got "nope""#]
        );
        assert_eq!(
            errors(with(json!({"n": 5.0}))),
            vec![r#"parameter "n": expected an integer, got 5.0"#]
        );
        assert_eq!(
            errors(with(json!({"dry_run": "yes"}))),
            vec![r#"parameter "dry_run": expected a boolean, got "yes""#]
        );
        assert_eq!(
            errors(with(json!({"limit": "x"}))),
            vec![r#"parameter "limit": expected an integer or null, got "x""#]
        );
    }

    #[test]
    fn unknown_parameter_lists_known_ones() {
        let e = validate(&schema(), &params(with(json!({"m": 1})))).expect_err("unknown");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].param, "m");
        assert_eq!(
            e[0].to_string(),
            "unknown parameter \"m\" (known: dry_run, files, limit, mode, n, pair, seconds, \
             source, url)"
        );
        let small = json!({"type": "object", "properties": {"n": {"type": "integer"},
            "seconds": {"type": "number"}}, "additionalProperties": false});
        let e = validate(&small, &params(json!({"m": 1}))).expect_err("unknown");
        assert_eq!(
            e[0].to_string(),
            r#"unknown parameter "m" (known: n, seconds)"#
        );
    }

    #[test]
    fn missing_required_and_all_errors_reported() {
        let e = errors(with(
            json!({"url": "__remove__", "n": -1, "mode": "medium"}),
        ));
        assert_eq!(
            e,
            vec![
                r#"parameter "mode": expected one of "fast", "slow", got "medium""#,
                r#"parameter "n": -1 is out of range for uint32 (from 0 to 4294967295)"#,
                r#"missing required parameter "url""#,
            ]
        );
    }

    #[test]
    fn validate_present_skips_required() {
        let p = params(json!({"n": 1}));
        assert!(validate(&schema(), &p).is_err());
        assert_eq!(validate_present(&schema(), &p), Ok(()));
        let e = validate_present(&schema(), &params(json!({"n": "x", "zz": 1})))
            .expect_err("type and unknown still checked");
        assert_eq!(e.len(), 2);
    }

    #[test]
    fn ranges_and_formats() {
        assert_eq!(
            errors(with(json!({"limit": 300}))),
            vec![r#"parameter "limit": 300 is out of range for uint8 (from 0 to 255)"#]
        );
        let s = json!({"type": "object", "properties": {
            "p": {"type": "number", "minimum": 0.5, "maximum": 10},
            "q": {"type": "integer", "exclusiveMinimum": 0}}});
        let e = validate(&s, &params(json!({"p": 11, "q": 0}))).expect_err("range");
        let e: Vec<String> = e.iter().map(ToString::to_string).collect();
        assert_eq!(
            e,
            vec![
                r#"parameter "p": must be at most 10, got 11"#,
                r#"parameter "q": must be greater than 0, got 0"#
            ]
        );
        let e = validate(&s, &params(json!({"p": 0.25}))).expect_err("range");
        assert_eq!(
            e[0].message,
            r#"parameter "p": must be at least 0.5, got 0.25"#
        );
    }

    #[test]
    fn wide_integer_formats_are_exact() {
        let s = json!({"type": "object", "properties": {
            "u": {"type": "integer", "format": "uint64", "minimum": 0},
            "i": {"type": "integer", "format": "int64"}}});
        assert_eq!(
            validate(&s, &params(json!({"u": u64::MAX, "i": i64::MIN}))),
            Ok(())
        );
        let e = validate(&s, &params(json!({"u": -1}))).expect_err("negative");
        assert_eq!(
            e[0].message,
            r#"parameter "u": -1 is out of range for uint64 (from 0 to 18446744073709551615)"#
        );
    }

    #[test]
    fn nested_struct_through_ref() {
        let e = errors(with(json!({"source": {"host": 1, "extra": true}})));
        assert_eq!(
            e,
            vec![
                r#"parameter "source": unknown field "extra" (known: host, port)"#,
                r#"parameter "source.host": expected a string, got 1"#,
                r#"parameter "source": missing required field "port""#,
            ]
        );
        let e = validate(
            &schema(),
            &params(with(json!({"source": {"host": "h", "port": 70000}}))),
        )
        .expect_err("port");
        assert_eq!(e[0].param, "source.port");
        assert!(e[0].message.contains("out of range for uint16"), "{}", e[0]);
        assert_eq!(
            errors(with(json!({"source": 3}))),
            vec![r#"parameter "source": expected an object or null, got 3"#]
        );
    }

    #[test]
    fn arrays_items_and_tuples() {
        assert_eq!(
            errors(with(json!({"files": ["a", 2, "c", false]}))),
            vec![
                r#"parameter "files[1]": expected a string, got 2"#,
                r#"parameter "files[3]": expected a string, got false"#,
            ]
        );
        assert_eq!(
            errors(with(json!({"pair": ["x", "y"]}))),
            vec![r#"parameter "pair[0]": expected an integer, got "x""#]
        );
        assert_eq!(
            errors(with(json!({"pair": [1]}))),
            vec![r#"parameter "pair": needs at least 2 items, got 1"#]
        );
        assert_eq!(
            errors(with(json!({"files": "a"}))),
            vec![r#"parameter "files": expected an array, got "a""#]
        );
    }

    #[test]
    fn one_of_unit_variants_with_docs() {
        // schemars writes documented unit variants as `oneOf` of `const`s.
        let s = json!({"type": "object", "properties": {"level": {"$ref": "#/$defs/Level"}},
            "additionalProperties": false, "$defs": {"Level": {"oneOf": [
                {"type": "string", "const": "low", "description": "Low."},
                {"type": "string", "const": "high", "description": "High."}]}}});
        assert_eq!(validate(&s, &params(json!({"level": "high"}))), Ok(()));
        let e = validate(&s, &params(json!({"level": "mid"}))).expect_err("bad");
        assert_eq!(
            e[0].message,
            r#"parameter "level": expected "low" or "high", got "mid""#
        );
    }

    #[test]
    fn permissive_and_empty_schemas() {
        assert_eq!(validate(&json!(true), &params(json!({"a": 1}))), Ok(()));
        assert_eq!(validate(&json!({}), &params(json!({"a": 1}))), Ok(()));
        let unit = json!({"type": "null"});
        assert_eq!(validate(&unit, &Parameters::new()), Ok(()));
        let e = validate(&unit, &params(json!({"a": 1}))).expect_err("none allowed");
        assert_eq!(
            e[0].message,
            r#"unknown parameter "a" (this flow takes no parameters)"#
        );
        let empty = json!({"type": "object", "properties": {}, "additionalProperties": false});
        let e = validate(&empty, &params(json!({"a": 1}))).expect_err("none allowed");
        assert_eq!(
            e[0].message,
            r#"unknown parameter "a" (this flow takes no parameters)"#
        );
    }

    #[test]
    fn ref_cycles_terminate() {
        let s = json!({"type": "object", "properties": {"t": {"$ref": "#/$defs/T"}},
            "$defs": {"T": {"type": "object", "properties": {"child": {"$ref": "#/$defs/T"}}},
                      "Loop": {"$ref": "#/$defs/Loop"}}});
        let deep = json!({"t": {"child": {"child": {"child": {"child": 1}}}}});
        let e = validate(&s, &params(deep)).expect_err("bad leaf");
        assert_eq!(e[0].param, "t.child.child.child.child");
        let looping = json!({"$ref": "#/$defs/L", "$defs": {"L": {"$ref": "#/$defs/L"}}});
        assert_eq!(validate(&looping, &params(json!({"a": 1}))), Ok(()));
    }

    #[test]
    fn defaults_fill_absent_parameters_only() {
        let p = with_defaults(&schema(), &params(json!({"dry_run": true})));
        assert_eq!(Value::Object(p), json!({"dry_run": true, "seconds": 5.0}));
        let s = json!({"type": "object", "properties": {"cfg": {"$ref": "#/$defs/Cfg"}},
            "$defs": {"Cfg": {"type": "object", "default": {"a": 1}}}});
        let p = with_defaults(&s, &Parameters::new());
        assert_eq!(Value::Object(p), json!({"cfg": {"a": 1}}));
        assert_eq!(
            with_defaults(&json!(true), &Parameters::new()),
            Parameters::new()
        );
    }

    #[test]
    fn cli_values() {
        assert_eq!(parse_cli_value("5"), json!(5));
        assert_eq!(parse_cli_value("true"), json!(true));
        assert_eq!(parse_cli_value("[1, 2]"), json!([1, 2]));
        assert_eq!(parse_cli_value("\"5\""), json!("5"));
        assert_eq!(parse_cli_value("hello world"), json!("hello world"));
        assert_eq!(parse_cli_value(""), json!(""));
        assert_eq!(parse_cli_value("{bad"), json!("{bad"));
    }

    #[test]
    fn coerce_form_strings() {
        let form = params(json!({
            "n": "5", "seconds": "2.5", "url": "42", "limit": "", "dry_run": "on",
            "files": "[\"a\",\"b\"]", "pair": "[1,\"x\"]", "mode": "fast", "unknown": "7"
        }));
        let p = coerce(&schema(), &form);
        assert_eq!(
            Value::Object(p.clone()),
            json!({
                "n": 5, "seconds": 2.5, "url": "42", "limit": null, "dry_run": true,
                "files": ["a", "b"], "pair": [1, "x"], "mode": "fast", "unknown": "7"
            })
        );
        // Not convertible: left for validate to report.
        let p = coerce(&schema(), &params(json!({"n": "five", "dry_run": "maybe"})));
        assert_eq!(Value::Object(p), json!({"n": "five", "dry_run": "maybe"}));
        // Empty, not nullable: dropped so the default applies.
        let p = coerce(
            &schema(),
            &params(json!({"seconds": " ", "n": "", "dry_run": "off"})),
        );
        assert_eq!(Value::Object(p), json!({"dry_run": false}));
        // Nested Option<Struct> accepts JSON text.
        let p = coerce(
            &schema(),
            &params(json!({"source": "{\"host\":\"h\",\"port\":1}"})),
        );
        assert_eq!(p["source"], json!({"host": "h", "port": 1}));
        let p = coerce(&schema(), &params(json!({"source": "null", "n": "-3"})));
        assert_eq!(Value::Object(p), json!({"source": null, "n": -3}));
    }

    #[test]
    fn coerce_then_validate_reports_leftovers() {
        let p = coerce(&schema(), &params(json!({"n": "x"})));
        let e = validate_present(&schema(), &p).expect_err("bad");
        assert_eq!(
            e[0].message,
            r#"parameter "n": expected an integer, got "x""#
        );
    }

    /// The same checks against what `schemars` really derives, so the supported subset stays in
    /// step with it.
    #[test]
    fn real_schemars_output() {
        use serde::Deserialize;

        #[derive(Deserialize, schemars::JsonSchema)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Source {
            host: String,
            port: u16,
        }

        #[derive(Deserialize, schemars::JsonSchema)]
        #[serde(rename_all = "lowercase")]
        #[allow(dead_code)]
        enum Mode {
            /// Quick.
            Fast,
            /// Thorough.
            Slow,
        }

        #[derive(Deserialize, schemars::JsonSchema)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Params {
            n: u32,
            #[serde(default = "five")]
            seconds: f64,
            url: String,
            limit: Option<u8>,
            mode: Mode,
            source: Option<Source>,
            #[serde(default)]
            files: Vec<String>,
            #[serde(default)]
            dry_run: bool,
        }

        fn five() -> f64 {
            5.0
        }

        let schema = serde_json::to_value(schemars::schema_for!(Params)).expect("schema");
        let check = |v: Value| -> Vec<String> {
            let p = with_defaults(&schema, &params(v));
            match validate(&schema, &p) {
                Ok(()) => {
                    // Whatever passes must deserialize.
                    let r: Result<Params, _> = serde_json::from_value(Value::Object(p));
                    assert!(r.is_ok(), "validated but serde refused: {:?}", r.err());
                    Vec::new()
                }
                Err(es) => es.into_iter().map(|e| e.message).collect(),
            }
        };
        let ok = json!({"n": 1, "url": "u", "mode": "fast",
            "source": {"host": "h", "port": 5432}, "limit": 9, "files": ["a"]});
        assert_eq!(check(ok), Vec::<String>::new(), "{schema:#}");
        assert_eq!(
            check(json!({"n": 1, "url": "u", "mode": "slow"})),
            Vec::<String>::new()
        );
        let bad = json!({"n": -1, "url": 3, "mode": "medium", "limit": 256, "m": 0,
            "source": {"host": "h", "port": "x"}, "files": [1], "dry_run": "yes"});
        assert_eq!(
            check(bad),
            vec![
                r#"parameter "dry_run": expected a boolean, got "yes""#,
                r#"parameter "files[0]": expected a string, got 1"#,
                r#"parameter "limit": 256 is out of range for uint8 (from 0 to 255)"#,
                "unknown parameter \"m\" (known: dry_run, files, limit, mode, n, seconds, \
                 source, url)",
                r#"parameter "mode": expected "fast" or "slow", got "medium""#,
                r#"parameter "n": -1 is out of range for uint32 (from 0 to 4294967295)"#,
                r#"parameter "source.port": expected an integer, got "x""#,
                r#"parameter "url": expected a string, got 3"#,
            ]
        );
        assert_eq!(
            check(json!({"url": "u", "mode": "fast"})),
            vec![r#"missing required parameter "n""#]
        );
        let form = params(json!({"n": "7", "url": "u", "mode": "fast", "limit": "",
            "dry_run": "on", "seconds": "1.5"}));
        assert_eq!(
            check(Value::Object(coerce(&schema, &form))),
            Vec::<String>::new()
        );
    }
}
