//! Tests of ephemeral keys: the key and its file, the OS user guess, and `SendSSHPublicKey`
//! against a one-shot HTTP stand-in on 127.0.0.1 (the real SDK client, the real wire format).

use super::*;
use crate::inventory::{HostImage, InstanceState};
use aws_sdk_ec2instanceconnect::error::ErrorMetadata;
use aws_sdk_ec2instanceconnect::types::error::{
    AuthException, Ec2InstanceNotFoundException, Ec2InstanceStateInvalidException,
    ThrottlingException,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[test]
fn a_generated_key_round_trips_through_openssh_parsing() {
    let file = KeyFile::generate().unwrap();
    let pem = std::fs::read_to_string(file.private_key_path()).unwrap();
    assert!(pem.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"));
    let parsed = PrivateKey::from_openssh(&pem).unwrap();
    assert_eq!(parsed.algorithm(), Algorithm::Ed25519);
    assert!(!parsed.is_encrypted());
    assert_eq!(parsed.public_key().to_openssh().unwrap(), file.public_key());
    // The CLI's exact shape: type, space, base64 blob, no comment — 80 characters.
    assert!(file.public_key().starts_with("ssh-ed25519 "));
    assert_eq!(file.public_key().len(), 80);
    assert_eq!(
        ssh_key::PublicKey::from_openssh(file.public_key())
            .unwrap()
            .algorithm(),
        Algorithm::Ed25519
    );
}

#[test]
fn every_key_is_new() {
    let a = KeyFile::generate().unwrap();
    let b = KeyFile::generate().unwrap();
    assert_ne!(a.public_key(), b.public_key());
    assert_ne!(a.dir(), b.dir());
}

#[cfg(unix)]
#[test]
fn the_key_file_is_private_and_removed_on_drop() {
    use std::os::unix::fs::PermissionsExt;
    let file = KeyFile::generate().unwrap();
    let (dir, path) = (file.dir().to_owned(), file.private_key_path().to_owned());
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(path.parent(), Some(dir.as_path()));
    drop(file);
    assert!(!path.exists());
    assert!(!dir.exists());
}

#[test]
fn debug_output_never_shows_the_private_key() {
    let file = KeyFile::generate().unwrap();
    let pem = std::fs::read_to_string(file.private_key_path()).unwrap();
    let body: String = pem.lines().nth(1).unwrap().chars().take(40).collect();
    let shown = format!("{file:?}");
    assert!(!shown.contains(&body), "{shown}");
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    assert!(shown.contains(file.public_key()));
}

fn host(image_name: Option<&str>, platform_details: Option<&str>, platform: Platform) -> Host {
    Host {
        instance_id: "i-0123456789abcdef0".into(),
        name: Some("web".into()),
        tags: Default::default(),
        state: InstanceState::Running,
        platform,
        private_ip: Some("10.0.0.5".into()),
        public_ip: None,
        vpc_id: Some("vpc-a".into()),
        subnet_id: Some("subnet-a1".into()),
        availability_zone: Some("us-east-1a".into()),
        key_name: None,
        image: Some(HostImage {
            id: "ami-0123456789abcdef0".into(),
            name: image_name.map(str::to_owned),
            platform_details: platform_details.map(str::to_owned),
        }),
        security_group_ids: Vec::new(),
        profile: "prod".into(),
        account_id: "111122223333".into(),
        region: "us-east-1".into(),
        stale: false,
    }
}

#[test]
fn the_os_user_follows_the_image_unless_the_user_chose_one() {
    let linux = Platform::Linux;
    // (AMI name, PlatformDetails, platform, the user's own choice, expected user)
    type Case<'a> = (
        Option<&'a str>,
        Option<&'a str>,
        Platform,
        Option<&'a str>,
        &'a str,
    );
    let table: &[Case<'_>] = &[
        (
            Some("al2023-ami-2023.6.20241111.0-kernel-6.1-x86_64"),
            Some("Linux/UNIX"),
            linux,
            None,
            "ec2-user",
        ),
        (
            Some("ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20241119"),
            Some("Linux/UNIX"),
            linux,
            None,
            "ubuntu",
        ),
        (None, Some("Ubuntu Pro"), linux, None, "ubuntu"),
        (
            Some("debian-12-amd64-20240717-1811"),
            None,
            linux,
            None,
            "admin",
        ),
        (
            Some("bitnami-wordpress-6.6.2-r0-debian-12-amd64"),
            None,
            linux,
            None,
            "bitnami",
        ),
        (Some("CentOS Stream 9 x86_64"), None, linux, None, "centos"),
        (
            Some("Fedora-Cloud-Base-40-1.14.x86_64-hvm"),
            None,
            linux,
            None,
            "fedora",
        ),
        (Some("Rocky-9-EC2-Base-9.4"), None, linux, None, "rocky"),
        (
            Some("RHEL-9.4.0_HVM-20240605-x86_64"),
            Some("Red Hat Enterprise Linux"),
            linux,
            None,
            "ec2-user",
        ),
        (None, None, linux, None, "ec2-user"),
        (
            Some("Windows_Server-2022-English-Full-Base"),
            Some("Windows"),
            Platform::Windows,
            None,
            "Administrator",
        ),
        (
            Some("ubuntu/images/x"),
            None,
            linux,
            Some("deploy"),
            "deploy",
        ),
        (Some("ubuntu/images/x"), None, linux, Some("  "), "ubuntu"),
    ];
    for (name, details, platform, explicit, expected) in table {
        assert_eq!(
            guess_os_user(&host(*name, *details, *platform), *explicit),
            *expected,
            "{name:?} {details:?} {explicit:?}"
        );
    }
    let mut unknown_image = host(None, None, linux);
    unknown_image.image = None;
    assert_eq!(guess_os_user(&unknown_image, None), DEFAULT_OS_USER);
}

#[test]
fn the_login_user_tag_beats_the_image_but_not_the_users_choice() {
    let mut tagged = host(Some("ubuntu/images/x"), None, Platform::Linux);
    tagged.tags.insert(LOGIN_USER_TAG.into(), "deploy".into());
    assert_eq!(guess_os_user(&tagged, None), "deploy");
    assert_eq!(guess_os_user(&tagged, Some("root")), "root");
}

#[test]
fn os_user_names_follow_the_service_pattern() {
    for ok in [
        "ec2-user",
        "ubuntu",
        "_svc",
        "a",
        "user@corp.example",
        "x$",
        &"a".repeat(32),
    ] {
        assert!(check_os_user(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        "1root",
        "-x",
        "has space",
        "a$b",
        "ro:ot",
        &"a".repeat(33),
    ] {
        assert!(
            matches!(check_os_user(bad), Err(KeyError::InvalidOsUser { .. })),
            "{bad:?}"
        );
    }
}

fn target() -> KeyTarget {
    KeyTarget {
        instance_id: "i-0123456789abcdef0".into(),
        region: "us-east-1".into(),
        availability_zone: Some("us-east-1a".into()),
    }
}

#[test]
fn service_errors_become_actionable_messages() {
    let table: Vec<(SendSSHPublicKeyError, &str)> = vec![
        (
            SendSSHPublicKeyError::AuthException(AuthException::builder().message("nope").build()),
            "needs the IAM permission ec2-instance-connect:SendSSHPublicKey",
        ),
        (
            SendSSHPublicKeyError::generic(
                ErrorMetadata::builder()
                    .code("AccessDeniedException")
                    .message("User: arn:aws:iam::1:user/x is not authorized")
                    .build(),
            ),
            "needs the IAM permission ec2-instance-connect:SendSSHPublicKey",
        ),
        (
            SendSSHPublicKeyError::Ec2InstanceNotFoundException(
                Ec2InstanceNotFoundException::builder().build(),
            ),
            "cannot find i-0123456789abcdef0 in us-east-1",
        ),
        (
            SendSSHPublicKeyError::Ec2InstanceStateInvalidException(
                Ec2InstanceStateInvalidException::builder().build(),
            ),
            "is not running",
        ),
        (
            SendSSHPublicKeyError::ThrottlingException(ThrottlingException::builder().build()),
            "throttling requests; wait a few seconds and retry",
        ),
        (
            SendSSHPublicKeyError::generic(ErrorMetadata::builder().code("Weird").build()),
            "refused the key for ec2-user@i-0123456789abcdef0: Weird",
        ),
    ];
    for (error, expected) in table {
        let message = explain_service_error(&error, &target(), "ec2-user");
        assert!(message.contains(expected), "{message}");
    }
    // As parsed from a response: the message lives in the error metadata too.
    let parsed = AuthException::builder()
        .message("nope")
        .meta(
            ErrorMetadata::builder()
                .code("AuthException")
                .message("nope")
                .build(),
        )
        .build();
    let with_detail = explain_service_error(
        &SendSSHPublicKeyError::AuthException(parsed),
        &target(),
        "ec2-user",
    );
    assert!(with_detail.ends_with("(AWS said: nope)"), "{with_detail}");
}

/// One HTTP exchange on 127.0.0.1: answers `status` with `body` and hands back the request.
async fn one_shot_server(
    status: &'static str,
    body: &'static str,
) -> (String, tokio::task::JoinHandle<(String, String)>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let served = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        let head_end = loop {
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0, "the client hung up before sending a request");
            request.extend_from_slice(&buf[..n]);
            if let Some(at) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
        };
        let head = String::from_utf8(request[..head_end].to_vec()).unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().unwrap())
            })
            .unwrap_or(0);
        while request.len() < head_end + length {
            let n = tcp.read(&mut buf).await.unwrap();
            request.extend_from_slice(&buf[..n]);
        }
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/x-amz-json-1.1\r\n\
             x-amzn-RequestId: req-1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        tcp.write_all(response.as_bytes()).await.unwrap();
        let body = String::from_utf8(request[head_end..].to_vec()).unwrap();
        (head, body)
    });
    (url, served)
}

async fn sdk_for(url: &str) -> SdkConfig {
    use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
    let no_files = EnvConfigFiles::builder()
        .with_contents(EnvConfigFileKind::Config, "")
        .with_contents(EnvConfigFileKind::Credentials, "")
        .build();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .profile_files(no_files)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            None,
            None,
            "test",
        ))
        .endpoint_url(url)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await
}

#[tokio::test]
async fn a_pushed_key_is_sent_as_the_cli_sends_it() {
    let (url, served) = one_shot_server("200 OK", r#"{"RequestId":"req-1","Success":true}"#).await;
    let key = push_ephemeral_key(&sdk_for(&url).await, &target(), "ubuntu")
        .await
        .unwrap();
    let (head, body) = served.await.unwrap();
    assert!(head.starts_with("POST / HTTP/1.1\r\n"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("x-amz-target: awsec2instanceconnectservice.sendsshpublickey"),
        "{head}"
    );
    let sent: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(sent["InstanceId"], "i-0123456789abcdef0");
    assert_eq!(sent["InstanceOSUser"], "ubuntu");
    assert_eq!(sent["SSHPublicKey"], key.file.public_key());
    assert_eq!(sent["AvailabilityZone"], "us-east-1a");
    assert_eq!(key.os_user, "ubuntu");
    assert!(key.private_key_path().exists());
    let left = key.expires_at.saturating_duration_since(Instant::now());
    assert!(
        left > Duration::from_secs(50) && left <= KEY_LIFETIME,
        "{left:?}"
    );
}

#[tokio::test]
async fn access_denied_names_the_iam_action() {
    let (url, served) = one_shot_server(
        "400 Bad Request",
        r#"{"__type":"AccessDeniedException","message":"User: arn:aws:iam::111122223333:user/alice is not authorized to perform: ec2-instance-connect:SendSSHPublicKey"}"#,
    )
    .await;
    let error = push_ephemeral_key(&sdk_for(&url).await, &target(), "ec2-user")
        .await
        .unwrap_err();
    served.await.unwrap();
    let message = error.to_string();
    assert!(
        message.contains("(AWS said: User: arn:aws:iam::111122223333:user/alice"),
        "{message}"
    );
    assert!(
        message.contains("needs the IAM permission ec2-instance-connect:SendSSHPublicKey"),
        "{message}"
    );
    assert!(message.contains("as ec2-user"), "{message}");
}

#[tokio::test]
async fn an_invalid_os_user_is_refused_before_any_call() {
    // No server: a call would fail with a connection error instead.
    let sdk = sdk_for("http://127.0.0.1:9").await;
    let error = push_ephemeral_key(&sdk, &target(), "has space")
        .await
        .unwrap_err();
    assert!(matches!(error, KeyError::InvalidOsUser { .. }), "{error}");
}
