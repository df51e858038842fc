//! Validation through the `jsonschema` crate, and its errors as one sentence per parameter.
//!
//! `jsonschema` reports every failed keyword; a person wants one sentence per parameter that
//! says what was expected and what was given. [`check`] keeps, for each value, the error that
//! says most (a wrong type before a range), follows an `anyOf` into the one branch of the
//! value's shape (the `T` of an `Option<T>`), and sorts by parameter, missing ones last.
//! [`sentence`] is the one place where `jsonschema`'s error kinds become Weir's words.

use super::{ParamError, Parameters, show, type_name};
use jsonschema::error::ValidationErrorKind;
use jsonschema::paths::Location;
use jsonschema::{Keyword, ValidationError};
use serde_json::Value;

/// Checks `params` against `schema`; `require` says whether `required` is enforced.
pub(super) fn check(
    schema: &Value,
    params: &Parameters,
    require: bool,
) -> Result<(), Vec<ParamError>> {
    let root = super::resolve(schema, schema);
    if !takes_object(root) {
        // `()` or another non-object: the flow takes no parameters.
        let errors: Vec<ParamError> = params
            .keys()
            .map(|name| ParamError {
                param: name.clone(),
                message: format!("unknown parameter {name:?} (this flow takes no parameters)"),
            })
            .collect();
        return if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        };
    }
    let stripped;
    let schema = if require {
        schema
    } else {
        stripped = without_required(schema);
        &stripped
    };
    let validator = match jsonschema::options()
        .with_keyword("type", |_, value, _| Ok(Box::new(StrictType::new(value))))
        .with_keyword("format", |_, value, _| Ok(Box::new(IntFormat::new(value))))
        .build(schema)
    {
        Ok(v) => v,
        Err(e) => {
            return Err(vec![ParamError {
                param: String::new(),
                message: format!("the flow's parameter schema cannot be used: {e}"),
            }]);
        }
    };
    let instance = Value::Object(params.clone());
    let raw: Vec<ValidationError<'_>> = validator.iter_errors(&instance).collect();
    if raw.is_empty() {
        return Ok(());
    }
    let mut found = Vec::new();
    let mut words = Words {
        schema,
        instance: &instance,
        out: &mut found,
    };
    words.all(&raw);
    found.sort_by(|a, b| a.key.cmp(&b.key));
    Err(found.into_iter().map(|f| f.error).collect())
}

/// Whether a (resolved) root schema describes an object, or could.
fn takes_object(root: &Value) -> bool {
    match root.get("type") {
        None => true,
        Some(Value::String(t)) => t == "object",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "object"),
        Some(_) => true,
    }
}

/// `schema` with every `required` list removed, for checking only the values that are given.
fn without_required(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, v)| !(k.as_str() == "required" && v.is_array()))
                .map(|(k, v)| {
                    let v = match k.as_str() {
                        // Values, not schemas: left as they are.
                        "enum" | "const" | "default" | "examples" => v.clone(),
                        _ => without_required(v),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_required).collect()),
        other => other.clone(),
    }
}

/// `type` with integers as serde sees them: `5.0` is a number, not an integer.
struct StrictType {
    allowed: Vec<String>,
}

impl StrictType {
    fn new(value: &Value) -> Self {
        let allowed = match value {
            Value::String(t) => vec![t.clone()],
            Value::Array(ts) => ts
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        };
        StrictType { allowed }
    }
}

impl<'i> Keyword<'i> for StrictType {
    fn validate(&self, instance: &'i Value) -> Result<(), ValidationError<'i>> {
        if Keyword::is_valid(self, instance) {
            Ok(())
        } else {
            let names: Vec<String> = self.allowed.iter().map(|t| article(t)).collect();
            Err(ValidationError::custom(names.join(" or ")))
        }
    }

    fn is_valid(&self, instance: &'i Value) -> bool {
        self.allowed.is_empty()
            || self.allowed.iter().any(|t| match t.as_str() {
                "integer" => is_integer(instance),
                "number" => instance.is_number(),
                other => other == type_name(instance),
            })
    }
}

/// An integer `format` as schemars writes it (`uint8` … `int64`) as a range; other formats
/// pass.
struct IntFormat {
    range: Option<(&'static str, i128, i128)>,
}

impl IntFormat {
    fn new(value: &Value) -> Self {
        IntFormat {
            range: value.as_str().and_then(int_format_range),
        }
    }
}

impl<'i> Keyword<'i> for IntFormat {
    fn validate(&self, instance: &'i Value) -> Result<(), ValidationError<'i>> {
        match self.range {
            Some((format, lo, hi)) if !Keyword::is_valid(self, instance) => {
                Err(ValidationError::custom(format!(
                    "{} is out of range for {format} (from {lo} to {hi})",
                    show(instance)
                )))
            }
            _ => Ok(()),
        }
    }

    fn is_valid(&self, instance: &'i Value) -> bool {
        let (Some((_, lo, hi)), Value::Number(n)) = (self.range, instance) else {
            return true;
        };
        match n.as_i64().map(i128::from).or(n.as_u64().map(i128::from)) {
            Some(i) => (lo..=hi).contains(&i),
            None => n
                .as_f64()
                .is_none_or(|x| (lo as f64..=hi as f64).contains(&x)),
        }
    }
}

/// Range of an integer `format` as schemars writes it.
fn int_format_range(format: &str) -> Option<(&'static str, i128, i128)> {
    Some(match format {
        "uint8" => ("uint8", 0, u8::MAX.into()),
        "uint16" => ("uint16", 0, u16::MAX.into()),
        "uint32" => ("uint32", 0, u32::MAX.into()),
        "uint64" => ("uint64", 0, u64::MAX.into()),
        "uint" => ("uint", 0, u64::MAX.into()),
        "int8" => ("int8", i8::MIN.into(), i8::MAX.into()),
        "int16" => ("int16", i16::MIN.into(), i16::MAX.into()),
        "int32" => ("int32", i32::MIN.into(), i32::MAX.into()),
        "int64" => ("int64", i64::MIN.into(), i64::MAX.into()),
        "int" => ("int", i64::MIN.into(), i64::MAX.into()),
        _ => return None,
    })
}

fn is_integer(value: &Value) -> bool {
    value.as_i64().is_some() || value.as_u64().is_some()
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

fn fmt_num(x: &Value) -> String {
    match x.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        _ => x.to_string(),
    }
}

/// One step of a parameter's path; keys in a map sort before the missing ones.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Key(String),
    Index(usize),
    Missing(String),
}

/// A sentence and where it sorts.
struct Found {
    key: Vec<Step>,
    error: ParamError,
}

/// How much an error says about its value: the lowest rank at a path wins, and the errors of
/// rank [`SHAPE`] or below silence the rest at that path.
fn rank(kind: &ValidationErrorKind) -> u8 {
    use ValidationErrorKind as K;
    match kind {
        K::Custom { keyword, .. } if keyword == "type" => 0,
        K::Type { .. } => 0,
        K::Enum { .. } => 1,
        K::Constant { .. } => 2,
        K::FalseSchema => 3,
        K::AnyOf { .. } | K::OneOfNotValid { .. } => 4,
        K::Custom { keyword, .. } if keyword == "format" => 5,
        K::Minimum { .. } | K::Maximum { .. } => 6,
        K::ExclusiveMinimum { .. } | K::ExclusiveMaximum { .. } => 6,
        K::MinLength { .. } | K::MaxLength { .. } => 7,
        _ => 8,
    }
}

/// Errors of this rank or lower say all there is to say about their value.
const SHAPE: u8 = 5;

/// Turns `jsonschema` errors into [`Found`] sentences.
struct Words<'a> {
    schema: &'a Value,
    instance: &'a Value,
    out: &'a mut Vec<Found>,
}

impl Words<'_> {
    /// Every error of one validation (or one `anyOf` branch), the telling ones per path.
    fn all(&mut self, errors: &[ValidationError<'_>]) {
        let mut order: Vec<&ValidationError<'_>> = errors.iter().collect();
        order.sort_by(|a, b| {
            a.instance_path()
                .as_str()
                .cmp(b.instance_path().as_str())
                .then(rank(a.kind()).cmp(&rank(b.kind())))
        });
        let mut last: Option<(&str, u8)> = None;
        for e in order {
            let path = e.instance_path().as_str();
            let r = rank(e.kind());
            if let Some((p, best)) = last
                && p == path
                && (best <= SHAPE || (r == best && r < 8))
            {
                continue;
            }
            last = Some((path, r));
            self.one(e);
        }
    }

    /// One error as a sentence: the structural kinds (`anyOf`, unknown and missing fields)
    /// here, every other through [`sentence`].
    fn one(&mut self, e: &ValidationError<'_>) {
        use ValidationErrorKind as K;
        let (steps, path) = self.locate(e.instance_path());
        let at = format!("parameter {path:?}");
        let (key, param, message) = match e.kind() {
            K::AnyOf { context } | K::OneOfNotValid { context } => return self.any_of(e, context),
            K::OneOfMultipleValid { .. } => return,
            K::AdditionalProperties { unexpected } => {
                let known = self.known_properties(e.schema_path());
                for name in unexpected {
                    self.unknown(&steps, &path, name, &known);
                }
                return;
            }
            K::Required { property } => {
                let name = property.as_str().unwrap_or_default();
                let mut key = steps;
                key.push(Step::Missing(name.to_string()));
                if path.is_empty() {
                    let message = format!("missing required parameter {name:?}");
                    (key, name.to_string(), message)
                } else {
                    let message = format!("{at}: missing required field {name:?}");
                    (key, format!("{path}.{name}"), message)
                }
            }
            kind => {
                let value = self.instance.pointer(e.instance_path().as_str());
                let what = sentence(kind, value).unwrap_or_else(|| e.to_string());
                (steps, path, format!("{at}: {what}"))
            }
        };
        self.out.push(Found {
            key,
            error: ParamError { param, message },
        });
    }

    /// `anyOf`/`oneOf` where no branch fits: the one branch of the value's shape says best
    /// what is wrong; otherwise every branch's shape is listed.
    fn any_of(&mut self, e: &ValidationError<'_>, branches: &[Vec<ValidationError<'static>>]) {
        let here = e.instance_path().as_str();
        let mismatched = |errors: &[ValidationError<'static>]| {
            errors
                .iter()
                .any(|b| b.instance_path().as_str() == here && rank(b.kind()) == 0)
        };
        let fitting: Vec<&Vec<ValidationError<'static>>> =
            branches.iter().filter(|b| !mismatched(b)).collect();
        if let [only] = fitting.as_slice() {
            return self.all(only);
        }
        let shapes: Vec<String> = branches
            .iter()
            .map(|b| {
                b.iter()
                    .filter(|x| x.instance_path().as_str() == here)
                    .min_by_key(|x| rank(x.kind()))
                    .map_or_else(|| "a value of another shape".to_string(), describe)
            })
            .collect();
        let (steps, path) = self.locate(e.instance_path());
        let got = self.instance.pointer(here).map(show).unwrap_or_default();
        self.out.push(Found {
            key: steps,
            error: ParamError {
                message: format!(
                    "parameter {path:?}: expected {}, got {got}",
                    shapes.join(" or ")
                ),
                param: path,
            },
        });
    }

    fn unknown(&mut self, steps: &[Step], path: &str, name: &str, known: &[String]) {
        let mut key = steps.to_vec();
        key.push(Step::Key(name.to_string()));
        let list = if known.is_empty() {
            "none are allowed".to_string()
        } else {
            format!("known: {}", known.join(", "))
        };
        let (param, message) = if path.is_empty() {
            let message = if known.is_empty() {
                format!("unknown parameter {name:?} (this flow takes no parameters)")
            } else {
                format!("unknown parameter {name:?} ({list})")
            };
            (name.to_string(), message)
        } else {
            (
                format!("{path}.{name}"),
                format!("parameter {path:?}: unknown field {name:?} ({list})"),
            )
        };
        self.out.push(Found {
            key,
            error: ParamError { param, message },
        });
    }

    /// The property names of the schema whose `additionalProperties` refused a field.
    fn known_properties(&self, keyword: &Location) -> Vec<String> {
        let pointer = keyword.as_str();
        let parent = pointer.rsplit_once('/').map_or("", |(p, _)| p);
        let mut names: Vec<String> = self
            .schema
            .pointer(parent)
            .and_then(|s| s.get("properties"))
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        names.sort();
        names
    }

    /// The sort key and the display form (`source.host`, `files[2]`) of an instance location.
    fn locate(&self, location: &Location) -> (Vec<Step>, String) {
        let mut steps = Vec::new();
        let mut path = String::new();
        let mut node = Some(self.instance);
        for raw in location.as_str().split('/').skip(1) {
            let part = raw.replace("~1", "/").replace("~0", "~");
            match (node, part.parse::<usize>()) {
                (Some(Value::Array(items)), Ok(i)) => {
                    path.push_str(&format!("[{i}]"));
                    node = items.get(i);
                    steps.push(Step::Index(i));
                }
                _ => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(&part);
                    node = node.and_then(|n| n.get(&part));
                    steps.push(Step::Key(part));
                }
            }
        }
        (steps, path)
    }
}

/// What one `anyOf` branch wanted, from its most telling error.
fn describe(e: &ValidationError<'_>) -> String {
    use ValidationErrorKind as K;
    match e.kind() {
        K::Custom { keyword, message } if keyword == "type" => message.clone(),
        K::Constant { expected_value } => show(expected_value),
        K::Enum { options } => one_of(options),
        _ => "a value of another shape".to_string(),
    }
}

fn one_of(options: &Value) -> String {
    match options {
        Value::Array(vs) => {
            let list: Vec<String> = vs.iter().map(show).collect();
            format!("one of {}", list.join(", "))
        }
        other => show(other),
    }
}

/// What is wrong with `value`, in Weir's words, for every error kind that is about one value;
/// `None` for a kind Weir has no words of its own for (its own message is used then).
fn sentence(kind: &ValidationErrorKind, value: Option<&Value>) -> Option<String> {
    use ValidationErrorKind as K;
    let got = value.map(show).unwrap_or_default();
    let len = || value.and_then(Value::as_array).map_or(0, Vec::len);
    Some(match kind {
        K::Custom { keyword, message } if keyword == "type" => {
            format!("expected {message}, got {got}")
        }
        K::Custom { message, .. } => message.clone(),
        K::Type { kind } => {
            let names: Vec<String> = match kind {
                jsonschema::error::TypeKind::Single(t) => vec![article(&t.to_string())],
                jsonschema::error::TypeKind::Multiple(ts) => {
                    ts.iter().map(|t| article(&t.to_string())).collect()
                }
            };
            format!("expected {}, got {got}", names.join(" or "))
        }
        K::Enum { options } => format!("expected {}, got {got}", one_of(options)),
        K::Constant { expected_value } => format!("expected {}, got {got}", show(expected_value)),
        K::FalseSchema => "no value is allowed here".to_string(),
        K::Minimum { limit } => format!("must be at least {}, got {got}", fmt_num(limit)),
        K::Maximum { limit } => format!("must be at most {}, got {got}", fmt_num(limit)),
        K::ExclusiveMinimum { limit } => {
            format!("must be greater than {}, got {got}", fmt_num(limit))
        }
        K::ExclusiveMaximum { limit } => {
            format!("must be less than {}, got {got}", fmt_num(limit))
        }
        K::MinLength { limit } => format!("must be at least {limit} characters long"),
        K::MaxLength { limit } => format!("must be at most {limit} characters long"),
        K::MinItems { limit } => format!("needs at least {limit} items, got {}", len()),
        K::MaxItems { limit } => format!("allows at most {limit} items, got {}", len()),
        K::AdditionalItems { limit } => format!("allows at most {limit} items, got {}", len()),
        K::UniqueItems => {
            let repeat = value.and_then(Value::as_array).and_then(|items| {
                (1..items.len()).find_map(|i| items[..i].contains(&items[i]).then(|| &items[i]))
            });
            let repeat = repeat.map(show).unwrap_or_default();
            format!("items must be unique; {repeat} repeats")
        }
        _ => return None,
    })
}
