//! What a launch uses, worked out from the user's settings: the login user, the SSH port, the
//! route, the key to offer and how ssh reaches the tunnel.
//!
//! One function for the app's Connect and for the CLI (`bastionless ssh/connect/rdp`), so both
//! launch the same thing for the same settings. The precedence, everywhere:
//!
//! 1. what the command line asks (`--user`, `--port`, `-i`, `--route`, `--listen`; the app asks
//!    nothing, except a route from "Use Session Manager");
//! 2. the host's own settings ([`HostSettings`]: user, identity file, port, preferred route);
//! 3. the app settings ([`AppSettings`]: default users by AMI name, identity file per key pair
//!    name, ssh through a ProxyCommand or a loopback port);
//! 4. the route's default: the instance's `bastionless:user` tag or its image's usual user,
//!    port 22, the best route, an ephemeral EC2 Instance Connect key, and the launcher's own
//!    way of reaching the tunnel.
//!
//! Pure: the caller reads the store (at connect time, so a saved change applies to the next
//! connect) and hands the settings in.

use std::path::PathBuf;

use crate::eic::{LOGIN_USER_TAG, guess_os_user};
use crate::engine::RouteChoice;
use crate::inventory::Host;
use crate::route::Method;
use crate::store::{AppSettings, HostSettings, SshVia};

/// The SSH port when nothing says otherwise.
pub const SSH_PORT: u16 = 22;

/// What the command line asked for; all unset means "as the settings say".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LaunchAsk {
    pub user: Option<String>,
    pub port: Option<u16>,
    /// A private key file of the user's own.
    pub identity: Option<PathBuf>,
    pub route: RouteChoice,
    /// How ssh reaches the tunnel (the CLI's `--listen` asks for a loopback port).
    pub ssh_via: Option<SshVia>,
}

/// The settings a launch reads: the host's own and the app's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LaunchSettings {
    pub host: HostSettings,
    pub app: AppSettings,
}

/// The key ssh offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SshIdentity {
    /// A file the user named (on the command line or in the host's settings); no key is pushed.
    File(PathBuf),
    /// A fresh key pushed with EC2 Instance Connect; if the push fails, `fallback` (the key pair's
    /// file from the app settings), else ssh's own identities.
    Ephemeral { fallback: Option<PathBuf> },
}

/// Everything a launch to one host uses, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchPlan {
    /// The OS user (SSH) or Windows user (RDP).
    pub user: String,
    /// The SSH port on the instance.
    pub ssh_port: u16,
    /// The route asked for or preferred; `Auto` leaves it to the route ranking.
    pub route: RouteChoice,
    /// How ssh reaches the tunnel; `None` leaves it to the launcher (the CLI and the app both
    /// use a ProxyCommand).
    pub ssh_via: Option<SshVia>,
    /// A file the user named for this host, if any.
    own_identity: Option<PathBuf>,
    /// The app setting's file for the host's key pair, if any.
    key_pair_identity: Option<PathBuf>,
    pub terminal_template: Option<String>,
    pub rdp_template: Option<String>,
}

impl LaunchPlan {
    /// The plan for `host`, by the precedence in the module docs.
    pub fn new(host: &Host, settings: &LaunchSettings, ask: &LaunchAsk) -> Self {
        let own = &settings.host;
        let app = &settings.app;
        let explicit = ask
            .user
            .clone()
            .or_else(|| own.user.clone())
            .or_else(|| default_user_by_image(host, app));
        let route = match ask.route {
            RouteChoice::Auto => own.route.map_or(RouteChoice::Auto, RouteChoice::from),
            forced => forced,
        };
        Self {
            user: guess_os_user(host, explicit.as_deref()),
            ssh_port: ask.port.or(own.port).unwrap_or(SSH_PORT),
            route,
            ssh_via: ask.ssh_via.or(app.ssh_via),
            own_identity: ask.identity.clone().or_else(|| own.identity_file.clone()),
            key_pair_identity: host
                .key_name
                .as_ref()
                .and_then(|name| app.key_pair_identity_files.get(name))
                .cloned(),
            terminal_template: app.terminal_template.clone(),
            rdp_template: app.rdp_template.clone(),
        }
    }

    /// The key to offer when the connection goes through `method`: the user's own file when
    /// one is named; through EC2 Instance Connect its ephemeral key (the route's default);
    /// otherwise the key pair's file from the app settings, else an ephemeral key (Session
    /// Manager hosts may run the EC2 Instance Connect agent too).
    pub fn identity(&self, method: Method) -> SshIdentity {
        if let Some(file) = &self.own_identity {
            return SshIdentity::File(file.clone());
        }
        match (&self.key_pair_identity, method) {
            (Some(file), Method::Ssm) => SshIdentity::File(file.clone()),
            (fallback, _) => SshIdentity::Ephemeral {
                fallback: fallback.clone(),
            },
        }
    }
}

/// The app setting's user for the host's image: the longest AMI-name fragment the image name
/// contains (ignoring case), so `ubuntu-pro` beats `ubuntu`. The instance's own
/// `bastionless:user` tag wins over it, as the tag names this very instance.
fn default_user_by_image(host: &Host, app: &AppSettings) -> Option<String> {
    if host.tags.contains_key(LOGIN_USER_TAG) {
        return None;
    }
    let image = host.image.as_ref()?.name.as_deref()?.to_ascii_lowercase();
    app.default_users
        .iter()
        .filter(|(fragment, _)| !fragment.is_empty())
        .filter(|(fragment, _)| image.contains(&fragment.to_ascii_lowercase()))
        .max_by_key(|(fragment, _)| fragment.len())
        .map(|(_, user)| user.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::HostImage;
    use crate::store::RoutePreference;

    fn host(image: &str, key_name: Option<&str>) -> Host {
        Host {
            name: Some("web-1".into()),
            key_name: key_name.map(Into::into),
            image: Some(HostImage {
                id: "ami-0aaa".into(),
                name: Some(image.into()),
                platform_details: None,
            }),
            ..Host::bare("prod", "111122223333", "eu-west-1", "i-0aaa")
        }
    }

    fn app_with_users(users: &[(&str, &str)]) -> AppSettings {
        AppSettings {
            default_users: users
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn with_no_settings_the_route_defaults_apply() {
        let plan = LaunchPlan::new(
            &host("ubuntu-jammy-22.04", None),
            &LaunchSettings::default(),
            &LaunchAsk::default(),
        );
        assert_eq!(plan.user, "ubuntu");
        assert_eq!(plan.ssh_port, 22);
        assert_eq!(plan.route, RouteChoice::Auto);
        assert_eq!(plan.ssh_via, None);
        assert_eq!(
            plan.identity(Method::Eic),
            SshIdentity::Ephemeral { fallback: None }
        );
        assert_eq!(
            plan.identity(Method::Ssm),
            SshIdentity::Ephemeral { fallback: None }
        );
    }

    #[test]
    fn the_app_s_users_by_ami_name_beat_the_built_in_guess_and_the_longest_match_wins() {
        let settings = LaunchSettings {
            app: app_with_users(&[("ubuntu", "ops"), ("UBUNTU-JAMMY", "jammy-ops")]),
            ..Default::default()
        };
        let plan = LaunchPlan::new(
            &host("ubuntu-jammy-22.04", None),
            &settings,
            &LaunchAsk::default(),
        );
        assert_eq!(plan.user, "jammy-ops");
        let plan = LaunchPlan::new(
            &host("ubuntu-focal", None),
            &settings,
            &LaunchAsk::default(),
        );
        assert_eq!(plan.user, "ops");
        let plan = LaunchPlan::new(&host("al2023-ami", None), &settings, &LaunchAsk::default());
        assert_eq!(
            plan.user, "ec2-user",
            "no fragment matches: the built-in guess"
        );
    }

    #[test]
    fn the_instance_s_user_tag_beats_the_app_s_users_and_the_host_setting_beats_both() {
        let mut tagged = host("ubuntu-jammy", None);
        tagged
            .tags
            .insert(LOGIN_USER_TAG.to_owned(), "tagged".to_owned());
        let mut settings = LaunchSettings {
            app: app_with_users(&[("ubuntu", "ops")]),
            ..Default::default()
        };
        assert_eq!(
            LaunchPlan::new(&tagged, &settings, &LaunchAsk::default()).user,
            "tagged"
        );
        settings.host.user = Some("mine".into());
        assert_eq!(
            LaunchPlan::new(&tagged, &settings, &LaunchAsk::default()).user,
            "mine"
        );
        let ask = LaunchAsk {
            user: Some("asked".into()),
            ..Default::default()
        };
        assert_eq!(LaunchPlan::new(&tagged, &settings, &ask).user, "asked");
    }

    #[test]
    fn port_route_and_transport_follow_command_line_then_host_then_app() {
        let mut settings = LaunchSettings::default();
        settings.host.port = Some(2222);
        settings.host.route = Some(RoutePreference::Ssm);
        settings.app.ssh_via = Some(SshVia::LoopbackPort);
        let h = host("debian-12", None);
        let plan = LaunchPlan::new(&h, &settings, &LaunchAsk::default());
        assert_eq!(
            (plan.ssh_port, plan.route, plan.ssh_via),
            (2222, RouteChoice::Ssm, Some(SshVia::LoopbackPort))
        );
        let ask = LaunchAsk {
            port: Some(2200),
            route: RouteChoice::Eic,
            ssh_via: Some(SshVia::ProxyCommand),
            ..Default::default()
        };
        let plan = LaunchPlan::new(&h, &settings, &ask);
        assert_eq!(
            (plan.ssh_port, plan.route, plan.ssh_via),
            (2200, RouteChoice::Eic, Some(SshVia::ProxyCommand))
        );
    }

    #[test]
    fn the_key_pair_s_file_is_used_off_eic_and_as_the_fallback_on_it() {
        let mut settings = LaunchSettings::default();
        settings
            .app
            .key_pair_identity_files
            .insert("prod-key".into(), "/keys/prod.pem".into());
        let h = host("debian-12", Some("prod-key"));
        let plan = LaunchPlan::new(&h, &settings, &LaunchAsk::default());
        assert_eq!(
            plan.identity(Method::Ssm),
            SshIdentity::File("/keys/prod.pem".into())
        );
        assert_eq!(
            plan.identity(Method::Eic),
            SshIdentity::Ephemeral {
                fallback: Some("/keys/prod.pem".into())
            }
        );
        let other = host("debian-12", Some("other-key"));
        let plan = LaunchPlan::new(&other, &settings, &LaunchAsk::default());
        assert_eq!(
            plan.identity(Method::Ssm),
            SshIdentity::Ephemeral { fallback: None }
        );
    }

    #[test]
    fn a_named_identity_file_is_used_on_every_route() {
        let mut settings = LaunchSettings::default();
        settings
            .app
            .key_pair_identity_files
            .insert("prod-key".into(), "/keys/prod.pem".into());
        settings.host.identity_file = Some("/keys/host.pem".into());
        let h = host("debian-12", Some("prod-key"));
        let plan = LaunchPlan::new(&h, &settings, &LaunchAsk::default());
        for method in [Method::Eic, Method::Ssm] {
            assert_eq!(
                plan.identity(method),
                SshIdentity::File("/keys/host.pem".into())
            );
        }
        let ask = LaunchAsk {
            identity: Some("/keys/asked.pem".into()),
            ..Default::default()
        };
        let plan = LaunchPlan::new(&h, &settings, &ask);
        assert_eq!(
            plan.identity(Method::Eic),
            SshIdentity::File("/keys/asked.pem".into())
        );
    }
}
