//! Signing in to an SSO session with the OAuth device-authorization grant (RFC 8628), as the
//! AWS CLI's `aws sso login` does: register a public client (or reuse the cached registration),
//! start a device authorization, show the user its code and URL, and poll `CreateToken` at the
//! interval the service asks for until the user approves in the browser. The token lands in the
//! cache the AWS CLI reads.

use std::path::Path;
use std::time::Duration;

use chrono::{TimeDelta, Utc};

use super::cache::CachedToken;
use super::{SsoSession, SsoSessionKey};

/// What the user needs to approve a sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCode {
    /// The code the browser page shows, for the user to compare (`ABCD-EFGH`).
    pub user_code: String,
    pub verification_uri: String,
    /// The URL with the code filled in: what to open in the browser.
    pub verification_uri_complete: Option<String>,
}

impl DeviceCode {
    /// The URL to open: with the code filled in when the service gave one.
    pub fn url(&self) -> &str {
        self.verification_uri_complete
            .as_deref()
            .unwrap_or(&self.verification_uri)
    }
}

/// The client name the registration shows in IAM Identity Center.
const CLIENT_NAME: &str = "bastionless";

/// Signs in to `session`: `show` gets the code to present as soon as there is one; returns
/// once the user approved (the token is cached) or the code expired or was denied.
pub async fn sign_in(
    session: &SsoSession,
    cache_dir: &Path,
    show: impl FnOnce(&DeviceCode),
) -> Result<(), String> {
    let sdk = session.sdk_config().await?;
    let oidc = aws_sdk_ssooidc::Client::new(&sdk);
    let fail = |what: &str, detail: String| {
        format!(
            "Could not sign in to SSO session `{}`: {what}: {detail}",
            session.key.label()
        )
    };

    let scopes = match (&session.key, session.scopes.is_empty()) {
        (SsoSessionKey::Named(_), true) => vec!["sso:account:access".to_owned()],
        _ => session.scopes.clone(),
    };
    let previous = CachedToken::load(cache_dir, &session.key).ok().flatten();
    let reusable = previous.as_ref().and_then(|p| {
        let fresh = p
            .registration_expires()
            .is_some_and(|at| at > Utc::now() + TimeDelta::hours(1));
        match (&p.client_id, &p.client_secret, fresh) {
            (Some(id), Some(secret), true) => Some((
                id.clone(),
                secret.clone(),
                p.registration_expires_at.clone(),
            )),
            _ => None,
        }
    });
    let (client_id, client_secret, registration_expires_at) = match reusable {
        Some(registration) => registration,
        None => {
            let registered = oidc
                .register_client()
                .client_name(CLIENT_NAME)
                .client_type("public")
                .set_scopes((!scopes.is_empty()).then(|| scopes.clone()))
                .send()
                .await
                .map_err(|e| fail("RegisterClient", crate::sdk_error::describe(&e)))?;
            let (Some(id), Some(secret)) = (registered.client_id(), registered.client_secret())
            else {
                return Err(fail(
                    "RegisterClient",
                    "no client id in the answer".to_owned(),
                ));
            };
            let expires =
                chrono::DateTime::from_timestamp(registered.client_secret_expires_at(), 0)
                    .map(CachedToken::format_time);
            (id.to_owned(), secret.to_owned(), expires)
        }
    };

    let started = oidc
        .start_device_authorization()
        .client_id(&client_id)
        .client_secret(&client_secret)
        .start_url(&session.start_url)
        .send()
        .await
        .map_err(|e| fail("StartDeviceAuthorization", crate::sdk_error::describe(&e)))?;
    let (Some(device_code), Some(user_code), Some(verification_uri)) = (
        started.device_code(),
        started.user_code(),
        started.verification_uri(),
    ) else {
        return Err(fail(
            "StartDeviceAuthorization",
            "the answer lacks the device code, user code or URL".to_owned(),
        ));
    };
    show(&DeviceCode {
        user_code: user_code.to_owned(),
        verification_uri: verification_uri.to_owned(),
        verification_uri_complete: started.verification_uri_complete().map(str::to_owned),
    });

    let mut interval = Duration::from_secs(u64::try_from(started.interval().max(1)).unwrap_or(5));
    let deadline = tokio::time::Instant::now()
        + Duration::from_secs(u64::try_from(started.expires_in().max(1)).unwrap_or(600));
    let token = loop {
        tokio::time::sleep(interval).await;
        if tokio::time::Instant::now() >= deadline {
            return Err(fail(
                "the code expired before it was approved",
                "sign in again".to_owned(),
            ));
        }
        let answer = oidc
            .create_token()
            .client_id(&client_id)
            .client_secret(&client_secret)
            .grant_type("urn:ietf:params:oauth:grant-type:device_code")
            .device_code(device_code)
            .send()
            .await;
        use aws_sdk_ssooidc::operation::create_token::CreateTokenError as E;
        match answer {
            Ok(token) => break token,
            Err(error) => match error.as_service_error() {
                Some(E::AuthorizationPendingException(_)) => {}
                // RFC 8628 §3.5: add five seconds to the interval.
                Some(E::SlowDownException(_)) => interval += Duration::from_secs(5),
                Some(E::ExpiredTokenException(_)) => {
                    return Err(fail(
                        "the code expired before it was approved",
                        "sign in again".to_owned(),
                    ));
                }
                Some(E::AccessDeniedException(_)) => {
                    return Err(fail(
                        "the sign-in was denied in the browser",
                        "try again".to_owned(),
                    ));
                }
                _ => return Err(fail("CreateToken", crate::sdk_error::describe(&error))),
            },
        }
    };
    let access_token = token
        .access_token()
        .ok_or_else(|| fail("CreateToken", "no access token in the answer".to_owned()))?;
    CachedToken {
        start_url: session.start_url.clone(),
        region: session.region.clone(),
        access_token: access_token.to_owned(),
        expires_at: CachedToken::format_time(
            Utc::now() + TimeDelta::seconds(i64::from(token.expires_in())),
        ),
        client_id: Some(client_id),
        client_secret: Some(client_secret),
        registration_expires_at,
        refresh_token: token.refresh_token().map(str::to_owned),
    }
    .store(cache_dir, &session.key)
}
