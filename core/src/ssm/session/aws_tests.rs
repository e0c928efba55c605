//! [`SsmSessionApi`] against a canned HTTP server on loopback: what goes on the wire, and how
//! each answer is understood.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::*;

/// One recorded request: its `X-Amz-Target` and JSON body.
type Recorded = Arc<Mutex<Vec<(String, Value)>>>;

/// Answers each request with the next `(status, body)`.
async fn canned(answers: Vec<(u16, Value)>) -> (SocketAddr, Recorded) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let recorded: Recorded = Arc::default();
    let log = recorded.clone();
    tokio::spawn(async move {
        let mut answers = answers.into_iter();
        while let Ok((socket, _)) = listener.accept().await {
            let mut socket = BufReader::new(socket);
            loop {
                let mut target = String::new();
                let mut length = 0usize;
                let mut line = String::new();
                loop {
                    line.clear();
                    if socket.read_line(&mut line).await.unwrap_or(0) == 0 {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(value) = lower.strip_prefix("content-length:") {
                        length = value.trim().parse().unwrap();
                    }
                    if lower.starts_with("x-amz-target:") {
                        target = line["x-amz-target:".len()..].trim().to_owned();
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                if line.is_empty() {
                    break;
                }
                let mut body = vec![0u8; length];
                socket.read_exact(&mut body).await.unwrap();
                log.lock()
                    .unwrap()
                    .push((target, serde_json::from_slice(&body).unwrap()));
                let (status, answer) = answers.next().expect("an answer for every request");
                let answer = answer.to_string();
                let response = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/x-amz-json-1.1\r\n\
                     x-amzn-RequestId: 11111111-2222-3333-4444-555555555555\r\n\
                     Content-Length: {}\r\n\r\n{answer}",
                    answer.len()
                );
                socket
                    .get_mut()
                    .write_all(response.as_bytes())
                    .await
                    .unwrap();
            }
        }
    });
    (addr, recorded)
}

fn api(addr: SocketAddr) -> SsmSessionApi {
    let config = aws_sdk_ssm::Config::builder()
        .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
        .region(aws_sdk_ssm::config::Region::new("eu-west-1"))
        .endpoint_url(format!("http://{addr}"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            None,
            None,
            "test",
        ))
        .retry_config(aws_sdk_ssm::config::retry::RetryConfig::disabled())
        .build();
    SsmSessionApi::from_client(aws_sdk_ssm::Client::from_conf(config))
}

fn request(document: SessionDocument) -> StartSessionRequest {
    StartSessionRequest {
        target: "i-0123456789abcdef0".into(),
        document,
    }
}

fn error_body(code: &str, message: &str) -> Value {
    json!({"__type": code, "Message": message})
}

#[tokio::test]
async fn start_session_sends_the_document_with_list_parameters_and_reads_the_answer() {
    let (addr, recorded) = canned(vec![(
        200,
        json!({
            "SessionId": "alice-0abc",
            "TokenValue": "AAEAAtoken",
            "StreamUrl": "wss://ssmmessages.eu-west-1.amazonaws.com/v1/data-channel/alice-0abc?role=publish_subscribe"
        }),
    )])
    .await;
    let started = api(addr)
        .start_session(&request(SessionDocument::PortForwardingToRemoteHost {
            host: "db.internal".into(),
            port: 5432,
        }))
        .await
        .unwrap();
    assert_eq!(started.session_id, "alice-0abc");
    assert_eq!(started.token.expose_secret(), "AAEAAtoken");
    assert_eq!(
        started.stream_url.endpoint().host(),
        "ssmmessages.eu-west-1.amazonaws.com"
    );
    let (target, body) = recorded.lock().unwrap()[0].clone();
    assert_eq!(target, "AmazonSSM.StartSession");
    assert_eq!(
        body,
        json!({
            "Target": "i-0123456789abcdef0",
            "DocumentName": "AWS-StartPortForwardingSessionToRemoteHost",
            "Parameters": {"host": ["db.internal"], "portNumber": ["5432"], "localPortNumber": ["0"]}
        })
    );
}

#[tokio::test]
async fn a_shell_session_sends_no_document() {
    let (addr, recorded) = canned(vec![(
        200,
        json!({"SessionId": "s", "TokenValue": "t", "StreamUrl": "wss://ssmmessages.eu-west-1.amazonaws.com/v1/data-channel/s"}),
    )])
    .await;
    api(addr)
        .start_session(&request(SessionDocument::Shell))
        .await
        .unwrap();
    assert_eq!(
        recorded.lock().unwrap()[0].1,
        json!({"Target": "i-0123456789abcdef0"})
    );
}

#[tokio::test]
async fn an_unusable_stream_url_is_a_bad_response_not_a_connection_attempt() {
    let (addr, _) = canned(vec![(
        200,
        json!({"SessionId": "s", "TokenValue": "t", "StreamUrl": "ws://ssmmessages.eu-west-1.amazonaws.com/v1/data-channel/s"}),
    )])
    .await;
    let error = api(addr)
        .start_session(&request(SessionDocument::Ssh { port: 22 }))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ApiError::BadResponse { reason, .. } if reason.contains("loopback")),
        "{error}"
    );
}

#[tokio::test]
async fn start_session_errors_name_the_target_the_action_or_the_document() {
    let (addr, _) = canned(vec![
        (
            400,
            error_body(
                "TargetNotConnected",
                "i-0123456789abcdef0 is not connected.",
            ),
        ),
        (
            400,
            error_body(
                "AccessDeniedException",
                "User: arn:aws:iam::1:user/bob is not authorized to perform: ssm:StartSession",
            ),
        ),
        (
            400,
            error_body("InvalidDocument", "Document AWS-StartSSHSession not found."),
        ),
        (500, error_body("InternalServerError", "oops")),
    ])
    .await;
    let api = api(addr);
    let ssh = request(SessionDocument::Ssh { port: 22 });

    let error = api.start_session(&ssh).await.unwrap_err();
    assert_eq!(
        error,
        ApiError::TargetNotConnected {
            target: "i-0123456789abcdef0".into()
        }
    );
    assert!(
        error
            .to_string()
            .contains("SSM agent on i-0123456789abcdef0")
    );

    let error = api.start_session(&ssh).await.unwrap_err();
    assert!(matches!(
        error,
        ApiError::AccessDenied {
            action: "StartSession",
            ..
        }
    ));
    assert!(error.to_string().contains("ssm:StartSession"), "{error}");

    let error = api.start_session(&ssh).await.unwrap_err();
    assert!(
        matches!(&error, ApiError::InvalidDocument { document, .. } if document == "AWS-StartSSHSession"),
        "{error}"
    );

    let error = api.start_session(&ssh).await.unwrap_err();
    assert!(matches!(error, ApiError::Internal { .. }));
    assert!(error.is_retryable());
}

#[tokio::test]
async fn resume_session_returns_a_token_or_none_and_knows_a_vanished_session() {
    let (addr, recorded) = canned(vec![
        (
            200,
            json!({"SessionId": "s-1", "TokenValue": "fresh", "StreamUrl": "wss://ignored.example/v1"}),
        ),
        (200, json!({"SessionId": "s-1", "TokenValue": ""})),
        (
            400,
            error_body("DoesNotExistException", "Session s-1 does not exist"),
        ),
    ])
    .await;
    let api = api(addr);
    let token = api.resume_session("s-1").await.unwrap().unwrap();
    assert_eq!(token.expose_secret(), "fresh");
    assert!(api.resume_session("s-1").await.unwrap().is_none());
    assert_eq!(
        api.resume_session("s-1").await.unwrap_err(),
        ApiError::SessionNotFound {
            session_id: "s-1".into()
        }
    );
    let recorded = recorded.lock().unwrap();
    assert_eq!(recorded[0].0, "AmazonSSM.ResumeSession");
    assert_eq!(recorded[0].1, json!({"SessionId": "s-1"}));
}

#[tokio::test]
async fn terminate_session_names_the_session() {
    let (addr, recorded) = canned(vec![(200, json!({"SessionId": "s-9"}))]).await;
    api(addr).terminate_session("s-9").await.unwrap();
    assert_eq!(
        recorded.lock().unwrap()[0],
        (
            "AmazonSSM.TerminateSession".to_owned(),
            json!({"SessionId": "s-9"})
        )
    );
}

#[tokio::test]
async fn an_unreachable_endpoint_is_retryable() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let error = api(addr).resume_session("s-1").await.unwrap_err();
    assert!(
        matches!(
            error,
            ApiError::Unreachable {
                action: "ResumeSession",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.is_retryable());
}

#[test]
fn credential_and_throttling_codes_are_told_apart() {
    let context = Context {
        action: "ResumeSession",
        target: "",
        document: None,
        session_id: "s",
    };
    let expired = from_code(&context, Some("ExpiredTokenException"), Some("expired"));
    assert!(
        matches!(expired, ApiError::CredentialsExpired { .. }),
        "{expired:?}"
    );
    assert!(expired.is_retryable(), "renewed credentials may succeed");
    let refused = from_code(
        &context,
        Some("UnrecognizedClientException"),
        Some("invalid"),
    );
    assert!(matches!(refused, ApiError::Credentials { .. }));
    assert!(!refused.is_retryable());
    let throttled = from_code(&context, Some("ThrottlingException"), Some("Rate exceeded"));
    assert!(throttled.is_retryable());
    let unknown = from_code(&context, Some("ValidationException"), Some("bad id"));
    assert_eq!(
        unknown.to_string(),
        "ssm:ResumeSession failed: ValidationException: bad id"
    );
    assert!(!unknown.is_retryable());
}
