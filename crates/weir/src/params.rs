//! Flow parameter validation: JSON values in, typed arguments out, with errors that name the
//! parameter and the expected type (`parameter "n": expected an integer (uint32), got "nope"`).
//!
//! The expected type is described from the parameter type's JSON Schema, so what the error
//! says matches what `describe` prints.

use schemars::JsonSchema;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use weir_core::api::Parameters;

/// Parameters that do not fit a flow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// The parameters are not a JSON object.
    #[error("parameters must be a JSON object, got {0}")]
    NotAnObject(String),
    /// A parameter the flow does not take.
    #[error("unknown parameter {name:?}; this flow takes: {}", if .known.is_empty() { "no parameters".to_string() } else { .known.join(", ") })]
    Unknown {
        /// The parameter name given, which the flow does not take.
        name: String,
        /// The names of every parameter the flow takes, in order.
        known: Vec<String>,
    },
    /// A required parameter without a value.
    #[error("missing parameter {name:?}: expected {expected}")]
    Missing {
        /// The parameter's name (the flow argument's).
        name: String,
        /// Expected type, in words.
        expected: String,
    },
    /// A value of the wrong type or out of range.
    #[error("parameter {name:?}: expected {expected}, got {got}{}", .detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Invalid {
        /// The parameter's name (the flow argument's).
        name: String,
        /// Expected type, in words.
        expected: String,
        /// The value given (JSON, shortened).
        got: String,
        /// The decoder's explanation, when the value had the right JSON type.
        detail: Option<String>,
    },
}

impl ParamError {
    /// The parameter at fault, if the error is about one.
    pub fn parameter(&self) -> Option<&str> {
        match self {
            ParamError::NotAnObject(_) => None,
            ParamError::Unknown { name, .. }
            | ParamError::Missing { name, .. }
            | ParamError::Invalid { name, .. } => Some(name),
        }
    }
}

/// Turns any JSON value into a parameter object, or says why it is not one.
pub fn as_object(v: Value) -> Result<Parameters, ParamError> {
    match v {
        Value::Object(m) => Ok(m),
        other => Err(ParamError::NotAnObject(short(&other))),
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 80 {
        let cut: String = s.chars().take(77).collect();
        format!("{cut}...")
    } else {
        s
    }
}

fn type_words(t: &str) -> &'static str {
    match t {
        "integer" => "an integer",
        "number" => "a number",
        "string" => "a string",
        "boolean" => "true or false",
        "array" => "an array",
        "object" => "an object",
        "null" => "null",
        _ => "a value",
    }
}

/// Describes a JSON Schema in words: `an integer (uint32)`, `a string or null`, `one of "a", "b"`.
pub(crate) fn describe_schema(schema: &Value) -> String {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let list: Vec<String> = values.iter().map(Value::to_string).collect();
        return format!("one of {}", list.join(", "));
    }
    if let Some(c) = schema.get("const") {
        return format!("exactly {c}");
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if types.is_empty() {
        for key in ["anyOf", "oneOf"] {
            if let Some(alts) = schema.get(key).and_then(Value::as_array) {
                let consts: Option<Vec<String>> = alts
                    .iter()
                    .map(|a| a.get("const").map(Value::to_string))
                    .collect();
                if let Some(consts) = consts.filter(|c| !c.is_empty()) {
                    return format!("one of {}", consts.join(", "));
                }
                let words: Vec<String> = alts.iter().map(describe_schema).collect();
                return words.join(" or ");
            }
        }
        return "a value matching the parameter's schema".to_string();
    }
    let mut words: Vec<String> = types.iter().map(|t| type_words(t).to_string()).collect();
    if let (Some(fmt), Some(first)) = (
        schema.get("format").and_then(Value::as_str),
        words.first_mut(),
    ) {
        first.push_str(&format!(" ({fmt})"));
    }
    words.join(" or ")
}

fn json_kind_matches(schema: &Value, v: &Value) -> bool {
    let kind = match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let matches = |t: &str| t == kind || (t == "number" && kind == "integer");
    match schema.get("type") {
        Some(Value::String(s)) => matches(s),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).any(matches),
        _ => true,
    }
}

fn expected<T: JsonSchema>() -> (Value, String) {
    let schema = schemars::SchemaGenerator::default()
        .into_root_schema_for::<T>()
        .to_value();
    let words = describe_schema(&schema);
    (schema, words)
}

/// Fails on the first name in `params` that is not in `known`.
#[doc(hidden)]
pub fn check_unknown(params: &Parameters, known: &[&str]) -> Result<(), ParamError> {
    match params.keys().find(|k| !known.contains(&k.as_str())) {
        Some(name) => Err(ParamError::Unknown {
            name: name.clone(),
            known: known.iter().map(|s| (*s).to_string()).collect(),
        }),
        None => Ok(()),
    }
}

/// Removes and decodes parameter `name`; a missing one takes `default`, or `null` for types
/// that accept it (`Option`), else is an error.
#[doc(hidden)]
pub fn take_param<T: DeserializeOwned + JsonSchema>(
    params: &mut Parameters,
    name: &str,
    default: Option<fn() -> T>,
) -> Result<T, ParamError> {
    match params.remove(name) {
        Some(v) => T::deserialize(&v).map_err(|e| {
            let (schema, expected) = expected::<T>();
            ParamError::Invalid {
                name: name.to_string(),
                expected,
                got: short(&v),
                detail: json_kind_matches(&schema, &v).then(|| e.to_string()),
            }
        }),
        None => match default {
            Some(d) => Ok(d()),
            None => T::deserialize(Value::Null).map_err(|_| ParamError::Missing {
                name: name.to_string(),
                expected: expected::<T>().1,
            }),
        },
    }
}

/// Records an argument value in the flow run's parameters.
#[doc(hidden)]
pub fn put_param<T: Serialize + ?Sized>(params: &mut Parameters, name: &str, value: &T) {
    params.insert(
        name.to_string(),
        serde_json::to_value(value).unwrap_or(Value::Null),
    );
}

/// Parses a `--param KEY=VALUE` argument: VALUE is JSON if it parses, else a string.
pub fn parse_assignment(arg: &str) -> Result<(String, Value), String> {
    let Some((k, v)) = arg.split_once('=') else {
        return Err(format!("--param expects KEY=VALUE, got {arg:?}"));
    };
    let k = k.trim();
    if k.is_empty() {
        return Err(format!(
            "--param expects KEY=VALUE, got {arg:?} (empty KEY)"
        ));
    }
    let value = serde_json::from_str::<Value>(v).unwrap_or_else(|_| Value::String(v.to_string()));
    Ok((k.to_string(), value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Parameters {
        as_object(v).expect("object")
    }

    #[test]
    fn ill_typed_values_name_parameter_and_type() {
        let mut p = obj(json!({"n": "nope"}));
        let e = take_param::<u32>(&mut p, "n", None).expect_err("must fail");
        assert_eq!(
            e.to_string(),
            "parameter \"n\": expected an integer (uint32), got \"nope\""
        );
        let mut p = obj(json!({"n": -1}));
        let e = take_param::<u32>(&mut p, "n", None).expect_err("must fail");
        assert!(
            e.to_string()
                .starts_with("parameter \"n\": expected an integer (uint32), got -1 ("),
            "{e}"
        );
    }

    #[test]
    fn defaults_options_and_missing() {
        let mut p = Parameters::new();
        assert_eq!(take_param::<u32>(&mut p, "n", Some(|| 10)), Ok(10));
        assert_eq!(take_param::<Option<u32>>(&mut p, "m", None), Ok(None));
        let e = take_param::<String>(&mut p, "url", None).expect_err("missing");
        assert_eq!(
            e.to_string(),
            "missing parameter \"url\": expected a string"
        );
    }

    #[test]
    fn unknown_parameters_are_named() {
        let p = obj(json!({"x": 1}));
        let e = check_unknown(&p, &["n"]).expect_err("unknown");
        assert_eq!(e.parameter(), Some("x"));
        assert_eq!(e.to_string(), "unknown parameter \"x\"; this flow takes: n");
    }

    #[test]
    fn assignments_parse_json_or_string() {
        assert_eq!(parse_assignment("n=5"), Ok(("n".into(), json!(5))));
        assert_eq!(parse_assignment("s=abc"), Ok(("s".into(), json!("abc"))));
        assert_eq!(parse_assignment("a=[1,2]"), Ok(("a".into(), json!([1, 2]))));
        assert_eq!(parse_assignment("e="), Ok(("e".into(), json!(""))));
        assert!(parse_assignment("novalue").is_err());
    }
}
