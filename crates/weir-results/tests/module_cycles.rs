//! No import loop between weir-results's modules: read from the sources by `weir_testkit::modules`
//! (which says what counts as a loop).

#[test]
fn no_import_loop_between_results_modules() {
    let loops = weir_testkit::modules::import_loops(env!("CARGO_MANIFEST_DIR"), 3);
    assert!(
        loops.is_empty(),
        "import loops between weir-results modules (each edge with where it is used):\n{}",
        loops.join("\n")
    );
}
