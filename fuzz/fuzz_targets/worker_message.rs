//! Arbitrary text as a worker-protocol message (what `rill serve` reads from every iii
//! worker connection): parsing never panics, and a message that parses is written back as
//! JSON that parses again to the same kind of message, with `data` and `result` kept byte
//! for byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rill_protocol::worker::Message;

fuzz_target!(|text: &str| {
    let Ok(message) = Message::from_json(text) else { return };
    let written = message.to_json();
    match (&message, Message::from_json(&written)) {
        // Messages rill does not act on are never written.
        (Message::Other(_), _) => {}
        (Message::InvokeFunction(before), Ok(Message::InvokeFunction(after))) => {
            assert_eq!(before.data.get(), after.data.get());
            assert_eq!(before.function_id, after.function_id);
        }
        (Message::InvocationResult(before), Ok(Message::InvocationResult(after))) => {
            assert_eq!(before.result.as_ref().map(|r| r.get()), after.result.as_ref().map(|r| r.get()));
            assert_eq!(before.error, after.error);
        }
        (before, Ok(after)) => {
            assert_eq!(std::mem::discriminant(before), std::mem::discriminant(&after), "{written}");
        }
        (_, Err(err)) => panic!("a parsed message was written as {written}, which does not parse: {err}"),
    }
});
