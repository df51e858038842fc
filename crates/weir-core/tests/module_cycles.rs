//! No import loop between weir-core's modules: read from the sources by `weir_testkit::modules`
//! (which says what counts as a loop).

#[test]
fn no_import_loop_between_core_modules() {
    let loops = weir_testkit::modules::import_loops(env!("CARGO_MANIFEST_DIR"), 40);
    assert!(
        loops.is_empty(),
        "import loops between weir-core modules (each edge with where it is used):\n{}",
        loops.join("\n")
    );
}
