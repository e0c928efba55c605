//! SSO OIDC (`sso-oauth`, API 2019-06-10): `RegisterClient`, `StartDeviceAuthorization` and
//! `CreateToken` with the device-code and refresh-token grants (RFC 8628, RFC 6749 §6).
//!
//! Polling `CreateToken` before the user approves gives `authorization_pending`; polling faster
//! than the `interval` gives `slow_down`; a device code past its lifetime gives
//! `expired_token`; a refresh token that was revoked or already used gives `invalid_grant`.

use axum::http::StatusCode;
use chrono::{TimeDelta, Utc};
use serde::Deserialize;
use serde_json::json;

use super::{Answer, Client, Device, Grant, random_token};
use crate::world::World;

const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const REFRESH_TOKEN_GRANT: &str = "refresh_token";
/// How long a device code waits for its user: AWS gives 600 s.
const DEVICE_CODE_SECONDS: i64 = 600;
/// The polling interval AWS asks for.
const INTERVAL_SECONDS: i64 = 1;
/// Client registrations last 90 days.
const CLIENT_DAYS: i64 = 90;

/// An OAuth error in the OIDC service's shape.
fn oauth_error(
    action: &'static str,
    status: StatusCode,
    error_type: &'static str,
    error: &str,
    description: impl Into<String>,
) -> Answer {
    Answer {
        action,
        status,
        body: json!({ "error": error, "error_description": description.into() }),
        error_type: Some(error_type),
    }
}

fn invalid_request(action: &'static str, description: impl Into<String>) -> Answer {
    oauth_error(
        action,
        StatusCode::BAD_REQUEST,
        "InvalidRequestException",
        "invalid_request",
        description,
    )
}

fn invalid_client(action: &'static str) -> Answer {
    oauth_error(
        action,
        StatusCode::UNAUTHORIZED,
        "InvalidClientException",
        "invalid_client",
        "Invalid client provided",
    )
}

fn parse<T: for<'de> Deserialize<'de>>(action: &'static str, body: &[u8]) -> Result<T, Answer> {
    serde_json::from_slice(body).map_err(|e| invalid_request(action, format!("{e}")))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisterClientInput {
    client_name: Option<String>,
    client_type: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
}

pub(super) fn register_client(world: &World, body: &[u8]) -> Answer {
    const ACTION: &str = "RegisterClient";
    let input: RegisterClientInput = match parse(ACTION, body) {
        Ok(input) => input,
        Err(answer) => return answer,
    };
    if input.client_name.as_deref().is_none_or(str::is_empty) {
        return invalid_request(ACTION, "clientName is required");
    }
    if input.client_type.as_deref() != Some("public") {
        return oauth_error(
            ACTION,
            StatusCode::BAD_REQUEST,
            "InvalidClientMetadataException",
            "invalid_client_metadata",
            "clientType must be `public`",
        );
    }
    if let Some(scope) = input
        .scopes
        .iter()
        .find(|s| !s.starts_with("sso:") && !s.starts_with("openid"))
    {
        return oauth_error(
            ACTION,
            StatusCode::BAD_REQUEST,
            "InvalidScopeException",
            "invalid_scope",
            format!("Invalid scope: {scope}"),
        );
    }
    let now = Utc::now();
    let client_id = random_token(22);
    let secret = random_token(64);
    let expires = now + TimeDelta::days(CLIENT_DAYS);
    world.sso.lock().clients.insert(
        client_id.clone(),
        Client {
            secret: secret.clone(),
            expires,
            refreshable: input.scopes.iter().any(|s| s == "sso:account:access"),
        },
    );
    Answer::ok(
        ACTION,
        json!({
            "clientId": client_id,
            "clientSecret": secret,
            "clientIdIssuedAt": now.timestamp(),
            "clientSecretExpiresAt": expires.timestamp(),
        }),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartDeviceAuthorizationInput {
    client_id: String,
    client_secret: String,
    start_url: String,
}

pub(super) fn start_device_authorization(world: &World, body: &[u8]) -> Answer {
    const ACTION: &str = "StartDeviceAuthorization";
    let input: StartDeviceAuthorizationInput = match parse(ACTION, body) {
        Ok(input) => input,
        Err(answer) => return answer,
    };
    if !client_is_valid(world, &input.client_id, &input.client_secret) {
        return invalid_client(ACTION);
    }
    let Some(instance) = world
        .scenario
        .sso
        .iter()
        .find(|i| i.start_url.trim_end_matches('/') == input.start_url.trim_end_matches('/'))
    else {
        return invalid_request(
            ACTION,
            format!(
                "The start URL {} is not an AWS access portal",
                input.start_url
            ),
        );
    };
    let now = Utc::now();
    let device_code = random_token(64);
    let user_code = user_code();
    let verification_uri = world.sso.verification_uri();
    world.sso.lock().devices.insert(
        device_code.clone(),
        Device {
            client_id: input.client_id,
            instance: instance.name.clone(),
            user_code: user_code.clone(),
            expires: now + TimeDelta::seconds(DEVICE_CODE_SECONDS),
            interval_seconds: INTERVAL_SECONDS,
            last_poll: None,
            approved: false,
        },
    );
    Answer::ok(
        ACTION,
        json!({
            "deviceCode": device_code,
            "userCode": user_code,
            "verificationUri": verification_uri,
            "verificationUriComplete": format!("{verification_uri}?user_code={user_code}"),
            "expiresIn": DEVICE_CODE_SECONDS,
            "interval": INTERVAL_SECONDS,
        }),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateTokenInput {
    client_id: String,
    client_secret: String,
    grant_type: String,
    device_code: Option<String>,
    refresh_token: Option<String>,
}

pub(super) fn create_token(world: &World, body: &[u8]) -> Answer {
    const ACTION: &str = "CreateToken";
    let input: CreateTokenInput = match parse(ACTION, body) {
        Ok(input) => input,
        Err(answer) => return answer,
    };
    if !client_is_valid(world, &input.client_id, &input.client_secret) {
        return invalid_client(ACTION);
    }
    let invalid_grant = |description: &str| {
        oauth_error(
            ACTION,
            StatusCode::BAD_REQUEST,
            "InvalidGrantException",
            "invalid_grant",
            description,
        )
    };
    let now = Utc::now();
    let instance = match input.grant_type.as_str() {
        DEVICE_CODE_GRANT => {
            let Some(code) = input.device_code.as_deref() else {
                return invalid_request(ACTION, "deviceCode is required for this grant");
            };
            let mut state = world.sso.lock();
            let Some(device) = state.devices.get_mut(code) else {
                return invalid_grant("Invalid device code provided");
            };
            if device.client_id != input.client_id {
                return invalid_grant("Invalid device code provided");
            }
            if device.expires <= now {
                return oauth_error(
                    ACTION,
                    StatusCode::BAD_REQUEST,
                    "ExpiredTokenException",
                    "expired_token",
                    "Device code has expired",
                );
            }
            let too_soon = device
                .last_poll
                .is_some_and(|last| now - last < TimeDelta::seconds(device.interval_seconds));
            device.last_poll = Some(now);
            if !device.approved {
                return if too_soon {
                    oauth_error(
                        ACTION,
                        StatusCode::BAD_REQUEST,
                        "SlowDownException",
                        "slow_down",
                        "Client is polling too quickly",
                    )
                } else {
                    oauth_error(
                        ACTION,
                        StatusCode::BAD_REQUEST,
                        "AuthorizationPendingException",
                        "authorization_pending",
                        "Authorization is still pending",
                    )
                };
            }
            let device = state.devices.remove(code).expect("found above");
            device.instance
        }
        REFRESH_TOKEN_GRANT => {
            let Some(token) = input.refresh_token.as_deref() else {
                return invalid_request(ACTION, "refreshToken is required for this grant");
            };
            let mut state = world.sso.lock();
            // Refresh tokens rotate: each one works once.
            match state.refresh_tokens.remove(token) {
                Some(grant) if grant.client_id == input.client_id => grant.instance,
                _ => return invalid_grant("Invalid refresh token provided"),
            }
        }
        other => {
            return oauth_error(
                ACTION,
                StatusCode::BAD_REQUEST,
                "UnsupportedGrantTypeException",
                "unsupported_grant_type",
                format!("Unsupported grant type: {other}"),
            );
        }
    };
    let lifetime = world
        .scenario
        .sso_instance(&instance)
        .map(|i| i64::from(i.access_token_seconds))
        .unwrap_or(3600);
    let access_token = format!("aoa{}", random_token(96));
    let mut state = world.sso.lock();
    let refreshable = state
        .clients
        .get(&input.client_id)
        .is_some_and(|c| c.refreshable);
    state.access_tokens.insert(
        access_token.clone(),
        Grant {
            instance: instance.clone(),
            client_id: input.client_id.clone(),
            expires: Some(now + TimeDelta::seconds(lifetime)),
        },
    );
    let mut body = json!({
        "accessToken": access_token,
        "tokenType": "Bearer",
        "expiresIn": lifetime,
    });
    if refreshable {
        let refresh_token = format!("aor{}", random_token(96));
        state.refresh_tokens.insert(
            refresh_token.clone(),
            Grant {
                instance,
                client_id: input.client_id,
                expires: None,
            },
        );
        body["refreshToken"] = json!(refresh_token);
    }
    Answer::ok(ACTION, body)
}

fn client_is_valid(world: &World, client_id: &str, secret: &str) -> bool {
    world
        .sso
        .lock()
        .clients
        .get(client_id)
        .is_some_and(|c| c.secret == secret && c.expires > Utc::now())
}

/// A code a person can read and type: `XXXX-XXXX` from letters that are hard to confuse.
fn user_code() -> String {
    use rand::Rng as _;
    const LETTERS: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
    let mut rng = rand::rng();
    let mut pick = || char::from(LETTERS[rng.random_range(0..LETTERS.len())]);
    let first: String = (0..4).map(|_| pick()).collect();
    let second: String = (0..4).map(|_| pick()).collect();
    format!("{first}-{second}")
}
