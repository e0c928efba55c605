//! What is asked once per profile or account before any region is scanned: who the profile is
//! (STS `GetCallerIdentity`, in the profile's home region) and which regions its account has
//! enabled (EC2 `DescribeRegions`, also in the home region, the one region the profile's
//! configuration is known to work in).

use aws_config::SdkConfig;

use super::calls::{CallBudget, CallFailure};

/// The account a profile's credentials belong to.
pub async fn identify(sdk: &SdkConfig, calls: &CallBudget) -> Result<String, CallFailure> {
    let sts = aws_sdk_sts::Client::new(sdk);
    let identity = calls.call(sts.get_caller_identity().send()).await?;
    identity
        .account()
        .filter(|account| !account.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| CallFailure {
            message: "STS answered without an account id".to_owned(),
            access_denied: false,
        })
}

/// The regions the account may use (those that need no opt-in and those it opted in to), in
/// the order EC2 lists them.
pub async fn enabled_regions(
    sdk: &SdkConfig,
    calls: &CallBudget,
) -> Result<Vec<String>, CallFailure> {
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let answer = calls
        .call(ec2.describe_regions().all_regions(false).send())
        .await?;
    Ok(answer
        .regions()
        .iter()
        .filter(|region| region.opt_in_status() != Some("not-opted-in"))
        .filter_map(|region| region.region_name())
        .map(str::to_owned)
        .collect())
}

/// The account's alias (IAM `ListAccountAliases`), or `None` when it has none or the profile
/// may not ask (read-only roles often may not). IAM is global: the call is signed for
/// us-east-1 whatever the profile's region.
pub async fn account_alias(sdk: &SdkConfig, calls: &CallBudget) -> Option<String> {
    let config = aws_sdk_iam::config::Builder::from(sdk)
        .region(aws_config::Region::from_static("us-east-1"))
        .build();
    let iam = aws_sdk_iam::Client::from_conf(config);
    let answer = calls.call(iam.list_account_aliases().send()).await.ok()?;
    answer.account_aliases().first().cloned()
}
