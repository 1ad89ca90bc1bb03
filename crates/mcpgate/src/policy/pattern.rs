//! Name and URI patterns of policy rules: `*` matches any run of characters (`/` included, so
//! `file:///docs/*` covers every document below), `?` any one character, everything else
//! itself. Matching is exact and case-sensitive: tool names and URIs are compared as written.

/// One compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pattern {
    /// No wildcard: equality.
    Exact(String),
    /// `*` alone.
    Any,
    /// `prefix*`, the common case (`delete_*`).
    Prefix(String),
    /// Anything else, matched by backtracking over its pieces.
    Glob(Vec<Piece>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Text(Vec<char>),
    AnyOne,
    AnyRun,
}

impl Pattern {
    /// The pattern `text` (never empty: the caller refuses empty patterns).
    pub(crate) fn new(text: &str) -> Self {
        if !text.contains(['*', '?']) {
            return Pattern::Exact(text.to_owned());
        }
        if text.chars().all(|c| c == '*') {
            return Pattern::Any;
        }
        if let Some(prefix) = text.strip_suffix('*')
            && !prefix.contains(['*', '?'])
        {
            return Pattern::Prefix(prefix.to_owned());
        }
        let mut pieces: Vec<Piece> = Vec::new();
        for c in text.chars() {
            match (c, pieces.last_mut()) {
                ('*', Some(Piece::AnyRun)) => {}
                ('*', _) => pieces.push(Piece::AnyRun),
                ('?', _) => pieces.push(Piece::AnyOne),
                (c, Some(Piece::Text(run))) => run.push(c),
                (c, _) => pieces.push(Piece::Text(vec![c])),
            }
        }
        Pattern::Glob(pieces)
    }

    /// Whether `name` matches.
    pub(crate) fn matches(&self, name: &str) -> bool {
        match self {
            Pattern::Exact(exact) => exact == name,
            Pattern::Any => true,
            Pattern::Prefix(prefix) => name.starts_with(prefix.as_str()),
            Pattern::Glob(pieces) => {
                let name: Vec<char> = name.chars().collect();
                glob(pieces, &name)
            }
        }
    }

    /// Whether every name this pattern matches is matched by `self` too, as far as can be
    /// told cheaply (used to find rules an earlier rule hides; `false` when unsure).
    pub(crate) fn includes(&self, other: &Pattern) -> bool {
        match (self, other) {
            (Pattern::Any, _) => true,
            (_, Pattern::Exact(name)) => self.matches(name),
            (Pattern::Prefix(mine), Pattern::Prefix(theirs)) => theirs.starts_with(mine.as_str()),
            _ => self == other,
        }
    }
}

/// Backtracking glob match: at most one pending `*` is retried at a time, which keeps it
/// linear in practice (the classic wildcard-matching algorithm).
fn glob(pieces: &[Piece], name: &[char]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut retry: Option<(usize, usize)> = None;
    loop {
        match pieces.get(p) {
            Some(Piece::AnyRun) => {
                retry = Some((p, n));
                p += 1;
                continue;
            }
            Some(Piece::AnyOne) if n < name.len() => {
                p += 1;
                n += 1;
                continue;
            }
            Some(Piece::Text(text)) if name[n..].starts_with(text) => {
                p += 1;
                n += text.len();
                continue;
            }
            None if n == name.len() => return true,
            _ => {}
        }
        // A mismatch: let the last `*` swallow one more character, or fail.
        match retry {
            Some((star, at)) if at < name.len() => {
                retry = Some((star, at + 1));
                p = star + 1;
                n = at + 1;
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_prefix_and_globs() {
        let cases = [
            ("echo", "echo", true),
            ("echo", "echo2", false),
            ("*", "", true),
            ("delete_*", "delete_file", true),
            ("delete_*", "delete_", true),
            ("delete_*", "undelete_x", false),
            ("*_admin", "db_admin", true),
            ("*_admin", "db_admin2", false),
            ("file:///docs/*.md", "file:///docs/a/b.md", true),
            ("file:///docs/*.md", "file:///docs/a.txt", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*a*b*", "xxaxxbxx", true),
            ("*a*b*", "xxbxxaxx", false),
            ("ü*ß", "über-groß", true),
        ];
        for (pattern, name, expected) in cases {
            assert_eq!(Pattern::new(pattern).matches(name), expected, "{pattern} vs {name}");
        }
    }

    #[test]
    fn inclusion_is_conservative() {
        let p = Pattern::new;
        assert!(p("*").includes(&p("delete_*")));
        assert!(p("delete_*").includes(&p("delete_file")));
        assert!(p("delete_*").includes(&p("delete_all_*")));
        assert!(!p("delete_all_*").includes(&p("delete_*")));
        assert!(!p("echo").includes(&p("echo*")));
        assert!(p("a*b").includes(&p("a*b")));
        assert!(!p("a*b").includes(&p("a*c*b")), "unsure is false");
    }

    #[test]
    fn long_inputs_do_not_blow_up() {
        let pattern = Pattern::new("*a*a*a*a*a*b");
        let name = "a".repeat(5000);
        assert!(!pattern.matches(&name));
    }
}
