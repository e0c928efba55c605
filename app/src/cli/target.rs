//! Naming a host on the command line: an instance id, a Name tag or a private IP, narrowed by
//! `--profile` / `--region` when several accounts or regions have a match. With `--region`,
//! only that region is scanned; with `--profile`, only that profile scans (its account). The
//! ProxyCommand the app and `bastionless ssh` write names the instance id with both, so each
//! ssh, scp or rsync pays for one account's scan of one region, not for every profile's.

use crate::aws_source::AwsSource;
use crate::cli::list::REFRESH_TIMEOUT;
use anyhow::{Context as _, bail};
use bastionless_core::engine::{Engine, Snapshot};
use bastionless_core::inventory::Host;
use std::sync::Arc;

#[derive(Debug, Clone, clap::Args)]
pub struct HostArgs {
    /// The host: an instance id, a Name tag or a private IP.
    pub host: String,
    /// Only consider hosts this profile can reach (its account's, in any region).
    #[arg(long)]
    pub profile: Option<String>,
    /// Only consider hosts in this region (and scan only it).
    #[arg(long)]
    pub region: Option<String>,
}

/// Starts the engine on `source` and waits for one full inventory. With `region`, only that
/// region is scanned, and the host cache is neither read nor written: a one-region listing
/// must not replace the whole one the app starts from.
pub fn inventory(
    source: &AwsSource,
    region: Option<&str>,
) -> anyhow::Result<(Engine, Arc<Snapshot>)> {
    scan(source, region, None)
}

/// [`inventory`] for the host `args` names: narrowed to its `--region` and `--profile`.
pub fn inventory_for(
    source: &AwsSource,
    args: &HostArgs,
) -> anyhow::Result<(Engine, Arc<Snapshot>)> {
    scan(source, args.region.as_deref(), args.profile.as_deref())
}

fn scan(
    source: &AwsSource,
    region: Option<&str>,
    profile: Option<&str>,
) -> anyhow::Result<(Engine, Arc<Snapshot>)> {
    let mut config = source.engine_config();
    if let Some(region) = region {
        config.regions = Some(vec![region.to_owned()]);
        config.cache_file = None;
    }
    if let Some(profile) = profile {
        config.profiles = Some(vec![profile.to_owned()]);
        config.cache_file = None;
    }
    let engine = Engine::start(config).context("could not start the background engine")?;
    let snapshot = engine.wait_until(REFRESH_TIMEOUT, |s| !s.refreshing);
    Ok((engine, snapshot))
}

/// The one host `args` names, or an error that lists the candidates or the profiles that failed.
pub fn resolve<'a>(snapshot: &'a Snapshot, args: &HostArgs) -> anyhow::Result<&'a Host> {
    if let Some(profile) = &args.profile
        && !snapshot.profiles.iter().any(|p| &p.name == profile)
    {
        bail!("there is no AWS profile named `{profile}`; check the name in your AWS config file");
    }
    // A favorite's alias names its host (`bastionless ssh db`).
    if let Some(favorite) = crate::cli::favorites::favorite_host(snapshot, &args.host) {
        return favorite;
    }
    let matches: Vec<&Host> = snapshot
        .find_hosts(&args.host)
        .into_iter()
        .filter(|h| {
            args.profile
                .as_ref()
                .is_none_or(|p| snapshot.profiles_for(h).any(|q| q == p))
        })
        .filter(|h| args.region.as_ref().is_none_or(|r| &h.region == r))
        .collect();
    match matches.as_slice() {
        [host] => Ok(host),
        [] => {
            let failed: Vec<String> = snapshot
                .failed_profiles()
                .map(|(name, _)| name.to_owned())
                .collect();
            let hint = if failed.is_empty() {
                "Run `bastionless list` to see every host.".to_owned()
            } else {
                format!(
                    "These profiles could not be listed, so it may be in one of them: {}.",
                    failed.join(", ")
                )
            };
            bail!("no host matches `{}`. {hint}", args.host)
        }
        several => {
            let lines: Vec<String> = several
                .iter()
                .map(|h| {
                    format!(
                        "  {} {}  profile {}  region {}",
                        h.instance_id,
                        h.display_name(),
                        h.profile,
                        h.region
                    )
                })
                .collect();
            bail!(
                "`{}` matches {} hosts; name one by instance id, or add --profile / --region:\n{}",
                args.host,
                several.len(),
                lines.join("\n")
            )
        }
    }
}
