//! # autopack-strategy
//!
//! Declarative rulesets (`project_ruleset_{project_id}.json`), the built-in category
//! defaults of SPEC §5, and the deterministic StrategyEngine that compiles ruleset +
//! backlog + plan into the frozen per-run strategy
//! (`project_implementation_strategy_v{N}.json`).
//!
//! This crate is not implemented yet (issue 4); it holds no public items so that nothing
//! pretends to work.
