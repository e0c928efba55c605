//! Credentials for one profile, by its [`CredentialSource`]: static keys, the environment, the
//! instance or container endpoints (through `aws-config`'s providers), `credential_process`
//! (`aws-config`'s runner), role chains through STS `AssumeRole` (asking for an MFA code when the
//! profile names an `mfa_serial`), and IAM Identity Center.
//!
//! Role and SSO credentials are kept per process until five minutes before they expire, so a
//! refresh of the host list does not assume every role again, and an MFA code is asked once
//! per session rather than once per refresh.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{self, ProvideCredentials, error::CredentialsError, future};

use super::chain::CredentialSource;
use crate::sso::SsoSession;

/// Asks the user for the current code of an MFA device. The CLI asks on the terminal; the
/// engine shows a prompt in the app and waits for `Command::SupplyMfaCode`.
pub trait MfaPrompt: Send + Sync {
    fn code(
        &self,
        profile: &str,
        serial: &str,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send>>;
}

/// The prompt set with [`set_mfa_prompt`] (the CLI's terminal), and the engine's default.
static MFA_PROMPT: RwLock<Option<Arc<dyn MfaPrompt>>> = RwLock::new(None);
static DEFAULT_MFA_PROMPT: RwLock<Option<Arc<dyn MfaPrompt>>> = RwLock::new(None);

/// Sets how MFA codes are asked for, for the rest of the process (the CLI: on the terminal).
pub fn set_mfa_prompt(prompt: Arc<dyn MfaPrompt>) {
    *MFA_PROMPT.write().unwrap_or_else(|e| e.into_inner()) = Some(prompt);
}

/// Sets the prompt used when [`set_mfa_prompt`] was not called (the engine's, through the app).
pub fn set_default_mfa_prompt(prompt: Arc<dyn MfaPrompt>) {
    *DEFAULT_MFA_PROMPT
        .write()
        .unwrap_or_else(|e| e.into_inner()) = Some(prompt);
}

fn mfa_prompt() -> Option<Arc<dyn MfaPrompt>> {
    let explicit = MFA_PROMPT.read().unwrap_or_else(|e| e.into_inner()).clone();
    explicit.or_else(|| {
        DEFAULT_MFA_PROMPT
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    })
}

/// Credentials are renewed this long before they expire.
const EXPIRY_MARGIN: Duration = Duration::from_secs(5 * 60);

/// Assumed-role and SSO credentials by (profile, source), for the life of the process.
static CACHE: LazyLock<Mutex<HashMap<(String, u64), Credentials>>> =
    LazyLock::new(Default::default);

/// The credentials provider of one profile.
#[derive(Debug, Clone)]
pub struct ProfileCredentials {
    pub(super) profile: String,
    pub(super) source: CredentialSource,
    /// The profile's own configuration (region, endpoint, CAs) without credentials: what STS
    /// calls in a role chain use.
    pub(super) base: SdkConfig,
    pub(super) sso_sessions: Arc<Vec<SsoSession>>,
    pub(super) sso_cache_dir: PathBuf,
}

impl ProvideCredentials for ProfileCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.credentials())
    }
}

impl ProfileCredentials {
    async fn credentials(&self) -> provider::Result {
        let cacheable = matches!(
            self.source,
            CredentialSource::AssumeRole { .. } | CredentialSource::Sso { .. }
        );
        let key = (self.profile.clone(), self.fingerprint());
        if cacheable
            && let Some(cached) = CACHE.lock().unwrap_or_else(|e| e.into_inner()).get(&key)
            && cached
                .expiry()
                .is_some_and(|at| at > SystemTime::now() + EXPIRY_MARGIN)
        {
            return Ok(cached.clone());
        }
        let credentials = self.resolve(&self.source).await?;
        if cacheable {
            CACHE
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key, credentials.clone());
        }
        Ok(credentials)
    }

    fn resolve<'a>(
        &'a self,
        source: &'a CredentialSource,
    ) -> Pin<Box<dyn Future<Output = provider::Result> + Send + 'a>> {
        Box::pin(async move {
            match source {
                CredentialSource::Static {
                    access_key_id,
                    secret_access_key,
                    session_token,
                } => Ok(Credentials::new(
                    access_key_id,
                    &secret_access_key.0,
                    session_token.as_ref().map(|t| t.0.clone()),
                    None,
                    "config file",
                )),
                CredentialSource::Environment => {
                    aws_config::environment::EnvironmentVariableCredentialsProvider::new()
                        .provide_credentials()
                        .await
                }
                CredentialSource::InstanceMetadata => {
                    aws_config::imds::credentials::ImdsCredentialsProvider::builder()
                        .build()
                        .provide_credentials()
                        .await
                }
                CredentialSource::EcsContainer => {
                    aws_config::ecs::EcsCredentialsProvider::builder()
                        .build()
                        .provide_credentials()
                        .await
                }
                CredentialSource::Process { command } => {
                    aws_config::credential_process::CredentialProcessProvider::new(
                        command.0.clone(),
                    )
                    .provide_credentials()
                    .await
                }
                CredentialSource::AssumeRole {
                    role_arn,
                    source,
                    mfa_serial,
                    role_session_name,
                    external_id,
                    duration_seconds,
                } => {
                    let base = self.resolve(source).await?;
                    self.assume_role(
                        base,
                        role_arn,
                        mfa_serial.as_deref(),
                        role_session_name.as_deref(),
                        external_id.as_deref(),
                        *duration_seconds,
                    )
                    .await
                }
                CredentialSource::Sso {
                    session,
                    account_id,
                    role_name,
                } => {
                    let session = self
                        .sso_sessions
                        .iter()
                        .find(|s| &s.key == session)
                        .ok_or_else(|| {
                            CredentialsError::not_loaded(format!(
                                "SSO session `{}` is not configured",
                                session.label()
                            ))
                        })?;
                    crate::sso::role_credentials(
                        session,
                        &self.sso_cache_dir,
                        account_id,
                        role_name,
                    )
                    .await
                    .map_err(CredentialsError::provider_error)
                }
            }
        })
    }

    async fn assume_role(
        &self,
        base: Credentials,
        role_arn: &str,
        mfa_serial: Option<&str>,
        session_name: Option<&str>,
        external_id: Option<&str>,
        duration_seconds: Option<i32>,
    ) -> provider::Result {
        let config = aws_sdk_sts::config::Builder::from(&self.base)
            .credentials_provider(base)
            .build();
        let sts = aws_sdk_sts::Client::from_conf(config);
        let session_name = session_name.map(str::to_owned).unwrap_or_else(|| {
            format!(
                "bastionless-{}",
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0)
            )
        });
        let mut request = sts
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(session_name)
            .set_external_id(external_id.map(str::to_owned))
            .set_duration_seconds(duration_seconds);
        if let Some(serial) = mfa_serial {
            let prompt = mfa_prompt().ok_or_else(|| {
                CredentialsError::not_loaded(format!(
                    "assuming {role_arn} needs a code from MFA device {serial}, and nothing here can ask for one"
                ))
            })?;
            let code = prompt
                .code(&self.profile, serial)
                .await
                .map_err(CredentialsError::not_loaded)?;
            request = request.serial_number(serial).token_code(code.trim());
        }
        let output = request.send().await.map_err(|error| {
            CredentialsError::provider_error(format!(
                "AssumeRole {role_arn}: {}",
                crate::sdk_error::describe(&error)
            ))
        })?;
        let credentials = output.credentials().ok_or_else(|| {
            CredentialsError::provider_error("STS AssumeRole answered without credentials")
        })?;
        let expiry = SystemTime::try_from(*credentials.expiration()).ok();
        Ok(Credentials::new(
            credentials.access_key_id(),
            credentials.secret_access_key(),
            Some(credentials.session_token().to_owned()),
            expiry,
            "AssumeRole",
        ))
    }
}

impl ProfileCredentials {
    /// What the cached credentials depend on: the source, and where its calls go.
    fn fingerprint(&self) -> u64 {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.source.hash(&mut hasher);
        self.base.endpoint_url().hash(&mut hasher);
        self.base
            .region()
            .map(|r| r.as_ref().to_owned())
            .hash(&mut hasher);
        hasher.finish()
    }
}
