//! The run's journal: its entries, whether a run has begun, and replay after a crash.

use autopack_core::ids::RunId;
use autopack_core::journal::chain::{Binding, ChainCheck, Digest, Genesis, Sealed};
use autopack_core::journal::{self, JournalContents, JournalError, RunStore};
use autopack_core::plan::Plan;
use autopack_strategy::Strategy;

#[cfg(doc)]
use super::{Artefacts, Driver};
use super::{DriverError, RecordedIssue};
use crate::supervisor::{Action, Input, Supervisor, SupervisorConfig};

/// One line of a run's journal.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum JournalEntry {
    /// The Supervisor's configuration, written first.
    Config(SupervisorConfig),
    /// An input, written before it is applied.
    Input(Input),
}

/// How far a run's journal got before its first input.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Begun {
    /// No journal, or an empty one: the run can be started.
    Empty,
    /// Only the configuration (a start that crashed before its start line): the run can
    /// be started, with this configuration.
    Configured(SupervisorConfig),
    /// The run's start is journaled: it can only be resumed.
    Started,
}

/// Whether `run_id` has begun: the one rule both [`Driver::run`] and hosts that check
/// before preparing a run ("does this run exist?") go by.
///
/// # Errors
/// [`DriverError::Journal`] when the journal cannot be read, its head does not parse or
/// its chain is broken.
pub fn journal_begun<S: RunStore>(store: &mut S, run_id: &RunId) -> Result<Begun, DriverError> {
    Ok(begun_with_chain(store, run_id)?.0)
}

/// [`journal_begun`], with the chain of the lines before the first input.
pub(super) fn begun_with_chain<S: RunStore>(
    store: &mut S,
    run_id: &RunId,
) -> Result<(Begun, ChainCheck), DriverError> {
    let contents = store.read(run_id).map_err(DriverError::store)?;
    let mut begun = Begun::Empty;
    let mut chain = ChainCheck::new(Genesis::Binding);
    for (index, line) in contents.entries().enumerate() {
        let sealed = parse_line(run_id, index, line)?;
        chain
            .check(line, &sealed.links)
            .map_err(|source| broken(run_id, source))?;
        match sealed.entry {
            JournalEntry::Config(config) => begun = Begun::Configured(config),
            JournalEntry::Input(_) => return Ok((Begun::Started, chain)),
        }
    }
    Ok((begun, chain))
}

/// What a run's journal binds it to: the run id and the digests of its plan, ruleset
/// (as the strategy records it) and frozen strategy, each over its canonical JSON.
///
/// # Errors
/// [`DriverError::Journal`] when the plan or strategy does not serialise.
pub fn run_binding(plan: &Plan, strategy: &Strategy) -> Result<Binding, DriverError> {
    let digest = |value: Result<Digest, serde_json::Error>| {
        value.map_err(|e| DriverError::Journal(JournalError::Serialize(e.to_string())))
    };
    Ok(Binding {
        run_id: plan.run.run_id.clone(),
        plan_sha256: digest(Digest::of_json(plan))?,
        ruleset_sha256: strategy.ruleset_sha256,
        strategy_sha256: digest(Digest::of_json(strategy))?,
    })
}

/// Parses line `index` (from 0) of `run_id`'s journal with its chain fields.
pub(crate) fn parse_line(
    run_id: &RunId,
    index: usize,
    line: &str,
) -> Result<Sealed<JournalEntry>, DriverError> {
    journal::parse_sealed_entry::<JournalEntry>(run_id, index, line)
        .map_err(|e| DriverError::Journal(JournalError::Parse(e)))
}

fn broken(run_id: &RunId, source: autopack_core::journal::chain::ChainBreak) -> DriverError {
    DriverError::Journal(JournalError::Broken {
        run_id: run_id.clone(),
        source,
    })
}

/// Rebuilds a Supervisor from a run's journal (the state at the crash, or the finished
/// run), without performing anything.
///
/// Entries are applied in order, and their hash chain checked; the first that does not
/// parse, breaks the chain or is refused ends the replay with its error. A long journal is parsed on a second thread while this one
/// applies, so replay takes about as long as the slower of the two (see the crate's
/// "Speed" section).
///
/// # Errors
/// [`DriverError::NothingToResume`] without a journal; [`DriverError::Journal`] for an
/// unreadable one; [`DriverError::Supervisor`] when it does not replay.
pub fn replay_journal<S: RunStore>(
    store: &mut S,
    run_id: &RunId,
) -> Result<Supervisor, DriverError> {
    Ok(replay_run(store, run_id)?.supervisor)
}

/// A run rebuilt from its journal, with the issues it recorded.
#[derive(Debug)]
pub struct Replayed {
    /// The Supervisor at the end of the journal.
    pub supervisor: Supervisor,
    /// Every issue the run recorded, in order (what [`Artefacts::recover`] is given).
    pub recorded: Vec<RecordedIssue>,
    /// The journal's hash chain as checked: its head (what the next entry links to), the
    /// first sealed entry and the run's binding.
    pub chain: ChainCheck,
}

/// [`replay_journal`], keeping the issues the run recorded.
///
/// # Errors
/// As [`replay_journal`].
pub fn replay_run<S: RunStore>(store: &mut S, run_id: &RunId) -> Result<Replayed, DriverError> {
    let contents = store.read(run_id).map_err(DriverError::store)?;
    let parallel = contents.len() >= PARALLEL_REPLAY_FROM
        && std::thread::available_parallelism().is_ok_and(|n| n.get() > 1);
    replay_contents(run_id, &contents, parallel)
}

/// Journals shorter than this replay on one thread: a second one would cost more than it
/// saves.
const PARALLEL_REPLAY_FROM: usize = 4096;

/// Entries the parsing thread hands over at a time.
const REPLAY_BATCH: usize = 512;

/// How many entries the replay parses on this thread before it hands the rest to a
/// second one: the configuration and the start (with the whole plan and strategy), which
/// this thread applies while the other parses what follows.
const REPLAY_HEAD: usize = 2;

fn replay_contents(
    run_id: &RunId,
    contents: &JournalContents,
    parallel: bool,
) -> Result<Replayed, DriverError> {
    if contents.is_empty() {
        return Err(DriverError::NothingToResume(run_id.clone()));
    }
    let mut replay = Replay {
        supervisor: Supervisor::new(),
        config: SupervisorConfig::default(),
        recorded: Vec::new(),
        chain: ChainCheck::new(Genesis::Binding),
    };
    // Parsing and hashing are the costly part; the chain's rule and the Supervisor are
    // applied in order on this thread.
    let parse = |index: usize, line: &str| {
        Ok::<_, DriverError>((
            parse_line(run_id, index, line)?,
            Digest::of(line.as_bytes()),
        ))
    };
    let mut lines = contents.entries().enumerate();
    if !parallel || contents.len() <= REPLAY_HEAD {
        for (index, line) in lines {
            replay.apply(run_id, parse(index, line)?)?;
        }
        return replay.done(run_id);
    }
    let head: Vec<(usize, &str)> = lines.by_ref().take(REPLAY_HEAD).collect();
    let head_lines: Vec<&str> = head.iter().map(|&(_, line)| line).collect();
    std::thread::scope(|scope| {
        // Unbounded: while this thread parses and applies the start (a third of the
        // replay on a long run), the other must keep parsing instead of blocking on a
        // full channel. At worst every parsed entry waits here at once, about the size
        // of the journal's text again.
        let (batches, parsed) = std::sync::mpsc::channel::<Vec<_>>();
        // The other thread also hashes the head (the start holds the whole plan and
        // strategy) while this one parses it.
        let (head_hashes, hashed) = std::sync::mpsc::channel::<Vec<Digest>>();
        let parser = std::thread::Builder::new().spawn_scoped(scope, move || {
            let hashes = head_lines
                .iter()
                .map(|l| Digest::of(l.as_bytes()))
                .collect();
            if head_hashes.send(hashes).is_err() {
                return;
            }
            loop {
                let batch: Vec<_> = lines
                    .by_ref()
                    .take(REPLAY_BATCH)
                    .map(|(index, line)| parse(index, line))
                    .collect();
                // Done, or a closed channel: the replay stopped at an error.
                if batch.is_empty() || batches.send(batch).is_err() {
                    break;
                }
            }
        });
        if parser.is_err() {
            // No second thread to be had (the process is at its thread limit): nothing
            // was applied yet, so replay on this one.
            return replay_contents(run_id, contents, false);
        }
        let mut head_entries = Vec::with_capacity(head.len());
        for (index, line) in head {
            head_entries.push(parse_line(run_id, index, line)?);
        }
        // The parser thread sends the head's hashes first, unless it died.
        let hashes = hashed.recv().unwrap_or_else(|_| {
            head_lines_again(contents)
                .map(|l| Digest::of(l.as_bytes()))
                .collect()
        });
        for (sealed, hash) in head_entries.into_iter().zip(hashes) {
            replay.apply(run_id, (sealed, hash))?;
        }
        for batch in parsed {
            for entry in batch {
                replay.apply(run_id, entry?)?;
            }
        }
        replay.done(run_id)
    })
}

/// The head lines of `contents` (for a replay whose parsing thread is gone).
fn head_lines_again(contents: &JournalContents) -> impl Iterator<Item = &str> {
    contents.entries().take(REPLAY_HEAD)
}

/// A Supervisor being rebuilt, the configuration the journal set for its start, and the
/// issues it recorded on the way.
struct Replay {
    supervisor: Supervisor,
    config: SupervisorConfig,
    recorded: Vec<RecordedIssue>,
    chain: ChainCheck,
}

impl Replay {
    fn apply(
        &mut self,
        run_id: &RunId,
        (sealed, hash): (Sealed<JournalEntry>, Digest),
    ) -> Result<(), DriverError> {
        self.chain
            .check_hashed(hash, &sealed.links)
            .map_err(|source| broken(run_id, source))?;
        match sealed.entry {
            JournalEntry::Config(c) => self.config = c,
            JournalEntry::Input(input @ Input::Start { .. }) => {
                self.supervisor.start_with(input, self.config)?
            }
            // The actions were performed before the crash (the one awaiting an answer is
            // redone through `Supervisor::outstanding`): none are made.
            JournalEntry::Input(input) => self.supervisor.replay(input)?,
        }
        // Issue recording is the one action a replay still makes (the start's actions
        // too come out here, as `start_with` is not quiet): keep what was recorded.
        while let Some(action) = self.supervisor.poll_action() {
            if let Action::RecordIssues { at, observations } = action {
                self.recorded.extend(
                    observations
                        .into_iter()
                        .map(|observation| RecordedIssue { at, observation }),
                );
            }
        }
        Ok(())
    }

    /// The replayed run; a journal that ends before the run's start is no run.
    fn done(self, run_id: &RunId) -> Result<Replayed, DriverError> {
        if self.supervisor.record().is_none() {
            return Err(DriverError::NothingToResume(run_id.clone()));
        }
        Ok(Replayed {
            supervisor: self.supervisor,
            recorded: self.recorded,
            chain: self.chain,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::{AgentOutcome, CiReport};
    use autopack_core::message::{BuilderResult, BuilderStatus};
    use autopack_core::plan::Plan;
    use autopack_core::record::CiVerdict;
    use chrono::{TimeZone, Utc};

    /// A journal of a run of `phases` phases with instant, successful agents, and the
    /// inputs in order.
    fn journal(phases: usize) -> (RunId, Vec<String>, Vec<Input>) {
        let phase_list: Vec<String> = (0..phases)
            .map(|i| {
                format!(
                    r#"{{"phase_id": "p{i}", "phase_index": {i}, "tier_id": "t{}", "name": "P{i}", "task_category": "tests"}}"#,
                    i * 3 / phases
                )
            })
            .collect();
        let plan: Plan = autopack_core::json::from_str(
            &format!(
                r#"{{"run": {{"run_id": "r1", "max_phases": {phases}}},
                "tiers": [{{"tier_id": "t0", "tier_index": 0, "name": "A"}},
                          {{"tier_id": "t1", "tier_index": 1, "name": "B"}},
                          {{"tier_id": "t2", "tier_index": 2, "name": "C"}}],
                "phases": [{}]}}"#,
                phase_list.join(",")
            ),
            "plan.json",
        )
        .unwrap();
        let strategy = autopack_strategy::dry_run(&plan, None, None).unwrap();
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut inputs = vec![Input::Start {
            at,
            plan,
            strategy: Box::new(strategy),
            backlog: Box::default(),
        }];
        let mut sup = Supervisor::new();
        sup.handle(inputs[0].clone()).unwrap();
        while let Some(action) = sup.poll_action() {
            let input = match action {
                Action::DispatchBuilder(r) => Input::BuilderFinished {
                    at,
                    attempt: r.attempt,
                    outcome: AgentOutcome::Returned(BuilderResult {
                        phase_id: r.phase_id.clone(),
                        status: BuilderStatus::Success,
                        patch: Some("diff --git a/x b/x\n".into()),
                        probe_results: vec![],
                        suggested_issues: vec![],
                        tokens_used: 10,
                        failing_tests: vec![],
                        notes: String::new(),
                    }),
                    phase_id: r.phase_id,
                },
                Action::ApplyPatch(r) => Input::PatchApplied {
                    at,
                    phase_id: r.phase_id,
                    commit: autopack_core::ids::CommitId::new("c".repeat(40)).unwrap(),
                    holds: vec![],
                },
                Action::RunCi(r) => Input::CiFinished {
                    at,
                    phase_id: r.phase_id,
                    report: CiReport {
                        verdict: CiVerdict::Green,
                        attempts: 1,
                        failing_tests: vec![],
                        output_tail: String::new(),
                        known_failures: vec![],
                        flaky_tests: vec![],
                        baseline: None,
                    },
                },
                Action::CreateSnapshot(r) => Input::SnapshotCreated {
                    at,
                    phase_id: r.phase_id,
                    tag: r.tag,
                },
                _ => continue,
            };
            inputs.push(input.clone());
            sup.handle(input).unwrap();
        }
        assert!(sup.is_finished());
        let mut lines =
            vec![serde_json::to_string(&JournalEntry::Config(Default::default())).unwrap()];
        lines.extend(
            inputs
                .iter()
                .map(|i| serde_json::to_string(&JournalEntry::Input(i.clone())).unwrap()),
        );
        (RunId::new("r1").unwrap(), lines, inputs)
    }

    fn handled(inputs: &[Input]) -> Supervisor {
        let mut sup = Supervisor::new();
        for input in inputs {
            sup.handle(input.clone()).unwrap();
            while sup.poll_action().is_some() {}
        }
        sup
    }

    #[test]
    fn both_threads_and_one_rebuild_the_state_of_every_prefix() {
        // 1,200 inputs: the parsing thread hands over several batches.
        let (run, lines, inputs) = journal(300);
        for cut in [
            1,
            2,
            3,
            4,
            5,
            511,
            512,
            513,
            514,
            515,
            1024,
            lines.len() - 1,
            lines.len(),
        ] {
            let want = handled(&inputs[..cut - 1]);
            for parallel in [false, true] {
                let contents = JournalContents::from_entries(&lines[..cut]);
                if cut == 1 {
                    // The configuration alone: the run never started.
                    assert!(matches!(
                        replay_contents(&run, &contents, parallel),
                        Err(DriverError::NothingToResume(_))
                    ));
                    continue;
                }
                let got = replay_contents(&run, &contents, parallel)
                    .unwrap()
                    .supervisor;
                assert_eq!(
                    got.record(),
                    want.record(),
                    "cut {cut}, parallel {parallel}"
                );
                assert_eq!(got.outstanding(), want.outstanding(), "cut {cut}");
                assert_eq!(
                    got.ledger().map(|l| l.snapshot()),
                    want.ledger().map(|l| l.snapshot())
                );
            }
        }
    }

    #[test]
    fn the_first_bad_entry_ends_the_replay_on_both_paths() {
        let (run, lines, _) = journal(300);
        for parallel in [false, true] {
            // Garbage in the tail, after a refused entry: the refusal comes first.
            let mut bad = lines.clone();
            bad[700] = bad[698].clone();
            bad[900] = "{not json".into();
            let err =
                replay_contents(&run, &JournalContents::from_entries(bad), parallel).unwrap_err();
            assert!(matches!(err, DriverError::Supervisor(_)), "{err}");
            // Garbage alone: named by its position.
            let mut bad = lines.clone();
            bad[900] = "{\"input\": {\"tick\": {\"at\": 5}}}".into();
            let err = replay_contents(&run, &JournalContents::from_entries(bad), parallel)
                .unwrap_err()
                .to_string();
            assert!(err.contains("journal r1 entry 901"), "{err}");
            assert!(err.contains("input.tick.at"), "{err}");
            assert!(matches!(
                replay_contents(&run, &JournalContents::default(), parallel),
                Err(DriverError::NothingToResume(_))
            ));
        }
    }
}
