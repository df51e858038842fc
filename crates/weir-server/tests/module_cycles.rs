//! No import loop between the server's modules: read from the sources by
//! `weir_testkit::modules` (which says what counts as a loop).

use weir_testkit::modules;

#[test]
fn no_import_loop_between_server_modules() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = modules::sources(&src).expect("read the server's sources");
    assert!(files.len() > 20, "the server's sources were not found");
    let edges = modules::edges(&files);
    assert!(
        edges
            .iter()
            .any(|e| e.from == ["routes"] && e.to == ["ops"]),
        "the reader lost track of the sources: routes should use ops"
    );
    let loops = modules::cycles(&edges);
    assert!(
        loops.is_empty(),
        "import loops between weir-server modules (each edge with where it is used):\n{}",
        loops.join("\n")
    );
}
