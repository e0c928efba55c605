//! Tunnels and keys for an instance named by its [`HostKey`]: which profile, which endpoint and
//! which IP, worked out from the latest snapshot and the profiles' SDK configurations, with no
//! AWS calls beyond the tunnel's own.
//!
//! Several profiles can reach the same account (an admin and a read-only role). The host's own
//! profile (the one that listed it) is tried first, then the others
//! ([`Snapshot::profiles_for`]): the first whose configuration loads carries a tunnel, and keys
//! are pushed by the first that is allowed to, so a role that may not push keys does not hide
//! one that may. The endpoint comes from the account and region's listing, whoever listed it.
//!
//! The route is the caller's [`RouteChoice`]; `Auto` takes the best-ranked EIC or Session
//! Manager route whose verdict is ready (else one that might work), as the route ranking says.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroUsize;
use std::time::SystemTime;

use aws_config::SdkConfig;
use aws_types::region::Region;

use super::{RouteChoice, Shared, Snapshot};
use crate::audit::{AuditRecord, timestamp};
use crate::eic::{
    ConnectOptions, Connector, EndpointAddress, EndpointQuery, EphemeralKey, KeyError, KeyTarget,
    MaxTunnelDuration, ProxySettings, TunnelRequest, choose_endpoint, push_ephemeral_key,
};
use crate::inventory::{Host, HostKey, Listing};
use crate::profiles::{Profile, ProfileCatalog};
use crate::route::{Method, Purpose, RouteReport, Verdict};
use crate::ssm::proto::TerminalSize;
use crate::ssm::session::ShellExit;
use crate::ssm::session::{DataChannelConnector, SessionConfig, SsmSessionApi};
use crate::store::AppSettings;
use crate::tunnel::{Route, TunnelId, TunnelTarget};

/// Opens a listener tunnel; the tunnel shows in the snapshot whether this succeeds or not.
pub(super) async fn open_listener(
    shared: &Shared,
    key: &HostKey,
    remote_port: u16,
    local_port: Option<u16>,
    choice: RouteChoice,
) -> Result<SocketAddr, String> {
    open_forward(shared, key, remote_port, local_port, None, choice)
        .await
        .map(|(_, addr)| addr)
}

/// Opens a listener tunnel to `remote_port` on the instance, or on `remote_host` as the
/// instance reaches it (Session Manager only), and returns its id and address.
pub(super) async fn open_forward(
    shared: &Shared,
    key: &HostKey,
    remote_port: u16,
    local_port: Option<u16>,
    remote_host: Option<String>,
    choice: RouteChoice,
) -> Result<(TunnelId, SocketAddr), String> {
    let snapshot = shared.publisher.current();
    let reservation = shared.tunnels.reserve(target(&snapshot, key, remote_port));
    let id = reservation.id();
    let route = match (&remote_host, choice) {
        (Some(_), RouteChoice::Eic) => Err(
            "an EC2 Instance Connect Endpoint reaches only the instance itself; forward to \
             another host through Session Manager (--route ssm)"
                .to_owned(),
        ),
        (Some(_), _) => ssm_route(shared, &snapshot, key, remote_port).await,
        (None, _) => route(shared, &snapshot, key, remote_port, choice).await,
    };
    let route = match (route, remote_host) {
        (Ok(route), Some(host)) => Ok(route.to_remote_host(host)),
        (route, _) => route,
    };
    match route {
        Ok(route) => reservation
            .listen(route, local_port)
            .await
            .map(|addr| (id, addr))
            .map_err(|e| e.to_string()),
        Err(reason) => {
            reservation.fail(reason.clone());
            Err(reason)
        }
    }
}

/// Carries this process's stdin/stdout through one tunnel connection until it ends.
pub(super) async fn proxy_stdio(
    shared: &Shared,
    key: &HostKey,
    remote_port: u16,
    choice: RouteChoice,
) -> Result<(), String> {
    let snapshot = shared.publisher.current();
    let reservation = shared.tunnels.reserve(target(&snapshot, key, remote_port));
    match route(shared, &snapshot, key, remote_port, choice).await {
        Ok(route) => {
            let stdio = tokio::io::join(tokio::io::stdin(), tokio::io::stdout());
            reservation
                .stdio(route, stdio)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        Err(reason) => {
            reservation.fail(reason.clone());
            Err(reason)
        }
    }
}

/// The route a connection to `remote_port` would take (`choice`, or the best one for
/// `Auto`), checked as far as the inventory allows without connecting: for EIC, an endpoint
/// in the host's VPC and a private IP. Lets the CLI refuse before ssh starts.
pub(super) fn preflight(
    shared: &Shared,
    key: &HostKey,
    remote_port: u16,
    choice: RouteChoice,
) -> Result<RouteChoice, String> {
    let snapshot = shared.publisher.current();
    let host = snapshot.host(key).ok_or_else(|| not_found(key))?;
    let method = match choice {
        RouteChoice::Eic => Method::Eic,
        RouteChoice::Ssm => Method::Ssm,
        RouteChoice::Auto => auto_method(&snapshot, key, remote_port)?,
    };
    if method == Method::Ssm {
        return Ok(RouteChoice::Ssm);
    }
    eic_request(&snapshot, host, false, remote_port, None)?;
    Ok(RouteChoice::Eic)
}

/// Runs a Session Manager shell on the instance until it exits, and records it in the audit
/// log however it ends.
pub(super) async fn run_shell<R, W>(
    shared: &Shared,
    key: &HostKey,
    stdin: R,
    stdout: W,
    sizes: tokio::sync::watch::Receiver<TerminalSize>,
) -> Result<ShellExit, String>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let snapshot = shared.publisher.current();
    let host = snapshot.host(key).ok_or_else(|| not_found(key))?.clone();
    let (profile, api, config) = ssm_parts(shared, &snapshot, key).await?;
    let started = SystemTime::now();
    let mut session_id = None;
    let result = crate::ssm::session::run_shell(
        std::sync::Arc::new(api),
        &host.instance_id,
        stdin,
        stdout,
        sizes,
        config,
        |id| session_id = Some(id.to_owned()),
    )
    .await;
    let (bytes_sent, bytes_received, end) = match &result {
        Ok(exit) => (exit.bytes_sent, exit.bytes_received, exit.end.to_string()),
        Err(error) => (
            0,
            0,
            format!("failed: {}", crate::audit::redact(&error.to_string())),
        ),
    };
    shared.audit.record(&AuditRecord {
        time: timestamp(SystemTime::now()),
        started: timestamp(started),
        kind: "shell",
        profile: Some(profile),
        account: host.account_id.clone(),
        region: host.region.clone(),
        host: host.instance_id.clone(),
        host_name: host.display_name().to_owned(),
        route: Some("ssm"),
        endpoint: None,
        remote_port: None,
        tunnel: None,
        session: session_id,
        bytes_to_remote: bytes_sent,
        bytes_from_remote: bytes_received,
        connections: 1,
        end,
    });
    result.map_err(|e| e.to_string())
}

/// Pushes a fresh key with the first profile that is allowed to.
pub(super) async fn push_ssh_key(
    shared: &Shared,
    key: &HostKey,
    os_user: &str,
) -> Result<EphemeralKey, String> {
    let snapshot = shared.publisher.current();
    let catalog = catalog(shared)?;
    let host = snapshot.host(key).ok_or_else(|| not_found(key))?;
    let mut first_error = None;
    for profile in profiles(&snapshot, &catalog, host) {
        let sdk = match catalog.sdk_config(profile).await {
            Ok(sdk) => sdk,
            Err(error) => {
                first_error.get_or_insert_with(|| format!("profile {}: {error}", profile.name));
                continue;
            }
        };
        let target = KeyTarget {
            instance_id: host.instance_id.clone(),
            region: host.region.clone(),
            availability_zone: host.availability_zone.clone(),
        };
        match push_ephemeral_key(&sdk, &target, os_user).await {
            Ok(key) => return Ok(key),
            // The same for every profile: no point asking the next one.
            Err(error @ KeyError::InvalidOsUser { .. }) => return Err(error.to_string()),
            Err(error) => {
                first_error.get_or_insert_with(|| format!("profile {}: {error}", profile.name));
            }
        }
    }
    Err(first_error.unwrap_or_else(|| not_found(key)))
}

/// The route `choice` names, or for `Auto` the best one the snapshot's verdicts allow.
async fn route(
    shared: &Shared,
    snapshot: &Snapshot,
    key: &HostKey,
    remote_port: u16,
    choice: RouteChoice,
) -> Result<Route, String> {
    let method = match choice {
        RouteChoice::Eic => Method::Eic,
        RouteChoice::Ssm => Method::Ssm,
        RouteChoice::Auto => auto_method(snapshot, key, remote_port)?,
    };
    if method == Method::Ssm {
        ssm_route(shared, snapshot, key, remote_port).await
    } else {
        eic_route(shared, snapshot, key, remote_port).await
    }
}

/// The route a [`Command::Connect`](super::Command::Connect) to `remote_port` takes:
/// `choice` is the route the command names (such as the "Use Session Manager" button's), else
/// the host's preferred one ([`LaunchPlan::route`](crate::launch::settings::LaunchPlan)); `Auto`
/// is the best route the inventory allows. A named route is used unless the inventory shows it
/// cannot work, and the error then says why, in the route check's words.
pub(super) fn connect_method(
    snapshot: &Snapshot,
    key: &HostKey,
    remote_port: u16,
    choice: RouteChoice,
) -> Result<Method, String> {
    let method = match choice {
        RouteChoice::Auto => return auto_method(snapshot, key, remote_port),
        RouteChoice::Eic => Method::Eic,
        RouteChoice::Ssm => Method::Ssm,
    };
    let host = snapshot.host(key).ok_or_else(|| not_found(key))?;
    let report = route_report(snapshot, host, Purpose::from_port(remote_port));
    match report.routes.iter().find(|r| r.method == method) {
        Some(blocked) if blocked.verdict == Verdict::Blocked => Err(format!(
            "{} cannot be used for {}: {}",
            method_name(method),
            host.display_name(),
            blocked.reasons.join(" ")
        )),
        _ => Ok(method),
    }
}

/// What the route is called in a sentence.
pub(super) fn method_name(method: Method) -> &'static str {
    match method {
        Method::Eic => "EC2 Instance Connect",
        Method::Ssm => "Session Manager",
        other => other.label(),
    }
}

/// The route choice that names `method` (EIC for anything that is not Session Manager).
pub(super) fn choice_of(method: Method) -> RouteChoice {
    match method {
        Method::Ssm => RouteChoice::Ssm,
        _ => RouteChoice::Eic,
    }
}

/// The snapshot's route report for `host`, or a fresh one when it was made for another purpose.
pub(super) fn route_report(snapshot: &Snapshot, host: &Host, purpose: Purpose) -> RouteReport {
    match snapshot.routes.get(&host.key()) {
        Some(report) if report.purpose == purpose => report.clone(),
        _ => snapshot.assess_route(host, purpose),
    }
}

/// The first EIC or SSM route (in rank order) that is ready, else the first that might work.
pub(super) fn auto_method(
    snapshot: &Snapshot,
    key: &HostKey,
    remote_port: u16,
) -> Result<Method, String> {
    let host = snapshot.host(key).ok_or_else(|| not_found(key))?;
    let purpose = Purpose::from_port(remote_port);
    let report = route_report(snapshot, host, purpose);
    let tunnelled = |verdict| {
        report
            .routes
            .iter()
            .find(|r| r.verdict == verdict && matches!(r.method, Method::Eic | Method::Ssm))
    };
    if let Some(chosen) = tunnelled(Verdict::Ready).or_else(|| tunnelled(Verdict::Unsure)) {
        return Ok(chosen.method);
    }
    let why: Vec<String> = report
        .routes
        .iter()
        .filter(|r| matches!(r.method, Method::Eic | Method::Ssm))
        .map(|r| format!("{}: {}", r.method.label(), r.reasons.join(" ")))
        .collect();
    Err(format!(
        "no route to {purpose} on {} is open ({}); choose one with --route to try anyway",
        host.display_name(),
        why.join("; ")
    ))
}

/// A Session Manager route to `remote_port` on the instance, in its region, through the first
/// profile whose configuration loads.
async fn ssm_route(
    shared: &Shared,
    snapshot: &Snapshot,
    key: &HostKey,
    remote_port: u16,
) -> Result<Route, String> {
    let host = snapshot.host(key).ok_or_else(|| not_found(key))?;
    let (profile, api, config) = ssm_parts(shared, snapshot, key).await?;
    Ok(Route::ssm(
        profile,
        host.instance_id.clone(),
        remote_port,
        api,
        config,
        ssm_pool_size(shared).await,
    ))
}

/// How many Session Manager sessions one tunnel's connections are spread over: the app
/// setting, read now, so a change applies to the next tunnel opened.
async fn ssm_pool_size(shared: &Shared) -> NonZeroUsize {
    let size = match shared.store.clone() {
        // Reading the store checks its files on disk: off the async threads.
        Some(store) => tokio::task::spawn_blocking(move || store.settings().ssm_pool_size)
            .await
            .unwrap_or_else(|_| AppSettings::default().ssm_pool_size),
        None => AppSettings::default().ssm_pool_size,
    };
    NonZeroUsize::new(size.into()).unwrap_or(NonZeroUsize::MIN)
}

/// What a Session Manager session needs: the name of the first profile whose configuration
/// loads, its control plane in the host's region, and the data channel's settings.
pub(super) async fn ssm_parts(
    shared: &Shared,
    snapshot: &Snapshot,
    key: &HostKey,
) -> Result<(String, SsmSessionApi, SessionConfig), String> {
    let catalog = catalog(shared)?;
    let host = snapshot.host(key).ok_or_else(|| not_found(key))?;
    let mut first_error = None;
    for profile in profiles(snapshot, &catalog, host) {
        match catalog.sdk_config(profile).await {
            Ok(sdk) => {
                let sdk = sdk
                    .to_builder()
                    .region(Region::new(host.region.clone()))
                    .build();
                let ca_bundles = profile.ca_bundles.clone();
                // Reads the OS trust store and the bundles from disk: off the async threads.
                let connector = tokio::task::spawn_blocking(move || {
                    DataChannelConnector::new(ConnectOptions {
                        proxy: ProxySettings::from_env().map_err(|e| e.to_string())?,
                        ca_bundles,
                        ..ConnectOptions::default()
                    })
                    .map_err(|e| e.to_string())
                })
                .await
                .map_err(|e| format!("could not prepare the connection: {e}"))??;
                return Ok((
                    profile.name.clone(),
                    SsmSessionApi::new(&sdk),
                    SessionConfig::new(connector),
                ));
            }
            Err(error) => {
                first_error.get_or_insert_with(|| format!("profile {}: {error}", profile.name));
            }
        }
    }
    Err(first_error.unwrap_or_else(|| not_found(key)))
}

/// An EIC route to `remote_port` on the instance, through the first profile whose
/// configuration loads.
async fn eic_route(
    shared: &Shared,
    snapshot: &Snapshot,
    key: &HostKey,
    remote_port: u16,
) -> Result<Route, String> {
    let catalog = catalog(shared)?;
    let host = snapshot.host(key).ok_or_else(|| not_found(key))?;
    let max_tunnel_duration = shared.tunnels.settings().max_tunnel_duration;
    let mut first_error = None;
    for profile in profiles(snapshot, &catalog, host) {
        match catalog.sdk_config(profile).await {
            Ok(sdk) => {
                let fips = sdk.use_fips().unwrap_or(false);
                let request = eic_request(snapshot, host, fips, remote_port, max_tunnel_duration)?;
                return build_route(profile, &sdk, request).await;
            }
            Err(error) => {
                first_error.get_or_insert_with(|| format!("profile {}: {error}", profile.name));
            }
        }
    }
    Err(first_error.unwrap_or_else(|| not_found(key)))
}

/// The tunnel request for `host`: the endpoint its account and region's listing offers (its
/// FIPS name when `fips`), and its private IP.
fn eic_request(
    snapshot: &Snapshot,
    host: &Host,
    fips: bool,
    remote_port: u16,
    max_tunnel_duration: Option<MaxTunnelDuration>,
) -> Result<TunnelRequest, String> {
    let name = host.display_name();
    let endpoints = match snapshot
        .region_facts(host)
        .map(|facts| &facts.eic_endpoints)
    {
        Some(Listing::Listed(endpoints)) => endpoints,
        Some(Listing::Failed(why)) => {
            return Err(format!(
                "cannot choose an EC2 Instance Connect Endpoint for {name}: {why}"
            ));
        }
        None => {
            return Err(format!(
                "the EC2 Instance Connect Endpoints of {} in account {} are not listed yet; \
                 wait for the refresh to finish and retry",
                host.region, host.account_id
            ));
        }
    };
    let chosen = choose_endpoint(
        endpoints,
        &EndpointQuery {
            vpc_id: host.vpc_id.as_deref(),
            subnet_id: host.subnet_id.as_deref(),
            endpoint_id: None,
            fips,
        },
    )
    .map_err(|e| format!("{name}: {e}"))?;
    let private_ip: IpAddr = host
        .private_ip
        .as_deref()
        .and_then(|ip| ip.parse().ok())
        .ok_or_else(|| {
            format!(
                "{name} has no private IP address, and EC2 Instance Connect Endpoints reach \
                 instances only by private IP"
            )
        })?;
    Ok(TunnelRequest {
        endpoint: EndpointAddress::parse(chosen.dns_name).map_err(|e| e.to_string())?,
        endpoint_id: chosen.endpoint.id.clone(),
        private_ip,
        remote_port,
        max_tunnel_duration,
        region: host.region.clone(),
    })
}

/// The route's connector (proxy from the environment, the profile's CA bundle) and credentials.
async fn build_route(
    profile: &Profile,
    sdk: &SdkConfig,
    request: TunnelRequest,
) -> Result<Route, String> {
    let credentials = sdk.credentials_provider().ok_or_else(|| {
        format!(
            "profile {} has no credentials configured; add them, or sign in",
            profile.name
        )
    })?;
    let ca_bundles = profile.ca_bundles.clone();
    // Reads the OS trust store and the bundles from disk: off the async threads.
    let connector = tokio::task::spawn_blocking(move || {
        Connector::new(ConnectOptions {
            proxy: ProxySettings::from_env()?,
            ca_bundles,
            ..ConnectOptions::default()
        })
    })
    .await
    .map_err(|e| format!("could not prepare the connection: {e}"))?
    .map_err(|e| e.to_string())?;
    Ok(Route::eic(
        profile.name.clone(),
        request,
        connector,
        credentials,
    ))
}

/// The usable profiles that can act on `host`, its own first.
fn profiles<'a>(
    snapshot: &'a Snapshot,
    catalog: &'a ProfileCatalog,
    host: &'a Host,
) -> impl Iterator<Item = &'a Profile> {
    snapshot
        .profiles_for(host)
        .filter_map(|name| catalog.get(name))
}

fn catalog(shared: &Shared) -> Result<std::sync::Arc<ProfileCatalog>, String> {
    shared.catalog.load_full().ok_or_else(|| {
        "the AWS profiles have not been read yet; wait for the host list and retry".to_owned()
    })
}

/// What the user asked for, named as the snapshot names the host.
fn target(snapshot: &Snapshot, key: &HostKey, remote_port: u16) -> TunnelTarget {
    TunnelTarget {
        host: key.clone(),
        host_name: snapshot
            .host(key)
            .map_or(key.instance_id.clone(), |h| h.display_name().to_owned()),
        remote_port,
    }
}

fn not_found(key: &HostKey) -> String {
    format!(
        "{key} is not in the host list of any usable profile; refresh, or check the instance id"
    )
}

#[cfg(test)]
#[path = "connect_tests.rs"]
mod tests;
