//! Which profile scans which account: each account once, whatever number of profiles reach it.
//!
//! Users often have several profiles into one account (an admin and a read-only role, one per
//! home region). Scanning every enabled region through each would repeat every call, so each
//! account is scanned by one profile — the `AWS_PROFILE` one if it reaches the account, else the
//! one the user last connected through (hosts then keep the profile the user chose, rather than
//! moving to another when profiles come and go), else the first by name — and the others only
//! identify themselves. A profile's account is known only once STS answers, so the choice waits
//! for every profile ranked above: when it is made, no better-ranked profile can still turn out
//! to reach the same account. STS answers fast, and calls that fail or time out stop blocking
//! at once. When the chosen profile may not read everything, the scan asks the account's other
//! profiles and keeps the broadest result (`refresh::scan`).

use std::collections::{BTreeMap, HashMap};

/// What STS said about one profile.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Identity {
    Pending,
    Account(String),
    Failed,
}

/// The profiles in rank order, what is known of each, and the account owners chosen so far.
#[derive(Debug)]
pub(super) struct AccountPlan {
    ranked: Vec<String>,
    identities: HashMap<String, Identity>,
    /// The profile that scans each account.
    owners: BTreeMap<String, String>,
}

impl AccountPlan {
    /// Ranks `profiles`: those in `preferred` first, in its order, then the rest by name.
    pub(super) fn new(profiles: impl IntoIterator<Item = String>, preferred: &[&str]) -> Self {
        let rank = |p: &String| {
            preferred
                .iter()
                .position(|q| q == p)
                .unwrap_or(preferred.len())
        };
        let mut ranked: Vec<String> = profiles.into_iter().collect();
        ranked.sort_by(|a, b| (rank(a), a).cmp(&(rank(b), b)));
        ranked.dedup();
        let identities = ranked
            .iter()
            .map(|p| (p.clone(), Identity::Pending))
            .collect();
        Self {
            ranked,
            identities,
            owners: BTreeMap::new(),
        }
    }

    /// Records STS's answer for `profile` (`None`: it failed) and returns the accounts whose
    /// owner can now be chosen, each with its owner, in rank order.
    pub(super) fn identified(
        &mut self,
        profile: &str,
        account: Option<String>,
    ) -> Vec<(String, String)> {
        if let Some(identity) = self.identities.get_mut(profile) {
            *identity = account.map_or(Identity::Failed, Identity::Account);
        }
        let mut claimed = Vec::new();
        for name in &self.ranked {
            match &self.identities[name] {
                Identity::Pending => break,
                Identity::Failed => {}
                Identity::Account(account) => {
                    if !self.owners.contains_key(account) {
                        self.owners.insert(account.clone(), name.clone());
                        claimed.push((account.clone(), name.clone()));
                    }
                }
            }
        }
        claimed
    }

    /// Whether every profile has answered STS (or failed to).
    pub(super) fn settled(&self) -> bool {
        !self.identities.values().any(|i| *i == Identity::Pending)
    }

    /// The profile that scans `account`, once chosen.
    pub(super) fn owner(&self, account: &str) -> Option<&str> {
        self.owners.get(account).map(String::as_str)
    }

    /// The account STS reported for `profile`.
    pub(super) fn account_of(&self, profile: &str) -> Option<&str> {
        match self.identities.get(profile) {
            Some(Identity::Account(account)) => Some(account),
            _ => None,
        }
    }

    /// Every profile known to reach `account`, in rank order (its owner first): who to ask
    /// when the owner lacks a permission.
    pub(super) fn profiles_of(&self, account: &str) -> Vec<String> {
        self.ranked
            .iter()
            .filter(|p| self.account_of(p) == Some(account))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(preferred: &[&str]) -> AccountPlan {
        AccountPlan::new(
            ["staging", "prod-readonly", "prod", "sandbox", "prod-eu"].map(String::from),
            preferred,
        )
    }

    fn claims(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, p)| ((*a).to_owned(), (*p).to_owned()))
            .collect()
    }

    #[test]
    fn each_account_is_scanned_once_by_its_first_profile_in_name_order() {
        let mut plan = plan(&[]);
        // prod-eu answers first, but prod (ranked above it) has not answered yet.
        assert_eq!(plan.identified("prod-eu", Some("111".into())), []);
        assert_eq!(
            plan.identified("prod", Some("111".into())),
            claims(&[("111", "prod")])
        );
        assert_eq!(plan.identified("prod-readonly", Some("111".into())), []);
        assert_eq!(
            plan.identified("sandbox", Some("444".into())),
            claims(&[("444", "sandbox")])
        );
        assert_eq!(plan.identified("staging", Some("444".into())), []);
        assert_eq!(plan.owner("111"), Some("prod"));
        assert_eq!(plan.owner("444"), Some("sandbox"));
        assert_eq!(
            plan.profiles_of("111"),
            ["prod", "prod-eu", "prod-readonly"]
        );
        assert_eq!(plan.account_of("staging"), Some("444"));
    }

    #[test]
    fn the_aws_profile_profile_scans_its_account_even_if_others_come_first_by_name() {
        let mut plan = plan(&["prod-readonly"]);
        assert_eq!(plan.identified("prod", Some("111".into())), []);
        assert_eq!(
            plan.identified("prod-readonly", Some("111".into())),
            claims(&[("111", "prod-readonly")])
        );
        assert_eq!(plan.profiles_of("111"), ["prod-readonly", "prod"]);
    }

    #[test]
    fn preferred_profiles_rank_in_the_order_given_before_the_rest() {
        // AWS_PROFILE (staging), then the profile last used (prod-readonly).
        let mut plan = plan(&["staging", "prod-readonly"]);
        assert_eq!(plan.identified("prod", Some("111".into())), []);
        assert_eq!(plan.identified("prod-readonly", Some("111".into())), []);
        assert_eq!(
            plan.identified("staging", Some("444".into())),
            claims(&[("444", "staging"), ("111", "prod-readonly")])
        );
        assert_eq!(plan.profiles_of("111"), ["prod-readonly", "prod"]);
    }

    #[test]
    fn a_failed_profile_stops_blocking_and_waiting_profiles_claim_in_rank_order() {
        let mut plan = plan(&[]);
        assert_eq!(plan.identified("sandbox", Some("444".into())), []);
        assert_eq!(plan.identified("staging", Some("555".into())), []);
        assert_eq!(plan.identified("prod-eu", Some("111".into())), []);
        assert_eq!(plan.identified("prod-readonly", None), []);
        // prod failing unblocks everything below it at once.
        assert_eq!(
            plan.identified("prod", None),
            claims(&[("111", "prod-eu"), ("444", "sandbox"), ("555", "staging")])
        );
        assert_eq!(plan.account_of("prod"), None);
    }
}
