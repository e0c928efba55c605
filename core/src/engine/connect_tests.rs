//! Tunnel requests from a snapshot: which endpoint and IP carry a tunnel, and what is said when
//! none can.

use super::*;
use crate::inventory::{AccountRegion, EicEndpoint, EicEndpointState, RegionFacts};

fn host() -> Host {
    Host {
        name: Some("web-eic-1".into()),
        private_ip: Some("10.10.1.20".into()),
        vpc_id: Some("vpc-a".into()),
        subnet_id: Some("subnet-a1".into()),
        availability_zone: Some("us-east-1a".into()),
        security_group_ids: vec!["sg-web".into()],
        ..Host::bare("admin", "111122223333", "us-east-1", "i-0123456789abcdef0")
    }
}

fn endpoint() -> EicEndpoint {
    EicEndpoint {
        id: "eice-0aaa".into(),
        state: EicEndpointState::CreateComplete,
        vpc_id: Some("vpc-a".into()),
        subnet_id: Some("subnet-a2".into()),
        subnet_cidr: None,
        dns_name: Some("eice-0aaa.x.ec2-instance-connect-endpoint.us-east-1.amazonaws.com".into()),
        fips_dns_name: Some(
            "eice-0aaa.x.fips.ec2-instance-connect-endpoint.us-east-1.amazonaws.com".into(),
        ),
        security_group_ids: vec![],
        preserve_client_ip: false,
        profile: "admin".into(),
        account_id: "111122223333".into(),
        region: "us-east-1".into(),
    }
}

/// The host's account and region, listed with `endpoints`.
fn snapshot(endpoints: Listing<EicEndpoint>) -> Snapshot {
    let mut s = Snapshot {
        hosts: vec![host()].into(),
        ..Snapshot::default()
    };
    s.regions.insert(
        AccountRegion {
            account_id: "111122223333".into(),
            region: "us-east-1".into(),
        },
        RegionFacts {
            profile: "admin".into(),
            eic_endpoints: endpoints,
            security_groups: Listing::Listed(vec![]),
            ssm: Listing::Listed(vec![]),
        },
    );
    s
}

#[test]
fn the_endpoint_in_the_host_s_vpc_carries_the_tunnel_to_its_private_ip() {
    let s = snapshot(Listing::Listed(vec![endpoint()]));
    let duration = MaxTunnelDuration::from_secs(900).ok();
    let request = eic_request(&s, &s.hosts[0], false, 22, duration).unwrap();
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
    let s = snapshot(Listing::Listed(vec![endpoint()]));
    let request = eic_request(&s, &s.hosts[0], true, 3389, None).unwrap();
    assert_eq!(
        request.endpoint.host(),
        "eice-0aaa.x.fips.ec2-instance-connect-endpoint.us-east-1.amazonaws.com"
    );
    assert_eq!(request.remote_port, 3389);
}

#[test]
fn reasons_name_the_failed_listing_the_vpc_the_missing_ip_or_the_unscanned_region() {
    let failed = snapshot(Listing::Failed("UnauthorizedOperation: no".into()));
    let error = eic_request(&failed, &failed.hosts[0], false, 22, None).unwrap_err();
    assert!(
        error.contains("for web-eic-1: UnauthorizedOperation"),
        "{error}"
    );

    let s = snapshot(Listing::Listed(vec![endpoint()]));
    let elsewhere = Host {
        vpc_id: Some("vpc-z".into()),
        ..host()
    };
    let error = eic_request(&s, &elsewhere, false, 22, None).unwrap_err();
    assert!(
        error.contains("web-eic-1: no EC2 Instance Connect Endpoint in vpc-z"),
        "{error}"
    );

    let no_ip = Host {
        private_ip: None,
        ..host()
    };
    let error = eic_request(&s, &no_ip, false, 22, None).unwrap_err();
    assert!(
        error.contains("web-eic-1 has no private IP address"),
        "{error}"
    );

    let in_another_region = Host {
        region: "eu-west-1".into(),
        ..host()
    };
    let error = eic_request(&s, &in_another_region, false, 22, None).unwrap_err();
    assert!(
        error.contains("of eu-west-1 in account 111122223333 are not listed yet"),
        "{error}"
    );
}

#[test]
fn a_named_route_the_inventory_rules_out_is_refused_with_the_route_check_s_reasons() {
    // The account's Session Manager listing has no such instance: its agent is not registered.
    let s = snapshot(Listing::Listed(vec![endpoint()]));
    let key = s.hosts[0].key();
    let error = connect_method(&s, &key, 22, RouteChoice::Ssm).unwrap_err();
    assert!(
        error.starts_with("Session Manager cannot be used for web-eic-1: "),
        "{error}"
    );
    let report = route_report(&s, &s.hosts[0], Purpose::Ssh);
    let ssm = report
        .routes
        .iter()
        .find(|r| r.method == Method::Ssm)
        .unwrap();
    assert!(error.ends_with(&ssm.reasons.join(" ")), "{error}");
    assert_eq!(choice_of(Method::Ssm), RouteChoice::Ssm);
    assert_eq!(choice_of(Method::Eic), RouteChoice::Eic);
}
