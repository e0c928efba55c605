//! Route planning from a snapshot: which view of an instance carries its tunnel, and what the
//! tunnel request says.

use super::*;
use crate::inventory::{EicEndpoint, EicEndpointState, InstanceState, Platform};

fn host(profile: &str) -> Host {
    Host {
        instance_id: "i-0123456789abcdef0".into(),
        name: Some("web-eic-1".into()),
        tags: Default::default(),
        state: InstanceState::Running,
        platform: Platform::Linux,
        private_ip: Some("10.10.1.20".into()),
        public_ip: None,
        vpc_id: Some("vpc-a".into()),
        subnet_id: Some("subnet-a1".into()),
        availability_zone: Some("us-east-1a".into()),
        key_name: None,
        image: None,
        profile: profile.into(),
        account_id: "111122223333".into(),
        region: "us-east-1".into(),
    }
}

fn endpoint(profile: &str) -> EicEndpoint {
    EicEndpoint {
        id: "eice-0aaa".into(),
        state: EicEndpointState::CreateComplete,
        vpc_id: Some("vpc-a".into()),
        subnet_id: Some("subnet-a2".into()),
        dns_name: Some("eice-0aaa.x.ec2-instance-connect-endpoint.us-east-1.amazonaws.com".into()),
        fips_dns_name: Some(
            "eice-0aaa.x.fips.ec2-instance-connect-endpoint.us-east-1.amazonaws.com".into(),
        ),
        security_group_ids: vec![],
        preserve_client_ip: false,
        profile: profile.into(),
        account_id: "111122223333".into(),
        region: "us-east-1".into(),
    }
}

/// `readonly` may not list endpoints; `admin` (same account and region) sees one in the
/// instance's VPC.
fn snapshot() -> Snapshot {
    let mut s = Snapshot {
        hosts: vec![host("readonly")],
        ..Snapshot::default()
    };
    s.eic_endpoints.insert(
        "readonly".into(),
        EicEndpointListing::Failed("UnauthorizedOperation: no".into()),
    );
    s.eic_endpoints.insert(
        "admin".into(),
        EicEndpointListing::Listed(vec![endpoint("admin")]),
    );
    s
}

#[test]
fn the_first_profile_with_a_usable_endpoint_carries_the_tunnel() {
    let s = snapshot();
    let duration = MaxTunnelDuration::from_secs(900).ok();
    let profiles = [("readonly", false), ("admin", false)];
    let (index, request) = plan_eic(&s, &s.hosts[0], profiles.into_iter(), 22, duration).unwrap();
    assert_eq!(index, 1);
    assert_eq!(
        request,
        TunnelRequest {
            endpoint: EndpointAddress::parse(
                "eice-0aaa.x.ec2-instance-connect-endpoint.us-east-1.amazonaws.com"
            )
            .unwrap(),
            endpoint_id: "eice-0aaa".into(),
            private_ip: "10.10.1.20".parse().unwrap(),
            remote_port: 22,
            max_tunnel_duration: duration,
            region: "us-east-1".into(),
        }
    );
}

#[test]
fn fips_profiles_connect_to_the_fips_name() {
    let s = snapshot();
    let (_, request) =
        plan_eic(&s, &s.hosts[0], [("admin", true)].into_iter(), 3389, None).unwrap();
    assert_eq!(
        request.endpoint.host(),
        "eice-0aaa.x.fips.ec2-instance-connect-endpoint.us-east-1.amazonaws.com"
    );
    assert_eq!(request.remote_port, 3389);
}

#[test]
fn when_no_profile_works_the_first_reason_is_reported() {
    let s = snapshot();
    let profiles = [("readonly", false), ("admin", false)];
    let mut no_ip = host("readonly");
    no_ip.private_ip = None;
    let error = plan_eic(&s, &no_ip, profiles.into_iter(), 22, None)
        .unwrap_err()
        .unwrap();
    assert!(
        error.contains("for web-eic-1 (profile readonly): UnauthorizedOperation"),
        "{error}"
    );
    let error = plan_eic(&s, &no_ip, [("admin", false)].into_iter(), 22, None)
        .unwrap_err()
        .unwrap();
    assert!(
        error.contains("web-eic-1 has no private IP address"),
        "{error}"
    );
}

#[test]
fn reasons_name_the_vpc_or_the_missing_listing() {
    let s = snapshot();
    let mut elsewhere = host("admin");
    elsewhere.vpc_id = Some("vpc-z".into());
    let error = plan_eic(&s, &elsewhere, [("admin", false)].into_iter(), 22, None)
        .unwrap_err()
        .unwrap();
    assert!(
        error.contains("web-eic-1: no EC2 Instance Connect Endpoint in vpc-z"),
        "{error}"
    );

    let error = plan_eic(&s, &s.hosts[0], [("new", false)].into_iter(), 22, None)
        .unwrap_err()
        .unwrap();
    assert!(error.contains("profile new are not listed yet"), "{error}");
}

#[test]
fn no_profiles_leave_the_reason_to_the_caller() {
    let s = snapshot();
    assert_eq!(
        plan_eic(&s, &s.hosts[0], std::iter::empty(), 22, None),
        Err(None)
    );
}
