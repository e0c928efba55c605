//! Opening a command (ssh, `bastionless shell`) in the user's own terminal, with a title that
//! names the host.
//!
//! Bastionless embeds no terminal: it asks the one the user already has. Which one is worked
//! out from a [`TerminalEnv`] — a description of the machine (the OS, `$TERMINAL`, which
//! programs are on `PATH`, which apps are installed) — so that detection and every command line
//! below are pure functions, unit-tested for every OS on any OS. Only
//! [`TerminalEnv::current`] looks at the real machine.
//!
//! Order of preference, when the user has set no template: Linux and other Unixes `$TERMINAL`,
//! `x-terminal-emulator` (Debian's alternative), gnome-terminal, konsole, kitty, alacritty,
//! wezterm, foot, xterm; macOS iTerm when installed, else Terminal; Windows Terminal (`wt`), else
//! a new console window.
//!
//! A template is the user's own command line with `{title}` and `{command}` placeholders
//! (`{command}` expands to the command's words, `{command_line}` to one shell-quoted string),
//! split like a POSIX shell would, so `kitty --title {title} -- {command}` works as written.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

/// The operating systems whose terminals are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    /// Linux and the BSDs: X11 or Wayland terminals.
    Unix,
    MacOs,
    Windows,
}

impl Os {
    /// The OS this build runs on.
    pub fn current() -> Self {
        if cfg!(target_os = "macos") {
            Os::MacOs
        } else if cfg!(windows) {
            Os::Windows
        } else {
            Os::Unix
        }
    }
}

/// A terminal Bastionless knows how to ask for a new window with a title and a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Terminal {
    /// The user's template (see the module docs).
    Template(String),
    /// `$TERMINAL` naming a program that is none of the known ones: run as `PROGRAM -e COMMAND`,
    /// the convention most terminals follow, with the title set by an escape sequence.
    Other(PathBuf),
    XTerminalEmulator,
    GnomeTerminal,
    Konsole,
    Kitty,
    Alacritty,
    WezTerm,
    Foot,
    Xterm,
    /// macOS Terminal.app, driven by AppleScript.
    MacTerminal,
    /// iTerm2, driven by AppleScript.
    ITerm,
    /// Windows Terminal.
    WindowsTerminal,
    /// A new console window (`cmd /c start`).
    WindowsConsole,
}

/// The Unix terminals in the order they are tried, with their program names.
const UNIX_TERMINALS: [(&str, Terminal); 8] = [
    ("x-terminal-emulator", Terminal::XTerminalEmulator),
    ("gnome-terminal", Terminal::GnomeTerminal),
    ("konsole", Terminal::Konsole),
    ("kitty", Terminal::Kitty),
    ("alacritty", Terminal::Alacritty),
    ("wezterm", Terminal::WezTerm),
    ("foot", Terminal::Foot),
    ("xterm", Terminal::Xterm),
];

/// What detection looks at.
#[derive(Debug, Clone, Default)]
pub struct TerminalEnv {
    pub os: Option<Os>,
    /// `$TERMINAL`, when set and not empty.
    pub terminal_var: Option<String>,
    /// The programs found on `PATH` among those asked about (names, without `.exe`).
    pub on_path: Vec<String>,
    /// macOS: whether iTerm is installed.
    pub iterm_installed: bool,
}

impl TerminalEnv {
    /// The real machine's answers.
    pub fn current() -> Self {
        let mut names: Vec<&str> = UNIX_TERMINALS.iter().map(|(name, _)| *name).collect();
        names.push("wt");
        let terminal_var = std::env::var("TERMINAL")
            .ok()
            .filter(|v| !v.trim().is_empty());
        Self {
            os: Some(Os::current()),
            on_path: names
                .into_iter()
                .filter(|name| find_on_path(name).is_some())
                .map(str::to_owned)
                .collect(),
            terminal_var,
            iterm_installed: cfg!(target_os = "macos")
                && (Path::new("/Applications/iTerm.app").exists()
                    || std::env::var("TERM_PROGRAM").is_ok_and(|p| p == "iTerm.app")),
        }
    }

    fn has(&self, program: &str) -> bool {
        self.on_path.iter().any(|p| p == program)
    }
}

/// Why no terminal could be chosen or started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TerminalError {
    #[error(
        "no terminal was found (looked for $TERMINAL, x-terminal-emulator, gnome-terminal, \
         konsole, kitty, alacritty, wezterm, foot and xterm); install one, or set a terminal \
         command template in the settings"
    )]
    NoneFound,
    #[error(
        "the terminal template `{template}` cannot be used: {why} (example: \
         `kitty --title {{title}} -- {{command}}`)"
    )]
    BadTemplate { template: String, why: String },
}

/// The terminal to use: the template when the user set one, else the first one found.
pub fn choose_terminal(
    template: Option<&str>,
    env: &TerminalEnv,
) -> Result<Terminal, TerminalError> {
    if let Some(template) = template.map(str::trim).filter(|t| !t.is_empty()) {
        return Ok(Terminal::Template(template.to_owned()));
    }
    match env.os.unwrap_or_else(Os::current) {
        Os::MacOs => Ok(if env.iterm_installed {
            Terminal::ITerm
        } else {
            Terminal::MacTerminal
        }),
        Os::Windows => Ok(if env.has("wt") {
            Terminal::WindowsTerminal
        } else {
            Terminal::WindowsConsole
        }),
        Os::Unix => {
            if let Some(var) = &env.terminal_var {
                let program = PathBuf::from(var.trim());
                let name = program
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                // A known terminal named by $TERMINAL gets its own (titled) command line.
                let known = UNIX_TERMINALS
                    .iter()
                    .find(|(known, _)| *known == name)
                    .map(|(_, terminal)| terminal.clone());
                return Ok(known.unwrap_or(Terminal::Other(program)));
            }
            UNIX_TERMINALS
                .iter()
                .find(|(name, _)| env.has(name))
                .map(|(_, terminal)| terminal.clone())
                .ok_or(TerminalError::NoneFound)
        }
    }
}

/// A program and its arguments, ready for `std::process::Command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    pub program: OsString,
    pub args: Vec<OsString>,
}

impl CommandLine {
    pub fn to_command(&self) -> std::process::Command {
        let mut command = std::process::Command::new(&self.program);
        command.args(&self.args);
        command
    }
}

impl fmt::Display for CommandLine {
    /// The command line as a POSIX shell would read it (for messages and logs).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<String> = std::iter::once(&self.program)
            .chain(&self.args)
            .map(|w| shell_quote(&w.to_string_lossy()))
            .collect();
        f.write_str(&words.join(" "))
    }
}

/// The command line that opens `command` (program first) in `terminal` with `title`.
pub fn terminal_command(
    terminal: &Terminal,
    title: &str,
    command: &[OsString],
) -> Result<CommandLine, TerminalError> {
    let words = |prefix: &[&str]| -> Vec<OsString> {
        prefix
            .iter()
            .map(OsString::from)
            .chain(command.iter().cloned())
            .collect()
    };
    let line = |program: &str, args: Vec<OsString>| CommandLine {
        program: program.into(),
        args,
    };
    Ok(match terminal {
        Terminal::Template(template) => return from_template(template, title, command),
        Terminal::Other(program) => CommandLine {
            program: program.clone().into_os_string(),
            args: [OsString::from("-e")]
                .into_iter()
                .chain(titled_by_escape(title, command))
                .collect(),
        },
        // Debian policy requires every x-terminal-emulator to take -T and -e.
        Terminal::XTerminalEmulator => line("x-terminal-emulator", words(&["-T", title, "-e"])),
        Terminal::GnomeTerminal => line("gnome-terminal", words(&["--title", title, "--"])),
        Terminal::Konsole => {
            let tab_title = format!("tabtitle={title}");
            line("konsole", words(&["-p", &tab_title, "-e"]))
        }
        Terminal::Kitty => line("kitty", words(&["--title", title, "--"])),
        Terminal::Alacritty => line("alacritty", words(&["--title", title, "-e"])),
        // `wezterm start` has no title option.
        Terminal::WezTerm => CommandLine {
            program: "wezterm".into(),
            args: ["start", "--"]
                .into_iter()
                .map(OsString::from)
                .chain(titled_by_escape(title, command))
                .collect(),
        },
        Terminal::Foot => line("foot", words(&["--title", title])),
        Terminal::Xterm => line("xterm", words(&["-T", title, "-e"])),
        Terminal::MacTerminal => apple_script(
            &[
                "tell application \"Terminal\"",
                "activate",
                "set newTab to do script (item 1 of argv)",
                "set custom title of newTab to (item 2 of argv)",
                "end tell",
            ],
            title,
            command,
        ),
        Terminal::ITerm => apple_script(
            &[
                "tell application \"iTerm\"",
                "activate",
                "set newWindow to (create window with default profile)",
                "tell current session of newWindow",
                "set name to (item 2 of argv)",
                "write text (item 1 of argv)",
                "end tell",
                "end tell",
            ],
            title,
            command,
        ),
        // `;` separates wt's own commands, so it is escaped inside the command's words.
        Terminal::WindowsTerminal => CommandLine {
            program: "wt".into(),
            args: ["new-tab", "--title", title]
                .into_iter()
                .map(OsString::from)
                .chain(
                    command
                        .iter()
                        .map(|word| OsString::from(word.to_string_lossy().replace(';', "\\;"))),
                )
                .collect(),
        },
        // `start` takes its first quoted argument as the window title; the title always holds a
        // space (see `window_title`), so it is always quoted.
        Terminal::WindowsConsole => line("cmd.exe", words(&["/c", "start", title])),
    })
}

/// The title of a terminal window for `what` (ssh, shell) on the host called `host_name`.
pub fn window_title(what: &str, host_name: &str) -> String {
    format!("{what} {host_name} — Bastionless")
}

/// `osascript` running `body` inside `on run argv`, with the shell command line as the first
/// argument and the title as the second, so neither needs AppleScript quoting.
fn apple_script(body: &[&str], title: &str, command: &[OsString]) -> CommandLine {
    let mut args: Vec<OsString> = Vec::new();
    for line in std::iter::once("on run argv")
        .chain(body.iter().copied())
        .chain(std::iter::once("end run"))
    {
        args.push("-e".into());
        args.push(line.into());
    }
    args.push(shell_line(command).into());
    args.push(title.into());
    CommandLine {
        program: "osascript".into(),
        args,
    }
}

/// `sh -c` that sets the window title with the xterm escape sequence, then runs the command
/// (passed as arguments, never interpolated into the script).
fn titled_by_escape(title: &str, command: &[OsString]) -> Vec<OsString> {
    [
        "sh",
        "-c",
        "printf '\\033]0;%s\\007' \"$0\"; exec \"$@\"",
        title,
    ]
    .into_iter()
    .map(OsString::from)
    .chain(command.iter().cloned())
    .collect()
}

fn from_template(
    template: &str,
    title: &str,
    command: &[OsString],
) -> Result<CommandLine, TerminalError> {
    let bad = |why: &str| TerminalError::BadTemplate {
        template: template.to_owned(),
        why: why.to_owned(),
    };
    let words = shlex::split(template).ok_or_else(|| bad("its quotes are unbalanced"))?;
    if !words
        .iter()
        .any(|w| w.contains("{command}") || w.contains("{command_line}"))
    {
        return Err(bad("it has no {command} or {command_line}"));
    }
    let mut out: Vec<OsString> = Vec::new();
    for word in words {
        if word == "{command}" {
            out.extend(command.iter().cloned());
        } else if word.contains("{command}") {
            return Err(bad(
                "{command} must be a word of its own; use {command_line} inside a word",
            ));
        } else {
            out.push(
                word.replace("{title}", title)
                    .replace("{command_line}", &shell_line(command))
                    .into(),
            );
        }
    }
    let mut words = out.into_iter();
    let program = words.next().ok_or_else(|| bad("it is empty"))?;
    Ok(CommandLine {
        program,
        args: words.collect(),
    })
}

/// The command as one POSIX shell command line.
pub fn shell_line(command: &[OsString]) -> String {
    command
        .iter()
        .map(|w| shell_quote(&w.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One word quoted for a POSIX shell.
pub fn shell_quote(word: &str) -> String {
    match shlex::try_quote(word) {
        Ok(quoted) => quoted.into_owned(),
        // Only a NUL byte cannot be quoted; no path or argument here holds one.
        Err(_) => format!("'{}'", word.replace('\0', "").replace('\'', "'\\''")),
    }
}

/// The first `name` (or `name.exe`) in a `PATH` directory.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find_map(|dir| {
        [name.to_owned(), format!("{name}.exe")]
            .into_iter()
            .map(|file| dir.join(file))
            .find(|candidate| candidate.is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(os: Os, on_path: &[&str]) -> TerminalEnv {
        TerminalEnv {
            os: Some(os),
            terminal_var: None,
            on_path: on_path.iter().map(|s| (*s).to_owned()).collect(),
            iterm_installed: false,
        }
    }

    fn ssh() -> Vec<OsString> {
        ["ssh", "-p", "40022", "ec2-user@127.0.0.1"]
            .map(OsString::from)
            .to_vec()
    }

    fn words(line: &CommandLine) -> Vec<String> {
        std::iter::once(&line.program)
            .chain(&line.args)
            .map(|w| w.to_string_lossy().into_owned())
            .collect()
    }

    fn launched(terminal: Terminal) -> Vec<String> {
        words(&terminal_command(&terminal, "ssh web-1 — Bastionless", &ssh()).unwrap())
    }

    #[test]
    fn linux_prefers_terminal_then_debian_s_alternative_then_the_known_list_in_order() {
        let mut linux = env(Os::Unix, &["xterm", "kitty", "x-terminal-emulator"]);
        assert_eq!(
            choose_terminal(None, &linux),
            Ok(Terminal::XTerminalEmulator)
        );
        linux.on_path.retain(|p| p != "x-terminal-emulator");
        assert_eq!(choose_terminal(None, &linux), Ok(Terminal::Kitty));
        linux.terminal_var = Some("/opt/bin/foot".into());
        assert_eq!(choose_terminal(None, &linux), Ok(Terminal::Foot));
        linux.terminal_var = Some("st".into());
        assert_eq!(
            choose_terminal(None, &linux),
            Ok(Terminal::Other("st".into()))
        );
        assert_eq!(
            choose_terminal(None, &env(Os::Unix, &[])),
            Err(TerminalError::NoneFound)
        );
        for (name, terminal) in UNIX_TERMINALS {
            assert_eq!(choose_terminal(None, &env(Os::Unix, &[name])), Ok(terminal));
        }
    }

    #[test]
    fn macos_uses_iterm_when_installed_else_terminal_and_windows_wt_else_a_console() {
        let mut mac = env(Os::MacOs, &[]);
        assert_eq!(choose_terminal(None, &mac), Ok(Terminal::MacTerminal));
        mac.iterm_installed = true;
        assert_eq!(choose_terminal(None, &mac), Ok(Terminal::ITerm));
        assert_eq!(
            choose_terminal(None, &env(Os::Windows, &["wt"])),
            Ok(Terminal::WindowsTerminal)
        );
        assert_eq!(
            choose_terminal(None, &env(Os::Windows, &[])),
            Ok(Terminal::WindowsConsole)
        );
    }

    #[test]
    fn a_template_wins_over_detection_everywhere() {
        for os in [Os::Unix, Os::MacOs, Os::Windows] {
            assert_eq!(
                choose_terminal(Some(" kitty -- {command} "), &env(os, &["xterm", "wt"])),
                Ok(Terminal::Template("kitty -- {command}".into()))
            );
        }
        assert_eq!(
            choose_terminal(Some("  "), &env(Os::Unix, &["xterm"])),
            Ok(Terminal::Xterm)
        );
    }

    #[test]
    fn each_unix_terminal_gets_a_title_and_the_command_as_separate_words() {
        let t = "ssh web-1 — Bastionless";
        let tail = ["ssh", "-p", "40022", "ec2-user@127.0.0.1"];
        let expect = |head: &[&str]| -> Vec<String> {
            head.iter().chain(&tail).map(|s| (*s).to_owned()).collect()
        };
        assert_eq!(
            launched(Terminal::XTerminalEmulator),
            expect(&["x-terminal-emulator", "-T", t, "-e"])
        );
        assert_eq!(
            launched(Terminal::GnomeTerminal),
            expect(&["gnome-terminal", "--title", t, "--"])
        );
        assert_eq!(
            launched(Terminal::Konsole),
            expect(&["konsole", "-p", &format!("tabtitle={t}"), "-e"])
        );
        assert_eq!(
            launched(Terminal::Kitty),
            expect(&["kitty", "--title", t, "--"])
        );
        assert_eq!(
            launched(Terminal::Alacritty),
            expect(&["alacritty", "--title", t, "-e"])
        );
        assert_eq!(launched(Terminal::Foot), expect(&["foot", "--title", t]));
        assert_eq!(launched(Terminal::Xterm), expect(&["xterm", "-T", t, "-e"]));
        let escape = "printf '\\033]0;%s\\007' \"$0\"; exec \"$@\"";
        assert_eq!(
            launched(Terminal::WezTerm),
            expect(&["wezterm", "start", "--", "sh", "-c", escape, t])
        );
        assert_eq!(
            launched(Terminal::Other("/usr/local/bin/st".into())),
            expect(&["/usr/local/bin/st", "-e", "sh", "-c", escape, t])
        );
    }

    #[test]
    fn the_escape_title_wrapper_runs_the_command_unchanged_and_sets_the_title() {
        let line = terminal_command(
            &Terminal::Other("unused".into()),
            "it's $HOME",
            &["printf".into(), "%s|".into(), "a b".into(), "$PATH".into()],
        )
        .unwrap();
        // Run the part after `-e` with a real shell.
        let output = std::process::Command::new(&line.args[1])
            .args(&line.args[2..])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "\u{1b}]0;it's $HOME\u{7}a b|$PATH|"
        );
    }

    #[test]
    fn macos_terminals_get_the_command_as_one_shell_line_through_applescript_arguments() {
        let mac = launched(Terminal::MacTerminal);
        assert_eq!(mac[0], "osascript");
        assert_eq!(mac[1..3], ["-e", "on run argv"]);
        assert!(mac.contains(&"set custom title of newTab to (item 2 of argv)".to_owned()));
        assert_eq!(mac[mac.len() - 3], "end run");
        assert_eq!(mac[mac.len() - 2], "ssh -p 40022 ec2-user@127.0.0.1");
        assert_eq!(mac[mac.len() - 1], "ssh web-1 — Bastionless");

        let iterm = terminal_command(
            &Terminal::ITerm,
            "t",
            &["ssh".into(), "-o".into(), "ProxyCommand=a b".into()],
        )
        .unwrap();
        let iterm = words(&iterm);
        assert!(iterm.contains(&"tell application \"iTerm\"".to_owned()));
        assert!(iterm.contains(&"write text (item 1 of argv)".to_owned()));
        assert_eq!(iterm[iterm.len() - 2], "ssh -o 'ProxyCommand=a b'");
    }

    #[test]
    fn windows_terminal_escapes_its_separator_and_the_console_gets_a_quoted_title() {
        let wt = terminal_command(
            &Terminal::WindowsTerminal,
            "ssh web-1 — Bastionless",
            &["ssh".into(), "echo a; echo b".into()],
        )
        .unwrap();
        assert_eq!(
            words(&wt),
            [
                "wt",
                "new-tab",
                "--title",
                "ssh web-1 — Bastionless",
                "ssh",
                "echo a\\; echo b"
            ]
        );
        assert_eq!(
            launched(Terminal::WindowsConsole),
            [
                "cmd.exe",
                "/c",
                "start",
                "ssh web-1 — Bastionless",
                "ssh",
                "-p",
                "40022",
                "ec2-user@127.0.0.1"
            ]
        );
        assert!(
            window_title("ssh", "x").contains(' '),
            "start needs a quoted title"
        );
    }

    #[test]
    fn templates_expand_the_title_the_command_words_and_the_command_line() {
        let line = terminal_command(
            &Terminal::Template("my-term --name '{title}' -- {command}".into()),
            "ssh web-1",
            &ssh(),
        )
        .unwrap();
        assert_eq!(
            words(&line),
            [
                "my-term",
                "--name",
                "ssh web-1",
                "--",
                "ssh",
                "-p",
                "40022",
                "ec2-user@127.0.0.1"
            ]
        );
        let line = terminal_command(
            &Terminal::Template("tmux new-window -n {title} {command_line}".into()),
            "web",
            &["ssh".into(), "a b".into()],
        )
        .unwrap();
        assert_eq!(
            words(&line),
            ["tmux", "new-window", "-n", "web", "ssh 'a b'"]
        );
    }

    #[test]
    fn bad_templates_say_what_is_wrong() {
        for (template, why) in [
            ("xterm -e", "no {command}"),
            ("xterm 'unbalanced", "unbalanced"),
            ("xterm -e x{command}", "a word of its own"),
        ] {
            let error = terminal_command(&Terminal::Template(template.into()), "t", &ssh())
                .unwrap_err()
                .to_string();
            assert!(error.contains(why), "{template}: {error}");
        }
    }
}
