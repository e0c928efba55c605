//! The system OpenSSH `ssh` command line for a host reached through a tunnel.
//!
//! Host keys are pinned per instance (`HostKeyAlias=<instance id>`) in Bastionless's own
//! known_hosts file: tunnels make every host look like 127.0.0.1 (or share private IPs across
//! VPCs), so keying trust on the address would mix hosts up.

use std::ffi::OsString;
use std::path::PathBuf;

/// How to run `ssh` against one tunnelled host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshCommand {
    /// The `ssh` program (`ssh` on PATH unless configured).
    pub program: PathBuf,
    pub os_user: String,
    /// Pins the host key to the instance, not to the tunnel's address.
    pub instance_id: String,
    pub known_hosts: PathBuf,
    /// The key to offer, when Bastionless supplies one (an ephemeral EC2 Instance Connect key).
    pub identity: Option<PathBuf>,
    /// Where the tunnel listens.
    pub local_port: u16,
    /// The user's own options and remote command, appended after the destination.
    pub extra_args: Vec<OsString>,
}

impl SshCommand {
    /// The arguments after the program name.
    pub fn args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        let mut option = |o: String| {
            args.push("-o".into());
            args.push(o.into());
        };
        option(format!("HostKeyAlias={}", self.instance_id));
        option(format!("UserKnownHostsFile={}", self.known_hosts.display()));
        // Trust on first use, as for any new host; a changed key is still refused.
        option("StrictHostKeyChecking=accept-new".to_owned());
        if let Some(identity) = &self.identity {
            option("IdentitiesOnly=yes".to_owned());
            args.push("-i".into());
            args.push(identity.clone().into());
        }
        args.push("-p".into());
        args.push(self.local_port.to_string().into());
        args.push(format!("{}@127.0.0.1", self.os_user).into());
        // OpenSSH parses options after the destination too, up to the remote command.
        args.extend(self.extra_args.iter().cloned());
        args
    }

    pub fn to_command(&self) -> std::process::Command {
        let mut command = std::process::Command::new(&self.program);
        command.args(self.args());
        command
    }
}

/// Bastionless's own known_hosts file, in the user's data directory (`$XDG_DATA_HOME/bastionless`
/// on Linux), created on first use so ssh can add to it.
pub fn known_hosts_file() -> std::io::Result<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "bastionless").ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no home directory to keep known_hosts in",
        )
    })?;
    std::fs::create_dir_all(dirs.data_dir())?;
    Ok(dirs.data_dir().join("known_hosts"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(identity: Option<&str>) -> SshCommand {
        SshCommand {
            program: "ssh".into(),
            os_user: "ec2-user".into(),
            instance_id: "i-0123456789abcdef0".into(),
            known_hosts: "/home/u/.local/share/bastionless/known_hosts".into(),
            identity: identity.map(PathBuf::from),
            local_port: 40022,
            extra_args: vec![
                "-o".into(),
                "BatchMode=yes".into(),
                "echo".into(),
                "ok".into(),
            ],
        }
    }

    #[test]
    fn the_host_key_is_pinned_to_the_instance_and_the_key_is_offered_alone() {
        let args: Vec<String> = command(Some("/tmp/k/id_ed25519"))
            .args()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(
            args,
            [
                "-o",
                "HostKeyAlias=i-0123456789abcdef0",
                "-o",
                "UserKnownHostsFile=/home/u/.local/share/bastionless/known_hosts",
                "-o",
                "StrictHostKeyChecking=accept-new",
                "-o",
                "IdentitiesOnly=yes",
                "-i",
                "/tmp/k/id_ed25519",
                "-p",
                "40022",
                "ec2-user@127.0.0.1",
                "-o",
                "BatchMode=yes",
                "echo",
                "ok",
            ]
        );
    }

    #[test]
    fn without_a_key_ssh_uses_its_own_identities() {
        let args = command(None).args();
        assert!(!args.iter().any(|a| a == "-i" || a == "IdentitiesOnly=yes"));
    }
}
