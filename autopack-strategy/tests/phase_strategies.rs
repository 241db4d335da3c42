//! `PhaseStrategies` behaves as the `BTreeMap<PhaseId, PhaseStrategy>` it replaced: same
//! lookups, same JSON, and a map key that differs from its slice's `phase_id` is kept.

use std::collections::BTreeMap;

use autopack_core::ids::PhaseId;
use autopack_core::plan::Plan;
use autopack_strategy::{PhaseStrategies, PhaseStrategy, Strategy, dry_run};

fn strategy() -> Strategy {
    let plan: Plan = autopack_core::json::from_str(
        r#"{
  "run": {"run_id": "run-1"},
  "tiers": [{"tier_id": "t1", "tier_index": 0, "name": "One"}],
  "phases": [
    {"phase_id": "p2", "phase_index": 0, "tier_id": "t1", "name": "B", "task_category": "docs"},
    {"phase_id": "p1", "phase_index": 1, "tier_id": "t1", "name": "A", "task_category": "tests"},
    {"phase_id": "p3", "phase_index": 2, "tier_id": "t1", "name": "C", "task_category": "schema_change"}
  ]}"#,
        "plan.json",
    )
    .unwrap();
    dry_run(&plan, None, None).unwrap()
}

fn id(s: &str) -> PhaseId {
    PhaseId::new(s).unwrap()
}

#[test]
fn lookups_and_json_match_a_btreemap() {
    let s = strategy();
    let map: BTreeMap<PhaseId, PhaseStrategy> = s.phase_strategies.clone().into();
    assert_eq!(
        s.phase_strategies.keys().collect::<Vec<_>>(),
        map.keys().collect::<Vec<_>>()
    );
    assert_eq!(
        s.phase_strategies.values().collect::<Vec<_>>(),
        map.values().collect::<Vec<_>>()
    );
    assert_eq!(
        (&s.phase_strategies).into_iter().collect::<Vec<_>>(),
        map.iter().collect::<Vec<_>>()
    );
    for key in ["p1", "p2", "p3"] {
        assert_eq!(s.phase_strategies.get(key), map.get(key));
        assert_eq!(s.phase(&id(key)), map.get(key));
        assert_eq!(&s.phase_strategies[key], &map[key]);
    }
    assert_eq!(s.phase_strategies.get("p4"), None);
    assert_eq!(
        serde_json::to_string_pretty(&s.phase_strategies).unwrap(),
        serde_json::to_string_pretty(&map).unwrap()
    );
    let back = Strategy::from_json(&s.to_json(), "s.json").unwrap();
    assert_eq!(back, s);
    assert_eq!(back.to_json(), s.to_json());
    assert_eq!(PhaseStrategies::from(map), s.phase_strategies);
}

#[test]
fn keys_that_differ_from_the_slice_id_are_kept() {
    let s = strategy();
    let mut map: BTreeMap<PhaseId, PhaseStrategy> = s.phase_strategies.clone().into();
    let mut slices = s.phase_strategies.clone();
    // A slice filed under another key, as a hand-edited JSON file may hold.
    let p1 = map.remove("p1").unwrap();
    map.insert(id("p9"), p1.clone());
    assert!(slices.remove("p1").is_some());
    assert_eq!(slices.insert(id("p9"), p1.clone()), None);
    assert_eq!(slices.get("p9"), Some(&p1));
    assert_eq!(slices.get("p1"), None);
    assert_eq!(slices, PhaseStrategies::from(map.clone()));
    let json = serde_json::to_string(&map).unwrap();
    assert_eq!(serde_json::to_string(&slices).unwrap(), json);
    let read: PhaseStrategies = serde_json::from_str(&json).unwrap();
    assert_eq!(read, slices);
    // Editing a slice's id through `get_mut` does not move it.
    let mut edited = s.phase_strategies.clone();
    edited.get_mut("p2").unwrap().phase_id = id("p0");
    assert_eq!(edited.get("p2").map(|p| p.phase_id.as_str()), Some("p0"));
    assert_eq!(edited.get("p0"), None);
    assert_eq!(
        edited.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
        ["p1", "p2", "p3"]
    );
}

#[test]
fn unsorted_and_repeated_keys_read_as_a_btreemap_reads_them() {
    let s = strategy();
    let slice = |key: &str| serde_json::to_string(&s.phase_strategies[key]).unwrap();
    let mut p1_edited = s.phase_strategies["p1"].clone();
    p1_edited.max_builder_attempts = 9;
    let p1_edited = serde_json::to_string(&p1_edited).unwrap();
    let documents = [
        // Written order: sorted, each slice under its own id.
        format!(
            r#"{{"p1": {}, "p2": {}, "p3": {}}}"#,
            slice("p1"),
            slice("p2"),
            slice("p3")
        ),
        // Unsorted.
        format!(
            r#"{{"p3": {}, "p1": {}, "p2": {}}}"#,
            slice("p3"),
            slice("p1"),
            slice("p2")
        ),
        // A repeated key: the later one wins.
        format!(
            r#"{{"p1": {}, "p2": {}, "p1": {}}}"#,
            slice("p1"),
            slice("p2"),
            p1_edited
        ),
        // A key that is not its slice's id, after ones that are.
        format!(
            r#"{{"p1": {}, "p2": {}, "p0": {}}}"#,
            slice("p1"),
            slice("p2"),
            slice("p3")
        ),
    ];
    for json in documents {
        let read: PhaseStrategies = serde_json::from_str(&json).unwrap();
        let map: BTreeMap<PhaseId, PhaseStrategy> = serde_json::from_str(&json).unwrap();
        assert_eq!(read, PhaseStrategies::from(map.clone()), "{json}");
        assert_eq!(
            serde_json::to_string(&read).unwrap(),
            serde_json::to_string(&map).unwrap()
        );
    }
}
