//! The engine: the one façade the app talks to.
//!
//! It owns a multi-thread tokio runtime on its own threads and does all network work there. The
//! app sends [`Command`]s and reads the latest [`Snapshot`]; the engine calls the change hook after
//! every published change, which the GUI uses to request a repaint, so an idle app does no work.
//!
//! The CLI, which has no event loop, uses the `*_blocking` methods instead of commands: they run
//! one operation on the engine's runtime and return its result.
//!
//! With a cache file configured, the engine starts from the last inventory on disk: the
//! snapshot after the first (which says [`Snapshot::loading_cache`]) lists those hosts, marked
//! stale, before any scan answers, and each is replaced as its region is scanned again.

mod connect;
mod connect_rdp;
mod handle;
mod launch;
mod plan;
mod recents;
mod refresh;
mod schedule;
mod signin;
mod snapshot;

pub use connect_rdp::RDP_PORT;
pub use handle::EngineHandle;
pub use launch::{ConnectHow, FIRST_CONNECTION_WAIT, KEY_KEPT};
pub use signin::{MfaRequest, SignInState, SsoSessionStatus};
pub use snapshot::{NOTICES_KEPT, Notice, NoticeAction, NoticeLevel};
pub use snapshot::{ProfileState, ProfileStatus, ScanProgress, Snapshot, TUNNEL_EVENTS_KEPT};

use crate::audit::{AuditLog, TunnelAudit};
use crate::eic::EphemeralKey;
use crate::inventory::HostKey;
use crate::profiles::{AwsFiles, ProfileCatalog};
use crate::ssm::proto::TerminalSize;
use crate::ssm::session::ShellExit;
use crate::tunnel::{TunnelId, TunnelSettings, Tunnels};
use arc_swap::ArcSwapOption;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// What the engine needs to start.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub aws_files: AwsFiles,
    /// The regions to scan in every account (those of them the account has enabled), as
    /// `bastionless list --region` asks; `None` scans those the store's settings name, or
    /// every enabled region.
    pub regions: Option<Vec<String>>,
    /// The profiles that scan, as `bastionless proxy HOST --profile P` asks (one account's
    /// scan instead of every profile's); `None` scans with every profile.
    pub profiles: Option<Vec<String>>,
    /// Where the last inventory is kept between runs
    /// ([`InventoryCache::default_path`](crate::inventory::InventoryCache::default_path) for
    /// the app); `None` keeps none.
    pub cache_file: Option<PathBuf>,
    /// The audit log of ended tunnels and sessions ([`AuditLog::default_path`] for the app);
    /// `None` keeps none.
    pub audit_file: Option<PathBuf>,
    /// Where each [`Command::Connect`] is remembered as a recent connection (the app's and the
    /// CLI's store); `None` remembers none. Its app settings are read at each refresh: the
    /// regions to scan (when `regions` is `None`) and the interval of the periodic refresh.
    pub store: Option<crate::store::Store>,
    /// How long one minute of `refresh_interval_minutes` lasts: 60 s. Tests shorten it to see
    /// periodic refreshes without waiting minutes.
    pub minute: Duration,
}

impl EngineConfig {
    /// Every enabled region, and no disk cache.
    pub fn new(aws_files: AwsFiles) -> Self {
        Self {
            aws_files,
            regions: None,
            profiles: None,
            cache_file: None,
            audit_file: None,
            store: None,
            minute: Duration::from_secs(60),
        }
    }
}

/// What the engine's command loop starts from: the disk cache's inventory, if any
/// ([`refresh::load_cache`]).
struct Start {
    inventory: refresh::Inventory,
    cached_accounts: BTreeMap<String, String>,
    /// Why the cache could not be used.
    cache_notice: Option<String>,
}

/// Works out the routes of the hosts the first snapshot shows from the disk cache, and
/// publishes them. Worked out on a copy, so the snapshot is not held while they are; routes a
/// refresh has worked out meanwhile are newer and win.
fn route_cached_hosts(publisher: &refresh::Publisher) {
    let shown = publisher.current();
    let mut routed = Snapshot {
        hosts: shown.hosts.clone(),
        regions: shown.regions.clone(),
        ..Snapshot::default()
    };
    drop(shown);
    routed.update_routes(None);
    publisher.update(|s| s.add_routes(&routed.hosts, Arc::unwrap_or_clone(routed.routes)));
}

/// Which way a tunnel reaches its host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum RouteChoice {
    /// The best route the host's verdicts allow: EIC before Session Manager when both are
    /// ready, as the route ranking says.
    #[default]
    Auto,
    /// Through an EC2 Instance Connect Endpoint.
    Eic,
    /// Through Session Manager.
    Ssm,
}

/// What the app asks the engine to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Re-read the AWS files and scan every profile again (a refresh under way is replaced).
    Refresh,
    /// Open a loopback listener tunnelled to `remote_port` on the instance; it appears in
    /// [`Snapshot::tunnels`] at once (connecting), then with its local address, or failed with
    /// the reason.
    OpenTunnel {
        host: HostKey,
        remote_port: u16,
        /// A port on 127.0.0.1; any free port when `None`.
        local_port: Option<u16>,
        route: RouteChoice,
    },
    /// Close a tunnel (its listener and connections), or dismiss a finished one.
    CloseTunnel(TunnelId),
    /// Connect to a host the way a user asked: open the tunnel, prepare credentials, launch the
    /// system client. Progress and failures show in the snapshot (the tunnel and
    /// [`Snapshot::notices`]).
    ///
    /// `route`: `Auto` takes the host's preferred route from its settings, else the best
    /// route; `Eic`/`Ssm` take that route, or fail with a notice saying why it cannot be used.
    Connect {
        host: HostKey,
        how: ConnectHow,
        route: RouteChoice,
    },
    /// Use these settings for connections opened from now on.
    ConfigureTunnels(TunnelSettings),
    /// Sign in to the SSO session `sso_session` with the device flow: the browser opens at the
    /// verification URL, the code shows in [`Snapshot::sso_sessions`], and a refresh follows.
    SignIn { sso_session: String },
    /// Answers [`Snapshot::mfa_request`] with the device's current code (empty declines).
    SupplyMfaCode { code: String },
    /// Turns account discovery on or off for an SSO session: on, every account and role the
    /// session grants becomes a profile (listed now and after each sign-in); a refresh follows.
    DiscoverAccounts { sso_session: String, enabled: bool },
}

/// A function the engine calls after each published change.
pub type ChangeHook = Box<dyn Fn() + Send + Sync>;

/// What the command loop and the blocking helpers share.
struct Shared {
    publisher: refresh::Publisher,
    /// The profiles of the latest refresh; `None` until the first refresh has read the files.
    catalog: ArcSwapOption<ProfileCatalog>,
    tunnels: Tunnels,
    /// The files the profiles come from, for clients started in a terminal.
    aws_files: AwsFiles,
    audit: Arc<TunnelAudit>,
    /// Lets background work queue commands (a refresh after a sign-in) without keeping the
    /// command loop alive.
    commands: mpsc::WeakUnboundedSender<Command>,
    /// Where `Command::SupplyMfaCode` answers go.
    mfa: signin::MfaFromApp,
    /// Where connections are remembered ([`EngineConfig::store`]).
    store: Option<crate::store::Store>,
}

/// The running engine. Dropping it stops all its work.
pub struct Engine {
    runtime: Option<tokio::runtime::Runtime>,
    commands: mpsc::UnboundedSender<Command>,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    on_change: Arc<ArcSwapOption<ChangeHook>>,
    shared: Arc<Shared>,
}

impl Engine {
    /// Starts the runtime and begins the first inventory refresh at once.
    pub fn start(config: EngineConfig) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("bastionless-engine")
            .enable_all()
            .build()?;
        let (commands, command_rx) = mpsc::unbounded_channel();
        // The first refresh is queued below, so the first snapshot already says one is under
        // way. The cache is read on the runtime (file I/O stays off the caller's thread, the
        // UI's in the app), and its hosts follow in the next snapshot; their routes (thousands
        // of assessments) in the one after, so the first frame need not wait for them.
        let first = Snapshot {
            refreshing: true,
            loading_cache: config.cache_file.is_some(),
            ..Snapshot::default()
        };
        let (publish, snapshots) = watch::channel(Arc::new(first));
        let on_change: Arc<ArcSwapOption<ChangeHook>> = Arc::default();
        let publisher = refresh::Publisher::new(publish, on_change.clone());
        let audit = Arc::new(TunnelAudit::new(
            config.audit_file.clone().map(AuditLog::at),
        ));
        // The saved EIC connection cap applies from the start, not only once Settings are saved.
        let tunnel_settings = config
            .store
            .as_ref()
            .map_or_else(TunnelSettings::default, |store| {
                TunnelSettings::default().with_app_settings(&store.settings())
            });
        let tunnels = Tunnels::start(runtime.handle(), tunnel_settings, {
            let publisher = publisher.clone();
            let audit = audit.clone();
            move |report| {
                audit.observe(&report);
                publisher.tunnels(report)
            }
        });
        let mfa = signin::MfaFromApp::new(publisher.clone());
        let shared = Arc::new(Shared {
            publisher,
            catalog: ArcSwapOption::empty(),
            tunnels,
            aws_files: config.aws_files.clone(),
            audit,
            commands: commands.downgrade(),
            mfa,
            store: config.store.clone(),
        });
        crate::profiles::set_default_mfa_prompt(Arc::new(shared.mfa.clone()));
        runtime.spawn(refresh::run(config, command_rx, shared.clone()));
        let _ = commands.send(Command::Refresh);
        Ok(Self {
            runtime: Some(runtime),
            commands,
            snapshots,
            on_change,
            shared,
        })
    }

    /// Queues a command; never blocks.
    pub fn send(&self, command: Command) {
        // The receiver lives as long as the runtime, which lives as long as `self`.
        let _ = self.commands.send(command);
    }

    /// The latest snapshot. Cheap: a read lock and an `Arc` clone.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshots.borrow().clone()
    }

    /// Sets the function called after every change (the GUI's `request_repaint`).
    pub fn on_change(&self, hook: impl Fn() + Send + Sync + 'static) {
        self.on_change.store(Some(Arc::new(Box::new(hook))));
    }

    /// Blocks the calling thread until a snapshot satisfies `done` or `timeout` passes, and returns
    /// the latest snapshot either way. For the CLI; must not be called from the engine's runtime.
    pub fn wait_until(&self, timeout: Duration, done: impl Fn(&Snapshot) -> bool) -> Arc<Snapshot> {
        let mut rx = self.snapshots.clone();
        // The timer must be created inside the runtime, so the whole future is built there.
        let _ =
            self.block_on(async { tokio::time::timeout(timeout, rx.wait_for(|s| done(s))).await });
        self.snapshot()
    }

    /// Opens a listener tunnel to `remote_port` on `host` (see [`Command::OpenTunnel`]) and
    /// returns its 127.0.0.1 address once bound. The tunnel keeps serving on the engine's runtime
    /// until closed or the engine is dropped. For the CLI; not from the engine's runtime.
    pub fn open_tunnel_blocking(
        &self,
        host: &HostKey,
        remote_port: u16,
        local_port: Option<u16>,
        route: RouteChoice,
    ) -> Result<SocketAddr, String> {
        self.block_on(connect::open_listener(
            &self.shared,
            host,
            remote_port,
            local_port,
            route,
        ))
    }

    /// Carries this process's stdin and stdout to `remote_port` on `host` through one tunnel
    /// connection (for `ssh -o ProxyCommand`), and returns when it ends. For the CLI; not from
    /// the engine's runtime.
    pub fn proxy_stdio_blocking(
        &self,
        host: &HostKey,
        remote_port: u16,
        route: RouteChoice,
    ) -> Result<(), String> {
        self.block_on(connect::proxy_stdio(&self.shared, host, remote_port, route))
    }

    /// Pushes a fresh Ed25519 key for `os_user` to `host` with EC2 Instance Connect; ssh has 60
    /// seconds to use it. Dropping the key deletes its file. For the CLI; not from the engine's
    /// runtime.
    pub fn push_ssh_key_blocking(
        &self,
        host: &HostKey,
        os_user: &str,
    ) -> Result<EphemeralKey, String> {
        self.block_on(connect::push_ssh_key(&self.shared, host, os_user))
    }

    /// Opens a listener tunnel to `remote_port` on `host`, or on `remote_host` as the instance
    /// reaches it (Session Manager's `AWS-StartPortForwardingSessionToRemoteHost`), and returns
    /// its id and 127.0.0.1 address once bound. For the CLI; not from the engine's runtime.
    pub fn open_forward_blocking(
        &self,
        host: &HostKey,
        remote_port: u16,
        local_port: Option<u16>,
        remote_host: Option<String>,
        route: RouteChoice,
    ) -> Result<(TunnelId, SocketAddr), String> {
        self.block_on(connect::open_forward(
            &self.shared,
            host,
            remote_port,
            local_port,
            remote_host,
            route,
        ))
    }

    /// Runs a Session Manager shell on `host` between `stdin`/`stdout` and the instance until
    /// the shell exits, sending the terminal sizes `sizes` reports; records it in the audit
    /// log. For the CLI; not from the engine's runtime.
    pub fn shell_blocking<R, W>(
        &self,
        host: &HostKey,
        stdin: R,
        stdout: W,
        sizes: tokio::sync::watch::Receiver<TerminalSize>,
    ) -> Result<ShellExit, String>
    where
        R: tokio::io::AsyncRead + Unpin,
        W: tokio::io::AsyncWrite + Unpin,
    {
        self.block_on(connect::run_shell(&self.shared, host, stdin, stdout, sizes))
    }

    /// The route a connection to `remote_port` on `host` would take: `route` itself, or the
    /// best one for `Auto`, checked as far as the inventory allows (an EIC route needs an
    /// endpoint in the host's VPC). Connects to nothing.
    pub fn preflight(
        &self,
        host: &HostKey,
        remote_port: u16,
        route: RouteChoice,
    ) -> Result<RouteChoice, String> {
        connect::preflight(&self.shared, host, remote_port, route)
    }

    /// The settings tunnels opened from now on use (the last [`Command::ConfigureTunnels`]).
    pub fn tunnel_settings(&self) -> TunnelSettings {
        self.shared.tunnels.settings()
    }

    /// Where this engine records ended tunnels and sessions, if anywhere.
    pub fn audit_log(&self) -> Option<&std::path::Path> {
        self.shared.audit.path()
    }

    fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime
            .as_ref()
            .expect("the runtime lives until the engine is dropped")
            .block_on(future)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // The last report may be a quarter of a second old: count the bytes up to now.
        self.shared.audit.observe(&crate::tunnel::TunnelReport {
            tunnels: self.shared.tunnels.statuses_now(),
            events: Vec::new(),
        });
        self.shared.audit.finish_all("the app exited");
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tunnel::TunnelState;

    /// An engine over empty AWS files, with its first refresh done.
    fn idle_engine(dir: &tempfile::TempDir) -> Engine {
        let files = AwsFiles::at(dir.path().join("config"), dir.path().join("credentials"));
        let engine = Engine::start(EngineConfig::new(files)).unwrap();
        let snapshot = engine.wait_until(Duration::from_secs(10), |s| !s.refreshing);
        assert!(!snapshot.refreshing);
        engine
    }

    fn unknown_host() -> HostKey {
        HostKey {
            account_id: "111122223333".into(),
            region: "us-east-1".into(),
            instance_id: "i-0123456789abcdef0".into(),
        }
    }

    #[test]
    fn a_tunnel_to_a_host_nobody_sees_fails_with_the_reason_and_can_be_dismissed() {
        let dir = tempfile::tempdir().unwrap();
        let engine = idle_engine(&dir);
        let error = engine
            .open_tunnel_blocking(&unknown_host(), 22, None, RouteChoice::Auto)
            .unwrap_err();
        assert!(error.contains("is not in the host list"), "{error}");

        engine.send(Command::OpenTunnel {
            host: unknown_host(),
            remote_port: 3389,
            local_port: None,
            route: RouteChoice::Eic,
        });
        let snapshot = engine.wait_until(Duration::from_secs(10), |s| {
            s.tunnels.len() == 2 && s.tunnels.iter().all(|t| t.is_finished())
        });
        let tunnel = snapshot
            .tunnels
            .iter()
            .find(|t| t.target.remote_port == 3389)
            .expect("the command's tunnel is listed");
        assert!(
            matches!(&tunnel.state, TunnelState::Failed { reason } if reason.contains("i-0123456789abcdef0")),
            "{tunnel:?}"
        );
        assert_eq!(tunnel.target.host_name, "i-0123456789abcdef0");

        engine.send(Command::CloseTunnel(tunnel.id));
        let id = tunnel.id;
        let snapshot = engine.wait_until(Duration::from_secs(10), |s| {
            s.tunnels.iter().all(|t| t.id != id)
        });
        assert_eq!(snapshot.tunnels.len(), 1);
    }

    #[test]
    fn cached_hosts_show_in_the_first_snapshot_and_their_routes_follow() {
        use crate::inventory::{
            CachedRegion, Host, InstanceState, InventoryCache, Platform, RegionFacts,
        };
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("inventory.bin");
        let key = unknown_host();
        let host = Host {
            instance_id: key.instance_id.clone(),
            name: Some("web-1".into()),
            tags: Default::default(),
            state: InstanceState::Running,
            platform: Platform::Linux,
            private_ip: Some("10.0.0.1".into()),
            public_ip: None,
            vpc_id: Some("vpc-a".into()),
            subnet_id: None,
            availability_zone: None,
            key_name: None,
            image: None,
            security_group_ids: Vec::new(),
            profile: "dev".into(),
            account_id: key.account_id.clone(),
            region: key.region.clone(),
            stale: false,
        };
        let region = CachedRegion {
            account_id: key.account_id.clone(),
            region: key.region.clone(),
            facts: RegionFacts {
                profile: "dev".into(),
                eic_endpoints: crate::inventory::Listing::Listed(Vec::new()),
                security_groups: crate::inventory::Listing::Listed(Vec::new()),
                ssm: crate::inventory::Listing::Listed(Vec::new()),
            },
            hosts: vec![host],
        };
        let accounts = BTreeMap::from([("dev".to_owned(), key.account_id.clone())]);
        InventoryCache::new(accounts, vec![region])
            .save(&cache)
            .unwrap();
        // Nothing listens on the discard port: the scan fails, and the cached hosts of the
        // profile's account stay, stale.
        let config = dir.path().join("config");
        let credentials = dir.path().join("credentials");
        std::fs::write(
            &config,
            "[profile dev]\nregion = us-east-1\nendpoint_url = http://127.0.0.1:9\n",
        )
        .unwrap();
        std::fs::write(
            &credentials,
            "[dev]\naws_access_key_id = AKIDTEST\naws_secret_access_key = not-a-secret\n",
        )
        .unwrap();
        let files = AwsFiles::at(config, credentials);
        let engine = Engine::start(EngineConfig {
            cache_file: Some(cache),
            ..EngineConfig::new(files)
        })
        .unwrap();
        let first = engine.wait_until(Duration::from_secs(10), |s| !s.loading_cache);
        assert_eq!(first.hosts.len(), 1);
        assert!(first.hosts[0].stale, "marked stale until scanned again");
        let routed = engine.wait_until(Duration::from_secs(10), |s| s.routes.len() == 1);
        let report = routed
            .route(&routed.hosts[0])
            .expect("the cached host's route");
        // The cached facts say the VPC has no endpoint and the agent is not registered.
        assert!(report.best().is_none(), "{report:?}");
        assert!(routed.hosts[0].stale);
    }

    #[test]
    fn keys_and_stdio_for_a_host_nobody_sees_fail_before_any_call() {
        let dir = tempfile::tempdir().unwrap();
        let engine = idle_engine(&dir);
        let error = engine
            .push_ssh_key_blocking(&unknown_host(), "ec2-user")
            .unwrap_err();
        assert!(error.contains("is not in the host list"), "{error}");
        let error = engine
            .proxy_stdio_blocking(&unknown_host(), 22, RouteChoice::Ssm)
            .unwrap_err();
        assert!(error.contains("is not in the host list"), "{error}");
    }
}
