//! Import loops between a crate's modules, read from its sources: the check each crate's
//! `tests/module_cycles.rs` runs (like the store's guard against state names in SQL).
//!
//! Every `crate::…`, `super::…` and `self::…` path in a file is a dependency of the file's
//! module on the module the path names (the longest prefix that is a module; the root's
//! `pub use` re-exports count as the module they come from). A dependency between two
//! modules that share a parent is an edge between the parent's children that contain them
//! (`ui::pages` → `routes::runs` is `ui` → `routes`), and each parent's children must form an
//! acyclic graph. A module using its own ancestors or descendants is not a loop.
//!
//! The reader is textual: it skips `//` comments but reads paths inside string literals too,
//! and a name re-exported by a module other than the crate root counts as a use of that
//! module, not of the one it comes from.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A module as its path from the crate root (`["ui", "pages"]`; the root is `[]`).
pub type Module = Vec<String>;

/// One dependency between siblings, with where it was seen.
#[derive(Debug, Clone)]
pub struct Edge {
    /// The sibling that uses the other.
    pub from: Module,
    /// The sibling whose items `from` uses.
    pub to: Module,
    /// Where the use was seen: `src/file.rs:line`.
    pub at: String,
}

fn module_of(file: &str) -> Module {
    let file = file.strip_suffix(".rs").unwrap_or(file);
    let mut parts: Vec<String> = file.split('/').map(String::from).collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
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
pub fn edges(files: &[(String, String)]) -> Vec<Edge> {
    let modules: BTreeSet<Module> = files.iter().map(|(f, _)| module_of(f)).collect();
    // `pub use a::B;` at the root: `crate::B` is a use of `a`.
    let mut reexports: BTreeMap<String, String> = BTreeMap::new();
    for (file, text) in files {
        if file != "lib.rs" && file != "main.rs" {
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
pub fn cycles(edges: &[Edge]) -> Vec<String> {
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

/// Every `.rs` file under a crate's `src/` as `(path under src/, text)`, in path order.
/// `src/bin/` is left out: each file there is a crate of its own.
pub fn sources(src: &Path) -> std::io::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    read_dir(src, "", &mut out)?;
    Ok(out)
}

fn read_dir(dir: &Path, under: &str, out: &mut Vec<(String, String)>) -> std::io::Result<()> {
    let mut entries = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()?;
    entries.sort();
    for path in entries {
        let Some(name) = path.file_name().map(|n| n.to_string_lossy().to_string()) else {
            continue;
        };
        let rel = if under.is_empty() {
            name.clone()
        } else {
            format!("{under}/{name}")
        };
        if path.is_dir() {
            if rel != "bin" {
                read_dir(&path, &rel, out)?;
            }
        } else if name.ends_with(".rs") {
            out.push((rel, std::fs::read_to_string(&path)?));
        }
    }
    Ok(())
}

/// The import loops of the crate whose manifest directory is `crate_dir` (pass
/// `env!("CARGO_MANIFEST_DIR")`), each as `a → b (where) → a (where)`; empty when its modules
/// form no loop. Panics when the sources cannot be read or there are fewer than `at_least`
/// files, so a test on a moved crate cannot pass by reading nothing.
pub fn import_loops(crate_dir: &str, at_least: usize) -> Vec<String> {
    let src = Path::new(crate_dir).join("src");
    let files = sources(&src).unwrap_or_else(|e| panic!("cannot read {}: {e}", src.display()));
    assert!(
        files.len() >= at_least,
        "{crate_dir}/src has {} source files, expected at least {at_least}: the reader lost track of the sources",
        files.len()
    );
    cycles(&edges(&files))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_binary_is_rooted_at_main_and_its_bin_directory_is_left_out() {
        assert_eq!(module_of("main.rs"), Module::new());
        assert_eq!(module_of("commands/mod.rs"), vec!["commands".to_string()]);
        let files = vec![
            (
                "main.rs".to_string(),
                "mod a;\nmod b;\npub use a::Thing;\n".to_string(),
            ),
            ("a.rs".to_string(), "use crate::b::f;\n".to_string()),
            (
                "b.rs".to_string(),
                "fn f() -> crate::Thing { todo!() }\n".to_string(),
            ),
        ];
        assert_eq!(
            cycles(&edges(&files)).len(),
            1,
            "main.rs's re-export makes b use a"
        );
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::create_dir_all(dir.path().join("bin")).expect("create bin/");
        std::fs::write(dir.path().join("main.rs"), "mod a;\n").expect("write main.rs");
        std::fs::write(dir.path().join("bin/other.rs"), "use crate::a;\n").expect("write bin");
        let read = sources(dir.path()).expect("read the sources");
        let names: Vec<&str> = read.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(names, ["main.rs"]);
    }
}
