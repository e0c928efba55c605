//! AWS Security Token Service, `awsQuery` protocol, API version 2011-06-15.
//!
//! `GetCallerIdentity` is how the product checks that a profile's credentials work and learns
//! the account behind them; `AssumeRole` (with MFA) is how `role_arn` profiles get theirs.

use axum::http::StatusCode;
use sha2::{Digest, Sha256};

use crate::auth::{AuthError, Caller};
use crate::error::AwsError;
use crate::service::{QueryCall, invalid_action};
use crate::sigv4::SigV4Error;
use crate::temporary_credentials::{self, RoleSession};
use crate::xml::XmlWriter;

pub const API_VERSION: &str = "2011-06-15";
pub const XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

pub fn call(call: &QueryCall<'_>) -> Result<String, AwsError> {
    match call.action {
        "GetCallerIdentity" => Ok(get_caller_identity(call)),
        "AssumeRole" => assume_role(call),
        other => Err(invalid_action(format!(
            "Could not find operation {other} for version {API_VERSION}"
        ))),
    }
}

fn get_caller_identity(call: &QueryCall<'_>) -> String {
    let caller = call.caller;
    let (arn, user_id) = identity(call);
    XmlWriter::document("GetCallerIdentityResponse", XMLNS, |w| {
        w.element("GetCallerIdentityResult", |w| {
            w.text("Arn", arn)
                .text("UserId", user_id)
                .text("Account", caller.account());
        });
        w.element("ResponseMetadata", |w| {
            w.text("RequestId", call.request_id);
        });
    })
}

fn user_arn(caller: &Caller<'_>) -> String {
    format!(
        "arn:aws:iam::{}:user/{}",
        caller.account(),
        caller.profile.user_name()
    )
}

/// The caller's ARN and unique id: an IAM user, or a role session (`assumed-role/ROLE/NAME`).
fn identity(call: &QueryCall<'_>) -> (String, String) {
    let caller = call.caller;
    match role_session(call) {
        Some(session) => {
            let role_id = call
                .scenario
                .role(&session.account, &session.role)
                .map(|role| role.role_id())
                .unwrap_or_default();
            (
                format!(
                    "arn:aws:sts::{}:assumed-role/{}/{}",
                    session.account, session.role, session.session_name
                ),
                format!("{role_id}:{}", session.session_name),
            )
        }
        None => (user_arn(&caller), user_id(&caller)),
    }
}

/// The role session behind the call's temporary credentials (already verified by `auth`).
fn role_session(call: &QueryCall<'_>) -> Option<RoleSession> {
    token_claims(call.security_token.as_deref()?)
}

/// The claims of a session token `auth` has already verified for this request.
fn token_claims(token: &str) -> Option<RoleSession> {
    use base64::Engine as _;
    let claims = token.split_once('.')?.0;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(claims)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// `AssumeRole`: checks the role exists and trusts the caller, the MFA code when the role asks
/// for one, and the duration limits, then issues temporary credentials for a session.
fn assume_role(call: &QueryCall<'_>) -> Result<String, AwsError> {
    let params = call.params;
    let role_arn = params.get("RoleArn").ok_or_else(|| missing("roleArn"))?;
    let session_name = params
        .get("RoleSessionName")
        .ok_or_else(|| missing("roleSessionName"))?;
    if !(2..=64).contains(&session_name.len())
        || !session_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
    {
        return Err(validation(format!(
            "1 validation error detected: Value '{session_name}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]* and have length between 2 and 64"
        )));
    }
    let duration: u32 = match params.get("DurationSeconds") {
        None => 3600,
        Some(text) => text
            .parse()
            .ok()
            .filter(|seconds| (900..=43200).contains(seconds))
            .ok_or_else(|| {
                validation(format!(
                    "1 validation error detected: Value '{text}' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200"
                ))
            })?,
    };
    let (account, name) = parse_role_arn(role_arn).ok_or_else(|| {
        validation(format!(
            "{role_arn} is invalid: a role ARN looks like arn:aws:iam::123456789012:role/NAME"
        ))
    })?;
    let (caller_arn, _) = identity(call);
    let denied = || {
        AwsError::new(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            format!(
                "User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
            ),
        )
    };
    let role = call.scenario.role(account, name).ok_or_else(denied)?;
    if !role.trusted.contains(&call.caller.profile.name) {
        return Err(denied());
    }
    let chained = role_session(call).is_some();
    if chained && duration > 3600 {
        return Err(validation(
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
        ));
    }
    if duration > role.max_session_seconds {
        return Err(validation(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        ));
    }
    let mfa = check_mfa(call, params.get("SerialNumber"), params.get("TokenCode"))?;
    if role.mfa_required && !mfa {
        return Err(denied());
    }
    // The session lasts `duration` on the simulator's clock; its Expiration is wall-clock
    // time, which is what clients compare it with (see `clock`).
    let issued = temporary_credentials::issue(
        account,
        name,
        session_name,
        mfa,
        chrono::Utc::now(),
        call.world
            .clock
            .real_delta(chrono::TimeDelta::seconds(i64::from(duration))),
    );
    let role_id = role.role_id();
    Ok(XmlWriter::document("AssumeRoleResponse", XMLNS, |w| {
        w.element("AssumeRoleResult", |w| {
            w.element("AssumedRoleUser", |w| {
                w.text("AssumedRoleId", format!("{role_id}:{session_name}"))
                    .text(
                        "Arn",
                        format!("arn:aws:sts::{account}:assumed-role/{name}/{session_name}"),
                    );
            });
            w.element("Credentials", |w| {
                w.text("AccessKeyId", &issued.access_key_id)
                    .text("SecretAccessKey", &issued.secret_access_key)
                    .text("SessionToken", &issued.session_token)
                    .text(
                        "Expiration",
                        issued
                            .expiration
                            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    );
            });
        });
        w.element("ResponseMetadata", |w| {
            w.text("RequestId", call.request_id);
        });
    }))
}

/// Checks `SerialNumber` and `TokenCode`: both or neither, a six-digit code, the caller's own
/// device, and the code current for it. `Ok(true)` when a valid code came with the call.
fn check_mfa(
    call: &QueryCall<'_>,
    serial: Option<&str>,
    code: Option<&str>,
) -> Result<bool, AwsError> {
    let (serial, code) = match (serial, code) {
        (None, None) => return Ok(false),
        (Some(serial), Some(code)) => (serial, code),
        (Some(_), None) => {
            return Err(AwsError::new(
                StatusCode::FORBIDDEN,
                "AccessDenied",
                "MultiFactorAuthentication failed, unable to validate MFA code.",
            ));
        }
        (None, Some(_)) => {
            return Err(validation(
                "1 validation error detected: Value null at 'serialNumber' failed to satisfy constraint: Member must not be null when a tokenCode is given",
            ));
        }
    };
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(validation(format!(
            "1 validation error detected: Value '{code}' at 'tokenCode' failed to satisfy constraint: Member must have length 6 and satisfy regular expression pattern: [\\d]*"
        )));
    }
    let device = call
        .scenario
        .mfa_owner(serial)
        .filter(|owner| owner.name == call.caller.profile.name)
        .and_then(|owner| owner.mfa.as_ref())
        .ok_or_else(|| {
            AwsError::new(
                StatusCode::FORBIDDEN,
                "AccessDenied",
                "MultiFactorAuthentication failed, unable to validate MFA code.",
            )
        })?;
    let now = chrono::Utc::now().timestamp();
    // One 30-second step either side, for clocks a little apart, as AWS allows.
    let accepted = [-30, 0, 30]
        .iter()
        .any(|skew| totp(&device.secret, now + skew) == code);
    if accepted {
        Ok(true)
    } else {
        Err(AwsError::new(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "MultiFactorAuthentication failed with invalid MFA one time pass code. ",
        ))
    }
}

/// The six-digit TOTP code (RFC 6238: HMAC-SHA-1, 30-second steps) for `secret` at
/// `unix_seconds`.
pub fn totp(secret: &str, unix_seconds: i64) -> String {
    use hmac::{Hmac, Mac};
    let step = (unix_seconds.max(0) / 30) as u64;
    let mut mac =
        Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let value = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    format!("{:06}", value % 1_000_000)
}

/// `(account, role name)` of `arn:aws:iam::ACCOUNT:role/[PATH/]NAME`.
fn parse_role_arn(arn: &str) -> Option<(&str, &str)> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (account, resource) = rest.split_once(':')?;
    let path = resource.strip_prefix("role/")?;
    let name = path.rsplit('/').next()?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty())
        .then_some((account, name))
}

fn validation(message: impl Into<String>) -> AwsError {
    AwsError::bad_request("ValidationError", message)
}

fn missing(member: &str) -> AwsError {
    validation(format!(
        "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
    ))
}

/// A stable unique id for a principal: `prefix` and 17 characters derived from `seed`.
pub fn unique_id(prefix: &str, seed: &str) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let digest = Sha256::digest(seed.as_bytes());
    let suffix: String = digest
        .iter()
        .take(17)
        .map(|byte| char::from(ALPHABET[usize::from(byte % 32)]))
        .collect();
    format!("{prefix}{suffix}")
}

/// An IAM user's unique id: `AIDA` and 17 characters, stable for a given access key.
fn user_id(caller: &Caller<'_>) -> String {
    unique_id("AIDA", &caller.profile.access_key_id)
}

/// STS reports every signature problem as `SignatureDoesNotMatch` (clock skew included) and
/// an unknown key as `InvalidClientTokenId`, all with 403.
pub fn auth_error(error: &AuthError) -> AwsError {
    let forbidden = |code, message: String| AwsError::new(StatusCode::FORBIDDEN, code, message);
    match error {
        AuthError::Signature(SigV4Error::Missing) => forbidden(
            "MissingAuthenticationToken",
            SigV4Error::Missing.to_string(),
        ),
        AuthError::Signature(incomplete @ SigV4Error::Incomplete(_)) => {
            AwsError::bad_request("IncompleteSignature", incomplete.to_string())
        }
        AuthError::Signature(other) => forbidden("SignatureDoesNotMatch", other.to_string()),
        AuthError::UnknownAccessKey => forbidden(
            "InvalidClientTokenId",
            "The security token included in the request is invalid.".to_owned(),
        ),
        AuthError::UnknownRegion(_) => forbidden(
            "SignatureDoesNotMatch",
            "Credential should be scoped to a valid region. ".to_owned(),
        ),
        AuthError::ExpiredToken => forbidden(
            "ExpiredToken",
            "The security token included in the request is expired".to_owned(),
        ),
    }
}
