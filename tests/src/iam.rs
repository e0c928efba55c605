//! AWS Identity and Access Management, `awsQuery` protocol, API version 2010-05-08: only
//! `ListAccountAliases`, which is how the product learns an account's friendly name. A caller
//! whose policy denies `iam:ListAccountAliases` gets `AccessDenied`, as a read-only role often
//! does at AWS.

use axum::http::StatusCode;

use crate::error::AwsError;
use crate::service::{QueryCall, invalid_action};
use crate::xml::XmlWriter;

pub const API_VERSION: &str = "2010-05-08";
pub const XMLNS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

pub fn call(call: &QueryCall<'_>) -> Result<String, AwsError> {
    match call.action {
        "ListAccountAliases" => list_account_aliases(call),
        other => Err(invalid_action(format!(
            "Could not find operation {other} for version {API_VERSION}"
        ))),
    }
}

fn list_account_aliases(call: &QueryCall<'_>) -> Result<String, AwsError> {
    let caller = call.caller;
    if !caller.profile.may("iam:ListAccountAliases") {
        return Err(AwsError::new(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            format!(
                "User: arn:aws:iam::{}:user/{} is not authorized to perform: iam:ListAccountAliases on resource: *",
                caller.account(),
                caller.profile.user_name()
            ),
        ));
    }
    let alias = call
        .scenario
        .accounts
        .iter()
        .find(|account| account.id == caller.account())
        .map(|account| account.alias.as_str())
        .filter(|alias| !alias.is_empty());
    Ok(XmlWriter::document(
        "ListAccountAliasesResponse",
        XMLNS,
        |w| {
            w.element("ListAccountAliasesResult", |w| {
                w.element("AccountAliases", |w| {
                    if let Some(alias) = alias {
                        w.text("member", alias);
                    }
                });
                w.text("IsTruncated", "false");
            });
            w.element("ResponseMetadata", |w| {
                w.text("RequestId", call.request_id);
            });
        },
    ))
}
