//! The child's environment: an allowlist, never the host's whole environment.

use std::collections::BTreeMap;
use std::path::Path;

/// Host variables every job inherits (when the host has them). `LC_` is a prefix: every
/// locale variable passes. Everything else must be named in [`Env::pass`].
pub const ALLOWED_HOST_VARS: &[&str] = &[
    "PATH", "LANG", "LC_", "TERM", "TZ", "USER", "LOGNAME", "SHELL",
];

/// `PATH` when the host has none: without one, `sh` and most tools cannot find anything.
pub const FALLBACK_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The environment variable that marks every process of a job (its value is unique per
/// job), so that orphans reparented away from the job's tree can still be attributed.
pub const JOB_TOKEN_VAR: &str = "AUTOPACK_JOB";

/// What a job's environment holds beyond the allowlist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    /// Host variables passed through by exact name (e.g. `CARGO_HOME`).
    pub pass: Vec<String>,
    /// Variables set to a value; they win over host variables of the same name.
    pub set: Vec<(String, String)>,
}

fn allowed(name: &str) -> bool {
    name.starts_with("LC_") || ALLOWED_HOST_VARS.iter().any(|v| *v != "LC_" && *v == name)
}

/// The child's environment, sorted by name: the host's [`ALLOWED_HOST_VARS`], the host
/// variables named in `env.pass`, then `env.set`; `HOME` and `TMPDIR` always point at
/// `home` and `tmp` (neither `pass` nor `set` can move them, so a job never writes into the
/// user's real home). A missing `PATH` becomes [`FALLBACK_PATH`].
///
/// ```
/// use std::path::Path;
/// use autopack_sandbox::{child_env, Env};
///
/// let host = [
///     ("PATH".to_owned(), "/usr/bin".to_owned()),
///     ("GITHUB_TOKEN".to_owned(), "ghp_secret".to_owned()),
/// ];
/// let env = child_env(host, &Env::default(), Path::new("/j/home"), Path::new("/j/tmp"));
/// assert!(env.iter().all(|(k, _)| k != "GITHUB_TOKEN"));
/// assert!(env.contains(&("HOME".to_owned(), "/j/home".to_owned())));
/// ```
pub fn child_env(
    host: impl IntoIterator<Item = (String, String)>,
    env: &Env,
    home: &Path,
    tmp: &Path,
) -> Vec<(String, String)> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in host {
        if allowed(&name) || env.pass.contains(&name) {
            out.insert(name, value);
        }
    }
    for (name, value) in &env.set {
        out.insert(name.clone(), value.clone());
    }
    out.entry("PATH".to_owned())
        .or_insert_with(|| FALLBACK_PATH.to_owned());
    out.insert("HOME".to_owned(), home.to_string_lossy().into_owned());
    out.insert("TMPDIR".to_owned(), tmp.to_string_lossy().into_owned());
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(a: &str, b: &str) -> (String, String) {
        (a.to_owned(), b.to_owned())
    }

    #[test]
    fn allowlist_pass_set_and_private_dirs() {
        let host = vec![
            s("PATH", "/usr/bin"),
            s("LC_ALL", "C"),
            s("HOME", "/root"),
            s("TMPDIR", "/tmp"),
            s("AWS_SECRET_ACCESS_KEY", "x"),
            s("GITHUB_TOKEN", "y"),
            s("CARGO_HOME", "/c"),
            s("LD_PRELOAD", "/evil.so"),
        ];
        let env = Env {
            pass: vec!["CARGO_HOME".into(), "HOME".into()],
            set: vec![s("RUST_LOG", "info"), s("TMPDIR", "/elsewhere")],
        };
        let got = child_env(host, &env, Path::new("/h"), Path::new("/t"));
        assert_eq!(
            got,
            vec![
                s("CARGO_HOME", "/c"),
                s("HOME", "/h"),
                s("LC_ALL", "C"),
                s("PATH", "/usr/bin"),
                s("RUST_LOG", "info"),
                s("TMPDIR", "/t"),
            ]
        );
    }

    #[test]
    fn missing_path_gets_a_fallback() {
        let got = child_env(
            Vec::new(),
            &Env::default(),
            Path::new("/h"),
            Path::new("/t"),
        );
        assert!(got.contains(&s("PATH", FALLBACK_PATH)));
    }

    proptest! {
        #[test]
        fn secrets_never_pass_unless_named(
            names in proptest::collection::vec("[A-Z_]{1,12}", 0..12),
            named in any::<bool>(),
        ) {
            let secrets = ["AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "OPENAI_API_KEY"];
            let mut host: Vec<(String, String)> =
                names.iter().map(|n| (n.clone(), "v".to_owned())).collect();
            host.extend(secrets.iter().map(|n| s(n, "secret")));
            let env = Env {
                pass: if named { vec!["GITHUB_TOKEN".to_owned()] } else { names.clone() },
                set: Vec::new(),
            };
            let got = child_env(host, &env, Path::new("/h"), Path::new("/t"));
            for secret in secrets {
                let passed = got.iter().any(|(k, _)| k == secret);
                let asked = env.pass.iter().any(|p| p == secret);
                prop_assert_eq!(passed, asked, "{}", secret);
            }
            for (k, _) in &got {
                prop_assert!(
                    allowed(k) || env.pass.contains(k) || k == "HOME" || k == "TMPDIR",
                    "{} leaked", k
                );
            }
        }
    }
}
