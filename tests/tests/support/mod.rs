//! What the simulator's integration tests share: SDK clients made from the files the simulator
//! generated and nothing else (the host's environment and `~/.aws` are ignored), trusting only
//! its CA — as the product does with a profile's `ca_bundle`; the Rust SDK does not read that
//! setting itself — and a non-interactive `ssh` to a tunnel's local port.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::path::Path;

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
