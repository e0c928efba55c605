//! Who is calling: a request's SigV4 signature checked against the scenario's access keys.
//!
//! `sigv4` knows only the algorithm; this module knows the scenario — which keys exist, whose
//! they are and which regions exist — and yields the `Caller` every service answers for.

use chrono::{DateTime, Utc};

use crate::scenario::{Profile, Scenario};
use crate::sigv4::{Authorization, HttpRequest, SigV4Error};

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
}

/// Checks `request`'s signature as of `now`.
pub fn authenticate<'s>(
    scenario: &'s Scenario,
    request: &HttpRequest<'_>,
    now: DateTime<Utc>,
) -> Result<Caller<'s>, AuthError> {
    let authorization = Authorization::from_request(request).map_err(AuthError::Signature)?;
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
    Ok(Caller { profile, region })
}
