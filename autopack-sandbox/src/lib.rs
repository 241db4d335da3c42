//! # autopack-sandbox
//!
//! Runs one external command confined, with a hard timeout and full process-tree reaping:
//! how Autopack starts agents (Codex CLI, Claude Code, aider, any command) and test
//! commands so that they write only their workspace, never the host repository, and leave
//! no process behind. Linux only, through Landlock (kernel 5.13 or newer with `landlock`
//! among its LSMs); callers refuse to run unconfined unless the user opted out
//! (`autopack run --no-sandbox`).
//!
//! ```
//! use std::time::Duration;
//! use autopack_sandbox::{Ended, Env, Job, Network, OutputMode, Policy, Sandbox};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let workspace = tempfile::tempdir()?;
//! // An error here says why this host cannot confine (no Landlock, an old kernel).
//! let sandbox = Sandbox::detect()?;
//! let job = Job {
//!     program: "sh".into(),
//!     args: vec!["-c".into(), "echo hi > note; cat note; echo $HOME >&2".into()],
//!     cwd: workspace.path().to_owned(),
//!     env: Env::default(),
//!     stdin: Vec::new(),
//!     timeout: Duration::from_secs(10),
//!     output: OutputMode::Separate { stdout_limit: 1 << 20, stderr_tail: 4096 },
//! };
//! let policy = Policy {
//!     writable: vec![workspace.path().to_owned()],
//!     readable: Vec::new(),
//!     network: Network::Deny,
//! };
//! let finished = sandbox.run(&job, &policy)?;
//! assert_eq!(finished.ended, Ended::Exited(0));
//! assert_eq!(finished.stdout, b"hi\n");
//! # Ok(())
//! # }
//! ```
//!
//! What a job gets:
//!
//! - **Environment**: only an allowlist ([`child_env`]): a few host variables, the ones the
//!   job names, the ones it sets; `HOME` and `TMPDIR` are a private per-job directory that
//!   [`Sandbox::run`] creates and removes.
//! - **Filesystem and network** ([`Confinement::Landlock`]): read/execute on
//!   [`SYSTEM_PATHS`], the `PATH` directories and [`Policy::readable`]; full access beneath
//!   [`Policy::writable`] and the private directories; nothing else, not even listing. TCP
//!   bind/connect denied under [`Network::Deny`]. With Landlock ABI >= 6 the job can neither
//!   signal processes outside its sandbox nor reach their abstract UNIX sockets; at any ABI
//!   it cannot ptrace them or read their memory (`/proc/<host pid>/mem`).
//! - **Containment**: the job is PID 1 of a new PID namespace when the host may create one
//!   (root or `CAP_SYS_ADMIN`), so when it ends the kernel kills everything it started,
//!   `setsid` and double forks included. Otherwise (or with [`Containment::Tracking`]) the
//!   job gets its own process group, the host becomes a child subreaper, and the job's
//!   processes are tracked through `/proc` by parent links and an environment token
//!   ([`JOB_TOKEN_VAR`]); all are killed when the job ends.
//! - **Timeout**: output is read on threads; when the main process ends or the deadline
//!   passes the tree is killed, readers get at most [`READER_GRACE`] more, and whatever was
//!   read is returned. A grandchild holding stdout open cannot stretch the timeout. A
//!   timeout too far away to be represented as an instant (`Duration::MAX`) is no
//!   deadline rather than a panic; output limits of any size are safe (buffers grow with
//!   what is read, never allocated up front).
//!
//! How: Landlock restricts the calling thread and what it spawns afterwards, so each run
//! prepares a fresh thread that (optionally) unshares the PID namespace, enforces the
//! ruleset and spawns the command; the thread then ends and is never reused. No unsafe
//! code is involved.
//!
//! Limits: Landlock's network rules cover TCP only (UDP, raw and UNIX sockets are open);
//! Landlock does not stop read-level `/proc` access to processes of the same user, so a
//! confined run makes the host process non-dumpable (`PR_SET_DUMPABLE` 0: its `environ`,
//! `maps`, `fd/` then need `CAP_SYS_PTRACE`) and its jobs give up every capability, bounding
//! set included (a root host's jobs are root without privileges: no `chown` of others'
//! files, no raw sockets). World-readable entries such as `/proc/<host pid>/cmdline` stay
//! readable, so pass secrets by environment (allowlisted) or file, never on a command line.
//! Non-dumpable also means the host writes no core dump;
//! under tracking, a process that both clears its environment and escapes its parent
//! between two scans of `/proc` (every [`SCAN_INTERVAL`]) is not found, and after a host
//! crash [`reap_leftovers`] can kill only the recorded process group; the subreaper
//! setting is process-wide, so orphans of the host's other children become its zombies.

// The README's example runs as a doctest too, so that it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod env;
mod log;
mod policy;
mod procfs;
mod run;

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use env::{ALLOWED_HOST_VARS, Env, FALLBACK_PATH, JOB_TOKEN_VAR, child_env};
pub use log::{FileProcessLog, ProcessLog, StartedProcess, reap_leftovers};
pub use policy::{Network, Policy, SYSTEM_PATHS, SystemAccess};
pub use run::{READER_GRACE, SCAN_INTERVAL};

/// One command to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The program, looked up in the child's `PATH` when it has no slash.
    pub program: OsString,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Working directory.
    pub cwd: PathBuf,
    /// Environment beyond the allowlist.
    pub env: Env,
    /// Written to the child's stdin from a thread (a child that never reads does not block
    /// the run); empty means stdin is `/dev/null`.
    pub stdin: Vec<u8>,
    /// Wall-clock limit; the whole process tree is killed when it is reached. A limit too
    /// far away to be represented as an [`std::time::Instant`] (such as [`Duration::MAX`])
    /// is no limit: the job runs until it ends. Hosts should range-check user input
    /// before it gets here; this type only promises never to panic on it.
    pub timeout: Duration,
    /// What output to keep.
    pub output: OutputMode,
}

/// What output a job keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    /// stdout and stderr on separate pipes.
    Separate {
        /// The first this many bytes of stdout are kept (the rest is read and dropped,
        /// see [`Finished::stdout_overflow`]).
        stdout_limit: usize,
        /// The last this many bytes of stderr are kept.
        stderr_tail: usize,
    },
    /// stdout and stderr on one pipe, interleaved as written.
    Combined {
        /// The last this many bytes are kept.
        tail_bytes: usize,
    },
}

/// How the job's main process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ended {
    /// It exited with this code.
    Exited(i32),
    /// A signal (not the timeout) killed it.
    Signalled(i32),
    /// The timeout was reached and the tree was killed.
    TimedOut,
}

/// The result of a job that started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// How the main process ended.
    pub ended: Ended,
    /// The first `stdout_limit` bytes of stdout ([`OutputMode::Separate`]; empty otherwise).
    pub stdout: Vec<u8>,
    /// Whether stdout had more than `stdout_limit` bytes.
    pub stdout_overflow: bool,
    /// The last `stderr_tail` bytes of stderr ([`OutputMode::Separate`]; empty otherwise).
    pub stderr_tail: Vec<u8>,
    /// The last `tail_bytes` of stdout and stderr interleaved ([`OutputMode::Combined`];
    /// empty otherwise).
    pub combined_tail: Vec<u8>,
    /// Wall-clock time from spawn to the tree being gone.
    pub duration: Duration,
}

/// How a job is confined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Confinement {
    /// Landlock filesystem (and, under [`Network::Deny`], network) rules.
    Landlock,
    /// `--no-sandbox`: the same environment scrub, timeout and reaping, no filesystem or
    /// network rules.
    Off,
}

/// How a job's process tree is held together for killing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Containment {
    /// A new PID namespace when the host may create one, else [`Containment::Tracking`].
    ///
    /// The main process is then PID 1 of its namespace, and the kernel drops signals sent
    /// to PID 1 from inside the namespace when it has no handler for them (`kill $$` in a
    /// script does nothing; `SIGPIPE` becomes `EPIPE`). Faults (`SIGSEGV`) and Autopack's
    /// own kill still work. Orphans inside the namespace are reparented to the main
    /// process rather than to Autopack.
    #[default]
    Auto,
    /// Process group + child subreaper + `/proc` tracking, even when a PID namespace could
    /// be created (for tests of that path, and hosts that must not unshare).
    Tracking,
}

/// Runs jobs under one confinement, optionally recording their processes.
#[derive(Clone)]
pub struct Sandbox {
    confinement: Confinement,
    abi: Option<landlock::ABI>,
    containment: Containment,
    log: Option<Arc<dyn ProcessLog>>,
}

impl fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sandbox")
            .field("confinement", &self.confinement)
            .field("abi", &self.abi)
            .field("containment", &self.containment)
            .field("log", &self.log.is_some())
            .finish()
    }
}

impl Sandbox {
    /// Landlock confinement if the kernel supports it (ABI >= 1; rules are always fully
    /// enforced at the ABI found, up to 6).
    ///
    /// # Errors
    /// [`SandboxError::Unavailable`] when the kernel has no usable Landlock, so callers can
    /// refuse to start unless the user asked for [`Sandbox::off`].
    pub fn detect() -> Result<Sandbox, SandboxError> {
        match policy::probe_abi() {
            Some(abi) => Ok(Sandbox {
                confinement: Confinement::Landlock,
                abi: Some(abi),
                containment: Containment::Auto,
                log: None,
            }),
            None => Err(SandboxError::Unavailable {
                reason: "the kernel does not support Landlock (not built in, or not enabled \
                         at boot: add `landlock` to the `lsm=` kernel parameter)"
                    .to_owned(),
            }),
        }
    }

    /// No filesystem or network confinement (`--no-sandbox`); the environment is still
    /// scrubbed, the timeout still holds and the tree is still reaped.
    pub fn off() -> Sandbox {
        Sandbox {
            confinement: Confinement::Off,
            abi: None,
            containment: Containment::Auto,
            log: None,
        }
    }

    /// Records every job's main process in `log`.
    pub fn with_log(mut self, log: Arc<dyn ProcessLog>) -> Sandbox {
        self.log = Some(log);
        self
    }

    /// Chooses how process trees are held together (default [`Containment::Auto`]).
    pub fn with_containment(mut self, containment: Containment) -> Sandbox {
        self.containment = containment;
        self
    }

    /// The confinement jobs run under.
    pub fn confinement(&self) -> Confinement {
        self.confinement
    }

    /// The Landlock ABI the rules are built for (`None` when off).
    pub fn landlock_abi(&self) -> Option<i32> {
        self.abi.map(|a| a as i32)
    }

    /// Runs `job` under `policy` and waits until it and every process it started are gone
    /// (or the timeout kills them). A failing or timed-out command is an `Ok`.
    ///
    /// # Errors
    /// [`SandboxError::Start`] when the command cannot be started or the sandbox cannot be
    /// set up, naming the program, the working directory and why.
    pub fn run(&self, job: &Job, policy: &Policy) -> Result<Finished, SandboxError> {
        run::run(self, job, policy).map_err(|why| SandboxError::Start {
            program: job.program.to_string_lossy().into_owned(),
            cwd: job.cwd.clone(),
            why,
        })
    }
}

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// Confinement is not available on this machine.
    #[error("sandbox unavailable: {reason}")]
    Unavailable {
        /// Why.
        reason: String,
    },
    /// A job could not be started.
    #[error("cannot start {program:?} in {cwd}: {why}", cwd = cwd.display())]
    Start {
        /// The program.
        program: String,
        /// The working directory.
        cwd: PathBuf,
        /// Why.
        #[source]
        why: StartError,
    },
    /// A process log file could not be read.
    #[error("process log {path}: {reason}", path = path.display())]
    ProcessLog {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Why a job could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// [`Network::Deny`] was asked for on a kernel whose Landlock has no network rules.
    #[error(
        "network Deny needs Landlock ABI 4 (Linux 6.7); this kernel has ABI {abi}. \
         Allow the network explicitly or run on a newer kernel"
    )]
    NetworkDenyUnsupported {
        /// The kernel's ABI.
        abi: i32,
    },
    /// Building or enforcing the Landlock ruleset failed.
    #[error("landlock: {reason}")]
    Landlock {
        /// Why.
        reason: String,
    },
    /// A writable path cannot be granted.
    #[error("cannot grant {path}: {reason}", path = path.display())]
    Path {
        /// The path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The private `HOME`/`TMPDIR` or a pipe could not be created.
    #[error("cannot prepare {what}: {source}")]
    Prepare {
        /// What.
        what: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The operating system refused to start the program.
    #[error("spawn failed: {source}")]
    Spawn {
        /// The I/O error.
        source: std::io::Error,
    },
    /// The thread that confines and spawns could not be created or died.
    #[error("the spawning thread failed: {reason}")]
    Thread {
        /// Why.
        reason: String,
    },
}
