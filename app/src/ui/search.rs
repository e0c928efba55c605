//! The search box above the hosts table. Which hosts a search keeps is
//! [`bastionless_core::inventory::HostQuery`]'s rule, the same one `bastionless list --filter`
//! uses, so the window and the command line always agree.

use bastionless_core::inventory::HostQuery;

/// The search box above the hosts table.
#[derive(Debug, Default)]
pub struct SearchBox {
    text: String,
    query: HostQuery,
}

impl SearchBox {
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            // The label names the field for screen readers (and for the GUI test).
            let label = ui.label("Search");
            let field = egui::TextEdit::singleline(&mut self.text)
                .hint_text("name, instance id, IP, profile, region or tag")
                .desired_width(360.0);
            let response = ui.add(field).labelled_by(label.id);
            if response.changed() {
                self.query = HostQuery::parse(&self.text);
            }
        });
    }

    pub fn query(&self) -> &HostQuery {
        &self.query
    }
}
