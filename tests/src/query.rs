//! Request parameters of the AWS query protocols (EC2 and `awsQuery`, as STS speaks it).
//!
//! The SDKs send `POST /` with a form body such as
//! `Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=tag%3AName&Filter.1.Value.1=web-*`;
//! a presigned URL carries the same parameters in its query string. Lists are flattened into
//! numbered keys (`InstanceId.1`, `InstanceId.2`, …) and structures into dotted ones
//! (`Filter.1.Name`), which `list` and `members` turn back into shape.

use std::collections::BTreeMap;

use percent_encoding::percent_decode;

/// Decoded parameters, the presigning ones (`X-Amz-*`) left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryParams(BTreeMap<String, String>);

/// The parameters are not `application/x-www-form-urlencoded` UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedQuery;

impl QueryParams {
    /// Reads the URL's query string and the form body together, as AWS does.
    pub fn parse(url_query: &str, form_body: &[u8]) -> Result<QueryParams, MalformedQuery> {
        let mut params = BTreeMap::new();
        for source in [url_query.as_bytes(), form_body] {
            for pair in source.split(|&b| b == b'&').filter(|pair| !pair.is_empty()) {
                let (key, value) = match pair.iter().position(|&b| b == b'=') {
                    Some(at) => (&pair[..at], &pair[at + 1..]),
                    None => (pair, &b""[..]),
                };
                let key = form_decode(key)?;
                if !key.starts_with("X-Amz-") {
                    params.insert(key, form_decode(value)?);
                }
            }
        }
        Ok(QueryParams(params))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A flattened list: the values of `name.1`, `name.2`, … in index order.
    pub fn list(&self, name: &str) -> Vec<&str> {
        let mut items: Vec<(u32, &str)> = self
            .0
            .iter()
            .filter_map(|(key, value)| {
                let index = key.strip_prefix(name)?.strip_prefix('.')?;
                Some((positive_index(index)?, value.as_str()))
            })
            .collect();
        items.sort_by_key(|(index, _)| *index);
        items.into_iter().map(|(_, value)| value).collect()
    }

    /// A flattened list of structures: `name.N.member` grouped by `N`, in index order, each as
    /// parameters of its own (`member`, …).
    pub fn members(&self, name: &str) -> Vec<QueryParams> {
        let mut groups: BTreeMap<u32, BTreeMap<String, String>> = BTreeMap::new();
        for (key, value) in &self.0 {
            let Some(rest) = key
                .strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('.'))
            else {
                continue;
            };
            let Some((index, member)) = rest.split_once('.') else {
                continue;
            };
            if let Some(index) = positive_index(index) {
                groups
                    .entry(index)
                    .or_default()
                    .insert(member.to_owned(), value.clone());
            }
        }
        groups.into_values().map(QueryParams).collect()
    }

    /// The first parameter that fits none of `patterns`, where `#` in a pattern stands for a
    /// list index: `["Action", "InstanceId.#", "Filter.#.Value.#"]`.
    pub fn unknown_parameter(&self, patterns: &[&str]) -> Option<&str> {
        self.0
            .keys()
            .find(|key| !patterns.iter().any(|pattern| fits(key, pattern)))
            .map(String::as_str)
    }
}

fn fits(key: &str, pattern: &str) -> bool {
    let mut key_parts = key.split('.');
    let mut pattern_parts = pattern.split('.');
    loop {
        match (key_parts.next(), pattern_parts.next()) {
            (None, None) => return true,
            (Some(part), Some("#")) if positive_index(part).is_some() => {}
            (Some(part), Some(expected)) if part == expected && expected != "#" => {}
            _ => return false,
        }
    }
}

fn positive_index(text: &str) -> Option<u32> {
    text.parse().ok().filter(|&index| index > 0)
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte.
fn form_decode(raw: &[u8]) -> Result<String, MalformedQuery> {
    let spaced: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    String::from_utf8(percent_decode(&spaced).collect()).map_err(|_| MalformedQuery)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_structures_are_rebuilt_from_numbered_keys() {
        let body = b"Action=DescribeInstances&InstanceId.2=i-b&InstanceId.1=i-a&InstanceId.10=i-j\
            &Filter.1.Name=tag%3AName&Filter.1.Value.1=web-*&Filter.1.Value.2=db+1\
            &Filter.2.Name=instance-state-name&Filter.2.Value.1=running";
        let params = QueryParams::parse("", body).expect("well-formed");
        assert_eq!(params.get("Action"), Some("DescribeInstances"));
        assert_eq!(params.list("InstanceId"), ["i-a", "i-b", "i-j"]);
        let filters = params.members("Filter");
        assert_eq!(filters.len(), 2);
        assert_eq!(filters[0].get("Name"), Some("tag:Name"));
        assert_eq!(filters[0].list("Value"), ["web-*", "db 1"]);
        assert_eq!(filters[1].list("Value"), ["running"]);
    }

    #[test]
    fn presigning_parameters_are_not_request_parameters() {
        let params = QueryParams::parse(
            "Action=GetCallerIdentity&X-Amz-Signature=abc&X-Amz-Date=20240101T000000Z",
            b"",
        )
        .expect("well-formed");
        assert_eq!(params.unknown_parameter(&["Action"]), None);
    }

    #[test]
    fn unknown_parameters_are_found_by_pattern() {
        let params = QueryParams::parse(
            "",
            b"Action=A&Filter.1.Name=x&Filter.1.Value.1=y&Filter.1.Valu.1=z",
        )
        .expect("well-formed");
        assert_eq!(
            params.unknown_parameter(&["Action", "Filter.#.Name", "Filter.#.Value.#"]),
            Some("Filter.1.Valu.1")
        );
        assert_eq!(
            params.unknown_parameter(&[
                "Action",
                "Filter.#.Name",
                "Filter.#.Value.#",
                "Filter.#.Valu.#"
            ]),
            None
        );
    }

    #[test]
    fn a_body_that_is_not_utf8_is_malformed() {
        assert_eq!(QueryParams::parse("", b"Action=%FF"), Err(MalformedQuery));
    }
}
