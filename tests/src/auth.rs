//! Who is calling: a request's SigV4 signature checked against the scenario's access keys.
//!
//! `sigv4` knows only the algorithm; this module knows the scenario — which keys exist, whose
//! they are and which regions exist — and yields the `Caller` every service answers for.

use chrono::{DateTime, Utc};

use crate::scenario::{Profile, Scenario};
use crate::sigv4::{Authorization, HttpRequest, SigV4Error};
use crate::temporary_credentials::{self, TokenProblem};

/// An authenticated principal and the region its request was signed for.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The profile whose access key signed the request: an IAM user in `profile.account`.
    pub profile: &'a Profile,
    pub region: &'a str,
}

impl Caller<'_> {
    pub fn account(&self) -> &str {
        &self.profile.account
    }
}

/// Why a request was not authenticated. Each service maps these to its own error codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    Signature(SigV4Error),
    /// The access key id is not one of the scenario's.
    UnknownAccessKey,
    /// Signed for a region the scenario does not have.
    UnknownRegion(String),
    /// The credentials were good but have expired (a session token past its expiry).
    ExpiredToken,
}

/// The credentials that signed an authenticated request, as CloudTrail records them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedBy {
    pub access_key_id: String,
    /// When temporary credentials stop working (wall-clock time); `None` for an IAM user's keys.
    pub expires: Option<DateTime<Utc>>,
}

/// Checks `request`'s signature as of `now`.
pub fn authenticate<'s>(
    scenario: &'s Scenario,
    request: &HttpRequest<'_>,
    now: DateTime<Utc>,
) -> Result<Caller<'s>, AuthError> {
    authenticate_signed(scenario, request, now).map(|(caller, _)| caller)
}

/// [`authenticate`], also saying which credentials signed the request.
pub fn authenticate_signed<'s>(
    scenario: &'s Scenario,
    request: &HttpRequest<'_>,
    now: DateTime<Utc>,
) -> Result<(Caller<'s>, SignedBy), AuthError> {
    let authorization = Authorization::from_request(request).map_err(AuthError::Signature)?;
    if temporary_credentials::is_temporary(&authorization.access_key_id) {
        return authenticate_session(scenario, request, &authorization, now);
    }
    let profile = scenario
        .profile_by_access_key(&authorization.access_key_id)
        .ok_or(AuthError::UnknownAccessKey)?;
    authorization
        .verify(request, &profile.secret_access_key, now)
        .map_err(AuthError::Signature)?;
    let region = scenario
        .regions
        .iter()
        .find(|region| **region == authorization.scope.region)
        .ok_or_else(|| AuthError::UnknownRegion(authorization.scope.region.clone()))?;
    let signed_by = SignedBy {
        access_key_id: authorization.access_key_id.clone(),
        expires: None,
    };
    Ok((Caller { profile, region }, signed_by))
}

/// A request signed with temporary credentials (`AssumeRole`, SSO): the session token must be
/// one this simulator issued for that access key, unexpired, for a role that still exists.
fn authenticate_session<'s>(
    scenario: &'s Scenario,
    request: &HttpRequest<'_>,
    authorization: &Authorization,
    now: DateTime<Utc>,
) -> Result<(Caller<'s>, SignedBy), AuthError> {
    let token = security_token(request).ok_or(AuthError::UnknownAccessKey)?;
    let session = temporary_credentials::open(&token, &authorization.access_key_id, now).map_err(
        |problem| match problem {
            TokenProblem::Invalid => AuthError::UnknownAccessKey,
            TokenProblem::Expired => AuthError::ExpiredToken,
        },
    )?;
    let role = scenario
        .role(&session.account, &session.role)
        .ok_or(AuthError::UnknownAccessKey)?;
    authorization
        .verify(
            request,
            &temporary_credentials::secret_for(&authorization.access_key_id),
            now,
        )
        .map_err(AuthError::Signature)?;
    let region = scenario
        .regions
        .iter()
        .find(|region| **region == authorization.scope.region)
        .ok_or_else(|| AuthError::UnknownRegion(authorization.scope.region.clone()))?;
    let signed_by = SignedBy {
        access_key_id: authorization.access_key_id.clone(),
        expires: DateTime::from_timestamp(session.expires, 0),
    };
    Ok((
        Caller {
            profile: role.principal(),
            region,
        },
        signed_by,
    ))
}

/// The session token a request carries: the `X-Amz-Security-Token` header, or the query
/// parameter of a presigned URL.
pub fn security_token(request: &HttpRequest<'_>) -> Option<String> {
    if let Some(value) = request.headers.get("x-amz-security-token") {
        return value.to_str().ok().map(str::to_owned);
    }
    request.query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == "X-Amz-Security-Token").then(|| {
            percent_encoding::percent_decode_str(value)
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}
