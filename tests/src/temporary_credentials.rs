//! Temporary credentials (`ASIA…` access keys with a session token), as STS `AssumeRole` and
//! the SSO portal's `GetRoleCredentials` hand them out.
//!
//! Like AWS's, the session token is self-contained: it carries who the session is (role,
//! account, session name), its access key id and expiry, sealed with an HMAC under a key made
//! for this process, so any service can check a request without a lookup and a forged or
//! altered token is refused. The secret access key is derived from the access key id under the
//! same key, so nothing needs to be remembered.

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Who a temporary credential belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleSession {
    pub account: String,
    pub role: String,
    pub session_name: String,
    pub access_key_id: String,
    /// Seconds since the epoch.
    pub expires: i64,
    /// Whether the session was started with an MFA code.
    pub mfa: bool,
}

/// A freshly issued credential set.
#[derive(Debug, Clone)]
pub struct IssuedCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expiration: DateTime<Utc>,
}

/// Why a session token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    /// Not a token this simulator issued, altered, or for another access key.
    Invalid,
    Expired,
}

/// Issues credentials for a session of `role` in `account`, valid for `lifetime` from `now`.
pub fn issue(
    account: &str,
    role: &str,
    session_name: &str,
    mfa: bool,
    now: DateTime<Utc>,
    lifetime: TimeDelta,
) -> IssuedCredentials {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::rng();
    let suffix: String = (0..16)
        .map(|_| char::from(ALPHABET[rng.random_range(0..32)]))
        .collect();
    let access_key_id = format!("ASIA{suffix}");
    let expiration = now + lifetime;
    let session = RoleSession {
        account: account.to_owned(),
        role: role.to_owned(),
        session_name: session_name.to_owned(),
        access_key_id: access_key_id.clone(),
        expires: expiration.timestamp(),
        mfa,
    };
    let claims = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&session).unwrap_or_default());
    let seal = URL_SAFE_NO_PAD.encode(mac(&["token", &claims]));
    IssuedCredentials {
        secret_access_key: secret_for(&access_key_id),
        access_key_id,
        session_token: format!("{claims}.{seal}"),
        // Whole seconds, as AWS reports them.
        expiration: DateTime::from_timestamp(expiration.timestamp(), 0).unwrap_or(expiration),
    }
}

/// Whether `access_key_id` has the shape of a temporary credential.
pub fn is_temporary(access_key_id: &str) -> bool {
    access_key_id.starts_with("ASIA")
}

/// The secret access key that goes with a temporary `access_key_id`.
pub fn secret_for(access_key_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(mac(&["secret", access_key_id]))[..40].to_owned()
}

/// The session `token` describes, if this simulator issued it for `access_key_id` and it has
/// not expired at `now`.
pub fn open(
    token: &str,
    access_key_id: &str,
    now: DateTime<Utc>,
) -> Result<RoleSession, TokenProblem> {
    let (claims, seal) = token.split_once('.').ok_or(TokenProblem::Invalid)?;
    let seal = URL_SAFE_NO_PAD
        .decode(seal)
        .map_err(|_| TokenProblem::Invalid)?;
    let mut check = keyed();
    check.update(b"token\0");
    check.update(claims.as_bytes());
    check.update(b"\0");
    check
        .verify_slice(&seal)
        .map_err(|_| TokenProblem::Invalid)?;
    let session: RoleSession = URL_SAFE_NO_PAD
        .decode(claims)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(TokenProblem::Invalid)?;
    if session.access_key_id != access_key_id {
        return Err(TokenProblem::Invalid);
    }
    if session.expires <= now.timestamp() {
        return Err(TokenProblem::Expired);
    }
    Ok(session)
}

fn keyed() -> Hmac<Sha256> {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    let key = KEY.get_or_init(|| rand::rng().random());
    Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length")
}

fn mac(parts: &[&str]) -> Vec<u8> {
    let mut mac = keyed();
    for part in parts {
        mac.update(part.as_bytes());
        mac.update(b"\0");
    }
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issued_token_opens_for_its_own_key_until_it_expires() {
        let now = Utc::now();
        let issued = issue(
            "111122223333",
            "admin",
            "s",
            false,
            now,
            TimeDelta::hours(1),
        );
        assert!(is_temporary(&issued.access_key_id));
        assert_eq!(issued.secret_access_key, secret_for(&issued.access_key_id));
        let session = open(&issued.session_token, &issued.access_key_id, now).unwrap();
        assert_eq!(session.role, "admin");
        assert_eq!(
            open(&issued.session_token, "ASIAOTHER", now),
            Err(TokenProblem::Invalid)
        );
        assert_eq!(
            open(
                &issued.session_token,
                &issued.access_key_id,
                now + TimeDelta::hours(2)
            ),
            Err(TokenProblem::Expired)
        );
    }

    #[test]
    fn an_altered_token_is_refused() {
        let now = Utc::now();
        let issued = issue(
            "111122223333",
            "admin",
            "s",
            false,
            now,
            TimeDelta::hours(1),
        );
        let (claims, seal) = issued.session_token.split_once('.').unwrap();
        let forged_claims = URL_SAFE_NO_PAD.encode(
            String::from_utf8(URL_SAFE_NO_PAD.decode(claims).unwrap())
                .unwrap()
                .replace("admin", "owner"),
        );
        assert_eq!(
            open(
                &format!("{forged_claims}.{seal}"),
                &issued.access_key_id,
                now
            ),
            Err(TokenProblem::Invalid)
        );
    }
}
