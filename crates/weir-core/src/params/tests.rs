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
