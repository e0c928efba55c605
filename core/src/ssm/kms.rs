//! The data key of a KMS-encrypted Session Manager shell (spec §6.3): `kms:GenerateDataKey`
//! through `aws-sdk-kms`, with the profile's SDK configuration — the same credentials, region,
//! endpoint and CA bundle as its Systems Manager client.
//!
//! A failure here ends the shell before it starts, and the user did nothing wrong in *this*
//! program: the account's Session Manager preferences demand a key the profile cannot use. So
//! each error names the key and says exactly which permission or key state to fix.

use std::collections::BTreeMap;

use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;

use crate::sdk_error::describe;
use crate::ssm::proto::encryption::{DATA_KEY_BYTES, DataKey};

/// `kms:GenerateDataKey` for one profile and region.
#[derive(Debug, Clone)]
pub struct KmsDataKeys {
    client: aws_sdk_kms::Client,
}

impl KmsDataKeys {
    /// From the profile's SDK configuration (region, credentials, endpoint, CA bundle).
    pub fn new(config: &aws_types::SdkConfig) -> Self {
        KmsDataKeys {
            client: aws_sdk_kms::Client::new(config),
        }
    }

    /// A 64-byte data key under `key_id`, bound to `context` (the agent decrypts it with the
    /// same context, so it is useless to any other session).
    pub async fn generate(
        &self,
        key_id: &str,
        context: &BTreeMap<String, String>,
    ) -> Result<DataKey, KmsError> {
        let mut call = self
            .client
            .generate_data_key()
            .key_id(key_id)
            .number_of_bytes(DATA_KEY_BYTES as i32);
        for (name, value) in context {
            call = call.encryption_context(name, value);
        }
        let output = call.send().await.map_err(|e| classify(key_id, &e))?;
        let (Some(plaintext), Some(blob)) = (output.plaintext, output.ciphertext_blob) else {
            return Err(KmsError::Other {
                key_id: key_id.to_owned(),
                detail: "GenerateDataKey returned no key".to_owned(),
            });
        };
        Ok(DataKey::new(plaintext.into_inner(), Blob::into_inner(blob)))
    }
}

/// Why there is no data key, with what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KmsError {
    #[error(
        "access denied calling kms:GenerateDataKey on KMS key {key_id} ({message}); the \
         Session Manager preferences require shells to be encrypted with this key, so the \
         profile's IAM policy and the key policy must allow kms:GenerateDataKey on it"
    )]
    AccessDenied { key_id: String, message: String },

    #[error(
        "the KMS key {key_id} that the Session Manager preferences require does not exist in \
         this account and region ({message}); correct the KMS key in the Session Manager \
         preferences"
    )]
    NotFound { key_id: String, message: String },

    #[error(
        "the KMS key {key_id} that the Session Manager preferences require cannot be used \
         ({code}: {message}); enable the key in KMS or choose another in the Session Manager \
         preferences"
    )]
    Unusable {
        key_id: String,
        code: String,
        message: String,
    },

    #[error(
        "the AWS credentials were refused calling kms:GenerateDataKey ({message}); refresh \
         them (for SSO profiles, sign in again) and retry"
    )]
    Credentials { message: String },

    #[error("kms:GenerateDataKey on KMS key {key_id} failed: {detail}")]
    Other { key_id: String, detail: String },
}

fn classify<E, R>(key_id: &str, error: &SdkError<E, R>) -> KmsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let key_id = key_id.to_owned();
    let SdkError::ServiceError(service) = error else {
        return KmsError::Other {
            key_id,
            detail: describe(error),
        };
    };
    let err = service.err();
    let message = err.message().unwrap_or_default().trim().to_owned();
    match err.code().unwrap_or_default() {
        "AccessDeniedException" => KmsError::AccessDenied { key_id, message },
        "NotFoundException" => KmsError::NotFound { key_id, message },
        code @ ("DisabledException"
        | "KMSInvalidStateException"
        | "KeyUnavailableException"
        | "InvalidKeyUsageException") => KmsError::Unusable {
            key_id,
            code: code.to_owned(),
            message,
        },
        "ExpiredTokenException"
        | "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "IncompleteSignatureException" => KmsError::Credentials { message },
        "" => KmsError::Other {
            key_id,
            detail: message,
        },
        other => KmsError::Other {
            key_id,
            detail: format!("{other}: {message}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_key_and_the_permission() {
        let denied = KmsError::AccessDenied {
            key_id: "alias/ssm-shells".into(),
            message: "not authorized".into(),
        }
        .to_string();
        assert!(denied.contains("alias/ssm-shells"), "{denied}");
        assert!(denied.contains("kms:GenerateDataKey"), "{denied}");
        let disabled = KmsError::Unusable {
            key_id: "k".into(),
            code: "DisabledException".into(),
            message: "is disabled".into(),
        }
        .to_string();
        assert!(disabled.contains("enable the key"), "{disabled}");
    }
}
