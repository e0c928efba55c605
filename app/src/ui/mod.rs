//! The desktop window: panels that render the engine's latest snapshot and return commands.
//!
//! Nothing here does I/O or waits. Each frame reads `engine.snapshot()` (an `Arc` swap), hands it
//! to the panels, and sends back the commands they return; the engine asks for a repaint when
//! it publishes a change, so an idle window does no work at all.

mod hosts;
mod search;
mod status;

use anyhow::anyhow;
use bastionless_core::engine::{Command, Engine};
use hosts::HostsTable;
use search::SearchBox;

/// The window title and the application id desktops use to match the `.desktop` file.
const APP_NAME: &str = "Bastionless";
const APP_ID: &str = "bastionless";

/// The app icon, built into the binary so it shows wherever the binary is run from.
const ICON_PNG: &[u8] = include_bytes!("../../../assets/icon-256.png");

/// The whole GUI state: the engine it reads from and the panels' own state.
pub struct BastionlessApp {
    engine: Engine,
    search: SearchBox,
    hosts: HostsTable,
}

impl BastionlessApp {
    /// Takes over `engine` and has it repaint `ctx` whenever its snapshot changes.
    pub fn new(engine: Engine, ctx: &egui::Context) -> Self {
        let repaint = ctx.clone();
        engine.on_change(move || repaint.request_repaint());
        Self {
            engine,
            search: SearchBox::default(),
            hosts: HostsTable::default(),
        }
    }

    /// Draws one frame into `ui` (the whole window) and sends the commands the panels returned.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let snapshot = self.engine.snapshot();
        let mut commands = Vec::new();
        egui::Panel::top("toolbar").show(ui, |ui| {
            ui.horizontal(|ui| {
                self.search.ui(ui);
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    if ui
                        .button("Refresh")
                        .on_hover_text("Read the AWS files again and rescan every profile")
                        .clicked()
                    {
                        commands.push(Command::Refresh);
                    }
                });
            });
        });
        // Panels are added outside-in, so the status line (bottom) is laid out before the table
        // (centre); the search runs first so the line can say how many hosts it keeps.
        let query = self.search.query().clone();
        let shown = self.hosts.refilter(&snapshot, &query);
        egui::Panel::bottom("status").show(ui, |ui| status::ui(ui, &snapshot, shown));
        egui::CentralPanel::default().show(ui, |ui| self.hosts.ui(ui, &snapshot, &query));
        for command in commands {
            self.engine.send(command);
        }
    }
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
        .with_inner_size([1100.0, 700.0])
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
        Box::new(|cc| Ok(Box::new(BastionlessApp::new(engine, &cc.egui_ctx)))),
    )
    .map_err(|error| {
        anyhow!(
            "could not open the window: {error}. Bastionless needs a graphical session (X11 or \
             Wayland); in a terminal, use `bastionless list`."
        )
    })
}
