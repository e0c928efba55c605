//! Turning AWS SDK errors into one line a user can read.
//!
//! The SDK's `Display` for an operation error is just "service error"; the useful parts are the
//! modelled code and message, or for transport failures the chain of causes.

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};

/// `Code: message` for service errors, the cause chain for everything else.
pub(crate) fn describe<E, R>(error: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    if let SdkError::ServiceError(service) = error {
        let err = service.err();
        return match (err.code(), err.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_owned(),
            _ => causes(error),
        };
    }
    causes(error)
}

/// An error and its causes on one line, each cause once.
pub(crate) fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}
