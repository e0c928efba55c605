//! One concern's file as text: a `schema` number, then the concern's own tables.
//!
//! Reading is strict on purpose. A file that is not TOML, has a key this version does not know
//! (a typo in a hand edit) or a value out of range is *unreadable*, and the store sets it aside
//! rather than loading half of it and then writing the half back over the user's edit. A file
//! from a newer Bastionless is refused and left where it is, so that version still finds it.
//! Older schemas are upgraded one step at a time by the concern's [`Document::migrate`].

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A concern kept in a file of its own.
pub(crate) trait Document: Serialize + DeserializeOwned + Default + Clone {
    /// The file's name in the store directory.
    const FILE: &'static str;
    /// What the file holds, in the user's words ("favorites").
    const WHAT: &'static str;
    /// The schema this version reads and writes.
    const SCHEMA: u32;

    /// Upgrades a table of schema `from` (below [`Self::SCHEMA`]) to `from + 1`.
    fn migrate(from: u32, table: &mut toml::Table) -> Result<(), String>;

    /// Checks what the types cannot say: ranges, duplicates.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Why a file's text cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unreadable {
    /// Not TOML, or not this concern's shape; the text says where and what.
    Damaged(String),
    /// Written by a newer Bastionless with this schema.
    Newer(u32),
}

/// Reads `text` as a `D`, upgrading an older schema. A file without `schema` (written by hand,
/// say, for an import) counts as schema 1.
pub(crate) fn parse<D: Document>(text: &str) -> Result<D, Unreadable> {
    let mut table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| Unreadable::Damaged(describe(text, &e)))?;
    let schema = match table.remove("schema") {
        None => 1,
        Some(toml::Value::Integer(n)) if n >= 1 => u32::try_from(n).unwrap_or(u32::MAX),
        Some(other) => {
            return Err(Unreadable::Damaged(format!(
                "`schema` must be a whole number from 1, not {other}"
            )));
        }
    };
    if schema > D::SCHEMA {
        return Err(Unreadable::Newer(schema));
    }
    for from in schema..D::SCHEMA {
        D::migrate(from, &mut table).map_err(|why| {
            Unreadable::Damaged(format!("could not upgrade it from schema {from}: {why}"))
        })?;
    }
    let doc: D = table
        .try_into()
        .map_err(|e: toml::de::Error| Unreadable::Damaged(e.message().to_owned()))?;
    doc.validate().map_err(Unreadable::Damaged)?;
    Ok(doc)
}

/// The text of `doc`: a header that says what the file is, the schema, then the tables.
pub(crate) fn render<D: Document>(doc: &D) -> String {
    let body = toml::to_string_pretty(doc).unwrap_or_else(|e| {
        // Every document is plain data (strings, numbers, tables); serialising cannot fail.
        unreachable!("{} could not be written as TOML: {e}", D::WHAT)
    });
    format!(
        "# Bastionless {what}. Safe to edit while the app is closed or open (it rereads this \
         file); a file it cannot read is set aside, never overwritten.\nschema = {schema}\n\n{body}",
        what = D::WHAT,
        schema = D::SCHEMA,
    )
}

/// A one-line TOML error with the line it is on.
fn describe(text: &str, error: &toml::de::Error) -> String {
    match error.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {}", error.message())
        }
        None => error.message().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// A concern with a history: schema 1 called the field `users`, schema 2 `people`.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        #[serde(default)]
        people: Vec<String>,
    }

    impl Document for Sample {
        const FILE: &'static str = "sample.toml";
        const WHAT: &'static str = "samples";
        const SCHEMA: u32 = 2;

        fn migrate(from: u32, table: &mut toml::Table) -> Result<(), String> {
            match from {
                1 => {
                    if let Some(users) = table.remove("users") {
                        table.insert("people".into(), users);
                    }
                    Ok(())
                }
                _ => Err(format!("no upgrade from schema {from}")),
            }
        }

        fn validate(&self) -> Result<(), String> {
            match self.people.iter().find(|p| p.is_empty()) {
                Some(_) => Err("a person has an empty name".into()),
                None => Ok(()),
            }
        }
    }

    #[test]
    fn what_is_rendered_reads_back_the_same() {
        let sample = Sample {
            people: vec!["ana".into(), "bo".into()],
        };
        let text = render(&sample);
        assert!(text.contains("schema = 2"), "{text}");
        assert_eq!(parse::<Sample>(&text), Ok(sample));
    }

    #[test]
    fn an_older_schema_is_upgraded_step_by_step() {
        let parsed = parse::<Sample>("schema = 1\nusers = [\"ana\"]\n").unwrap();
        assert_eq!(parsed.people, ["ana"]);
        // No `schema` at all counts as the first.
        let parsed = parse::<Sample>("users = [\"bo\"]\n").unwrap();
        assert_eq!(parsed.people, ["bo"]);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        assert_eq!(
            parse::<Sample>("schema = 7\npeople = []\n"),
            Err(Unreadable::Newer(7))
        );
    }

    #[test]
    fn damage_is_described_with_its_line() {
        let Err(Unreadable::Damaged(why)) = parse::<Sample>("schema = 2\npeople = [\n") else {
            panic!("a truncated file parsed")
        };
        assert!(why.starts_with("line 2"), "{why}");

        for (text, expected) in [
            ("schema = \"two\"\n", "`schema` must be a whole number"),
            ("schema = 2\npeeple = []\n", "unknown field `peeple`"),
            ("schema = 2\npeople = [\"\"]\n", "empty name"),
        ] {
            let Err(Unreadable::Damaged(why)) = parse::<Sample>(text) else {
                panic!("{text:?} parsed")
            };
            assert!(why.contains(expected), "{text:?}: {why}");
        }
    }
}
