//! EC2 `Filter.N.Name` / `Filter.N.Value.M` filters: different filters must all match, any of
//! one filter's values may; values may use the `*` and `?` wildcards.
//!
//! Each Describe action names the filters it supports; a resource answers a filter with the
//! values it has for that name (`Resource::filter_values`), so the matching rules live here once.

use std::collections::BTreeMap;

use crate::error::AwsError;
use crate::query::QueryParams;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    name: String,
    values: Vec<String>,
}

/// Something a Describe action lists and filters.
pub trait Filterable {
    /// This resource's values for filter `name` (one of the action's supported names, or
    /// `tag:KEY`); empty when it has none.
    fn filter_values(&self, name: &str) -> Vec<String>;
}

impl Filter {
    /// Reads every `Filter.N` from a request, refusing names outside `supported` (other than
    /// `tag:KEY`, which every action here supports).
    pub fn from_params(params: &QueryParams, supported: &[&str]) -> Result<Vec<Filter>, AwsError> {
        params
            .members("Filter")
            .iter()
            .map(|member| {
                let name = member.get("Name").ok_or_else(|| {
                    AwsError::bad_request(
                        "MissingParameter",
                        "The request must contain the parameter Filter.Name",
                    )
                })?;
                let is_tag = name.strip_prefix("tag:").is_some_and(|key| !key.is_empty());
                if !is_tag && !supported.contains(&name) {
                    return Err(AwsError::bad_request(
                        "InvalidParameterValue",
                        format!("The filter '{name}' is invalid"),
                    ));
                }
                let values: Vec<String> = member
                    .list("Value")
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                if values.is_empty() {
                    return Err(AwsError::bad_request(
                        "InvalidParameterCombination",
                        format!("The filter '{name}' requires at least one value"),
                    ));
                }
                Ok(Filter {
                    name: name.to_owned(),
                    values,
                })
            })
            .collect()
    }

    pub fn matches(&self, resource: &impl Filterable) -> bool {
        let candidates = resource.filter_values(&self.name);
        self.values.iter().any(|pattern| {
            candidates
                .iter()
                .any(|candidate| wildcard_match(pattern, candidate))
        })
    }
}

/// Whether `resource` passes every filter.
pub fn all_match(filters: &[Filter], resource: &impl Filterable) -> bool {
    filters.iter().all(|filter| filter.matches(resource))
}

/// The answers every tagged resource gives: `tag:KEY`, `tag-key` and `tag-value`; `None` for
/// any other filter name.
pub fn tag_filter_values(name: &str, tags: &BTreeMap<String, String>) -> Option<Vec<String>> {
    if let Some(key) = name.strip_prefix("tag:") {
        return Some(tags.get(key).cloned().into_iter().collect());
    }
    match name {
        "tag-key" => Some(tags.keys().cloned().collect()),
        "tag-value" => Some(tags.values().cloned().collect()),
        _ => None,
    }
}

/// EC2's filter wildcards: `*` is any run of characters, `?` any one, `\` escapes either.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    #[derive(Clone, Copy)]
    enum Token {
        Literal(char),
        AnyOne,
        AnyRun,
    }
    let mut tokens = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        tokens.push(match c {
            '*' => Token::AnyRun,
            '?' => Token::AnyOne,
            '\\' => Token::Literal(chars.next().unwrap_or('\\')),
            c => Token::Literal(c),
        });
    }
    let text: Vec<char> = text.chars().collect();
    // matched[j]: the tokens so far can match the first j characters of the text.
    let mut matched = vec![false; text.len() + 1];
    matched[0] = true;
    for token in tokens {
        let mut next = vec![false; text.len() + 1];
        for j in 0..=text.len() {
            next[j] = match token {
                Token::AnyRun => matched[j] || (j > 0 && next[j - 1]),
                Token::AnyOne => j > 0 && matched[j - 1],
                Token::Literal(c) => j > 0 && matched[j - 1] && text[j - 1] == c,
            };
        }
        matched = next;
    }
    matched[text.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_ec2_filters() {
        assert!(wildcard_match("web-*", "web-eic-1"));
        assert!(wildcard_match("*-1", "web-eic-1"));
        assert!(wildcard_match("api-?", "api-3"));
        assert!(!wildcard_match("api-?", "api-10"));
        assert!(wildcard_match("*", ""));
        assert!(!wildcard_match("web", "web-eic-1"));
        assert!(wildcard_match(r"a\*b", "a*b"));
        assert!(!wildcard_match(r"a\*b", "axb"));
    }

    #[test]
    fn an_unknown_filter_is_invalid() {
        let params = QueryParams::parse("", b"Filter.1.Name=colour&Filter.1.Value.1=blue")
            .expect("well-formed");
        let error = Filter::from_params(&params, &["vpc-id"]).expect_err("unknown filter");
        assert_eq!(error.code, "InvalidParameterValue");
        assert_eq!(error.message, "The filter 'colour' is invalid");
    }
}
