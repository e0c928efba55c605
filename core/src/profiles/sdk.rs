//! An `aws-config` SDK configuration per profile.
//!
//! The SDK reads only the valid sections (so one broken profile cannot break the others), and
//! each profile's credentials come from that profile alone, through [`ProfileCredentials`]: the
//! default chain would let `AWS_ACCESS_KEY_ID` in the environment silently replace every
//! profile's identity.
//!
//! The Rust SDK does not read `ca_bundle` / `AWS_CA_BUNDLE` itself, so a profile that names one
//! gets an HTTPS client trusting the OS roots plus that bundle. Profiles that trust the same
//! certificates share one client ([`HttpsClients`]): its connections and TLS sessions.

use super::provider::ProfileCredentials;
use super::{Profile, ProfileCatalog};
use aws_config::{BehaviorVersion, ConfigLoader, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
use std::path::PathBuf;

use super::https::HttpsClients;

impl ProfileCatalog {
    /// The SDK configuration for `profile`: its region, `endpoint_url`, CA bundle and credentials.
    pub async fn sdk_config(&self, profile: &Profile) -> Result<SdkConfig, String> {
        let files = EnvConfigFiles::builder()
            .with_contents(EnvConfigFileKind::Config, self.usable_config.clone())
            .with_contents(
                EnvConfigFileKind::Credentials,
                self.usable_credentials.clone(),
            )
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .profile_files(files)
            .profile_name(&profile.name)
            .region(Region::new(profile.region.clone()))
            .no_credentials();
        // Explicitly, for profiles with no section of their own (discovered SSO roles, the
        // environment).
        if let Some(url) = &profile.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        loader = trusting_bundles(loader, &self.https, &profile.ca_bundles).await?;
        let base = loader.load().await;
        let credentials = ProfileCredentials {
            profile: profile.name.clone(),
            source: profile.credentials.clone(),
            base: base.clone(),
            sso_sessions: self.sso_sessions.clone(),
            sso_cache_dir: self.sso_cache_dir.clone(),
        };
        Ok(base
            .into_builder()
            .credentials_provider(SharedCredentialsProvider::new(credentials))
            .build())
    }
}

/// A configuration with no credentials, for services that are not signed (SSO OIDC and the
/// access portal): `region`, an optional `endpoint_url`, and the OS roots plus `bundles`.
pub(crate) async fn anonymous_sdk_config(
    region: &str,
    endpoint_url: Option<&str>,
    bundles: &[PathBuf],
) -> Result<SdkConfig, String> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .profile_files(
            EnvConfigFiles::builder()
                .with_contents(EnvConfigFileKind::Config, String::new())
                .with_contents(EnvConfigFileKind::Credentials, String::new())
                .build(),
        )
        .region(Region::new(region.to_owned()))
        .no_credentials();
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if !bundles.is_empty() {
        loader = trusting_bundles(loader, &HttpsClients::default(), bundles).await?;
    }
    Ok(loader.load().await)
}

/// `loader` with the HTTPS client of `clients` that trusts the OS roots and the PEM
/// certificates in `bundles`.
async fn trusting_bundles(
    loader: ConfigLoader,
    clients: &HttpsClients,
    bundles: &[PathBuf],
) -> Result<ConfigLoader, String> {
    let mut pems = Vec::new();
    for bundle in bundles {
        let pem = tokio::fs::read(bundle).await.map_err(|e| {
            format!(
                "Cannot read the CA bundle {} (ca_bundle / AWS_CA_BUNDLE): {e}",
                bundle.display()
            )
        })?;
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(format!(
                "The CA bundle {} holds no PEM certificate (ca_bundle / AWS_CA_BUNDLE).",
                bundle.display()
            ));
        }
        pems.push(pem);
    }
    Ok(loader.http_client(clients.trusting(pems)?))
}
