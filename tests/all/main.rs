//! rill's integration tests: real guests, built by the harness, in a real host.
//!
//! One test binary (like wasmtime's `tests/all`), one module per area. The guests come
//! from `rill-test-artifacts` (`guests/artifacts`), whose build script builds
//! `guests/rust`; each test guest `guests/rust/test-guests/<name>` is tested by the module
//! of the same name, which the check below enforces at compile time.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

// The seed's flow (iii's channel guide) end to end, inside wasm and from the host.
mod seed;
// Channel semantics across guest instances: iii's acceptance cases and what iii lacked.
mod channels;
// How a writer ends its stream (close, abort, trap, drop, deadline), as its reader sees it.
mod writers;
// The WIT writer straight through its bindings: writes of any size, writes after close.
mod raw_writes;
// Calls: errors, traps, deadlines, depth and payload limits.
mod calls;
// The hostile-guest suite: each attack is the attacker's problem alone.
mod hostile;
// Capabilities: nothing unless granted.
mod capabilities;
// Loading components and running them: the compiled-component cache, the instance pool.
mod components;
// The channel contract of wit/channels.wit, rule by rule.
mod contract;
// Admission to the instance pool: waiting for a slot, and each function's share.
mod admission;
// The guests themselves: each serves the ids it declares, and each id has a test.
mod guests;
// Python guests: the same answers as Rust's, the same contract.
mod python;
// JavaScript guests: the same answers as Rust's, the same contract.
mod javascript;
// C guests: the same answers as Rust's, the same contract.
mod c;
// Rust → Python → JavaScript → C through channels, and each language's failure on the way.
mod languages;

/// `assert_test_exists!(name)`: the test module for `guests/rust/test-guests/<name>`
/// exists. A test guest added without its module does not compile (wasmtime's pattern).
macro_rules! assert_test_exists {
    ($guest:ident) => {
        #[expect(unused_imports, reason = "only the module's existence is checked")]
        use self::$guest as _;
    };
}
rill_test_artifacts::foreach_test_guest!(assert_test_exists);
