//! Flow parameters checked against the flow's JSON Schema.
//!
//! Flows describe their parameters with the JSON Schema `schemars` derives for a parameter
//! struct (usually `#[serde(deny_unknown_fields)]`): an object with `properties`, `required`
//! and `additionalProperties: false`, nested structs under `$defs` reached through `$ref`.
//! This module checks a [`Parameters`] object against such a schema *before* a run is created,
//! so that a typo or a wrong type is refused with a message naming the parameter instead of
//! failing later inside the flow process.
//!
//! Validation is the `jsonschema` crate's (every keyword of the schema's draft, local `$ref`s,
//! no remote retrieval); [`check`] turns its errors into one sentence per parameter, sorted by
//! parameter. Two keywords are Weir's own, because serde is stricter than JSON Schema:
//! `type` treats `5.0` as no integer (serde refuses it for an integer field), and an integer
//! `format` as schemars writes it (`uint8` … `int64`) is a range. String formats are not
//! checked: the flow's own deserialisation is the judge of those.
//!
//! The rest of this module is what a validator does not do: [`with_defaults`] fills absent
//! parameters from the schema's `default`s, and [`coerce`] turns an HTML form's strings into
//! the types the schema asks for.

use crate::api::Parameters;
use serde_json::{Number, Value};
use std::fmt;

mod check;
#[cfg(test)]
mod tests;

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
    check::check(schema, params, true)
}

/// Like [`validate`], but does not require the schema's required parameters to be present:
/// checks only the values that are given. For defaults that are completed later, e.g. a
/// deployment's parameters that a manual run may complete.
pub fn validate_present(schema: &Value, params: &Parameters) -> Result<(), Vec<ParamError>> {
    check::check(schema, params, false)
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

/// The JSON type name of a value (`5.0` is a `number`, `5` an `integer`).
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
