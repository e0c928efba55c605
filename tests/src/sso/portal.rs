//! The AWS access portal API (`awsssoportal`, API 2019-06-10): `ListAccounts`,
//! `ListAccountRoles`, `GetRoleCredentials` and `Logout`, authorized by the OIDC access token in
//! `x-amz-sso_bearer_token`. An unknown, revoked or expired token is `UnauthorizedException`
//! ("Session token not found or invalid"), which is what tells a client to sign in again.

use axum::http::StatusCode;
use chrono::{TimeDelta, Utc};
use serde_json::json;

use super::{Answer, query_value};
use crate::scenario::SsoInstance;
use crate::sigv4::HttpRequest;
use crate::temporary_credentials;
use crate::world::World;

/// The portal's page size when the caller names none.
const DEFAULT_PAGE: usize = 20;
/// Role credentials from the portal last an hour.
const ROLE_CREDENTIAL_SECONDS: i64 = 3600;

fn error(action: &'static str, status: StatusCode, kind: &'static str, message: &str) -> Answer {
    Answer {
        action,
        status,
        body: json!({ "message": message }),
        error_type: Some(kind),
    }
}

/// The SSO instance whose unexpired access token the request carries.
fn signed_in<'w>(
    world: &'w World,
    request: &HttpRequest<'_>,
    action: &'static str,
) -> Result<&'w SsoInstance, Answer> {
    let unauthorized = || {
        error(
            action,
            StatusCode::UNAUTHORIZED,
            "UnauthorizedException",
            "Session token not found or invalid",
        )
    };
    let token = request
        .headers
        .get("x-amz-sso_bearer_token")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(unauthorized)?;
    let state = world.sso.lock();
    let grant = state.access_tokens.get(token).ok_or_else(unauthorized)?;
    if grant.expires.is_some_and(|at| at <= Utc::now()) {
        return Err(unauthorized());
    }
    world
        .scenario
        .sso_instance(&grant.instance)
        .ok_or_else(unauthorized)
}

/// `(items of this page, nextToken)`: pages are offsets into the full list.
fn page<T: Clone>(
    items: &[T],
    request: &HttpRequest<'_>,
    action: &'static str,
) -> Result<(Vec<T>, Option<String>), Answer> {
    let start: usize = match query_value(request.query, "next_token") {
        None => 0,
        Some(token) => token.parse().map_err(|_| {
            error(
                action,
                StatusCode::BAD_REQUEST,
                "InvalidRequestException",
                "Invalid next token",
            )
        })?,
    };
    let size = match query_value(request.query, "max_result") {
        None => DEFAULT_PAGE,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| {
                error(
                    action,
                    StatusCode::BAD_REQUEST,
                    "InvalidRequestException",
                    "max_result must be between 1 and 100",
                )
            })?,
    };
    let end = (start + size).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    Ok((items.get(start..end).unwrap_or_default().to_vec(), next))
}

pub(super) fn list_accounts(world: &World, request: &HttpRequest<'_>) -> Answer {
    const ACTION: &str = "ListAccounts";
    let instance = match signed_in(world, request, ACTION) {
        Ok(instance) => instance,
        Err(answer) => return answer,
    };
    let mut accounts: Vec<&str> = instance
        .assignments
        .iter()
        .map(|a| a.account.as_str())
        .collect();
    accounts.dedup();
    let (accounts, next) = match page(&accounts, request, ACTION) {
        Ok(page) => page,
        Err(answer) => return answer,
    };
    let list: Vec<_> = accounts
        .iter()
        .map(|id| {
            let name = world
                .scenario
                .accounts
                .iter()
                .find(|a| a.id == *id)
                .map(|a| a.alias.clone())
                .unwrap_or_default();
            json!({
                "accountId": id,
                "accountName": name,
                "emailAddress": format!("aws+{name}@example.com"),
            })
        })
        .collect();
    Answer::ok(ACTION, json!({ "accountList": list, "nextToken": next }))
}

pub(super) fn list_account_roles(world: &World, request: &HttpRequest<'_>) -> Answer {
    const ACTION: &str = "ListAccountRoles";
    let instance = match signed_in(world, request, ACTION) {
        Ok(instance) => instance,
        Err(answer) => return answer,
    };
    let Some(account) = query_value(request.query, "account_id") else {
        return error(
            ACTION,
            StatusCode::BAD_REQUEST,
            "InvalidRequestException",
            "account_id is required",
        );
    };
    let roles: Vec<&str> = instance
        .assignments
        .iter()
        .filter(|a| a.account == account)
        .map(|a| a.role.as_str())
        .collect();
    let (roles, next) = match page(&roles, request, ACTION) {
        Ok(page) => page,
        Err(answer) => return answer,
    };
    let list: Vec<_> = roles
        .iter()
        .map(|role| json!({ "roleName": role, "accountId": account }))
        .collect();
    Answer::ok(ACTION, json!({ "roleList": list, "nextToken": next }))
}

pub(super) fn get_role_credentials(world: &World, request: &HttpRequest<'_>) -> Answer {
    const ACTION: &str = "GetRoleCredentials";
    let instance = match signed_in(world, request, ACTION) {
        Ok(instance) => instance,
        Err(answer) => return answer,
    };
    let (Some(role), Some(account)) = (
        query_value(request.query, "role_name"),
        query_value(request.query, "account_id"),
    ) else {
        return error(
            ACTION,
            StatusCode::BAD_REQUEST,
            "InvalidRequestException",
            "role_name and account_id are required",
        );
    };
    if !instance
        .assignments
        .iter()
        .any(|a| a.account == account && a.role == role)
    {
        return error(
            ACTION,
            StatusCode::FORBIDDEN,
            "ForbiddenException",
            "No access",
        );
    }
    let issued = temporary_credentials::issue(
        &account,
        &role,
        "bastionless-sso",
        false,
        Utc::now(),
        // An hour on the simulator's clock, stated in wall-clock time (see `clock`).
        world
            .clock
            .real_delta(TimeDelta::seconds(ROLE_CREDENTIAL_SECONDS)),
    );
    Answer::ok(
        ACTION,
        json!({
            "roleCredentials": {
                "accessKeyId": issued.access_key_id,
                "secretAccessKey": issued.secret_access_key,
                "sessionToken": issued.session_token,
                "expiration": issued.expiration.timestamp_millis(),
            }
        }),
    )
}

pub(super) fn logout(world: &World, request: &HttpRequest<'_>) -> Answer {
    const ACTION: &str = "Logout";
    if let Some(token) = request
        .headers
        .get("x-amz-sso_bearer_token")
        .and_then(|v| v.to_str().ok())
    {
        world.sso.lock().access_tokens.remove(token);
    }
    Answer::ok(ACTION, json!({}))
}
