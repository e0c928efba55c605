//! Sharing favorites and host settings: one TOML file with `[[favorite]]` and `[[host]]`
//! tables, the same shapes as `favorites.toml` and `hosts.toml`, so a team can keep its list in
//! a repository and everyone imports it.

use serde::{Deserialize, Serialize};

use super::document::{self, Document, Unreadable};
use super::favorites::{Favorite, FavoritesFile};
use super::host_settings::{HostEntry, HostsFile};

/// What an import changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub favorites_added: usize,
    /// Favorites for an account and instance already in the store, replaced by the file's.
    pub favorites_replaced: usize,
    /// Hosts whose settings were set.
    pub hosts: usize,
    /// Favorites not imported, each with why (an alias another favorite already has).
    pub skipped: Vec<String>,
}

impl std::fmt::Display for ImportReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} favorites added, {} replaced, settings for {} hosts",
            self.favorites_added, self.favorites_replaced, self.hosts
        )?;
        for why in &self.skipped {
            write!(f, "\nskipped {why}")?;
        }
        Ok(())
    }
}

/// The exchange file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExchangeFile {
    #[serde(default, rename = "favorite")]
    pub favorites: Vec<Favorite>,
    #[serde(default, rename = "host")]
    pub hosts: Vec<HostEntry>,
}

impl Document for ExchangeFile {
    const FILE: &'static str = "bastionless-export.toml";
    const WHAT: &'static str = "favorites and host settings";
    const SCHEMA: u32 = 1;

    fn migrate(from: u32, _table: &mut toml::Table) -> Result<(), String> {
        Err(format!("schema {from} was never written"))
    }

    fn validate(&self) -> Result<(), String> {
        FavoritesFile {
            favorites: self.favorites.clone(),
        }
        .validate()?;
        HostsFile {
            hosts: self.hosts.clone(),
        }
        .validate()
    }
}

pub(crate) fn render(favorites: &FavoritesFile, hosts: &HostsFile) -> String {
    document::render(&ExchangeFile {
        favorites: favorites.favorites.clone(),
        hosts: hosts.hosts.clone(),
    })
}

/// Reads an exchange file; the error says what is wrong with it.
pub(crate) fn parse(text: &str) -> Result<ExchangeFile, String> {
    document::parse(text).map_err(|unreadable| match unreadable {
        Unreadable::Damaged(why) => why,
        Unreadable::Newer(schema) => format!(
            "it was written by a newer Bastionless (schema {schema}); update Bastionless to \
             import it"
        ),
    })
}

pub(crate) fn merge_favorites(file: &mut FavoritesFile, incoming: Vec<Favorite>) -> ImportReport {
    let mut report = ImportReport::default();
    for favorite in incoming {
        let key = favorite.key();
        match file.upsert(favorite) {
            Ok(true) => report.favorites_replaced += 1,
            Ok(false) => report.favorites_added += 1,
            Err(why) => report.skipped.push(format!("{key}: {why}")),
        }
    }
    report
}

pub(crate) fn merge_hosts(file: &mut HostsFile, incoming: Vec<HostEntry>) -> Result<usize, String> {
    let count = incoming.len();
    for entry in incoming {
        file.set(&entry.key(), entry.settings())?;
    }
    Ok(count)
}
