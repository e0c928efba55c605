//! [`SsmSessionApi`]: the [`SessionApi`] over `aws-sdk-ssm` (spec §1), and `aws-sdk-kms` for
//! the data keys of KMS-encrypted shells ([`KmsDataKeys`]).
//!
//! The calls are plain: StartSession with the document's name and one-element parameter
//! lists, ResumeSession, TerminateSession. The work is in the errors: each modelled code the
//! service returns becomes an [`ApiError`] that names the action, the target or document, and
//! what to check; transport failures become retryable [`ApiError::Unreachable`], so the
//! resume loop keeps trying through a network blip but not through a refused credential.

use std::collections::BTreeMap;

use aws_sdk_ssm::error::{ProvideErrorMetadata, SdkError};

use super::api::{
    ApiError, SessionApi, SessionDocument, SessionToken, StartSessionRequest, StartedSession,
};
use super::url::StreamUrl;
use crate::sdk_error::describe;
use crate::ssm::kms::{KmsDataKeys, KmsError};
use crate::ssm::proto::DataKey;

/// The Session Manager control plane of one profile and region.
#[derive(Debug, Clone)]
pub struct SsmSessionApi {
    client: aws_sdk_ssm::Client,
    /// `None` for [`SsmSessionApi::from_client`], which has no SDK configuration to give KMS.
    kms: Option<KmsDataKeys>,
}

impl SsmSessionApi {
    /// From the profile's SDK configuration (region, credentials, endpoint, CA bundle), for
    /// Systems Manager and KMS alike.
    pub fn new(config: &aws_types::SdkConfig) -> Self {
        SsmSessionApi {
            client: aws_sdk_ssm::Client::new(config),
            kms: Some(KmsDataKeys::new(config)),
        }
    }

    /// Over an existing Systems Manager client, without KMS: KMS-encrypted shells fail with
    /// an error that says so.
    pub fn from_client(client: aws_sdk_ssm::Client) -> Self {
        SsmSessionApi { client, kms: None }
    }
}

/// What a failed call was about, for the error text.
struct Context<'a> {
    action: &'static str,
    target: &'a str,
    document: Option<&'a SessionDocument>,
    session_id: &'a str,
}

impl SessionApi for SsmSessionApi {
    async fn start_session(
        &self,
        request: &StartSessionRequest,
    ) -> Result<StartedSession, ApiError> {
        let context = Context {
            action: "StartSession",
            target: &request.target,
            document: Some(&request.document),
            session_id: "",
        };
        let mut call = self.client.start_session().target(&request.target);
        if let Some(name) = request.document.name() {
            call = call.document_name(name);
        }
        for (name, value) in request.document.parameters() {
            call = call.parameters(name, vec![value]);
        }
        let output = call.send().await.map_err(|e| classify(&context, &e))?;
        let missing = |field: &str| ApiError::BadResponse {
            action: "StartSession",
            reason: format!("it has no {field}"),
        };
        let session_id = non_empty(output.session_id()).ok_or_else(|| missing("SessionId"))?;
        let token = non_empty(output.token_value()).ok_or_else(|| missing("TokenValue"))?;
        let url = non_empty(output.stream_url()).ok_or_else(|| missing("StreamUrl"))?;
        let stream_url = StreamUrl::parse(url).map_err(|reason| ApiError::BadResponse {
            action: "StartSession",
            reason: format!("its StreamUrl is not usable: {reason}"),
        })?;
        tracing::debug!(%session_id, target = %request.target, "session started");
        Ok(StartedSession {
            session_id: session_id.to_owned(),
            token: SessionToken::new(token),
            stream_url,
        })
    }

    async fn resume_session(&self, session_id: &str) -> Result<Option<SessionToken>, ApiError> {
        let context = Context {
            action: "ResumeSession",
            target: "",
            document: None,
            session_id,
        };
        let output = self
            .client
            .resume_session()
            .session_id(session_id)
            .send()
            .await
            .map_err(|e| classify(&context, &e))?;
        Ok(non_empty(output.token_value()).map(SessionToken::new))
    }

    async fn terminate_session(&self, session_id: &str) -> Result<(), ApiError> {
        let context = Context {
            action: "TerminateSession",
            target: "",
            document: None,
            session_id,
        };
        self.client
            .terminate_session()
            .session_id(session_id)
            .send()
            .await
            .map_err(|e| classify(&context, &e))?;
        Ok(())
    }

    async fn generate_data_key(
        &self,
        key_id: &str,
        context: &BTreeMap<String, String>,
    ) -> Result<DataKey, KmsError> {
        match &self.kms {
            Some(kms) => kms.generate(key_id, context).await,
            None => Err(KmsError::Other {
                key_id: key_id.to_owned(),
                detail: "this Session Manager client was made without a KMS client".to_owned(),
            }),
        }
    }
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.trim().is_empty())
}

fn classify<E, R>(context: &Context<'_>, error: &SdkError<E, R>) -> ApiError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let action = context.action;
    match error {
        SdkError::ServiceError(service) => {
            let err = service.err();
            from_code(context, err.code(), err.message())
        }
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => ApiError::Unreachable {
            action,
            detail: describe(error),
        },
        SdkError::DispatchFailure(failure) if failure.is_io() || failure.is_timeout() => {
            ApiError::Unreachable {
                action,
                detail: describe(error),
            }
        }
        _ => ApiError::Other {
            action,
            detail: describe(error),
        },
    }
}

/// Maps a modelled (or common AWS) error code to what the user should know.
fn from_code(context: &Context<'_>, code: Option<&str>, message: Option<&str>) -> ApiError {
    let action = context.action;
    let message = message.unwrap_or_default().trim().to_owned();
    match code.unwrap_or_default() {
        "TargetNotConnected" => ApiError::TargetNotConnected {
            target: context.target.to_owned(),
        },
        "InvalidDocument" => ApiError::InvalidDocument {
            document: context
                .document
                .and_then(SessionDocument::name)
                .unwrap_or("(the default shell document)")
                .to_owned(),
            message,
        },
        "AccessDeniedException" | "AccessDenied" => ApiError::AccessDenied { action, message },
        "DoesNotExistException" => ApiError::SessionNotFound {
            session_id: context.session_id.to_owned(),
        },
        "ThrottlingException" | "Throttling" | "TooManyRequestsException" => {
            ApiError::Throttled { action, message }
        }
        "InternalServerError" | "InternalFailure" | "ServiceUnavailable" => {
            ApiError::Internal { action, message }
        }
        "ExpiredTokenException" | "ExpiredToken" => {
            ApiError::CredentialsExpired { action, message }
        }
        "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "InvalidSignatureException"
        | "SignatureDoesNotMatch" => ApiError::Credentials { action, message },
        "" => ApiError::Other {
            action,
            detail: message,
        },
        other => ApiError::Other {
            action,
            detail: format!("{other}: {message}"),
        },
    }
}

#[cfg(test)]
#[path = "aws_tests.rs"]
mod tests;
