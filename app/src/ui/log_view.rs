//! The log window: the newest lines of the process's log ([`crate::logging::buffer`]), already
//! stripped of secrets, newest at the bottom.

use crate::logging::{self, LogLine};

use super::format::clock_time;

/// Whether the log window is open.
#[derive(Debug, Default)]
pub struct LogView {
    pub open: bool,
}

impl LogView {
    pub fn ui(&mut self, ctx: &egui::Context) {
        if !self.open {
            return;
        }
        let lines = logging::buffer().lines();
        egui::Window::new("Log")
            .open(&mut self.open)
            .default_size([720.0, 320.0])
            .show(ctx, |ui| {
                if lines.is_empty() {
                    ui.weak("Nothing logged yet.");
                    return;
                }
                let row_height = ui.text_style_height(&egui::TextStyle::Monospace);
                egui::ScrollArea::both()
                    .stick_to_bottom(true)
                    .auto_shrink(false)
                    .show_rows(ui, row_height, lines.len(), |ui, range| {
                        for line in &lines[range] {
                            ui.label(line_text(ui, line));
                        }
                    });
            });
    }
}

fn line_text(ui: &egui::Ui, line: &LogLine) -> egui::RichText {
    let text = egui::RichText::new(format!(
        "{} {:5} {}: {}",
        clock_time(line.at),
        line.level,
        line.target,
        line.text
    ))
    .monospace();
    match line.level {
        tracing::Level::ERROR => text.color(ui.visuals().error_fg_color),
        tracing::Level::WARN => text.color(ui.visuals().warn_fg_color),
        _ => text,
    }
}
