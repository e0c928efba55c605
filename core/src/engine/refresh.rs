//! The engine's command loop and the inventory refresh it runs.
//!
//! A refresh re-reads the AWS files, publishes every profile as loading (or as failed, with the
//! reason, when its section is broken), then scans all usable profiles concurrently and publishes
//! each result the moment it arrives, so fast profiles never wait for slow ones.
//!
//! Several profiles often reach the same account and region (a read-only and an admin role, say);
//! each instance is shown once, found through the first such profile in name order.
//!
//! Tunnel commands are handed to `connect`, each in its own task, so that working out a route
//! never holds up the loop.

use super::{ChangeHook, Command, EngineConfig, ProfileState, ProfileStatus, Shared, Snapshot};
use super::{TUNNEL_EVENTS_KEPT, connect};
use crate::inventory::{self, Host, ProfileInventory};
use crate::profiles::{Profile, ProfileCatalog};
use crate::tunnel::TunnelReport;
use arc_swap::ArcSwapOption;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

/// Publishes snapshots and tells the app about each one. Clones publish to the same channel.
#[derive(Clone)]
pub(super) struct Publisher {
    sender: Arc<watch::Sender<Arc<Snapshot>>>,
    on_change: Arc<ArcSwapOption<ChangeHook>>,
}

impl Publisher {
    pub(super) fn new(
        sender: watch::Sender<Arc<Snapshot>>,
        on_change: Arc<ArcSwapOption<ChangeHook>>,
    ) -> Self {
        Self {
            sender: Arc::new(sender),
            on_change,
        }
    }

    /// The latest published snapshot.
    pub(super) fn current(&self) -> Arc<Snapshot> {
        self.sender.borrow().clone()
    }

    /// Applies `change` to a copy of the current snapshot and publishes it. The copy is made
    /// under the channel's lock, so that the refresh and the tunnel manager, which publish from
    /// different tasks, never overwrite each other's changes.
    fn update(&self, change: impl FnOnce(&mut Snapshot)) {
        self.sender.send_modify(|current| {
            let mut next = Snapshot::clone(current);
            change(&mut next);
            next.generation += 1;
            *current = Arc::new(next);
        });
        if let Some(hook) = self.on_change.load().as_ref() {
            hook();
        }
    }

    /// Publishes the tunnel manager's latest report.
    pub(super) fn tunnels(&self, report: TunnelReport) {
        self.update(|s| {
            s.tunnels = report.tunnels;
            s.tunnel_events.extend(report.events);
            let excess = s.tunnel_events.len().saturating_sub(TUNNEL_EVENTS_KEPT);
            s.tunnel_events.drain(..excess);
        });
    }
}

type ScanResult = (String, Result<ProfileInventory, String>);

pub(super) async fn run(
    config: EngineConfig,
    mut commands: mpsc::UnboundedReceiver<Command>,
    shared: Arc<Shared>,
) {
    let publisher = &shared.publisher;
    let mut scans: JoinSet<ScanResult> = JoinSet::new();
    // The hosts each profile found in its last successful scan, by profile name.
    let mut found: BTreeMap<String, Vec<Host>> = BTreeMap::new();
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Refresh) => {
                    scans.abort_all();
                    scans = start_refresh(&config, &shared, &mut found);
                }
                Some(Command::OpenTunnel { host, remote_port, local_port }) => {
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        // Success or failure, the outcome shows in the snapshot's tunnels.
                        let _ = connect::open_listener(&shared, &host, remote_port, local_port)
                            .await;
                    });
                }
                Some(Command::CloseTunnel(id)) => {
                    shared.tunnels.close(id);
                }
                Some(Command::ConfigureTunnels(settings)) => shared.tunnels.configure(settings),
                None => return,
            },
            Some(joined) = scans.join_next() => {
                // An aborted scan belongs to a replaced refresh: nothing to show for it.
                if let Ok((profile, result)) = joined {
                    publish_scan(publisher, &mut found, profile, result, scans.is_empty());
                }
            }
        }
    }
}

fn start_refresh(
    config: &EngineConfig,
    shared: &Shared,
    found: &mut BTreeMap<String, Vec<Host>>,
) -> JoinSet<ScanResult> {
    let publisher = &shared.publisher;
    let mut scans = JoinSet::new();
    let catalog = match ProfileCatalog::load(&config.aws_files) {
        Ok(catalog) => Arc::new(catalog),
        Err(error) => {
            publisher.update(|s| {
                s.refreshing = false;
                s.warnings = vec![error.to_string()];
            });
            return scans;
        }
    };
    shared.catalog.store(Some(catalog.clone()));
    let statuses = profile_statuses(&catalog);
    for profile in &catalog.profiles {
        let catalog = catalog.clone();
        let profile = profile.clone();
        scans.spawn(async move {
            let result = scan(&catalog, &profile).await;
            (profile.name, result)
        });
    }
    let warnings = catalog.warnings.clone();
    let refreshing = !scans.is_empty();
    // Hosts of profiles that no longer exist go; the others stay until their scan answers.
    found.retain(|name, _| catalog.get(name).is_some());
    let hosts = merged_hosts(found);
    publisher.update(|s| {
        s.hosts = hosts;
        s.eic_endpoints
            .retain(|profile, _| catalog.get(profile).is_some());
        s.profiles = statuses;
        s.warnings = warnings;
        s.refreshing = refreshing;
    });
    scans
}

async fn scan(catalog: &ProfileCatalog, profile: &Profile) -> Result<ProfileInventory, String> {
    let sdk = catalog.sdk_config(profile).await?;
    inventory::scan_profile(&sdk, profile).await
}

/// Every profile, usable ones loading and broken ones failed, in name order.
fn profile_statuses(catalog: &ProfileCatalog) -> Vec<ProfileStatus> {
    let mut statuses: Vec<ProfileStatus> = catalog
        .profiles
        .iter()
        .map(|p| ProfileStatus {
            name: p.name.clone(),
            region: Some(p.region.clone()),
            account_id: None,
            state: ProfileState::Loading,
            warnings: Vec::new(),
        })
        .chain(catalog.broken.iter().map(|b| ProfileStatus {
            name: b.name.clone(),
            region: None,
            account_id: None,
            state: ProfileState::Failed {
                error: b.error.clone(),
            },
            warnings: Vec::new(),
        }))
        .collect();
    statuses.sort_by(|a, b| a.name.cmp(&b.name));
    statuses
}

fn publish_scan(
    publisher: &Publisher,
    found: &mut BTreeMap<String, Vec<Host>>,
    profile: String,
    result: Result<ProfileInventory, String>,
    last: bool,
) {
    let (state, endpoints, warnings) = match result {
        Ok(inventory) => {
            let state = (
                Some(inventory.account_id),
                ProfileState::Ready {
                    hosts: inventory.hosts.len(),
                },
            );
            found.insert(profile.clone(), inventory.hosts);
            (state, Some(inventory.eic_endpoints), inventory.warnings)
        }
        Err(error) => ((None, ProfileState::Failed { error }), None, Vec::new()),
    };
    let hosts = merged_hosts(found);
    publisher.update(|s| {
        if let Some(status) = s.profiles.iter_mut().find(|p| p.name == profile) {
            status.account_id = state.0.or(status.account_id.take());
            status.state = state.1;
            status.warnings = warnings;
        }
        match endpoints {
            Some(endpoints) => s.eic_endpoints.insert(profile, endpoints),
            None => s.eic_endpoints.remove(&profile),
        };
        s.hosts = hosts;
        s.refreshing = !last;
    });
}

/// Every profile's hosts, each instance once, sorted by profile then name.
fn merged_hosts(found: &BTreeMap<String, Vec<Host>>) -> Vec<Host> {
    let mut seen = HashSet::new();
    let mut hosts: Vec<Host> = found
        .values()
        .flatten()
        .filter(|h| {
            seen.insert((
                h.account_id.as_str(),
                h.region.as_str(),
                h.instance_id.as_str(),
            ))
        })
        .cloned()
        .collect();
    hosts.sort_by(|a, b| (&a.profile, a.display_name()).cmp(&(&b.profile, b.display_name())));
    hosts
}
