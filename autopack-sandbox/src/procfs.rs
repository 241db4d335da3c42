//! Reading `/proc`: start times (PID-reuse-safe identity), parents, job tokens.

use std::collections::{BTreeMap, BTreeSet};

/// The fields of `/proc/PID/stat` this crate needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    pub(crate) ppid: u32,
    pub(crate) state: u8,
    /// Field 22: clock ticks after boot.
    pub(crate) start_time: u64,
}

/// Parses a `/proc/PID/stat` line. The command name (field 2) may hold spaces and
/// parentheses, so the fields are counted from the *last* `)`.
pub(crate) fn parse_stat(line: &str) -> Option<Stat> {
    let rest = &line[line.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state).
    Some(Stat {
        state: *fields.first()?.as_bytes().first()?,
        ppid: fields.get(1)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

pub(crate) fn stat(pid: u32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The start time of a live (non-zombie) process.
pub(crate) fn live_start_time(pid: u32) -> Option<u64> {
    stat(pid)
        .filter(|s| s.state != b'Z' && s.state != b'X')
        .map(|s| s.start_time)
}

fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn has_token(pid: u32, needle: &[u8]) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|env| env.split(|b| *b == 0).any(|var| var == needle))
        .unwrap_or(false)
}

/// The processes of one job: `root`'s descendants (by parent links; pass `None` once the
/// root is reaped, as its pid may be reused) and every process
/// whose environment carries `marker` (`NAME=value`, which catches orphans reparented
/// away after `setsid` or a double fork). `known` carries processes found earlier: their
/// children stay attributed after the parent has died. Returns pid -> start time.
pub(crate) fn job_processes(
    root: Option<u32>,
    marker: &str,
    known: &BTreeMap<u32, u64>,
) -> BTreeMap<u32, u64> {
    let needle = marker.as_bytes();
    let stats: Vec<(u32, Stat)> = all_pids()
        .into_iter()
        .filter_map(|pid| Some((pid, stat(pid)?)))
        .collect();
    let mut found: BTreeMap<u32, u64> = BTreeMap::new();
    for (pid, st) in &stats {
        let same_known = known.get(pid) == Some(&st.start_time);
        if root == Some(*pid) || same_known || has_token(*pid, needle) {
            found.insert(*pid, st.start_time);
        }
    }
    // Parent links, to a fixed point: children of attributed processes are attributed.
    let mut parents: BTreeSet<u32> = found.keys().copied().collect();
    loop {
        let before = found.len();
        for (pid, st) in &stats {
            if parents.contains(&st.ppid) && !found.contains_key(pid) {
                found.insert(*pid, st.start_time);
            }
        }
        if found.len() == before {
            break;
        }
        parents = found.keys().copied().collect();
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_awkward_command_name() {
        let line =
            "1234 (a) b (c) S 1 1234 1234 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 98765 1 2 3";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                ppid: 1,
                state: b'S',
                start_time: 98765
            })
        );
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S 1"), None);
    }

    #[test]
    fn own_start_time_is_readable() {
        assert!(live_start_time(std::process::id()).is_some());
    }
}
