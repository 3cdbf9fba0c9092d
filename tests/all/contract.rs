//! The channel contract, sentence by sentence.
//!
//! Each rule of `wit/channels.wit` is checked three ways — inside one function, across
//! two functions (one waiting on the other), and from the embedding API — by the
//! `contract::*` guest, which is written against `wit/` alone and reports the outcome of
//! each step as it acts. Every check has a time bound far below any deadline: a rule
//! must hold when the guest acts, not when its call ends.

use std::time::{Duration, Instant};

use rill::{BrokerConfig, CallError, ChannelError, ChannelOptions, FunctionConfig, HostConfig, Item, Limits};
use rill_test_artifacts::CONTRACT;
use rill_tests::{assert_no_leaks, component, host_with, host_with_functions, warm_up};
use serde_json::{Value, json};

/// How long any contract check may take: far below the 30 s call deadline and the 60 s
/// attach deadline, so a rule that only took effect when a call ended would fail.
const BOUND: Duration = Duration::from_secs(5);

const DROPPED: &str = "aborted: writer dropped without close";

async fn contract_host() -> rill::Host {
    let host = host_with(HostConfig::default());
    warm_up(&host).await;
    host
}

/// Play `steps` in `contract::local` (a channel of its own) and return the outcomes,
/// checking the time bound.
async fn local(host: &rill::Host, steps: Value) -> Value {
    let started = Instant::now();
    let result = host.trigger("contract::local", &json!({ "steps": steps })).await;
    let took = started.elapsed();
    assert!(took < BOUND, "took {took:?}: a rule waited for a deadline");
    result.unwrap_or_else(|e| panic!("contract::local failed: {e}"))["outcomes"].clone()
}

/// Play `steps` in `contract::remote` with `channel_ref` and return the outcomes.
async fn remote(host: &rill::Host, channel_ref: &rill::ChannelRef, steps: Value) -> Value {
    let payload = json!({ "ref": channel_ref, "steps": steps });
    let result = tokio::time::timeout(BOUND, host.trigger("contract::remote", &payload)).await;
    let result = result.unwrap_or_else(|_| panic!("contract::remote took more than {BOUND:?}"));
    result.unwrap_or_else(|e| panic!("contract::remote failed: {e}"))["outcomes"].clone()
}

/// Read `reader` to its end or error within the bound: (bytes, texts, outcome).
async fn drain(reader: &mut rill::Reader) -> (usize, Vec<String>, Result<(), ChannelError>) {
    let mut bytes = 0;
    let mut texts = Vec::new();
    let outcome = tokio::time::timeout(BOUND, async {
        loop {
            match reader.next().await {
                Ok(Some(Item::Bytes(b))) => bytes += b.len(),
                Ok(Some(Item::Text(t))) => texts.push(t),
                Ok(None) => return Ok(()),
                Err(err) => return Err(err),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the reader waited more than {BOUND:?}"));
    (bytes, texts, outcome)
}

// ---------------------------------------------------------------------------------------
// "Dropping an attached writer without `close` aborts the stream."

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_writer_aborts_at_once_inside_one_function() {
    let host = contract_host().await;
    let outcomes =
        local(&host, json!([["write", 10], ["drop", "writer"], ["next"], ["next"], ["next"]])).await;
    assert_eq!(outcomes, json!(["ok", "ok", "bytes 10", DROPPED, DROPPED]));
    assert_no_leaks(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_writer_aborts_at_once_across_functions() {
    let host = contract_host().await;
    // The reader is in a function the caller waits on, after the drop...
    let read = json!([["open", "reader"], ["next"], ["next"]]);
    let outcomes = local(
        &host,
        json!([
            ["drop", "reader"],
            ["write", 10],
            ["drop", "writer"],
            ["trigger", "contract::remote", "read", read]
        ]),
    )
    .await;
    assert_eq!(outcomes, json!(["ok", "ok", "ok", ["ok", "bytes 10", DROPPED]]));
    // ...and already waiting when the writer is dropped.
    let read = json!([["open", "reader"], ["drain"]]);
    let outcomes = local(
        &host,
        json!([
            ["drop", "reader"],
            ["spawn", "contract::remote", "read", read],
            ["sleep", 100],
            ["write", 10],
            ["drop", "writer"],
            ["wait"]
        ]),
    )
    .await;
    assert_eq!(outcomes, json!(["ok", "ok", "ok", "ok", "ok", ["ok", format!("10 bytes, {DROPPED}")]]));
    // The writer in the other function: its drop reaches this reader while it waits.
    let write = json!([["open", "writer"], ["write", 10], ["drop", "writer"], ["sleep", 50]]);
    let outcomes = local(
        &host,
        json!([["drop", "writer"], ["spawn", "contract::remote", "write", write], ["drain"], ["wait"]]),
    )
    .await;
    assert_eq!(outcomes, json!(["ok", "ok", format!("10 bytes, {DROPPED}"), ["ok", "ok", "ok", "ok"]]));
    assert_no_leaks(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_writer_aborts_at_once_for_the_embedding_api() {
    let host = contract_host().await;
    let channel = host.create_channel(&ChannelOptions::default()).unwrap();
    // The function drops its writer, then keeps running for 3 s: the host's reader must
    // learn of the abort long before the call ends.
    let payload = json!({
        "ref": channel.writer_ref,
        "steps": [["open", "writer"], ["write", 10], ["drop", "writer"], ["sleep", 3000]],
    });
    let started = Instant::now();
    let call = tokio::spawn(host.trigger("contract::remote", &payload));
    let mut reader = channel.reader;
    let (bytes, _, outcome) = drain(&mut reader).await;
    let took = started.elapsed();
    assert_eq!((bytes, outcome), (10, Err(ChannelError::Aborted("writer dropped without close".into()))));
    assert!(took < Duration::from_millis(2500), "the abort arrived only after {took:?}");
    assert!(!call.is_finished(), "the call was still running when the reader learned");
    assert_eq!(call.await.unwrap().unwrap()["outcomes"], json!(["ok", "ok", "ok", "ok"]));
    assert_no_leaks(&host).await;
}

// ---------------------------------------------------------------------------------------
// "Dropping an attached reader makes the writer's next operation fail with `closed`."

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_reader_closes_the_writer() {
    let host = contract_host().await;
    // Inside one function: write, text and close all fail at once.
    let outcomes = local(
        &host,
        json!([["write", 1], ["next"], ["drop", "reader"], ["write", 1], ["text", "t"], ["close"]]),
    )
    .await;
    assert_eq!(outcomes, json!(["ok", "bytes 1", "ok", "closed", "closed", "closed"]));
    // Across functions.
    let read = json!([["open", "reader"], ["drop", "reader"]]);
    let outcomes = local(
        &host,
        json!([["drop", "reader"], ["trigger", "contract::remote", "read", read], ["write", 1]]),
    )
    .await;
    assert_eq!(outcomes, json!(["ok", ["ok", "ok"], "closed"]));
    // From the embedding API: the function's reader leaves; the host's writer learns.
    let channel = host.create_channel(&ChannelOptions::default()).unwrap();
    let outcomes = remote(&host, &channel.reader_ref, json!([["open", "reader"], ["drop", "reader"]])).await;
    assert_eq!(outcomes, json!(["ok", "ok"]));
    let mut writer = channel.writer;
    assert_eq!(writer.write(&b"x"[..]).await, Err(ChannelError::Closed));
    drop(writer);
    // And the host's reader leaves; the function's writer learns.
    let channel = host.create_channel(&ChannelOptions::default()).unwrap();
    let mut reader = channel.reader;
    // Attach the host's lazy reader (its first poll), then leave.
    let waited = tokio::time::timeout(Duration::from_millis(10), reader.read(1)).await;
    assert!(waited.is_err(), "nothing was written yet: {waited:?}");
    drop(reader);
    let outcomes =
        remote(&host, &channel.writer_ref, json!([["open", "writer"], ["write", 1], ["close"]])).await;
    assert_eq!(outcomes, json!(["ok", "closed", "closed"]));
    assert_no_leaks(&host).await;
}

// ---------------------------------------------------------------------------------------
// "`close` is the only clean end", "After the end (or an abort), further reads repeat
// that outcome", and `finished`.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_ends_cleanly_and_the_end_repeats() {
    let host = contract_host().await;
    let outcomes = local(
        &host,
        json!([["write", 3], ["text", "t"], ["close"], ["next"], ["next"], ["next"], ["next"], ["read", 5]]),
    )
    .await;
    assert_eq!(outcomes, json!(["ok", "ok", "ok", "bytes 3", "text t", "end", "end", "end"]));
    let read = json!([["open", "reader"], ["next"], ["next"], ["next"]]);
    let outcomes = local(
        &host,
        json!([["drop", "reader"], ["write", 3], ["close"], ["trigger", "contract::remote", "read", read]]),
    )
    .await;
    assert_eq!(outcomes, json!(["ok", "ok", "ok", ["ok", "bytes 3", "end", "end"]]));
    let channel = host.create_channel(&ChannelOptions::default()).unwrap();
    let mut writer = channel.writer;
    writer.write(&b"abc"[..]).await.unwrap();
    writer.close().unwrap();
    let outcomes =
        remote(&host, &channel.reader_ref, json!([["open", "reader"], ["next"], ["next"], ["next"]])).await;
    assert_eq!(outcomes, json!(["ok", "bytes 3", "end", "end"]));
    assert_no_leaks(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_writer_accepts_nothing_and_a_late_abort_does_nothing() {
    let host = contract_host().await;
    let after_close = json!([["close"], ["write", 1], ["text", "x"], ["close"], ["abort", "late"]]);
    let mut steps = vec![json!(["write", 3])];
    steps.extend(after_close.as_array().unwrap().iter().cloned());
    steps.push(json!(["drain"]));
    let outcomes = local(&host, Value::from(steps)).await;
    assert_eq!(outcomes, json!(["ok", "ok", "finished", "finished", "finished", "ok", "3 bytes, end"]));
    // An aborted writer is finished too, and its abort stays.
    let outcomes =
        local(&host, json!([["abort", "first"], ["write", 1], ["close"], ["abort", "second"], ["drain"]]))
            .await;
    assert_eq!(outcomes, json!(["ok", "finished", "finished", "ok", "0 bytes, aborted: first"]));
    // Across functions and from the embedding API: the host reads what the function did.
    let channel = host.create_channel(&ChannelOptions::default()).unwrap();
    let mut steps = vec![json!(["open", "writer"]), json!(["write", 3])];
    steps.extend(after_close.as_array().unwrap().iter().cloned());
    let outcomes = remote(&host, &channel.writer_ref, Value::from(steps)).await;
    assert_eq!(outcomes, json!(["ok", "ok", "ok", "finished", "finished", "finished", "ok"]));
    let mut reader = channel.reader;
    assert_eq!(drain(&mut reader).await, (3, vec![], Ok(())));
    let write = json!([["open", "writer"], ["write", 3], ["close"], ["write", 1], ["abort", "late"]]);
    let outcomes =
        local(&host, json!([["drop", "writer"], ["trigger", "contract::remote", "write", write], ["drain"]]))
            .await;
    assert_eq!(outcomes, json!(["ok", ["ok", "ok", "ok", "finished", "ok"], "3 bytes, end"]));
    assert_no_leaks(&host).await;
}

// ---------------------------------------------------------------------------------------
// "`abort` ... the reader drains what is buffered, then sees `aborted(reason)`."

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_reaches_the_reader_after_the_buffered_data() {
    let host = contract_host().await;
    let outcomes = local(
        &host,
        json!([["write", 5], ["text", "t"], ["abort", "gave up"], ["next"], ["next"], ["next"], ["next"]]),
    )
    .await;
    assert_eq!(
        outcomes,
        json!(["ok", "ok", "ok", "bytes 5", "text t", "aborted: gave up", "aborted: gave up"])
    );
    let read = json!([["open", "reader"], ["drain"], ["next"]]);
    let outcomes = local(
        &host,
        json!([
            ["drop", "reader"],
            ["write", 5],
            ["abort", "gave up"],
            ["trigger", "contract::remote", "read", read]
        ]),
    )
    .await;
    assert_eq!(outcomes, json!(["ok", "ok", "ok", ["ok", "5 bytes, aborted: gave up", "aborted: gave up"]]));
    let channel = host.create_channel(&ChannelOptions::default()).unwrap();
    let outcomes =
        remote(&host, &channel.writer_ref, json!([["open", "writer"], ["write", 5], ["abort", "gave up"]]))
            .await;
    assert_eq!(outcomes, json!(["ok", "ok", "ok"]));
    let mut reader = channel.reader;
    assert_eq!(drain(&mut reader).await, (5, vec![], Err(ChannelError::Aborted("gave up".into()))));
    assert_no_leaks(&host).await;
}

// ---------------------------------------------------------------------------------------
// Lazy attach: "the local ends returned by `create` attach lazily, on their first
// operation, so a function may hand one ref away and drop its unused local end", and
// aborting a never-used local end, which claims it.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_ends_attach_on_first_use() {
    let host = contract_host().await;
    // Unused local ends leave their refs free; used ones take them.
    let outcomes = local(
        &host,
        json!([
            ["drop", "writer"],
            ["open", "writer"],
            ["write", 2],
            ["close"],
            ["drain"],
            ["open", "reader"]
        ]),
    )
    .await;
    // Both ends finished: the channel is freed, so its refs are not found.
    assert_eq!(outcomes, json!(["ok", "ok", "ok", "ok", "2 bytes, end", "not-found"]));
    let outcomes =
        local(&host, json!([["write", 1], ["open", "writer"], ["next"], ["open", "reader"]])).await;
    assert_eq!(outcomes, json!(["ok", "already-attached", "bytes 1", "already-attached"]));
    // Across functions: a used local end's ref is taken for the other function too.
    let outcomes = local(
        &host,
        json!([
            ["write", 1],
            ["trigger", "contract::remote", "write", [["open", "writer"]]],
            ["close"],
            ["drain"]
        ]),
    )
    .await;
    assert_eq!(outcomes, json!(["ok", ["already-attached"], "ok", "1 bytes, end"]));
    // From the embedding API: the host's unused lazy reader leaves the ref to the
    // function; once the host used its writer, the writer ref is taken.
    let channel = host.create_channel(&ChannelOptions::default()).unwrap();
    drop(channel.reader);
    let mut writer = channel.writer;
    writer.write(&b"ab"[..]).await.unwrap();
    writer.close().unwrap();
    let outcomes = remote(&host, &channel.writer_ref, json!([["open", "writer"]])).await;
    assert_eq!(outcomes, json!(["already-attached"]));
    let outcomes = remote(&host, &channel.reader_ref, json!([["open", "reader"], ["drain"]])).await;
    assert_eq!(outcomes, json!(["ok", "2 bytes, end"]));
    assert_no_leaks(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborting_a_never_used_local_end_claims_it_so_the_reader_learns_why() {
    let host = contract_host().await;
    let outcomes = local(&host, json!([["abort", "never started"], ["open", "writer"], ["next"]])).await;
    assert_eq!(outcomes, json!(["ok", "already-attached", "aborted: never started"]));
    let outcomes = local(
        &host,
        json!([
            ["abort", "never started"],
            ["trigger", "contract::remote", "write", [["open", "writer"]]],
            ["drop", "reader"],
            ["trigger", "contract::remote", "read", [["open", "reader"], ["next"]]]
        ]),
    )
    .await;
    assert_eq!(outcomes, json!(["ok", ["already-attached"], "ok", ["ok", "aborted: never started"]]));
    let channel = host.create_channel(&ChannelOptions::default()).unwrap();
    let mut writer = channel.writer;
    writer.abort("never started");
    let outcomes = remote(&host, &channel.writer_ref, json!([["open", "writer"]])).await;
    assert_eq!(outcomes, json!(["already-attached"]));
    let outcomes = remote(&host, &channel.reader_ref, json!([["open", "reader"], ["next"]])).await;
    assert_eq!(outcomes, json!(["ok", "aborted: never started"]));
    // When the writer ref was opened elsewhere first, aborting the unused local end
    // does nothing.
    let outcomes = local(
        &host,
        json!([
            ["spawn", "contract::remote", "write", [["open", "writer"], ["write", 4], ["close"]]],
            ["wait"],
            ["abort", "too late"],
            ["drain"]
        ]),
    )
    .await;
    assert_eq!(outcomes, json!(["ok", ["ok", "ok", "ok"], "ok", "4 bytes, end"]));
    assert_no_leaks(&host).await;
}

// ---------------------------------------------------------------------------------------
// Direction: "A ref opens only the end its `direction` names"; "Each end attaches once";
// and `read(0)`.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refs_open_only_their_own_end_and_only_once() {
    let host = contract_host().await;
    let outcomes = local(
        &host,
        json!([
            ["open", "writer", "read"],
            ["open", "reader", "write"],
            ["drop", "reader"],
            ["open", "reader"],
            ["open", "reader"],
            ["read", 0],
            ["close"]
        ]),
    )
    .await;
    assert_eq!(
        outcomes.as_array().unwrap()[..5],
        json!(["not-found", "not-found", "ok", "ok", "already-attached"]).as_array().unwrap()[..]
    );
    assert!(outcomes[5].as_str().unwrap().starts_with("invalid-argument: "), "{outcomes}");
    assert_eq!(outcomes[6], "ok", "the opened reader is still attached");
    let outcomes = local(
        &host,
        json!([
            [
                "trigger",
                "contract::remote",
                "read",
                [["open", "writer", "read"], ["open", "reader"], ["open", "reader"]]
            ],
            ["close"]
        ]),
    )
    .await;
    // The other function's reader left when its call ended.
    assert_eq!(outcomes, json!([["not-found", "ok", "already-attached"], "closed"]));
    let channel = host.create_channel(&ChannelOptions::default()).unwrap();
    let outcomes = remote(
        &host,
        &channel.reader_ref,
        json!([["open", "writer", "read"], ["open", "reader"], ["open", "reader"]]),
    )
    .await;
    assert_eq!(outcomes, json!(["not-found", "ok", "already-attached"]));
    let mut reader = channel.reader;
    assert_eq!(reader.next().await, Err(ChannelError::AlreadyAttached), "the host's lazy end lost the race");
    let mut writer = channel.writer;
    assert_eq!(writer.close(), Err(ChannelError::Closed), "the function's reader left with its call");
    assert_no_leaks(&host).await;
}

// ---------------------------------------------------------------------------------------
// "An end that is never attached within the host's attach deadline expires the channel."

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_end_never_attached_expires_the_channel() {
    let mut config = HostConfig::default();
    config.broker = BrokerConfig::default().attach_timeout(Duration::from_millis(300));
    let host = host_with(config);
    warm_up(&host).await;
    // The reader never attaches: the writer learns once the deadline passed.
    let outcomes =
        local(&host, json!([["write", 1], ["sleep", 700], ["write", 1], ["open", "reader"]])).await;
    assert_eq!(outcomes, json!(["ok", "ok", "timed-out", "not-found"]));
    // Across functions: a reader waiting for a writer that never comes.
    let read = json!([["open", "reader"], ["next"], ["next"]]);
    let outcomes =
        local(&host, json!([["drop", "writer"], ["trigger", "contract::remote", "read", read]])).await;
    assert_eq!(outcomes, json!(["ok", ["ok", "timed-out", "timed-out"]]));
    // From the embedding API: refs nobody opened in time are not found.
    let channel = host.create_channel(&ChannelOptions::default()).unwrap();
    drop(channel.writer);
    drop(channel.reader);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let outcomes = remote(&host, &channel.reader_ref, json!([["open", "reader"]])).await;
    assert_eq!(outcomes, json!(["not-found"]));
    assert_no_leaks(&host).await;
}

// ---------------------------------------------------------------------------------------
// "the writing function failing (trap, timeout) all reach the reader as `aborted`", and
// a failed creator's channels.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_writer_function_reaches_its_reader_at_once_with_the_reason() {
    let host = contract_host().await;
    let write = json!([["open", "writer"], ["write", 4], ["fail", "gave up"]]);
    let outcomes =
        local(&host, json!([["drop", "writer"], ["trigger", "contract::remote", "write", write], ["drain"]]))
            .await;
    assert_eq!(outcomes[0], "ok");
    assert!(outcomes[1].as_str().unwrap().starts_with("call failed: CallError::Failed("), "{outcomes}");
    assert_eq!(outcomes[2], "4 bytes, aborted: function \"contract::remote\" returned an error: gave up");
    let write = json!([["open", "writer"], ["write", 4], ["trap", "boom"]]);
    let outcomes =
        local(&host, json!([["drop", "writer"], ["trigger", "contract::remote", "write", write], ["drain"]]))
            .await;
    let drained = outcomes[2].as_str().unwrap();
    assert!(drained.starts_with("4 bytes, aborted: function \"contract::remote\" trapped: "), "{drained}");
    assert_no_leaks(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_creator_finishes_the_ends_nobody_attached_at_once() {
    let host = contract_host().await;
    // The creator hands its reader ref to a spawned reader, then fails before writing:
    // the reader learns at once (not at the 60 s attach deadline), and the channel is
    // gone.
    let steps = json!([
        ["drop", "reader"],
        ["spawn", "contract::remote", "read", [["open", "reader"], ["drain"]]],
        ["sleep", 200],
        ["fail", "broke before writing"]
    ]);
    let err = host.trigger("contract::local", &json!({ "steps": steps })).await.unwrap_err();
    let CallError::Failed { message, .. } = &err else { panic!("{err:?}") };
    assert_eq!(message, "broke before writing");
    let started = Instant::now();
    while host.broker().stats().live_channels > 0 {
        assert!(started.elapsed() < BOUND, "the spawned reader still waits: {:?}", host.broker().stats());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_no_leaks(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_that_abandons_a_channel_on_each_failed_call_keeps_working() {
    // Ten channels and two buffers' worth of bytes for each tree this function starts.
    let mut limits = Limits::default();
    limits.max_tree_channels = 10;
    limits.max_tree_buffer_bytes = 2 * rill::broker::DEFAULT_BUFFER_BYTES;
    let config = FunctionConfig::new(component(&CONTRACT)).limits(limits);
    let host = host_with_functions(HostConfig::default(), &[("contract::local", config)]);
    warm_up(&host).await;
    // Each call creates a channel, drops nothing on purpose, and fails (or traps).
    for i in 0..200 {
        let step = if i % 2 == 0 { json!(["fail", "nope"]) } else { json!(["trap", "nope"]) };
        let err = host.trigger("contract::local", &json!({ "steps": [step] })).await.unwrap_err();
        assert!(
            matches!((i % 2, &err), (0, CallError::Failed { .. }) | (1, CallError::Trapped { .. })),
            "call {i}: {err:?}"
        );
    }
    assert_eq!(host.broker().stats().live_channels, 0, "failed calls left nothing behind");
    // Successful calls that abandon a channel unused reserve no buffer bytes: more of
    // them than the byte budget holds buffers still leave room for real work.
    for _ in 0..5 {
        assert_eq!(local(&host, json!([])).await, json!([]));
    }
    let outcomes = local(&host, json!([["write", 10], ["close"], ["drain"]])).await;
    assert_eq!(outcomes, json!(["ok", "ok", "10 bytes, end"]));
}
