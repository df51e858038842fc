//! No import loop between weir-deploy's modules: read from the sources by `weir_testkit::modules`
//! (which says what counts as a loop).

#[test]
fn no_import_loop_between_deploy_modules() {
    let loops = weir_testkit::modules::import_loops(env!("CARGO_MANIFEST_DIR"), 16);
    assert!(
        loops.is_empty(),
        "import loops between weir-deploy modules (each edge with where it is used):\n{}",
        loops.join("\n")
    );
}
