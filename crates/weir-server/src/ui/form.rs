//! The Quick run form, generated from a flow's parameter schema (JSON Schema as schemars
//! writes it), with values entered or defaulted and errors beside their fields.

use serde_json::{Map, Value};
use std::collections::HashMap;

/// One form field.
pub(crate) struct Field {
    pub name: String,
    /// `integer`, `number`, `string`, `boolean`, `array`, `object` or `any`.
    pub kind: String,
    pub required: bool,
    pub description: String,
    /// Allowed values, for enums.
    pub options: Vec<String>,
    /// The value shown (entered, else the default).
    pub value: String,
    pub error: Option<String>,
}

/// How deep `$ref` chains and `anyOf` wrappers are followed (guards against cycles).
const MAX_DEPTH: usize = 16;

/// Follows a local `$ref` (`#/$defs/Mode`, any JSON pointer into the root).
fn deref<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    let mut s = schema;
    for _ in 0..MAX_DEPTH {
        let target = s
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix('#'))
            .and_then(|p| {
                if p.is_empty() {
                    Some(root)
                } else {
                    root.pointer(p)
                }
            });
        match target {
            Some(t) => s = t,
            None => break,
        }
    }
    s
}

fn is_null(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
        || schema.get("const").is_some_and(Value::is_null)
}

/// What a form field shows of a property: the schema behind `$ref`s, with a nullable
/// `anyOf`/`oneOf` (`Option<T>` in Rust, `Optional[T]` in Python) reduced to its one other
/// branch.
fn effective<'a>(root: &'a Value, prop: &'a Value) -> &'a Value {
    let mut s = deref(root, prop);
    for _ in 0..MAX_DEPTH {
        let branches = ["anyOf", "oneOf"]
            .iter()
            .find_map(|k| s.get(*k).and_then(Value::as_array));
        let Some(branches) = branches else { break };
        let mut others = branches.iter().filter(|b| !is_null(deref(root, b)));
        match (others.next(), others.next()) {
            (Some(only), None) => s = deref(root, only),
            _ => break,
        }
    }
    s
}

/// The allowed values of an enumeration: `enum`, or `oneOf`/`anyOf` whose branches are all
/// `const`s (how schemars writes a Rust enum with documented variants).
fn choices(root: &Value, s: &Value) -> Vec<Value> {
    if let Some(values) = s.get("enum").and_then(Value::as_array) {
        return values.iter().filter(|v| !v.is_null()).cloned().collect();
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(branches) = s.get(key).and_then(Value::as_array) {
            let consts: Option<Vec<Value>> = branches
                .iter()
                .map(|b| deref(root, b))
                .filter(|b| !is_null(b))
                .map(|b| b.get("const").cloned())
                .collect();
            if let Some(c) = consts.filter(|c| !c.is_empty()) {
                return c;
            }
        }
    }
    Vec::new()
}

fn kind_of(s: &Value, options: &[Value]) -> String {
    match &s["type"] {
        Value::String(t) => t.clone(),
        Value::Array(types) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("any")
            .to_string(),
        _ => match options.first() {
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => "integer".into(),
            Some(Value::Number(_)) => "number".into(),
            Some(Value::Bool(_)) => "boolean".into(),
            Some(_) => "string".into(),
            None if s.get("properties").is_some() => "object".into(),
            None => "any".into(),
        },
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The fields of `schema`, with `values` (entered, as text) over `defaults` (the deployment's,
/// then the schema's).
pub(crate) fn fields(
    schema: Option<&Value>,
    defaults: &Map<String, Value>,
    values: &HashMap<String, String>,
    errors: &HashMap<String, String>,
) -> Vec<Field> {
    let Some(schema) = schema else { return vec![] };
    let Some(props) = schema["properties"].as_object() else {
        return vec![];
    };
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    props
        .iter()
        .map(|(name, prop)| {
            let shown = effective(schema, prop);
            let options = choices(schema, shown);
            let value = values
                .get(name)
                .cloned()
                .or_else(|| defaults.get(name).map(show))
                .or_else(|| prop.get("default").map(show))
                .unwrap_or_default();
            Field {
                name: name.clone(),
                kind: kind_of(shown, &options),
                required: required.contains(&name.as_str()),
                description: prop["description"]
                    .as_str()
                    .or_else(|| shown["description"].as_str())
                    .unwrap_or_default()
                    .to_string(),
                options: options.iter().map(show).collect(),
                value,
                error: errors.get(name).cloned(),
            }
        })
        .collect()
}

/// Parameters from the submitted form (`p.<name>` fields), typed by the schema: empty
/// optional fields are left out so defaults apply.
pub(crate) fn parameters(
    schema: Option<&Value>,
    form: &HashMap<String, String>,
) -> Map<String, Value> {
    let mut raw = Map::new();
    for (k, v) in form {
        if let Some(name) = k.strip_prefix("p.")
            && !v.is_empty()
        {
            raw.insert(name.to_string(), Value::String(v.clone()));
        }
    }
    match schema {
        Some(s) => weir_core::params::coerce(s, &raw),
        None => raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_follow_the_schema_and_values_coerce() {
        let schema = json!({
            "type": "object",
            "properties": {"n": {"type": "integer", "default": 10, "description": "how many"},
                           "mode": {"type": "string", "enum": ["fast", "slow"]}},
            "required": ["mode"],
            "additionalProperties": false
        });
        let defaults = Map::new();
        let f = fields(Some(&schema), &defaults, &HashMap::new(), &HashMap::new());
        assert_eq!(f.len(), 2);
        let n = f.iter().find(|f| f.name == "n").expect("n");
        assert_eq!(
            (n.kind.as_str(), n.value.as_str(), n.required),
            ("integer", "10", false)
        );
        let mode = f.iter().find(|f| f.name == "mode").expect("mode");
        assert_eq!(mode.options, vec!["fast", "slow"]);
        let form = HashMap::from([
            ("p.n".to_string(), "5".to_string()),
            ("p.mode".to_string(), "fast".to_string()),
        ]);
        let p = parameters(Some(&schema), &form);
        assert_eq!(p["n"], json!(5));
        assert_eq!(p["mode"], json!("fast"));
    }

    /// What schemars writes for Rust enums and `Option`s, and what the Python SDK writes for
    /// `Enum`, `Optional` and dataclasses: `$ref`, `anyOf` with null, `oneOf` of consts.
    #[test]
    fn refs_nullable_any_of_and_const_choices() {
        let schema = json!({
            "type": "object",
            "$defs": {
                "Mode": {"oneOf": [{"const": "fast", "type": "string", "description": "Quick."},
                                   {"const": "slow", "type": "string"}],
                         "description": "How to run."},
                "Level": {"type": "string", "enum": ["low", "high"]},
                "Source": {"type": "object", "properties": {"bucket": {"type": "string"}}}
            },
            "properties": {
                "mode": {"$ref": "#/$defs/Mode", "default": "fast"},
                "level": {"anyOf": [{"$ref": "#/$defs/Level"}, {"type": "null"}], "default": null},
                "source": {"$ref": "#/$defs/Source"},
                "region": {"type": ["string", "null"]},
                "retries": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                "either": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
                "kind": {"enum": [1, 2]}
            }
        });
        let f = fields(Some(&schema), &Map::new(), &HashMap::new(), &HashMap::new());
        let get = |n: &str| f.iter().find(|f| f.name == n).expect(n);
        let mode = get("mode");
        assert_eq!(
            (mode.kind.as_str(), mode.value.as_str()),
            ("string", "fast")
        );
        assert_eq!(mode.options, vec!["fast", "slow"]);
        assert_eq!(mode.description, "How to run.");
        let level = get("level");
        assert_eq!(
            (level.kind.as_str(), level.options.clone()),
            ("string", vec!["low".to_string(), "high".to_string()])
        );
        assert_eq!(get("source").kind, "object");
        assert_eq!(get("region").kind, "string");
        assert_eq!(get("retries").kind, "integer");
        assert_eq!(get("either").kind, "any");
        assert_eq!(get("kind").kind, "integer");
        assert_eq!(get("kind").options, vec!["1", "2"]);
        let form = HashMap::from([
            ("p.retries".to_string(), "3".to_string()),
            ("p.source".to_string(), r#"{"bucket": "b"}"#.to_string()),
            ("p.mode".to_string(), "slow".to_string()),
            ("p.kind".to_string(), "2".to_string()),
        ]);
        let p = parameters(Some(&schema), &form);
        assert_eq!(p["retries"], json!(3));
        assert_eq!(p["source"], json!({"bucket": "b"}));
        assert_eq!(p["mode"], json!("slow"));
        assert_eq!(p["kind"], json!(2));
    }
}
