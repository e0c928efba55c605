//! Favorites: the hosts a user connects to often, each with how to connect.
//!
//! A favorite is keyed by AWS account id and instance id, never by profile (two profiles of one
//! account name the same instance) and never by instance id alone (two accounts can hold the
//! same id, and a favorite in one must not connect to the other). The region is kept so that a
//! favorite can be connected to before the inventory has been scanned.

use serde::{Deserialize, Serialize};

use super::action::Action;
use super::document::Document;
use crate::inventory::HostKey;

/// What identifies a favorite (and a host's settings).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AccountInstance {
    pub account_id: String,
    pub instance_id: String,
}

impl From<&HostKey> for AccountInstance {
    fn from(key: &HostKey) -> Self {
        Self {
            account_id: key.account_id.clone(),
            instance_id: key.instance_id.clone(),
        }
    }
}

impl std::fmt::Display for AccountInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} in account {}", self.instance_id, self.account_id)
    }
}

/// One favorite host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Favorite {
    pub account_id: String,
    pub region: String,
    pub instance_id: String,
    /// A short name of the user's own that the CLI accepts wherever it takes a host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// The instance's Name tag when it was added, to show before the inventory is scanned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub action: Action,
    /// The loopback port a forward listens on; any free port when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_port: Option<u16>,
}

impl Favorite {
    pub fn key(&self) -> AccountInstance {
        AccountInstance {
            account_id: self.account_id.clone(),
            instance_id: self.instance_id.clone(),
        }
    }

    /// The host to connect to.
    pub fn host_key(&self) -> HostKey {
        HostKey {
            account_id: self.account_id.clone(),
            region: self.region.clone(),
            instance_id: self.instance_id.clone(),
        }
    }

    /// What to call it: the alias, else the Name tag, else the instance id.
    pub fn label(&self) -> &str {
        self.alias
            .as_deref()
            .or(self.name.as_deref())
            .unwrap_or(&self.instance_id)
    }

    /// Whether `query` names this favorite: its alias (ignoring case) or its instance id.
    pub fn answers_to(&self, query: &str) -> bool {
        let query = query.trim();
        self.alias
            .as_deref()
            .is_some_and(|a| a.eq_ignore_ascii_case(query))
            || self.instance_id.eq_ignore_ascii_case(query)
    }
}

/// Checks an alias: something a shell passes as one word and no one mistakes for an instance id.
pub fn check_alias(alias: &str) -> Result<(), String> {
    if alias.is_empty() || alias.len() > 64 {
        return Err("an alias must be 1 to 64 characters".into());
    }
    if !alias
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(format!(
            "the alias `{alias}` may only use letters, digits, `-`, `_` and `.`"
        ));
    }
    let lower = alias.to_ascii_lowercase();
    if lower
        .strip_prefix("i-")
        .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_hexdigit()))
    {
        return Err(format!(
            "the alias `{alias}` looks like an instance id; choose a name"
        ));
    }
    Ok(())
}

/// `favorites.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FavoritesFile {
    #[serde(default, rename = "favorite")]
    pub favorites: Vec<Favorite>,
}

impl FavoritesFile {
    /// Adds `favorite`, or replaces the one with its key; `true` when it replaced one.
    pub fn upsert(&mut self, favorite: Favorite) -> Result<bool, String> {
        if let Some(alias) = &favorite.alias {
            check_alias(alias)?;
            if let Some(other) = self.favorites.iter().find(|f| {
                f.key() != favorite.key()
                    && f.alias
                        .as_deref()
                        .is_some_and(|a| a.eq_ignore_ascii_case(alias))
            }) {
                return Err(format!(
                    "the alias `{alias}` already names {}; choose another",
                    other.key()
                ));
            }
        }
        match self
            .favorites
            .iter_mut()
            .find(|f| f.key() == favorite.key())
        {
            Some(existing) => {
                *existing = favorite;
                Ok(true)
            }
            None => {
                self.favorites.push(favorite);
                Ok(false)
            }
        }
    }
}

impl Document for FavoritesFile {
    const FILE: &'static str = "favorites.toml";
    const WHAT: &'static str = "favorites";
    const SCHEMA: u32 = 1;

    fn migrate(from: u32, _table: &mut toml::Table) -> Result<(), String> {
        Err(format!("schema {from} was never written"))
    }

    fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::BTreeSet::new();
        let mut aliases = std::collections::BTreeSet::new();
        for favorite in &self.favorites {
            for (field, value) in [
                ("account_id", &favorite.account_id),
                ("region", &favorite.region),
                ("instance_id", &favorite.instance_id),
            ] {
                if value.trim().is_empty() {
                    return Err(format!("a favorite has an empty `{field}`"));
                }
            }
            if !seen.insert(favorite.key()) {
                return Err(format!("{} is listed twice", favorite.key()));
            }
            if let Some(alias) = &favorite.alias {
                check_alias(alias)?;
                if !aliases.insert(alias.to_ascii_lowercase()) {
                    return Err(format!("the alias `{alias}` is used twice"));
                }
            }
        }
        Ok(())
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
            name: None,
            action: Action::Ssh,
            local_port: None,
        }
    }

    #[test]
    fn the_same_instance_id_in_two_accounts_is_two_favorites() {
        let mut file = FavoritesFile::default();
        assert_eq!(
            file.upsert(favorite("111111111111", "i-0abc", None)),
            Ok(false)
        );
        assert_eq!(
            file.upsert(favorite("222222222222", "i-0abc", None)),
            Ok(false)
        );
        assert_eq!(file.favorites.len(), 2);
        // The same account and instance again replaces the first.
        assert_eq!(
            file.upsert(favorite("111111111111", "i-0abc", Some("db"))),
            Ok(true)
        );
        assert_eq!(file.favorites.len(), 2);
        assert_eq!(file.favorites[0].alias.as_deref(), Some("db"));
    }

    #[test]
    fn an_alias_names_one_favorite_only() {
        let mut file = FavoritesFile::default();
        file.upsert(favorite("111111111111", "i-0abc", Some("db")))
            .unwrap();
        let why = file
            .upsert(favorite("222222222222", "i-0abc", Some("DB")))
            .unwrap_err();
        assert!(
            why.contains("already names i-0abc in account 111111111111"),
            "{why}"
        );
    }

    #[test]
    fn aliases_are_words_that_are_not_instance_ids() {
        for good in ["db", "prod-web.1", "a_b"] {
            assert_eq!(check_alias(good), Ok(()), "{good}");
        }
        for bad in ["", "two words", "i-0123abcd", "semi;colon"] {
            assert!(check_alias(bad).is_err(), "{bad:?}");
        }
    }
}
