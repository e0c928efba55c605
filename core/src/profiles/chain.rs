//! Where each profile's credentials come from, worked out once when the files are read.
//!
//! The AWS tools resolve a profile's credentials lazily and report a broken `source_profile`
//! chain only when a call is made, as one opaque error. Bastionless resolves every chain up
//! front, so a loop (`a → b → a`), a missing source profile or a profile with no credentials at
//! all is a [`super::BrokenProfile`] with a message naming the profiles involved, while every
//! other profile still works.
//!
//! Precedence within one profile follows the AWS CLI: `role_arn` (with `source_profile` or
//! `credential_source`) first, then SSO (`sso_session` or the legacy `sso_start_url`), then
//! `credential_process`, then static keys.

use std::collections::BTreeMap;
use std::fmt;

/// The merged `key = value` settings of one profile.
pub type Settings = BTreeMap<String, String>;

/// A value that must never reach a log or the screen.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// How one profile gets its credentials.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CredentialSource {
    /// `aws_access_key_id` / `aws_secret_access_key` (and `aws_session_token`).
    Static {
        access_key_id: String,
        secret_access_key: Secret,
        session_token: Option<Secret>,
    },
    /// `credential_source = Environment`: `AWS_ACCESS_KEY_ID` and friends.
    Environment,
    /// `credential_source = Ec2InstanceMetadata`: the instance profile (IMDSv2).
    InstanceMetadata,
    /// `credential_source = EcsContainer`: the container credentials endpoint.
    EcsContainer,
    /// `credential_process`: a command printing credentials as JSON.
    Process { command: Secret },
    /// `role_arn`: STS `AssumeRole` with credentials from `source`.
    AssumeRole {
        role_arn: String,
        source: Box<CredentialSource>,
        /// `mfa_serial`: the MFA device whose current code `AssumeRole` must carry.
        mfa_serial: Option<String>,
        role_session_name: Option<String>,
        external_id: Option<String>,
        duration_seconds: Option<i32>,
    },
    /// IAM Identity Center: the portal's `GetRoleCredentials` with the session's token.
    Sso {
        session: super::SsoSessionKey,
        account_id: String,
        role_name: String,
    },
}

impl CredentialSource {
    /// Whether getting credentials may need an MFA code from the user.
    pub fn needs_mfa(&self) -> bool {
        match self {
            CredentialSource::AssumeRole {
                mfa_serial, source, ..
            } => mfa_serial.is_some() || source.needs_mfa(),
            _ => false,
        }
    }

    /// The SSO session this source signs in through, if any.
    pub fn sso_session(&self) -> Option<&super::SsoSessionKey> {
        match self {
            CredentialSource::Sso { session, .. } => Some(session),
            CredentialSource::AssumeRole { source, .. } => source.sso_session(),
            _ => None,
        }
    }
}

/// Resolves `name`'s credential source against every profile's settings (`all`), and the SSO
/// sessions declared in the config file.
pub fn resolve(
    name: &str,
    all: &BTreeMap<String, Settings>,
    sso_sessions: &BTreeMap<String, super::SsoSession>,
) -> Result<CredentialSource, String> {
    let mut path = Vec::new();
    resolve_in(name, all, sso_sessions, &mut path)
}

fn resolve_in(
    name: &str,
    all: &BTreeMap<String, Settings>,
    sso_sessions: &BTreeMap<String, super::SsoSession>,
    path: &mut Vec<String>,
) -> Result<CredentialSource, String> {
    let Some(settings) = all.get(name) else {
        let referrer = path.last().cloned().unwrap_or_default();
        return Err(format!(
            "source_profile `{name}` (named by profile `{referrer}`) does not exist or is broken itself; add [profile {name}], fix the name, or fix that profile"
        ));
    };
    if path.iter().any(|seen| seen == name) {
        path.push(name.to_owned());
        return Err(format!(
            "the source_profile chain loops: {}. Give one of these profiles its own credentials (static keys, credential_source, credential_process or SSO) instead of a source_profile.",
            path.join(" → ")
        ));
    }
    path.push(name.to_owned());
    let get = |key: &str| {
        settings
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };

    if let Some(role_arn) = get("role_arn") {
        if !role_arn.starts_with("arn:") || !role_arn.contains(":role/") {
            return Err(format!(
                "role_arn `{role_arn}` is not a role ARN (arn:aws:iam::123456789012:role/NAME)"
            ));
        }
        let source = match (get("source_profile"), get("credential_source")) {
            (Some(_), Some(_)) => {
                return Err(
                    "both source_profile and credential_source are set; keep exactly one"
                        .to_owned(),
                );
            }
            (None, None) => {
                return Err(
                    "role_arn needs source_profile or credential_source to say whose credentials assume the role"
                        .to_owned(),
                );
            }
            (None, Some(named)) => credential_source(named)?,
            // A profile may name itself as its source to assume a role with its own static
            // keys, as the AWS tools allow.
            (Some(source), None) if source == name => static_keys(settings)?.ok_or_else(|| {
                format!(
                    "profile `{name}` names itself as source_profile but has no aws_access_key_id / aws_secret_access_key"
                )
            })?,
            (Some(source), None) => resolve_in(source, all, sso_sessions, path)?,
        };
        let duration_seconds = match get("duration_seconds") {
            None => None,
            Some(text) => Some(
                text.parse::<i32>()
                    .ok()
                    .filter(|s| (900..=43200).contains(s))
                    .ok_or_else(|| {
                        format!("duration_seconds `{text}` is not a number from 900 to 43200")
                    })?,
            ),
        };
        return Ok(CredentialSource::AssumeRole {
            role_arn: role_arn.to_owned(),
            source: Box::new(source),
            mfa_serial: get("mfa_serial").map(str::to_owned),
            role_session_name: get("role_session_name").map(str::to_owned),
            external_id: get("external_id").map(str::to_owned),
            duration_seconds,
        });
    }
    if let Some(sso) = sso_source(settings, sso_sessions)? {
        return Ok(sso);
    }
    if let Some(command) = get("credential_process") {
        return Ok(CredentialSource::Process {
            command: Secret(command.to_owned()),
        });
    }
    if let Some(keys) = static_keys(settings)? {
        return Ok(keys);
    }
    if get("source_profile").is_some() {
        return Err("source_profile is set but role_arn is not; add the role to assume".to_owned());
    }
    if let Some(named) = get("credential_source") {
        return Err(format!(
            "credential_source = {named} works only with role_arn; add the role to assume"
        ));
    }
    Err("no credentials: add aws_access_key_id and aws_secret_access_key, role_arn with source_profile, sso_session, or credential_process".to_owned())
}

fn credential_source(named: &str) -> Result<CredentialSource, String> {
    match named {
        "Environment" => Ok(CredentialSource::Environment),
        "Ec2InstanceMetadata" => Ok(CredentialSource::InstanceMetadata),
        "EcsContainer" => Ok(CredentialSource::EcsContainer),
        other => Err(format!(
            "credential_source `{other}` is not one of Environment, Ec2InstanceMetadata, EcsContainer"
        )),
    }
}

fn static_keys(settings: &Settings) -> Result<Option<CredentialSource>, String> {
    let get = |key: &str| {
        settings
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    match (get("aws_access_key_id"), get("aws_secret_access_key")) {
        (Some(id), Some(secret)) => Ok(Some(CredentialSource::Static {
            access_key_id: id.to_owned(),
            secret_access_key: Secret(secret.to_owned()),
            session_token: get("aws_session_token").map(|t| Secret(t.to_owned())),
        })),
        (Some(_), None) => {
            Err("aws_access_key_id is set but aws_secret_access_key is not".to_owned())
        }
        (None, Some(_)) => {
            Err("aws_secret_access_key is set but aws_access_key_id is not".to_owned())
        }
        (None, None) => Ok(None),
    }
}

/// An SSO source from `sso_session` (with an `[sso-session]` section) or the legacy
/// `sso_start_url` / `sso_region` keys; `None` when the profile uses neither.
fn sso_source(
    settings: &Settings,
    sso_sessions: &BTreeMap<String, super::SsoSession>,
) -> Result<Option<CredentialSource>, String> {
    let get = |key: &str| {
        settings
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let session = match (get("sso_session"), get("sso_start_url")) {
        (None, None) => return Ok(None),
        (Some(name), _) => {
            let session = sso_sessions.get(name).ok_or_else(|| {
                format!("sso_session `{name}` has no [sso-session {name}] section; add one with sso_start_url and sso_region")
            })?;
            if let Some(url) = get("sso_start_url")
                && url != session.start_url
            {
                return Err(format!(
                    "sso_start_url differs from the one in [sso-session {name}]; remove it from the profile"
                ));
            }
            session.key.clone()
        }
        (None, Some(url)) => {
            let region = get("sso_region")
                .ok_or("sso_start_url needs sso_region (the region of your IAM Identity Center)")?;
            super::SsoSessionKey::Legacy {
                start_url: url.to_owned(),
                region: region.to_owned(),
            }
        }
    };
    let (Some(account_id), Some(role_name)) = (get("sso_account_id"), get("sso_role_name")) else {
        return Err("an SSO profile needs sso_account_id and sso_role_name".to_owned());
    };
    Ok(Some(CredentialSource::Sso {
        session,
        account_id: account_id.to_owned(),
        role_name: role_name.to_owned(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn all(profiles: &[(&str, &[(&str, &str)])]) -> BTreeMap<String, Settings> {
        profiles
            .iter()
            .map(|(name, pairs)| (name.to_string(), settings(pairs)))
            .collect()
    }

    const KEYS: &[(&str, &str)] = &[
        ("aws_access_key_id", "AKIA1"),
        ("aws_secret_access_key", "s"),
    ];

    #[test]
    fn a_role_chain_resolves_to_the_static_keys_at_its_root() {
        let profiles = all(&[
            ("base", KEYS),
            (
                "ops",
                &[
                    ("role_arn", "arn:aws:iam::111122223333:role/ops"),
                    ("source_profile", "base"),
                ],
            ),
            (
                "admin",
                &[
                    ("role_arn", "arn:aws:iam::444455556666:role/admin"),
                    ("source_profile", "ops"),
                    ("mfa_serial", "arn:aws:iam::1:mfa/a"),
                ],
            ),
        ]);
        let source = resolve("admin", &profiles, &BTreeMap::new()).unwrap();
        let CredentialSource::AssumeRole {
            source: ops,
            mfa_serial,
            ..
        } = &source
        else {
            panic!("{source:?}")
        };
        assert_eq!(mfa_serial.as_deref(), Some("arn:aws:iam::1:mfa/a"));
        let CredentialSource::AssumeRole { source: base, .. } = ops.as_ref() else {
            panic!()
        };
        assert!(
            matches!(base.as_ref(), CredentialSource::Static { access_key_id, .. } if access_key_id == "AKIA1")
        );
        assert!(source.needs_mfa());
    }

    #[test]
    fn a_loop_names_every_profile_in_it() {
        let role = |src: &'static str| -> Vec<(&'static str, &'static str)> {
            vec![
                ("role_arn", "arn:aws:iam::111122223333:role/r"),
                ("source_profile", src),
            ]
        };
        let (a, b, c) = (role("b"), role("c"), role("a"));
        let profiles = all(&[("a", &a), ("b", &b), ("c", &c)]);
        let error = resolve("a", &profiles, &BTreeMap::new()).unwrap_err();
        assert!(error.contains("a → b → c → a"), "{error}");
    }

    #[test]
    fn a_profile_may_assume_a_role_with_its_own_keys() {
        let mut own = KEYS.to_vec();
        own.extend([
            ("role_arn", "arn:aws:iam::111122223333:role/r"),
            ("source_profile", "me"),
        ]);
        let profiles = all(&[("me", &own)]);
        assert!(resolve("me", &profiles, &BTreeMap::new()).is_ok());
    }

    #[test]
    fn missing_pieces_say_what_to_add() {
        let profiles = all(&[
            (
                "orphan",
                &[
                    ("role_arn", "arn:aws:iam::111122223333:role/r"),
                    ("source_profile", "ghost"),
                ],
            ),
            ("bare", &[("region", "us-east-1")]),
            ("half", &[("aws_access_key_id", "AKIA")]),
            (
                "odd",
                &[
                    ("role_arn", "arn:aws:iam::111122223333:role/r"),
                    ("credential_source", "Laptop"),
                ],
            ),
        ]);
        let none = BTreeMap::new();
        assert!(
            resolve("orphan", &profiles, &none)
                .unwrap_err()
                .contains("`ghost`")
        );
        assert!(
            resolve("bare", &profiles, &none)
                .unwrap_err()
                .contains("no credentials")
        );
        assert!(
            resolve("half", &profiles, &none)
                .unwrap_err()
                .contains("aws_secret_access_key")
        );
        assert!(
            resolve("odd", &profiles, &none)
                .unwrap_err()
                .contains("Environment, Ec2InstanceMetadata, EcsContainer")
        );
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let profiles = all(&[(
            "p",
            &[
                ("aws_access_key_id", "AKIA1"),
                ("aws_secret_access_key", "TOPSECRET"),
            ],
        )]);
        let source = resolve("p", &profiles, &BTreeMap::new()).unwrap();
        assert!(!format!("{source:?}").contains("TOPSECRET"));
    }

    #[test]
    fn legacy_sso_keys_make_a_session_of_their_own_and_credential_source_is_checked() {
        let profiles = all(&[
            (
                "legacy",
                &[
                    ("sso_start_url", "https://d-1.awsapps.com/start"),
                    ("sso_region", "eu-west-1"),
                    ("sso_account_id", "111122223333"),
                    ("sso_role_name", "Dev"),
                ],
            ),
            (
                "no-region",
                &[
                    ("sso_start_url", "https://d-1.awsapps.com/start"),
                    ("sso_account_id", "1"),
                    ("sso_role_name", "Dev"),
                ],
            ),
            (
                "env-role",
                &[
                    ("role_arn", "arn:aws:iam::111122223333:role/r"),
                    ("credential_source", "Environment"),
                ],
            ),
        ]);
        let none = BTreeMap::new();
        let legacy = resolve("legacy", &profiles, &none).unwrap();
        assert_eq!(
            legacy.sso_session(),
            Some(&crate::sso::SsoSessionKey::Legacy {
                start_url: "https://d-1.awsapps.com/start".into(),
                region: "eu-west-1".into()
            })
        );
        assert!(
            resolve("no-region", &profiles, &none)
                .unwrap_err()
                .contains("sso_region")
        );
        let CredentialSource::AssumeRole { source, .. } =
            resolve("env-role", &profiles, &none).unwrap()
        else {
            panic!()
        };
        assert_eq!(*source, CredentialSource::Environment);
    }
}
