//! AWS Security Token Service, `awsQuery` protocol, API version 2011-06-15.
//!
//! `GetCallerIdentity` is how the product checks that a profile's credentials work and learns
//! the account behind them.

use axum::http::StatusCode;
use sha2::{Digest, Sha256};

use crate::auth::{AuthError, Caller};
use crate::error::AwsError;
use crate::service::{QueryCall, invalid_action};
use crate::sigv4::SigV4Error;
use crate::xml::XmlWriter;

pub const API_VERSION: &str = "2011-06-15";
pub const XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

pub fn call(call: &QueryCall<'_>) -> Result<String, AwsError> {
    match call.action {
        "GetCallerIdentity" => Ok(get_caller_identity(call)),
        other => Err(invalid_action(format!(
            "Could not find operation {other} for version {API_VERSION}"
        ))),
    }
}

fn get_caller_identity(call: &QueryCall<'_>) -> String {
    let caller = call.caller;
    XmlWriter::document("GetCallerIdentityResponse", XMLNS, |w| {
        w.element("GetCallerIdentityResult", |w| {
            w.text("Arn", user_arn(&caller))
                .text("UserId", user_id(&caller))
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

/// An IAM user's unique id: `AIDA` and 17 characters, stable for a given access key.
fn user_id(caller: &Caller<'_>) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let digest = Sha256::digest(caller.profile.access_key_id.as_bytes());
    let suffix: String = digest
        .iter()
        .take(17)
        .map(|byte| char::from(ALPHABET[usize::from(byte % 32)]))
        .collect();
    format!("AIDA{suffix}")
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
    }
}
