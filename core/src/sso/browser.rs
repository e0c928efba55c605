//! Opening the sign-in page in the user's browser: `$BROWSER` when set (the usual convention),
//! else the desktop's opener (`xdg-open`, macOS `open`, Windows `explorer`). Written here rather
//! than taken from a crate because it is one spawn per platform; the URL carries only the
//! user code the user is shown anyway, never a token.

use std::process::{Command, Stdio};

/// Starts the browser at `url` and returns without waiting for it.
pub fn open_in_browser(url: &str) -> Result<(), String> {
    let program = std::env::var("BROWSER")
        .ok()
        .filter(|b| !b.trim().is_empty())
        .unwrap_or_else(|| {
            if cfg!(target_os = "macos") {
                "open".to_owned()
            } else if cfg!(windows) {
                "explorer".to_owned()
            } else {
                "xdg-open".to_owned()
            }
        });
    Command::new(&program)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(drop)
        .map_err(|e| format!("could not start {program} to open the sign-in page: {e}"))
}
