//! The store conformance suites, run against the in-memory stores.
#![cfg(feature = "testing")]

use autopack_strategy::store::{MemoryRulesetStore, MemoryStrategyStore};
use autopack_strategy::testing;

#[test]
fn memory_ruleset_store_conforms() {
    testing::ruleset_store_conformance(MemoryRulesetStore::new);
}

#[test]
fn memory_strategy_store_conforms() {
    testing::strategy_store_conformance(MemoryStrategyStore::new);
}
