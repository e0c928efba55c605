//! `ssh_config` export: one `Host` block per instance, so plain `ssh web-1`, `scp`, `rsync` and
//! editors' remote-SSH all go through Bastionless.
//!
//! The blocks live in an include file of Bastionless's own (rewritten whole on every export);
//! the user's `~/.ssh/config` only needs one `Include` line, which is added on request and never
//! silently ([`add_include`]), atomically and with a backup of the old file.
//!
//! Each block is named by the instance's Name tag (when no other instance has it and ssh can
//! use it as a pattern) and its instance id. `HostName` is the instance id, so the
//! ProxyCommand's `%h` always names exactly one instance; `--profile` and `--region` make the
//! proxy look in one place only. Host keys are pinned to the instance id in Bastionless's own
//! known_hosts, as for `bastionless ssh`. No key is named: ssh offers the user's own (the
//! instance's key pair, or an agent's).

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::inventory::{Host, Platform};

/// What one block needs beyond the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockSettings {
    /// The OS user to log in as.
    pub user: String,
    /// The ProxyCommand without its `%h` (see [`super::ssh::proxy_command`]); the block appends
    /// ` %h` and the host's `--profile`/`--region`.
    pub proxy_command: String,
}

/// The whole include file for `hosts` (Windows hosts are left out: they are reached with RDP).
/// `settings` gives each host's user, proxy and key.
pub fn render_include(
    hosts: &[&Host],
    known_hosts: &Path,
    mut settings: impl FnMut(&Host) -> BlockSettings,
) -> String {
    let mut name_count: HashMap<String, usize> = HashMap::new();
    for host in hosts {
        if let Some(name) = &host.name {
            *name_count.entry(name.to_ascii_lowercase()).or_default() += 1;
        }
    }
    let mut out = String::from(
        "# Written by `bastionless ssh-config --write`; rewritten whole on every export, so\n\
         # edits here are lost. Put your own settings in ~/.ssh/config.\n",
    );
    let mut seen_ids = std::collections::HashSet::new();
    for host in hosts {
        if host.platform == Platform::Windows || !seen_ids.insert(host.instance_id.as_str()) {
            continue;
        }
        let name = host
            .name
            .as_deref()
            .filter(|n| usable_alias(n) && name_count.get(&n.to_ascii_lowercase()) == Some(&1));
        let skipped_name = host.name.as_deref().filter(|_| name.is_none());
        let block = settings(host);
        out.push('\n');
        out.push_str(&format!(
            "# {} in account {}, {}, through profile {}\n",
            host.display_name(),
            host.account_id,
            host.region,
            host.profile
        ));
        if let Some(skipped) = skipped_name {
            out.push_str(&format!(
                "# (the name {:?} is not an alias: another host has it, or ssh cannot match it)\n",
                skipped.replace('\n', " ")
            ));
        }
        let aliases: Vec<&str> = name
            .into_iter()
            .chain([host.instance_id.as_str()])
            .collect();
        out.push_str(&format!("Host {}\n", aliases.join(" ")));
        out.push_str(&format!("    HostName {}\n", host.instance_id));
        out.push_str(&format!("    User {}\n", config_word(&block.user)));
        out.push_str(&format!("    HostKeyAlias {}\n", host.instance_id));
        out.push_str(&format!(
            "    UserKnownHostsFile {}\n",
            config_word(&known_hosts.to_string_lossy())
        ));
        out.push_str(&format!(
            "    ProxyCommand {} %h --profile {} --region {}\n",
            block.proxy_command,
            config_arg(&host.profile).replace('%', "%%"),
            config_arg(&host.region).replace('%', "%%")
        ));
    }
    out
}

/// Whether ssh can match `name` as a `Host` alias: no whitespace, quotes or pattern characters.
fn usable_alias(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with("i-")
        && name.chars().all(|c| {
            c.is_ascii_graphic() && !matches!(c, '*' | '?' | '!' | ',' | '"' | '\'' | '#' | '%')
        })
}

/// A value for an ssh_config keyword, double-quoted when it holds spaces.
fn config_word(value: &str) -> String {
    if value.contains([' ', '\t']) {
        format!("\"{value}\"")
    } else {
        value.to_owned()
    }
}

/// An argument inside the ProxyCommand (run by a shell): quoted for it.
fn config_arg(value: &str) -> String {
    super::terminal::shell_quote(value)
}

/// The line to put at the top of `~/.ssh/config`.
pub fn include_line(include_file: &Path) -> String {
    format!("Include {}", config_word(&include_file.to_string_lossy()))
}

/// Whether `config` already includes `include_file` (by a line this module writes).
pub fn has_include(config: &str, include_file: &Path) -> bool {
    let line = include_line(include_file);
    config.lines().any(|l| l.trim() == line)
}

/// `config` with the Include line first: ssh applies an Include inside a `Host` block only to
/// that block, so it must come before the first one.
pub fn with_include(config: &str, include_file: &Path) -> String {
    if has_include(config, include_file) {
        return config.to_owned();
    }
    format!(
        "# Added by `bastionless ssh-config --add-include`: hosts reached through Bastionless.\n{}\n\n{}",
        include_line(include_file),
        config
    )
}

/// Writes `contents` to `path` atomically (a temporary file in the same directory, synced,
/// then renamed over it), readable by the owner only as ssh expects.
pub fn write_atomically(path: &Path, contents: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(contents.as_bytes())?;
    file.as_file().sync_all()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// What [`add_include`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncludeAdded {
    /// The line was there already; nothing was written.
    AlreadyThere,
    /// The line was added; the old file (if any) was copied to `backup` first.
    Added { backup: Option<PathBuf> },
}

/// Adds the Include line for `include_file` to the ssh config at `config` (usually
/// `~/.ssh/config`), keeping a copy of the old file next to it as `config.bastionless-backup`.
pub fn add_include(config: &Path, include_file: &Path) -> std::io::Result<IncludeAdded> {
    let old = match std::fs::read_to_string(config) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let text = old.as_deref().unwrap_or_default();
    if has_include(text, include_file) {
        return Ok(IncludeAdded::AlreadyThere);
    }
    let backup = match &old {
        Some(_) => {
            let mut name = config.as_os_str().to_owned();
            name.push(".bastionless-backup");
            let backup = PathBuf::from(name);
            std::fs::copy(config, &backup)?;
            Some(backup)
        }
        None => None,
    };
    write_atomically(config, &with_include(text, include_file))?;
    Ok(IncludeAdded::Added { backup })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(id: &str, name: Option<&str>, platform: Platform) -> Host {
        Host {
            name: name.map(str::to_owned),
            platform,
            private_ip: Some("10.0.0.1".into()),
            ..Host::bare("prod", "111122223333", "eu-west-1", id)
        }
    }

    fn settings(_: &Host) -> BlockSettings {
        BlockSettings {
            user: "ec2-user".into(),
            proxy_command: "/usr/bin/bastionless proxy".into(),
        }
    }

    #[test]
    fn each_linux_host_gets_a_block_named_by_its_unique_name_and_id() {
        let hosts = [
            host("i-0aaa", Some("web-1"), Platform::Linux),
            host("i-0bbb", Some("db"), Platform::Linux),
            host("i-0ccc", Some("DB"), Platform::Linux),
            host("i-0ddd", Some("my box"), Platform::Linux),
            host("i-0eee", Some("win"), Platform::Windows),
        ];
        let refs: Vec<&Host> = hosts.iter().collect();
        let text = render_include(&refs, Path::new("/k/known hosts"), settings);
        let web = "\
# web-1 in account 111122223333, eu-west-1, through profile prod
Host web-1 i-0aaa
    HostName i-0aaa
    User ec2-user
    HostKeyAlias i-0aaa
    UserKnownHostsFile \"/k/known hosts\"
    ProxyCommand /usr/bin/bastionless proxy %h --profile prod --region eu-west-1
";
        assert!(text.contains(web), "{text}");
        // Names two hosts share (in any case), or that ssh cannot match, are not aliases.
        assert!(
            text.contains("Host i-0bbb\n") && text.contains("Host i-0ccc\n"),
            "{text}"
        );
        assert!(text.contains("Host i-0ddd\n"), "{text}");
        assert!(
            text.contains("the name \"my box\" is not an alias"),
            "{text}"
        );
        assert!(
            !text.contains("i-0eee"),
            "Windows hosts are reached with RDP: {text}"
        );
    }

    #[test]
    fn the_include_line_goes_first_once_with_a_backup_of_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        let include = dir.path().join("data dir/ssh_config");
        std::fs::write(&config, "Host old\n    User me\n").unwrap();

        let added = add_include(&config, &include).unwrap();
        let backup = dir.path().join("config.bastionless-backup");
        assert_eq!(
            added,
            IncludeAdded::Added {
                backup: Some(backup.clone())
            }
        );
        assert_eq!(
            std::fs::read_to_string(&backup).unwrap(),
            "Host old\n    User me\n"
        );
        let text = std::fs::read_to_string(&config).unwrap();
        let first_setting = text.lines().find(|l| !l.starts_with('#')).unwrap();
        assert_eq!(first_setting, format!("Include \"{}\"", include.display()));
        assert!(text.ends_with("Host old\n    User me\n"), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&config).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        assert_eq!(
            add_include(&config, &include).unwrap(),
            IncludeAdded::AlreadyThere
        );
        assert_eq!(std::fs::read_to_string(&config).unwrap(), text);

        let fresh = dir.path().join("new/config");
        assert_eq!(
            add_include(&fresh, &include).unwrap(),
            IncludeAdded::Added { backup: None }
        );
        assert!(has_include(
            &std::fs::read_to_string(&fresh).unwrap(),
            &include
        ));
    }
}
