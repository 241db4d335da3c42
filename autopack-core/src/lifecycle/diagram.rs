//! Mermaid rendering of a transition table.

use std::fmt::Write as _;

use super::{StateMachine, StateSet};

/// The Mermaid id of the pseudo-state standing for "any non-terminal state".
const ANY_NON_TERMINAL: &str = "any_non_terminal";

/// Renders machine `M`'s transition table as a Mermaid `stateDiagram-v2`.
///
/// The output is deterministic: rows in table order, each row's source states in the
/// order the row lists them; a row that applies in any non-terminal state is drawn once,
/// from a pseudo-state. Terminal states are marked with an edge to `[*]`.
pub fn mermaid<M: StateMachine>() -> String {
    let mut out = String::new();
    // Writing to a String cannot fail; `let _` keeps the function infallible.
    let _ = write_mermaid::<M>(&mut out);
    out
}

fn write_mermaid<M: StateMachine>(out: &mut String) -> std::fmt::Result {
    let name = M::NAME;
    writeln!(out, "stateDiagram-v2")?;
    writeln!(
        out,
        "    %% The {name} lifecycle, generated from its transition table by \
         autopack_core::lifecycle::mermaid. Do not edit."
    )?;
    writeln!(
        out,
        "    %% Refresh: AUTOPACK_BLESS=1 cargo test -p autopack-core --test lifecycle_diagrams"
    )?;
    writeln!(out, "    [*] --> {}", M::INITIAL.as_str())?;
    let mut declared_any = false;
    for row in M::TABLE {
        let to = row.to.as_str();
        match row.from {
            StateSet::Only(states) => {
                for from in states {
                    writeln!(out, "    {} --> {to} : {}", from.as_str(), row.on)?;
                }
            }
            StateSet::AnyNonTerminal => {
                if !declared_any {
                    writeln!(
                        out,
                        "    state \"any non-terminal state\" as {ANY_NON_TERMINAL}"
                    )?;
                    declared_any = true;
                }
                writeln!(out, "    {ANY_NON_TERMINAL} --> {to} : {}", row.on)?;
            }
        }
    }
    for state in M::STATES {
        if let Some(note) = state.note() {
            writeln!(out, "    note right of {} : {note}", state.as_str())?;
        }
    }
    for state in M::STATES.iter().filter(|s| s.is_terminal()) {
        writeln!(out, "    {} --> [*]", state.as_str())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::lifecycle::{PhaseState, RunState, TierState, mermaid};

    #[test]
    fn tier_diagram() {
        let expected = "stateDiagram-v2
    %% The tier lifecycle, generated from its transition table by autopack_core::lifecycle::mermaid. Do not edit.
    %% Refresh: AUTOPACK_BLESS=1 cargo test -p autopack-core --test lifecycle_diagrams
    [*] --> PENDING
    PENDING --> RUNNING : Start
    RUNNING --> COMPLETE : Complete
    RUNNING --> NOT_CLEAN : CompleteNotClean
    RUNNING --> BLOCKED : Block
    COMPLETE --> [*]
    NOT_CLEAN --> [*]
    BLOCKED --> [*]
";
        assert_eq!(mermaid::<TierState>(), expected);
        assert_eq!(TierState::mermaid(), expected);
    }

    #[test]
    fn every_state_appears() {
        let run = RunState::mermaid();
        for state in RunState::ALL {
            assert!(run.contains(state.as_str()), "{state} missing");
        }
        assert!(run.contains("any_non_terminal --> DONE_FAILED_ENVIRONMENT : Fail(environment)"));
        let phase = PhaseState::mermaid();
        for state in PhaseState::ALL {
            assert!(phase.contains(state.as_str()), "{state} missing");
        }
        assert!(phase.contains("note right of GATE : also awaiting Auditor review"));
    }
}
