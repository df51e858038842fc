//! The environment a launched process gets: the agent's own minus its credentials, plus the
//! spec's. Its own test binary with a single test, because it changes the process
//! environment.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;
use weir_agent::launcher::{ExitStatus, LaunchSpec, Launcher, ProcessLauncher};

#[test]
fn child_gets_spec_env_but_never_the_agents_key() {
    for (name, value) in [
        ("WEIR_API_KEY", "agent-secret-key"),
        ("WEIR_API_KEY_FILE", "/etc/agent.key"),
        ("WEIR_AGENT_NAME", "agent-1"),
        ("WEIR_API_URL", "http://server:4200"),
        ("WEIR_TEST_OVERRIDDEN", "from-agent"),
        ("AWS_SECRET_ACCESS_KEY", "agent-cloud-credential"),
        ("PASSED_ON_PURPOSE", "yes"),
    ] {
        // SAFETY: this is the only test in this binary and it runs before any other thread
        // of ours (the runtime is built below), so nothing reads the environment concurrently.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var(name, value)
        };
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let spec = LaunchSpec {
        argv: vec!["/bin/sh".into(), "-c".into(), "env | sort".into()],
        env: BTreeMap::from([
            ("WEIR_FLOW_RUN_ID".to_owned(), "run-1".to_owned()),
            ("WEIR_TEST_OVERRIDDEN".to_owned(), "from-spec".to_owned()),
        ]),
        ..LaunchSpec::default()
    };
    let (lines, status) = runtime.block_on(async {
        let launcher = ProcessLauncher::new().with_pass_env(["PASSED_ON_*".to_string()]);
        let mut launched = launcher.launch(spec).await.unwrap();
        tokio::time::timeout(Duration::from_secs(20), async {
            let mut lines = Vec::new();
            while let Some(line) = launched.output.recv().await {
                lines.push(line.text);
            }
            (lines, launched.wait().await)
        })
        .await
        .unwrap()
    });
    assert_eq!(status, ExitStatus::Code(0));
    let has = |l: &str| lines.iter().any(|x| x == l);
    assert!(has("WEIR_FLOW_RUN_ID=run-1"), "{lines:?}");
    assert!(has("WEIR_TEST_OVERRIDDEN=from-spec"), "{lines:?}");
    assert!(has("WEIR_API_URL=http://server:4200"), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.starts_with("PATH=")),
        "inherited PATH missing"
    );
    assert!(
        has("PASSED_ON_PURPOSE=yes"),
        "an explicitly passed variable: {lines:?}"
    );
    for withheld in [
        "WEIR_API_KEY=",
        "WEIR_API_KEY_FILE=",
        "WEIR_AGENT_NAME=",
        "AWS_SECRET_ACCESS_KEY=",
    ] {
        assert!(
            !lines.iter().any(|l| l.starts_with(withheld)),
            "{withheld} leaked: {lines:?}"
        );
    }
    assert!(!lines.iter().any(|l| l.contains("agent-secret-key")));
}
