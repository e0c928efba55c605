//! The services the simulator answers, keyed by the signing name in a request's SigV4
//! credential scope (`…/us-east-1/ec2/aws4_request`) — the same thing that tells real AWS
//! endpoints apart, so one loopback port can serve them all.
//!
//! A new service is a variant here and a module of its own; each module owns its actions and
//! its spelling of authentication failures.

use axum::http::StatusCode;

use crate::auth::{AuthError, Caller};
use crate::error::{AwsError, Protocol};
use crate::query::QueryParams;
use crate::scenario::Scenario;
use crate::sigv4::{self, HttpRequest, SigV4Error};
use crate::world::World;
use crate::{ec2, iam, instance_connect, kms, ssm, sts};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Ec2,
    Sts,
    /// IAM (`ListAccountAliases`): global, signed for us-east-1.
    Iam,
    /// EC2 Instance Connect's API (`SendSSHPublicKey`), not its tunnel endpoint.
    InstanceConnect,
    /// Systems Manager's API (Session Manager and managed nodes), not its data channel.
    Ssm,
    /// Key Management Service (data keys of KMS-encrypted Session Manager shells).
    Kms,
}

/// One authenticated query-protocol call, as a service's action sees it.
#[derive(Debug)]
pub struct QueryCall<'a> {
    pub world: &'a World,
    pub scenario: &'a Scenario,
    pub caller: Caller<'a>,
    pub action: &'a str,
    pub params: &'a QueryParams,
    pub request_id: &'a str,
    /// The request's session token, when signed with temporary credentials.
    pub security_token: Option<String>,
}

impl Service {
    /// The service a request is for: its credential scope's signing name or, for a request
    /// that is not signed at all, the query protocols' `Version` parameter or the JSON
    /// protocol's `X-Amz-Target` header.
    pub fn of_request(request: &HttpRequest<'_>) -> Result<Service, String> {
        match sigv4::claimed_service(request) {
            Some(name) => Service::from_signing_name(&name)
                .ok_or_else(|| format!("bastionless-sim does not simulate the `{name}` service")),
            None => {
                let by_target = json_target(request).and_then(|target| {
                    if target.starts_with(instance_connect::TARGET_PREFIX) {
                        Some(Service::InstanceConnect)
                    } else if target.starts_with(ssm::api::TARGET_PREFIX) {
                        Some(Service::Ssm)
                    } else if target.starts_with(kms::TARGET_PREFIX) {
                        Some(Service::Kms)
                    } else {
                        None
                    }
                });
                by_target
                    .or_else(|| {
                        QueryParams::parse(request.query, request.body)
                            .ok()
                            .and_then(|params| {
                                params.get("Version").and_then(Service::from_api_version)
                            })
                    })
                    .ok_or_else(|| {
                        "bastionless-sim cannot tell which AWS service this unsigned request is for"
                            .to_owned()
                    })
            }
        }
    }

    fn from_signing_name(name: &str) -> Option<Service> {
        match name {
            "ec2" => Some(Service::Ec2),
            "sts" => Some(Service::Sts),
            "iam" => Some(Service::Iam),
            instance_connect::SIGNING_NAME => Some(Service::InstanceConnect),
            ssm::api::SIGNING_NAME => Some(Service::Ssm),
            kms::SIGNING_NAME => Some(Service::Kms),
            _ => None,
        }
    }

    fn from_api_version(version: &str) -> Option<Service> {
        match version {
            ec2::API_VERSION => Some(Service::Ec2),
            sts::API_VERSION => Some(Service::Sts),
            iam::API_VERSION => Some(Service::Iam),
            _ => None,
        }
    }

    pub fn signing_name(self) -> &'static str {
        match self {
            Service::Ec2 => "ec2",
            Service::Sts => "sts",
            Service::Iam => "iam",
            Service::InstanceConnect => instance_connect::SIGNING_NAME,
            Service::Ssm => ssm::api::SIGNING_NAME,
            Service::Kms => kms::SIGNING_NAME,
        }
    }

    pub fn protocol(self) -> Protocol {
        match self {
            Service::Ec2 => Protocol::Ec2Query,
            Service::Sts => Protocol::AwsQuery { xmlns: sts::XMLNS },
            Service::Iam => Protocol::AwsQuery { xmlns: iam::XMLNS },
            Service::InstanceConnect | Service::Ssm | Service::Kms => Protocol::Json,
        }
    }

    /// The `Content-Type` of this service's responses.
    pub fn content_type(self) -> &'static str {
        match self {
            Service::Ec2 => "text/xml;charset=UTF-8",
            Service::Sts | Service::Iam => "text/xml",
            Service::InstanceConnect | Service::Ssm | Service::Kms => "application/x-amz-json-1.1",
        }
    }

    /// How this service reports a request it could not authenticate.
    pub fn auth_error(self, error: &AuthError) -> AwsError {
        match self {
            Service::Ec2 => ec2::auth_error(error),
            // IAM words authentication failures as STS does.
            Service::Sts | Service::Iam => sts::auth_error(error),
            Service::InstanceConnect => instance_connect::auth_error(error),
            Service::Ssm | Service::Kms => json_auth_error(error),
        }
    }

    /// How this service says "slow down" (for injected throttling).
    pub fn throttling_error(self) -> AwsError {
        match self {
            Service::Ec2 => AwsError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "RequestLimitExceeded",
                "Request limit exceeded.",
            ),
            Service::Sts | Service::Iam => AwsError::bad_request("Throttling", "Rate exceeded"),
            Service::InstanceConnect => AwsError::bad_request(
                "ThrottlingException",
                "The requests were made too frequently and have been throttled. Wait a while and try again.",
            ),
            Service::Ssm | Service::Kms => {
                AwsError::bad_request("ThrottlingException", "Rate exceeded")
            }
        }
    }

    /// How this service says it failed on its side (for injected 5xx errors).
    pub fn server_error(self) -> AwsError {
        match self.protocol() {
            Protocol::Json => AwsError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "An internal server error occurred",
            ),
            Protocol::Ec2Query | Protocol::AwsQuery { .. } => AwsError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "An internal error has occurred",
            ),
        }
    }

    /// The action a request asks for (`DescribeInstances`, `StartSession`, …), if it names one.
    pub fn action(self, request: &HttpRequest<'_>) -> Option<String> {
        match self {
            Service::InstanceConnect | Service::Ssm | Service::Kms => json_target(request)
                .and_then(|target| target.split_once('.'))
                .map(|(_, action)| action.to_owned()),
            Service::Ec2 | Service::Sts | Service::Iam => {
                QueryParams::parse(request.query, request.body)
                    .ok()
                    .and_then(|params| params.get("Action").map(str::to_owned))
            }
        }
    }

    /// Runs an authenticated request; `Ok` is the response document.
    pub fn call(
        self,
        world: &World,
        caller: Caller<'_>,
        request: &HttpRequest<'_>,
        request_id: &str,
    ) -> Result<String, AwsError> {
        match self {
            Service::InstanceConnect => {
                let target = json_target(request).unwrap_or_default();
                let action = target
                    .strip_prefix(instance_connect::TARGET_PREFIX)
                    .unwrap_or(target);
                instance_connect::call(world, caller, action, request.body, request_id)
            }
            Service::Ssm => {
                let target = json_target(request).unwrap_or_default();
                let action = target
                    .strip_prefix(ssm::api::TARGET_PREFIX)
                    .unwrap_or(target);
                ssm::api::call(world, caller, action, request.body)
            }
            Service::Kms => {
                let target = json_target(request).unwrap_or_default();
                let action = target.strip_prefix(kms::TARGET_PREFIX).unwrap_or(target);
                kms::call(world, caller, action, request.body)
            }
            Service::Ec2 | Service::Sts | Service::Iam => {
                let params = QueryParams::parse(request.query, request.body).map_err(|_| {
                    AwsError::bad_request(
                        "InvalidQueryParameter",
                        "The AWS query string is malformed or does not adhere to AWS standards.",
                    )
                })?;
                let action = params.get("Action").ok_or_else(|| {
                    AwsError::bad_request(
                        "MissingAction",
                        "The request must contain the parameter Action.",
                    )
                })?;
                let call = QueryCall {
                    world,
                    scenario: &world.scenario,
                    caller,
                    action,
                    params: &params,
                    request_id,
                    security_token: crate::auth::security_token(request),
                };
                match self {
                    Service::Ec2 => ec2::call(&call),
                    Service::Iam => iam::call(&call),
                    _ => sts::call(&call),
                }
            }
        }
    }
}

/// The `X-Amz-Target` header of a JSON-protocol request (`Service.Operation`).
fn json_target<'a>(request: &HttpRequest<'a>) -> Option<&'a str> {
    request
        .headers
        .get("x-amz-target")
        .and_then(|value| value.to_str().ok())
}

/// The `InvalidAction` error both query protocols return for an action they do not have.
pub fn invalid_action(message: String) -> AwsError {
    AwsError::new(StatusCode::BAD_REQUEST, "InvalidAction", message)
}

/// How the JSON 1.1 services without modelled authentication errors of their own (Systems
/// Manager, KMS) report a request they could not authenticate: the protocol's common errors.
fn json_auth_error(error: &AuthError) -> AwsError {
    match error {
        AuthError::Signature(SigV4Error::Missing) => AwsError::bad_request(
            "MissingAuthenticationTokenException",
            SigV4Error::Missing.to_string(),
        ),
        AuthError::Signature(incomplete @ SigV4Error::Incomplete(_)) => {
            AwsError::bad_request("IncompleteSignatureException", incomplete.to_string())
        }
        AuthError::Signature(other) => {
            AwsError::bad_request("InvalidSignatureException", other.to_string())
        }
        AuthError::UnknownAccessKey | AuthError::UnknownRegion(_) => AwsError::bad_request(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ),
        AuthError::ExpiredToken => AwsError::bad_request(
            "ExpiredTokenException",
            "The security token included in the request is expired",
        ),
    }
}
