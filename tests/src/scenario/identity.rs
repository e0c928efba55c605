//! Who may become whom: IAM roles (and who may assume them), MFA devices, and IAM Identity
//! Center (SSO) instances with the accounts and roles they grant.
//!
//! A role session acts as the role, so each [`Role`] carries a [`Profile`] as its principal:
//! every service asks `caller.profile.may(action)` and `caller.account()` of a role session
//! exactly as of an IAM user.

use serde::Deserialize;

use super::{Profile, Scenario, ScenarioError};

/// An IAM role (`arn:aws:iam::ACCOUNT:role/NAME`).
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "RoleToml")]
pub struct Role {
    pub name: String,
    pub account: String,
    /// Profiles (IAM users) and roles (`role/NAME`, same or other account) the trust policy
    /// lets call `AssumeRole`.
    pub trusted: Vec<String>,
    /// The trust policy's `aws:MultiFactorAuthPresent` condition: `AssumeRole` needs the
    /// caller's MFA serial number and a current code.
    pub mfa_required: bool,
    /// `MaxSessionDuration`: 3600 s unless set (AWS allows up to 43200).
    pub max_session_seconds: u32,
    principal: Profile,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleToml {
    name: String,
    account: String,
    #[serde(default)]
    trusted: Vec<String>,
    #[serde(default)]
    mfa_required: bool,
    #[serde(default = "default_max_session")]
    max_session_seconds: u32,
    /// IAM actions the role's policy does not allow (as for profiles).
    #[serde(default)]
    denied_actions: Vec<String>,
}

fn default_max_session() -> u32 {
    3600
}

impl From<RoleToml> for Role {
    fn from(toml: RoleToml) -> Self {
        let principal = Profile {
            name: format!("role/{}", toml.name),
            account: toml.account.clone(),
            region: String::new(),
            user_name: Some(toml.name.clone()),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            denied_actions: toml.denied_actions,
            allowed_resources: Vec::new(),
            allowed_tunnel_ports: Vec::new(),
            mfa: None,
        };
        Role {
            name: toml.name,
            account: toml.account,
            trusted: toml.trusted,
            mfa_required: toml.mfa_required,
            max_session_seconds: toml.max_session_seconds,
            principal,
        }
    }
}

impl Role {
    pub fn arn(&self) -> String {
        format!("arn:aws:iam::{}:role/{}", self.account, self.name)
    }

    /// The principal a session of this role acts as.
    pub fn principal(&self) -> &Profile {
        &self.principal
    }

    /// The role's stable unique id (`AROA…`), derived from its ARN.
    pub fn role_id(&self) -> String {
        super::super::sts::unique_id("AROA", &self.arn())
    }
}

/// A virtual MFA device assigned to a profile's IAM user: TOTP (RFC 6238, SHA-1, 30 s, six
/// digits) over `secret`, as an authenticator app computes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MfaDevice {
    /// `arn:aws:iam::ACCOUNT:mfa/NAME`: what `mfa_serial` names and `SerialNumber` carries.
    pub serial: String,
    /// The shared secret (any text; an authenticator would hold it base32-encoded).
    pub secret: String,
}

/// An IAM Identity Center instance and its one signed-in user's assignments.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsoInstance {
    /// The `[sso-session NAME]` the generated config gives it.
    pub name: String,
    /// The AWS access portal URL (`sso_start_url`).
    pub start_url: String,
    /// The region the instance lives in (`sso_region`).
    pub region: String,
    /// Access token lifetime; AWS's default session is 8 hours.
    #[serde(default = "default_access_token_seconds")]
    pub access_token_seconds: u32,
    /// Roles this user may sign in to, each a scenario role (by account and name).
    #[serde(default)]
    pub assignments: Vec<SsoAssignment>,
}

fn default_access_token_seconds() -> u32 {
    8 * 3600
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsoAssignment {
    pub account: String,
    pub role: String,
}

impl Scenario {
    pub fn role(&self, account: &str, name: &str) -> Option<&Role> {
        self.roles
            .iter()
            .find(|role| role.account == account && role.name == name)
    }

    pub fn sso_instance(&self, name: &str) -> Option<&SsoInstance> {
        self.sso.iter().find(|instance| instance.name == name)
    }

    /// The profile whose user owns the MFA device `serial`.
    pub fn mfa_owner(&self, serial: &str) -> Option<&Profile> {
        self.profiles
            .iter()
            .find(|p| p.mfa.as_ref().is_some_and(|mfa| mfa.serial == serial))
    }
}

/// Checks roles, MFA devices and SSO instances refer to what exists.
pub(super) fn validate(scenario: &Scenario) -> Result<(), ScenarioError> {
    let invalid = |message: String| Err(ScenarioError::Invalid(message));
    let account_exists = |id: &str| scenario.accounts.iter().any(|a| a.id == id);
    for (index, role) in scenario.roles.iter().enumerate() {
        if !account_exists(&role.account) {
            return invalid(format!(
                "role `{}` is in account {}, which is not in `accounts`",
                role.name, role.account
            ));
        }
        if scenario.roles[..index]
            .iter()
            .any(|r| r.account == role.account && r.name == role.name)
        {
            return invalid(format!(
                "role `{}` appears twice in account {}",
                role.name, role.account
            ));
        }
        if !(3600..=43200).contains(&role.max_session_seconds) {
            return invalid(format!(
                "role `{}` has max_session_seconds {}; IAM allows 3600 to 43200",
                role.name, role.max_session_seconds
            ));
        }
        for trusted in &role.trusted {
            let known = match trusted.strip_prefix("role/") {
                Some(name) => scenario.roles.iter().any(|r| r.name == name),
                None => scenario.profile(trusted).is_some(),
            };
            if !known {
                return invalid(format!(
                    "role `{}` trusts `{trusted}`, which is neither a profile nor `role/NAME` of a role",
                    role.name
                ));
            }
        }
    }
    for profile in &scenario.profiles {
        if let Some(mfa) = &profile.mfa {
            let expected = format!("arn:aws:iam::{}:mfa/", profile.account);
            if !mfa.serial.starts_with(&expected) || mfa.secret.is_empty() {
                return invalid(format!(
                    "profile `{}`'s MFA device needs a serial `{expected}NAME` and a secret",
                    profile.name
                ));
            }
        }
    }
    for instance in &scenario.sso {
        if !scenario.regions.contains(&instance.region) {
            return invalid(format!(
                "SSO instance `{}` is in region {}, which is not in `regions`",
                instance.name, instance.region
            ));
        }
        if !instance.start_url.starts_with("https://") {
            return invalid(format!(
                "SSO instance `{}` needs an https:// start_url",
                instance.name
            ));
        }
        for assignment in &instance.assignments {
            if scenario
                .role(&assignment.account, &assignment.role)
                .is_none()
            {
                return invalid(format!(
                    "SSO instance `{}` assigns role `{}` in account {}, which is not in `roles`",
                    instance.name, assignment.role, assignment.account
                ));
            }
        }
    }
    Ok(())
}
