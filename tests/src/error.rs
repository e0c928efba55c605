//! Service errors, and how each wire protocol spells them.
//!
//! The SDKs find an error's code by parsing the body in the protocol's own shape, so an error
//! in the wrong shape surfaces as an unhandled one and the product's error handling goes
//! untested. `AwsError` is the code, message and HTTP status; `Protocol` writes it the way
//! the service being called would.

use axum::http::StatusCode;

use crate::xml::XmlWriter;

/// An error as a service reports it: `code` is what `ProvideErrorMetadata::code()` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl AwsError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        AwsError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
}

/// The error dialects of the services the simulator speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// EC2's query protocol: `<Response><Errors><Error>…</Error></Errors><RequestID>…`.
    Ec2Query,
    /// The `awsQuery` protocol (STS, IAM): `<ErrorResponse xmlns="…"><Error><Type>…`.
    AwsQuery { xmlns: &'static str },
    /// `awsJson1_1` (EC2 Instance Connect): `{"__type":"…","Message":"…"}`, the code also in
    /// the `x-amzn-ErrorType` header; the request id travels only in `x-amzn-RequestId`.
    Json,
}

impl Protocol {
    /// The error document for `error`, carrying `request_id`.
    pub fn error_body(self, error: &AwsError, request_id: &str) -> String {
        match self {
            Protocol::Ec2Query => XmlWriter::bare_document("Response", |w| {
                w.element("Errors", |w| {
                    w.element("Error", |w| {
                        w.text("Code", error.code).text("Message", &error.message);
                    });
                });
                w.text("RequestID", request_id);
            }),
            Protocol::AwsQuery { xmlns } => XmlWriter::document("ErrorResponse", xmlns, |w| {
                w.element("Error", |w| {
                    let fault = if error.status.is_server_error() {
                        "Receiver"
                    } else {
                        "Sender"
                    };
                    w.text("Type", fault)
                        .text("Code", error.code)
                        .text("Message", &error.message);
                });
                w.text("RequestId", request_id);
            }),
            Protocol::Json => serde_json::json!({
                "__type": error.code,
                "Message": error.message,
            })
            .to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec2_errors_nest_under_response_errors() {
        let error = AwsError::new(StatusCode::UNAUTHORIZED, "AuthFailure", "no <way>");
        assert_eq!(
            Protocol::Ec2Query.error_body(&error, "req-1"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>AuthFailure</Code><Message>no &lt;way&gt;</Message></Error></Errors><RequestID>req-1</RequestID></Response>"
        );
    }

    #[test]
    fn json_errors_carry_the_code_in_type() {
        let error = AwsError::bad_request("InvalidArgsException", "bad \"key\"");
        assert_eq!(
            Protocol::Json.error_body(&error, "r"),
            r#"{"Message":"bad \"key\"","__type":"InvalidArgsException"}"#
        );
    }

    #[test]
    fn aws_query_errors_say_whose_fault_it_was() {
        let protocol = Protocol::AwsQuery {
            xmlns: "https://sts.amazonaws.com/doc/2011-06-15/",
        };
        let sender = protocol.error_body(
            &AwsError::new(StatusCode::FORBIDDEN, "SignatureDoesNotMatch", "m"),
            "r",
        );
        assert_eq!(
            sender,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code><Message>m</Message></Error><RequestId>r</RequestId></ErrorResponse>"
        );
        let receiver = protocol.error_body(
            &AwsError::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure", "m"),
            "r",
        );
        assert!(receiver.contains("<Type>Receiver</Type>"), "{receiver}");
    }
}
