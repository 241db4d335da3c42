//! State-machine property tests of the run, tier and phase lifecycles.
//!
//! Each machine is checked against a reference model written by hand from SPEC §2, as a
//! `match`, independently of the transition tables. Random sequences of legal and illegal
//! events drive both: illegal events must be rejected with the state unchanged, terminal
//! states must absorb everything, and every step the real machine takes must be a row of
//! its table. The reference models are also compared with the tables exhaustively, and
//! reachability of every state is checked on the tables.

use std::collections::BTreeSet;
use std::fmt::Debug;

use autopack_core::lifecycle::{
    PhaseEvent, PhaseState, RunEvent, RunFailure, RunState, StateMachine, TierEvent, TierState,
};
use proptest::prelude::*;
use proptest::sample::select;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};

// ---------------------------------------------------------------------------------------
// Reference models: hand-written from the spec, never reading the tables.
// ---------------------------------------------------------------------------------------

/// A lifecycle's hand-written reference model.
trait Model: StateMachine + Ord {
    /// The state `event` leads to, or `None` when it is illegal.
    fn model(self, event: Self::Event) -> Option<Self>;
    /// Terminal per the spec.
    fn model_terminal(self) -> bool;
}

const RUN_FAILURES: [RunFailure; 9] = [
    RunFailure::BudgetExhausted,
    RunFailure::PhaseLimitExceeded,
    RunFailure::TokenCapExceeded,
    RunFailure::TierBlocked,
    RunFailure::CiFailed,
    RunFailure::ManualAbort,
    RunFailure::PolicyViolation,
    RunFailure::RequiresHumanReview,
    RunFailure::Environment,
];

impl Model for RunState {
    fn model(self, event: RunEvent) -> Option<Self> {
        use RunEvent as E;
        use RunState as S;
        if self.model_terminal() {
            return None;
        }
        Some(match (self, event) {
            (_, E::Fail(RunFailure::BudgetExhausted)) => S::DoneFailedBudgetExhausted,
            (_, E::Fail(RunFailure::PhaseLimitExceeded)) => S::DoneFailedPhaseLimitExceeded,
            (_, E::Fail(RunFailure::TokenCapExceeded)) => S::DoneFailedTokenCapExceeded,
            (_, E::Fail(RunFailure::TierBlocked)) => S::DoneFailedTierBlocked,
            (_, E::Fail(RunFailure::CiFailed)) => S::DoneFailedCiFailed,
            (_, E::Fail(RunFailure::ManualAbort)) => S::DoneFailedManualAbort,
            (_, E::Fail(RunFailure::PolicyViolation)) => S::DoneFailedPolicyViolation,
            (_, E::Fail(RunFailure::RequiresHumanReview)) => S::DoneFailedRequiresHumanReview,
            (_, E::Fail(RunFailure::Environment)) => S::DoneFailedEnvironment,
            (S::PlanBootstrap, E::Created) => S::RunCreated,
            (S::RunCreated, E::QueuePhases) => S::PhaseQueueing,
            (S::PhaseQueueing | S::SnapshotCreated, E::StartPhase) => S::PhaseExecution,
            (S::PhaseQueueing | S::SnapshotCreated, E::Complete) => S::DoneSuccess,
            (S::PhaseExecution, E::PatchSubmitted) => S::Gate,
            (S::PhaseExecution, E::AttemptFailed) => S::PhaseExecution,
            (S::Gate, E::GatePassed) => S::CiRunning,
            (S::Gate, E::GateRejected) => S::PhaseExecution,
            (S::CiRunning, E::CiGreen) => S::SnapshotCreated,
            (S::CiRunning, E::CiRed) => S::PhaseExecution,
            (S::PhaseExecution | S::Gate | S::CiRunning, E::PhaseAbandoned) => S::PhaseQueueing,
            _ => return None,
        })
    }

    fn model_terminal(self) -> bool {
        let name = self.to_string();
        name == "DONE_SUCCESS" || name.starts_with("DONE_FAILED_")
    }
}

impl Model for TierState {
    fn model(self, event: TierEvent) -> Option<Self> {
        use TierEvent as E;
        use TierState as S;
        match (self, event) {
            (S::Pending, E::Start) => Some(S::Running),
            (S::Running, E::Complete) => Some(S::Complete),
            (S::Running, E::CompleteNotClean) => Some(S::NotClean),
            (S::Running, E::Block) => Some(S::Blocked),
            _ => None,
        }
    }

    fn model_terminal(self) -> bool {
        matches!(self, Self::Complete | Self::NotClean | Self::Blocked)
    }
}

impl Model for PhaseState {
    fn model(self, event: PhaseEvent) -> Option<Self> {
        use PhaseEvent as E;
        use PhaseState as S;
        match (self, event) {
            (S::Queued, E::Start) => Some(S::Executing),
            (S::Queued, E::Skip) => Some(S::Skipped),
            (S::Executing, E::Submit) => Some(S::Gate),
            (S::Gate, E::GatePassed) => Some(S::CiRunning),
            (S::CiRunning, E::CiGreen) => Some(S::Complete),
            (S::Executing | S::Gate | S::CiRunning, E::AttemptFailed) => Some(S::Retry),
            (S::Retry, E::Retry) => Some(S::Executing),
            (S::Executing | S::Gate | S::CiRunning | S::Retry, E::Fail) => Some(S::Failed),
            _ => None,
        }
    }

    fn model_terminal(self) -> bool {
        matches!(self, Self::Complete | Self::Failed | Self::Skipped)
    }
}

/// Every event of a machine, spelled out independently of the library's `ALL` lists.
fn run_events() -> Vec<RunEvent> {
    let mut events = vec![
        RunEvent::Created,
        RunEvent::QueuePhases,
        RunEvent::StartPhase,
        RunEvent::PatchSubmitted,
        RunEvent::GatePassed,
        RunEvent::GateRejected,
        RunEvent::AttemptFailed,
        RunEvent::CiGreen,
        RunEvent::CiRed,
        RunEvent::PhaseAbandoned,
        RunEvent::Complete,
    ];
    events.extend(RUN_FAILURES.map(RunEvent::Fail));
    events
}

fn tier_events() -> Vec<TierEvent> {
    vec![
        TierEvent::Start,
        TierEvent::Complete,
        TierEvent::CompleteNotClean,
        TierEvent::Block,
    ]
}

fn phase_events() -> Vec<PhaseEvent> {
    vec![
        PhaseEvent::Start,
        PhaseEvent::Submit,
        PhaseEvent::GatePassed,
        PhaseEvent::CiGreen,
        PhaseEvent::AttemptFailed,
        PhaseEvent::Retry,
        PhaseEvent::Fail,
        PhaseEvent::Skip,
    ]
}

// ---------------------------------------------------------------------------------------
// The generic proptest state-machine harness.
// ---------------------------------------------------------------------------------------

/// Binds a machine to its independent event list.
trait Harness: 'static {
    type M: Model + Debug;
    fn events() -> Vec<<Self::M as StateMachine>::Event>;
}

/// Whether some row of the table moves `from` to `to` on `event` (read directly from the
/// rows, not through `next`).
fn listed<M: StateMachine>(from: M, event: M::Event, to: M) -> bool {
    M::TABLE
        .iter()
        .any(|row| row.on == event && row.to == to && row.from.contains(from))
}

/// The reference side: the model's current state.
struct Reference<H>(std::marker::PhantomData<H>);

impl<H: Harness> ReferenceStateMachine for Reference<H> {
    type State = H::M;
    type Transition = <H::M as StateMachine>::Event;

    fn init_state() -> BoxedStrategy<H::M> {
        Just(<H::M as StateMachine>::INITIAL).boxed()
    }

    fn transitions(state: &H::M) -> BoxedStrategy<Self::Transition> {
        let all = H::events();
        let legal: Vec<_> = all
            .iter()
            .copied()
            .filter(|e| state.model(*e).is_some())
            .collect();
        if legal.is_empty() {
            select(all).boxed()
        } else {
            // Mostly legal events, so runs get deep; some arbitrary (often illegal) ones.
            prop_oneof![3 => select(legal), 1 => select(all)].boxed()
        }
    }

    fn apply(state: H::M, event: &Self::Transition) -> H::M {
        state.model(*event).unwrap_or(state)
    }
}

/// The system under test: the real machine.
struct Sut<H>(std::marker::PhantomData<H>);

impl<H: Harness> StateMachineTest for Sut<H> {
    type SystemUnderTest = H::M;
    type Reference = Reference<H>;

    fn init_test(_: &H::M) -> H::M {
        <H::M as StateMachine>::INITIAL
    }

    fn apply(mut state: H::M, model_after: &H::M, event: <H::M as StateMachine>::Event) -> H::M {
        let before = state;
        let expected = before.model(event);
        match (state.apply(event), expected) {
            (Ok(()), Some(to)) => {
                assert_eq!(state, to, "{before} --{event}--> wrong target");
                assert!(
                    listed(before, event, state),
                    "{before} --{event}--> {state} not a row"
                );
                assert!(!before.model_terminal(), "left terminal state {before}");
            }
            (Err(err), None) => {
                assert_eq!(state, before, "state changed on rejected {event}");
                assert_eq!(
                    err.to_string(),
                    format!(
                        "{}: event {event} is not allowed in state {before}",
                        <H::M as StateMachine>::NAME
                    )
                );
            }
            (Ok(()), None) => panic!("{before} --{event}--> {state} accepted, model rejects"),
            (Err(err), Some(to)) => panic!("model allows {before} --{event}--> {to}: {err}"),
        }
        assert_eq!(&state, model_after);
        state
    }

    fn check_invariants(state: &H::M, model: &H::M) {
        assert_eq!(state, model);
        assert_eq!(state.is_terminal(), state.model_terminal());
    }
}

struct RunHarness;
impl Harness for RunHarness {
    type M = RunState;
    fn events() -> Vec<RunEvent> {
        run_events()
    }
}

struct TierHarness;
impl Harness for TierHarness {
    type M = TierState;
    fn events() -> Vec<TierEvent> {
        tier_events()
    }
}

struct PhaseHarness;
impl Harness for PhaseHarness {
    type M = PhaseState;
    fn events() -> Vec<PhaseEvent> {
        phase_events()
    }
}

type RunTest = Sut<RunHarness>;
type TierTest = Sut<TierHarness>;
type PhaseTest = Sut<PhaseHarness>;

prop_state_machine! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn run_machine_follows_the_model(sequential 1..40 => RunTest);

    #[test]
    fn tier_machine_follows_the_model(sequential 1..12 => TierTest);

    #[test]
    fn phase_machine_follows_the_model(sequential 1..30 => PhaseTest);
}

// ---------------------------------------------------------------------------------------
// Exhaustive checks of the tables.
// ---------------------------------------------------------------------------------------

/// The table and the model agree on every (state, event) pair, and at most one row applies.
fn table_matches_model<H: Harness>() {
    for &state in <H::M as StateMachine>::STATES {
        for event in H::events() {
            let rows = <H::M as StateMachine>::TABLE
                .iter()
                .filter(|row| row.on == event && row.from.contains(state))
                .count();
            assert!(rows <= 1, "{state} --{event}-->: {rows} rows apply");
            assert_eq!(
                state.next(event).ok(),
                state.model(event),
                "{state} --{event}-->"
            );
        }
    }
}

/// States reachable from the initial state through the table's rows.
fn reachable<M: StateMachine + Ord>() -> BTreeSet<M> {
    let mut seen = BTreeSet::from([M::INITIAL]);
    let mut frontier = vec![M::INITIAL];
    while let Some(state) = frontier.pop() {
        for row in M::TABLE.iter().filter(|row| row.from.contains(state)) {
            if seen.insert(row.to) {
                frontier.push(row.to);
            }
        }
    }
    seen
}

fn table_invariants<H: Harness>() {
    type Sm<H> = <H as Harness>::M;
    let all: BTreeSet<Sm<H>> = <Sm<H> as StateMachine>::STATES.iter().copied().collect();
    assert_eq!(
        all.len(),
        <Sm<H> as StateMachine>::STATES.len(),
        "duplicate states"
    );
    assert_eq!(reachable::<Sm<H>>(), all, "some state is unreachable");
    let events: BTreeSet<String> = H::events().iter().map(ToString::to_string).collect();
    let library: BTreeSet<String> = <Sm<H> as StateMachine>::EVENTS
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(events, library, "event lists differ");
    for &state in <Sm<H> as StateMachine>::STATES {
        let leaves = <Sm<H> as StateMachine>::TABLE
            .iter()
            .any(|row| row.from.contains(state));
        assert_eq!(
            leaves,
            !state.model_terminal(),
            "{state}: terminal iff no row leaves it"
        );
    }
    for event in H::events() {
        let used = <Sm<H> as StateMachine>::TABLE
            .iter()
            .any(|row| row.on == event);
        assert!(used, "event {event} appears in no row");
    }
}

#[test]
fn run_table_matches_model() {
    table_matches_model::<RunHarness>();
    table_invariants::<RunHarness>();
}

#[test]
fn tier_table_matches_model() {
    table_matches_model::<TierHarness>();
    table_invariants::<TierHarness>();
}

#[test]
fn phase_table_matches_model() {
    table_matches_model::<PhaseHarness>();
    table_invariants::<PhaseHarness>();
}
