//! A usable access token for an SSO session: the cached one while it has time left, else a
//! refreshed one (the refresh-token grant), else "sign-in needed".
//!
//! Refresh tokens rotate (each works once), so refreshes of one session are serialised and
//! each re-reads the cache first: twenty profiles of one session refresh it once.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex};

use chrono::{TimeDelta, Utc};

use super::cache::CachedToken;
use super::{SsoSession, SsoSessionKey};

/// Refresh this long before expiry, so a token never runs out mid-scan.
const REFRESH_MARGIN: TimeDelta = TimeDelta::minutes(10);

/// Why no access token could be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SsoError {
    /// The user has to sign in (again) to this session.
    SignInNeeded { session: String, reason: String },
    /// Something else failed (the cache cannot be read, the network).
    Failed(String),
}

impl std::fmt::Display for SsoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SsoError::SignInNeeded { session, reason } => write!(
                f,
                "SSO session `{session}`: sign-in needed ({reason}). Sign in from the app or run `bastionless login --sso-session {session}`."
            ),
            SsoError::Failed(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for SsoError {}

/// The access token for `session`, refreshed if it is about to expire.
pub async fn access_token(session: &SsoSession, cache_dir: &Path) -> Result<String, SsoError> {
    let guard = session_lock(&session.key);
    let _held = guard.lock().await;
    let needed = |reason: &str| SsoError::SignInNeeded {
        session: session.key.label().to_owned(),
        reason: reason.to_owned(),
    };
    let cached = CachedToken::load(cache_dir, &session.key)
        .map_err(SsoError::Failed)?
        .ok_or_else(|| needed("not signed in yet"))?;
    let now = Utc::now();
    let expires = cached.expires().unwrap_or(now);
    if expires - now > REFRESH_MARGIN {
        return Ok(cached.access_token);
    }
    match refresh(session, &cached, cache_dir).await {
        Ok(token) => Ok(token),
        // A token with a few minutes left still works if refreshing did not.
        Err(_) if expires > now => Ok(cached.access_token),
        Err(error) => Err(error),
    }
}

async fn refresh(
    session: &SsoSession,
    cached: &CachedToken,
    cache_dir: &Path,
) -> Result<String, SsoError> {
    let needed = |reason: String| SsoError::SignInNeeded {
        session: session.key.label().to_owned(),
        reason,
    };
    let (Some(refresh_token), Some(client_id), Some(client_secret)) = (
        cached.refresh_token.as_deref(),
        cached.client_id.as_deref(),
        cached.client_secret.as_deref(),
    ) else {
        return Err(needed("the session has expired".to_owned()));
    };
    if cached
        .registration_expires()
        .is_none_or(|at| at <= Utc::now())
    {
        return Err(needed("the client registration has expired".to_owned()));
    }
    let sdk = session.sdk_config().await.map_err(SsoError::Failed)?;
    let oidc = aws_sdk_ssooidc::Client::new(&sdk);
    let answer = oidc
        .create_token()
        .client_id(client_id)
        .client_secret(client_secret)
        .grant_type("refresh_token")
        .refresh_token(refresh_token)
        .send()
        .await;
    let output = match answer {
        Ok(output) => output,
        Err(error) => {
            use aws_sdk_ssooidc::operation::create_token::CreateTokenError as E;
            return Err(match error.as_service_error() {
                Some(
                    E::InvalidGrantException(_)
                    | E::ExpiredTokenException(_)
                    | E::InvalidClientException(_)
                    | E::AccessDeniedException(_),
                ) => needed("the session has expired".to_owned()),
                _ => SsoError::Failed(format!(
                    "could not renew the SSO session `{}`: {}",
                    session.key.label(),
                    crate::sdk_error::describe(&error)
                )),
            });
        }
    };
    let access_token = output
        .access_token()
        .ok_or_else(|| SsoError::Failed("SSO OIDC answered without an access token".to_owned()))?
        .to_owned();
    let renewed = CachedToken {
        access_token: access_token.clone(),
        expires_at: CachedToken::format_time(
            Utc::now() + TimeDelta::seconds(i64::from(output.expires_in())),
        ),
        refresh_token: output
            .refresh_token()
            .map(str::to_owned)
            .or_else(|| cached.refresh_token.clone()),
        ..cached.clone()
    };
    renewed
        .store(cache_dir, &session.key)
        .map_err(SsoError::Failed)?;
    Ok(access_token)
}

/// One async lock per session, for the life of the process.
fn session_lock(key: &SsoSessionKey) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: LazyLock<Mutex<HashMap<SsoSessionKey, Arc<tokio::sync::Mutex<()>>>>> =
        LazyLock::new(Default::default);
    LOCKS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(key.clone())
        .or_default()
        .clone()
}
