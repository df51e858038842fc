//! The checker behind [`validate`](super::validate): walks a schema and a value together and
//! collects every problem with the path of the parameter at fault.

use super::{MAX_DEPTH, ParamError, allowed_types, lookup, resolve};
use crate::api::Parameters;
use serde_json::{Number, Value};

pub(super) fn check_root(
    schema: &Value,
    params: &Parameters,
    require: bool,
) -> Result<(), Vec<ParamError>> {
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

pub(super) fn type_name(value: &Value) -> &'static str {
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
