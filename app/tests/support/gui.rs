//! What the window tests share: stepping the window until something shows, and finding text
//! in it by its accessible label.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use bastionless::ui::BastionlessApp;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable};

/// How long a window test waits for the engine and the simulator.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// Steps the window (the engine and store writes work on their own threads) until `done`, then
/// one step more, or fails saying `what` and listing what the window shows. A step, not `run`:
/// a refresh under way keeps a spinner turning.
pub fn step_until(
    harness: &mut Harness<'_, BastionlessApp>,
    what: &str,
    done: impl Fn(&Harness<'_, BastionlessApp>) -> bool,
) {
    let deadline = Instant::now() + TIMEOUT;
    while !done(harness) {
        if Instant::now() > deadline {
            let labels: Vec<String> = harness
                .query_all_by(|_| true)
                .map(|node| {
                    format!(
                        "{:?}:{:?}:{:?}",
                        node.accesskit_node().role(),
                        node.accesskit_node().label(),
                        node.accesskit_node().value()
                    )
                })
                .collect();
            panic!("timed out waiting until {what}; the window shows {labels:?}");
        }
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    harness.step();
}

/// Whether a control labelled exactly `text` is shown.
pub fn shown(harness: &Harness<'_, BastionlessApp>, text: &str) -> bool {
    harness.query_all_by_label(text).next().is_some()
}

/// Whether a control whose label contains `text` is shown.
pub fn shown_containing(harness: &Harness<'_, BastionlessApp>, text: &str) -> bool {
    harness.query_all_by_label_contains(text).next().is_some()
}
