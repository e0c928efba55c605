//! `bastionless ssh-config [--write] [--add-include]`: `Host` blocks for every Linux host, so
//! plain `ssh web-1`, `scp`, `rsync` and editors' remote-SSH go through `bastionless proxy`.
//!
//! Without flags the blocks are printed (a preview). `--write` puts them in Bastionless's own
//! include file and prints the one `Include` line to add to `~/.ssh/config`; `--add-include`
//! also adds that line — the only way this command touches the user's ssh config, with a
//! backup and an atomic write. Hosts are those of one fresh inventory, narrowed by
//! `--profile`/`--region`; run it again when hosts change.

use crate::aws_source::AwsSource;
use crate::cli::target;
use anyhow::Context as _;
use bastionless_core::inventory::Host;
use bastionless_core::launch::settings::{LaunchAsk, LaunchPlan};
use bastionless_core::launch::ssh_config::{
    BlockSettings, IncludeAdded, add_include, include_line, render_include, write_atomically,
};
use bastionless_core::launch::terminal::Os;
use bastionless_core::launch::{data_dir, known_hosts_file, proxy_command};
use std::path::PathBuf;
use std::process::ExitCode;

/// The include file's name in the data directory.
const INCLUDE_FILE: &str = "ssh_config";

#[derive(Debug, clap::Args)]
pub struct SshConfigArgs {
    /// Write the blocks to Bastionless's include file and print the Include line.
    #[arg(long)]
    pub write: bool,
    /// Also add the Include line at the top of your ssh config (a backup is kept). Implies
    /// --write.
    #[arg(long)]
    pub add_include: bool,
    /// The ssh config that --add-include edits (default: ~/.ssh/config).
    #[arg(long)]
    pub ssh_config: Option<PathBuf>,
    /// Only hosts this profile can reach.
    #[arg(long)]
    pub profile: Option<String>,
    /// Only hosts in this region (and scan only it).
    #[arg(long)]
    pub region: Option<String>,
}

pub fn run(args: &SshConfigArgs, source: &AwsSource) -> anyhow::Result<ExitCode> {
    let (engine, snapshot) = target::inventory(source, args.region.as_deref())?;
    let hosts: Vec<&Host> = snapshot
        .hosts
        .iter()
        .filter(|h| {
            args.profile
                .as_ref()
                .is_none_or(|p| snapshot.profiles_for(h).any(|q| q == p))
        })
        .collect();
    let exe = std::env::current_exe().context("could not find the bastionless program")?;
    let proxy = proxy_command(Os::current(), &exe, &["proxy"]);
    let known_hosts =
        known_hosts_file().context("could not prepare Bastionless's known_hosts file")?;
    let text = render_include(&hosts, &known_hosts, |host| BlockSettings {
        // The user `bastionless ssh HOST` logs in as: the host's setting, the app's default
        // users, else the guess from the image.
        user: LaunchPlan::new(
            host,
            &engine.launch_settings(&host.key()),
            &LaunchAsk::default(),
        )
        .user,
        proxy_command: proxy.clone(),
    });
    for (profile, error) in snapshot.failed_profiles() {
        eprintln!(
            "bastionless: profile {profile} could not be listed, so its hosts are missing: {error}"
        );
    }
    if !(args.write || args.add_include) {
        print!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    let include = data_dir()
        .context("could not find Bastionless's data directory")?
        .join(INCLUDE_FILE);
    write_atomically(&include, &text)
        .with_context(|| format!("could not write {}", include.display()))?;
    let count = text.lines().filter(|l| l.starts_with("Host ")).count();
    eprintln!("bastionless: wrote {count} hosts to {}", include.display());
    if args.add_include {
        let config = match &args.ssh_config {
            Some(path) => path.clone(),
            None => directories::UserDirs::new()
                .context("no home directory to find ~/.ssh/config in")?
                .home_dir()
                .join(".ssh/config"),
        };
        match add_include(&config, &include)
            .with_context(|| format!("could not add the Include line to {}", config.display()))?
        {
            IncludeAdded::AlreadyThere => {
                eprintln!("bastionless: {} already includes it", config.display());
            }
            IncludeAdded::Added { backup } => {
                let kept = backup
                    .map(|b| format!(" (the old one is kept as {})", b.display()))
                    .unwrap_or_default();
                eprintln!(
                    "bastionless: added the Include line to {}{kept}",
                    config.display()
                );
            }
        }
    } else {
        eprintln!(
            "bastionless: add this line at the top of ~/.ssh/config (or run with --add-include):"
        );
    }
    println!("{}", include_line(&include));
    Ok(ExitCode::SUCCESS)
}
