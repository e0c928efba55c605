//! What the simulator's integration tests share: SDK clients made from the files the simulator
//! generated and nothing else (the host's environment and `~/.aws` are ignored), trusting only
//! its CA — as the product does with a profile's `ca_bundle`; the Rust SDK does not read that
//! setting itself — and a non-interactive `ssh` to a tunnel's local port.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use bastionless_core::eic::ConnectOptions;
use bastionless_core::ssm::session::{DataChannelConnector, SessionConfig};
use tokio::net::TcpStream;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
use aws_types::sdk_config::SharedHttpClient;
use bastionless_sim::Simulator;

/// An HTTPS client for the SDK that trusts the CA in `ca_bundle` only.
pub fn https_client(ca_bundle: &Path) -> SharedHttpClient {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
    let pem = std::fs::read(ca_bundle).expect("the CA bundle is readable");
    let context = TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_pem_certificate(pem))
        .build()
        .expect("a TLS context");
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context)
        .build_https()
}

/// A configuration loader for `profile` from these files only, trusting `ca_bundle` only.
pub fn loader_for(
    config: &Path,
    credentials: &Path,
    ca_bundle: &Path,
    profile: &str,
) -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .empty_test_environment()
        .http_client(https_client(ca_bundle))
        .profile_files(
            EnvConfigFiles::builder()
                .with_file(EnvConfigFileKind::Config, config)
                .with_file(EnvConfigFileKind::Credentials, credentials)
                .build(),
        )
        .profile_name(profile)
}

/// The loader for one of `sim`'s profiles.
pub fn config_loader(sim: &Simulator, profile: &str) -> aws_config::ConfigLoader {
    loader_for(
        sim.config_file(),
        sim.credentials_file(),
        sim.ca_bundle().expect("the simulator serves TLS"),
        profile,
    )
}

/// The SDK configuration of one of `sim`'s profiles.
pub async fn sdk_config(sim: &Simulator, profile: &str) -> SdkConfig {
    config_loader(sim, profile).load().await
}

/// Runs `ssh -i KEY -o BatchMode=yes USER@127.0.0.1 -p PORT echo ok`; `Ok(stdout)` on success.
pub async fn ssh(key: &Path, user: &str, port: u16) -> Result<String, String> {
    let output = tokio::process::Command::new("ssh")
        .arg("-i")
        .arg(key)
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=10",
            "-p",
        ])
        .arg(port.to_string())
        .arg(format!("{user}@127.0.0.1"))
        .args(["echo", "ok"])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("ssh runs");
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "{}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// A data channel WebSocket, over TLS.
pub type WebSocket = tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>;

/// Opens a StreamUrl over TLS, trusting only the CA in `ca` — no credentials, as the plugin.
pub async fn open_websocket_with_ca(ca: &Path, url: &str) -> WebSocket {
    use rustls_pki_types::pem::PemObject as _;
    let pem = std::fs::read(ca).expect("readable");
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots
            .add(cert.expect("a certificate"))
            .expect("a trust anchor");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let authority = url
        .strip_prefix("wss://")
        .and_then(|rest| rest.split('/').next())
        .expect("a wss:// StreamUrl");
    let tcp = TcpStream::connect(authority)
        .await
        .expect("the data channel accepts");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(
            rustls_pki_types::ServerName::try_from("127.0.0.1").expect("a name"),
            tcp,
        )
        .await
        .expect("the simulator's certificate is trusted");
    tokio_tungstenite::client_async(url, tls)
        .await
        .expect("the upgrade succeeds")
        .0
}

/// The product's Session Manager session settings, trusting the simulator's CA.
pub fn session_config(sim: &Simulator) -> SessionConfig {
    let connector = DataChannelConnector::new(ConnectOptions {
        ca_bundles: vec![sim.ca_bundle().expect("TLS").to_owned()],
        ..ConnectOptions::default()
    })
    .expect("a connector");
    SessionConfig::new(connector)
}
