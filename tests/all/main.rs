//! rill's integration tests: real guests, built by the harness, in a real host.
//!
//! One test binary (like wasmtime's `tests/all`), one module per area.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

// The seed's flow (iii's channel guide) end to end, inside wasm and from the host.
mod seed;
// Channel semantics across guest instances: iii's acceptance cases and what iii lacked.
mod channels;
// Calls: errors, traps, deadlines, depth and payload limits.
mod calls;
// The hostile-guest suite: each attack is the attacker's problem alone.
mod hostile;
// Capabilities: nothing unless granted.
mod capabilities;
// Loading components: the compiled-component cache.
mod components;
// The channel contract of wit/channels.wit, rule by rule.
mod contract;
// Admission to the instance pool: waiting for a slot, and each function's share.
mod admission;
