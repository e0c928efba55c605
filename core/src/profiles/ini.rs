//! A tolerant reader for the AWS shared config and credentials files.
//!
//! `aws-config` has its own parser, but it rejects a whole file for one bad line, and a user with
//! twenty profiles should lose only the one whose section is broken. This reader splits a file into
//! sections, keeps each section's raw text (so valid sections can be handed to `aws-config`
//! byte for byte) and records every problem on the section it belongs to.

/// One problem on one line, in words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineProblem {
    /// 1-based line number in the file.
    pub line: usize,
    pub message: String,
}

/// One `[header]` and everything up to the next header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The text between the brackets, trimmed (`profile prod`, `default`, `sso-session corp`).
    pub header: String,
    /// 1-based line number of the header.
    pub line: usize,
    /// Top-level `key = value` pairs in file order; keys are lower-cased as the AWS tools do.
    pub properties: Vec<(String, String)>,
    pub problems: Vec<LineProblem>,
    /// The header and its lines exactly as written, for handing valid sections on unchanged.
    pub raw: String,
}

/// A parsed file: its sections, and problems that belong to no section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IniFile {
    pub sections: Vec<Section>,
    /// Lines before the first header that are not blank or comments.
    pub stray: Vec<LineProblem>,
}

/// Splits `text` into sections. Never fails: every problem is recorded where it belongs.
pub fn parse(text: &str) -> IniFile {
    let mut file = IniFile::default();
    let mut current: Option<Section> = None;
    // Whether the previous property had an empty value, so indented lines are its sub-properties.
    let mut in_sub_properties = false;

    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let trimmed = line.trim();
        if let Some(section) = current.as_mut() {
            section.raw.push_str(line);
            section.raw.push('\n');
        }
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if trimmed.starts_with('[') {
            if let Some(done) = current.take() {
                file.sections.push(strip_trailing_line(done, line));
            }
            in_sub_properties = false;
            let mut section = Section {
                header: String::new(),
                line: number,
                properties: Vec::new(),
                problems: Vec::new(),
                raw: format!("{line}\n"),
            };
            match header_text(trimmed) {
                Some(header) => section.header = header,
                None => {
                    section.header = trimmed.trim_start_matches('[').trim().to_owned();
                    section.problems.push(LineProblem {
                        line: number,
                        message: format!(
                            "`{trimmed}` is not a valid section header (expected `[profile NAME]`)"
                        ),
                    });
                }
            }
            current = Some(section);
            continue;
        }
        let Some(section) = current.as_mut() else {
            file.stray.push(LineProblem {
                line: number,
                message: format!("`{}` stands before any [section] header", shorten(trimmed)),
            });
            continue;
        };
        let indented = line.starts_with([' ', '\t']);
        if indented && in_sub_properties {
            if !trimmed.contains('=') {
                section.problems.push(LineProblem {
                    line: number,
                    message: format!("`{}` is not a `key = value` sub-setting", shorten(trimmed)),
                });
            }
            continue;
        }
        match trimmed.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                let value = strip_inline_comment(value.trim());
                in_sub_properties = value.is_empty();
                section
                    .properties
                    .push((key.trim().to_ascii_lowercase(), value.to_owned()));
            }
            _ => section.problems.push(LineProblem {
                line: number,
                message: format!("`{}` is not a `key = value` setting", shorten(trimmed)),
            }),
        }
    }
    if let Some(done) = current.take() {
        file.sections.push(done);
    }
    file
}

/// `raw` already holds the next header line when a section ends; take it back out.
fn strip_trailing_line(mut section: Section, next_header: &str) -> Section {
    let tail = format!("{next_header}\n");
    if section.raw.ends_with(&tail) {
        section.raw.truncate(section.raw.len() - tail.len());
    }
    section
}

fn header_text(trimmed: &str) -> Option<String> {
    let inner = trimmed.strip_prefix('[')?;
    let end = inner.find(']')?;
    let after = inner[end + 1..].trim();
    if !(after.is_empty() || after.starts_with('#') || after.starts_with(';')) {
        return None;
    }
    let header = inner[..end]
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    (!header.is_empty()).then_some(header)
}

/// The AWS tools treat ` #` and ` ;` (after whitespace) as the start of a comment in a value.
fn strip_inline_comment(value: &str) -> &str {
    let bytes = value.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if (*b == b'#' || *b == b';') && i > 0 && bytes[i - 1].is_ascii_whitespace() {
            return value[..i].trim_end();
        }
    }
    value
}

/// Problems quote the offending line; a pasted secret must not be echoed whole.
fn shorten(text: &str) -> String {
    const SHOWN: usize = 24;
    if text.chars().count() <= SHOWN {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(SHOWN).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The last value given for `key`, as the AWS tools read it.
    fn value<'a>(section: &'a Section, key: &str) -> Option<&'a str> {
        section
            .properties
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn sections_keep_their_properties_and_raw_text() {
        let file =
            parse("[default]\nregion = us-east-1\n\n[profile dev]\nregion=eu-west-1 # home\n");
        assert_eq!(file.sections.len(), 2);
        assert_eq!(file.sections[0].header, "default");
        assert_eq!(file.sections[0].raw, "[default]\nregion = us-east-1\n\n");
        assert_eq!(file.sections[1].header, "profile dev");
        assert_eq!(value(&file.sections[1], "region"), Some("eu-west-1"));
        assert!(file.stray.is_empty());
    }

    #[test]
    fn a_garbage_line_marks_only_its_own_section() {
        let file = parse(
            "[profile a]\nregion = us-east-1\nthis is garbage\n[profile b]\nregion = us-west-2\n",
        );
        assert_eq!(file.sections[0].problems.len(), 1);
        assert_eq!(file.sections[0].problems[0].line, 3);
        assert!(file.sections[1].problems.is_empty());
    }

    #[test]
    fn sub_properties_belong_to_the_key_above_them() {
        let file = parse("[profile a]\ns3 =\n  max_concurrent_requests = 20\nregion = us-east-1\n");
        assert!(file.sections[0].problems.is_empty());
        assert_eq!(value(&file.sections[0], "region"), Some("us-east-1"));
    }

    #[test]
    fn later_values_win_and_keys_are_case_insensitive() {
        let file = parse("[profile a]\nRegion = us-east-1\nregion = us-west-2\n");
        assert_eq!(value(&file.sections[0], "region"), Some("us-west-2"));
    }

    #[test]
    fn lines_before_any_header_are_reported_as_stray() {
        let file = parse("region = us-east-1\n[default]\n");
        assert_eq!(file.stray.len(), 1);
        assert_eq!(file.sections.len(), 1);
    }

    #[test]
    fn a_long_bad_line_is_not_quoted_whole() {
        let secret = "AKIAABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789secretsecret";
        let file = parse(&format!("[profile a]\n{secret}\n"));
        assert!(!file.sections[0].problems[0].message.contains(secret));
    }

    #[test]
    fn a_broken_header_is_a_problem_of_that_section() {
        let file = parse("[profile a\nregion = us-east-1\n");
        assert_eq!(file.sections[0].problems.len(), 1);
    }

    mod properties {
        use super::super::parse;
        use proptest::prelude::*;

        /// Lines of anything a hand-edited file may hold: headers, settings, comments, junk.
        fn line() -> impl Strategy<Value = String> {
            prop_oneof![
                "\\[[ a-z-]{0,12}\\]?".prop_map(String::from),
                "[ \\t]{0,2}[a-z_]{1,10}[ ]?=[ ]?[ -~]{0,20}".prop_map(String::from),
                "[#;][ -~]{0,20}".prop_map(String::from),
                "[ -~\\t]{0,30}".prop_map(String::from),
                "\\PC{0,10}".prop_map(String::from),
            ]
        }

        proptest! {
            /// Whatever the text, parsing returns, and every line lands in exactly one place:
            /// a section's raw text or the lines before the first header.
            #[test]
            fn any_text_parses_and_every_line_is_kept(lines in prop::collection::vec(line(), 0..40)) {
                let text = lines.join("\n");
                let file = parse(&text);
                let in_sections: usize = file.sections.iter().map(|s| s.raw.lines().count()).sum();
                let before_first = text
                    .lines()
                    .position(|l| l.trim().starts_with('['))
                    .unwrap_or(text.lines().count());
                prop_assert_eq!(in_sections + before_first, text.lines().count());
                let raw: String = file.sections.iter().map(|s| s.raw.as_str()).collect();
                let tail: String = text.lines().skip(before_first).map(|l| format!("{l}\n")).collect();
                prop_assert_eq!(raw, tail);
            }

            /// Well-formed sections written out and read back give the same headers and settings.
            #[test]
            fn written_sections_read_back_the_same(
                sections in prop::collection::vec(
                    ("[a-z][a-z0-9-]{0,10}", prop::collection::vec(("[a-z][a-z_]{0,10}", "[A-Za-z0-9/:.+-]{1,20}"), 0..6)),
                    0..8,
                )
            ) {
                let mut text = String::new();
                for (name, settings) in &sections {
                    text += &format!("[profile {name}]\n");
                    for (key, value) in settings {
                        text += &format!("{key} = {value}\n");
                    }
                }
                let file = parse(&text);
                prop_assert_eq!(file.sections.len(), sections.len());
                for (parsed, (name, settings)) in file.sections.iter().zip(&sections) {
                    prop_assert_eq!(&parsed.header, &format!("profile {name}"));
                    prop_assert!(parsed.problems.is_empty());
                    let expected: Vec<(String, String)> = settings.clone();
                    prop_assert_eq!(&parsed.properties, &expected);
                }
            }
        }
    }
}
