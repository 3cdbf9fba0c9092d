//! Any bytes as a trigger payload: the host's checks never panic or recurse, and every
//! ref the guest SDK extracts (the shared `rill-protocol` walk) parses back, by the one
//! strict rule, from its own serialization.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rill::Limits;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let limits = Limits::default();
    if limits.check_json("payload", text).is_err() {
        return;
    }
    // Valid JSON may still not fit serde_json's `Value` (a number beyond f64, such as
    // `1e999`, found by this target): the host passes such payloads through, and a guest
    // that parses into `Value` reports them as invalid input itself.
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else { return };
    for (path, found) in rill_guest::extract_channel_refs(&value) {
        let text = serde_json::to_string(&found).expect("a ref serializes");
        let host = rill_broker::ChannelRef::from_json(&text).expect("an extracted ref parses back");
        assert_eq!(host.channel_id, found.channel_id, "at {path}");
    }
});
