//! No import loop between weir-cli's modules, nor between those of the crates it assembles
//! that cannot check themselves: read from the sources by `weir_testkit::modules` (which says
//! what counts as a loop). weir-agent, weir-client and weir-launcher-ecs are checked here
//! because `weir-testkit` (with its `fargate` feature) depends on them, so a dev-dependency
//! of theirs on it would be a cycle.

fn assert_no_loops(crate_dir: &str, name: &str, at_least: usize) {
    let loops = weir_testkit::modules::import_loops(crate_dir, at_least);
    assert!(
        loops.is_empty(),
        "import loops between {name} modules (each edge with where it is used):\n{}",
        loops.join("\n")
    );
}

#[test]
fn no_import_loop_between_cli_modules() {
    assert_no_loops(env!("CARGO_MANIFEST_DIR"), "weir-cli", 18);
}

#[test]
fn no_import_loop_between_agent_modules() {
    assert_no_loops(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../weir-agent"),
        "weir-agent",
        20,
    );
}

#[test]
fn no_import_loop_between_client_modules() {
    assert_no_loops(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../weir-client"),
        "weir-client",
        3,
    );
}

#[test]
fn no_import_loop_between_ecs_launcher_modules() {
    assert_no_loops(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../weir-launcher-ecs"),
        "weir-launcher-ecs",
        8,
    );
}
