//! HTTPS: the certificate and key files, read at start and again on
//! SIGHUP (a renewed certificate is served to new connections; those open
//! keep theirs). A reload that fails keeps the certificate in use.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use arc_swap::ArcSwap;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// Where the server's certificate chain and private key are (PEM).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub struct Tls {
    files: TlsFiles,
    current: ArcSwap<rustls::ServerConfig>,
}

impl Tls {
    /// Reads the files; an error names the file and what is wrong.
    pub fn load(files: TlsFiles) -> anyhow::Result<Arc<Tls>> {
        let config = server_config(&files)?;
        Ok(Arc::new(Tls {
            files,
            current: ArcSwap::from_pointee(config),
        }))
    }

    /// Reads the files again; the new certificate serves new connections.
    pub fn reload(&self) -> anyhow::Result<()> {
        let config = server_config(&self.files)?;
        self.current.store(Arc::new(config));
        Ok(())
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.load_full())
    }

    /// Reloads on every SIGHUP, for as long as the server runs.
    #[cfg(unix)]
    pub fn reload_on_sighup(self: &Arc<Self>) -> anyhow::Result<tokio::task::JoinHandle<()>> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
        let tls = self.clone();
        Ok(tokio::spawn(async move {
            while hup.recv().await.is_some() {
                match tls.reload() {
                    Ok(()) => tracing::info!(
                        cert = %tls.files.cert.display(),
                        "TLS certificate reloaded"
                    ),
                    Err(e) => tracing::error!(
                        error = format!("{e:#}"),
                        "TLS certificate not reloaded; the one in use stays"
                    ),
                }
            }
        }))
    }
}

fn server_config(files: &TlsFiles) -> anyhow::Result<rustls::ServerConfig> {
    let certs = certificates(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        anyhow::anyhow!(
            "--tls-key {}: no PEM private key could be read ({e})",
            files.key.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .with_context(|| {
            format!(
                "--tls-cert {} and --tls-key {} do not make a usable pair",
                files.cert.display(),
                files.key.display()
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("--tls-cert {}: {e}", path.display()))?;
    if certs.is_empty() {
        anyhow::bail!("--tls-cert {}: no PEM certificate in it", path.display());
    }
    Ok(certs)
}
