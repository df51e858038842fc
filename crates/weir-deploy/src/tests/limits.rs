//! Tests of `concurrency` and `on_limit`: values, positions of errors, `[defaults]`.

use super::{one_error, with};
use crate::parse;
use std::path::Path;
use weir_core::limits::OnLimit;

#[test]
fn concurrency_and_on_limit_parse_and_inherit() {
    let text = format!(
        "[defaults]\nconcurrency = 3\n{}concurrency = 1\non_limit = \"skip\"\n\n\
         [deployments.other]\ncommand = [\"flows\"]\n",
        with("")
    );
    let file = parse(Path::new("weir.toml"), &text).expect("valid");
    let specs: Vec<_> = file
        .deployments
        .iter()
        .map(|d| (d.spec.concurrency, d.spec.on_limit))
        .collect();
    assert_eq!(
        specs,
        [(Some(1), OnLimit::Skip), (Some(3), OnLimit::Wait)],
        "a deployment's own keys win over [defaults]"
    );
    let plain = parse(Path::new("weir.toml"), &with("")).expect("valid");
    assert_eq!(plain.deployments[0].spec.concurrency, None);
    assert!(plain.deployments[0].spec.on_limit.is_wait());
}

#[test]
fn bad_values_point_at_their_line_and_column() {
    let e = one_error(&with("concurrency = 0"));
    assert!(e.starts_with("weir.toml:4:15:"), "{e}");
    assert!(
        e.contains("out of range") && e.contains("leave it out"),
        "{e}"
    );
    let e = one_error(&with("concurrency = -2"));
    assert!(e.contains("-2 is out of range"), "{e}");
    let e = one_error(&with("concurrency = \"2\""));
    assert!(e.contains("expected a whole number"), "{e}");
    let e = one_error(&with("on_limit = \"drop\""));
    assert!(e.starts_with("weir.toml:4:12:"), "{e}");
    assert!(
        e.contains("\"drop\"") && e.contains("\"wait\" or \"skip\""),
        "{e}"
    );
    let e = one_error(&with("on_limt = \"skip\""));
    assert!(e.contains("did you mean \"on_limit\""), "{e}");
}
