//! `weir init [--lang python|rust] DIR`: a flows repository that builds, tests and deploys as
//! it is. The Dockerfile, the image context script and the CI workflows are the deploy kit's
//! own files (`deploy/`), embedded at build time, so the scaffold and the kit cannot drift.

use crate::cli::InitLang;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const ROOTFS: &str = include_str!("../../../../deploy/docker/rootfs.sh");
const GITHUB: &str = include_str!("../../../../deploy/ci/github-actions.yml");
const BUILDSPEC: &str = include_str!("../../../../deploy/ci/buildspec.yml");
const PY_DOCKERFILE: &str = include_str!("../../../../deploy/docker/flows-python.Dockerfile");
const RUST_DOCKERFILE: &str = include_str!("../../../../deploy/docker/flows-rust.Dockerfile");

const PY_FLOW: &str = include_str!("../../templates/init/python/hello.py");
const PY_TEST: &str = include_str!("../../templates/init/python/test_hello.py");
const PY_TOML: &str = include_str!("../../templates/init/python/weir.toml");
const PY_README: &str = include_str!("../../templates/init/python/README.md");
const RUST_CARGO: &str = include_str!("../../templates/init/rust/Cargo.toml");
const RUST_MAIN: &str = include_str!("../../templates/init/rust/main.rs");
const RUST_TEST: &str = include_str!("../../templates/init/rust/test_flows.rs");
const RUST_TOML: &str = include_str!("../../templates/init/rust/weir.toml");
const RUST_README: &str = include_str!("../../templates/init/rust/README.md");

/// The SDK crate of the checkout this binary was built from.
const THIS_CHECKOUT_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../weir");

/// The repository's files: path and content.
fn files(lang: InitLang, name: &str, weir_path: &Path) -> Vec<(&'static str, String)> {
    let fill = |t: &str| {
        t.replace("{name}", name)
            .replace("{weir_path}", &weir_path.display().to_string())
    };
    let mut v = vec![
        ("scripts/rootfs.sh", ROOTFS.to_string()),
        (".github/workflows/deploy.yml", GITHUB.to_string()),
        ("buildspec.yml", BUILDSPEC.to_string()),
        (
            ".gitignore",
            "target/\n__pycache__/\n.weir/\nbuild/\n".to_string(),
        ),
    ];
    match lang {
        InitLang::Python => v.extend([
            ("flows/hello.py", PY_FLOW.to_string()),
            ("tests/test_hello.py", PY_TEST.to_string()),
            ("weir.toml", PY_TOML.to_string()),
            ("Dockerfile", PY_DOCKERFILE.to_string()),
            ("README.md", fill(PY_README)),
        ]),
        InitLang::Rust => v.extend([
            ("Cargo.toml", fill(RUST_CARGO)),
            ("src/main.rs", RUST_MAIN.to_string()),
            ("tests/flows.rs", RUST_TEST.to_string()),
            ("weir.toml", RUST_TOML.to_string()),
            ("Dockerfile", RUST_DOCKERFILE.to_string()),
            ("README.md", fill(RUST_README)),
        ]),
    }
    v
}

/// A package name from the directory's name: lowercase letters, digits and `-`.
fn package_name(dir: &Path) -> String {
    let raw = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let name: String = raw
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let name = name.trim_matches('-').to_string();
    match name.chars().next() {
        Some(c) if c.is_ascii_lowercase() => name,
        _ => format!("flows-{name}").trim_end_matches('-').to_string(),
    }
}

/// `weir init`.
pub fn init(dir: &Path, lang: InitLang, weir_path: Option<&Path>) -> Result<ExitCode> {
    if dir.exists()
        && std::fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        eprintln!(
            "{} exists and is not empty: give a new directory (nothing was written)",
            dir.display()
        );
        return Ok(ExitCode::from(2));
    }
    let weir_path = match (lang, weir_path) {
        (InitLang::Rust, given) => {
            let path = given.map_or_else(|| PathBuf::from(THIS_CHECKOUT_SDK), Path::to_path_buf);
            let sdk = if path.join("Cargo.toml").exists() && path.join("src/lib.rs").exists() {
                Some(path.clone())
            } else {
                Some(path.join("crates/weir")).filter(|p| p.join("src/lib.rs").exists())
            };
            match sdk.and_then(|p| p.canonicalize().ok()) {
                Some(p) => p,
                None => {
                    eprintln!(
                        "{}: not Weir's SDK crate or a Weir checkout: pass --weir-path <checkout> \
                         (nothing was written)",
                        path.display()
                    );
                    return Ok(ExitCode::from(2));
                }
            }
        }
        (InitLang::Python, _) => PathBuf::new(),
    };
    let name = package_name(dir);
    for (rel, text) in files(lang, &name, &weir_path) {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        if rel.ends_with(".sh") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("cannot make {} executable", path.display()))?;
        }
        println!("created {}", path.display());
    }
    let next = match lang {
        InitLang::Python => "python3 -m weir flows run hello && python3 -m pytest tests",
        InitLang::Rust => "cargo test && cargo build --release",
    };
    println!(
        "\nnext: cd {} && {next}; then `weir deploy --plan`. For AWS, see docs/aws.md of the \
         Weir repository (the Terraform module deploy/terraform/modules/weir).",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
