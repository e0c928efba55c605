//! Deciding whether an `openTunnel` upgrade request may open a tunnel, and to what.
//!
//! The checks run in the order a real endpoint must run them: the request is for
//! `/openTunnel`; the presigned URL verifies (SigV4 query auth over `host` *with the port the
//! client sent*, scope `ec2-instance-connect` and a known region, `X-Amz-Expires` at most 60,
//! the date not stale); its parameters are valid (`remotePort` 22 or 3389,
//! `maxTunnelDuration` 1–3600); the caller may `ec2-instance-connect:OpenTunnel`; the endpoint
//! exists in the caller's account and region and is in a state that carries tunnels; the
//! target IP is in the endpoint's VPC; the endpoint has one of its 20 places free.
//!
//! Those failures refuse the upgrade with an HTTP status and a JSON body
//! `{"ErrorCode":…,"Message":…}`. What a real endpoint only learns by trying to connect — no
//! instance at that address, an instance not running, a security group in the way, nothing
//! listening on the port — is not refused: the upgrade succeeds and the tunnel closes at once
//! with "Unable to connect to target" (`shared/protocols/eic.md` §2.4, §5).
//!
//! AWS documents neither the statuses nor the error codes of these refusals; apart from the
//! `InvalidParameter` RemotePort message (seen in the wild) they are the simulator's choice,
//! listed in `tests/README.md`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request};
use tokio_tungstenite::tungstenite::http::{self, StatusCode};

use crate::auth::{self, AuthError, Caller};
use crate::query::QueryParams;
use crate::scenario::{
    Backend, InstanceConnectEndpoint, InstanceState, Peer, Scenario, Subnet, Vpc,
};
use crate::sigv4::{Authorization, HttpRequest, SigV4Error};
use crate::world::{TunnelSlot, World};

/// The signing name an `openTunnel` URL must be scoped to.
const SIGNING_NAME: &str = "ec2-instance-connect";

/// The longest `X-Amz-Expires` an `openTunnel` URL may carry; the AWS CLI signs for 60.
const MAX_URL_LIFETIME_SECS: i64 = 60;

/// `maxTunnelDuration` bounds and default, in seconds.
const MAX_TUNNEL_DURATION_SECS: u64 = 3600;

/// The ports EIC tunnels reach.
const TUNNEL_PORTS: [u16; 2] = [22, 3389];

/// A refused upgrade: the HTTP status and the JSON error body's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl Rejection {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Rejection {
        Rejection {
            status,
            code,
            message: message.into(),
        }
    }

    fn invalid_parameter(message: impl Into<String>) -> Rejection {
        Rejection::new(StatusCode::BAD_REQUEST, "InvalidParameter", message)
    }

    /// The HTTP response that refuses the upgrade.
    pub fn response(&self, request_id: &str) -> ErrorResponse {
        let body =
            serde_json::json!({ "ErrorCode": self.code, "Message": self.message }).to_string();
        let mut response = http::Response::new(Some(body.clone()));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        headers.insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from(body.len()),
        );
        headers.insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
        if let Ok(id) = http::HeaderValue::from_str(request_id) {
            headers.insert("x-amzn-requestid", id);
        }
        response
    }
}

/// What an admitted tunnel connects to.
#[derive(Debug)]
pub enum Target {
    /// The endpoint can reach this instance's port, where `backend` answers.
    Reachable {
        instance_id: String,
        backend: Backend,
    },
    /// The endpoint cannot open TCP to the target; why, for the log.
    Unreachable(String),
}

/// An upgrade that may go ahead.
#[derive(Debug)]
pub struct Admitted {
    pub endpoint_id: String,
    pub remote_port: u16,
    pub private_ip: Ipv4Addr,
    /// `maxTunnelDuration`, in simulated time.
    pub max_duration: Duration,
    pub target: Target,
    /// Held for the tunnel's life: its place among the endpoint's 20.
    pub slot: TunnelSlot,
}

/// Checks an upgrade request from `peer` at `now` (real time: what the URL was signed with).
pub fn admit(
    world: &World,
    request: &Request,
    peer: SocketAddr,
    now: DateTime<Utc>,
) -> Result<Admitted, Rejection> {
    let uri = request.uri();
    if uri.path() != "/openTunnel" {
        return Err(Rejection::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("No such operation: {}", uri.path()),
        ));
    }
    let query = uri.query().unwrap_or("");
    let http_request = HttpRequest {
        method: request.method().as_str(),
        path: uri.path(),
        query,
        headers: request.headers(),
        body: b"",
    };
    let scenario = &world.scenario;
    let caller = authenticate(scenario, &http_request, now)?;
    if world.faults.credentials_expired(&caller.profile.name) {
        return Err(expired_token());
    }
    let params = QueryParams::parse(query, b"")
        .map_err(|_| Rejection::invalid_parameter("The query string is not valid UTF-8."))?;

    let endpoint_id = params
        .get("instanceConnectEndpointId")
        .ok_or_else(|| missing("instanceConnectEndpointId"))?;
    let remote_port = params
        .get("remotePort")
        .ok_or_else(|| missing("remotePort"))?
        .parse::<u16>()
        .ok()
        .filter(|port| TUNNEL_PORTS.contains(port))
        .ok_or_else(|| {
            Rejection::invalid_parameter(
                "The specified RemotePort is not valid. Specify either 22 or 3389 as the RemotePort and retry your request.",
            )
        })?;
    let private_ip: IpAddr = params
        .get("privateIpAddress")
        .ok_or_else(|| missing("privateIpAddress"))?
        .parse()
        .map_err(|_| {
            Rejection::invalid_parameter(
                "The specified PrivateIpAddress is not valid. Specify an IPv4 or IPv6 address and retry your request.",
            )
        })?;
    let max_duration = match params.get("maxTunnelDuration") {
        None => MAX_TUNNEL_DURATION_SECS,
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|secs| (1..=MAX_TUNNEL_DURATION_SECS).contains(secs))
            .ok_or_else(|| {
                Rejection::invalid_parameter(
                    "The specified MaxTunnelDuration is not valid. Specify a value from 1 to 3600 seconds and retry your request.",
                )
            })?,
    };

    let action = "ec2-instance-connect:OpenTunnel";
    let endpoint_arn = format!(
        "arn:aws:ec2:{}:{}:instance-connect-endpoint/{endpoint_id}",
        caller.region,
        caller.account()
    );
    if !caller.profile.may_on(action, &endpoint_arn) {
        return Err(Rejection::new(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            format!(
                "User: arn:aws:iam::{account}:user/{user} is not authorized to perform: {action} on resource: arn:aws:ec2:{region}:{account}:instance-connect-endpoint/{endpoint_id} because no identity-based policy allows the {action} action",
                account = caller.account(),
                user = caller.profile.user_name(),
                region = caller.region,
            ),
        ));
    }
    if !caller.profile.may_tunnel_to(remote_port) {
        return Err(Rejection::new(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            format!(
                "User: arn:aws:iam::{account}:user/{user} is not authorized to perform: {action} on resource: {endpoint_arn} because no identity-based policy allows the {action} action with ec2-instance-connect:remotePort {remote_port}",
                account = caller.account(),
                user = caller.profile.user_name(),
            ),
        ));
    }

    let (endpoint, subnet, vpc) = find_endpoint(scenario, &caller, endpoint_id)?;
    if !endpoint.state.serves_tunnels() {
        return Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            "IncorrectState",
            format!(
                "The EC2 Instance Connect Endpoint {endpoint_id} is in state {} and cannot open tunnels. Wait until it is create-complete and retry your request.",
                endpoint.state.name()
            ),
        ));
    }
    let IpAddr::V4(private_ip) = private_ip else {
        return Err(Rejection::invalid_parameter(format!(
            "The specified PrivateIpAddress {private_ip} is an IPv6 address, but EC2 Instance Connect Endpoint {endpoint_id} has IP address type ipv4."
        )));
    };
    if !vpc.cidr.contains(private_ip) {
        return Err(Rejection::invalid_parameter(format!(
            "The specified PrivateIpAddress {private_ip} is not in {} ({}), the VPC of EC2 Instance Connect Endpoint {endpoint_id}.",
            vpc.id, vpc.cidr
        )));
    }
    let slot = world.tunnels.reserve(endpoint_id).ok_or_else(|| {
        Rejection::new(
            StatusCode::TOO_MANY_REQUESTS,
            "LimitExceeded",
            format!(
                "EC2 Instance Connect Endpoint {endpoint_id} already has the maximum of {} concurrent connections. Close a connection and retry your request.",
                crate::world::TUNNELS_PER_ENDPOINT
            ),
        )
    })?;
    let target = reach(
        scenario,
        endpoint,
        subnet,
        vpc,
        private_ip,
        remote_port,
        peer,
    );
    Ok(Admitted {
        endpoint_id: endpoint_id.to_owned(),
        remote_port,
        private_ip,
        max_duration: Duration::from_secs(max_duration),
        target,
        slot,
    })
}

/// Verifies the presigned URL: who signed it, for which region.
pub fn authenticate<'s>(
    scenario: &'s Scenario,
    request: &HttpRequest<'_>,
    now: DateTime<Utc>,
) -> Result<Caller<'s>, Rejection> {
    let forbidden = |code, message: String| Rejection::new(StatusCode::FORBIDDEN, code, message);
    let authorization = Authorization::from_request(request).map_err(|error| match error {
        SigV4Error::Missing => forbidden("MissingAuthenticationToken", error.to_string()),
        other => Rejection::new(
            StatusCode::BAD_REQUEST,
            "IncompleteSignature",
            other.to_string(),
        ),
    })?;
    match authorization.presigned_expires_secs() {
        None => {
            return Err(forbidden(
                "IncompleteSignature",
                "openTunnel requests are authenticated by a presigned URL (SigV4 query parameters), not an Authorization header.".to_owned(),
            ));
        }
        Some(secs) if secs > MAX_URL_LIFETIME_SECS => {
            return Err(Rejection::invalid_parameter(format!(
                "X-Amz-Expires must be at most {MAX_URL_LIFETIME_SECS} seconds for openTunnel; got {secs}."
            )));
        }
        Some(_) => {}
    }
    if authorization.scope.service != SIGNING_NAME {
        return Err(forbidden(
            "SignatureDoesNotMatch",
            format!("Credential should be scoped to correct service: '{SIGNING_NAME}'."),
        ));
    }
    auth::authenticate(scenario, request, now).map_err(|error| match error {
        AuthError::Signature(
            expired @ (SigV4Error::Expired { .. } | SigV4Error::NotYetCurrent { .. }),
        ) => forbidden("RequestExpired", expired.to_string()),
        AuthError::Signature(incomplete @ SigV4Error::Incomplete(_)) => Rejection::new(
            StatusCode::BAD_REQUEST,
            "IncompleteSignature",
            incomplete.to_string(),
        ),
        AuthError::Signature(other) => forbidden("SignatureDoesNotMatch", other.to_string()),
        AuthError::UnknownAccessKey => forbidden(
            "InvalidClientTokenId",
            "The security token included in the request is invalid.".to_owned(),
        ),
        AuthError::UnknownRegion(region) => forbidden(
            "SignatureDoesNotMatch",
            format!("Credential should be scoped to a valid region, not '{region}'."),
        ),
        AuthError::ExpiredToken => expired_token(),
    })
}

fn expired_token() -> Rejection {
    Rejection::new(
        StatusCode::FORBIDDEN,
        "ExpiredToken",
        "The security token included in the request is expired".to_owned(),
    )
}

fn missing(name: &str) -> Rejection {
    Rejection::invalid_parameter(format!("The request must contain the parameter {name}."))
}

/// The endpoint `id` of the caller's account and region, with its subnet and VPC.
fn find_endpoint<'s>(
    scenario: &'s Scenario,
    caller: &Caller<'_>,
    id: &str,
) -> Result<(&'s InstanceConnectEndpoint, &'s Subnet, &'s Vpc), Rejection> {
    scenario
        .eic_endpoint(id)
        .and_then(|endpoint| {
            let subnet = scenario.subnet(&endpoint.subnet)?;
            let vpc = scenario.vpc_in(&subnet.vpc, caller.account(), caller.region)?;
            Some((endpoint, subnet, vpc))
        })
        .ok_or_else(|| {
            Rejection::new(
                StatusCode::BAD_REQUEST,
                "InvalidInstanceConnectEndpointId.NotFound",
                format!(
                    "The instance connect endpoint ID '{id}' does not exist in account {} in {}.",
                    caller.account(),
                    caller.region
                ),
            )
        })
}

/// Whether `endpoint` can open TCP to `ip:port`: an instance there that runs, the endpoint's
/// security groups letting the connection out, the instance's letting it in, and something
/// listening on the port.
fn reach(
    scenario: &Scenario,
    endpoint: &InstanceConnectEndpoint,
    subnet: &Subnet,
    vpc: &Vpc,
    ip: Ipv4Addr,
    port: u16,
    client: SocketAddr,
) -> Target {
    let Some(instance) = scenario.instances.iter().find(|instance| {
        instance.private_ip == ip
            && scenario
                .placement(instance)
                .is_some_and(|placement| placement.vpc.id == vpc.id)
    }) else {
        return Target::Unreachable(format!("no instance has {ip} in {}", vpc.id));
    };
    let id = &instance.instance_id;
    if instance.state != InstanceState::Running {
        return Target::Unreachable(format!("{id} is {}", instance.state.name()));
    }
    let groups = |ids: &[String]| {
        ids.iter()
            .filter_map(|id| scenario.security_group(id))
            .collect::<Vec<_>>()
    };
    let to_instance = Peer {
        ip,
        groups: &instance.security_groups,
    };
    let egress = groups(&endpoint.security_groups).iter().any(|group| {
        group
            .egress
            .iter()
            .any(|rule| rule.admits_tcp(port, to_instance))
    });
    if !egress {
        return Target::Unreachable(format!(
            "the security groups of {} allow no traffic out to {ip} port {port}",
            endpoint.id
        ));
    }
    // With client IP preservation the instance sees the client's address; without it, the
    // endpoint's network interface address. A rule naming the endpoint's group admits either.
    let source = if endpoint.preserve_client_ip {
        match client.ip() {
            IpAddr::V4(v4) => v4,
            IpAddr::V6(v6) => v6.to_ipv4_mapped().unwrap_or(Ipv4Addr::LOCALHOST),
        }
    } else {
        endpoint.interface_ip(subnet)
    };
    let from_endpoint = Peer {
        ip: source,
        groups: &endpoint.security_groups,
    };
    let ingress = groups(&instance.security_groups).iter().any(|group| {
        group
            .ingress
            .iter()
            .any(|rule| rule.admits_tcp(port, from_endpoint))
    });
    if !ingress {
        return Target::Unreachable(format!(
            "the security groups of {id} admit nothing from {} ({source}) on port {port}",
            endpoint.id
        ));
    }
    match instance.backends.get(port) {
        Some(backend) => Target::Reachable {
            instance_id: id.clone(),
            backend,
        },
        None => Target::Unreachable(format!("nothing listens on {id} port {port}")),
    }
}

#[cfg(test)]
mod tests {
    //! The official vector A of `shared/protocols/eic.md` §1.3 (from the aws-cli functional
    //! test): credentials `access_key`/`secret_key`, region us-west-2, clock
    //! 2020-01-01T01:01:01Z.

    use super::*;
    use tokio_tungstenite::tungstenite::http::HeaderMap;

    const HOST: &str = "eice-123.ec2-instance-connect-endpoint.us-west-2.amazonaws.com";
    const PATH_AND_QUERY: &str = "/openTunnel?instanceConnectEndpointId=eice-123&remotePort=22&privateIpAddress=10.0.0.0&maxTunnelDuration=1&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=access_key%2F20200101%2Fus-west-2%2Fec2-instance-connect%2Faws4_request&X-Amz-Date=20200101T010101Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=3a56740422a5b9aebd22d860b7a30c729e459a6f71a83bc0de3a2b44b7353f28";

    fn vector_scenario() -> Scenario {
        Scenario::from_toml_str(
            r#"
            regions = ["us-west-2"]
            [[accounts]]
            id = "123456789012"
            alias = "vector"
            [[profiles]]
            name = "cli-test"
            account = "123456789012"
            region = "us-west-2"
            access_key_id = "access_key"
            secret_access_key = "secret_key"
            "#,
        )
        .expect("a valid scenario")
    }

    fn vector_clock() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2020-01-01T01:01:01Z")
            .expect("a time")
            .with_timezone(&Utc)
    }

    /// Verifies `host` + `path_and_query` as an upgrade request would carry them.
    fn verify(
        scenario: &Scenario,
        host: &[u8],
        path_and_query: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Rejection> {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::HOST,
            http::HeaderValue::from_bytes(host)
                .map_err(|_| Rejection::invalid_parameter("not a header value"))?,
        );
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let request = HttpRequest {
            method: "GET",
            path,
            query,
            headers: &headers,
            body: b"",
        };
        authenticate(scenario, &request, now).map(|_| ())
    }

    #[test]
    fn the_official_vector_a_url_verifies_at_its_clock() {
        let scenario = vector_scenario();
        assert_eq!(
            verify(&scenario, HOST.as_bytes(), PATH_AND_QUERY, vector_clock()),
            Ok(())
        );
        // 60 seconds later it has expired.
        let late = verify(
            &scenario,
            HOST.as_bytes(),
            PATH_AND_QUERY,
            vector_clock() + chrono::TimeDelta::seconds(61),
        );
        assert_eq!(late.map_err(|r| r.code), Err("RequestExpired"));
    }

    /// A different byte of the same kind: the next letter, digit or (for anything else) `x`,
    /// never just another case, which percent-escapes and hex would treat as equal.
    fn changed(byte: u8) -> u8 {
        match byte {
            b'z' => b'a',
            b'Z' => b'A',
            b'9' => b'0',
            b'a'..=b'y' | b'A'..=b'Y' | b'0'..=b'8' => byte + 1,
            _ => b'x',
        }
    }

    #[test]
    fn the_vector_a_url_with_any_single_byte_changed_is_refused() {
        let scenario = vector_scenario();
        let url = format!("{HOST}{PATH_AND_QUERY}");
        let host_len = HOST.len();
        for at in 0..url.len() {
            let mut bytes = url.clone().into_bytes();
            bytes[at] = changed(bytes[at]);
            let (host, rest) = bytes.split_at(host_len);
            let Ok(path_and_query) = std::str::from_utf8(rest) else {
                continue;
            };
            let result = verify(&scenario, host, path_and_query, vector_clock());
            assert!(
                result.is_err(),
                "byte {at} ({:?} -> {:?}) changed, yet the URL was accepted",
                char::from(url.as_bytes()[at]),
                char::from(bytes[at])
            );
        }
    }
}
