//! Ephemeral SSH keys pushed with EC2 Instance Connect `SendSSHPublicKey` (spec `eic.md` §4.3).
//!
//! What `aws ec2-instance-connect ssh` does when no key is given: a fresh Ed25519 key per
//! connection, its public half pushed to the instance (EC2 serves it to sshd for 60 seconds), its
//! private half written where `ssh -i` can read it and nobody else can: a `0600` file inside a
//! fresh `0700` directory, both removed when the [`EphemeralKey`] is dropped. The private key is
//! never logged, never kept in memory past the write, and [`EphemeralKey`]'s `Debug` shows only
//! the path and public key.
//!
//! Also here: which OS user to push the key for, guessed from the AMI the way the AWS docs list
//! the default user names, and `SendSSHPublicKey` errors turned into what the user should do.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_ec2instanceconnect::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2instanceconnect::operation::send_ssh_public_key::SendSSHPublicKeyError;
use ssh_key::rand_core::OsRng;
use ssh_key::{Algorithm, LineEnding, PrivateKey};

use crate::inventory::{Host, Platform};
use crate::sdk_error::describe;

/// How long EC2 keeps a pushed key: ssh must authenticate within this.
pub const KEY_LIFETIME: Duration = Duration::from_secs(60);

/// The OS user EC2 Instance Connect is asked for when nothing better is known.
pub const DEFAULT_OS_USER: &str = "ec2-user";

/// A freshly generated Ed25519 key: the private half in a file only this user can read, the
/// public half in OpenSSH format. Dropping it deletes the file and its directory.
pub struct KeyFile {
    private_key_path: PathBuf,
    public_key: String,
    dir: tempfile::TempDir,
}

impl KeyFile {
    /// Generates a key and writes its private half as an OpenSSH PEM file (`0600`) in a new
    /// temporary directory (`0700`).
    pub fn generate() -> Result<Self, KeyError> {
        let key =
            PrivateKey::random(&mut OsRng, Algorithm::Ed25519).map_err(|e| KeyError::Generate {
                reason: e.to_string(),
            })?;
        let public_key = key
            .public_key()
            .to_openssh()
            .map_err(|e| KeyError::Generate {
                reason: e.to_string(),
            })?;
        let pem = key
            .to_openssh(LineEnding::LF)
            .map_err(|e| KeyError::Generate {
                reason: e.to_string(),
            })?;
        drop(key);

        let dir = tempfile::Builder::new()
            .prefix("bastionless-eic-")
            .tempdir()
            .map_err(|source| KeyError::KeyFile { source })?;
        restrict(dir.path(), 0o700).map_err(|source| KeyError::KeyFile { source })?;
        let private_key_path = dir.path().join("id_ed25519");
        write_private(&private_key_path, pem.as_bytes())
            .map_err(|source| KeyError::KeyFile { source })?;
        Ok(Self {
            private_key_path,
            public_key,
            dir,
        })
    }

    /// The private key file, for `ssh -i`.
    pub fn private_key_path(&self) -> &Path {
        &self.private_key_path
    }

    /// `ssh-ed25519 AAAA…` (no comment): what `SendSSHPublicKey` takes.
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    /// The directory holding the key; removed on drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyFile")
            .field("private_key_path", &self.private_key_path)
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

/// A key pushed to an instance: usable with `ssh -i` as [`EphemeralKey::os_user`] until
/// [`EphemeralKey::expires_at`]. Dropping it deletes the private key file.
#[derive(Debug)]
pub struct EphemeralKey {
    pub file: KeyFile,
    pub instance_id: String,
    pub os_user: String,
    /// When EC2 stops offering the key (60 s after the push was sent).
    pub expires_at: Instant,
}

impl EphemeralKey {
    /// The private key file, for `ssh -i`.
    pub fn private_key_path(&self) -> &Path {
        self.file.private_key_path()
    }
}

/// Where to push a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTarget {
    pub instance_id: String,
    pub region: String,
    /// Optional since the Ed25519 model update; sent when known.
    pub availability_zone: Option<String>,
}

/// Generates a key and pushes its public half to `target` for `os_user` with the profile's
/// credentials (`sdk`). The key is valid for 60 seconds from the call.
pub async fn push_ephemeral_key(
    sdk: &SdkConfig,
    target: &KeyTarget,
    os_user: &str,
) -> Result<EphemeralKey, KeyError> {
    check_os_user(os_user)?;
    let file = KeyFile::generate()?;
    let sent_at = Instant::now();
    tracing::debug!(instance = %target.instance_id, os_user, "pushing an ephemeral SSH key");
    aws_sdk_ec2instanceconnect::Client::new(sdk)
        .send_ssh_public_key()
        .instance_id(&target.instance_id)
        .instance_os_user(os_user)
        .ssh_public_key(file.public_key())
        .set_availability_zone(target.availability_zone.clone())
        .send()
        .await
        .map_err(|e| KeyError::Push {
            message: explain_push_error(&e, target, os_user),
        })?;
    Ok(EphemeralKey {
        file,
        instance_id: target.instance_id.clone(),
        os_user: os_user.to_owned(),
        expires_at: sent_at + KEY_LIFETIME,
    })
}

/// Why a key could not be made or pushed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "{user:?} is not a valid OS user for EC2 Instance Connect: use 1 to 32 letters, digits, \
         '.', '_', '-' or '@', starting with a letter or '_'"
    )]
    InvalidOsUser { user: String },
    #[error("could not generate an SSH key: {reason}")]
    Generate { reason: String },
    #[error("could not write the temporary SSH key file: {source}; check the temp directory")]
    KeyFile {
        #[source]
        source: std::io::Error,
    },
    #[error("{message}")]
    Push { message: String },
}

/// The instance tag that names the SSH login user, when an image's default user can't be guessed.
pub const LOGIN_USER_TAG: &str = "bastionless:user";

/// The OS user to push a key for: the user's own choice for the host when there is one, else the
/// instance's [`LOGIN_USER_TAG`], else the default user of the host's image, as listed in the EC2
/// user guide ("ec2-user" when unknown).
pub fn guess_os_user(host: &Host, explicit: Option<&str>) -> String {
    if let Some(user) = explicit.map(str::trim).filter(|u| !u.is_empty()) {
        return user.to_owned();
    }
    // Teams that use custom images tag instances with their login user.
    if let Some(user) = host
        .tags
        .get(LOGIN_USER_TAG)
        .map(|u| u.trim())
        .filter(|u| !u.is_empty())
    {
        return user.to_owned();
    }
    if host.platform == Platform::Windows {
        return "Administrator".to_owned();
    }
    let image = host.image.as_ref();
    let name = image
        .and_then(|i| i.name.as_deref())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let details = image
        .and_then(|i| i.platform_details.as_deref())
        .unwrap_or_default()
        .to_ascii_lowercase();
    // Bitnami first: its images are named after the OS underneath (…-debian-12-…).
    const BY_NAME: [(&str, &str); 8] = [
        ("bitnami", "bitnami"),
        ("ubuntu", "ubuntu"),
        ("debian", "admin"),
        ("centos", "centos"),
        ("fedora", "fedora"),
        ("rocky", "rocky"),
        ("kali", "kali"),
        ("archlinux", "arch"),
    ];
    BY_NAME
        .iter()
        .find(|(hint, _)| name.contains(hint))
        .map(|(_, user)| *user)
        .or_else(|| details.contains("ubuntu").then_some("ubuntu"))
        .unwrap_or(DEFAULT_OS_USER)
        .to_owned()
}

/// The service's `InstanceOSUser` pattern, checked before the call so that the message can say
/// what is wrong: `^[A-Za-z_][A-Za-z0-9@._-]{0,30}[A-Za-z0-9$_-]?$`.
fn check_os_user(user: &str) -> Result<(), KeyError> {
    let bytes = user.as_bytes();
    let valid = match bytes {
        [] => false,
        [first, rest @ ..] => {
            let body = |b: &u8| b.is_ascii_alphanumeric() || b"@._-".contains(b);
            let last_ok = |b: &u8| body(b) || *b == b'$';
            (first.is_ascii_alphabetic() || *first == b'_')
                && bytes.len() <= 32
                && match rest.split_last() {
                    None => true,
                    Some((last, middle)) => middle.iter().all(body) && last_ok(last),
                }
        }
    };
    if valid {
        Ok(())
    } else {
        Err(KeyError::InvalidOsUser {
            user: user.to_owned(),
        })
    }
}

fn explain_push_error(
    error: &SdkError<SendSSHPublicKeyError>,
    target: &KeyTarget,
    os_user: &str,
) -> String {
    match error {
        SdkError::ServiceError(service) => explain_service_error(service.err(), target, os_user),
        other => format!(
            "could not reach EC2 Instance Connect in {}: {}",
            target.region,
            describe(other)
        ),
    }
}

fn explain_service_error(
    error: &SendSSHPublicKeyError,
    target: &KeyTarget,
    os_user: &str,
) -> String {
    let instance = &target.instance_id;
    let said = error
        .message()
        .map(|m| format!(" (AWS said: {m})"))
        .unwrap_or_default();
    match error {
        SendSSHPublicKeyError::AuthException(_) => denied(instance, os_user, &said),
        SendSSHPublicKeyError::Ec2InstanceNotFoundException(_) => format!(
            "EC2 Instance Connect cannot find {instance} in {}: it may have been terminated, or \
             belong to another account or region; refresh the host list{said}",
            target.region
        ),
        SendSSHPublicKeyError::Ec2InstanceStateInvalidException(_) => format!(
            "{instance} is not running, so EC2 Instance Connect cannot give it a key; start it \
             and retry{said}"
        ),
        SendSSHPublicKeyError::Ec2InstanceUnavailableException(_) => format!(
            "{instance} is unavailable to EC2 Instance Connect right now; wait a minute and \
             retry{said}"
        ),
        SendSSHPublicKeyError::InvalidArgsException(_) => format!(
            "EC2 Instance Connect refused the key for {os_user}@{instance}; check the OS user \
             name{said}"
        ),
        SendSSHPublicKeyError::ThrottlingException(_) => format!(
            "EC2 Instance Connect is throttling requests; wait a few seconds and retry{said}"
        ),
        SendSSHPublicKeyError::ServiceException(_) => {
            format!("EC2 Instance Connect had an internal error; retry in a moment{said}")
        }
        other if other.code() == Some("AccessDeniedException") => denied(instance, os_user, &said),
        other => format!(
            "EC2 Instance Connect refused the key for {os_user}@{instance}: {}",
            match (other.code(), other.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_owned(),
                _ => other.to_string(),
            }
        ),
    }
}

fn denied(instance: &str, os_user: &str, said: &str) -> String {
    format!(
        "not allowed to push an SSH key to {instance} as {os_user}: the profile needs the IAM \
         permission ec2-instance-connect:SendSSHPublicKey on this instance (an ec2:osuser \
         condition may also limit which OS users are allowed){said}"
    )
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Windows has no mode bits; the file lives in the user's own temp directory.
#[cfg(not(unix))]
fn restrict(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

/// Creates the file with `0600` from the start, so it is never readable by others, not even
/// between create and chmod.
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
#[path = "keys_tests.rs"]
mod tests;
