//! The simulator's TLS: a certificate authority made fresh for each run, and a server
//! certificate it signs for `localhost`, `127.0.0.1` and `::1`.
//!
//! AWS speaks HTTPS and WSS only, and the product refuses plain text to anything but loopback,
//! so serving TLS by default keeps the product on the code path it takes against AWS: trust
//! comes from a CA bundle (`ca_bundle` in the generated profiles, `AWS_CA_BUNDLE` in the
//! exports), exactly as for users behind a TLS-inspecting proxy. A new CA per run means no key
//! worth stealing ever exists on disk beyond the run; only the CA's certificate is written.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The names the server certificate is valid for: every way to say "this machine".
const SERVER_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// A run's CA certificate (PEM, for clients to trust) and the server configuration it backs.
#[derive(Clone)]
pub struct TlsMaterial {
    ca_pem: String,
    server_config: Arc<ServerConfig>,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial").finish_non_exhaustive()
    }
}

impl TlsMaterial {
    /// Generates a CA and a server certificate signed by it.
    pub fn generate() -> anyhow::Result<TlsMaterial> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.distinguished_name = distinguished_name("bastionless-sim CA (this run only)");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate()?;
        let mut server_params = CertificateParams::new(SERVER_NAMES.map(str::to_owned).to_vec())?;
        server_params.distinguished_name = distinguished_name("localhost");
        server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server_params.signed_by(&server_key, &issuer)?;

        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        // No ALPN: like AWS's endpoints for these clients, the server settles on HTTP/1.1, which
        // is all the control plane speaks and what a WebSocket upgrade needs.
        let server_config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![
                    CertificateDer::from(server_cert.der().to_vec()),
                    CertificateDer::from(ca_cert.der().to_vec()),
                ],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
            )?;
        Ok(TlsMaterial {
            ca_pem: ca_cert.pem(),
            server_config: Arc::new(server_config),
        })
    }

    /// The CA certificate, PEM-encoded: the bundle clients must trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(Arc::clone(&self.server_config))
    }
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}
