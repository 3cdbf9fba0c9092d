//! Calls: clear errors for bad input, traps that stay with their guest, deadlines that
//! hold, and limits tested both obeyed and violated.

use std::time::{Duration, Instant};

use rill::{CallError, CallOptions, ChannelOptions, ChannelRef, HostConfig, Item};
use rill_tests::{assert_no_leaks, call, host, host_with};
use serde_json::{Value, json};

#[tokio::test]
async fn unknown_function_is_not_found() {
    let host = host();
    let err = host.trigger("no::such", &json!({})).await.unwrap_err();
    assert_eq!(err, CallError::NotFound("no::such".into()));
    assert_eq!(err.to_string(), "no function \"no::such\" is registered in this host");
}

#[tokio::test]
async fn malformed_payload_json_is_invalid_input() {
    let host = host();
    let err = host.trigger_json("test::echo", "{\"unterminated\": ".into()).await.unwrap_err();
    let CallError::InvalidInput(message) = &err else { panic!("{err:?}") };
    assert!(message.starts_with("the payload is not valid JSON"), "{message}");
}

#[tokio::test]
async fn a_guest_error_is_failed_with_its_message() {
    let host = host();
    let err = host.trigger("test::fail", &json!({ "message": "no thanks" })).await.unwrap_err();
    assert_eq!(err, CallError::Failed { function_id: "test::fail".into(), message: "no thanks".into() });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_is_reported_and_the_host_keeps_serving() {
    let host = host();
    let (trapped, echoed) = tokio::join!(
        host.trigger("test::trap", &json!({ "message": "kaboom" })),
        host.trigger("test::echo", &json!({ "still": "here" })),
    );
    let err = trapped.unwrap_err();
    let CallError::Trapped { function_id, message } = &err else { panic!("{err:?}") };
    assert_eq!(function_id, "test::trap");
    assert!(message.contains("unreachable"), "the trap message names the trap: {message}");
    assert!(message.contains("wasm backtrace"), "with the guest backtrace: {message}");
    assert!(!message.contains("Stack backtrace"), "without the host's own stack: {message}");
    assert_eq!(echoed.unwrap(), json!({ "still": "here" }));
    // And again afterwards: nothing of the trapped store is reused.
    assert_eq!(call(&host, "test::echo", json!([1, 2])).await, json!([1, 2]));
}

#[tokio::test]
async fn malformed_refs_give_clear_errors() {
    // On the host side, parsing says what a ref must look like.
    let err = ChannelRef::from_json(r#"{"channel_id": 5}"#).unwrap_err().to_string();
    assert!(err.starts_with("not a channel ref"), "{err}");
    assert!(err.contains("\"direction\": \"read\"|\"write\""), "{err}");

    // A guest handed a malformed ref fails with a clear message instead of trapping.
    let host = host();
    let err =
        host.trigger("test::open", &json!({ "ref": { "channel_id": 5 }, "as": "reader" })).await.unwrap_err();
    let CallError::Failed { message, .. } = &err else { panic!("{err:?}") };
    assert!(message.contains("invalid input for test::open"), "{message}");

    // The seed's consumer without its ref says so.
    let err = host.trigger("files::process", &json!({ "reader": "not a ref" })).await.unwrap_err();
    assert_eq!(err.kind(), "failed", "{err}");
}

#[tokio::test]
async fn guests_get_typed_call_errors() {
    let host = host();
    let result = call(&host, "test::call", json!({ "function": "no::such", "payload": {} })).await;
    assert!(result["error"].as_str().unwrap().starts_with("not-found"), "{result}");
    let result =
        call(&host, "test::call", json!({ "function": "test::fail", "payload": { "message": "x" } })).await;
    assert!(result["error"].as_str().unwrap().starts_with("failed"), "{result}");
    let result = call(&host, "test::call", json!({ "function": "test::echo", "payload": { "a": 1 } })).await;
    assert_eq!(result["ok"], json!({ "a": 1 }));
    let result = call(
        &host,
        "test::call",
        json!({ "function": "test::echo", "payload": { "a": 2 }, "mode": "spawn" }),
    )
    .await;
    assert_eq!(result["ok"], json!({ "a": 2 }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_void_call_runs_unobserved() {
    let host = host();
    let channel = host.create_channel(&ChannelOptions::default()).unwrap();
    // A void call of a writer that writes 77 bytes and closes: nobody waits for it.
    let payload = json!({ "writer": channel.writer_ref, "bytes": 77 });
    let result = call(
        &host,
        "test::call",
        json!({ "function": "test::write_then_close", "payload": payload, "mode": "void" }),
    )
    .await;
    assert!(result.get("error").is_none(), "{result}");
    let mut reader = channel.reader;
    let mut bytes = 0;
    while let Some(item) = reader.next().await.unwrap() {
        if let Item::Bytes(b) = item {
            bytes += b.len();
        }
    }
    assert_eq!(bytes, 77, "the void call ran to completion");
    drop(reader);
    assert_no_leaks(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_obeyed() {
    let host = host();
    let result = host.trigger_with(
        "test::spin",
        json!({ "ms": 20 }).to_string(),
        &CallOptions::new().timeout(Duration::from_secs(10)),
    );
    assert!(result.await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_violated_by_a_spinning_guest() {
    let host = host();
    let started = Instant::now();
    let err = host
        .trigger_with("test::spin", "{}".into(), &CallOptions::new().timeout(Duration::from_millis(200)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CallError::TimedOut { ref function_id, .. } if function_id == "test::spin"),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5), "stopped promptly: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_violated_by_a_guest_blocked_in_a_host_call() {
    let host = host();
    // Compiled first: under load, compiling could take the whole 200 ms, and the call would
    // then time out before the guest opened its reader, which is not what this checks.
    host.prepare("test::read").await.unwrap();
    let channel = host.create_channel(&ChannelOptions::default()).unwrap();
    let mut writer = channel.writer;
    writer.write(&b"x"[..]).await.unwrap(); // attached, but nothing more ever comes
    let payload = json!({ "reader": channel.reader_ref });
    let err = host
        .trigger_with(
            "test::read",
            payload.to_string(),
            &CallOptions::new().timeout(Duration::from_millis(200)),
        )
        .await;
    assert_eq!(err.unwrap_err().kind(), "timed-out");
    // The timed-out guest's reader went with its store: the writer learns it.
    assert_eq!(writer.write(&b"y"[..]).await.unwrap_err(), rill::ChannelError::Closed);
    drop(writer);
    assert_no_leaks(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callee_never_outlives_its_callers_deadline() {
    let host = host();
    let started = Instant::now();
    // The inner call asks for 60 s, but its caller only has 300 ms.
    let payload = json!({ "function": "test::spin", "payload": {}, "timeout_ms": 60_000 });
    let err = host
        .trigger_with(
            "test::call",
            payload.to_string(),
            &CallOptions::new().timeout(Duration::from_millis(300)),
        )
        .await;
    assert_eq!(err.unwrap_err().kind(), "timed-out");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

/// A payload for `test::call` that nests `depth` calls of itself around `test::echo`.
fn nested_calls(depth: usize) -> Value {
    let mut payload = json!({ "function": "test::echo", "payload": { "bottom": true } });
    for _ in 0..depth {
        payload = json!({ "function": "test::call", "payload": payload });
    }
    payload
}

/// Follow `{"ok": …}` down the nested results; return the first error, if any.
fn first_error(mut result: &Value) -> Option<String> {
    loop {
        if let Some(err) = result.get("error") {
            return Some(err.as_str().unwrap().to_owned());
        }
        match result.get("ok") {
            Some(inner) => result = inner,
            None => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_depth_obeyed() {
    let host = host();
    // The outer call is depth 0; the innermost echo sits at the limit.
    let depth = rill::limits::DEFAULT_MAX_CALL_DEPTH as usize - 1;
    let result = call(&host, "test::call", nested_calls(depth)).await;
    assert_eq!(first_error(&result), None, "{result}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_depth_violated() {
    let host = host();
    let depth = rill::limits::DEFAULT_MAX_CALL_DEPTH as usize;
    let result = call(&host, "test::call", nested_calls(depth)).await;
    let err = first_error(&result).expect("the innermost call is refused");
    assert!(err.starts_with("limit-exceeded: call depth"), "{err}");
}

fn small_payload_host() -> rill::Host {
    let mut config = HostConfig::default();
    config.limits.max_payload_bytes = 1000;
    host_with(config)
}

#[tokio::test]
async fn payload_size_obeyed() {
    let host = small_payload_host();
    let payload = format!("\"{}\"", "x".repeat(998));
    assert_eq!(host.trigger_json("test::echo", payload.clone()).await.unwrap(), payload);
}

#[tokio::test]
async fn payload_size_violated() {
    let host = small_payload_host();
    let payload = format!("\"{}\"", "x".repeat(999));
    let err = host.trigger_json("test::echo", payload).await.unwrap_err();
    let CallError::LimitExceeded(message) = &err else { panic!("{err:?}") };
    assert!(message.contains("1001 bytes"), "{message}");
}

#[tokio::test]
async fn function_id_length_violated() {
    let host = host();
    let long = "x".repeat(rill::MAX_FUNCTION_ID_BYTES + 1);
    let err = host.trigger(&long, &json!({})).await.unwrap_err();
    assert_eq!(
        err,
        CallError::InvalidInput(format!("a function id must be 1 to 128 bytes long, not {}", long.len()))
    );
    let err = host.trigger("", &json!({})).await.unwrap_err();
    assert_eq!(err, CallError::InvalidInput("a function id cannot be empty".into()));
    // The same rule as for registering: no control characters.
    let err = host.trigger("test::echo\n", &json!({})).await.unwrap_err();
    assert_eq!(err, CallError::InvalidInput("a function id cannot hold control characters".into()));
}

#[tokio::test]
async fn function_id_length_obeyed() {
    let host = host();
    let longest = "x".repeat(rill::MAX_FUNCTION_ID_BYTES);
    // Well-formed, so the answer is about the function, not the id.
    assert_eq!(host.trigger(&longest, &json!({})).await.unwrap_err(), CallError::NotFound(longest));
}

/// Found by the `payload` fuzz target: `1e999` is valid JSON that serde_json's `Value`
/// cannot hold. The host passes it through (JSON sets no number range); a guest parsing
/// into `Value` reports it as its own invalid input, a clear error, not a crash.
#[tokio::test]
async fn numbers_beyond_f64_are_the_guests_to_refuse() {
    let host = host();
    let err = host.trigger_json("test::echo", r#"{"n": 1e999}"#.into()).await.unwrap_err();
    let CallError::Failed { message, .. } = &err else { panic!("{err:?}") };
    assert!(message.contains("number out of range"), "{message}");
}
