//! `weir-bench launch --launcher docker`: run created → first line of user code for runs
//! launched as containers by an idle agent, beside bare `docker run`s of the same image doing
//! the same work, measured alternately in the same session so both see the same machine.
//!
//! The image is built from the binaries next to `weir-bench` by `scripts/build-images.sh`
//! (tagged `weir-bench-weir-example-flows:b<pid>`, removed at the end). User code marks its start
//! in a file on a mounted directory (`BENCH_MARK_FILE`, see the example flows' witness hook).
//! Both containers run with an init process on the host network, as the agent runs them for a
//! loopback server.

use crate::launch::{now_us, percentiles, wait_finished, wait_mark};
use crate::procs::{self, Proc, round};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use weir_client::Client;
use weir_core::api::{CreateFlowRun, DeploymentSpec};
use weir_core::infrastructure::{DockerInfrastructure, Infrastructure, PullPolicy};

/// The flows binary's path inside the image.
const FLOWS: &str = "/usr/local/bin/example-flows";

/// The benchmark's images, removed when dropped.
struct Images {
    tag: String,
}

impl Images {
    fn flows(&self) -> String {
        format!("weir-bench-weir-example-flows:{}", self.tag)
    }
}

impl Drop for Images {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rmi", "-f"])
            .arg(format!("weir-bench-weir:{}", self.tag))
            .arg(self.flows())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn build_images() -> Result<Images> {
    let engine = Command::new("docker")
        .args(["version", "--format", "{{.Server.APIVersion}}"])
        .output();
    if !engine.is_ok_and(|o| o.status.success()) {
        bail!("no Docker engine answers (`docker version` failed): start one, or set DOCKER_HOST");
    }
    let dir = procs::sibling("weir")?
        .parent()
        .context("weir has no directory")?
        .to_path_buf();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-images.sh");
    let images = Images {
        tag: format!("b{}", std::process::id()),
    };
    let out = Command::new(&script)
        .arg("--from")
        .arg(&dir)
        .args(["--prefix", "weir-bench", "--tag", &images.tag])
        .output()
        .with_context(|| format!("cannot run {}", script.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(images)
}

/// Measures `runs` container runs through Weir and as many bare `docker run`s.
pub fn run(runs: u32) -> Result<Value> {
    let images = build_images()?;
    let image = images.flows();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let home = tempfile::tempdir()?;
    // Containers run as the image's unprivileged user: the marks directory is open to it.
    let marks_dir = home.path().join("marks");
    std::fs::create_dir(&marks_dir)?;
    std::fs::set_permissions(&marks_dir, std::fs::Permissions::from_mode(0o777))?;
    let server = procs::start_server(home.path(), None, &[])?;
    let _agent = Proc {
        child: Command::new(procs::sibling("weir")?)
            .args(["agent", "--queue", "bench", "--limit", "4"])
            .args(["--launchers", "docker"])
            .env("WEIR_API_URL", &server.url)
            .env("WEIR_API_KEY", &server.key)
            .env("WEIR_HOME", home.path().join("agent-home"))
            .env("WEIR_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start weir agent")?,
    };
    let client = Client::new(&server.url, Some(server.key.clone()))?;
    let weir_marks = marks_dir.join("weir.log");
    let mount = marks_dir.display().to_string();
    let mut infra = DockerInfrastructure::new(&image);
    infra.pull = PullPolicy::Never;
    infra.volumes = vec![format!("{mount}:{mount}")];
    let spec = DeploymentSpec {
        flow: "chain".into(),
        command: vec![FLOWS.into()],
        work_queue: "bench".into(),
        parameters: serde_json::from_value(json!({"n": 1}))?,
        infrastructure: Infrastructure::Docker(infra),
        env: [(
            "BENCH_MARK_FILE".to_string(),
            weir_marks.display().to_string(),
        )]
        .into(),
        ..Default::default()
    };
    rt.block_on(client.upsert_deployment("bench", "chain", &spec, false))?;

    let (mut weir, mut bare) = (Vec::new(), Vec::new());
    // One warm-up of each (page cache, agent registration) not counted.
    for i in 0..=runs {
        let t0 = now_us();
        let run = rt.block_on(client.create_flow_run(&CreateFlowRun {
            project: Some("bench".into()),
            deployment: Some("chain".into()),
            ..Default::default()
        }))?;
        let id = run.id.to_string();
        let mark = wait_mark(&weir_marks, |rid| rid == id)
            .with_context(|| format!("run {id} did not start within 30 s"))?;
        wait_finished(&rt, &client, run.id, Duration::from_secs(60))?;
        let docker = docker_run(&image, &mount, &marks_dir.join(format!("bare-{i}.log")))?;
        if i > 0 {
            weir.push(mark.saturating_sub(t0) as f64 / 1000.0);
            bare.push(docker);
        }
    }
    let (weir, bare) = (percentiles(weir), percentiles(bare));
    let overhead = |p: f64| round((weir(p) / bare(p).max(0.001) - 1.0) * 100.0, 1);
    Ok(json!({
        "launcher": "docker",
        "launch_runs": runs,
        "launch_p50_ms": weir(0.5),
        "launch_p99_ms": weir(0.99),
        "launch_max_ms": weir(1.0),
        "docker_run_p50_ms": bare(0.5),
        "docker_run_p99_ms": bare(0.99),
        "docker_run_max_ms": bare(1.0),
        "overhead_p50_pct": overhead(0.5),
        "overhead_p99_pct": overhead(0.99),
    }))
}

/// One bare `docker run` of the same flow in the same image: milliseconds from the command
/// to the first line of user code; waits for the container to end.
fn docker_run(image: &str, mount: &str, marks: &Path) -> Result<f64> {
    let t0 = now_us();
    let mut child = Command::new("docker")
        .args(["run", "--rm", "--init", "--network", "host"])
        .args(["-v", &format!("{mount}:{mount}")])
        .args(["-e", &format!("BENCH_MARK_FILE={}", marks.display())])
        .arg(image)
        .args([FLOWS, "run", "chain", "--params-json", r#"{"n": 1}"#])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot run docker")?;
    let mark = wait_mark(marks, |_| true);
    let status = child.wait()?;
    let mark = mark.context("the bare `docker run` did not reach user code within 30 s")?;
    if !status.success() {
        bail!("the bare `docker run` of {image} failed: {status}");
    }
    Ok(mark.saturating_sub(t0) as f64 / 1000.0)
}
