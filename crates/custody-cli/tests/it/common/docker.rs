//! The private Docker Engine and registry the test command starts
//! (`CUSTODY_TEST_DOCKER_HOST`, `CUSTODY_TEST_REGISTRY`), and the images
//! the tests run: built here from Debian's static busybox, since nothing
//! can be pulled.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

pub struct Docker {
    pub host: String,
    pub registry: String,
}

/// The test daemon, or None (skip) when the test command did not start
/// one; with `CUSTODY_REQUIRE_DOCKER` set, a missing one fails the test.
pub fn docker() -> Option<Docker> {
    match (
        std::env::var("CUSTODY_TEST_DOCKER_HOST"),
        std::env::var("CUSTODY_TEST_REGISTRY"),
    ) {
        (Ok(host), Ok(registry)) => Some(Docker { host, registry }),
        _ => {
            assert!(
                std::env::var("CUSTODY_REQUIRE_DOCKER").is_err(),
                "CUSTODY_REQUIRE_DOCKER is set but CUSTODY_TEST_DOCKER_HOST is not"
            );
            eprintln!("skipping: no test Docker Engine (CUSTODY_TEST_DOCKER_HOST)");
            None
        }
    }
}

/// Images the tests run.
pub struct Images {
    /// Pushed to the registry: it has a repo digest.
    pub pushed: String,
    /// Its repo digest (hex).
    pub pushed_digest: String,
    /// Only local: no repo digest.
    pub local: String,
}

impl Docker {
    pub fn cmd(&self) -> Command {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", &self.host);
        c
    }

    #[track_caller]
    pub fn run(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().expect("docker CLI");
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Builds (once per test binary) a busybox image, pushes one tag of it
    /// to the registry and keeps another local.
    pub fn images(&self) -> &'static Images {
        static IMAGES: OnceLock<Images> = OnceLock::new();
        IMAGES.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("root");
            std::fs::create_dir_all(root.join("bin")).unwrap();
            let busybox = ["/bin/busybox", "/usr/bin/busybox"]
                .into_iter()
                .find(|p| Path::new(p).exists())
                .expect("busybox-static");
            std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
            for tool in ["sh", "sleep"] {
                std::os::unix::fs::symlink("busybox", root.join("bin").join(tool)).unwrap();
            }
            let tar = dir.path().join("image.tar");
            let ok = Command::new("tar")
                .arg("-C")
                .arg(&root)
                .arg("-cf")
                .arg(&tar)
                .arg(".")
                .status()
                .unwrap();
            assert!(ok.success());
            let local = "custody-test/local:1".to_string();
            self.run(&["import", tar.to_str().unwrap(), &local]);
            let pushed = format!("{}/custody-test/busybox:1", self.registry);
            self.run(&["tag", &local, &pushed]);
            self.run(&["push", &pushed]);
            // Importing again gives an image with the same content but no
            // registry identity.
            let local = "custody-test/unpushed:1".to_string();
            self.run(&[
                "import",
                "--change",
                "LABEL custody=unpushed",
                tar.to_str().unwrap(),
                &local,
            ]);
            let digests = self.run(&[
                "image",
                "inspect",
                &pushed,
                "--format",
                "{{range .RepoDigests}}{{.}}{{end}}",
            ]);
            let pushed_digest = digests
                .split_once("@sha256:")
                .map(|(_, h)| h.to_string())
                .expect("a repo digest after push");
            Images {
                pushed,
                pushed_digest,
                local,
            }
        })
    }
}

/// Removes the container when dropped.
pub struct Container<'a> {
    pub docker: &'a Docker,
    pub name: String,
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = self.docker.cmd().args(["rm", "-f", &self.name]).output();
    }
}

impl Docker {
    /// Starts `image` running `sleep seconds` with no network.
    pub fn start(&self, name: &str, image: &str, seconds: u32) -> Container<'_> {
        self.run(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "none",
            image,
            "/bin/sleep",
            &seconds.to_string(),
        ]);
        Container {
            docker: self,
            name: name.to_string(),
        }
    }
}
