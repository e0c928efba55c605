//! The desktop window: panels that render the engine's latest snapshot and return actions.
//!
//! Nothing here does I/O or waits. Each frame reads `engine.snapshot()` (an `Arc` swap), hands it
//! to the panels, and carries out the [`Action`]s they return: commands go to the engine, the
//! rest (copying, opening a dialog, moving the selection) happen here. The engine asks for a
//! repaint when it publishes a change, so an idle window does no work at all.
//!
//! One file per panel: `toolbar` (search, filters, refresh), `hosts` (the table, with the rows
//! from `host_rows`), `tunnels`, `status`, `palette` (Ctrl/Cmd+K, ranked by `fuzzy`), `toasts`,
//! `dialogs` (why this route, forward a port), `settings` (the app's), `host_settings` (one
//! host's), `sign_in` (SSO sessions, the MFA code), `log_view`; `format` says how numbers read.

mod action;
mod dialogs;
mod format;
mod fuzzy;
mod host_rows;
mod host_settings;
mod hosts;
mod log_view;
mod palette;
mod settings;
mod sign_in;
mod status;
mod toasts;
mod toolbar;
mod tunnels;

use anyhow::anyhow;
use bastionless_core::engine::{Command, ConnectHow, Engine, Snapshot};
use bastionless_core::inventory::HostKey;
use bastionless_core::store::{Favorite, Store, StoreError};

use action::{Action, ConnectAs};
use dialogs::{ForwardDialog, RouteExplainer};
use host_settings::HostSettingsDialog;
use hosts::HostsTable;
use log_view::LogView;
use palette::Palette;
use settings::SettingsWindow;
use sign_in::MfaDialog;
use status::StatusLine;
use toasts::Toasts;
use toolbar::Toolbar;
use tunnels::TunnelsPanel;

/// The window title and the application id desktops use to match the `.desktop` file.
const APP_NAME: &str = "Bastionless";
const APP_ID: &str = "bastionless";

/// The app icon, built into the binary so it shows wherever the binary is run from.
const ICON_PNG: &[u8] = include_bytes!("../../../assets/icon-256.png");

/// How long the window's creation waits for the engine's disk cache at most (10,000 hosts take
/// a few tens of milliseconds to read).
const CACHE_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// The whole GUI state: the engine it reads from and the panels' own state.
pub struct BastionlessApp {
    engine: Engine,
    toolbar: Toolbar,
    hosts: HostsTable,
    tunnels: TunnelsPanel,
    status: StatusLine,
    palette: Palette,
    toasts: Toasts,
    explainer: RouteExplainer,
    forward: ForwardDialog,
    log: LogView,
    mfa: MfaDialog,
    settings: SettingsWindow,
    host_settings: HostSettingsDialog,
    /// Favorites, recents and settings; `None` when the store could not be opened.
    store: Option<Store>,
    /// The store generation whose theme is applied, so a theme changed anywhere (this window,
    /// the CLI) applies at once and an unchanged store costs nothing.
    theme_applied: Option<u64>,
}

impl BastionlessApp {
    /// Takes over `engine` and has it repaint `ctx` whenever its snapshot changes.
    ///
    /// Waits up to [`CACHE_WAIT`] for the engine to read its disk cache, so that the first
    /// frame (which eframe paints before it shows the window) lists the cached hosts rather
    /// than an empty table that fills a moment later. The engine reads it on its own threads,
    /// meanwhile the window system sets the window up; past the bound the window opens saying
    /// the saved hosts are loading, and they appear when read.
    pub fn new(engine: Engine, ctx: &egui::Context) -> Self {
        let repaint = ctx.clone();
        engine.on_change(move || repaint.request_repaint());
        if engine.snapshot().loading_cache {
            engine.wait_until(CACHE_WAIT, |s| !s.loading_cache);
        }
        Self {
            engine,
            toolbar: Toolbar::default(),
            hosts: HostsTable::default(),
            tunnels: TunnelsPanel::default(),
            status: StatusLine::default(),
            palette: Palette::default(),
            toasts: Toasts::default(),
            explainer: RouteExplainer::default(),
            forward: ForwardDialog::default(),
            log: LogView::default(),
            mfa: MfaDialog::default(),
            settings: SettingsWindow::default(),
            host_settings: HostSettingsDialog::default(),
            store: None,
            theme_applied: None,
        }
    }

    /// Keeps favorites in `store`: the ★ column, the Favorites view and the host menu's
    /// Favorite use it.
    pub fn with_store(mut self, store: Option<Store>) -> Self {
        self.store = store;
        self
    }

    /// The engine the window drives, so a caller can check what it was told.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Draws one frame into `ui` (the whole window) and carries out what the panels asked for.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let snapshot = self.engine.snapshot();
        self.apply_theme(ui.ctx());
        // Decided before any panel runs, so the Enter that ends a search does not also connect.
        let keyboard_free = !self.palette.is_open() && !ui.ctx().text_edit_focused();
        let mut actions = shortcuts(ui);
        egui::Panel::top("toolbar").show(ui, |ui| {
            actions.extend(self.toolbar.ui(ui, &snapshot));
        });
        // Panels are added outside-in, so the status line and tunnels (bottom) are laid out
        // before the table (centre); the rows are worked out first so the status line can say
        // how many hosts the search keeps.
        let shown = self.hosts.update(
            &snapshot,
            self.toolbar.query(),
            self.toolbar.grouped,
            self.favorites_only(),
        );
        egui::Panel::bottom("status").show(ui, |ui| {
            self.status.ui(ui, &snapshot, shown);
            actions.extend(sign_in::sessions_ui(ui, &snapshot));
        });
        if !snapshot.tunnels.is_empty() {
            egui::Panel::bottom("tunnels")
                .resizable(true)
                .default_size(140.0)
                .show(ui, |ui| actions.extend(self.tunnels.ui(ui, &snapshot)));
        }
        if keyboard_free {
            actions.extend(self.hosts.keys(ui, &snapshot));
        }
        egui::CentralPanel::default().show(ui, |ui| {
            actions.extend(self.hosts.ui(ui, &snapshot, self.store.as_ref()))
        });
        let ctx = ui.ctx().clone();
        actions.extend(self.palette.ui(&ctx, &snapshot, self.store.as_ref()));
        actions.extend(self.forward.ui(&ctx, &snapshot));
        actions.extend(self.toasts.ui(&ctx, &snapshot));
        actions.extend(self.mfa.ui(&ctx, &snapshot));
        actions.extend(self.settings.ui(&ctx));
        actions.extend(self.host_settings.ui(&ctx, &snapshot));
        self.explainer.ui(&ctx, &snapshot);
        self.log.ui(&ctx);
        for action in actions {
            self.carry_out(&ctx, &snapshot, action);
        }
    }

    fn carry_out(&mut self, ctx: &egui::Context, snapshot: &Snapshot, action: Action) {
        match action {
            Action::Send(command) => self.engine.send(command),
            Action::Connect(key, how) => {
                if let Some(command) = connect_command(snapshot, key, how) {
                    self.engine.send(command);
                }
            }
            Action::AskForward(key) => self.forward.show(key),
            Action::ToggleFavorite(key) => self.toggle_favorite(ctx, snapshot, key),
            Action::Copy(text) => ctx.copy_text(text),
            Action::ExplainRoute(key) => self.explainer.show(key),
            Action::Select(key) => self.hosts.select(snapshot, key),
            Action::OpenPalette => self.palette.open(),
            Action::FocusSearch => self.toolbar.focus_search(),
            Action::ToggleLog => self.log.open = !self.log.open,
            Action::OpenSettings => {
                let current = self.store.as_ref().map(Store::settings).unwrap_or_default();
                self.settings.open(&current);
            }
            Action::SaveSettings(settings) => {
                let Some(store) = self.store.clone() else {
                    return;
                };
                let engine = self.engine.handle();
                let tunnels = self.engine.tunnel_settings().with_app_settings(&settings);
                self.settings.saving(in_background(ctx, move || {
                    store.set_settings(settings)?;
                    engine.send(Command::ConfigureTunnels(tunnels));
                    Ok(())
                }));
            }
            Action::EditHostSettings(key) => {
                let current = self
                    .store
                    .as_ref()
                    .map(|store| store.host_settings(&(&key).into()))
                    .unwrap_or_default();
                self.host_settings.open(key, &current);
            }
            Action::SaveHostSettings(key, settings) => {
                let Some(store) = self.store.clone() else {
                    return;
                };
                self.host_settings.saving(in_background(ctx, move || {
                    store.set_host_settings(&(&key).into(), settings)
                }));
            }
        }
    }
}

/// Runs a store write on a thread of its own (it writes and syncs a file, which a frame must
/// not wait for) and repaints when it is done; the receiver gets the outcome.
fn in_background(
    ctx: &egui::Context,
    write: impl FnOnce() -> Result<(), StoreError> + Send + 'static,
) -> std::sync::mpsc::Receiver<Result<(), String>> {
    let (done, result) = std::sync::mpsc::channel();
    let ctx = ctx.clone();
    std::thread::spawn(move || {
        let outcome = write().map_err(|error| error.to_string());
        if let Err(error) = &outcome {
            tracing::error!("could not save: {error}");
        }
        let _ = done.send(outcome);
        ctx.request_repaint();
    });
    result
}

impl BastionlessApp {
    /// Follows the theme setting whenever the store changes.
    fn apply_theme(&mut self, ctx: &egui::Context) {
        let Some(store) = &self.store else {
            return;
        };
        let generation = store.generation();
        if self.theme_applied != Some(generation) {
            self.theme_applied = Some(generation);
            ctx.set_theme(settings::theme_preference(store.settings().theme));
        }
    }

    /// The favorites view's hosts, when it is on (none without a store).
    fn favorites_only(&self) -> Option<std::collections::BTreeSet<(String, String)>> {
        self.toolbar.favorites_only.then(|| {
            self.store
                .iter()
                .flat_map(Store::favorites)
                .map(|f| (f.account_id, f.instance_id))
                .collect()
        })
    }

    /// Adds or removes the favorite on a thread of its own (the store writes a file), and
    /// repaints once it is done.
    fn toggle_favorite(&self, ctx: &egui::Context, snapshot: &Snapshot, key: HostKey) {
        let Some(store) = self.store.clone() else {
            return;
        };
        let name = snapshot.host(&key).and_then(|h| h.name.clone());
        let ctx = ctx.clone();
        std::thread::spawn(move || {
            let id = (&key).into();
            let result = if store.is_favorite(&id) {
                store.remove_favorite(&id).map(drop)
            } else {
                store
                    .add_favorite(Favorite {
                        account_id: key.account_id,
                        region: key.region,
                        instance_id: key.instance_id,
                        alias: None,
                        name,
                        action: Default::default(),
                        local_port: None,
                    })
                    .map(drop)
            };
            if let Err(error) = result {
                tracing::error!("could not change the favorites: {error}");
            }
            ctx.request_repaint();
        });
    }
}

/// Ctrl/Cmd+K opens the palette, Ctrl/Cmd+F focuses the search.
fn shortcuts(ui: &egui::Ui) -> Vec<Action> {
    let (palette, search) = ui.input_mut(|input| {
        (
            input.consume_key(egui::Modifiers::COMMAND, egui::Key::K),
            input.consume_key(egui::Modifiers::COMMAND, egui::Key::F),
        )
    });
    let mut actions = Vec::new();
    if palette {
        actions.push(Action::OpenPalette);
    }
    if search {
        actions.push(Action::FocusSearch);
    }
    actions
}

/// The engine command for connecting to `key` as asked, if the host is still listed.
fn connect_command(snapshot: &Snapshot, key: HostKey, how: ConnectAs) -> Option<Command> {
    let host = snapshot.host(&key)?;
    let how = match how {
        ConnectAs::Default => ConnectHow::default_for(host),
        ConnectAs::Ssh => ConnectHow::Ssh,
        ConnectAs::Rdp => ConnectHow::Rdp,
        ConnectAs::Shell => ConnectHow::Shell,
    };
    Some(Command::Connect {
        host: key,
        how,
        route: bastionless_core::engine::RouteChoice::Auto,
    })
}

impl eframe::App for BastionlessApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }
}

/// Opens the window and runs until it is closed.
pub fn run(engine: Engine) -> anyhow::Result<()> {
    let mut viewport = egui::ViewportBuilder::default()
        .with_title(APP_NAME)
        .with_app_id(APP_ID)
        .with_inner_size([1200.0, 740.0])
        .with_min_inner_size([600.0, 300.0]);
    match eframe::icon_data::from_png_bytes(ICON_PNG) {
        Ok(icon) => viewport = viewport.with_icon(icon),
        Err(error) => {
            tracing::warn!("the built-in app icon is not a valid PNG, using none: {error}")
        }
    }
    let options = eframe::NativeOptions {
        viewport,
        renderer: eframe::Renderer::Glow,
        ..Default::default()
    };
    eframe::run_native(
        APP_NAME,
        options,
        Box::new(|cc| {
            // The tray, later launches and close-to-tray (app::tray) wrap the window's app.
            let desktop = crate::tray::Desktop::start(&engine);
            let app =
                Box::new(BastionlessApp::new(engine, &cc.egui_ctx).with_store(desktop.store()));
            Ok(desktop.wrap(app, &cc.egui_ctx))
        }),
    )
    .map_err(|error| {
        anyhow!(
            "could not open the window: {error}. Bastionless needs a graphical session (X11 or \
             Wayland); in a terminal, use `bastionless list`."
        )
    })
}

#[cfg(test)]
mod frame_texts;

#[cfg(test)]
mod tests {
    use super::*;
    use bastionless_core::engine::EngineConfig;
    use bastionless_core::inventory::{
        CachedRegion, Host, InstanceState, InventoryCache, Listing, Platform, RegionFacts,
    };
    use bastionless_core::profiles::AwsFiles;

    fn cached_host(name: &str, n: usize) -> Host {
        Host {
            instance_id: format!("i-{n:017x}"),
            name: Some(name.to_owned()),
            tags: Default::default(),
            state: InstanceState::Running,
            platform: Platform::Linux,
            private_ip: Some(format!("10.0.{}.{}", n / 250, n % 250)),
            public_ip: None,
            vpc_id: Some("vpc-a".into()),
            subnet_id: None,
            availability_zone: None,
            key_name: None,
            image: None,
            security_group_ids: Vec::new(),
            profile: "dev".into(),
            account_id: "111122223333".into(),
            region: "us-east-1".into(),
            stale: false,
        }
    }

    #[test]
    fn the_first_frame_lists_the_cached_hosts() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("inventory.bin");
        // Enough hosts that reading them takes the engine a while; the two listed first are
        // written out of order.
        let mut hosts = vec![cached_host("web-2", 2), cached_host("api-1", 1)];
        hosts.extend((3..=2_000).map(|n| cached_host(&format!("zz-{n}"), n)));
        let region = CachedRegion {
            account_id: "111122223333".into(),
            region: "us-east-1".into(),
            facts: RegionFacts {
                profile: "dev".into(),
                eic_endpoints: Listing::Listed(Vec::new()),
                security_groups: Listing::Listed(Vec::new()),
                ssm: Listing::Listed(Vec::new()),
            },
            hosts,
        };
        let accounts = [("dev".to_owned(), "111122223333".to_owned())].into();
        InventoryCache::new(accounts, vec![region])
            .save(&cache)
            .unwrap();
        // Nothing listens on the discard port: the scan fails and the cached hosts stay.
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
        let mut engine_config = EngineConfig::new(AwsFiles::at(config, credentials));
        engine_config.cache_file = Some(cache);
        // The engine reads the cache on its own threads; the window's creation waits for it.
        let engine = Engine::start(engine_config).unwrap();

        let ctx = egui::Context::default();
        let mut app = BastionlessApp::new(engine, &ctx);
        let input = egui::RawInput {
            screen_rect: Some(egui::Rect::from_min_size(
                egui::Pos2::ZERO,
                egui::vec2(1200.0, 740.0),
            )),
            ..Default::default()
        };
        let mut output = ctx.run_ui(input, |ui| app.show(ui));
        output.textures_delta.clear();
        let shown = frame_texts::texts(&output.shapes);
        let position = |text: &str| shown.iter().position(|t| t == text);
        let (api, web) = (position("api-1"), position("web-2"));
        assert!(
            api.is_some() && web.is_some() && api < web,
            "the cached hosts, in name order: {shown:?}"
        );
        assert!(position("2000 hosts").is_some(), "{shown:?}");
    }
}
