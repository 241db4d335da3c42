//! What a confined process may touch, and the Landlock ruleset that enforces it.

use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset,
    RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
};

use crate::StartError;

/// Whether a confined process may use TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Network {
    /// No network rule at all.
    Allow,
    /// TCP `bind` and `connect` are denied on every port (Landlock ABI >= 4). UDP, raw and
    /// UNIX-domain sockets are *not* covered by Landlock's network rules; abstract UNIX
    /// sockets created outside the sandbox are unreachable when the kernel has ABI >= 6.
    #[default]
    Deny,
}

/// What the confined process may touch, beyond [`SYSTEM_PATHS`] and the `PATH` directories.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    /// Directories (or files) the process may read, write, create and delete beneath,
    /// e.g. the workspace. The job's private `HOME` and `TMPDIR` are added by
    /// [`Sandbox::run`](crate::Sandbox::run). Each must exist.
    pub writable: Vec<PathBuf>,
    /// Extra read-only (and executable) paths, e.g. a toolchain. Missing ones are skipped.
    pub readable: Vec<PathBuf>,
    /// The network rule.
    pub network: Network,
}

/// How a default path may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemAccess {
    /// Read files, list directories, execute.
    Read,
    /// Read and write files (devices such as `/dev/null`); no creating or deleting.
    ReadWriteFile,
    /// Full access beneath a directory (`/dev/pts`, `/dev/shm`).
    ReadWriteDir,
}

/// The paths every confined job gets, in one place. Missing ones are skipped. Every
/// existing directory named in the child's `PATH` is added read-only as well.
pub const SYSTEM_PATHS: &[(&str, SystemAccess)] = &[
    ("/usr", SystemAccess::Read),
    ("/bin", SystemAccess::Read),
    ("/sbin", SystemAccess::Read),
    ("/lib", SystemAccess::Read),
    ("/lib32", SystemAccess::Read),
    ("/lib64", SystemAccess::Read),
    ("/libx32", SystemAccess::Read),
    ("/etc", SystemAccess::Read),
    ("/opt", SystemAccess::Read),
    ("/proc", SystemAccess::Read),
    ("/sys", SystemAccess::Read),
    ("/dev", SystemAccess::Read),
    ("/dev/null", SystemAccess::ReadWriteFile),
    ("/dev/zero", SystemAccess::ReadWriteFile),
    ("/dev/full", SystemAccess::ReadWriteFile),
    ("/dev/tty", SystemAccess::ReadWriteFile),
    ("/dev/urandom", SystemAccess::ReadWriteFile),
    ("/dev/random", SystemAccess::ReadWriteFile),
    ("/dev/pts", SystemAccess::ReadWriteDir),
    ("/dev/shm", SystemAccess::ReadWriteDir),
];

/// The kernel's Landlock ABI, up to 6 (newer kernels are used at ABI 6, so the rules stay
/// the ones tested here), found by creating (never enforcing) rulesets that demand each
/// level; `None` when Landlock is unavailable.
pub(crate) fn probe_abi() -> Option<ABI> {
    [ABI::V6, ABI::V5, ABI::V4, ABI::V3, ABI::V2, ABI::V1]
        .into_iter()
        .find(|abi| {
            Ruleset::default()
                .set_compatibility(CompatLevel::HardRequirement)
                .handle_access(AccessFs::from_all(*abi))
                .and_then(|r| r.create())
                .is_ok()
        })
}

/// A rule before it is turned into Landlock's types, so the list can be built (and
/// checked) without touching the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grant {
    pub(crate) path: PathBuf,
    pub(crate) access: SystemAccess,
    /// A missing path is an error (writable dirs) rather than skipped (defaults).
    pub(crate) required: bool,
}

/// Every grant of a job: the defaults, the `PATH` dirs, `readable`, then `writable`.
pub(crate) fn grants(policy: &Policy, private: &[&Path], child_path: Option<&str>) -> Vec<Grant> {
    let mut out: Vec<Grant> = SYSTEM_PATHS
        .iter()
        .map(|(p, a)| Grant {
            path: PathBuf::from(p),
            access: *a,
            required: false,
        })
        .collect();
    for dir in child_path.unwrap_or_default().split(':') {
        if dir.starts_with('/') {
            out.push(Grant {
                path: PathBuf::from(dir),
                access: SystemAccess::Read,
                required: false,
            });
        }
    }
    out.extend(policy.readable.iter().map(|p| Grant {
        path: p.clone(),
        access: SystemAccess::Read,
        required: false,
    }));
    out.extend(
        policy
            .writable
            .iter()
            .map(PathBuf::as_path)
            .chain(private.iter().copied())
            .map(|p| Grant {
                path: p.to_owned(),
                access: SystemAccess::ReadWriteDir,
                required: true,
            }),
    );
    out
}

/// Restricts the calling thread (and everything it spawns afterwards) to `grants` and the
/// network rule. Must run on a thread that is thrown away afterwards.
pub(crate) fn restrict_this_thread(
    abi: ABI,
    grants: &[Grant],
    network: Network,
) -> Result<(), StartError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| StartError::Landlock {
        reason: format!("{what}: {e}"),
    };
    if network == Network::Deny && abi < ABI::V4 {
        return Err(StartError::NetworkDenyUnsupported { abi: abi as i32 });
    }
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(abi))
        .map_err(|e| fail("handling filesystem access", &e))?;
    if network == Network::Deny {
        ruleset = ruleset
            .handle_access(AccessNet::from_all(abi))
            .map_err(|e| fail("handling network access", &e))?;
    }
    if abi >= ABI::V6 {
        // Keeps the job from signalling Autopack (or anything outside its domain) and from
        // reaching the host's abstract UNIX sockets.
        ruleset = ruleset
            .scope(Scope::from_all(abi))
            .map_err(|e| fail("scoping signals and abstract sockets", &e))?;
    }
    let mut created = ruleset
        .create()
        .map_err(|e| fail("creating the ruleset", &e))?;
    for grant in grants {
        let fd = match PathFd::new(&grant.path) {
            Ok(fd) => fd,
            Err(e) if grant.required => {
                return Err(StartError::Path {
                    path: grant.path.clone(),
                    reason: e.to_string(),
                });
            }
            Err(_) => continue,
        };
        let is_dir = grant.path.is_dir();
        let access = match grant.access {
            SystemAccess::Read if is_dir => AccessFs::from_read(abi),
            SystemAccess::Read => AccessFs::from_read(abi) & AccessFs::from_file(abi),
            SystemAccess::ReadWriteFile | SystemAccess::ReadWriteDir if !is_dir => {
                AccessFs::from_file(abi)
            }
            SystemAccess::ReadWriteFile => AccessFs::from_read(abi) | AccessFs::from_file(abi),
            SystemAccess::ReadWriteDir => AccessFs::from_all(abi),
        };
        created = created
            .add_rule(PathBeneath::new(fd, access))
            .map_err(|e| fail(&format!("granting {}", grant.path.display()), &e))?;
    }
    let status = created
        .restrict_self()
        .map_err(|e| fail("enforcing the ruleset", &e))?;
    if status.ruleset != RulesetStatus::FullyEnforced {
        return Err(StartError::Landlock {
            reason: format!("the ruleset is not fully enforced ({:?})", status.ruleset),
        });
    }
    Ok(())
}
