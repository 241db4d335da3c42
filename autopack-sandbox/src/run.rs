//! Spawning on a throwaway thread, reading, the deadline, and killing the tree.

use std::collections::{BTreeMap, VecDeque};
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;

use crate::env::{JOB_TOKEN_VAR, child_env};
use crate::log::StartedProcess;
use crate::policy::{self, Grant};
use crate::{
    Confinement, Containment, Ended, Finished, Job, OutputMode, Policy, Sandbox, StartError,
};

/// How long readers may keep reading after the tree is dead (or the deadline passed):
/// only an escaped process can still hold a pipe by then, and it must not hold the run.
pub const READER_GRACE: Duration = Duration::from_millis(200);

/// How often the job's processes are looked up in `/proc` under tracking.
pub const SCAN_INTERVAL: Duration = Duration::from_millis(20);

/// After the kill, how long to keep finding and killing stragglers under tracking.
const TRACKING_KILL_BOUND: Duration = Duration::from_secs(2);

/// Scans in a row that must find no live process of the job before it counts as gone.
const QUIET_SCANS: u32 = 3;

static JOBS: AtomicU64 = AtomicU64::new(0);

/// What the spawning thread hands back.
struct Spawned {
    child: Child,
    own_pid_namespace: bool,
}

pub(crate) fn run(sandbox: &Sandbox, job: &Job, policy: &Policy) -> Result<Finished, StartError> {
    let private = tempfile::Builder::new()
        .prefix("autopack-job-")
        .tempdir()
        .map_err(|source| StartError::Prepare {
            what: "the private job directory",
            source,
        })?;
    let home = private.path().join("home");
    let tmp = private.path().join("tmp");
    for dir in [&home, &tmp] {
        std::fs::create_dir(dir).map_err(|source| StartError::Prepare {
            what: "the private HOME/TMPDIR",
            source,
        })?;
    }
    // Non-UTF-8 host variables cannot be on the allowlist's terms; they are dropped.
    let host = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
    let env = child_env(host, &job.env, &home, &tmp);
    let token = format!(
        "{}-{}-{}",
        std::process::id(),
        JOBS.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    );
    let marker = format!("{JOB_TOKEN_VAR}={token}");
    let child_path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone());
    let grants = policy::grants(policy, &[&home, &tmp], child_path.as_deref());

    let mut cmd = Command::new(&job.program);
    cmd.args(&job.args)
        .current_dir(&job.cwd)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env(JOB_TOKEN_VAR, &token)
        .process_group(0)
        .stdin(if job.stdin.is_empty() {
            Stdio::null()
        } else {
            Stdio::piped()
        });
    let combined = match job.output {
        OutputMode::Separate { .. } => {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            None
        }
        OutputMode::Combined { .. } => {
            let (reader, writer) = std::io::pipe().map_err(|source| StartError::Prepare {
                what: "the output pipe",
                source,
            })?;
            let writer2 = writer.try_clone().map_err(|source| StartError::Prepare {
                what: "the output pipe",
                source,
            })?;
            cmd.stdout(writer).stderr(writer2);
            Some(reader)
        }
    };

    let landlock = match sandbox.confinement {
        Confinement::Landlock => sandbox.abi.map(|abi| (abi, grants, policy.network)),
        Confinement::Off => None,
    };
    let containment = sandbox.containment;
    let started = Instant::now();
    // `cmd` moves into the thread and is dropped there, so the parent keeps no copy of the
    // pipes' write ends (readers see EOF once the tree is dead).
    let spawned = std::thread::Builder::new()
        .name("autopack-sandbox-spawn".to_owned())
        .spawn(move || spawn_confined(cmd, containment, landlock))
        .map_err(|e| StartError::Thread {
            reason: e.to_string(),
        })?
        .join()
        .map_err(|_| StartError::Thread {
            reason: "it panicked".to_owned(),
        })??;
    let Spawned {
        mut child,
        own_pid_namespace,
    } = spawned;

    let record = StartedProcess {
        pid: child.id(),
        start_time: crate::procfs::stat(child.id())
            .map(|s| s.start_time)
            .unwrap_or_default(),
        own_pid_namespace,
    };
    if let Some(log) = &sandbox.log {
        log.started(&record);
    }

    if let Some(mut stdin) = child.stdin.take() {
        let bytes = job.stdin.clone();
        // Detached: a child that never reads would block this write until the tree dies
        // (then EPIPE ends it).
        let _ = std::thread::Builder::new()
            .name("autopack-sandbox-stdin".to_owned())
            .spawn(move || {
                let _ = stdin.write_all(&bytes);
            });
    }
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let mut readers = 0;
    let stdout_cap = Arc::new(Mutex::new(Capture::default()));
    let stderr_cap = Arc::new(Mutex::new(Capture::default()));
    match job.output {
        OutputMode::Separate {
            stdout_limit,
            stderr_tail,
        } => {
            if let Some(out) = child.stdout.take() {
                readers += 1;
                read_into(
                    out,
                    Arc::clone(&stdout_cap),
                    Keep::Head(stdout_limit),
                    done_tx.clone(),
                );
            }
            if let Some(err) = child.stderr.take() {
                readers += 1;
                read_into(
                    err,
                    Arc::clone(&stderr_cap),
                    Keep::Tail(stderr_tail),
                    done_tx.clone(),
                );
            }
        }
        OutputMode::Combined { tail_bytes } => {
            if let Some(reader) = combined {
                readers += 1;
                read_into(
                    reader,
                    Arc::clone(&stdout_cap),
                    Keep::Tail(tail_bytes),
                    done_tx.clone(),
                );
            }
        }
    }
    drop(done_tx);

    // A timeout too long to be represented as an instant (`Duration::MAX`, years) can
    // never be reached: the job then has no deadline rather than a panic.
    let deadline = started.checked_add(job.timeout);
    let mut tracked: BTreeMap<u32, u64> = BTreeMap::new();
    let mut last_scan: Option<Instant> = None;
    let root = child.id();
    // Short jobs are checked on soon, long ones every 5 ms: a no-op agent should not pay
    // a whole polling interval.
    let mut pause = Duration::from_micros(100);
    let (status, timed_out) = loop {
        match child.try_wait() {
            Ok(Some(status)) => break (Some(status), false),
            Ok(None) => {}
            Err(_) => break (None, false),
        }
        let now = Instant::now();
        if deadline.is_some_and(|deadline| now >= deadline) {
            break (None, true);
        }
        if !own_pid_namespace && last_scan.is_none_or(|t| now - t >= SCAN_INTERVAL) {
            tracked = crate::procfs::job_processes(Some(root), &marker, &tracked);
            last_scan = Some(now);
        }
        let left = deadline.map_or(pause, |d| d.saturating_duration_since(Instant::now()));
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(Duration::from_millis(5));
    };
    let status = if status.is_some() {
        status
    } else {
        // Timed out (or try_wait failed): kill the main process and wait for it. In a PID
        // namespace that kills every process of the job; the group catches the rest
        // otherwise.
        let _ = killpg(pid(root), Signal::SIGKILL);
        let _ = child.kill();
        child.wait().ok()
    };
    if !own_pid_namespace {
        kill_tracked(root, &marker, tracked);
    }

    // Everything that could write is dead; readers finish at EOF, or the grace ends.
    let grace_end = Instant::now() + READER_GRACE;
    for _ in 0..readers {
        if done_rx
            .recv_timeout(grace_end.saturating_duration_since(Instant::now()))
            .is_err()
        {
            break;
        }
    }
    let duration = started.elapsed();
    if let Some(log) = &sandbox.log {
        log.ended(&record);
    }
    let ended = if timed_out {
        Ended::TimedOut
    } else {
        status_to_ended(status)
    };
    let take = |cap: &Arc<Mutex<Capture>>| {
        cap.lock()
            .map(|c| (c.bytes.iter().copied().collect::<Vec<u8>>(), c.overflow))
            .unwrap_or_default()
    };
    let (first, overflow) = take(&stdout_cap);
    let (second, _) = take(&stderr_cap);
    // The private dir goes now; a failure to remove it (a job that chmod-ed its files) is
    // not the job's result.
    let _ = private.close();
    Ok(match job.output {
        OutputMode::Separate { .. } => Finished {
            ended,
            stdout: first,
            stdout_overflow: overflow,
            stderr_tail: second,
            combined_tail: Vec::new(),
            duration,
        },
        OutputMode::Combined { .. } => Finished {
            ended,
            stdout: Vec::new(),
            stdout_overflow: false,
            stderr_tail: Vec::new(),
            combined_tail: first,
            duration,
        },
    })
}

fn status_to_ended(status: Option<ExitStatus>) -> Ended {
    match status {
        Some(s) => match (s.code(), s.signal()) {
            (Some(code), _) => Ended::Exited(code),
            (None, Some(sig)) => Ended::Signalled(sig),
            (None, None) => Ended::Signalled(0),
        },
        // The status was lost (try_wait or wait failed): report it as a kill.
        None => Ended::Signalled(Signal::SIGKILL as i32),
    }
}

fn pid(raw: u32) -> Pid {
    Pid::from_raw(i32::try_from(raw).unwrap_or(i32::MAX))
}

/// Runs on the throwaway thread: every restriction here sticks to this thread only.
fn spawn_confined(
    mut cmd: Command,
    containment: Containment,
    landlock: Option<(landlock::ABI, Vec<Grant>, crate::Network)>,
) -> Result<Spawned, StartError> {
    let own_pid_namespace =
        containment == Containment::Auto && unshare(CloneFlags::CLONE_NEWPID).is_ok();
    if !own_pid_namespace {
        // Orphans of the job come back to this process instead of init, so they can be
        // found by parent link and reaped after the kill.
        let _ = nix::sys::prctl::set_child_subreaper(true);
    }
    if let Some((abi, grants, network)) = landlock {
        shed_privileges()?;
        policy::restrict_this_thread(abi, &grants, network)?;
    }
    let child = cmd.spawn().map_err(|source| StartError::Spawn { source })?;
    Ok(Spawned {
        child,
        own_pid_namespace,
    })
}

/// Keeps a confined job away from the host's own process: the host becomes non-dumpable
/// (its `/proc/PID/environ`, `maps` and the like then need `CAP_SYS_PTRACE`, which Landlock
/// does not cover at read level), and this thread — so the job it spawns — gives up every
/// capability, bounding set included, so a job started by a root host is root without
/// privileges.
fn shed_privileges() -> Result<(), StartError> {
    use caps::CapSet;
    let fail = |what: &str, e: &dyn std::fmt::Display| StartError::Landlock {
        reason: format!("cannot {what}: {e}"),
    };
    nix::sys::prctl::set_dumpable(false).map_err(|e| fail("make the host non-dumpable", &e))?;
    let held = caps::read(None, CapSet::Permitted).map_err(|e| fail("read capabilities", &e))?;
    if held.is_empty() {
        // Nothing to give up (an unprivileged host); exec cannot grant any under
        // no_new_privs, which Landlock sets.
        return Ok(());
    }
    for cap in caps::all() {
        caps::drop(None, CapSet::Bounding, cap)
            .map_err(|e| fail("drop a capability from the bounding set", &e))?;
    }
    for set in [
        CapSet::Ambient,
        CapSet::Inheritable,
        CapSet::Effective,
        CapSet::Permitted,
    ] {
        caps::clear(None, set).map_err(|e| fail("clear capabilities", &e))?;
    }
    Ok(())
}

/// Kills every process of the job until none is left (bounded), reaping the ones that were
/// reparented to this process.
fn kill_tracked(root: u32, marker: &str, mut tracked: BTreeMap<u32, u64>) {
    let bound = Instant::now() + TRACKING_KILL_BOUND;
    // The root is reaped by now; its pid may only be named as a process group.
    let _ = killpg(pid(root), Signal::SIGKILL);
    let mut quiet = 0;
    loop {
        tracked = crate::procfs::job_processes(None, marker, &tracked);
        tracked.remove(&root);
        let mut alive = false;
        for (&p, &start) in &tracked {
            match crate::procfs::stat(p) {
                Some(st) if st.start_time == start => {
                    if st.state != b'Z' && st.state != b'X' {
                        alive = true;
                        let _ = kill(pid(p), Signal::SIGKILL);
                    }
                    // Ours after reparenting (or a direct child): collect the zombie.
                    let _ = waitpid(pid(p), Some(WaitPidFlag::WNOHANG));
                }
                _ => {}
            }
        }
        tracked.retain(|p, start| crate::procfs::stat(*p).is_some_and(|s| s.start_time == *start));
        // One empty scan is not proof: a process in the middle of execve shows no
        // environment for a moment, so only several quiet scans in a row end the hunt.
        quiet = if alive { 0 } else { quiet + 1 };
        if quiet >= QUIET_SCANS || Instant::now() >= bound {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[derive(Default)]
struct Capture {
    bytes: VecDeque<u8>,
    overflow: bool,
}

#[derive(Clone, Copy)]
enum Keep {
    Head(usize),
    Tail(usize),
}

fn read_into(
    mut from: impl Read + Send + 'static,
    into: Arc<Mutex<Capture>>,
    keep: Keep,
    done: mpsc::Sender<()>,
) {
    let spawned = std::thread::Builder::new()
        .name("autopack-sandbox-reader".to_owned())
        .spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match from.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if let Ok(mut cap) = into.lock() {
                            cap.push(&buf[..n], keep);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let _ = done.send(());
        });
    // Without a reader thread the pipe is dropped: the writer gets EPIPE rather than
    // blocking, and the output is lost, which beats hanging the run.
    drop(spawned);
}

impl Capture {
    fn push(&mut self, bytes: &[u8], keep: Keep) {
        match keep {
            Keep::Head(limit) => {
                let room = limit.saturating_sub(self.bytes.len());
                if bytes.len() > room {
                    self.overflow = true;
                }
                self.bytes.extend(&bytes[..room.min(bytes.len())]);
            }
            Keep::Tail(limit) => {
                self.bytes.extend(bytes);
                let excess = self.bytes.len().saturating_sub(limit);
                self.bytes.drain(..excess);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_head_and_tail() {
        let mut head = Capture::default();
        head.push(b"hello", Keep::Head(3));
        head.push(b"!", Keep::Head(3));
        assert_eq!(head.bytes.iter().copied().collect::<Vec<_>>(), b"hel");
        assert!(head.overflow);
        let mut exact = Capture::default();
        exact.push(b"abc", Keep::Head(3));
        assert!(!exact.overflow);
        let mut tail = Capture::default();
        tail.push(b"hello", Keep::Tail(3));
        tail.push(b"!", Keep::Tail(3));
        assert_eq!(tail.bytes.iter().copied().collect::<Vec<_>>(), b"lo!");
    }

    #[test]
    fn signal_status() {
        assert_eq!(
            status_to_ended(Some(ExitStatus::from_raw(9))),
            Ended::Signalled(9)
        );
        assert_eq!(
            status_to_ended(Some(ExitStatus::from_raw(3 << 8))),
            Ended::Exited(3)
        );
    }
}
