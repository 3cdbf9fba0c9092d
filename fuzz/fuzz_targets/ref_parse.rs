//! Any bytes as a channel ref: parsing never panics, and what parses round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rill_broker::ChannelRef;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(parsed) = ChannelRef::from_json(text) {
        let again = ChannelRef::from_value(&parsed.to_value()).expect("a parsed ref serializes to a valid ref");
        assert_eq!(again, parsed);
    }
});
