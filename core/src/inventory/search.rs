//! The host search shared by the app's search box and `bastionless list --filter`.
//!
//! People search for a host by whatever they remember of it: part of its name, an instance id,
//! an IP, the profile or region, a tag value. Every whitespace-separated word must appear,
//! case-insensitively, in at least one of those fields, so `prod eu-west` narrows instead of
//! widening. A word can also name the field it is about:
//!
//! | word | keeps hosts whose … |
//! |---|---|
//! | `tag:Env=prod` | tag `Env` (any case) has a value containing `prod`; `tag:Env` only asks for the tag |
//! | `state:running` | EC2 state contains `running` |
//! | `os:windows` | platform (`linux`, `windows`) contains `windows` |
//! | `route:ssm` | best route is SSM (`eic`, `ssm`, `direct`, or `none` when every route is blocked) |
//! | `account:1111` | account id contains `1111` |
//! | `region:eu` | region contains `eu` |
//! | `profile:dev` | profile contains `dev` |
//!
//! A word with an unknown field name (`foo:bar`) is searched as plain text. One implementation,
//! so the window and the command line always agree.

use super::Host;

/// The parsed search text: terms a host must all match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostQuery {
    terms: Vec<Term>,
}

/// One word of the query, lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    /// Contained in one of the searchable fields.
    Text(String),
    Tag {
        key: String,
        value: Option<String>,
    },
    State(String),
    Os(String),
    Route(String),
    Account(String),
    Region(String),
    Profile(String),
}

impl Term {
    fn parse(word: &str) -> Self {
        let word = word.to_lowercase();
        let Some((field, value)) = word.split_once(':') else {
            return Self::Text(word);
        };
        let value = value.to_owned();
        match field {
            "tag" => match value.split_once('=') {
                Some((key, value)) => Self::Tag {
                    key: key.to_owned(),
                    value: Some(value.to_owned()),
                },
                None => Self::Tag {
                    key: value,
                    value: None,
                },
            },
            "state" => Self::State(value),
            "os" => Self::Os(value),
            "route" => Self::Route(value),
            "account" => Self::Account(value),
            "region" => Self::Region(value),
            "profile" => Self::Profile(value),
            _ => Self::Text(word),
        }
    }

    /// Whether every host this term keeps, `previous` keeps too. Containment terms narrow as
    /// their text grows (`prod` keeps fewer hosts than `pro`); a tag key and a route are
    /// compared whole, so they narrow only by staying the same.
    fn narrows(&self, previous: &Self) -> bool {
        match (self, previous) {
            (Self::Text(new), Self::Text(old))
            | (Self::State(new), Self::State(old))
            | (Self::Os(new), Self::Os(old))
            | (Self::Account(new), Self::Account(old))
            | (Self::Region(new), Self::Region(old))
            | (Self::Profile(new), Self::Profile(old)) => new.contains(old.as_str()),
            (Self::Route(new), Self::Route(old)) => new == old,
            (
                Self::Tag { key, value },
                Self::Tag {
                    key: old_key,
                    value: old_value,
                },
            ) => {
                key == old_key
                    && match (value, old_value) {
                        (_, None) => true,
                        (Some(new), Some(old)) => new.contains(old.as_str()),
                        (None, Some(_)) => false,
                    }
            }
            _ => false,
        }
    }

    fn matches(&self, host: &Host, best_route: Option<&str>) -> bool {
        let contains = contains_ignoring_case;
        match self {
            Self::Text(word) => searchable_fields(host).any(|field| contains(field, word)),
            Self::Tag { key, value } => host.tags.iter().any(|(k, v)| {
                k.eq_ignore_ascii_case(key) && value.as_ref().is_none_or(|value| contains(v, value))
            }),
            Self::State(state) => host.state.as_str().contains(state.as_str()),
            Self::Os(os) => host.platform.as_str().contains(os.as_str()),
            Self::Route(route) => best_route.is_some_and(|best| best.eq_ignore_ascii_case(route)),
            Self::Account(account) => host.account_id.contains(account.as_str()),
            Self::Region(region) => host.region.contains(region.as_str()),
            Self::Profile(profile) => contains(&host.profile, profile),
        }
    }
}

impl HostQuery {
    pub fn parse(text: &str) -> Self {
        Self {
            terms: text.split_whitespace().map(Term::parse).collect(),
        }
    }

    /// Whether the query keeps every host.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether a `route:` term needs the host's best route: without one, the caller need not
    /// look it up.
    pub fn needs_route(&self) -> bool {
        self.terms.iter().any(|term| matches!(term, Term::Route(_)))
    }

    /// Whether every host this query keeps, `previous` keeps too (each of `previous`'s terms
    /// is narrowed by one of these), so that the hosts `previous` kept can be searched instead
    /// of all of them. True as a search is typed a character at a time.
    pub fn narrows(&self, previous: &HostQuery) -> bool {
        previous
            .terms
            .iter()
            .all(|old| self.terms.iter().any(|new| new.narrows(old)))
    }

    /// Whether `host` matches every term. `best_route` is the method of the host's best route
    /// (`EIC`, `SSM`, `Direct`; any case), `"none"` when every route is blocked, or `None` when
    /// its routes are not known yet, which no `route:` term matches.
    pub fn matches(&self, host: &Host, best_route: Option<&str>) -> bool {
        self.terms.iter().all(|term| term.matches(host, best_route))
    }
}

/// Whether `field` contains `part` (already lower-case), ignoring case. The window runs this
/// over every host at each keystroke, so ASCII text (nearly all of it) is compared in place
/// rather than lower-cased into a new string.
fn contains_ignoring_case(field: &str, part: &str) -> bool {
    if !field.is_ascii() || !part.is_ascii() {
        return field.to_lowercase().contains(part);
    }
    let (field, part) = (field.as_bytes(), part.as_bytes());
    part.is_empty()
        || field
            .windows(part.len())
            .any(|window| window.eq_ignore_ascii_case(part))
}

fn searchable_fields(host: &Host) -> impl Iterator<Item = &str> {
    [
        host.name.as_deref(),
        Some(host.instance_id.as_str()),
        host.private_ip.as_deref(),
        host.public_ip.as_deref(),
        Some(host.profile.as_str()),
        Some(host.region.as_str()),
    ]
    .into_iter()
    .flatten()
    .chain(host.tags.values().map(String::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{InstanceState, Platform};

    fn web_host() -> Host {
        Host {
            instance_id: "i-0abc123def4567890".to_owned(),
            name: Some("Web-EIC-1".to_owned()),
            tags: [
                ("Team".to_owned(), "Payments".to_owned()),
                ("Env".to_owned(), "prod".to_owned()),
            ]
            .into(),
            state: InstanceState::Running,
            platform: Platform::Linux,
            private_ip: Some("10.1.2.3".to_owned()),
            public_ip: Some("54.1.2.3".to_owned()),
            vpc_id: Some("vpc-0aaa".to_owned()),
            subnet_id: Some("subnet-0bbb".to_owned()),
            availability_zone: Some("eu-west-1a".to_owned()),
            key_name: Some("deploy-key".to_owned()),
            image: None,
            security_group_ids: vec!["sg-0ccc".to_owned()],
            profile: "prod".to_owned(),
            account_id: "111122223333".to_owned(),
            region: "eu-west-1".to_owned(),
            stale: false,
        }
    }

    fn matches(text: &str) -> bool {
        HostQuery::parse(text).matches(&web_host(), Some("EIC"))
    }

    #[test]
    fn an_empty_query_keeps_every_host() {
        assert!(HostQuery::parse("  ").is_empty());
        assert!(matches(""));
    }

    #[test]
    fn name_matching_ignores_case() {
        assert!(matches("web-eic"));
        assert!(matches("EIC"));
        assert!(!matches("ssm"));
    }

    #[test]
    fn instance_id_ips_profile_region_and_tag_values_are_searched() {
        for text in [
            "0abc123", "10.1.2", "54.1.2.3", "PROD", "eu-west", "payments",
        ] {
            assert!(matches(text), "{text} should match");
        }
    }

    #[test]
    fn fields_outside_the_searched_set_do_not_match() {
        // Tag keys, VPC, subnet, key pair, groups and account are not what people type to find
        // a host.
        for text in [
            "team",
            "vpc-0aaa",
            "subnet-0bbb",
            "deploy-key",
            "sg-0ccc",
            "111122223333",
        ] {
            assert!(!matches(text), "{text} should not match");
        }
    }

    #[test]
    fn every_word_must_match_somewhere() {
        assert!(matches("web prod"));
        assert!(matches("prod 10.1"));
        assert!(!matches("web staging"));
    }

    #[test]
    fn a_host_without_name_or_ips_is_still_found_by_id() {
        let host = Host {
            name: None,
            private_ip: None,
            public_ip: None,
            ..web_host()
        };
        assert!(HostQuery::parse("i-0abc").matches(&host, None));
        assert!(!HostQuery::parse("10.1").matches(&host, None));
    }

    #[test]
    fn tag_terms_match_the_key_in_any_case_and_part_of_the_value() {
        assert!(matches("tag:env=prod"));
        assert!(matches("tag:ENV=Pro"));
        assert!(matches("tag:team"));
        assert!(!matches("tag:env=staging"));
        assert!(!matches("tag:owner"));
        assert!(
            !matches("tag:payments"),
            "a tag term names a key, not a value"
        );
    }

    #[test]
    fn field_terms_match_only_their_field() {
        for text in [
            "state:running",
            "state:RUN",
            "os:linux",
            "account:1111",
            "region:eu-west",
            "profile:prod",
            "route:eic",
        ] {
            assert!(matches(text), "{text} should match");
        }
        for text in [
            "state:stopped",
            "os:windows",
            "account:9999",
            "region:us-",
            "profile:dev",
            "route:ssm",
        ] {
            assert!(!matches(text), "{text} should not match");
        }
        assert!(matches("web os:linux tag:env=prod"), "terms combine");
    }

    #[test]
    fn a_route_term_needs_the_route_to_be_known() {
        let host = web_host();
        assert!(HostQuery::parse("route:none").matches(&host, Some("none")));
        assert!(!HostQuery::parse("route:eic").matches(&host, None));
        assert!(HostQuery::parse("web").matches(&host, None));
    }

    #[test]
    fn a_query_narrows_another_when_each_old_term_has_a_stricter_new_one() {
        let narrows = |new: &str, old: &str| HostQuery::parse(new).narrows(&HostQuery::parse(old));
        for (new, old) in [
            ("web", ""),
            ("web", "we"),
            ("Web p", "web"),
            ("web pr account:1", "web p account:1"),
            ("web account:11", "account:1 web"),
            ("state:runn", "state:run"),
            ("tag:env=prod", "tag:env=pr"),
            ("tag:env=prod", "tag:env"),
            ("route:ssm", "route:ssm"),
        ] {
            assert!(narrows(new, old), "{new:?} narrows {old:?}");
        }
        for (new, old) in [
            ("we", "web"),
            ("", "web"),
            ("web", "web prod"),
            ("tag:env", "tag:en"),
            ("tag:env", "tag:env=prod"),
            ("route:ssmx", "route:ssm"),
            ("region:eu", "eu"),
            ("tag:", "tag"),
        ] {
            assert!(!narrows(new, old), "{new:?} does not narrow {old:?}");
        }
        // What narrowing promises: whatever the new query keeps, the old one kept.
        let host = web_host();
        for (new, old) in [("web-e", "web"), ("tag:env=prod", "tag:env")] {
            let (new, old) = (HostQuery::parse(new), HostQuery::parse(old));
            assert!(new.narrows(&old));
            assert!(!new.matches(&host, None) || old.matches(&host, None));
        }
    }

    #[test]
    fn only_route_terms_need_the_route() {
        assert!(HostQuery::parse("web route:ssm").needs_route());
        assert!(!HostQuery::parse("web tag:route=x").needs_route());
    }

    #[test]
    fn an_unknown_field_name_is_plain_text() {
        assert!(!matches("color:blue"));
        let mut host = web_host();
        host.tags.insert("Url".into(), "http://x".into());
        assert!(HostQuery::parse("http://x").matches(&host, None));
    }
}
