//! # rill-protocol: the words rill and its guests share on the wire
//!
//! One definition, used by the channel broker, the host, the Rust guest SDK (and the
//! coming server and other SDKs' conformance tests), of:
//!
//! - [`ChannelRef`] and [`Direction`]: a ref's JSON is iii's, exactly —
//!   `{"channel_id": "…", "access_key": "…", "direction": "read"}` — parsed by one strict
//!   rule (the three keys, with those types, and nothing else) and printed by `Debug`
//!   without its secret key;
//! - [`extract_channel_refs`]: every ref inside a JSON payload, with its path;
//! - [`FunctionId`]: the one rule for what names a function, and [`CallOptions`];
//! - [`ChannelErrorKind`] and [`CallErrorKind`]: the error cases with their WIT names and,
//!   for channels, the [`std::io::ErrorKind`] each becomes;
//! - [`worker`]: the iii worker protocol's messages, which `rill serve` speaks with iii
//!   SDK workers.
//!
//! The crate needs only `serde` and `serde_json` (no async runtime), so it builds for
//! `wasm32-wasip2` guests as well as for hosts. `conformance/refs.json` lists valid and
//! invalid refs; every SDK's tests parse it and must agree with [`ChannelRef::from_value`].

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod call_options;
mod error_kind;
mod function_id;
mod refs;
pub mod worker;

pub use call_options::CallOptions;
pub use error_kind::{CallErrorKind, ChannelErrorKind};
pub use function_id::{FunctionId, FunctionIdError, MAX_FUNCTION_ID_BYTES};
pub use refs::{ChannelRef, Direction, RefParseError, extract_channel_refs, is_channel_ref};

/// The conformance table of refs (`conformance/refs.json`), for SDK tests.
pub const REFS_CONFORMANCE_JSON: &str = include_str!("../conformance/refs.json");

/// The conformance table of error kinds (`conformance/errors.json`), for SDK tests.
pub const ERRORS_CONFORMANCE_JSON: &str = include_str!("../conformance/errors.json");
