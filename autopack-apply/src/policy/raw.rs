//! The raw header scan: rules checked on the patch text before libgit2 parses it (its
//! parser strips a leading `/` and normalises some paths, so an absolute path would reach
//! the checks after it as a relative one).

use autopack_core::patch_rules::PathLimits;

use super::PolicyViolation;
use super::paths::check_path;

struct RawScan<'a> {
    limits: &'a PathLimits,
    /// Paths already checked: each file names its path three or four times.
    checked: std::collections::HashSet<String>,
    section: String,
    /// Remaining (old, new) lines of the current hunk; `None` outside hunks.
    hunk: Option<(u64, u64)>,
    saw_diff_git: bool,
}

impl RawScan<'_> {
    fn check(&mut self, path: &str) -> Result<(), PolicyViolation> {
        if !self.checked.contains(path) {
            check_path(path, self.limits)?;
            self.checked.insert(path.to_owned());
        }
        Ok(())
    }
}

pub(super) fn scan_raw(patch: &[u8], limits: &PathLimits) -> Result<(), PolicyViolation> {
    let mut st = RawScan {
        limits,
        checked: std::collections::HashSet::new(),
        section: String::new(),
        hunk: None,
        saw_diff_git: false,
    };
    for raw in patch.split(|b| *b == b'\n') {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.contains(&0) {
            return Err(PolicyViolation::Binary {
                path: st.section.clone(),
            });
        }
        if let Some((old, new)) = st.hunk {
            match line.first() {
                Some(b' ') => st.hunk = Some((old.saturating_sub(1), new.saturating_sub(1))),
                Some(b'-') => st.hunk = Some((old.saturating_sub(1), new)),
                Some(b'+') => st.hunk = Some((old, new.saturating_sub(1))),
                Some(b'\\') => {}
                // An empty line inside a hunk is an empty context line for some tools.
                None => st.hunk = Some((old.saturating_sub(1), new.saturating_sub(1))),
                _ => st.hunk = None,
            }
            if st.hunk.is_some() {
                if st.hunk == Some((0, 0)) {
                    st.hunk = None;
                }
                continue;
            }
        }
        scan_header_line(&mut st, &String::from_utf8_lossy(line))?;
    }
    if !st.saw_diff_git {
        return Err(PolicyViolation::NotGitDiff {
            reason: "no 'diff --git' header".into(),
        });
    }
    Ok(())
}

fn scan_header_line(st: &mut RawScan<'_>, line: &str) -> Result<(), PolicyViolation> {
    if let Some(rest) = line.strip_prefix("diff --git ") {
        st.saw_diff_git = true;
        st.section = rest.to_owned();
        let (a, b) = split_diff_git(rest);
        for (p, prefix) in [(a, "a/"), (b, "b/")] {
            let p = unquote(&p);
            let stripped = p.strip_prefix(prefix).unwrap_or(&p);
            if p.starts_with('/') || stripped.starts_with('/') {
                return Err(PolicyViolation::AbsolutePath { path: p.clone() });
            }
        }
        // Component rules before the heuristic below: `a/.git /x` is a `.git` name (NTFS
        // drops the trailing space), not an absolute path.
        let (a, b) = split_diff_git(rest);
        for (p, prefix) in [(a, "a/"), (b, "b/")] {
            let p = unquote(&p);
            st.check(p.strip_prefix(prefix).unwrap_or(&p))?;
        }
        if rest.contains(" /") || rest.contains(" b//") || rest.contains(" \"/") {
            return Err(PolicyViolation::AbsolutePath {
                path: rest.to_owned(),
            });
        }
        if let Some(first) = split_diff_git(rest).0.strip_prefix("a/") {
            st.section = first.to_owned();
        }
    } else if let Some(rest) = line
        .strip_prefix("--- ")
        .or_else(|| line.strip_prefix("+++ "))
    {
        let prefix = if line.starts_with("---") { "a/" } else { "b/" };
        let p = unquote(rest.split('\t').next().unwrap_or(rest).trim_end());
        if p == "/dev/null" {
            return Ok(());
        }
        let stripped = p.strip_prefix(prefix).unwrap_or(&p);
        if p.starts_with('/') || stripped.starts_with('/') {
            return Err(PolicyViolation::AbsolutePath { path: p.clone() });
        }
        st.check(stripped)?;
    } else if let Some(rest) = ["rename from ", "rename to ", "copy from ", "copy to "]
        .iter()
        .find_map(|k| line.strip_prefix(k))
    {
        let p = unquote(rest);
        st.check(&p)?;
    } else if line.starts_with("GIT binary patch") || line.starts_with("Binary files ") {
        return Err(PolicyViolation::Binary {
            path: st.section.clone(),
        });
    } else if let Some(rest) = line.strip_prefix("@@ -") {
        st.hunk = parse_hunk_counts(rest);
    }
    Ok(())
}

/// `a,b +c,d @@` → remaining (old, new) line counts.
fn parse_hunk_counts(rest: &str) -> Option<(u64, u64)> {
    let (old, rest) = rest.split_once(" +")?;
    let new = rest.split_once(" @@")?.0;
    let count = |s: &str| -> Option<u64> {
        match s.split_once(',') {
            Some((_, n)) => n.parse().ok(),
            None => s.parse::<u64>().ok().map(|_| 1),
        }
    };
    let counts = (count(old)?, count(new)?);
    if counts == (0, 0) { None } else { Some(counts) }
}

/// Splits the paths of a `diff --git` line (best effort for unquoted names with spaces).
fn split_diff_git(rest: &str) -> (String, String) {
    if let Some(stripped) = rest.strip_prefix('"')
        && let Some(end) = find_closing_quote(stripped)
    {
        let a = format!("\"{}", &stripped[..=end]);
        let b = stripped[end + 1..].trim_start().to_owned();
        return (a, b);
    }
    if let Some(i) = rest
        .find(" b/")
        .or_else(|| rest.find(" \"b/"))
        .or_else(|| rest.rfind(' '))
    {
        return (rest[..i].to_owned(), rest[i + 1..].to_owned());
    }
    (rest.to_owned(), String::new())
}

fn find_closing_quote(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Undoes git's C-style quoting of a path (`"a/\303\251"`); unquoted input is returned as is.
fn unquote(s: &str) -> String {
    let Some(inner) = s.strip_prefix('"').and_then(|t| t.strip_suffix('"')) else {
        return s.to_owned();
    };
    let bytes = inner.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' || i + 1 >= bytes.len() {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let c = bytes[i + 1];
        i += 2;
        match c {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                for _ in 0..2 {
                    match bytes.get(i) {
                        Some(d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push((v & 0xff) as u8);
            }
            other => out.push(other),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unquotes_git_paths() {
        assert_eq!(unquote("\"a/\\303\\251 x\""), "a/é x");
        assert_eq!(unquote("plain"), "plain");
    }

    #[test]
    fn hunk_counts() {
        assert_eq!(parse_hunk_counts("1,2 +1,3 @@"), Some((2, 3)));
        assert_eq!(parse_hunk_counts("1 +1 @@ fn x"), Some((1, 1)));
        assert_eq!(parse_hunk_counts("0,0 +0,0 @@"), None);
    }
}
