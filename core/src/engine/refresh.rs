//! The engine's command loop and the inventory refresh it runs.
//!
//! A refresh re-reads the AWS files and publishes every profile as loading (or as failed, with
//! the reason, when its section is broken). Then, all under one [`CallBudget`]:
//! 1. every profile asks STS who it is;
//! 2. each account gets one scanning profile ([`AccountPlan`]), which asks `DescribeRegions`
//!    for the regions the account has enabled (narrowed to the configured ones, if any: the
//!    engine's own list, else the app settings' `regions`);
//! 3. every (account, region) is scanned once, and what is done is published every
//!    [`SHOWN_EVERY`] — hosts, endpoints, security groups and routes — with the progress
//!    (regions done of those known).
//!
//! When the scanning profile lacks a permission (`AccessDenied`), the account's other profiles
//! are asked in turn, so a billing role that happens to sort first never hides an account an
//! admin role can list. A region whose scan fails keeps its previous hosts, marked stale, and
//! the failure shows on the profile. When everything has answered, the inventory is written to
//! the disk cache.
//!
//! The store's app settings are read when a refresh starts (the regions to scan) and whenever
//! the loop looks at its [`RefreshSchedule`] (the periodic refresh), never kept, so a change
//! applies to the next refresh without a restart.
//!
//! Tunnel commands are handed to `connect`, each in its own task, so that working out a route
//! never holds up the loop.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use aws_config::SdkConfig;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::Start;
use super::plan::AccountPlan;
use super::schedule::RefreshSchedule;
use super::{ChangeHook, Command, EngineConfig, ProfileState, ProfileStatus, Shared, Snapshot};
use super::{NOTICES_KEPT, Notice, NoticeAction, NoticeLevel};
use super::{ScanProgress, TUNNEL_EVENTS_KEPT, connect};
use crate::inventory::{
    self, AccountRegion, CachedRegion, CallBudget, CallFailure, Host, InventoryCache, KnownIds,
    RegionFacts, RegionScan, listing_order,
};
use crate::profiles::{HttpsClients, ProfileCatalog};
use crate::store::AppSettings;
use crate::tunnel::TunnelReport;

/// Publishes snapshots and tells the app about each one. Clones publish to the same channel.
#[derive(Clone)]
pub(super) struct Publisher {
    sender: Arc<watch::Sender<Arc<Snapshot>>>,
    on_change: Arc<ArcSwapOption<ChangeHook>>,
    /// While a batch is open: the snapshot every change goes to, published when it closes.
    batch: Arc<std::sync::Mutex<Option<Snapshot>>>,
}

/// An open batch of changes (see [`Publisher::batch`]); dropping it publishes them.
pub(super) struct Batch(Publisher);

impl Drop for Batch {
    fn drop(&mut self) {
        let pending = lock(&self.0.batch).take();
        if let Some(mut next) = pending {
            self.0.sender.send_modify(|current| {
                next.generation = current.generation + 1;
                *current = Arc::new(next);
            });
            if let Some(hook) = self.0.on_change.load().as_ref() {
                hook();
            }
        }
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Publisher {
    pub(super) fn new(
        sender: watch::Sender<Arc<Snapshot>>,
        on_change: Arc<ArcSwapOption<ChangeHook>>,
    ) -> Self {
        Self {
            sender: Arc::new(sender),
            on_change,
            batch: Arc::default(),
        }
    }

    /// Opens a batch: until it is dropped, changes from any task go to one copy of the
    /// snapshot, published once at the end. A large refresh finishes hundreds of regions
    /// within a second; copying and publishing a snapshot of thousands of hosts for each would
    /// cost far more than the scan. Only the refresh loop opens batches, one at a time.
    pub(super) fn batch(&self) -> Batch {
        let mut batch = lock(&self.batch);
        if batch.is_none() {
            *batch = Some(Snapshot::clone(&self.sender.borrow()));
        }
        Batch(self.clone())
    }

    /// The latest published snapshot.
    pub(super) fn current(&self) -> Arc<Snapshot> {
        self.sender.borrow().clone()
    }

    /// Applies `change` to a copy of the current snapshot and publishes it. The copy is made
    /// under the channel's lock, so that the refresh and the tunnel manager, which publish from
    /// different tasks, never overwrite each other's changes.
    pub(super) fn update(&self, change: impl FnOnce(&mut Snapshot)) {
        if let Some(pending) = lock(&self.batch).as_mut() {
            change(pending);
            return;
        }
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

    /// Follows every published snapshot.
    pub(super) fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.sender.subscribe()
    }

    /// Adds a notice for the user, keeping the newest [`NOTICES_KEPT`].
    pub(super) fn notify(&self, level: NoticeLevel, text: String, action: Option<NoticeAction>) {
        self.update(|s| {
            let seq = s.notices.last().map_or(1, |n| n.seq + 1);
            s.notices.push(Notice {
                seq,
                level,
                text,
                action,
            });
            let excess = s.notices.len().saturating_sub(NOTICES_KEPT);
            s.notices.drain(..excess);
        });
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

/// One account and region as last scanned (or as the disk cache had it).
#[derive(Debug, Clone)]
pub(super) struct ScannedRegion {
    pub(super) hosts: Vec<Host>,
    pub(super) facts: RegionFacts,
}

/// What the engine knows, refresh after refresh.
pub(super) type Inventory = BTreeMap<AccountRegion, ScannedRegion>;

/// Reads the disk cache at `path` on a blocking thread (it is file I/O, and the engine's caller
/// may be the UI thread), publishes its hosts, marked stale, as soon as they are read, and
/// returns what the command loop starts from. Their routes are worked out afterwards, off the
/// path to the window's first frame.
pub(super) async fn load_cache(path: Option<std::path::PathBuf>, publisher: &Publisher) -> Start {
    let loaded = match path {
        None => Ok(None),
        Some(path) => tokio::task::spawn_blocking(move || InventoryCache::load(&path))
            .await
            .unwrap_or_else(|panicked| Err(format!("could not read the host cache: {panicked}"))),
    };
    let mut start = Start {
        inventory: Inventory::new(),
        cached_accounts: BTreeMap::new(),
        cache_notice: None,
    };
    let cache = match loaded {
        Ok(Some(cache)) => cache,
        Ok(None) => {
            publisher.update(|s| s.loading_cache = false);
            return start;
        }
        Err(notice) => {
            tracing::warn!("{notice}");
            publisher.update(|s| {
                s.warnings.push(notice.clone());
                s.loading_cache = false;
            });
            start.cache_notice = Some(notice);
            return start;
        }
    };
    let written_at = cache.written_at;
    let (hosts, facts) = cached_hosts(cache.regions);
    let hosts = Arc::new(hosts);
    let shown = hosts.clone();
    publisher.update(|s| {
        s.hosts = shown;
        s.regions = facts
            .iter()
            .map(|(key, facts)| (key.clone(), facts.clone()))
            .collect();
        s.cached_at = Some(written_at);
        s.loading_cache = false;
    });
    if !hosts.is_empty() {
        let publisher = publisher.clone();
        tokio::task::spawn_blocking(move || super::route_cached_hosts(&publisher));
    }
    // The loop keeps its own copy per region; made after the hosts are shown, so the first
    // frame never waits for it.
    start.inventory = facts
        .into_iter()
        .map(|(key, facts)| {
            let scanned = ScannedRegion {
                hosts: Vec::new(),
                facts,
            };
            (key, scanned)
        })
        .collect();
    // Hosts of one region are next to each other: one lookup per region.
    for run in hosts.chunk_by(|a, b| a.account_id == b.account_id && a.region == b.region) {
        let key = AccountRegion {
            account_id: run[0].account_id.clone(),
            region: run[0].region.clone(),
        };
        if let Some(scanned) = start.inventory.get_mut(&key) {
            scanned.hosts.extend_from_slice(run);
        }
    }
    start.cached_accounts = cache.accounts;
    start
}

/// The cached regions' hosts, marked stale, in the snapshot's order (moved, not copied, and
/// sorted only if the cache was not written sorted), and each region's facts.
fn cached_hosts(regions: Vec<CachedRegion>) -> (Vec<Host>, BTreeMap<AccountRegion, RegionFacts>) {
    let mut facts = BTreeMap::new();
    let mut runs = Vec::with_capacity(regions.len());
    for region in regions {
        facts.insert(
            AccountRegion {
                account_id: region.account_id,
                region: region.region,
            },
            region.facts,
        );
        runs.push(region.hosts);
    }
    let mut hosts = in_listing_order(runs);
    for host in &mut hosts {
        host.stale = true;
    }
    (hosts, facts)
}

/// Joins runs of hosts (one per region) in the snapshot's order, [`listing_order`]. A
/// region's hosts share its profile and region, so ordering the runs by their first host and
/// each run by name orders them all; the whole is sorted once more in case runs overlap after
/// all. The standard library's stable sort finds input already in order in one comparison per
/// host, so runs the disk cache wrote in order, and a whole that needs no merging, cost that
/// much; sorting 10,000 unordered hosts by text is about fourteen comparisons per host.
fn in_listing_order(mut runs: Vec<Vec<Host>>) -> Vec<Host> {
    for run in &mut runs {
        run.sort_by(listing_order);
    }
    runs.retain(|run| !run.is_empty());
    runs.sort_by(|a, b| listing_order(&a[0], &b[0]));
    let mut hosts: Vec<Host> = runs.into_iter().flatten().collect();
    hosts.sort_by(listing_order);
    hosts
}

/// Puts `inventory` into the snapshot: hosts and region facts.
pub(super) fn show_inventory(s: &mut Snapshot, inventory: &Inventory) {
    let runs = inventory.values().map(|r| r.hosts.clone()).collect();
    s.hosts = Arc::new(in_listing_order(runs));
    s.regions = inventory
        .iter()
        .map(|(key, r)| (key.clone(), r.facts.clone()))
        .collect();
    if !s.hosts.iter().any(|h| h.stale) {
        s.cached_at = None;
    }
}

/// What a refresh's tasks report.
enum Event {
    Identified {
        profile: String,
        result: Result<(String, Box<SdkConfig>), String>,
    },
    Regions {
        account: String,
        result: Result<Vec<String>, CallFailure>,
    },
    Scanned {
        key: AccountRegion,
        result: Result<RegionScan, CallFailure>,
    },
}

/// The refresh under way.
struct Refresh {
    catalog: Arc<ProfileCatalog>,
    plan: AccountPlan,
    /// The regions to scan, when narrowed (the engine's list, else the settings').
    regions: Option<Vec<String>>,
    /// The SDK configuration of every profile STS has identified.
    sdks: HashMap<String, SdkConfig>,
    /// Per account being scanned: regions still to answer, regions scanned, and the first
    /// failure.
    accounts: HashMap<String, AccountProgress>,
    /// Accounts of regions whose scan failed or whose identity did: their cached hosts stay.
    unconfirmed: BTreeSet<String>,
    /// What region scans fall back to, kept current as STS answers ([`Fallbacks`]).
    fallbacks: watch::Sender<Arc<Fallbacks>>,
}

/// The profiles a region scan may ask when the account's owner lacks a permission. An owner is
/// chosen as soon as every better-ranked profile has answered STS, so its scans can start
/// before the account's other profiles are known; a scan that needs them waits for them
/// ([`next_fallback`]), up to [`FALLBACK_WAIT`].
#[derive(Debug, Default)]
struct Fallbacks {
    /// Every identified profile of each account, in rank order, with its SDK configuration.
    by_account: HashMap<String, Vec<(String, SdkConfig)>>,
    /// Every profile has answered STS (or failed to): no other can turn up.
    settled: bool,
}

/// How long a scan refused part of a region waits for another profile of the account to
/// answer STS. STS answers in a round trip; a profile still pending after this is waiting for
/// something slow (an MFA code, a credential process), and the scan keeps what it has.
const FALLBACK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, Default)]
struct AccountProgress {
    pending: usize,
    scanned: usize,
    first_error: Option<String>,
}

/// How often a refresh's results are shown while it runs. Each showing copies the snapshot
/// and rebuilds its host list (thousands of hosts); results arrive in a stream of small
/// bursts, so showing each burst at once did that work hundreds of times per refresh. A few
/// times a second is as often as anyone can read a progress count.
const SHOWN_EVERY: std::time::Duration = std::time::Duration::from_millis(150);

/// The loop's own state: the inventory, the refresh under way, its tasks.
struct Loop {
    config: EngineConfig,
    shared: Arc<Shared>,
    calls: CallBudget,
    inventory: Inventory,
    /// Accounts by profile, from the disk cache, until STS answers.
    cached_accounts: BTreeMap<String, String>,
    /// Why the disk cache could not be used, shown with the first refresh.
    cache_notice: Option<String>,
    refresh: Option<Refresh>,
    tasks: JoinSet<Event>,
    /// Regions whose hosts changed since the snapshot last showed the inventory.
    changed: InventoryChange,
    schedule: RefreshSchedule,
    /// Every refresh's profiles use these, so connections are reused from one to the next.
    https: HttpsClients,
    /// The batch results go into while a refresh runs, and when it is shown ([`SHOWN_EVERY`]).
    held: Option<(Batch, tokio::time::Instant)>,
}

/// What of the inventory the snapshot does not show yet.
#[derive(Debug, Default)]
enum InventoryChange {
    #[default]
    None,
    Regions(BTreeSet<AccountRegion>),
    All,
}

impl InventoryChange {
    fn region(&mut self, key: AccountRegion) {
        match self {
            Self::None => *self = Self::Regions(BTreeSet::from([key])),
            Self::Regions(regions) => {
                regions.insert(key);
            }
            Self::All => {}
        }
    }
}

pub(super) async fn run(
    config: EngineConfig,
    mut commands: mpsc::UnboundedReceiver<Command>,
    shared: Arc<Shared>,
) {
    let start = load_cache(config.cache_file.clone(), &shared.publisher).await;
    let mut state = Loop {
        shared: shared.clone(),
        calls: CallBudget::sized_for_this_process(),
        inventory: start.inventory,
        cached_accounts: start.cached_accounts,
        cache_notice: start.cache_notice,
        refresh: None,
        tasks: JoinSet::new(),
        changed: InventoryChange::None,
        schedule: RefreshSchedule::new(config.minute, tokio::time::Instant::now()),
        https: HttpsClients::default(),
        held: None,
        config,
    };
    loop {
        let now = tokio::time::Instant::now();
        let interval = state.settings().refresh_interval_minutes;
        let next_check = state.schedule.next_check(interval, now);
        let show_at = state.held.as_ref().map_or(now, |(_, at)| *at);
        tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Refresh) => state.refresh().await,
                Some(Command::OpenTunnel { host, remote_port, local_port, route }) => {
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        // Success or failure, the outcome shows in the snapshot's tunnels.
                        let _ = connect::open_listener(
                            &shared, &host, remote_port, local_port, route,
                        )
                        .await;
                    });
                }
                Some(Command::CloseTunnel(id)) => {
                    shared.tunnels.close(id);
                }
                Some(Command::Connect { host, how, route }) => {
                    super::recents::remember(&shared, &host, &how);
                    // The outcome shows in the snapshot: the tunnel, and a notice.
                    tokio::spawn(super::launch::run(shared.clone(), host, how, route));
                }
                Some(Command::ConfigureTunnels(settings)) => shared.tunnels.configure(settings),
                Some(Command::SignIn { sso_session }) => {
                    // Progress and the outcome show in `Snapshot::sso_sessions` and notices.
                    tokio::spawn(super::signin::sign_in(shared.clone(), sso_session));
                }
                Some(Command::SupplyMfaCode { code }) => shared.mfa.supply(code),
                Some(Command::DiscoverAccounts { sso_session, enabled }) => {
                    tokio::spawn(super::signin::set_discovery(shared.clone(), sso_session, enabled));
                }
                None => return,
            },
            Some(joined) = state.tasks.join_next() => {
                // Tasks are only aborted by dropping their set, so every result is this
                // refresh's; a panicked task is a bug, and its region simply stays unscanned.
                // Results are handled at once (the next calls they lead to start now), and
                // shown together every SHOWN_EVERY.
                if state.held.is_none() {
                    state.held = Some((shared.publisher.batch(), now + SHOWN_EVERY));
                }
                let ready = std::iter::once(joined)
                    .chain(std::iter::from_fn(|| state.tasks.try_join_next()))
                    .collect::<Vec<_>>();
                for event in ready.into_iter().flatten() {
                    state.handle(event);
                }
                if state.tasks.is_empty() {
                    state.show_held();
                    state.finish_refresh().await;
                }
            }
            () = tokio::time::sleep_until(show_at), if state.held.is_some() => state.show_held(),
            () = tokio::time::sleep_until(next_check), if state.refresh.is_none() => {
                let interval = state.settings().refresh_interval_minutes;
                if state.schedule.is_due(interval, tokio::time::Instant::now()) {
                    state.refresh().await;
                }
            }
        }
    }
}

impl Loop {
    fn publisher(&self) -> &Publisher {
        &self.shared.publisher
    }

    /// The app settings as the store holds them now (the defaults without a store).
    fn settings(&self) -> AppSettings {
        self.shared
            .store
            .as_ref()
            .map(crate::store::Store::settings)
            .unwrap_or_default()
    }

    /// Starts a refresh, replacing one under way.
    async fn refresh(&mut self) {
        self.start_refresh();
        // Nothing to ask (no usable profiles): done at once.
        if self.tasks.is_empty() {
            self.finish_refresh().await;
        }
    }

    /// The profiles of the recent connections, most recent first, each once.
    fn last_used_profiles(&self) -> Vec<String> {
        let Some(store) = &self.shared.store else {
            return Vec::new();
        };
        let mut profiles: Vec<String> = Vec::new();
        for recent in store.recents() {
            if let Some(profile) = recent.profile
                && !profiles.contains(&profile)
            {
                profiles.push(profile);
            }
        }
        profiles
    }

    fn start_refresh(&mut self) {
        // Counted from here too, so that a refresh that cannot even start (unreadable AWS
        // files) is not retried in a loop.
        self.schedule.ended(tokio::time::Instant::now());
        // Dropping the set aborts the replaced refresh's tasks.
        self.tasks = JoinSet::new();
        let catalog = match ProfileCatalog::load(&self.config.aws_files) {
            Ok(mut catalog) => {
                catalog.share_https_clients(&self.https);
                // Narrowed to the profiles asked for (the others' sections still resolve role
                // chains: the SDK reads them from the files, not from this list).
                if let Some(wanted) = &self.config.profiles {
                    catalog.profiles.retain(|p| wanted.contains(&p.name));
                    catalog.broken.retain(|b| wanted.contains(&b.name));
                }
                Arc::new(catalog)
            }
            Err(error) => {
                self.refresh = None;
                self.publisher().update(|s| {
                    s.refreshing = false;
                    s.warnings = vec![error.to_string()];
                });
                return;
            }
        };
        self.shared.catalog.store(Some(catalog.clone()));
        super::signin::publish_sessions(self.publisher(), &catalog);
        let settings = self.settings();
        let regions = self
            .config
            .regions
            .clone()
            .or_else(|| (!settings.regions.is_empty()).then_some(settings.regions));
        // `AWS_PROFILE` is this run's explicit choice; then the profiles connected through.
        let last_used = self.last_used_profiles();
        let preferred: Vec<&str> = catalog
            .preferred
            .iter()
            .chain(&last_used)
            .map(String::as_str)
            .collect();
        let plan = AccountPlan::new(catalog.profiles.iter().map(|p| p.name.clone()), &preferred);
        for profile in &catalog.profiles {
            let (catalog, profile, calls) = (catalog.clone(), profile.clone(), self.calls.clone());
            let publisher = self.publisher().clone();
            self.tasks.spawn(async move {
                let result = async {
                    let sdk = catalog.sdk_config(&profile).await?;
                    let account = inventory::identify(&sdk, &calls)
                        .await
                        .map_err(|f| format!("Could not identify the account: {f}"))?;
                    super::signin::look_up_alias(&publisher, &account, &sdk, &calls);
                    Ok((account, Box::new(sdk)))
                }
                .await;
                Event::Identified {
                    profile: profile.name,
                    result,
                }
            });
        }
        // Regions listed through profiles that no longer exist go; the others stay (stale
        // or not) until their scan answers.
        let regions_before = self.inventory.len();
        self.inventory
            .retain(|_, region| catalog.get(&region.facts.profile).is_some());
        // The snapshot shows the inventory already unless regions just went or changes are
        // held (a refresh replaced mid-way); at start it shows the cache, whose routes are
        // being worked out, and working out 10,000 of them again here would only compete
        // with the first frames for the CPU.
        let reshow = self.inventory.len() != regions_before
            || !matches!(self.changed, InventoryChange::None);
        self.changed = InventoryChange::None;
        let statuses = profile_statuses(&catalog, &self.cached_accounts);
        let mut warnings = catalog.warnings.clone();
        warnings.extend(self.cache_notice.take());
        let refreshing = !self.tasks.is_empty();
        let inventory = &self.inventory;
        self.publisher().update(|s| {
            if reshow {
                show_inventory(s, inventory);
                s.update_routes(None);
            }
            s.profiles = statuses;
            count_hosts(s);
            s.warnings = warnings;
            s.progress = ScanProgress::default();
            s.refreshing = refreshing;
        });
        self.refresh = Some(Refresh {
            catalog,
            plan,
            regions,
            sdks: HashMap::new(),
            accounts: HashMap::new(),
            unconfirmed: BTreeSet::new(),
            fallbacks: watch::Sender::new(Arc::default()),
        });
    }

    /// Shows what the held batch gathered, and publishes it.
    fn show_held(&mut self) {
        self.show_changes();
        self.held = None;
    }

    /// Shows the inventory's changes in the snapshot: its hosts, and the routes of the
    /// regions that changed.
    fn show_changes(&mut self) {
        let scope = match std::mem::take(&mut self.changed) {
            InventoryChange::None => return,
            InventoryChange::Regions(regions) => Some(regions),
            InventoryChange::All => None,
        };
        let inventory = &self.inventory;
        self.shared.publisher.update(|s| {
            show_inventory(s, inventory);
            s.update_routes(scope.as_ref());
            count_hosts(s);
        });
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Identified { profile, result } => self.identified(profile, result),
            Event::Regions { account, result } => self.regions_listed(account, result),
            Event::Scanned { key, result } => self.scanned(key, result),
        }
    }

    fn identified(&mut self, profile: String, result: Result<(String, Box<SdkConfig>), String>) {
        let Some(refresh) = self.refresh.as_mut() else {
            return;
        };
        let (account, claims) = match result {
            Ok((account, sdk)) => {
                refresh.sdks.insert(profile.clone(), *sdk);
                let claims = refresh.plan.identified(&profile, Some(account.clone()));
                (Ok(account), claims)
            }
            Err(error) => {
                // Its cached hosts stay until some profile scans their account again.
                if let Some(cached) = self.cached_accounts.get(&profile) {
                    refresh.unconfirmed.insert(cached.clone());
                }
                (Err(error), refresh.plan.identified(&profile, None))
            }
        };
        refresh.fallbacks.send_replace(Arc::new(fallbacks(refresh)));
        for (account, _) in claims {
            let candidates = candidates(refresh, &account);
            let calls = self.calls.clone();
            let for_account = account.clone();
            self.tasks.spawn(async move {
                Event::Regions {
                    result: list_regions(candidates, &calls).await,
                    account: for_account,
                }
            });
            refresh.accounts.insert(account, AccountProgress::default());
        }
        let owners: HashMap<String, Option<String>> = refresh
            .catalog
            .profiles
            .iter()
            .map(|p| {
                let owner = refresh
                    .plan
                    .account_of(&p.name)
                    .and_then(|a| refresh.plan.owner(a))
                    .map(str::to_owned);
                (p.name.clone(), owner)
            })
            .collect();
        self.publisher().update(|s| {
            if let Some(status) = s.profiles.iter_mut().find(|p| p.name == profile) {
                match &account {
                    Ok(account) => status.account_id = Some(account.clone()),
                    Err(error) => {
                        status.state = ProfileState::Failed {
                            error: error.clone(),
                        };
                    }
                }
            }
            // A profile whose account another profile scans is done once that is decided.
            for status in &mut s.profiles {
                if let Some(Some(owner)) = owners.get(&status.name)
                    && *owner != status.name
                    && status.state == ProfileState::Loading
                {
                    status.same_account_as = Some(owner.clone());
                    status.state = ProfileState::Ready { hosts: 0 };
                }
            }
            count_hosts(s);
        });
    }

    fn regions_listed(&mut self, account: String, result: Result<Vec<String>, CallFailure>) {
        let Some(refresh) = self.refresh.as_mut() else {
            return;
        };
        let Some(owner) = refresh.plan.owner(&account).map(str::to_owned) else {
            return;
        };
        let configured = refresh.regions.as_ref();
        let mut warning = None;
        let regions: Vec<String> = match result {
            Ok(enabled) => {
                let regions: Vec<String> = enabled
                    .into_iter()
                    .filter(|r| configured.is_none_or(|wanted| wanted.contains(r)))
                    .collect();
                // Regions the account no longer has enabled (or that are no longer wanted).
                self.inventory
                    .retain(|key, _| key.account_id != account || regions.contains(&key.region));
                if regions.is_empty() {
                    warning = Some(format!(
                        "None of the regions to scan ({}) is enabled in account {account}.",
                        configured.map(|r| r.join(", ")).unwrap_or_default()
                    ));
                }
                regions
            }
            Err(failure) => {
                let home = refresh.catalog.get(&owner).map(|p| p.region.clone());
                let fallback: Vec<String> = configured
                    .cloned()
                    .unwrap_or_else(|| home.into_iter().collect());
                warning = Some(format!(
                    "Could not list the regions of account {account}: {failure}. Scanning only \
                     {}; grant ec2:DescribeRegions, or name the regions to scan in the settings.",
                    fallback.join(", ")
                ));
                refresh.unconfirmed.insert(account.clone());
                fallback
            }
        };
        let progress = refresh.accounts.entry(account.clone()).or_default();
        progress.pending = regions.len();
        for region in &regions {
            let owner = candidates(refresh, &account).into_iter().next();
            let fallbacks = refresh.fallbacks.subscribe();
            let calls = self.calls.clone();
            let key = AccountRegion {
                account_id: account.clone(),
                region: region.clone(),
            };
            let known = self
                .inventory
                .get(&key)
                .map(|last| KnownIds::of_region(&last.hosts, &last.facts))
                .unwrap_or_default();
            self.tasks.spawn(async move {
                Event::Scanned {
                    result: scan(owner, fallbacks, &calls, &key, &known).await,
                    key,
                }
            });
        }
        let done = regions.is_empty();
        self.changed = InventoryChange::All;
        self.publisher().update(|s| {
            s.progress.regions_total += regions.len();
            if let Some(status) = s.profiles.iter_mut().find(|p| p.name == owner) {
                status.warnings.extend(warning);
                if done {
                    status.state = ProfileState::Ready { hosts: 0 };
                }
            }
        });
    }

    fn scanned(&mut self, key: AccountRegion, result: Result<RegionScan, CallFailure>) {
        let Some(refresh) = self.refresh.as_mut() else {
            return;
        };
        let Some(owner) = refresh.plan.owner(&key.account_id).map(str::to_owned) else {
            return;
        };
        let progress = refresh.accounts.entry(key.account_id.clone()).or_default();
        progress.pending = progress.pending.saturating_sub(1);
        let (scanner, warnings) = match result {
            Ok(scan) => {
                progress.scanned += 1;
                let scanner = scan.facts.profile.clone();
                self.inventory.insert(
                    key.clone(),
                    ScannedRegion {
                        hosts: scan.hosts,
                        facts: scan.facts,
                    },
                );
                (scanner, scan.warnings)
            }
            Err(failure) => {
                progress.first_error.get_or_insert(failure.message.clone());
                refresh.unconfirmed.insert(key.account_id.clone());
                if let Some(region) = self.inventory.get_mut(&key) {
                    for host in &mut region.hosts {
                        host.stale = true;
                    }
                }
                (owner.clone(), vec![failure.message])
            }
        };
        let finished = (progress.pending == 0).then(|| match progress.scanned {
            0 => ProfileState::Failed {
                error: progress
                    .first_error
                    .clone()
                    .unwrap_or_else(|| "No region could be scanned.".to_owned()),
            },
            _ => ProfileState::Ready { hosts: 0 },
        });
        self.changed.region(key);
        self.publisher().update(|s| {
            s.progress.regions_done += 1;
            if let Some(status) = s.profiles.iter_mut().find(|p| p.name == scanner) {
                status.warnings.extend(warnings);
            }
            if let Some(state) = finished
                && let Some(status) = s.profiles.iter_mut().find(|p| p.name == owner)
            {
                status.state = state;
            }
        });
    }

    /// Everything has answered: drop accounts no profile reaches any more, keep the result on
    /// disk, and publish. The cache is written before the refresh is reported finished, so a
    /// command-line run that exits right after still leaves it for the next start.
    async fn finish_refresh(&mut self) {
        let Some(refresh) = self.refresh.take() else {
            return;
        };
        self.schedule.ended(tokio::time::Instant::now());
        let accounts: BTreeMap<String, String> = refresh
            .catalog
            .profiles
            .iter()
            .filter_map(|p| Some((p.name.clone(), refresh.plan.account_of(&p.name)?.to_owned())))
            .collect();
        let reached: BTreeSet<&String> = accounts.values().collect();
        self.inventory.retain(|key, _| {
            reached.contains(&key.account_id) || refresh.unconfirmed.contains(&key.account_id)
        });
        self.cached_accounts = accounts.clone();
        let warning = match self.config.cache_file.clone() {
            Some(path) => save_cache(path, accounts, &self.inventory).await,
            None => None,
        };
        let inventory = &self.inventory;
        self.publisher().update(|s| {
            show_inventory(s, inventory);
            s.update_routes(None);
            for status in &mut s.profiles {
                // Only a task that panicked leaves a profile waiting: say so, never hang.
                if status.state == ProfileState::Loading {
                    status.state = ProfileState::Failed {
                        error: "the scan stopped unexpectedly; refresh to try again".to_owned(),
                    };
                }
            }
            count_hosts(s);
            s.warnings.extend(warning);
            s.refreshing = false;
        });
    }
}

/// Writes the inventory to the cache at `path`; the warning to show when that fails.
async fn save_cache(
    path: std::path::PathBuf,
    accounts: BTreeMap<String, String>,
    inventory: &Inventory,
) -> Option<String> {
    let regions = inventory
        .iter()
        .map(|(key, region)| CachedRegion {
            account_id: key.account_id.clone(),
            region: key.region.clone(),
            facts: region.facts.clone(),
            hosts: cached_region_hosts(&region.hosts),
        })
        .collect();
    let cache = InventoryCache::new(accounts, regions);
    let saved = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || cache.save(&path)).await
    };
    let error = match saved {
        Ok(Ok(())) => return None,
        Ok(Err(error)) => error.to_string(),
        Err(panicked) => panicked.to_string(),
    };
    let warning = format!(
        "Could not save the host list to {}: {error}. The next start shows no hosts until its \
         scan finishes; check that the directory is writable.",
        path.display()
    );
    tracing::warn!("{warning}");
    Some(warning)
}

/// A region's hosts as the cache keeps them: not stale (staleness is decided when the cache is
/// read).
fn cached_region_hosts(hosts: &[Host]) -> Vec<Host> {
    hosts
        .iter()
        .map(|h| Host {
            stale: false,
            ..h.clone()
        })
        .collect()
}

/// The profiles that may scan `account`, with their SDK configurations: its owner first.
fn candidates(refresh: &Refresh, account: &str) -> Vec<(String, SdkConfig)> {
    refresh
        .plan
        .profiles_of(account)
        .into_iter()
        .filter_map(|p| Some((p.clone(), refresh.sdks.get(&p)?.clone())))
        .collect()
}

/// The profiles of every account known so far, for the scans' fallbacks.
fn fallbacks(refresh: &Refresh) -> Fallbacks {
    let accounts: BTreeSet<&str> = refresh
        .sdks
        .keys()
        .filter_map(|p| refresh.plan.account_of(p))
        .collect();
    Fallbacks {
        by_account: accounts
            .into_iter()
            .map(|account| (account.to_owned(), candidates(refresh, account)))
            .collect(),
        settled: refresh.plan.settled(),
    }
}

/// Asks each candidate in turn while the answer is a missing permission; the first failure is
/// the one reported.
async fn with_fallback<T, F>(
    candidates: Vec<(String, SdkConfig)>,
    mut attempt: impl FnMut(String, SdkConfig) -> F,
) -> Result<T, CallFailure>
where
    F: std::future::Future<Output = Result<T, CallFailure>>,
{
    let mut first_failure = None;
    for (profile, sdk) in candidates {
        match attempt(profile, sdk).await {
            Ok(found) => return Ok(found),
            Err(failure) => {
                let denied = failure.access_denied;
                let first = first_failure.get_or_insert(failure);
                if !denied {
                    return Err(first.clone());
                }
            }
        }
    }
    Err(first_failure.unwrap_or_else(|| CallFailure {
        message: "no profile of the account could be used".to_owned(),
        access_denied: false,
    }))
}

async fn list_regions(
    candidates: Vec<(String, SdkConfig)>,
    calls: &CallBudget,
) -> Result<Vec<String>, CallFailure> {
    with_fallback(candidates, |_, sdk| async move {
        inventory::enabled_regions(&sdk, calls).await
    })
    .await
}

/// Scans through the account's owner, then, while parts are refused for lack of permission,
/// through the account's other profiles in rank order as STS makes them known
/// ([`next_fallback`]), until one reads everything; keeps the broadest result: the one with the
/// fewest parts refused (the earlier profile on a tie). A read-only role that may list
/// instances but not security groups still shows the hosts when it is the only profile; when
/// an admin role reaches the same account, its scan wins. A failure that is not a missing
/// permission stops the search, as another profile would meet it too.
async fn scan(
    owner: Option<(String, SdkConfig)>,
    mut fallbacks: watch::Receiver<Arc<Fallbacks>>,
    calls: &CallBudget,
    key: &AccountRegion,
    known: &KnownIds,
) -> Result<RegionScan, CallFailure> {
    let mut broadest: Option<RegionScan> = None;
    let mut first_failure: Option<CallFailure> = None;
    let mut tried = Vec::new();
    let mut next = owner;
    while let Some((profile, sdk)) = next {
        let scanned =
            inventory::scan_region(&sdk, calls, &profile, &key.account_id, &key.region, known)
                .await;
        tried.push(profile);
        match scanned {
            Ok(scan) if scan.denied == 0 => return Ok(scan),
            Ok(scan) => {
                if broadest
                    .as_ref()
                    .is_none_or(|best| scan.denied < best.denied)
                {
                    broadest = Some(scan);
                }
            }
            Err(failure) => {
                let denied = failure.access_denied;
                first_failure.get_or_insert(failure);
                if !denied {
                    break;
                }
            }
        }
        next = next_fallback(&mut fallbacks, &key.account_id, &tried).await;
    }
    broadest.ok_or_else(|| {
        first_failure.unwrap_or_else(|| CallFailure {
            message: "no profile of the account could be used".to_owned(),
            access_denied: false,
        })
    })
}

/// The next profile of `account` not `tried`, waiting (up to [`FALLBACK_WAIT`]) while other
/// profiles have yet to answer STS; `None` when no other profile reaches the account.
async fn next_fallback(
    fallbacks: &mut watch::Receiver<Arc<Fallbacks>>,
    account: &str,
    tried: &[String],
) -> Option<(String, SdkConfig)> {
    let wait = async {
        loop {
            {
                let known = fallbacks.borrow_and_update();
                let untried = known
                    .by_account
                    .get(account)
                    .and_then(|profiles| profiles.iter().find(|(p, _)| !tried.contains(p)));
                if let Some(found) = untried {
                    return Some(found.clone());
                }
                if known.settled {
                    return None;
                }
            }
            // The refresh ended or was replaced: nobody will answer.
            fallbacks.changed().await.ok()?;
        }
    };
    tokio::time::timeout(FALLBACK_WAIT, wait)
        .await
        .ok()
        .flatten()
}

/// Every profile, usable ones loading and broken ones failed, in name order; accounts from
/// the disk cache until STS answers.
fn profile_statuses(
    catalog: &ProfileCatalog,
    cached_accounts: &BTreeMap<String, String>,
) -> Vec<ProfileStatus> {
    let mut statuses: Vec<ProfileStatus> = catalog
        .profiles
        .iter()
        .map(|p| ProfileStatus {
            name: p.name.clone(),
            region: Some(p.region.clone()),
            account_id: cached_accounts.get(&p.name).cloned(),
            same_account_as: None,
            state: ProfileState::Loading,
            warnings: Vec::new(),
        })
        .chain(catalog.broken.iter().map(|b| ProfileStatus {
            name: b.name.clone(),
            region: None,
            account_id: None,
            same_account_as: None,
            state: ProfileState::Failed {
                error: b.error.clone(),
            },
            warnings: Vec::new(),
        }))
        .collect();
    statuses.sort_by(|a, b| a.name.cmp(&b.name));
    statuses
}

/// Sets each ready profile's host count to the hosts listed through it.
fn count_hosts(s: &mut Snapshot) {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for host in s.hosts.iter() {
        *counts.entry(host.profile.as_str()).or_default() += 1;
    }
    for status in &mut s.profiles {
        if let ProfileState::Ready { hosts } = &mut status.state {
            *hosts = counts.get(status.name.as_str()).copied().unwrap_or(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Listing;

    fn host(profile: &str, region: &str, name: Option<&str>, id: &str) -> Host {
        Host {
            name: name.map(str::to_owned),
            ..Host::bare(profile, &format!("account-of-{profile}"), region, id)
        }
    }

    fn names(hosts: &[Host]) -> Vec<String> {
        hosts
            .iter()
            .map(|h| format!("{}/{}/{}", h.profile, h.region, h.display_name()))
            .collect()
    }

    fn cached(hosts: Vec<Host>) -> CachedRegion {
        CachedRegion {
            account_id: hosts[0].account_id.clone(),
            region: hosts[0].region.clone(),
            facts: RegionFacts {
                profile: hosts[0].profile.clone(),
                eic_endpoints: Listing::Listed(Vec::new()),
                security_groups: Listing::Listed(Vec::new()),
                ssm: Listing::Listed(Vec::new()),
            },
            hosts,
        }
    }

    #[test]
    fn cached_hosts_come_out_in_the_snapshot_s_order_marked_stale() {
        // Regions in the cache's (account) order, one of them not sorted inside, one
        // written sorted.
        let regions = vec![
            cached(vec![
                host("prod", "us-east-1", Some("web-2"), "i-2"),
                host("prod", "us-east-1", None, "i-0"),
                host("prod", "us-east-1", Some("db"), "i-3"),
            ]),
            cached(vec![
                host("admin", "us-west-2", Some("a"), "i-4"),
                host("admin", "us-west-2", Some("b"), "i-5"),
            ]),
            cached(vec![host("admin", "eu-west-1", Some("z"), "i-6")]),
        ];
        let (hosts, facts) = cached_hosts(regions);
        assert_eq!(
            names(&hosts),
            [
                "admin/eu-west-1/z",
                "admin/us-west-2/a",
                "admin/us-west-2/b",
                "prod/us-east-1/db",
                "prod/us-east-1/i-0",
                "prod/us-east-1/web-2",
            ]
        );
        assert!(hosts.iter().all(|h| h.stale));
        assert_eq!(facts.len(), 3);

        // Runs that overlap (one profile's hosts spread over two runs) are still ordered.
        let overlapping = vec![
            vec![
                host("a", "r", Some("x"), "i-1"),
                host("b", "r", Some("y"), "i-2"),
            ],
            vec![host("a", "r", Some("z"), "i-3")],
        ];
        assert_eq!(
            names(&in_listing_order(overlapping)),
            ["a/r/x", "a/r/z", "b/r/y"]
        );
    }

    #[test]
    fn the_cache_keeps_hosts_not_stale() {
        let mut stale = host("p", "r", Some("b"), "i-1");
        stale.stale = true;
        let kept = cached_region_hosts(&[stale, host("p", "r", Some("a"), "i-2")]);
        assert_eq!(names(&kept), ["p/r/b", "p/r/a"]);
        assert!(kept.iter().all(|h| !h.stale));
    }
}
