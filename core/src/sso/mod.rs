//! IAM Identity Center (SSO): sessions, the token cache shared with the AWS CLI, token refresh,
//! device-authorization sign-in, and credentials from the access portal.
//!
//! A sign-in belongs to an SSO session (`[sso-session NAME]`, or a legacy profile's
//! `sso_start_url`), not to a profile: every profile of a session shares one token, so an
//! expired session is reported once, as "sign-in needed" for that session.

mod browser;
mod cache;
mod discovery;
mod portal;
mod signin;
mod token;

pub use browser::open_in_browser;
pub use cache::{CachedToken, cache_file};
pub use discovery::{DiscoveredRole, DiscoveredSession, Discovery};
pub use portal::{AccountRole, list_account_roles, role_credentials};
pub use signin::{DeviceCode, sign_in};
pub use token::{SsoError, access_token};

use std::path::PathBuf;

/// Which SSO session a profile signs in through; also the token cache's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SsoSessionKey {
    /// `sso_session = NAME` and its `[sso-session NAME]` section.
    Named(String),
    /// A profile's own `sso_start_url` and `sso_region` (the AWS CLI's legacy form, no refresh).
    Legacy { start_url: String, region: String },
}

impl SsoSessionKey {
    /// What the user calls it: the session name, or the start URL.
    pub fn label(&self) -> &str {
        match self {
            SsoSessionKey::Named(name) => name,
            SsoSessionKey::Legacy { start_url, .. } => start_url,
        }
    }
}

/// Everything needed to sign in to and refresh one SSO session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoSession {
    pub key: SsoSessionKey,
    pub start_url: String,
    /// The region of the IAM Identity Center instance: where OIDC and the portal are called.
    pub region: String,
    /// `sso_registration_scopes`; `sso:account:access` when unset, which earns refresh tokens.
    pub scopes: Vec<String>,
    /// `endpoint_url` for the OIDC and portal calls (the section's own, else that of the first
    /// profile using the session): custom endpoints and the simulator.
    pub endpoint_url: Option<String>,
    /// Extra CAs to trust for those calls (`ca_bundle`, `AWS_CA_BUNDLE`).
    pub ca_bundles: Vec<PathBuf>,
}

impl SsoSession {
    /// The session a legacy profile's `sso_start_url` and `sso_region` describe.
    pub fn legacy(start_url: &str, region: &str) -> Self {
        SsoSession {
            key: SsoSessionKey::Legacy {
                start_url: start_url.to_owned(),
                region: region.to_owned(),
            },
            start_url: start_url.to_owned(),
            region: region.to_owned(),
            scopes: Vec::new(),
            endpoint_url: None,
            ca_bundles: Vec::new(),
        }
    }

    /// The SDK configuration OIDC and portal calls use: the session's region, endpoint and CAs,
    /// and no credentials (neither service is signed).
    pub async fn sdk_config(&self) -> Result<aws_config::SdkConfig, String> {
        crate::profiles::anonymous_sdk_config(
            &self.region,
            self.endpoint_url.as_deref(),
            &self.ca_bundles,
        )
        .await
    }
}
