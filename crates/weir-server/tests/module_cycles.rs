//! No import loop between the server's modules: read from the sources, like the store's guard
//! against state names in SQL.
//!
//! Every `crate::…`, `super::…` and `self::…` path in a file is a dependency of the file's
//! module on the module the path names (the longest prefix that is a module; the root's
//! `pub use` re-exports count as the module they come from). A dependency between two
//! modules that share a parent is an edge between the parent's children that contain them
//! (`ui::pages` → `routes::runs` is `ui` → `routes`), and each parent's children must form an
//! acyclic graph. A module using its own ancestors or descendants is not a loop.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Module = Vec<String>;

/// One dependency between siblings, with where it was seen.
#[derive(Debug, Clone)]
struct Edge {
    from: Module,
    to: Module,
    at: String,
}

fn module_of(file: &str) -> Module {
    let file = file.strip_suffix(".rs").unwrap_or(file);
    let mut parts: Vec<String> = file.split('/').map(String::from).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The paths a line names, each as the segments after its start, resolved against `here`.
fn paths_in(line: &str, here: &Module) -> Vec<Module> {
    let mut found = Vec::new();
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < line.len() {
        if !line.is_char_boundary(i) {
            i += 1;
            continue;
        }
        let rest = &line[i..];
        let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let start = ["crate::", "super::", "self::"]
            .into_iter()
            .find(|p| boundary && rest.starts_with(p));
        let Some(start) = start else {
            i += 1;
            continue;
        };
        let mut base: Module = match start {
            "crate::" => vec![],
            _ => here.clone(),
        };
        let mut tail = &rest[start.len()..];
        if start == "super::" {
            base.pop();
            while let Some(t) = tail.strip_prefix("super::") {
                base.pop();
                tail = t;
            }
        }
        i += rest.len() - tail.len();
        let mut segments = base;
        loop {
            if let Some(group) = tail.strip_prefix('{') {
                // `{a, b::c}`: each top-level item starts its own path.
                let mut depth = 0;
                let mut item_start = 0;
                for (j, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => {
                            found.push(item(&segments, &group[item_start..j]));
                            break;
                        }
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            found.push(item(&segments, &group[item_start..j]));
                            item_start = j + 1;
                        }
                        _ => {}
                    }
                }
                break;
            }
            let name = ident(tail);
            if name.is_empty() {
                found.push(segments);
                break;
            }
            segments.push(name.to_string());
            tail = &tail[name.len()..];
            match tail.strip_prefix("::") {
                Some(t) => tail = t,
                None => {
                    found.push(segments);
                    break;
                }
            }
        }
    }
    found
}

fn item(prefix: &Module, text: &str) -> Module {
    let mut segments = prefix.clone();
    for part in text.trim().split("::") {
        let name = ident(part.trim());
        if name.is_empty() || name == "self" {
            break;
        }
        segments.push(name.to_string());
    }
    segments
}

/// The sibling edges of a crate whose files are `(path under src/, text)`.
fn edges(files: &[(String, String)]) -> Vec<Edge> {
    let modules: BTreeSet<Module> = files.iter().map(|(f, _)| module_of(f)).collect();
    // `pub use a::B;` at the root: `crate::B` is a use of `a`.
    let mut reexports: BTreeMap<String, String> = BTreeMap::new();
    for (file, text) in files {
        if file != "lib.rs" {
            continue;
        }
        for line in text.lines() {
            let Some(rest) = line.trim().strip_prefix("pub use ") else {
                continue;
            };
            let Some((module, names)) = rest.split_once("::") else {
                continue;
            };
            let names = names.trim_end_matches(';').trim_matches(['{', '}']);
            for name in names.split(',') {
                let name = name.trim();
                if !name.is_empty() {
                    reexports.insert(name.to_string(), module.to_string());
                }
            }
        }
    }
    let mut out = Vec::new();
    for (file, text) in files {
        let here = module_of(file);
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for mut target in paths_in(code, &here) {
                if target.len() == 1
                    && let Some(m) = reexports.get(&target[0])
                {
                    target = vec![m.clone()];
                }
                while !target.is_empty() && !modules.contains(&target) {
                    target.pop();
                }
                let common = here.iter().zip(&target).take_while(|(a, b)| a == b).count();
                if common == here.len() || common == target.len() {
                    continue;
                }
                out.push(Edge {
                    from: here[..=common].to_vec(),
                    to: target[..=common].to_vec(),
                    at: format!("src/{file}:{}", n + 1),
                });
            }
        }
    }
    out
}

/// Every loop among siblings, as `a → b → a (where each edge was seen)`.
fn cycles(edges: &[Edge]) -> Vec<String> {
    let mut graph: BTreeMap<&Module, BTreeMap<&Module, &str>> = BTreeMap::new();
    for e in edges {
        graph
            .entry(&e.from)
            .or_default()
            .entry(&e.to)
            .or_insert(&e.at);
    }
    let mut found = BTreeSet::new();
    for start in graph.keys() {
        // Depth-first from each module, looking for a way back to it.
        let mut stack: Vec<(&Module, Vec<(&Module, &str)>)> = vec![(start, vec![])];
        let mut seen = BTreeSet::new();
        while let Some((node, path)) = stack.pop() {
            for (next, at) in graph.get(node).into_iter().flatten() {
                let mut path = path.clone();
                path.push((next, at));
                if next == start {
                    let mut names: Vec<String> = vec![start.join("::")];
                    names.extend(
                        path.iter()
                            .map(|(m, at)| format!("{} ({at})", m.join("::"))),
                    );
                    let mut key: Vec<&Module> = path.iter().map(|(m, _)| *m).collect();
                    key.sort();
                    if found
                        .iter()
                        .all(|(k, _): &(Vec<&Module>, String)| *k != key)
                    {
                        found.insert((key, names.join(" → ")));
                    }
                } else if seen.insert(*next) {
                    stack.push((next, path));
                }
            }
        }
    }
    found.into_iter().map(|(_, text)| text).collect()
}

fn sources(dir: &Path, under: &str, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read src")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .expect("a file name")
            .to_string_lossy()
            .to_string();
        let rel = if under.is_empty() {
            name.clone()
        } else {
            format!("{under}/{name}")
        };
        if path.is_dir() {
            sources(&path, &rel, out);
        } else if name.ends_with(".rs") {
            out.push((rel, std::fs::read_to_string(&path).expect("read source")));
        }
    }
}

#[test]
fn no_import_loop_between_server_modules() {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        "",
        &mut files,
    );
    assert!(files.len() > 20, "the server's sources were not found");
    let edges = edges(&files);
    assert!(
        edges
            .iter()
            .any(|e| e.from == ["routes"] && e.to == ["ops"]),
        "the reader lost track of the sources: routes should use ops"
    );
    let loops = cycles(&edges);
    assert!(
        loops.is_empty(),
        "import loops between weir-server modules (each edge with where it is used):\n{}",
        loops.join("\n")
    );
}

#[test]
fn the_reader_finds_loops_through_groups_super_and_reexports() {
    let file = |p: &str, t: &str| (p.to_string(), t.to_string());
    let files = vec![
        file("lib.rs", "mod a;\nmod b;\nmod c;\npub use c::Thing;\n"),
        file("a/mod.rs", "mod x;\nuse crate::{b::f, c};\n"),
        file("a/x.rs", "use super::super::b; // crate::c in a comment\n"),
        file("b.rs", "fn g() -> crate::Thing { todo!() }\n"),
        file("c.rs", "use crate::a::x;\n"),
    ];
    let loops = cycles(&edges(&files));
    assert_eq!(loops.len(), 2, "{loops:#?}");
    assert!(
        loops
            .iter()
            .any(|l| l.starts_with("a → c (src/a/mod.rs:2) → a")),
        "{loops:#?}"
    );
    assert!(
        loops.iter().any(|l| l.contains("b → c (src/b.rs:1) → a")),
        "{loops:#?}"
    );
    let acyclic = vec![
        file("lib.rs", "mod a;\nmod b;\n"),
        file("a.rs", "use crate::b;\nuse self::inner;\n"),
        file(
            "b.rs",
            "use super::a::X; // with a.rs's use of b: one loop\n",
        ),
    ];
    let one_way = cycles(&edges(&acyclic[..2]));
    assert!(one_way.is_empty(), "{one_way:#?}");
    assert_eq!(cycles(&edges(&acyclic)).len(), 1);
}
