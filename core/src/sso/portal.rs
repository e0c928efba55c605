//! The AWS access portal: credentials for one account and role, and every account and role a
//! session grants (account discovery). A token the portal refuses (`UnauthorizedException`)
//! means the session must be signed in again.

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use aws_credential_types::Credentials;

use super::{SsoError, SsoSession, access_token};

/// One account and role a session grants.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AccountRole {
    pub account_id: String,
    /// The account's name in the portal.
    pub account_name: String,
    pub role_name: String,
}

fn unauthorized(session: &SsoSession) -> SsoError {
    SsoError::SignInNeeded {
        session: session.key.label().to_owned(),
        reason: "the access portal no longer accepts the session".to_owned(),
    }
}

/// Temporary credentials for `role_name` in `account_id`.
pub async fn role_credentials(
    session: &SsoSession,
    cache_dir: &Path,
    account_id: &str,
    role_name: &str,
) -> Result<Credentials, SsoError> {
    let token = access_token(session, cache_dir).await?;
    let sdk = session.sdk_config().await.map_err(SsoError::Failed)?;
    let portal = aws_sdk_sso::Client::new(&sdk);
    let answer = portal
        .get_role_credentials()
        .access_token(token)
        .account_id(account_id)
        .role_name(role_name)
        .send()
        .await;
    let output = match answer {
        Ok(output) => output,
        Err(error) => {
            use aws_sdk_sso::operation::get_role_credentials::GetRoleCredentialsError as E;
            return Err(match error.as_service_error() {
                Some(E::UnauthorizedException(_)) => unauthorized(session),
                _ => SsoError::Failed(format!(
                    "the access portal refused role {role_name} in account {account_id}: {}",
                    crate::sdk_error::describe(&error)
                )),
            });
        }
    };
    let role = output.role_credentials().ok_or_else(|| {
        SsoError::Failed("the access portal answered without credentials".to_owned())
    })?;
    let (Some(id), Some(secret)) = (role.access_key_id(), role.secret_access_key()) else {
        return Err(SsoError::Failed(
            "the access portal answered with incomplete credentials".to_owned(),
        ));
    };
    let expires = UNIX_EPOCH + Duration::from_millis(u64::try_from(role.expiration()).unwrap_or(0));
    Ok(Credentials::new(
        id,
        secret,
        role.session_token().map(str::to_owned),
        Some(expires),
        "IAM Identity Center",
    ))
}

/// Every account and role the session grants, sorted by account name then role.
pub async fn list_account_roles(
    session: &SsoSession,
    cache_dir: &Path,
) -> Result<Vec<AccountRole>, SsoError> {
    use aws_sdk_sso::operation::list_account_roles::ListAccountRolesError as RolesError;
    use aws_sdk_sso::operation::list_accounts::ListAccountsError as AccountsError;
    let token = access_token(session, cache_dir).await?;
    let sdk = session.sdk_config().await.map_err(SsoError::Failed)?;
    let portal = aws_sdk_sso::Client::new(&sdk);
    let mut accounts = Vec::new();
    let mut pages = portal
        .list_accounts()
        .access_token(&token)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|error| match error.as_service_error() {
            Some(AccountsError::UnauthorizedException(_)) => unauthorized(session),
            _ => SsoError::Failed(format!(
                "could not list the accounts of SSO session `{}`: {}",
                session.key.label(),
                crate::sdk_error::describe(&error)
            )),
        })?;
        for account in page.account_list() {
            if let Some(id) = account.account_id() {
                accounts.push((
                    id.to_owned(),
                    account.account_name().unwrap_or(id).to_owned(),
                ));
            }
        }
    }
    let mut grants = Vec::new();
    for (account_id, account_name) in accounts {
        let mut pages = portal
            .list_account_roles()
            .access_token(&token)
            .account_id(&account_id)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|error| match error.as_service_error() {
                Some(RolesError::UnauthorizedException(_)) => unauthorized(session),
                _ => SsoError::Failed(format!(
                    "could not list the roles in account {account_id}: {}",
                    crate::sdk_error::describe(&error)
                )),
            })?;
            for role in page.role_list() {
                if let Some(role_name) = role.role_name() {
                    grants.push(AccountRole {
                        account_id: account_id.clone(),
                        account_name: account_name.clone(),
                        role_name: role_name.to_owned(),
                    });
                }
            }
        }
    }
    grants.sort_by(|a, b| (&a.account_name, &a.role_name).cmp(&(&b.account_name, &b.role_name)));
    Ok(grants)
}
