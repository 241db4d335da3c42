//! # autopack-examples
//!
//! Thin binaries that show how a host wires the Autopack crates together: a scripted
//! end-to-end supervised run and the `autopack` command-line tool (issue 8). The library
//! target holds nothing; the binaries live under `src/bin/`.
