//! Who may call what: bearer tokens with roles, and the table of what each role may do.
//!
//! Tokens come from a file (`{"tokens": [{"role": "builder", "token": "…", "name": "w1"}]}`)
//! or the environment (`AUTOPACK_SERVER_TOKENS="builder:w1:SECRET,operator:ops:SECRET"`).
//! They are compared in constant time and never printed (`Debug` redacts them). With no
//! tokens the server serves loopback clients only, all of them as operators — what the
//! first implementation's clients expect (they send no header) — and refuses to listen on
//! any other address.
//!
//! ```
//! use autopack_server::auth::{Access, Role, Tokens};
//!
//! let tokens = Tokens::from_env_value("builder:w1:s3cret-builder-token,viewer:dash:s3cret-viewer-token").unwrap();
//! let who = tokens.identify(Some("Bearer s3cret-builder-token")).unwrap();
//! assert_eq!(who.role, Role::Builder);
//! assert!(who.may(Access::SubmitBuilder));
//! assert!(!who.may(Access::Operate));
//! assert!(tokens.identify(Some("Bearer wrong")).is_err());
//! ```

use std::path::Path;

use serde::Deserialize;

use crate::attempts::tokens_equal;

/// The environment variable that lists tokens (`role:name:token,…`).
pub const TOKENS_ENV: &str = "AUTOPACK_SERVER_TOKENS";

/// Shortest token accepted: a guessable token is refused when the server starts.
pub const MIN_TOKEN_LEN: usize = 16;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Takes Builder attempts and answers those it leased; reads; reports issues.
    Builder,
    /// Takes Auditor attempts and answers those it leased; reads; reports issues.
    Auditor,
    /// Everything: starts, aborts and promotes runs, sets nothing the Supervisor owns.
    Operator,
    /// Reads.
    Viewer,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Builder => "builder",
            Role::Auditor => "auditor",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        })
    }
}

/// A kind of request, as the permission table knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Service information, health, the OpenAPI document and its page: anyone.
    Public,
    /// Runs, issues, metrics, reports, event streams.
    Read,
    /// Issues reported from outside an attempt (`record_issue`).
    ReportIssues,
    /// Taking and answering Builder attempts.
    SubmitBuilder,
    /// Taking and answering Auditor attempts.
    SubmitAuditor,
    /// The worker endpoints (the attempt's role is checked against the caller's).
    Work,
    /// Starting, aborting, promoting runs; `update_status`.
    Operate,
}

/// The caller of a request.
#[derive(Clone, PartialEq, Eq)]
pub struct Principal {
    /// What it may do.
    pub role: Role,
    /// Its name (for leases and messages).
    pub name: String,
    /// A client of a server without tokens: it answers attempts nobody leased, as the
    /// first implementation's clients do.
    pub anonymous: bool,
}

impl std::fmt::Debug for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.role, self.name)
    }
}

impl Principal {
    /// A loopback client of a server without tokens.
    pub fn anonymous() -> Principal {
        Principal {
            role: Role::Operator,
            name: "loopback".into(),
            anonymous: true,
        }
    }

    /// The permission table.
    pub fn may(&self, access: Access) -> bool {
        matches!(
            (self.role, access),
            (_, Access::Public | Access::Read)
                | (Role::Operator, _)
                | (
                    Role::Builder | Role::Auditor,
                    Access::ReportIssues | Access::Work
                )
                | (Role::Builder, Access::SubmitBuilder)
                | (Role::Auditor, Access::SubmitAuditor)
        )
    }

    /// The lease holder name of this principal (`role:name`).
    pub fn holder(&self) -> String {
        format!("{}:{}", self.role, self.name)
    }
}

/// One configured token.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// Its role.
    pub role: Role,
    /// Its holder's name.
    pub name: String,
    /// The secret.
    pub token: String,
}

impl std::fmt::Debug for TokenEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:<redacted>", self.role, self.name)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    tokens: Vec<TokenEntry>,
}

/// The configured tokens (none: loopback only).
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    entries: Vec<TokenEntry>,
}

/// A token configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokensError {
    /// The file cannot be read or parsed.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What was wrong (with the JSON path).
        message: String,
    },
    /// An entry of the environment variable is not `role:name:token`.
    #[error(
        "{TOKENS_ENV}: entry {index} is not role:name:token (roles: builder, auditor, operator, viewer)"
    )]
    Entry {
        /// The 1-based entry.
        index: usize,
    },
    /// A token shorter than [`MIN_TOKEN_LEN`].
    #[error("the token of {name} is shorter than {MIN_TOKEN_LEN} characters")]
    TooShort {
        /// Its holder.
        name: String,
    },
    /// Two entries share a token.
    #[error("{first} and {second} share a token")]
    Shared {
        /// One holder.
        first: String,
        /// The other.
        second: String,
    },
}

/// Why a request was not let in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Denied {
    /// No `Authorization: Bearer` header.
    #[error("this server needs a bearer token (Authorization: Bearer …)")]
    Missing,
    /// A token no entry has.
    #[error("unknown bearer token")]
    Unknown,
}

impl Tokens {
    /// Reads a token file.
    ///
    /// # Errors
    /// [`TokensError`], naming the file and the field.
    pub fn from_file(path: &Path) -> Result<Tokens, TokensError> {
        let text = std::fs::read_to_string(path).map_err(|e| TokensError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let file: TokenFile = autopack::core::json::from_str(&text, path.display().to_string())
            .map_err(|e| TokensError::File {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
        Tokens::new(file.tokens)
    }

    /// Reads the value of [`TOKENS_ENV`]: `role:name:token` entries, comma-separated.
    ///
    /// # Errors
    /// [`TokensError`].
    pub fn from_env_value(value: &str) -> Result<Tokens, TokensError> {
        let mut entries = Vec::new();
        for (i, item) in value
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .enumerate()
        {
            let mut parts = item.trim().splitn(3, ':');
            let (Some(role), Some(name), Some(token)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(TokensError::Entry { index: i + 1 });
            };
            let role = match role {
                "builder" => Role::Builder,
                "auditor" => Role::Auditor,
                "operator" => Role::Operator,
                "viewer" => Role::Viewer,
                _ => return Err(TokensError::Entry { index: i + 1 }),
            };
            entries.push(TokenEntry {
                role,
                name: name.to_owned(),
                token: token.to_owned(),
            });
        }
        Tokens::new(entries)
    }

    /// Checks and keeps `entries`.
    ///
    /// # Errors
    /// Short or shared tokens.
    pub fn new(entries: Vec<TokenEntry>) -> Result<Tokens, TokensError> {
        for (i, e) in entries.iter().enumerate() {
            if e.token.len() < MIN_TOKEN_LEN {
                return Err(TokensError::TooShort {
                    name: e.name.clone(),
                });
            }
            if let Some(other) = entries[..i].iter().find(|o| o.token == e.token) {
                return Err(TokensError::Shared {
                    first: other.name.clone(),
                    second: e.name.clone(),
                });
            }
        }
        Ok(Tokens { entries })
    }

    /// Whether any token is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The caller of a request with this `Authorization` header. Every entry is compared
    /// (in constant time each), so timing does not tell which one matched.
    ///
    /// # Errors
    /// [`Denied`].
    pub fn identify(&self, authorization: Option<&str>) -> Result<Principal, Denied> {
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(Denied::Missing)?;
        let mut found = None;
        for entry in &self.entries {
            if tokens_equal(&entry.token, token) && found.is_none() {
                found = Some(entry);
            }
        }
        found
            .map(|e| Principal {
                role: e.role,
                name: e.name.clone(),
                anonymous: false,
            })
            .ok_or(Denied::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_shared_tokens_are_refused() {
        assert!(matches!(
            Tokens::from_env_value("builder:w:short"),
            Err(TokensError::TooShort { .. })
        ));
        assert!(matches!(
            Tokens::from_env_value("builder:a:0123456789abcdef,viewer:b:0123456789abcdef"),
            Err(TokensError::Shared { .. })
        ));
        assert!(matches!(
            Tokens::from_env_value("root:a:0123456789abcdef"),
            Err(TokensError::Entry { index: 1 })
        ));
    }

    #[test]
    fn the_permission_table() {
        let p = |role| Principal {
            role,
            name: "x".into(),
            anonymous: false,
        };
        use Access::*;
        let table = [
            (
                Role::Viewer,
                [true, true, false, false, false, false, false],
            ),
            (Role::Builder, [true, true, true, true, false, true, false]),
            (Role::Auditor, [true, true, true, false, true, true, false]),
            (Role::Operator, [true, true, true, true, true, true, true]),
        ];
        for (role, allowed) in table {
            for (access, want) in [
                Public,
                Read,
                ReportIssues,
                SubmitBuilder,
                SubmitAuditor,
                Work,
                Operate,
            ]
            .into_iter()
            .zip(allowed)
            {
                assert_eq!(p(role).may(access), want, "{role} {access:?}");
            }
        }
    }

    #[test]
    fn debug_never_shows_a_token() {
        let tokens = Tokens::from_env_value("operator:ops:0123456789abcdefSECRET").unwrap();
        assert!(!format!("{tokens:?}").contains("SECRET"));
    }
}
