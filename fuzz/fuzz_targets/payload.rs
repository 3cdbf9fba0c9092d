//! Any bytes as a trigger payload: the host's checks never panic or recurse, and the
//! guest SDK's ref extraction agrees with the host's ref parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rill::Limits;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let limits = Limits::default();
    if limits.check_json("payload", text).is_err() {
        return;
    }
    let value: serde_json::Value = serde_json::from_str(text).expect("checked JSON parses");
    for (path, found) in rill_guest::extract_channel_refs(&value) {
        let text = serde_json::to_string(&found).expect("a ref serializes");
        let host = rill_broker::ChannelRef::from_json(&text).expect("the host accepts every ref the SDK extracts");
        assert_eq!(host.channel_id, found.channel_id, "at {path}");
    }
});
