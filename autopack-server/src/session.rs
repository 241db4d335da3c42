//! One run driven by the service: the thread that steps its [`Driver`], what it
//! publishes after every step (the record, the attempt on offer, events), and the
//! commands HTTP handlers send it.
//!
//! Only the session thread touches the driver, so the Supervisor stays the only thing
//! that advances state. A handler that submits a result waits for the step that follows
//! it (gate, CI, snapshot as far as they go) and answers with the record of that moment.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use autopack::changes::{Change, Escalation, Scope, Seen};
use autopack::core::budget::TierBreach;
use autopack::core::ids::{IssueKey, PhaseId, RunId};
use autopack::core::journal::RunStore;
use autopack::core::lifecycle::RunState;
use autopack::core::message::{AuditorResult, BuilderResult};
use autopack::core::record::RunRecord;
use autopack::driver::{AgentCall, Driver, DriverError, Observer, Step};
use autopack::issues::RunIssueIndex;
use autopack::supervisor::{Action, AgentOutcome, Input, SupervisorError};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{broadcast, oneshot};

use crate::attempts::Board;
use crate::error::ApiError;
use crate::host::HostFailure;
use crate::seed;

/// A run as of one step: what every read serves.
#[derive(Debug, Clone)]
pub struct RunView {
    /// The record.
    pub record: RunRecord,
    /// The record as the seed's Run JSON (served as is by `GET /runs/{run_id}`).
    pub run_json: Bytes,
    /// The run's issue index.
    pub issue_index: RunIssueIndex,
}

impl RunView {
    /// The view of a record.
    pub fn new(record: RunRecord, issue_index: RunIssueIndex) -> RunView {
        let run_json = Bytes::from(serde_json::to_vec(&seed::run_of(&record)).unwrap_or_default());
        RunView {
            record,
            run_json,
            issue_index,
        }
    }
}

/// One event of a run's stream (`GET /runs/{run_id}/events`): the same data as the
/// tracing events and the CLI's `--events`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunEvent {
    /// The run, a tier or a phase entered a state.
    Transition {
        /// When.
        at: DateTime<Utc>,
        /// `run`, `tier` or `phase`.
        #[schema(value_type = String)]
        scope: Scope,
        /// Its id.
        id: String,
        /// A tier's name.
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// The state entered.
        state: String,
    },
    /// A tier budget was breached.
    Breach {
        /// When it was seen.
        at: DateTime<Utc>,
        /// The tier.
        tier_id: String,
        /// The breach.
        #[schema(value_type = Object)]
        breach: TierBreach,
        /// In words.
        message: String,
    },
    /// A phase went to its Auditor, or an Auditor escalated it.
    Escalation {
        /// When.
        at: DateTime<Utc>,
        /// The phase.
        phase_id: String,
        /// Why.
        reason: String,
    },
    /// An agent attempt waits for a worker.
    AttemptOffered {
        /// When.
        at: DateTime<Utc>,
        /// Its id (`POST /workers/lease` hands it out).
        attempt_id: String,
        /// `builder` or `auditor`.
        role: String,
        /// The phase.
        phase_id: String,
        /// The attempt number.
        attempt: u32,
    },
}

impl RunEvent {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            RunEvent::Transition { .. } => "transition",
            RunEvent::Breach { .. } => "breach",
            RunEvent::Escalation { .. } => "escalation",
            RunEvent::AttemptOffered { .. } => "attempt_offered",
        }
    }

    /// The events of record changes.
    pub fn of_changes(changes: Vec<Change>, now: DateTime<Utc>) -> impl Iterator<Item = RunEvent> {
        changes.into_iter().map(move |c| match c {
            Change::Transition {
                at,
                scope,
                id,
                name,
                state,
            } => RunEvent::Transition {
                at,
                scope,
                id,
                name,
                state,
            },
            Change::Breach { tier_id, breach } => RunEvent::Breach {
                at: now,
                tier_id,
                message: breach.to_string(),
                breach,
            },
        })
    }
}

/// An event with its place in the run's stream.
#[derive(Debug, Clone)]
pub(crate) struct Sequenced {
    /// 1-based.
    pub(crate) seq: u64,
    /// The event.
    pub(crate) event: RunEvent,
}

#[derive(Debug)]
struct EventsInner {
    history: Vec<Arc<Sequenced>>,
    /// Dropped when the run is over, which ends every subscriber's stream.
    tx: Option<broadcast::Sender<Arc<Sequenced>>>,
}

/// A run's events so far and a channel for the next ones.
#[derive(Debug)]
pub(crate) struct EventLog {
    inner: Mutex<EventsInner>,
}

impl EventLog {
    fn new() -> EventLog {
        let (tx, _) = broadcast::channel(1024);
        EventLog {
            inner: Mutex::new(EventsInner {
                history: Vec::new(),
                tx: Some(tx),
            }),
        }
    }

    fn push(&self, event: RunEvent) {
        let mut inner = lock(&self.inner);
        let seq = inner.history.len() as u64 + 1;
        let item = Arc::new(Sequenced { seq, event });
        inner.history.push(Arc::clone(&item));
        if let Some(tx) = &inner.tx {
            // No subscriber is not an error.
            let _ = tx.send(item);
        }
    }

    fn close(&self) {
        lock(&self.inner).tx = None;
    }

    /// Every event so far and, unless the run is over, a receiver of the next ones (taken
    /// under one lock, so none falls between).
    pub(crate) fn subscribe(
        &self,
    ) -> (
        Vec<Arc<Sequenced>>,
        Option<broadcast::Receiver<Arc<Sequenced>>>,
    ) {
        let inner = lock(&self.inner);
        let rx = inner.tx.as_ref().map(broadcast::Sender::subscribe);
        (inner.history.clone(), rx)
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A handler that panicked while holding the lock leaves data that is still whole
    // (every update is a single assignment).
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What a handler asks of a session.
pub(crate) enum Command {
    /// Answer the Builder attempt `id` (already closed on the board).
    Builder {
        outcome: AgentOutcome<BuilderResult>,
        reply: Reply,
    },
    /// Answer the Auditor attempt `id` (already closed on the board).
    Auditor {
        outcome: AgentOutcome<AuditorResult>,
        reply: Reply,
    },
    /// Feed an input that answers nothing; `issue` asks for that key's views back.
    Interject {
        input: Input,
        issue: Option<(PhaseId, IssueKey)>,
        reply: Reply,
    },
}

/// What a handler gets back once its command was processed.
#[derive(Debug, Clone)]
pub(crate) struct Processed {
    pub(crate) view: Arc<RunView>,
    /// The phase file, run index entry and backlog entry of the key asked for.
    pub(crate) issue_views: Option<(serde_json::Value, serde_json::Value, serde_json::Value)>,
}

pub(crate) type Reply = oneshot::Sender<Result<Processed, ApiError>>;

/// The first view of a started run, or why it did not start.
pub(crate) type Started = Result<Arc<RunView>, HostFailure>;

/// A run the service knows: driven here, or read from the store.
#[derive(Debug)]
pub(crate) struct RunSlot {
    pub(crate) run_id: RunId,
    /// Set by the first publish, before the slot is reachable from the service.
    view: RwLock<Option<Arc<RunView>>>,
    pub(crate) board: Mutex<Board>,
    pub(crate) events: EventLog,
    commands: Mutex<Option<mpsc::Sender<Command>>>,
    started: Mutex<Option<oneshot::Sender<Started>>>,
}

impl RunSlot {
    /// A run read from the store: not driven here.
    pub(crate) fn stored(view: RunView) -> Arc<RunSlot> {
        let events = EventLog::new();
        for event in RunEvent::of_changes(Seen::default().changes(&view.record), Utc::now()) {
            events.push(event);
        }
        events.close();
        Arc::new(RunSlot {
            run_id: view.record.run_id.clone(),
            view: RwLock::new(Some(Arc::new(view))),
            board: Mutex::new(Board::default()),
            events,
            commands: Mutex::new(None),
            started: Mutex::new(None),
        })
    }

    /// The latest view (`None` only before a start published its first).
    pub(crate) fn view(&self) -> Option<Arc<RunView>> {
        self.view
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Whether a session here drives the run.
    pub(crate) fn driven_here(&self) -> bool {
        lock(&self.commands).is_some()
    }

    /// Sends a command to the session and waits for it to be processed.
    pub(crate) async fn send(
        &self,
        make: impl FnOnce(Reply) -> Command,
    ) -> Result<Processed, ApiError> {
        let (tx, rx) = oneshot::channel();
        let sent = match &*lock(&self.commands) {
            Some(commands) => commands.send(make(tx)).is_ok(),
            None => false,
        };
        if !sent {
            return Err(self.not_driven());
        }
        // The driver may end the run (and stop) with the command still queued: the run
        // has ended then, which is the same answer as a command that came too late.
        match rx.await {
            Ok(answer) => answer,
            Err(_) if self.view().is_some_and(|v| v.record.state.is_terminal()) => {
                Err(self.not_driven())
            }
            Err(_) => Err(ApiError::internal(format!(
                "the driver of run {} stopped before answering",
                self.run_id
            ))),
        }
    }

    /// A command for a run this server does not drive (any more).
    fn not_driven(&self) -> ApiError {
        let state = self
            .view()
            .map(|v| seed::word(&v.record.state))
            .unwrap_or_default();
        ApiError::conflict(
            format!(
                "run {} is not being driven by this server (it has ended, or another instance drives it)",
                self.run_id
            ),
            state,
            "submit",
        )
    }

    /// Stops driving (the server is shutting down): the session returns at its next wait.
    pub(crate) fn detach(&self) {
        lock(&self.commands).take();
    }

    /// Ends the run's event streams.
    pub(crate) fn close_events(&self) {
        self.events.close();
    }

    /// Reports a start that failed before the session published anything.
    pub(crate) fn start_failed(&self, failure: HostFailure) {
        if let Some(tx) = lock(&self.started).take() {
            let _ = tx.send(Err(failure));
        }
        self.detach();
        self.events.close();
    }
}

/// How a session waits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionSettings {
    /// How often time passing is journaled while an attempt is out (the duration budget).
    pub(crate) tick: Duration,
}

/// A run handed to the host to drive ([`crate::host::RunHost::start`]): call
/// [`Session::drive`] with the driver, and put [`Session::observer`] into the driver's
/// host so the run's event stream sees every transition.
pub struct Session {
    slot: Arc<RunSlot>,
    commands: mpsc::Receiver<Command>,
    settings: SessionSettings,
    ids: Arc<AttemptIds>,
}

/// Attempt ids: unique across the server's life and distinct from another instance's.
#[derive(Debug)]
pub(crate) struct AttemptIds {
    instance: String,
    next: AtomicU64,
}

impl AttemptIds {
    pub(crate) fn new() -> AttemptIds {
        AttemptIds {
            instance: crate::attempts::new_token()[..8].to_owned(),
            next: AtomicU64::new(1),
        }
    }

    fn next(&self) -> String {
        format!(
            "{}-{}",
            self.instance,
            self.next.fetch_add(1, Ordering::Relaxed)
        )
    }
}

impl Session {
    /// A session over a new slot, and the slot, and the receiver of its first view.
    pub(crate) fn open(
        run_id: RunId,
        settings: SessionSettings,
        ids: Arc<AttemptIds>,
    ) -> (Session, Arc<RunSlot>, oneshot::Receiver<Started>) {
        let (tx, rx) = mpsc::channel();
        let (started_tx, started_rx) = oneshot::channel();
        let slot = Arc::new(RunSlot {
            run_id,
            view: RwLock::new(None),
            board: Mutex::new(Board::default()),
            events: EventLog::new(),
            commands: Mutex::new(Some(tx)),
            started: Mutex::new(Some(started_tx)),
        });
        let session = Session {
            slot: Arc::clone(&slot),
            commands: rx,
            settings,
            ids,
        };
        (session, slot, started_rx)
    }

    /// The run this session drives.
    pub fn run_id(&self) -> &RunId {
        &self.slot.run_id
    }

    /// The observer to put into the driver's [`autopack::driver::Host`]: it feeds the
    /// run's event stream.
    pub fn observer(&self) -> SessionObserver {
        SessionObserver {
            slot: Arc::clone(&self.slot),
            seen: Seen::default(),
        }
    }

    /// Drives the run: steps `driver`, offers each agent attempt to workers and HTTP
    /// clients, feeds their answers and the handlers' interjections, turns leases that
    /// ran out into failed attempts, and journals time passing while an attempt is out.
    /// Returns the state the run ended in, or its state when the server stopped driving
    /// it (a later `resume` continues it).
    ///
    /// # Errors
    /// The driver failed (its journal, its artefacts): the run stays resumable.
    pub fn drive<S: RunStore>(self, driver: &mut Driver<'_, S>) -> Result<RunState, DriverError> {
        let mut replies: Vec<(Reply, Option<(PhaseId, IssueKey)>)> = Vec::new();
        let mut last_tick = std::time::Instant::now();
        loop {
            let step = match driver.advance() {
                Ok(step) => step,
                Err(err) => {
                    self.stop(&mut replies, &err);
                    return Err(err);
                }
            };
            let Some(view) = self.publish(driver, &step) else {
                // A driver opened on a started run always has a record: this one never started.
                let err = DriverError::NothingToResume(self.slot.run_id.clone());
                self.stop(&mut replies, &err);
                return Err(err);
            };
            for (reply, issue) in replies.drain(..) {
                let issue_views = issue.and_then(|(phase, key)| issue_views(driver, &phase, &key));
                let _ = reply.send(Ok(Processed {
                    view: Arc::clone(&view),
                    issue_views,
                }));
            }
            if let Step::Finished(state) = step {
                self.slot.detach();
                self.slot.events.close();
                return Ok(state);
            }
            let wait = self.wait_time(last_tick);
            match self.commands.recv_timeout(wait) {
                Ok(command) => {
                    let (result, reply, issue) = match command {
                        Command::Builder { outcome, reply } => {
                            (driver.builder_finished(outcome), reply, None)
                        }
                        Command::Auditor { outcome, reply } => {
                            (driver.auditor_finished(outcome), reply, None)
                        }
                        Command::Interject {
                            input,
                            issue,
                            reply,
                        } => (driver.interject(input), reply, issue),
                    };
                    match result {
                        Ok(()) => replies.push((reply, issue)),
                        Err(err) => match refusal(&err, driver) {
                            Some(api) => {
                                let _ = reply.send(Err(api));
                            }
                            None => {
                                replies.push((reply, None));
                                self.stop(&mut replies, &err);
                                return Err(err);
                            }
                        },
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let now = Utc::now();
                    let expired = lock(&self.slot.board).expire(now);
                    let result = if let Some((call, lease)) = expired {
                        let reason = format!(
                            "the lease of {} on {} attempt {} of phase {} ran out at {} without a result",
                            lease.holder,
                            seed::role_word(call.role()),
                            call.attempt(),
                            call.phase_id(),
                            lease.deadline.to_rfc3339()
                        );
                        tracing::warn!(target: "autopack::server", run_id = %self.slot.run_id, %reason, "attempt lease expired");
                        match call {
                            AgentCall::Builder(_) => {
                                driver.builder_finished(AgentOutcome::Failed {
                                    reason,
                                    tokens_used: 0,
                                })
                            }
                            AgentCall::Auditor(_) => {
                                driver.auditor_finished(AgentOutcome::Failed {
                                    reason,
                                    tokens_used: 0,
                                })
                            }
                        }
                    } else if last_tick.elapsed() >= self.settings.tick {
                        last_tick = std::time::Instant::now();
                        driver.interject(Input::Tick { at: now })
                    } else {
                        Ok(())
                    };
                    if let Err(err) = result {
                        self.stop(&mut replies, &err);
                        return Err(err);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.slot.events.close();
                    return Ok(driver.supervisor().state());
                }
            }
        }
    }

    fn wait_time(&self, last_tick: std::time::Instant) -> Duration {
        let to_tick = self.settings.tick.saturating_sub(last_tick.elapsed());
        let to_deadline = lock(&self.slot.board).next_deadline().map(|d| {
            (d - Utc::now()).to_std().unwrap_or(Duration::ZERO) + Duration::from_millis(5)
        });
        // Wake at least every 250 ms, so a server stopping is noticed soon.
        to_deadline
            .unwrap_or(to_tick)
            .min(to_tick)
            .min(Duration::from_millis(250))
    }

    /// Publishes the driver's state: the view, the attempt on offer; signals the start.
    fn publish<S: RunStore>(&self, driver: &Driver<'_, S>, step: &Step) -> Option<Arc<RunView>> {
        let sup = driver.supervisor();
        // A started or reopened driver always has a record.
        let (Some(record), Some(ledger)) = (sup.record(), sup.ledger()) else {
            return None;
        };
        let view = Arc::new(RunView::new(
            record.clone(),
            ledger.run_issue_index(&record.run_id),
        ));
        *self
            .slot
            .view
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::clone(&view));
        if let Step::Finished(_) = step {
            // Before anyone is told the run ended, nothing may be leased any more.
            lock(&self.slot.board).clear();
        }
        if let Step::Agent(call) = step {
            let now = Utc::now();
            let id = self.ids.next();
            let new = lock(&self.slot.board).offer(id.clone(), call.clone(), now);
            if new {
                self.slot.events.push(RunEvent::AttemptOffered {
                    at: now,
                    attempt_id: id,
                    role: seed::role_word(call.role()).into(),
                    phase_id: call.phase_id().to_string(),
                    attempt: call.attempt(),
                });
            }
        }
        if let Some(tx) = lock(&self.slot.started).take() {
            let _ = tx.send(Ok(Arc::clone(&view)));
        }
        Some(view)
    }

    fn stop(&self, replies: &mut Vec<(Reply, Option<(PhaseId, IssueKey)>)>, err: &DriverError) {
        tracing::error!(target: "autopack::server", run_id = %self.slot.run_id, error = %err, "the run's driver stopped");
        for (reply, _) in replies.drain(..) {
            let _ = reply.send(Err(ApiError::internal(format!(
                "the driver of run {} stopped: {err} (the run can be resumed)",
                self.slot.run_id
            ))));
        }
        self.slot
            .start_failed(HostFailure::Machinery(err.to_string()));
    }
}

/// A refused command as the client's error (409/422), or `None` for a failure of the
/// driver itself.
fn refusal<S: RunStore>(err: &DriverError, driver: &Driver<'_, S>) -> Option<ApiError> {
    let state = seed::word(&driver.supervisor().state());
    match err {
        DriverError::NotAwaiting { expected, got } => Some(ApiError::conflict(
            format!("the run waits for {expected}; got {got}"),
            state,
            *got,
        )),
        DriverError::Supervisor(
            e @ (SupervisorError::UnknownPhase { .. } | SupervisorError::Finished { .. }),
        ) => Some(ApiError::conflict(e.to_string(), state, "input")),
        _ => None,
    }
}

fn issue_views<S: RunStore>(
    driver: &Driver<'_, S>,
    phase_id: &PhaseId,
    key: &IssueKey,
) -> Option<(serde_json::Value, serde_json::Value, serde_json::Value)> {
    let sup = driver.supervisor();
    let (record, ledger) = (sup.record()?, sup.ledger()?);
    let file = ledger.phase_issue_file(&record.run_id, phase_id);
    let index = ledger.run_issue_index(&record.run_id);
    let entry = index.issues_by_key.get(key);
    let backlog = ledger.backlog_entry(key);
    Some((
        serde_json::to_value(file).unwrap_or_default(),
        serde_json::to_value(entry).unwrap_or_default(),
        serde_json::to_value(backlog).unwrap_or_default(),
    ))
}

/// Feeds a run's event stream from its driver (see [`Session::observer`]).
pub struct SessionObserver {
    slot: Arc<RunSlot>,
    seen: Seen,
}

impl SessionObserver {
    fn changes(&mut self, record: &RunRecord) {
        for event in RunEvent::of_changes(self.seen.changes(record), Utc::now()) {
            self.slot.events.push(event);
        }
    }

    fn escalation(&self, escalation: Option<Escalation>, at: DateTime<Utc>) {
        if let Some(e) = escalation {
            self.slot.events.push(RunEvent::Escalation {
                at,
                phase_id: e.phase_id.to_string(),
                reason: e.reason,
            });
        }
    }
}

impl Observer for SessionObserver {
    fn action(&mut self, action: &Action, record: &RunRecord) {
        self.changes(record);
        self.escalation(Escalation::of_action(action), Utc::now());
    }

    fn input(&mut self, input: &Input, record: &RunRecord) {
        self.escalation(Escalation::of_input(input), input.at());
        self.changes(record);
    }
}
