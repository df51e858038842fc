//! The container tests' images and engine check, shared by the Docker and ECS suites.

/// Whether a Docker engine answers; when none does, the container tests say so and skip.
pub fn engine() -> bool {
    let ok = std::process::Command::new("docker")
        .args(["version", "--format", "{{.Server.APIVersion}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIPPED: no Docker engine answers (`docker version` failed)");
    }
    ok
}

/// This test process's images, `weir-test-weir:tPID` and `weir-test-weir-example-flows:tPID`,
/// built from the binaries under test by scripts/build-images.sh (layers are shared, so each
/// build after the first is quick) and removed when dropped.
pub struct Images {
    tag: String,
}

/// Held while building or removing test images: the legacy builder's cache images are shared
/// by every tag, and removing one tag while another build uses its cache breaks that build.
fn image_lock() -> std::fs::File {
    let path = std::env::temp_dir().join("weir-test-images.lock");
    let file = std::fs::File::create(&path).expect("create the image lock file");
    file.lock().expect("lock the image lock file");
    file
}

impl Images {
    /// Builds this process's images (panics with the script's stderr when it fails).
    pub fn build() -> Images {
        let _lock = image_lock();
        let tag = format!("t{}", std::process::id());
        let dir = super::weir_bin().parent().expect("bin dir").to_path_buf();
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-images.sh");
        let out = std::process::Command::new(script)
            .args(["--from", &dir.display().to_string()])
            .args(["--prefix", "weir-test", "--tag", &tag])
            .output()
            .expect("run build-images.sh");
        let images = Images { tag };
        assert!(
            out.status.success(),
            "build-images.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        images
    }

    /// The example flows image (with `weir exec`, `sh` and `sleep`).
    pub fn flows(&self) -> String {
        format!("weir-test-weir-example-flows:{}", self.tag)
    }
}

impl Drop for Images {
    fn drop(&mut self) {
        let _lock = image_lock();
        let _ = std::process::Command::new("docker")
            .args(["rmi", "-f"])
            .arg(format!("weir-test-weir:{}", self.tag))
            .arg(self.flows())
            .output();
    }
}
