use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use custody_fingerprint::{DirAlgorithm as Algo, docker, file, oci};

use crate::cli::{ArtifactType, DirAlgorithm, FingerprintArgs, FingerprintOpts, Global, Output};
use crate::fail::Environment;

pub async fn run(global: &Global, args: FingerprintArgs) -> anyhow::Result<ExitCode> {
    let fp = compute(&args.path, &args.opts).await?;
    match global.output {
        Output::Json => {
            crate::output::json(&serde_json::json!({"fingerprint": fp, "path": args.path}))?
        }
        Output::Table => println!("{fp}"),
        Output::Markdown => return Err(crate::output::markdown_not_here()),
    }
    Ok(ExitCode::SUCCESS)
}

/// The fingerprint of `path` as the options describe it.
pub async fn compute(path: &str, opts: &FingerprintOpts) -> anyhow::Result<String> {
    let Some(kind) = opts.artifact_type else {
        bail!("--artifact-type is required to fingerprint '{path}' (file, dir, oci or docker)");
    };
    if kind == ArtifactType::Docker {
        return docker_digest(path).await;
    }
    if !opts.exclude.is_empty() && kind != ArtifactType::Dir {
        bail!("--exclude only applies to --artifact-type dir");
    }
    let p = PathBuf::from(path);
    let opts = opts.clone();
    let spinner = spinner(path);
    let result = tokio::task::spawn_blocking(move || -> anyhow::Result<String> {
        let digest = match kind {
            ArtifactType::File => file::hash_file(&p)?,
            ArtifactType::Dir => {
                let algo = match opts.dir_algorithm {
                    DirAlgorithm::Dirhash => Algo::Dirhash,
                    DirAlgorithm::Kosli => Algo::Kosli,
                };
                custody_fingerprint::directory(&p, algo, &opts.exclude)?
            }
            ArtifactType::Oci => oci::fingerprint(&p, opts.image_ref.as_deref())?,
            ArtifactType::Docker => unreachable!("handled above"),
        };
        Ok(digest.to_hex())
    })
    .await
    .context("fingerprinting stopped")?;
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    result
}

/// A spinner on a terminal only, shown once hashing takes a moment.
fn spinner(path: &str) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = indicatif::ProgressBar::new_spinner();
    pb.set_message(format!("fingerprinting {path}"));
    pb.enable_steady_tick(Duration::from_millis(120));
    Some(pb)
}

async fn docker_digest(image: &str) -> anyhow::Result<String> {
    let host =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    let d = bollard::Docker::connect_with_defaults().map_err(|e| {
        Environment(format!(
            "cannot connect to the Docker daemon at {host}: {e}"
        ))
    })?;
    let inspect = match d.inspect_image(image).await {
        Ok(i) => i,
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            message,
        }) => {
            bail!("image '{image}' is not in the local Docker Engine: {message}")
        }
        Err(e) => {
            return Err(
                Environment(format!("cannot reach the Docker daemon at {host}: {e}")).into(),
            );
        }
    };
    let digests = inspect.repo_digests.unwrap_or_default();
    match docker::select_repo_digest(image, &digests) {
        Ok(d) => Ok(d),
        // Built here and never pushed: the image ID is what `snapshot
        // docker` records for its containers, so a pipeline that attests
        // it gets provenance on this engine.
        Err(e) => match inspect.id.as_deref().and_then(docker::image_id_hex) {
            Some(id) if digests.is_empty() => {
                eprintln!(
                    "warning: image '{image}' has no repo digest (built here, never pushed or pulled); \
                     its fingerprint is its local image ID, which only snapshots of engines holding this very image match"
                );
                Ok(id)
            }
            _ => Err(e.into()),
        },
    }
}
