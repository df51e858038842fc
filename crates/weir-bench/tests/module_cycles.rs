//! No import loop between weir-bench's modules: read from the sources by `weir_testkit::modules`
//! (which says what counts as a loop).

#[test]
fn no_import_loop_between_bench_modules() {
    let loops = weir_testkit::modules::import_loops(env!("CARGO_MANIFEST_DIR"), 8);
    assert!(
        loops.is_empty(),
        "import loops between weir-bench modules (each edge with where it is used):\n{}",
        loops.join("\n")
    );
}
