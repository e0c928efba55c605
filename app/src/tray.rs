//! The desktop side of the app beyond the window: the tray icon and menu, the single-instance
//! listener, close-to-tray, and following the store as the CLI changes it.
//!
//! [`prepare`] runs in `cli::run` before the engine starts (so a second launch hands over and
//! exits without scanning AWS); `ui::run` then calls [`Desktop::start`] and [`Desktop::wrap`],
//! which puts [`WithDesktop`] around the window's app. That wrapper works in `App::logic`,
//! which eframe also calls while the window is hidden in the tray.
//!
//! The tray runs on a thread of its own (its menu types are not `Send`): it rebuilds the
//! [`TrayMenu`] model from each new snapshot and each store change, and touches the native menu
//! only when the model differs. On Linux tray-icon's `ksni` backend registers a
//! StatusNotifierItem on the session bus; with no session bus (CI, a bare X server) that fails,
//! and the app runs without a tray and says so in the log. With a bus but no StatusNotifier host
//! yet, the item is registered and shows once a panel with a tray appears.

mod menu;

pub use menu::{MenuNode, TrayAction, TrayIcon, TrayMenu};

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use bastionless_core::engine::{Command, Engine, EngineHandle, Snapshot};
use bastionless_core::store::{Store, StoreWatch};
use bastionless_core::tunnel::TunnelState;
use tray_icon::menu::{Menu, MenuEvent, MenuId, MenuItem, PredefinedMenuItem, Submenu};
use tray_icon::{MouseButton, MouseButtonState, TrayIconBuilder, TrayIconEvent};

use crate::single_instance::{Instance, Request};

const ICON_IDLE: &[u8] = include_bytes!("../../assets/tray-idle-32.png");
const ICON_ACTIVE: &[u8] = include_bytes!("../../assets/tray-active-32.png");
const ICON_FAILED: &[u8] = include_bytes!("../../assets/tray-error-32.png");

/// How often the store's files are checked for changes made by the CLI.
const STORE_POLL: Duration = Duration::from_secs(2);
/// How long Quit waits for tunnels to close cleanly before the window goes anyway.
const QUIT_WAIT: Duration = Duration::from_secs(3);
/// How long to wait for the tray to register before going on without it.
const TRAY_START_WAIT: Duration = Duration::from_secs(5);

/// What the tray or a later launch asks of the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppRequest {
    ShowWindow,
    /// Close every tunnel, then quit.
    Quit,
}

/// What `cli::run` found out before the engine started, for [`Desktop::start`].
struct Prepared {
    instance: Option<Instance>,
    store_dir: Option<PathBuf>,
}

/// Set once by [`prepare`]: the window is opened through `ui::run(engine)`, which only takes
/// the engine.
static PREPARED: Mutex<Option<Prepared>> = Mutex::new(None);

/// Hands the single-instance claim and the store directory to the window about to open.
pub fn prepare(instance: Option<Instance>, store_dir: Option<PathBuf>) {
    *PREPARED.lock().unwrap_or_else(|e| e.into_inner()) = Some(Prepared {
        instance,
        store_dir,
    });
}

/// Sends requests to the window and wakes it (also while hidden).
#[derive(Clone)]
struct ToWindow {
    requests: mpsc::Sender<AppRequest>,
    ctx: Arc<OnceLock<egui::Context>>,
}

impl ToWindow {
    fn send(&self, request: AppRequest) {
        let _ = self.requests.send(request);
        if let Some(ctx) = self.ctx.get() {
            ctx.request_repaint();
        }
    }
}

/// The tray, the instance listener and the store watch, for as long as the window lives.
pub struct Desktop {
    engine: EngineHandle,
    store: Option<Store>,
    tray: Option<TrayThread>,
    requests: mpsc::Receiver<AppRequest>,
    ctx: Arc<OnceLock<egui::Context>>,
    _watch: Option<StoreWatch>,
}

impl Desktop {
    /// Starts the tray and the listeners. Without [`prepare`] (a window built by a test) there
    /// is no store and no tray: the window behaves as a plain window.
    pub fn start(engine: &Engine) -> Self {
        let engine = engine.handle();
        let (to_window, requests) = mpsc::channel();
        let ctx = Arc::new(OnceLock::new());
        let to_window = ToWindow {
            requests: to_window,
            ctx: ctx.clone(),
        };
        let prepared = PREPARED.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(Prepared {
            instance,
            store_dir,
        }) = prepared
        else {
            return Self {
                engine,
                store: None,
                tray: None,
                requests,
                ctx,
                _watch: None,
            };
        };
        if let Some(instance) = instance {
            let to_window = to_window.clone();
            instance.serve(move |Request::Show| to_window.send(AppRequest::ShowWindow));
        }
        let store = store_dir.and_then(|dir| match Store::open(&dir) {
            Ok(store) => {
                for problem in store.problems() {
                    tracing::warn!("{problem}");
                }
                Some(store)
            }
            Err(error) => {
                tracing::warn!("favorites and settings are unavailable: {error}");
                None
            }
        });
        let tray = store
            .as_ref()
            .and_then(|store| TrayThread::start(engine.clone(), store.clone(), to_window));
        let watch = match (&store, &tray) {
            (Some(store), Some(tray)) => {
                let events = tray.events.clone();
                Some(store.watch(STORE_POLL, move || {
                    let _ = events.send(TrayEvent::Refresh);
                }))
            }
            _ => None,
        };
        Self {
            engine,
            store,
            tray,
            requests,
            ctx,
            _watch: watch,
        }
    }

    /// The window's app with the desktop behaviour around it.
    /// The store the tray follows, for the window's favorites (the same copy, so both agree).
    pub fn store(&self) -> Option<Store> {
        self.store.clone()
    }

    pub fn wrap(self, app: Box<dyn eframe::App>, ctx: &egui::Context) -> Box<dyn eframe::App> {
        let _ = self.ctx.set(ctx.clone());
        Box::new(WithDesktop {
            app,
            desktop: self,
            quitting: None,
        })
    }
}

/// The window's app, plus: show on request, close to the tray as the setting says, and quit
/// only after closing the tunnels.
pub struct WithDesktop {
    app: Box<dyn eframe::App>,
    desktop: Desktop,
    /// When Quit was chosen; the window closes once tunnels are closed or [`QUIT_WAIT`] passed.
    quitting: Option<Instant>,
}

impl WithDesktop {
    fn start_quit(&mut self, snapshot: &Snapshot) {
        for tunnel in snapshot.tunnels.iter().filter(|t| is_live(&t.state)) {
            self.desktop.engine.send(Command::CloseTunnel(tunnel.id));
        }
        self.quitting = Some(Instant::now());
    }
}

fn is_live(state: &TunnelState) -> bool {
    !matches!(state, TunnelState::Failed { .. } | TunnelState::Closed)
}

impl eframe::App for WithDesktop {
    fn logic(&mut self, ctx: &egui::Context, frame: &mut eframe::Frame) {
        self.app.logic(ctx, frame);
        let snapshot = self.desktop.engine.snapshot();
        while let Ok(request) = self.desktop.requests.try_recv() {
            match request {
                AppRequest::ShowWindow => {
                    ctx.send_viewport_cmd(egui::ViewportCommand::Visible(true));
                    ctx.send_viewport_cmd(egui::ViewportCommand::Minimized(false));
                    ctx.send_viewport_cmd(egui::ViewportCommand::Focus);
                }
                AppRequest::Quit => self.start_quit(&snapshot),
            }
        }
        let live = snapshot
            .tunnels
            .iter()
            .filter(|t| is_live(&t.state))
            .count();
        if let Some(since) = self.quitting {
            if live == 0 || since.elapsed() >= QUIT_WAIT {
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            } else {
                ctx.request_repaint_after(Duration::from_millis(100));
            }
        } else if ctx.input(|i| i.viewport().close_requested()) {
            let keep = self.desktop.tray.is_some()
                && self
                    .desktop
                    .store
                    .as_ref()
                    .is_some_and(|s| s.settings().close_to_tray.keeps_running(live));
            if keep {
                tracing::info!("the window is closed; Bastionless keeps running in the tray");
                ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
                ctx.send_viewport_cmd(egui::ViewportCommand::Visible(false));
            } else if live > 0 {
                // Close the tunnels cleanly (Session Manager is told the session ends) first.
                ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
                self.start_quit(&snapshot);
                ctx.request_repaint();
            }
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        self.app.ui(ui, frame);
    }
}

/// What wakes the tray thread.
enum TrayEvent {
    /// The snapshot or the store changed.
    Refresh,
    Menu(MenuId),
    /// The icon itself was clicked.
    Clicked,
    /// The window is gone: remove the icon.
    Stop,
}

/// The tray's thread; dropping it removes the icon.
struct TrayThread {
    events: mpsc::Sender<TrayEvent>,
}

impl Drop for TrayThread {
    fn drop(&mut self) {
        let _ = self.events.send(TrayEvent::Stop);
    }
}

impl TrayThread {
    /// Starts the tray, or says in the log why there is none.
    fn start(engine: EngineHandle, store: Store, to_window: ToWindow) -> Option<Self> {
        let (events, inbox) = mpsc::channel();
        let (ready, started) = mpsc::channel();
        let thread_events = events.clone();
        let spawned = std::thread::Builder::new()
            .name("bastionless-tray".into())
            .spawn(move || run_tray(engine, store, to_window, thread_events, inbox, ready));
        if let Err(error) = spawned {
            tracing::warn!("no tray icon: could not start its thread ({error})");
            return None;
        }
        match started.recv_timeout(TRAY_START_WAIT) {
            Ok(Ok(())) => {
                tracing::info!(
                    "tray icon registered (it shows when the desktop has a StatusNotifier tray)"
                );
                Some(Self { events })
            }
            Ok(Err(why)) => {
                tracing::warn!("no tray icon, Bastionless runs without one: {why}");
                None
            }
            Err(_) => {
                tracing::warn!("no tray icon: the tray did not start in time");
                None
            }
        }
    }
}

/// The tray thread: creates the icon, then follows snapshots and store changes until the
/// window's [`Desktop`] (and with it every sender) is gone.
fn run_tray(
    engine: EngineHandle,
    store: Store,
    to_window: ToWindow,
    events: mpsc::Sender<TrayEvent>,
    inbox: mpsc::Receiver<TrayEvent>,
    ready: mpsc::Sender<Result<(), String>>,
) {
    let icons = match Icons::load() {
        Ok(icons) => icons,
        Err(why) => {
            let _ = ready.send(Err(why));
            return;
        }
    };
    let mut model = TrayMenu::build(&engine.snapshot(), &store.favorites(), &store.recents());
    let (native, mut actions) = native_menu(&model.items);
    let tray = TrayIconBuilder::new()
        .with_id("bastionless")
        .with_title("Bastionless")
        .with_tooltip(&model.tooltip)
        .with_icon(icons.get(model.icon))
        .with_menu(Box::new(native))
        .build();
    let tray = match tray {
        Ok(tray) => tray,
        Err(error) => {
            let _ = ready.send(Err(error.to_string()));
            return;
        }
    };
    let _ = ready.send(Ok(()));

    // The handlers are process-wide; they only forward to this thread.
    let menu_events = events.clone();
    MenuEvent::set_event_handler(Some(move |event: MenuEvent| {
        let _ = menu_events.send(TrayEvent::Menu(event.id));
    }));
    let click_events = events.clone();
    TrayIconEvent::set_event_handler(Some(move |event: TrayIconEvent| {
        if let TrayIconEvent::Click {
            button: MouseButton::Left,
            button_state: MouseButtonState::Up,
            ..
        } = event
        {
            let _ = click_events.send(TrayEvent::Clicked);
        }
    }));
    follow_snapshots(engine.clone(), events);

    while let Ok(event) = inbox.recv() {
        match event {
            TrayEvent::Stop => break,
            TrayEvent::Refresh => {}
            TrayEvent::Clicked => {
                to_window.send(AppRequest::ShowWindow);
                continue;
            }
            TrayEvent::Menu(id) => match actions.get(&id) {
                Some(action) => perform(action, &engine, &to_window),
                None => continue,
            },
        }
        let next = TrayMenu::build(&engine.snapshot(), &store.favorites(), &store.recents());
        if next == model {
            continue;
        }
        if next.icon != model.icon
            && let Err(error) = tray.set_icon(Some(icons.get(next.icon)))
        {
            tracing::debug!("could not change the tray icon: {error}");
        }
        if next.tooltip != model.tooltip
            && let Err(error) = tray.set_tooltip(Some(&next.tooltip))
        {
            tracing::debug!("could not change the tray tooltip: {error}");
        }
        if next.items != model.items {
            let (native, next_actions) = native_menu(&next.items);
            tray.set_menu(Some(Box::new(native)));
            actions = next_actions;
        }
        model = next;
    }
}

/// Forwards "a new snapshot" to the tray thread until the engine or the tray is gone.
fn follow_snapshots(mut engine: EngineHandle, events: mpsc::Sender<TrayEvent>) {
    let spawned = std::thread::Builder::new()
        .name("bastionless-tray-follow".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().build() {
                Ok(runtime) => runtime,
                Err(error) => {
                    tracing::warn!("the tray will not follow the tunnels: {error}");
                    return;
                }
            };
            runtime.block_on(async {
                while engine.changed().await.is_some() {
                    if events.send(TrayEvent::Refresh).is_err() {
                        break;
                    }
                }
            });
        });
    if let Err(error) = spawned {
        tracing::warn!("the tray will not follow the tunnels: {error}");
    }
}

/// Does what a menu item says.
fn perform(action: &TrayAction, engine: &EngineHandle, to_window: &ToWindow) {
    match action {
        TrayAction::Connect {
            host,
            action,
            local_port,
        } => {
            // The engine remembers it in Recent, as for every Connect.
            engine.send(Command::Connect {
                host: host.clone(),
                how: TrayAction::connect_how(*action, *local_port),
                route: bastionless_core::engine::RouteChoice::Auto,
            });
        }
        TrayAction::CloseTunnel(id) => engine.send(Command::CloseTunnel(*id)),
        TrayAction::OpenWindow => to_window.send(AppRequest::ShowWindow),
        TrayAction::Quit => to_window.send(AppRequest::Quit),
    }
}

/// The native menu for `nodes`, and what each clickable item's id does.
fn native_menu(nodes: &[MenuNode]) -> (Menu, HashMap<MenuId, TrayAction>) {
    let menu = Menu::new();
    let mut actions = HashMap::new();
    let mut next_id = 0usize;
    for node in nodes {
        let appended = match node {
            MenuNode::Submenu { label, children } => {
                let submenu = Submenu::new(label, true);
                fill_submenu(&submenu, children, &mut actions, &mut next_id);
                menu.append(&submenu)
            }
            MenuNode::Separator => menu.append(&PredefinedMenuItem::separator()),
            MenuNode::Item { label, action } => {
                menu.append(&leaf(label, action.as_ref(), &mut actions, &mut next_id))
            }
        };
        if let Err(error) = appended {
            tracing::debug!("could not add a tray menu item: {error}");
        }
    }
    (menu, actions)
}

fn fill_submenu(
    submenu: &Submenu,
    nodes: &[MenuNode],
    actions: &mut HashMap<MenuId, TrayAction>,
    next_id: &mut usize,
) {
    for node in nodes {
        let appended = match node {
            MenuNode::Submenu { label, children } => {
                let inner = Submenu::new(label, true);
                fill_submenu(&inner, children, actions, next_id);
                submenu.append(&inner)
            }
            MenuNode::Separator => submenu.append(&PredefinedMenuItem::separator()),
            MenuNode::Item { label, action } => {
                submenu.append(&leaf(label, action.as_ref(), actions, next_id))
            }
        };
        if let Err(error) = appended {
            tracing::debug!("could not add a tray menu item: {error}");
        }
    }
}

fn leaf(
    label: &str,
    action: Option<&TrayAction>,
    actions: &mut HashMap<MenuId, TrayAction>,
    next_id: &mut usize,
) -> MenuItem {
    let id = MenuId::new(format!("bastionless-{next_id}"));
    *next_id += 1;
    if let Some(action) = action {
        actions.insert(id.clone(), action.clone());
    }
    MenuItem::with_id(id, label, action.is_some(), None)
}

/// The three tray icons, decoded once.
struct Icons {
    idle: tray_icon::Icon,
    active: tray_icon::Icon,
    failed: tray_icon::Icon,
}

impl Icons {
    fn load() -> Result<Self, String> {
        let decode = |png: &[u8]| -> Result<tray_icon::Icon, String> {
            let data = eframe::icon_data::from_png_bytes(png)
                .map_err(|e| format!("a built-in tray icon is not a valid PNG: {e}"))?;
            tray_icon::Icon::from_rgba(data.rgba, data.width, data.height)
                .map_err(|e| format!("a built-in tray icon is unusable: {e}"))
        };
        Ok(Self {
            idle: decode(ICON_IDLE)?,
            active: decode(ICON_ACTIVE)?,
            failed: decode(ICON_FAILED)?,
        })
    }

    fn get(&self, icon: TrayIcon) -> tray_icon::Icon {
        match icon {
            TrayIcon::Idle => self.idle.clone(),
            TrayIcon::Active => self.active.clone(),
            TrayIcon::Failed => self.failed.clone(),
        }
    }
}

/// The tray on a real session bus with a real StatusNotifierWatcher (`status-notifier-watcher`
/// from Debian's `haskell-status-notifier-item-utils`), read back over D-Bus the way a panel
/// reads it; and with no bus at all. The tray runs in a child process (this test binary again)
/// so that only the child sees the test's bus.
#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use bastionless_core::engine::EngineConfig;
    use bastionless_core::profiles::AwsFiles;
    use bastionless_core::store::{Action, Favorite};
    use std::io::BufRead as _;
    use std::process::{Child, Command, Stdio};

    const CHILD_STORE_ENV: &str = "BASTIONLESS_TRAY_TEST_STORE";

    fn favorite(id: &str, alias: &str) -> Favorite {
        Favorite {
            account_id: "111122223333".into(),
            region: "us-east-1".into(),
            instance_id: id.into(),
            alias: Some(alias.into()),
            name: None,
            action: Action::Ssh,
            local_port: None,
        }
    }

    /// A private session bus; killed on drop.
    struct Bus {
        daemon: Child,
        watcher: Option<Child>,
        address: String,
    }

    impl Bus {
        fn start() -> Self {
            let mut daemon = Command::new("dbus-daemon")
                .args(["--session", "--nofork", "--print-address=1"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("dbus-daemon runs (Debian package dbus; see .ci/run)");
            let mut address = String::new();
            std::io::BufReader::new(daemon.stdout.take().unwrap())
                .read_line(&mut address)
                .unwrap();
            let mut bus = Self {
                daemon,
                watcher: None,
                address: address.trim().to_owned(),
            };
            bus.watcher = Some(
                bus.command("status-notifier-watcher")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect(
                        "status-notifier-watcher runs (Debian package \
                         haskell-status-notifier-item-utils; see .ci/run)",
                    ),
            );
            bus
        }

        fn command(&self, program: &str) -> Command {
            let mut command = Command::new(program);
            command.env("DBUS_SESSION_BUS_ADDRESS", &self.address);
            command
        }

        /// `gdbus call` on this bus; its output, or `None` when the call failed.
        fn call(&self, args: &[&str]) -> Option<String> {
            let output = self
                .command("gdbus")
                .args(["call", "--session"])
                .args(args)
                .output()
                .expect("gdbus runs");
            output
                .status
                .success()
                .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
        }

        /// The bus name of the first item the watcher has registered.
        fn registered_item(&self) -> Option<String> {
            let reply = self.call(&[
                "--dest",
                "org.kde.StatusNotifierWatcher",
                "--object-path",
                "/StatusNotifierWatcher",
                "--method",
                "org.freedesktop.DBus.Properties.Get",
                "org.kde.StatusNotifierWatcher",
                "RegisteredStatusNotifierItems",
            ])?;
            // (<['org.kde.StatusNotifierItem-123-1']>,) or (<[':1.5/StatusNotifierItem']>,)
            let start = reply.find('\'')? + 1;
            let end = start + reply[start..].find('\'')?;
            let item = &reply[start..end];
            Some(item.split('/').next().unwrap_or(item).to_owned())
        }

        /// The item's whole menu, as the dbusmenu layout text.
        fn menu(&self, item: &str) -> Option<String> {
            self.call(&[
                "--dest",
                item,
                "--object-path",
                "/MenuBar",
                "--method",
                "com.canonical.dbusmenu.GetLayout",
                // The arguments follow `--`, or gdbus reads `-1` as an option.
                "--",
                "0",
                "-1",
                "[]",
            ])
        }
    }

    impl Drop for Bus {
        fn drop(&mut self) {
            for child in self.watcher.iter_mut().chain([&mut self.daemon]) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    /// Polls `check` for up to ten seconds.
    fn eventually<T>(mut check: impl FnMut() -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(found) = check() {
                return Some(found);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn tray_child(bus_address: &str, store: &std::path::Path) -> Child {
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "tray::tests::child_runs_a_tray",
                "--ignored",
                "--nocapture",
            ])
            .env("DBUS_SESSION_BUS_ADDRESS", bus_address)
            .env(CHILD_STORE_ENV, store)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    #[test]
    fn the_tray_registers_with_the_watcher_and_its_menu_follows_the_store() {
        let bus = Bus::start();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .add_favorite(favorite("i-0aaa", "db-primary"))
            .unwrap();
        let mut child = tray_child(&bus.address, dir.path());

        let item = eventually(|| bus.registered_item());
        let menu = item
            .as_deref()
            .and_then(|item| eventually(|| bus.menu(item).filter(|m| m.contains("db-primary"))));
        // The CLI adds a favorite: the tray shows it after its next look at the store.
        store.add_favorite(favorite("i-0bbb", "cache-new")).unwrap();
        let updated = item
            .as_deref()
            .and_then(|item| eventually(|| bus.menu(item).filter(|m| m.contains("cache-new"))));
        let _ = child.kill();
        let _ = child.wait();

        let item = item.expect("the tray registered with the StatusNotifierWatcher");
        let menu = menu.unwrap_or_else(|| panic!("{item}'s menu never listed the favorite"));
        for label in [
            "Favorites",
            "Account 111122223333",
            "db-primary — SSH",
            "Open Bastionless",
            "Quit",
        ] {
            assert!(menu.contains(label), "no {label:?} in {menu}");
        }
        updated.expect("the menu never showed the favorite added afterwards");
    }

    #[test]
    fn without_a_session_bus_the_app_goes_on_without_a_tray() {
        let dir = tempfile::tempdir().unwrap();
        let child = tray_child("unix:path=/nonexistent/bastionless-test-bus", dir.path());
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "the child failed: {output:?}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("tray: none"), "{stdout}");
    }

    /// The child: a tray over an engine with no AWS profiles and the store the parent named;
    /// says whether it has a tray, and keeps it until killed (or for 30 s).
    #[test]
    #[ignore = "run by the tray tests above"]
    fn child_runs_a_tray() {
        let Some(dir) = std::env::var_os(CHILD_STORE_ENV) else {
            return;
        };
        let dir = PathBuf::from(dir);
        let engine = Engine::start(EngineConfig::new(AwsFiles::at(
            dir.join("no-config"),
            dir.join("no-credentials"),
        )))
        .unwrap();
        let store = Store::open(&dir).unwrap();
        let (requests, _inbox) = mpsc::channel();
        let to_window = ToWindow {
            requests,
            ctx: Arc::new(OnceLock::new()),
        };
        let Some(tray) = TrayThread::start(engine.handle(), store.clone(), to_window) else {
            println!("tray: none");
            return;
        };
        let events = tray.events.clone();
        let _watch = store.watch(Duration::from_millis(200), move || {
            let _ = events.send(TrayEvent::Refresh);
        });
        println!("tray: running");
        std::thread::sleep(Duration::from_secs(30));
    }
}
