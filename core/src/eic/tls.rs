//! The TLS client configuration for EIC WebSockets: OS roots plus the user's extra CA bundles.
//!
//! Verification is never switched off. Users behind TLS-inspecting proxies add their corporate
//! CA the way every AWS tool lets them: `AWS_CA_BUNDLE` or a profile's `ca_bundle` (the caller
//! resolves which and passes paths). Unlike the AWS CLI, which ignores `--ca-bundle` for the
//! WebSocket, we honour it, because that is what such users need.
//!
//! The config is built once per [`super::Connector`] (loading the OS store reads files) and
//! shared by every connection. The crypto provider is chosen explicitly (aws-lc-rs) so that no
//! process-wide default needs installing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::EicError;

/// Builds a client config trusting the OS roots and every certificate in `extra_bundles`.
pub(crate) fn client_config(extra_bundles: &[PathBuf]) -> Result<Arc<ClientConfig>, EicError> {
    let mut roots = RootCertStore::empty();

    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::debug!(%error, "skipping part of the OS certificate store");
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!(added, ignored, "loaded OS root certificates");

    for path in extra_bundles {
        for cert in read_bundle(path)? {
            roots.add(cert).map_err(|e| EicError::CaBundleInvalid {
                path: path.clone(),
                reason: format!("a certificate is not a usable trust anchor ({e})"),
            })?;
        }
    }
    if roots.is_empty() {
        return Err(EicError::NoTrustRoots);
    }

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| EicError::Tls {
            host: "(configuration)".into(),
            source: std::io::Error::other(e),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Reads every `CERTIFICATE` block of a PEM file. A file without one is an error, not a silent
/// no-op: a wrong path or a DER file would otherwise surface later as an untrusted certificate.
fn read_bundle(path: &Path) -> Result<Vec<CertificateDer<'static>>, EicError> {
    let bytes = std::fs::read(path).map_err(|source| EicError::CaBundleUnreadable {
        path: path.to_owned(),
        source,
    })?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| EicError::CaBundleInvalid {
            path: path.to_owned(),
            reason: format!("bad PEM ({e})"),
        })?;
    if certs.is_empty() {
        return Err(EicError::CaBundleInvalid {
            path: path.to_owned(),
            reason: "it holds no certificates".into(),
        });
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write_temp(contents: &[u8]) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(contents).unwrap();
        file
    }

    #[test]
    fn a_missing_bundle_is_an_unreadable_error_naming_the_path() {
        let path = PathBuf::from("/nonexistent/bastionless/ca.pem");
        let err = client_config(std::slice::from_ref(&path)).unwrap_err();
        assert!(matches!(&err, EicError::CaBundleUnreadable { path: p, .. } if *p == path));
        assert!(err.to_string().contains("/nonexistent/bastionless/ca.pem"));
    }

    #[test]
    fn a_bundle_without_certificates_is_invalid() {
        let file = write_temp(b"this is not PEM at all\n");
        let err = client_config(&[file.path().to_owned()]).unwrap_err();
        assert!(matches!(err, EicError::CaBundleInvalid { .. }), "{err}");
    }

    #[test]
    fn a_bundle_with_corrupt_base64_is_invalid() {
        let file = write_temp(
            b"-----BEGIN CERTIFICATE-----\n!!!not base64!!!\n-----END CERTIFICATE-----\n",
        );
        let err = client_config(&[file.path().to_owned()]).unwrap_err();
        assert!(matches!(err, EicError::CaBundleInvalid { .. }), "{err}");
    }

    #[test]
    fn a_bundle_with_a_garbage_certificate_is_invalid() {
        let file = write_temp(
            b"-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
        );
        let err = client_config(&[file.path().to_owned()]).unwrap_err();
        assert!(matches!(err, EicError::CaBundleInvalid { .. }), "{err}");
    }

    #[test]
    fn a_generated_ca_is_accepted() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key).unwrap();
        let file = write_temp(ca.pem().as_bytes());
        let config = client_config(&[file.path().to_owned()]).unwrap();
        assert!(config.alpn_protocols.is_empty(), "the CLI offers no ALPN");
    }
}
