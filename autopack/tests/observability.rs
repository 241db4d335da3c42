//! The Supervisor reports every transition, budget breach and escalation as a `tracing`
//! event, inside spans per run, tier and phase.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use autopack::supervisor::SupervisorConfig;
use autopack_core::message::AuditorRecommendation;
use autopack_core::vocabulary::{RunScope, SafetyProfile};
use common::*;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn transitions_breaches_and_escalations_are_traced_within_spans() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let plan = plan(
        "traced",
        SafetyProfile::Normal,
        RunScope::MultiTier,
        &[&[("a1", "docs")], &[("b1", "schema_change")]],
    );
    let out = tracing::subscriber::with_default(subscriber, || {
        let script = Script {
            builder: Box::new(|r| {
                if r.phase_id.as_str() == "a1" {
                    failed(r, &["t"])
                } else {
                    success(r, 10)
                }
            }),
            auditor: Box::new(|r| {
                audit(
                    r,
                    if r.phase_id.as_str() == "a1" {
                        AuditorRecommendation::Escalate
                    } else {
                        AuditorRecommendation::Approve
                    },
                )
            }),
            ..Script::default()
        };
        drive(&plan, SupervisorConfig::default(), script, 1_000)
    });
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let record = out.record();
    // One event per run transition after the start (PLAN_BOOTSTRAP is the initial state).
    assert_eq!(
        text.matches("run transition").count(),
        record.history.len() - 1,
        "{text}"
    );
    let phase_transitions: usize = record.phases().map(|p| p.history.len() - 1).sum();
    assert_eq!(text.matches("phase transition").count(), phase_transitions);
    assert!(text.contains("auditor requested"));
    assert!(text.contains("phase failed"));
    assert!(text.contains("run failed"));
    // Events carry their spans: run, tier and phase.
    assert!(
        text.contains("run{run_id=traced}:tier{tier_id=t1}:phase{phase_id=a1}"),
        "{text}"
    );
}
