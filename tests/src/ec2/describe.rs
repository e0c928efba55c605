//! What every `Describe*` action shares: unknown-parameter and id checks, filters, `DryRun`,
//! `MaxResults` bounds, and `NextToken` pagination tied to the query it continues (a token from
//! another query, caller or region is refused, as AWS refuses it).

use axum::http::StatusCode;
use sha2::{Digest, Sha256};

use super::filter::{Filter, Filterable, all_match};
use crate::error::AwsError;
use crate::query::QueryParams;
use crate::service::QueryCall;

/// How one Describe action reads its request.
pub struct Spec {
    /// Every parameter the action accepts (`#` stands for a list index).
    pub parameters: &'static [&'static str],
    /// The list parameter naming resources by id (`InstanceId` for `InstanceId.N`).
    pub id_parameter: &'static str,
    /// The id prefix (`i`, `vpc`, …) and the error codes for ids.
    pub id_prefix: &'static str,
    pub malformed_code: &'static str,
    pub not_found_code: &'static str,
    /// The NotFound message for one id and for several.
    pub not_found: fn(&[&str]) -> String,
    /// The filter names the action supports besides `tag:KEY`.
    pub filters: &'static [&'static str],
    pub max_results: std::ops::RangeInclusive<usize>,
    /// Whether `MaxResults` may be combined with ids (EC2 forbids it for most actions).
    pub max_results_with_ids: bool,
}

/// A parsed Describe request.
pub struct Describe<'a> {
    pub ids: Vec<&'a str>,
    filters: Vec<Filter>,
    page_size: usize,
    next_token: Option<&'a str>,
    fingerprint: [u8; 8],
}

impl<'a> Describe<'a> {
    pub fn parse(call: &QueryCall<'a>, spec: &Spec) -> Result<Describe<'a>, AwsError> {
        let params = call.params;
        if let Some(unknown) = params.unknown_parameter(spec.parameters) {
            return Err(AwsError::bad_request(
                "UnknownParameter",
                format!("The parameter {unknown} is not recognized"),
            ));
        }
        let ids = params.list(spec.id_parameter);
        for id in &ids {
            if !is_resource_id(spec.id_prefix, id) {
                return Err(AwsError::bad_request(
                    spec.malformed_code,
                    format!("Invalid id: \"{id}\""),
                ));
            }
        }
        let filters = Filter::from_params(params, spec.filters)?;
        let page_size = page_size(params.get("MaxResults"), &ids, spec)?;
        if params.get("DryRun") == Some("true") {
            return Err(AwsError::new(
                StatusCode::PRECONDITION_FAILED,
                "DryRunOperation",
                "Request would have succeeded, but DryRun flag is set.",
            ));
        }
        Ok(Describe {
            fingerprint: fingerprint(call, &ids, params),
            ids,
            filters,
            page_size,
            next_token: params.get("NextToken"),
        })
    }

    /// Selects from `visible` (what the caller may see, each with its id) the resources the
    /// request names and its filters pass, refusing ids that are not visible.
    pub fn select<T: Filterable>(
        &self,
        visible: Vec<(&str, T)>,
        spec: &Spec,
    ) -> Result<Vec<T>, AwsError> {
        let missing: Vec<&str> = self
            .ids
            .iter()
            .copied()
            .filter(|id| !visible.iter().any(|(visible_id, _)| visible_id == id))
            .collect();
        if !missing.is_empty() {
            return Err(AwsError::bad_request(
                spec.not_found_code,
                (spec.not_found)(&missing),
            ));
        }
        Ok(visible
            .into_iter()
            .filter(|(id, resource)| {
                (self.ids.is_empty() || self.ids.contains(id)) && all_match(&self.filters, resource)
            })
            .map(|(_, resource)| resource)
            .collect())
    }

    /// The page of `selected` this request asks for, and the token for the next one.
    pub fn page<'s, T>(&self, selected: &'s [T]) -> Result<(&'s [T], Option<String>), AwsError> {
        let start = match self.next_token {
            None => 0,
            Some(token) => self
                .offset_from_token(token)
                .filter(|&offset| offset <= selected.len())
                .ok_or_else(|| {
                    AwsError::bad_request(
                        "InvalidPaginationToken",
                        format!("Invalid pagination token: {token}"),
                    )
                })?,
        };
        let end = start.saturating_add(self.page_size).min(selected.len());
        let next_token = (end < selected.len()).then(|| self.token_for(end));
        Ok((&selected[start..end], next_token))
    }

    fn token_for(&self, offset: usize) -> String {
        let mut bytes = self.fingerprint.to_vec();
        bytes.extend_from_slice(&(offset as u64).to_be_bytes());
        hex::encode(bytes)
    }

    fn offset_from_token(&self, token: &str) -> Option<usize> {
        let bytes = hex::decode(token).ok()?;
        let (fingerprint, offset) = bytes.split_at_checked(8)?;
        if fingerprint != self.fingerprint {
            return None;
        }
        usize::try_from(u64::from_be_bytes(offset.try_into().ok()?)).ok()
    }
}

/// `PREFIX-` and 8 or 17 lower-case hex digits.
pub fn is_resource_id(prefix: &str, id: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|hex| {
            matches!(hex.len(), 8 | 17)
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// EC2's NotFound wording: `The {what} ID 'x' does not exist` / `The {what} IDs 'x, y' do not exist`.
pub fn ids_do_not_exist(what: &str, ids: &[&str]) -> String {
    match ids {
        [id] => format!("The {what} ID '{id}' does not exist"),
        _ => format!("The {what} IDs '{}' do not exist", ids.join(", ")),
    }
}

fn page_size(max_results: Option<&str>, ids: &[&str], spec: &Spec) -> Result<usize, AwsError> {
    let Some(text) = max_results else {
        return Ok(usize::MAX);
    };
    if !ids.is_empty() && !spec.max_results_with_ids {
        return Err(AwsError::bad_request(
            "InvalidParameterCombination",
            format!(
                "The parameter {} cannot be used with the parameter maxResults",
                spec.id_parameter
            ),
        ));
    }
    let value: i64 = text.parse().map_err(|_| {
        AwsError::bad_request(
            "InvalidParameterValue",
            format!("Invalid value '{text}' for maxResults"),
        )
    })?;
    usize::try_from(value)
        .ok()
        .filter(|n| spec.max_results.contains(n))
        .ok_or_else(|| {
            AwsError::bad_request(
                "InvalidParameterValue",
                format!(
                    "Value ( {value} ) for parameter maxResults is invalid. Expecting a value between {} and {}.",
                    spec.max_results.start(),
                    spec.max_results.end()
                ),
            )
        })
}

fn fingerprint(call: &QueryCall<'_>, ids: &[&str], params: &QueryParams) -> [u8; 8] {
    let mut hash = Sha256::new();
    for part in [call.action, call.caller.account(), call.caller.region] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    for id in ids {
        hash.update(id.as_bytes());
        hash.update([0]);
    }
    for filter in params.members("Filter") {
        hash.update(filter.get("Name").unwrap_or_default().as_bytes());
        for value in filter.list("Value") {
            hash.update([1]);
            hash.update(value.as_bytes());
        }
        hash.update([0]);
    }
    let digest = hash.finalize();
    let mut fingerprint = [0; 8];
    fingerprint.copy_from_slice(&digest[..8]);
    fingerprint
}
