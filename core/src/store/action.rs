//! What connecting to a host means for a favorite or a recent entry: an SSH login, a Remote
//! Desktop session, a Session Manager shell, or a port forward. Written in files and on the
//! command line as `ssh`, `rdp`, `shell` or `forward:PORT`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How to connect to a host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Action {
    /// Log in with the system ssh.
    #[default]
    Ssh,
    /// Open the system Remote Desktop client.
    Rdp,
    /// A Session Manager shell.
    Shell,
    /// Forward a local port to `remote_port` on the instance.
    Forward { remote_port: u16 },
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Ssh => f.write_str("ssh"),
            Action::Rdp => f.write_str("rdp"),
            Action::Shell => f.write_str("shell"),
            Action::Forward { remote_port } => write!(f, "forward:{remote_port}"),
        }
    }
}

impl FromStr for Action {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let wrong = || {
            format!(
                "`{text}` is not an action: use ssh, rdp, shell or forward:PORT (for example \
                 forward:5432)"
            )
        };
        match text.to_ascii_lowercase().as_str() {
            "ssh" => Ok(Action::Ssh),
            "rdp" => Ok(Action::Rdp),
            "shell" => Ok(Action::Shell),
            other => {
                let port = other.strip_prefix("forward:").ok_or_else(wrong)?;
                match port.parse::<u16>() {
                    Ok(remote_port @ 1..) => Ok(Action::Forward { remote_port }),
                    _ => Err(format!(
                        "`{port}` in `{text}` is not a port: use a number from 1 to 65535"
                    )),
                }
            }
        }
    }
}

impl TryFrom<String> for Action {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<Action> for String {
    fn from(action: Action) -> Self {
        action.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_read_back_as_written() {
        for action in [
            Action::Ssh,
            Action::Rdp,
            Action::Shell,
            Action::Forward { remote_port: 5432 },
        ] {
            assert_eq!(action.to_string().parse::<Action>(), Ok(action));
        }
        assert_eq!("  RDP ".parse::<Action>(), Ok(Action::Rdp));
    }

    #[test]
    fn a_wrong_action_says_what_would_be_right() {
        let why = "telnet".parse::<Action>().unwrap_err();
        assert!(why.contains("ssh, rdp, shell or forward:PORT"), "{why}");
        for bad in ["forward:", "forward:0", "forward:70000", "forward:http"] {
            let why = bad.parse::<Action>().unwrap_err();
            assert!(why.contains("1 to 65535"), "{bad}: {why}");
        }
    }
}
