//! AWS EC2 Instance Connect, `awsJson1_1` protocol, API version 2018-04-02:
//! `SendSSHPublicKey`, which makes a public key authorize one OS user of one instance for 60
//! seconds. The tunnel endpoint (`openTunnel`) is a different service; see `crate::eic`.
//!
//! Validation follows the service model (`InstanceId` `^i-[a-f0-9]+$`, 10–32 characters;
//! `InstanceOSUser` the Linux user-name pattern, 1–32; `SSHPublicKey` 80–4096 characters) and
//! reports violations the way AWS does, as `InvalidArgsException: 1 validation error detected:
//! Value 'mi-…' at 'instanceId' failed to satisfy constraint: …`. Keys must be well-formed
//! OpenSSH `ssh-rsa` (2048 bits or more), `ssh-ed25519` or `ecdsa-sha2-nistp*` keys.
//!
//! A pushed key is stored for its instance and user; when the instance's port 22 is a real
//! sshd (`crate::sshd`), the key is also published to that server.

use axum::http::StatusCode;
use base64::Engine as _;
use serde_json::Value;

use crate::auth::{AuthError, Caller};
use crate::error::AwsError;
use crate::scenario::{Backend, InstanceState};
use crate::sigv4::SigV4Error;
use crate::world::World;

/// The SigV4 signing name (the model's `endpointPrefix`).
pub const SIGNING_NAME: &str = "ec2-instance-connect";

/// `X-Amz-Target` is this prefix and the operation name.
pub const TARGET_PREFIX: &str = "AWSEC2InstanceConnectService.";

pub fn call(
    world: &World,
    caller: Caller<'_>,
    action: &str,
    body: &[u8],
    request_id: &str,
) -> Result<String, AwsError> {
    match action {
        "SendSSHPublicKey" => send_ssh_public_key(world, caller, body, request_id),
        other => Err(AwsError::bad_request(
            "UnknownOperationException",
            format!("The operation {other} is not supported by EC2 Instance Connect."),
        )),
    }
}

/// EC2 Instance Connect reports credentials it cannot accept with its modelled
/// `AuthException` ("Either your AWS credentials are not valid or you do not have access to the
/// EC2 instance"); a request with no signature, or a malformed one, gets the generic JSON
/// protocol errors.
pub fn auth_error(error: &AuthError) -> AwsError {
    match error {
        AuthError::Signature(SigV4Error::Missing) => AwsError::new(
            StatusCode::FORBIDDEN,
            "MissingAuthenticationTokenException",
            SigV4Error::Missing.to_string(),
        ),
        AuthError::Signature(incomplete @ SigV4Error::Incomplete(_)) => {
            AwsError::bad_request("IncompleteSignatureException", incomplete.to_string())
        }
        AuthError::Signature(other) => {
            AwsError::new(StatusCode::FORBIDDEN, "AuthException", other.to_string())
        }
        AuthError::UnknownAccessKey | AuthError::UnknownRegion(_) => AwsError::new(
            StatusCode::FORBIDDEN,
            "AuthException",
            "Either your AWS credentials are not valid or you do not have access to the EC2 instance.",
        ),
        AuthError::ExpiredToken => AwsError::bad_request(
            "ExpiredTokenException",
            "The security token included in the request is expired",
        ),
    }
}

fn send_ssh_public_key(
    world: &World,
    caller: Caller<'_>,
    body: &[u8],
    request_id: &str,
) -> Result<String, AwsError> {
    let input: serde_json::Map<String, Value> = serde_json::from_slice(body).map_err(|_| {
        AwsError::bad_request(
            "SerializationException",
            "The request body is not a JSON object.",
        )
    })?;
    let field = |name: &str| -> Result<Option<&str>, AwsError> {
        match input.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(AwsError::bad_request(
                "SerializationException",
                format!("STRING_VALUE can not be converted to a String for {name}"),
            )),
        }
    };
    let instance_id = field("InstanceId")?;
    let os_user = field("InstanceOSUser")?;
    let public_key = field("SSHPublicKey")?;
    let availability_zone = field("AvailabilityZone")?;

    let mut violations = Vec::new();
    check(
        &mut violations,
        "instanceId",
        instance_id,
        true,
        10..=32,
        |id| pattern_violation(is_instance_id(id), "^i-[a-f0-9]+$"),
    );
    check(
        &mut violations,
        "instanceOSUser",
        os_user,
        true,
        1..=32,
        |user| {
            pattern_violation(
                is_os_user(user),
                r"(^[A-Za-z_][A-Za-z0-9\@\._-]{0,30}[A-Za-z0-9\$_-]?$)|(^(?=.{2,32}$)[0-9]{1,32}[A-Za-z\@\._-][A-Za-z0-9\@\._-]*[A-Za-z0-9\$_-]?$)",
            )
        },
    );
    check(
        &mut violations,
        "sSHPublicKey",
        public_key,
        true,
        80..=4096,
        |_| None,
    );
    check(
        &mut violations,
        "availabilityZone",
        availability_zone,
        false,
        6..=32,
        |zone| pattern_violation(is_availability_zone(zone), r"^(\w+-){2,3}\d+\w+$"),
    );
    let (Some(instance_id), Some(os_user), Some(public_key)) = (instance_id, os_user, public_key)
    else {
        return Err(validation_error(&violations));
    };
    if !violations.is_empty() {
        return Err(validation_error(&violations));
    }
    let public_key = validate_public_key(public_key)?;

    let action = "ec2-instance-connect:SendSSHPublicKey";
    let instance_arn = format!(
        "arn:aws:ec2:{}:{}:instance/{instance_id}",
        caller.region,
        caller.account()
    );
    if !caller.profile.may_on(action, &instance_arn) {
        return Err(AwsError::bad_request(
            "AccessDeniedException",
            format!(
                "User: arn:aws:iam::{account}:user/{user} is not authorized to perform: {action} on resource: arn:aws:ec2:{region}:{account}:instance/{instance_id} because no identity-based policy allows the {action} action",
                account = caller.account(),
                user = caller.profile.user_name(),
                region = caller.region,
            ),
        ));
    }
    let Some((instance, placement)) = world
        .scenario
        .instances_in(caller.account(), caller.region)
        .find(|(instance, _)| instance.instance_id == instance_id)
    else {
        return Err(instance_not_found(instance_id));
    };
    if availability_zone.is_some_and(|zone| zone != placement.subnet.availability_zone) {
        return Err(instance_not_found(instance_id));
    }
    match instance.state {
        InstanceState::Running => {}
        InstanceState::Pending => {
            return Err(AwsError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "EC2InstanceUnavailableException",
                "The instance is currently unavailable. Wait a few minutes and try again.",
            ));
        }
        state => {
            return Err(AwsError::bad_request(
                "EC2InstanceStateInvalidException",
                format!(
                    "Unable to connect because the instance is not in a valid state ({}). Connecting to a stopped or terminated instance is not supported. If the instance is stopped, start your instance, and try to connect again.",
                    state.name()
                ),
            ));
        }
    }

    let now = world.clock.now();
    let valid = world.keys.push(instance_id, os_user, &public_key, now);
    if instance.backends.get(22) == Some(Backend::Sshd) {
        let published: Vec<(String, _)> = valid
            .into_iter()
            .map(|key| (key.public_key, world.clock.wall_time_at(key.expires)))
            .collect();
        if let Err(error) = world.sshd.publish_keys(instance_id, os_user, &published) {
            tracing::error!(instance_id, %error, "cannot hand the pushed key to the instance's sshd");
            return Err(AwsError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ServiceException",
                "The service encountered an error. Follow the instructions in the error message and try again.",
            ));
        }
    }
    tracing::info!(instance_id, os_user, "SSH public key pushed for 60 seconds");
    Ok(serde_json::json!({ "RequestId": request_id, "Success": true }).to_string())
}

fn instance_not_found(instance_id: &str) -> AwsError {
    AwsError::bad_request(
        "EC2InstanceNotFoundException",
        format!("Instance not found: {instance_id}"),
    )
}

/// Adds the constraint violations of member `name` (`value` as sent) to `violations`, in
/// AWS's wording.
fn check(
    violations: &mut Vec<String>,
    name: &str,
    value: Option<&str>,
    required: bool,
    length: std::ops::RangeInclusive<usize>,
    pattern: impl Fn(&str) -> Option<String>,
) {
    let Some(value) = value else {
        if required {
            violations.push(format!(
                "Value null at '{name}' failed to satisfy constraint: Member must not be null"
            ));
        }
        return;
    };
    let chars = value.chars().count();
    let shown = if name == "sSHPublicKey" {
        // Keys are long; the length is what matters.
        String::new()
    } else {
        format!(" '{value}'")
    };
    if chars < *length.start() {
        violations.push(format!(
            "Value{shown} at '{name}' failed to satisfy constraint: Member must have length greater than or equal to {}",
            length.start()
        ));
    }
    if chars > *length.end() {
        violations.push(format!(
            "Value{shown} at '{name}' failed to satisfy constraint: Member must have length less than or equal to {}",
            length.end()
        ));
    }
    if let Some(constraint) = pattern(value) {
        violations.push(format!(
            "Value{shown} at '{name}' failed to satisfy constraint: {constraint}"
        ));
    }
}

fn pattern_violation(matches: bool, pattern: &str) -> Option<String> {
    (!matches).then(|| format!("Member must satisfy regular expression pattern: {pattern}"))
}

fn validation_error(violations: &[String]) -> AwsError {
    let count = violations.len();
    let noun = if count == 1 { "error" } else { "errors" };
    AwsError::bad_request(
        "InvalidArgsException",
        format!(
            "{count} validation {noun} detected: {}",
            violations.join("; ")
        ),
    )
}

/// `^i-[a-f0-9]+$`
fn is_instance_id(id: &str) -> bool {
    id.strip_prefix("i-").is_some_and(|hex| {
        !hex.is_empty()
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The model's `InstanceOSUser` pattern, either alternative:
/// `^[A-Za-z_][A-Za-z0-9\@\._-]{0,30}[A-Za-z0-9\$_-]?$`, or 2–32 characters that start with
/// digits followed by a letter or `@._-`, then `[A-Za-z0-9@._-]*`, then optionally one of
/// `[A-Za-z0-9$_-]`.
fn is_os_user(user: &str) -> bool {
    let bytes = user.as_bytes();
    let middle = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'@' | b'.' | b'_' | b'-');
    let last = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'$' | b'_' | b'-');
    let named = match bytes {
        [first, rest @ ..] if first.is_ascii_alphabetic() || *first == b'_' => {
            // The optional last character may be `$`; everything else is a middle character.
            let body = match rest {
                [init @ .., tail] if !middle(*tail) => last(*tail).then_some(init),
                all => Some(all),
            };
            body.is_some_and(|body| body.len() <= 31 && body.iter().all(|b| middle(*b)))
        }
        _ => false,
    };
    let numeric = (2..=32).contains(&bytes.len()) && {
        let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
        let rest = &bytes[digits..];
        digits >= 1
            && match rest {
                [first, tail @ ..]
                    if first.is_ascii_alphabetic()
                        || matches!(first, b'@' | b'.' | b'_' | b'-') =>
                {
                    match tail {
                        [] => true,
                        [init @ .., end] => {
                            init.iter().all(|b| middle(*b)) && (middle(*end) || last(*end))
                        }
                    }
                }
                _ => false,
            }
    };
    named || numeric
}

/// `^(\w+-){2,3}\d+\w+$`, e.g. `us-east-1a`.
fn is_availability_zone(zone: &str) -> bool {
    let word = |part: &str| {
        !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    let parts: Vec<&str> = zone.split('-').collect();
    let Some((last, prefixes)) = parts.split_last() else {
        return false;
    };
    let digits = last.bytes().take_while(u8::is_ascii_digit).count();
    (2..=3).contains(&prefixes.len())
        && prefixes.iter().all(|part| word(part))
        && digits >= 1
        && word(&last[digits..])
}

/// Checks that `text` is an OpenSSH public key line of a type EC2 Instance Connect accepts and
/// returns it without surrounding whitespace.
fn validate_public_key(text: &str) -> Result<String, AwsError> {
    let text = text.trim();
    let mut fields = text.split_whitespace();
    let (Some(kind), Some(encoded)) = (fields.next(), fields.next()) else {
        return Err(invalid_key("SSH"));
    };
    let family = match kind {
        "ssh-rsa" => "RSA",
        "ssh-ed25519" => "ED25519",
        "ecdsa-sha2-nistp256" | "ecdsa-sha2-nistp384" | "ecdsa-sha2-nistp521" => "ECDSA",
        other => {
            return Err(AwsError::bad_request(
                "InvalidArgsException",
                format!(
                    "Invalid input parameter received for Illegal argument exception: Unsupported SSH public key type {other}; use ssh-rsa, ssh-ed25519 or ecdsa-sha2-nistp256/384/521"
                ),
            ));
        }
    };
    let blob = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| invalid_key(family))?;
    let mut reader = WireReader(&blob);
    if reader.string() != Some(kind.as_bytes()) {
        return Err(invalid_key(family));
    }
    let well_formed = match family {
        "RSA" => {
            let exponent = reader.string();
            let modulus = reader.string();
            match (exponent, modulus) {
                (Some(e), Some(n)) if !e.is_empty() => {
                    let significant = n.iter().skip_while(|b| **b == 0).count();
                    significant * 8 >= 2048 - 7 && reader.0.is_empty()
                }
                _ => false,
            }
        }
        "ED25519" => reader.string().is_some_and(|key| key.len() == 32) && reader.0.is_empty(),
        _ => {
            let curve = reader.string();
            let point = reader.string();
            curve.is_some_and(|curve| kind.ends_with(&*String::from_utf8_lossy(curve)))
                && point.is_some_and(|point| point.first() == Some(&4))
                && reader.0.is_empty()
        }
    };
    if well_formed {
        Ok(text.to_owned())
    } else {
        Err(invalid_key(family))
    }
}

fn invalid_key(family: &str) -> AwsError {
    AwsError::bad_request(
        "InvalidArgsException",
        format!(
            "Invalid input parameter received for Illegal argument exception: {family} - SSH Public key is invalid"
        ),
    )
}

/// Reads RFC 4251 `string`s (a 32-bit big-endian length, then the bytes).
struct WireReader<'a>(&'a [u8]);

impl<'a> WireReader<'a> {
    fn string(&mut self) -> Option<&'a [u8]> {
        let (length, rest) = self.0.split_first_chunk::<4>()?;
        let length = usize::try_from(u32::from_be_bytes(*length)).ok()?;
        let (value, rest) = rest.split_at_checked(length)?;
        self.0 = rest;
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_user_names_follow_the_model_pattern() {
        for ok in [
            "ec2-user",
            "ubuntu",
            "root",
            "_svc",
            "a",
            "deploy$",
            "user@corp.example",
            "1password",
            "42x",
        ] {
            assert!(is_os_user(ok), "{ok}");
        }
        for bad in [
            "",
            "-dash",
            "ec2 user",
            "user/x",
            "x$y",
            "1",
            "12",
            &"a".repeat(33),
        ] {
            assert!(!is_os_user(bad), "{bad:?}");
        }
    }

    #[test]
    fn instance_ids_and_zones_follow_the_model_patterns() {
        assert!(is_instance_id("i-0123456789abcdef0"));
        assert!(!is_instance_id("mi-048afb7f6460a110d"));
        assert!(!is_instance_id("i-0123456789ABCDEF0"));
        assert!(is_availability_zone("us-east-1a"));
        assert!(is_availability_zone("us-gov-west-1b"));
        assert!(!is_availability_zone("useast1a"));
    }

    #[test]
    fn keys_are_checked_for_type_and_structure() {
        // ssh-keygen -t ed25519 (a throwaway key).
        let ed25519 =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICecYJaEuSVtOtgrQHI9WX4t2/l4VMsyV9DEy3tc1ySR test";
        assert_eq!(validate_public_key(ed25519).map(|_| ()), Ok(()));
        let truncated =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICecYJaEuSVtOtgrQHI9WX4t2/l4VMsyV9DEy3tc";
        assert_eq!(
            validate_public_key(truncated).map_err(|e| e.message),
            Err("Invalid input parameter received for Illegal argument exception: ED25519 - SSH Public key is invalid".to_owned())
        );
        let mislabelled = ed25519.replacen("ssh-ed25519", "ssh-rsa", 1);
        assert!(validate_public_key(&mislabelled).is_err());
        assert!(validate_public_key("ssh-dss AAAAB3NzaC1kc3MAAACBAP").is_err());
    }

    #[test]
    fn violations_are_counted_and_joined_like_aws() {
        let mut violations = Vec::new();
        check(
            &mut violations,
            "instanceId",
            Some("mi-048afb7f6460a110d"),
            true,
            10..=32,
            |id| pattern_violation(is_instance_id(id), "^i-[a-f0-9]+$"),
        );
        assert_eq!(
            validation_error(&violations).message,
            "1 validation error detected: Value 'mi-048afb7f6460a110d' at 'instanceId' failed to satisfy constraint: Member must satisfy regular expression pattern: ^i-[a-f0-9]+$"
        );
        check(
            &mut violations,
            "instanceOSUser",
            None,
            true,
            1..=32,
            |_| None,
        );
        assert!(
            validation_error(&violations)
                .message
                .starts_with("2 validation errors detected: ")
        );
    }
}
