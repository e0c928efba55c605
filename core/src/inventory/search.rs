//! The host search shared by the app's search box and `bastionless list --filter`.
//!
//! People search for a host by whatever they remember of it: part of its name, an instance id,
//! an IP, the profile or region, a tag value. Every whitespace-separated word must appear,
//! case-insensitively, in at least one of those fields, so `prod eu-west` narrows instead of
//! widening. One implementation, so the window and the command line always agree.

use super::Host;

/// The parsed search text: lower-cased words, each of which a host must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostQuery {
    words: Vec<String>,
}

impl HostQuery {
    pub fn parse(text: &str) -> Self {
        Self {
            words: text.split_whitespace().map(str::to_lowercase).collect(),
        }
    }

    /// Whether the query keeps every host.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Whether every word appears in one of the host's searchable fields.
    pub fn matches(&self, host: &Host) -> bool {
        self.words.iter().all(|word| {
            searchable_fields(host).any(|field| field.to_lowercase().contains(word.as_str()))
        })
    }
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
            tags: [("Team".to_owned(), "Payments".to_owned())].into(),
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
        HostQuery::parse(text).matches(&web_host())
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
        assert!(HostQuery::parse("i-0abc").matches(&host));
        assert!(!HostQuery::parse("10.1").matches(&host));
    }
}
