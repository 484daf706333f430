//! TLS for node links (rustls), mutual: both ends present a certificate signed by the
//! cluster's CA, so a host without one cannot even finish the handshake, let alone try a
//! cookie. The cookie check still runs inside the encrypted link.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// The TLS settings of a node: how it accepts and how it connects.
#[derive(Clone)]
pub struct Tls {
    pub(crate) acceptor: tokio_rustls::TlsAcceptor,
    pub(crate) connector: tokio_rustls::TlsConnector,
    /// The name every node's certificate carries, checked when connecting.
    pub(crate) server_name: ServerName<'static>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// Why TLS settings could not be built.
#[derive(Debug, thiserror::Error)]
#[error("TLS setup: {0}")]
pub struct TlsError(String);

impl Tls {
    /// Mutual TLS from PEM files: this node's certificate chain and private key, and the
    /// CA that signs every node's certificate. `server_name` is the DNS name in the node
    /// certificates (one name for the whole cluster is fine).
    pub fn from_pem_files(
        certificate_chain: &Path,
        private_key: &Path,
        ca: &Path,
        server_name: &str,
    ) -> Result<Self, TlsError> {
        let read = |what: &str, path: &Path, error: &dyn fmt::Display| {
            TlsError(format!("{what} {}: {error}", path.display()))
        };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(certificate_chain)
            .map_err(|e| read("certificate chain", certificate_chain, &e))?
            .collect::<Result<_, _>>()
            .map_err(|e| read("certificate chain", certificate_chain, &e))?;
        let key = PrivateKeyDer::from_pem_file(private_key)
            .map_err(|e| read("private key", private_key, &e))?;
        let mut roots = RootCertStore::empty();
        for certificate in
            CertificateDer::pem_file_iter(ca).map_err(|e| read("CA certificate", ca, &e))?
        {
            let certificate = certificate.map_err(|e| read("CA certificate", ca, &e))?;
            roots
                .add(certificate)
                .map_err(|e| read("CA certificate", ca, &e))?;
        }
        Self::new(chain, key, roots, server_name)
    }

    /// Mutual TLS from parsed parts.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        roots: RootCertStore,
        server_name: &str,
    ) -> Result<Self, TlsError> {
        let roots = Arc::new(roots);
        // Named, not left to rustls's process default: a program that also builds rustls
        // with aws-lc (as ractor_cluster's dependencies do, unpatched) has two providers
        // and no default.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| TlsError(format!("client verifier: {e}")))?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(format!("protocol versions: {e}")))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| TlsError(format!("certificate and key: {e}")))?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(format!("protocol versions: {e}")))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| TlsError(format!("client certificate: {e}")))?;
        let server_name = ServerName::try_from(server_name.to_owned())
            .map_err(|e| TlsError(format!("server name {server_name:?}: {e}")))?;
        Ok(Self {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server)),
            connector: tokio_rustls::TlsConnector::from(Arc::new(client)),
            server_name,
        })
    }
}
