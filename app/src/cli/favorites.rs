//! `bastionless favorites`: list, add, remove, import and export favorites — the same store the
//! window and the tray read, so a favorite added here shows there within seconds.
//!
//! `add` looks HOST up in the inventory (as `ssh` does) to learn its account and region, since a
//! favorite is kept per account; `remove`, `list`, `import` and `export` need no AWS access.
//! A favorite's alias is accepted as HOST by every other command ([`favorite_host`]).

use crate::aws_source::AwsSource;
use crate::cli::target::{self, HostArgs};
use anyhow::{Context as _, bail};
use bastionless_core::engine::Snapshot;
use bastionless_core::inventory::{Host, Platform};
use bastionless_core::store::{Action, Favorite, Store};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::OnceLock;

#[derive(Debug, clap::Args)]
pub struct FavoritesArgs {
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Option<FavoritesCommand>,
}

#[derive(Debug, clap::Subcommand)]
pub enum FavoritesCommand {
    /// Every favorite, grouped by account (the default).
    List,
    /// Make HOST a favorite, or change the favorite it already is.
    Add(AddArgs),
    /// Stop HOST (an alias or an instance id) being a favorite.
    Remove(RemoveArgs),
    /// Add the favorites and host settings in FILE (an export, perhaps a team's).
    Import { file: PathBuf },
    /// Write every favorite and host setting to FILE, to share or back up.
    Export { file: PathBuf },
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    #[command(flatten)]
    pub target: HostArgs,
    /// A short name of your own for HOST, accepted wherever a host is.
    #[arg(long)]
    pub alias: Option<String>,
    /// What connecting does: ssh, rdp, shell or forward:PORT (default: rdp for Windows, else ssh).
    #[arg(long, value_parser = parse_action)]
    pub action: Option<Action>,
    /// For forward:PORT, the port on 127.0.0.1 to listen on (any free port by default).
    #[arg(long)]
    pub local_port: Option<u16>,
}

#[derive(Debug, clap::Args)]
pub struct RemoveArgs {
    /// An alias or an instance id.
    pub host: String,
    /// The AWS account, when the instance id is a favorite in several.
    #[arg(long)]
    pub account: Option<String>,
}

fn parse_action(text: &str) -> Result<Action, String> {
    text.parse()
}

/// The store for `source`: the demo keeps its own, so it never touches the user's favorites.
pub fn open_store(source: &AwsSource) -> anyhow::Result<Store> {
    let dir = source.store_dir().context(
        "there is no home directory to keep favorites in; set BASTIONLESS_CONFIG_DIR to one",
    )?;
    let store = Store::open(&dir)
        .with_context(|| format!("could not open the favorites store in {}", dir.display()))?;
    for problem in store.problems() {
        eprintln!("bastionless: {problem}");
    }
    Ok(store)
}

pub fn run(args: &FavoritesArgs, source: &AwsSource) -> anyhow::Result<ExitCode> {
    let store = open_store(source)?;
    match &args.command {
        None | Some(FavoritesCommand::List) => print(&store.favorites(), args.json)?,
        Some(FavoritesCommand::Add(add)) => {
            let (_engine, snapshot) = target::inventory(source, add.target.region.as_deref())?;
            let host = target::resolve(&snapshot, &add.target)?;
            let favorite = favorite_for(host, add)?;
            let replaced = store.add_favorite(favorite.clone())?;
            if args.json {
                print(std::slice::from_ref(&favorite), true)?;
            } else {
                eprintln!(
                    "{} {} ({}, account {}) as {}",
                    if replaced { "Updated" } else { "Added" },
                    favorite.label(),
                    favorite.instance_id,
                    favorite.account_id,
                    favorite.action
                );
            }
        }
        Some(FavoritesCommand::Remove(remove)) => {
            let removed = store.remove_favorite(&only_one(&store, remove)?.key())?;
            if args.json {
                print(std::slice::from_ref(&removed), true)?;
            } else {
                eprintln!(
                    "Removed {} ({}, account {})",
                    removed.label(),
                    removed.instance_id,
                    removed.account_id
                );
            }
        }
        Some(FavoritesCommand::Import { file }) => {
            let report = store.import(file)?;
            eprintln!("Imported from {}: {report}", file.display());
        }
        Some(FavoritesCommand::Export { file }) => {
            store.export(file)?;
            eprintln!(
                "Wrote {} favorites and {} host settings to {}",
                store.favorites().len(),
                store.all_host_settings().len(),
                file.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn favorite_for(host: &Host, args: &AddArgs) -> anyhow::Result<Favorite> {
    let action = args.action.unwrap_or(match host.platform {
        Platform::Windows => Action::Rdp,
        Platform::Linux => Action::Ssh,
    });
    if args.local_port.is_some() && !matches!(action, Action::Forward { .. }) {
        bail!("--local-port is for --action forward:PORT; {action} picks its own port");
    }
    Ok(Favorite {
        account_id: host.account_id.clone(),
        region: host.region.clone(),
        instance_id: host.instance_id.clone(),
        alias: args.alias.clone(),
        name: host.name.clone(),
        action,
        local_port: args.local_port,
    })
}

/// The one favorite `args` names, or an error listing the candidates.
fn only_one(store: &Store, args: &RemoveArgs) -> anyhow::Result<Favorite> {
    let matches: Vec<Favorite> = store
        .find_favorites(&args.host)
        .into_iter()
        .filter(|f| args.account.as_ref().is_none_or(|a| &f.account_id == a))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!(
            "no favorite is called `{}`; `bastionless favorites` lists them",
            args.host
        ),
        several => bail!(
            "`{}` is a favorite in {} accounts; add --account with one of: {}",
            args.host,
            several.len(),
            several
                .iter()
                .map(|f| f.account_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn print(favorites: &[Favorite], json: bool) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    let written = if json {
        serde_json::to_writer_pretty(&mut stdout, favorites)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(stdout))
    } else if favorites.is_empty() {
        eprintln!("No favorites yet: `bastionless favorites add HOST` adds one.");
        Ok(())
    } else {
        stdout.write_all(format_table(favorites).as_bytes())
    };
    match written.and_then(|()| stdout.flush()) {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("could not write to stdout"),
    }
}

/// One block per account, each favorite on a line: label, instance, region, action.
fn format_table(favorites: &[Favorite]) -> String {
    let mut sorted: Vec<&Favorite> = favorites.iter().collect();
    sorted.sort_by(|a, b| (&a.account_id, a.label()).cmp(&(&b.account_id, b.label())));
    let width = sorted.iter().map(|f| f.label().len()).max().unwrap_or(0);
    let mut out = String::new();
    let mut account = None;
    for favorite in sorted {
        if account != Some(&favorite.account_id) {
            account = Some(&favorite.account_id);
            out.push_str(&format!("account {}\n", favorite.account_id));
        }
        let action = match favorite.local_port {
            Some(port) => format!("{} (local port {port})", favorite.action),
            None => favorite.action.to_string(),
        };
        out.push_str(&format!(
            "  {:width$}  {}  {}  {action}\n",
            favorite.label(),
            favorite.instance_id,
            favorite.region,
        ));
    }
    out
}

/// The store [`favorite_host`] reads aliases from, chosen once by [`crate::cli::run`]: host
/// resolution only sees a snapshot, and the demo must read the demo's favorites.
static ALIAS_STORE: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Makes [`favorite_host`] read aliases from the store in `dir` for the rest of the process.
pub fn use_aliases_from(dir: Option<PathBuf>) {
    let _ = ALIAS_STORE.set(dir);
}

/// The host a favorite's alias names, when `query` is one: `None` when it is not an alias (the
/// caller then matches names and ids), an error when the favorite's instance is not in the
/// inventory.
pub fn favorite_host<'a>(snapshot: &'a Snapshot, query: &str) -> Option<anyhow::Result<&'a Host>> {
    let dir = ALIAS_STORE.get()?.as_deref()?;
    let favorite = read_alias(dir, query)?;
    let found = snapshot
        .host(&favorite.host_key())
        .or_else(|| {
            // The same instance in the same account, should the region have been mistyped.
            snapshot.hosts.iter().find(|h| {
                h.account_id == favorite.account_id && h.instance_id == favorite.instance_id
            })
        })
        .with_context(|| {
            format!(
                "the favorite `{query}` is {} in account {} ({}), which no profile lists now: it \
                 may be terminated, or its account's profile failed (see above)",
                favorite.instance_id, favorite.account_id, favorite.region
            )
        });
    Some(found)
}

/// The favorite called `alias` in the store at `dir`, without creating the store: a command
/// that only looks must not leave files behind.
fn read_alias(dir: &Path, alias: &str) -> Option<Favorite> {
    if !dir.join("favorites.toml").exists() {
        return None;
    }
    match Store::open(dir) {
        Ok(store) => store.favorite_by_alias(alias),
        Err(error) => {
            tracing::warn!("could not read favorites for aliases: {error}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn favorite(account: &str, id: &str, alias: Option<&str>) -> Favorite {
        Favorite {
            account_id: account.into(),
            region: "eu-west-1".into(),
            instance_id: id.into(),
            alias: alias.map(str::to_owned),
            name: Some("web".into()),
            action: Action::Forward { remote_port: 80 },
            local_port: Some(8080),
        }
    }

    #[test]
    fn the_table_groups_favorites_by_account() {
        let table = format_table(&[
            favorite("222222222222", "i-2", None),
            favorite("111111111111", "i-1", Some("front")),
        ]);
        assert_eq!(
            table,
            "account 111111111111\n  front  i-1  eu-west-1  forward:80 (local port 8080)\n\
             account 222222222222\n  web    i-2  eu-west-1  forward:80 (local port 8080)\n"
        );
    }
}
