//! A Windows instance's Administrator password: fetched with EC2 `GetPasswordData` and
//! decrypted here, locally, with the private key of the instance's key pair.
//!
//! EC2Launch encrypts the password it sets with the key pair's RSA public key (PKCS#1 v1.5);
//! EC2 only ever holds the ciphertext. The private key never leaves this machine: it comes from
//! the OS keyring ([`crate::secrets`]) and the password lives in memory only, wiped on drop,
//! until it is handed to the RDP client.
//!
//! The `rsa` crate is subject to RUSTSEC-2023-0071 (a timing side channel that lets an attacker
//! who can time many decryptions recover the key). Here the user decrypts their own password
//! once, locally, with no attacker-chosen ciphertexts or observable timing: the advisory's
//! unaffected case.

use base64::Engine as _;
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::{Pkcs1v15Encrypt, RsaPrivateKey};
use zeroize::Zeroizing;

/// How long Windows may take to set its password after launch, as AWS documents it: until then
/// `GetPasswordData` returns nothing.
pub const PASSWORD_WAIT_HINT: &str = "wait up to 15 min after launch";

/// A decrypted Windows password. Never printed: `Debug` shows a placeholder and the memory is
/// zeroed on drop.
pub struct WindowsPassword(Zeroizing<String>);

impl WindowsPassword {
    /// A password known some other way (typed, or from a test).
    pub fn new(text: Zeroizing<String>) -> Self {
        Self(text)
    }

    /// The password, for handing to the RDP client (its stdin) and nowhere else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for WindowsPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WindowsPassword(<redacted>)")
    }
}

/// Why there is no password to use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// `GetPasswordData` returned no data: Windows has not set its password yet.
    #[error(
        "the Windows password of {instance} is not ready yet ({PASSWORD_WAIT_HINT}); try again in a few minutes"
    )]
    NotReady { instance: String },
    /// The instance was launched without a key pair: its password cannot be retrieved.
    #[error(
        "{instance} was launched without a key pair, so EC2 holds no password for it; reset the password from inside the instance (Session Manager shell) instead"
    )]
    NoKeyPair { instance: String },
    /// The private key given is not an RSA private key in PEM form.
    #[error(
        "this is not an RSA private key in PEM form (`-----BEGIN RSA PRIVATE KEY-----` or `-----BEGIN PRIVATE KEY-----`): {reason}. An OpenSSH-format key converts with `ssh-keygen -p -m PEM -f KEY`"
    )]
    NotAnRsaKey { reason: String },
    /// The password data is not base64.
    #[error("EC2 returned password data that is not base64 ({reason})")]
    Malformed { reason: String },
    /// Decryption failed: the key is not the one the instance was launched with.
    #[error(
        "the private key stored for key pair {key_pair} does not decrypt the password of {instance}; import the key pair's own .pem again with `bastionless keypair import {key_pair} --file KEY.pem`"
    )]
    WrongKey { instance: String, key_pair: String },
}

/// Reads an RSA private key from PEM: PKCS#1 (what EC2's `CreateKeyPair` hands out) or PKCS#8.
pub fn parse_private_key(pem: &str) -> Result<RsaPrivateKey, PasswordError> {
    let pem = pem.trim();
    let parsed = if pem.starts_with("-----BEGIN RSA PRIVATE KEY-----") {
        RsaPrivateKey::from_pkcs1_pem(pem).map_err(|e| e.to_string())
    } else if pem.starts_with("-----BEGIN PRIVATE KEY-----") {
        RsaPrivateKey::from_pkcs8_pem(pem).map_err(|e| e.to_string())
    } else if pem.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----") {
        Err("it is in OpenSSH format".to_owned())
    } else if pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        Err("it is encrypted with a passphrase; remove it with `openssl pkey -in KEY -out PLAIN.pem`".to_owned())
    } else {
        Err("no PEM private key header found".to_owned())
    };
    parsed.map_err(|reason| PasswordError::NotAnRsaKey { reason })
}

/// Decrypts `password_data` (the base64 `PasswordData` of `GetPasswordData`) with `key`.
/// `instance` and `key_pair` only name things in errors.
pub fn decrypt_password(
    password_data: &str,
    key: &RsaPrivateKey,
    instance: &str,
    key_pair: &str,
) -> Result<WindowsPassword, PasswordError> {
    // EC2Launch's blob can carry line breaks; base64 does not.
    let compact: String = password_data
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if compact.is_empty() {
        return Err(PasswordError::NotReady {
            instance: instance.to_owned(),
        });
    }
    let encrypted = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|e| PasswordError::Malformed {
            reason: e.to_string(),
        })?;
    let clear = Zeroizing::new(key.decrypt(Pkcs1v15Encrypt, &encrypted).map_err(|_| {
        PasswordError::WrongKey {
            instance: instance.to_owned(),
            key_pair: key_pair.to_owned(),
        }
    })?);
    let text = std::str::from_utf8(&clear).map_err(|_| PasswordError::WrongKey {
        instance: instance.to_owned(),
        key_pair: key_pair.to_owned(),
    })?;
    Ok(WindowsPassword(Zeroizing::new(text.to_owned())))
}

/// `PasswordData` of `GetPasswordData` for `instance_id`, as EC2 returned it (empty when the
/// password is not ready yet).
pub async fn fetch_password_data(
    ec2: &aws_sdk_ec2::Client,
    instance_id: &str,
) -> Result<String, String> {
    let output = ec2
        .get_password_data()
        .instance_id(instance_id)
        .send()
        .await
        .map_err(|error| {
            format!(
                "GetPasswordData for {instance_id} failed: {}",
                crate::sdk_error::describe(&error)
            )
        })?;
    Ok(output.password_data.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::RsaPublicKey;
    use rsa::pkcs1::EncodeRsaPrivateKey as _;
    use rsa::pkcs8::EncodePrivateKey as _;
    use std::sync::OnceLock;

    /// One small key for every test (1024 bits keeps key generation quick; the code does not
    /// depend on the size).
    fn key() -> &'static RsaPrivateKey {
        static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
        KEY.get_or_init(|| RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024).unwrap())
    }

    fn seal(password: &str, key: &RsaPrivateKey) -> String {
        let encrypted = RsaPublicKey::from(key)
            .encrypt(
                &mut rsa::rand_core::OsRng,
                Pkcs1v15Encrypt,
                password.as_bytes(),
            )
            .unwrap();
        base64::engine::general_purpose::STANDARD.encode(encrypted)
    }

    #[test]
    fn a_sealed_password_decrypts_with_its_key_even_with_line_breaks() {
        let sealed = seal("Tr0ub4dor&3", key());
        let wrapped = format!("\r\n{}\r\n{}\n", &sealed[..40], &sealed[40..]);
        let password = decrypt_password(&wrapped, key(), "i-1", "kp").unwrap();
        assert_eq!(password.expose(), "Tr0ub4dor&3");
        assert_eq!(format!("{password:?}"), "WindowsPassword(<redacted>)");
    }

    #[test]
    fn empty_password_data_means_not_ready_and_says_how_long_to_wait() {
        let error = decrypt_password("  ", key(), "i-0abc", "kp").unwrap_err();
        assert_eq!(
            error,
            PasswordError::NotReady {
                instance: "i-0abc".into()
            }
        );
        assert!(
            error.to_string().contains("wait up to 15 min after launch"),
            "{error}"
        );
    }

    #[test]
    fn another_key_or_garbage_is_refused_with_what_to_do() {
        let other = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024).unwrap();
        let sealed = seal("secret", &other);
        let error = decrypt_password(&sealed, key(), "i-1", "prod-windows").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("bastionless keypair import prod-windows"),
            "{error}"
        );
        let error = decrypt_password("not base64!", key(), "i-1", "kp").unwrap_err();
        assert!(matches!(error, PasswordError::Malformed { .. }), "{error}");
    }

    #[test]
    fn pkcs1_and_pkcs8_keys_parse_and_other_formats_are_explained() {
        let pkcs1 = key().to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).unwrap();
        assert_eq!(&parse_private_key(&pkcs1).unwrap(), key());
        let pkcs8 = key().to_pkcs8_pem(rsa::pkcs8::LineEnding::CRLF).unwrap();
        assert_eq!(
            &parse_private_key(&format!("\n{}\n", *pkcs8)).unwrap(),
            key()
        );
        let openssh = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaA==\n-----END OPENSSH PRIVATE KEY-----\n";
        let error = parse_private_key(openssh).unwrap_err().to_string();
        assert!(error.contains("ssh-keygen -p -m PEM"), "{error}");
        let error = parse_private_key("hello").unwrap_err().to_string();
        assert!(error.contains("no PEM private key header"), "{error}");
    }
}
