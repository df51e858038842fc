//! The plan `weir deploy` prints: what changes between the stored spec and the file's.

use serde_json::Value;
use weir_core::api::DeploymentSpec;

/// Lines describing how `new` differs from `old`, one per changed leaf, sorted by path:
/// `  parameters.rows: 100 → 200` for a change, `  + tags: ["nightly"]` for something added,
/// `  - env.DEBUG: "1"` for something removed. Empty when the specs are equal.
pub fn diff(old: &DeploymentSpec, new: &DeploymentSpec) -> Vec<String> {
    let mut out = Vec::new();
    match (serde_json::to_value(old), serde_json::to_value(new)) {
        (Ok(a), Ok(b)) => walk("", &a, &b, &mut out),
        _ => {
            if old != new {
                out.push("  (the deployment changes)".to_string());
            }
        }
    }
    out
}

fn walk(path: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = child(path, k);
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => walk(&p, x, y, out),
                    (Some(x), None) => out.push(format!("  - {p}: {x}")),
                    (None, Some(y)) => out.push(format!("  + {p}: {y}")),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                let p = format!("{path}[{i}]");
                match (a.get(i), b.get(i)) {
                    (Some(x), Some(y)) => walk(&p, x, y, out),
                    (Some(x), None) => out.push(format!("  - {p}: {x}")),
                    (None, Some(y)) => out.push(format!("  + {p}: {y}")),
                    (None, None) => {}
                }
            }
        }
        _ if old != new => out.push(format!("  {path}: {old} → {new}")),
        _ => {}
    }
}

/// `path.key`, quoting keys that are not plain identifiers.
fn child(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = if plain {
        key.to_string()
    } else {
        Value::String(key.to_string()).to_string()
    };
    if path.is_empty() {
        key
    } else {
        format!("{path}.{key}")
    }
}
