//! The key pairs Linux instances are launched with (`key_name`): EC2 puts the key pair's public
//! key in the default user's `authorized_keys` at launch, so whoever holds its private key logs
//! in with plain ssh, no EC2 Instance Connect push needed.
//!
//! A name that a Windows instance uses too is that RSA key pair (the one `GetPasswordData`
//! seals passwords to); any other is an Ed25519 key pair (EC2's `KeyType=ed25519`, which only
//! Linux instances take), derived from the name like the RSA ones, so it is the same on every
//! run and costs nothing to make (an RSA key takes seconds).
//!
//! Each instance's sshd authorizes its key pair for the user it logs in (see `sshd.rs`), and
//! the private keys are written as the `.pem` files a user keeps (OpenSSH's format for Ed25519,
//! PKCS#1 for RSA, as EC2 hands them out), readable by their owner only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rsa::traits::PublicKeyParts as _;
use sha2::{Digest, Sha256};
use ssh_key::public::{KeyData, RsaPublicKey};
use ssh_key::{LineEnding, Mpint, PrivateKey, PublicKey};

use crate::ec2::WindowsPasswords;
use crate::scenario::{Platform, Scenario};

/// The key pairs of a scenario's Linux instances.
#[derive(Debug, Default)]
pub struct SshKeyPairs {
    /// Per key pair name, its public key as an `authorized_keys` line.
    public_keys: BTreeMap<String, String>,
    /// Per key pair name, its private key file.
    files: BTreeMap<String, PathBuf>,
}

impl SshKeyPairs {
    /// Makes the key pair of every Linux instance with a `key_name`, and writes each private key
    /// as `DIR/NAME.pem` (the Windows key pairs' files, `windows_files`, are reused as they are).
    pub fn for_scenario(
        scenario: &Scenario,
        windows: &WindowsPasswords,
        windows_files: &BTreeMap<String, PathBuf>,
        dir: &Path,
    ) -> std::io::Result<SshKeyPairs> {
        let mut pairs = SshKeyPairs::default();
        let names = scenario
            .instances
            .iter()
            .filter(|instance| instance.platform == Platform::Linux)
            .filter_map(|instance| instance.key_name.as_deref());
        for name in names {
            if pairs.public_keys.contains_key(name) {
                continue;
            }
            let (public, file) = match (windows.key_pair(name), windows_files.get(name)) {
                (Some(rsa), Some(file)) => (rsa_public_line(rsa, name)?, file.clone()),
                _ => {
                    let key = ed25519_named(name);
                    let pem = key
                        .to_openssh(LineEnding::LF)
                        .map_err(std::io::Error::other)?;
                    std::fs::create_dir_all(dir)?;
                    let file = dir.join(format!("{name}.pem"));
                    crate::shared_config::write_private(&file, &pem)?;
                    let public = key
                        .public_key()
                        .to_openssh()
                        .map_err(std::io::Error::other)?;
                    (public, file)
                }
            };
            pairs.public_keys.insert(name.to_owned(), public);
            pairs.files.insert(name.to_owned(), file);
        }
        Ok(pairs)
    }

    /// The `authorized_keys` line of the key pair `name`.
    pub fn public_key(&self, name: &str) -> Option<&str> {
        self.public_keys.get(name).map(String::as_str)
    }

    /// Every private key file, by key pair name.
    pub fn files(&self) -> &BTreeMap<String, PathBuf> {
        &self.files
    }
}

/// The Ed25519 key made from the hash of `name`.
fn ed25519_named(name: &str) -> PrivateKey {
    let seed: [u8; 32] = Sha256::digest(format!("bastionless-sim ed25519 key pair/{name}")).into();
    let mut key = PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&seed));
    key.set_comment(name);
    key
}

/// An RSA key's public half as an `ssh-rsa` `authorized_keys` line.
fn rsa_public_line(key: &rsa::RsaPrivateKey, name: &str) -> std::io::Result<String> {
    let mpint = |value: &rsa::BigUint| {
        Mpint::from_positive_bytes(&value.to_bytes_be()).map_err(std::io::Error::other)
    };
    let data = KeyData::Rsa(RsaPublicKey {
        e: mpint(key.e())?,
        n: mpint(key.n())?,
    });
    PublicKey::new(data, name)
        .to_openssh()
        .map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_key_pairs_are_ed25519_from_the_name_and_windows_names_keep_their_rsa_key() {
        let scenario = Scenario::demo();
        let windows = WindowsPasswords::for_scenario(&scenario);
        let dir = tempfile::tempdir().unwrap();
        let windows_files = windows.write_key_files(&dir.path().join("w")).unwrap();
        let pairs =
            SshKeyPairs::for_scenario(&scenario, &windows, &windows_files, dir.path()).unwrap();
        let ops = pairs
            .public_key("prod-ops")
            .expect("a Linux key pair of the demo");
        assert!(ops.starts_with("ssh-ed25519 AAAA"), "{ops}");
        assert_eq!(
            ops,
            ed25519_named("prod-ops").public_key().to_openssh().unwrap(),
            "the same key on every run"
        );
        // The file is the private half, in OpenSSH's format, for its owner only.
        let file = &pairs.files()["prod-ops"];
        let read = PrivateKey::read_openssh_file(file).unwrap();
        assert_eq!(read.public_key().to_openssh().unwrap(), ops);
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(
            pairs.public_key("prod-windows").is_none(),
            "no Linux instance of the demo uses it"
        );
    }

    #[test]
    fn an_rsa_key_s_public_line_is_what_ssh_keygen_derives_from_its_pem() {
        let scenario = Scenario::demo();
        let windows = WindowsPasswords::for_scenario(&scenario);
        let dir = tempfile::tempdir().unwrap();
        let files = windows.write_key_files(dir.path()).unwrap();
        let key = windows.key_pair("prod-windows").unwrap();
        let line = rsa_public_line(key, "prod-windows").unwrap();
        let derived = std::process::Command::new("ssh-keygen")
            .arg("-y")
            .arg("-f")
            .arg(&files["prod-windows"])
            .output()
            .expect("ssh-keygen runs");
        let derived = String::from_utf8(derived.stdout).unwrap();
        assert_eq!(
            line.split(' ').take(2).collect::<Vec<_>>(),
            derived.trim().split(' ').take(2).collect::<Vec<_>>()
        );
    }
}
