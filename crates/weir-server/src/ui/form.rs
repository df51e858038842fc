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

fn kind_of(prop: &Value) -> String {
    match &prop["type"] {
        Value::String(s) => s.clone(),
        Value::Array(types) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("any")
            .to_string(),
        _ if prop.get("enum").is_some() => "string".into(),
        _ => "any".into(),
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
            let value = values
                .get(name)
                .cloned()
                .or_else(|| defaults.get(name).map(show))
                .or_else(|| prop.get("default").map(show))
                .unwrap_or_default();
            Field {
                name: name.clone(),
                kind: kind_of(prop),
                required: required.contains(&name.as_str()),
                description: prop["description"].as_str().unwrap_or_default().to_string(),
                options: prop["enum"]
                    .as_array()
                    .map(|e| e.iter().map(show).collect())
                    .unwrap_or_default(),
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
}
