//! No import loop between weir-testkit's modules: read from the sources by `weir_testkit::modules`
//! (which says what counts as a loop).

#[test]
fn no_import_loop_between_testkit_modules() {
    let loops = weir_testkit::modules::import_loops(env!("CARGO_MANIFEST_DIR"), 5);
    assert!(
        loops.is_empty(),
        "import loops between weir-testkit modules (each edge with where it is used):\n{}",
        loops.join("\n")
    );
}
