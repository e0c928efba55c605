//! Fuzzy matching for the command palette: the typed characters must appear in order
//! (`wb1` finds `web-1`), and runs of consecutive characters and matches at word starts score
//! higher, so the closest name comes first. Small enough not to be worth a dependency.

/// The score of `candidate` for `pattern` (higher is better), or `None` when the characters of
/// `pattern` (ignoring case and spaces) do not all appear in order in `candidate`.
pub fn score(pattern: &str, candidate: &str) -> Option<i64> {
    let mut haystack = candidate.chars().flat_map(char::to_lowercase).enumerate();
    let mut score = 0i64;
    let mut previous_char: Option<char> = None;
    let mut previous_match: Option<usize> = None;
    for wanted in pattern
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
    {
        loop {
            let (position, c) = haystack.next()?;
            let at_word_start = previous_char.is_none_or(|p| !p.is_alphanumeric());
            previous_char = Some(c);
            if c != wanted {
                continue;
            }
            score += 1;
            if at_word_start {
                score += 8;
            }
            if previous_match.is_some_and(|last| last + 1 == position) {
                score += 5;
            }
            previous_match = Some(position);
            break;
        }
    }
    // Among equal matches, the shorter candidate is the closer one.
    Some(score * 64 - candidate.chars().count().min(63) as i64)
}

#[cfg(test)]
mod tests {
    use super::score;

    #[test]
    fn characters_must_appear_in_order_ignoring_case() {
        assert!(score("wb1", "web-1").is_some());
        assert!(score("WEB", "web-1").is_some());
        assert!(score("1bw", "web-1").is_none());
        assert!(score("x", "web-1").is_none());
        assert!(score("", "web-1").is_some());
    }

    #[test]
    fn consecutive_and_word_start_matches_rank_first() {
        fn best<'a>(pattern: &str, candidates: &[&'a str]) -> &'a str {
            candidates
                .iter()
                .max_by_key(|c| score(pattern, c))
                .copied()
                .unwrap()
        }
        assert_eq!(best("db", &["web-dashboard", "db-both-1"]), "db-both-1");
        assert_eq!(best("ssm", &["app-ssm-1", "sys-s-m"]), "app-ssm-1");
        assert_eq!(
            best("web", &["web-eic-1-long-name", "web-eic-1"]),
            "web-eic-1"
        );
    }
}
