//! The committed lifecycle diagrams (`docs/lifecycle/*.mmd`) match the transition tables.
//!
//! Run with `AUTOPACK_BLESS=1` to rewrite stale diagrams instead of failing.

use std::path::PathBuf;

use autopack_core::lifecycle::{PhaseState, RunState, StateMachine, TierState, mermaid};

fn check<M: StateMachine>() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("docs/lifecycle")
        .join(format!("{}.mmd", M::NAME));
    let fresh = mermaid::<M>();
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed == fresh {
        return;
    }
    if std::env::var_os("AUTOPACK_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &fresh).expect("write blessed diagram");
        eprintln!("blessed {}", path.display());
        return;
    }
    panic!(
        "{} is stale; refresh it with `AUTOPACK_BLESS=1 cargo test -p autopack-core --test \
         lifecycle_diagrams`\n--- committed\n{committed}\n--- generated\n{fresh}",
        path.display()
    );
}

#[test]
fn run_diagram_is_fresh() {
    check::<RunState>();
}

#[test]
fn tier_diagram_is_fresh() {
    check::<TierState>();
}

#[test]
fn phase_diagram_is_fresh() {
    check::<PhaseState>();
}
