//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::time::Duration;

use autopack_sandbox::{Env, Job, Network, OutputMode, Policy, Sandbox};

/// Landlock, or `None` with a printed reason. Under `CI=true` a missing Landlock fails the
/// test: CI runs on machines that have it, so a skip there would hide a broken sandbox.
pub fn landlock() -> Option<Sandbox> {
    match Sandbox::detect() {
        Ok(s) => Some(s),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but Landlock is unavailable: {e}")
        }
        Err(e) => {
            eprintln!("skipping: {e}");
            None
        }
    }
}

pub fn sh(script: &str, cwd: &Path, timeout: Duration) -> Job {
    Job {
        program: "sh".into(),
        args: vec!["-c".into(), script.into()],
        cwd: cwd.to_owned(),
        env: Env::default(),
        stdin: Vec::new(),
        timeout,
        output: OutputMode::Separate {
            stdout_limit: 1 << 20,
            stderr_tail: 1 << 16,
        },
    }
}

pub fn policy(writable: &Path, network: Network) -> Policy {
    Policy {
        writable: vec![writable.to_owned()],
        readable: Vec::new(),
        network,
    }
}

/// Alive and not a zombie.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 1..];
            rest.split_whitespace()
                .next()
                .map(|st| st != "Z" && st != "X")
        })
        .unwrap_or(false)
}

/// A pid a job script wrote (its host-side pid, read from /proc/self/stat by a builtin).
pub fn read_pid(file: &Path) -> u32 {
    std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .trim()
        .parse()
        .unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
