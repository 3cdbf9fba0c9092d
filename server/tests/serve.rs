//! `rill serve` through real WebSocket clients (tokio-tungstenite) speaking iii's worker
//! protocol and channel endpoint, against wasm functions from the test artifacts. iii's
//! own SDK suites run against the `rill` binary in `.ci/iii-peer-tests`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is a test failure")]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use rill::{ComponentSource, Host};
use rill_server::{Server, ServerConfig, ServerError};
use rill_test_artifacts::{CALLS, FILES, TRANSFORM, WRITERS};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Long enough for a debug build on a loaded 2-core machine; only a hang reaches it.
const PATIENCE: Duration = Duration::from_secs(30);

fn host() -> Host {
    let mut builder = Host::builder();
    for guest in [CALLS, FILES, TRANSFORM, WRITERS] {
        for id in guest.functions {
            builder = builder.function(*id, ComponentSource::File(guest.component.into()));
        }
    }
    builder.build().unwrap()
}

async fn serve() -> SocketAddr {
    let server = Server::new(host(), ServerConfig::default()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(server.serve(listener, std::future::pending()));
    address
}

/// A worker connection, as an iii SDK makes one.
struct Worker {
    socket: Socket,
    worker_id: String,
}

impl Worker {
    async fn connect(address: SocketAddr) -> Worker {
        let (mut socket, _) = connect_async(format!("ws://{address}/")).await.unwrap();
        let first = next_json(&mut socket).await;
        assert_eq!(first["type"], "workerregistered", "the first message: {first}");
        let worker_id = first["worker_id"].as_str().unwrap().to_owned();
        Worker { socket, worker_id }
    }

    async fn send(&mut self, message: Value) {
        self.socket.send(Frame::Text(message.to_string().into())).await.unwrap();
    }

    async fn recv(&mut self) -> Value {
        next_json(&mut self.socket).await
    }

    /// The next `N` calls sent to this worker, sorted by their payload (numbers): calls
    /// that race to it from several connections or tasks may arrive in any order.
    async fn recv_calls_in_payload_order<const N: usize>(&mut self) -> [Value; N] {
        let mut calls = Vec::with_capacity(N);
        for _ in 0..N {
            let call = self.recv().await;
            assert_eq!(call["type"], "invokefunction", "{call}");
            calls.push(call);
        }
        calls.sort_by_key(|call| call["data"].as_i64());
        calls.try_into().expect("N calls were collected")
    }

    async fn register(&mut self, id: &str) {
        self.send(json!({"type": "registerfunction", "id": id})).await;
    }

    async fn invoke(&mut self, invocation_id: &str, function_id: &str, data: Value) {
        let call = json!({"type": "invokefunction", "invocation_id": invocation_id, "function_id": function_id, "data": data});
        self.send(call).await;
    }

    /// The ids `engine::functions::list` names.
    async fn function_ids(&mut self) -> Vec<String> {
        let list = self.call("engine::functions::list", json!({})).await;
        let functions = list["result"]["functions"].as_array().unwrap();
        functions.iter().map(|f| f["function_id"].as_str().unwrap().to_owned()).collect()
    }

    /// Call and wait for the answer, which must be the next message.
    async fn call(&mut self, function_id: &str, data: Value) -> Value {
        let id = uuid::Uuid::new_v4().to_string();
        self.invoke(&id, function_id, data).await;
        let answer = self.recv().await;
        assert_eq!(answer["type"], "invocationresult", "{answer}");
        assert_eq!(answer["invocation_id"], id.as_str());
        assert_eq!(answer["function_id"], function_id);
        answer
    }
}

/// A worker serving `function_id` and another to call it, on a server at `address`;
/// returns once the registration is in effect (it is handled in order with the
/// messages after it).
async fn serving_and_caller(address: SocketAddr, function_id: &str) -> (Worker, Worker) {
    let mut serving = Worker::connect(address).await;
    let caller = Worker::connect(address).await;
    serving.register(function_id).await;
    let _ = serving.call("engine::functions::list", json!({})).await;
    (serving, caller)
}

async fn next_json(socket: &mut Socket) -> Value {
    loop {
        let frame = tokio::time::timeout(PATIENCE, socket.next()).await.expect("a message in time");
        match frame.expect("the connection is open").unwrap() {
            Frame::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
            Frame::Ping(_) | Frame::Pong(_) => {}
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_calls_wasm_functions_and_gets_iii_errors() {
    let address = serve().await;
    let mut worker = Worker::connect(address).await;

    let answer = worker.call("test::echo", json!({"x": [1, 2]})).await;
    assert_eq!(answer["result"], json!({"x": [1, 2]}));

    // Payloads are relayed as written: `test::raw` returns the text it received, and a
    // number no float can hold and non-ASCII text arrive byte for byte.
    let data = r#"{"n":123456789012345678901234567890,"s":"😀é"}"#;
    let raw = format!(
        r#"{{"type":"invokefunction","invocation_id":"raw","function_id":"test::raw","data":{data}}}"#
    );
    worker.socket.send(Frame::Text(raw.into())).await.unwrap();
    assert_eq!(worker.recv().await["result"]["raw"], data);

    let answer = worker.call("test::fail", json!({"message": "boom"})).await;
    assert_eq!(answer["error"]["code"], "invocation_failed");
    assert!(answer["error"]["message"].as_str().unwrap().contains("boom"), "{answer}");

    let answer = worker.call("no::such", json!({})).await;
    assert_eq!(answer["error"]["code"], "function_not_found");

    let answer = worker.call("test::trap", json!({"message": "it broke"})).await;
    assert_eq!(answer["error"]["code"], "invocation_failed", "a trap is the WIT kind `failed`: {answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("trapped"), "{answer}");

    let answer = worker.call("test::echo", json!({"unterminated": "\u{0}"})).await;
    assert!(answer.get("result").is_some(), "{answer}");

    // A void call gets no answer: the next message answers the call after it.
    let void =
        json!({"type": "invokefunction", "function_id": "test::echo", "data": 1, "action": {"type": "void"}});
    worker.send(void).await;
    let answer = worker.call("test::echo", json!(2)).await;
    assert_eq!(answer["result"], 2);

    let enqueue = json!({"type": "invokefunction", "invocation_id": "q", "function_id": "test::echo", "data": 1, "action": {"type": "enqueue", "queue": "jobs"}});
    worker.send(enqueue).await;
    let answer = worker.recv().await;
    assert_eq!(
        (answer["invocation_id"].as_str(), answer["error"]["code"].as_str()),
        (Some("q"), Some("enqueue_error"))
    );

    // What rill does not act on is ignored, and the connection goes on.
    worker.send(json!({"type": "registertrigger", "id": "t", "trigger_type": "cron", "function_id": "f", "config": {}})).await;
    worker.socket.send(Frame::Text("not json".into())).await.unwrap();
    worker.send(json!({"type": "ping"})).await;
    assert_eq!(worker.recv().await["type"], "pong");

    let ids = worker.function_ids().await;
    assert!(
        ids.iter().any(|id| id == "test::echo") && ids.iter().any(|id| id == "files::process"),
        "{ids:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_call_each_other_and_a_disconnect_stops_calls_at_once() {
    let address = serve().await;
    let (mut server_side, mut caller) = serving_and_caller(address, "worker::double").await;

    caller.invoke("c-1", "worker::double", json!({"n": 21})).await;
    let forwarded = server_side.recv().await;
    assert_eq!(
        (forwarded["type"].as_str(), forwarded["function_id"].as_str()),
        (Some("invokefunction"), Some("worker::double"))
    );
    assert_eq!(forwarded["data"], json!({"n": 21}));
    let server_id = forwarded["invocation_id"].as_str().unwrap().to_owned();
    assert_ne!(server_id, "c-1", "the server gives forwarded calls ids of its own");

    // Another connection cannot answer it.
    caller.send(json!({"type": "invocationresult", "invocation_id": server_id, "function_id": "worker::double", "result": "forged"})).await;
    server_side.send(json!({"type": "invocationresult", "invocation_id": server_id, "function_id": "worker::double", "result": {"n": 42}})).await;
    let answer = caller.recv().await;
    assert_eq!((answer["invocation_id"].as_str(), &answer["result"]), (Some("c-1"), &json!({"n": 42})));

    // A second registration of a live id is refused, naming the owner.
    caller.register("worker::double").await;
    let rejected = caller.recv().await;
    assert_eq!(rejected["type"], "registrationrejected");
    assert_eq!(rejected["code"], "FUNCTION_NAMESPACE_CONFLICT");
    assert_eq!(rejected["owner_worker_id"], server_side.worker_id.as_str());
    // So is a wasm function's id.
    caller.register("test::echo").await;
    assert_eq!(caller.recv().await["type"], "registrationrejected");

    // The serving worker goes away mid-call: the caller hears at once.
    caller.invoke("c-2", "worker::double", json!({"n": 1})).await;
    assert_eq!(server_side.recv().await["type"], "invokefunction");
    drop(server_side);
    let answer = caller.recv().await;
    assert_eq!(
        (answer["invocation_id"].as_str(), answer["error"]["code"].as_str()),
        (Some("c-2"), Some("invocation_stopped"))
    );
    // And its functions are gone.
    let answer = caller.call("worker::double", json!({})).await;
    assert_eq!(answer["error"]["code"], "function_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wasm_guest_calls_a_worker_function() {
    let address = serve().await;
    let (mut serving, mut client) = serving_and_caller(address, "worker::double").await;

    let guest_call = json!({"function": "worker::double", "payload": {"n": 21}});
    client.invoke("g-1", "test::call", guest_call).await;
    let forwarded = serving.recv().await;
    assert_eq!(forwarded["data"], json!({"n": 21}));
    let reply = json!({"type": "invocationresult", "invocation_id": forwarded["invocation_id"], "function_id": "worker::double", "result": {"n": 42}});
    serving.send(reply).await;
    let answer = client.recv().await;
    assert_eq!(answer["result"], json!({"ok": {"n": 42}}), "{answer}");

    // A worker's error reaches the guest as `failed`, with iii's code in the message.
    client.invoke("g-2", "test::call", json!({"function": "worker::double"})).await;
    let forwarded = serving.recv().await;
    let reply = json!({"type": "invocationresult", "invocation_id": forwarded["invocation_id"], "function_id": "worker::double", "error": {"code": "bad_input", "message": "n is missing"}});
    serving.send(reply).await;
    let error = client.recv().await["result"]["error"].as_str().unwrap().to_owned();
    assert!(
        error.starts_with("failed: ") && error.contains("n is missing") && error.contains("bad_input"),
        "{error}"
    );

    // A worker that does not answer in time: the guest's own timeout ends the call.
    client.invoke("g-3", "test::call", json!({"function": "worker::double", "timeout_ms": 300})).await;
    assert_eq!(serving.recv().await["type"], "invokefunction");
    let error = client.recv().await["result"]["error"].as_str().unwrap().to_owned();
    assert!(error.starts_with("timed-out"), "{error}");

    // The worker leaves mid-call: the guest learns at once that it is unavailable.
    client.invoke("g-4", "test::call", json!({"function": "worker::double"})).await;
    assert_eq!(serving.recv().await["type"], "invokefunction");
    drop(serving);
    let error = client.recv().await["result"]["error"].as_str().unwrap().to_owned();
    assert!(error.starts_with("unavailable: ") && error.contains("invocation_stopped"), "{error}");
    let after = client.call("test::call", json!({"function": "worker::double"})).await;
    assert!(after["result"]["error"].as_str().unwrap().starts_with("not-found"), "{after}");
}

/// The two refs of a channel made through `engine::channels::create`.
async fn create_channel(worker: &mut Worker) -> (Value, Value) {
    let answer = worker.call("engine::channels::create", json!({"buffer_size": null})).await;
    (answer["result"]["writer"].clone(), answer["result"]["reader"].clone())
}

fn end_url(address: SocketAddr, channel_ref: &Value) -> String {
    rill::ChannelRef::from_value(channel_ref).unwrap().endpoint_url(&format!("ws://{address}"))
}

async fn open(address: SocketAddr, channel_ref: &Value) -> Socket {
    connect_async(end_url(address, channel_ref)).await.unwrap().0
}

/// Everything a reading socket gets: its bytes, its text messages, and its Close.
async fn read_all(mut socket: Socket) -> (Vec<u8>, Vec<String>, Option<CloseFrame>) {
    let (mut bytes, mut texts) = (Vec::new(), Vec::new());
    loop {
        let frame = tokio::time::timeout(PATIENCE, socket.next()).await.expect("a frame in time");
        match frame.expect("a Close before the end").unwrap() {
            Frame::Binary(b) => {
                assert!(b.len() <= 64 << 10, "frames rill sends are at most 64 KiB");
                bytes.extend_from_slice(&b);
            }
            Frame::Text(t) => texts.push(t.as_str().to_owned()),
            Frame::Close(frame) => return (bytes, texts, frame),
            Frame::Ping(_) | Frame::Pong(_) | Frame::Frame(_) => {}
        }
    }
}

async fn refused_status(url: &str) -> u16 {
    match connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {:?}", other.map(|_| "an upgrade")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_ends_over_websockets_keep_rills_contract() {
    let address = serve().await;
    let mut worker = Worker::connect(address).await;
    let (writer_ref, reader_ref) = create_channel(&mut worker).await;
    assert_ne!(writer_ref["access_key"], reader_ref["access_key"], "each end has its own key");

    // Wrong key, wrong direction, unknown id: 404 before the upgrade.
    let mut wrong_key = reader_ref.clone();
    wrong_key["access_key"] = json!("0".repeat(64));
    assert_eq!(refused_status(&end_url(address, &wrong_key)).await, 404);
    let mut wrong_dir = writer_ref.clone();
    wrong_dir["direction"] = json!("read");
    assert_eq!(refused_status(&end_url(address, &wrong_dir)).await, 404);
    let mut unknown = reader_ref.clone();
    unknown["channel_id"] = json!(uuid::Uuid::new_v4().to_string());
    assert_eq!(refused_status(&end_url(address, &unknown)).await, 404);

    // The writer writes and closes (with no status code, as iii's Rust SDK does) before
    // the reader attaches; nothing is lost.
    let mut writer = open(address, &writer_ref).await;
    writer.send(Frame::Binary(b"hello ".to_vec().into())).await.unwrap();
    writer.send(Frame::Text("in order".into())).await.unwrap();
    writer.send(Frame::Binary(b"world".to_vec().into())).await.unwrap();
    writer.send(Frame::Close(None)).await.unwrap();
    drop(writer);
    let (bytes, texts, close) = read_all(open(address, &reader_ref).await).await;
    assert_eq!((bytes.as_slice(), texts), (&b"hello world"[..], vec!["in order".to_owned()]));
    assert_eq!(close.unwrap().code, CloseCode::Normal);

    // A writer that drops its connection without a Close aborts the stream: the reader
    // gets the data, then 1011.
    let (writer_ref, reader_ref) = create_channel(&mut worker).await;
    let mut writer = open(address, &writer_ref).await;
    writer.send(Frame::Binary(b"partial".to_vec().into())).await.unwrap();
    writer.flush().await.unwrap();
    drop(writer);
    let (bytes, _, close) = read_all(open(address, &reader_ref).await).await;
    assert_eq!(bytes, b"partial");
    let close = close.unwrap();
    assert_eq!(close.code, CloseCode::Error, "1011: {close:?}");

    // Another close code is an abort too, and its reason reaches the reader. Both ends
    // are attached while the stream is open, so a second attach of either is a 409.
    let (writer_ref, reader_ref) = create_channel(&mut worker).await;
    let reader = open(address, &reader_ref).await;
    let mut writer = open(address, &writer_ref).await;
    assert_eq!(refused_status(&end_url(address, &reader_ref)).await, 409, "a second attach");
    assert_eq!(refused_status(&end_url(address, &writer_ref)).await, 409, "a second attach");
    let going_away = CloseFrame { code: CloseCode::Away, reason: "shutting down".into() };
    writer.send(Frame::Close(Some(going_away))).await.unwrap();
    let (_, _, close) = read_all(reader).await;
    let close = close.unwrap();
    assert_eq!(close.code, CloseCode::Error);
    assert!(close.reason.contains("1001") && close.reason.contains("shutting down"), "{close:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_cross_between_websocket_clients_and_wasm_functions() {
    let address = serve().await;
    let mut worker = Worker::connect(address).await;

    // A client writes 4 MiB; wasm `files::process` reads it.
    let (writer_ref, reader_ref) = create_channel(&mut worker).await;
    let data: Vec<u8> = (0..4u32 << 20).map(|i| (i * 31 % 251) as u8).collect();
    let expected = format!("{:x}", Sha256::digest(&data));
    let mut writer = open(address, &writer_ref).await;
    let feed = tokio::spawn(async move {
        for piece in data.chunks(100_000) {
            writer.send(Frame::Binary(piece.to_vec().into())).await.unwrap();
        }
        writer
            .send(Frame::Close(Some(CloseFrame { code: CloseCode::Normal, reason: "".into() })))
            .await
            .unwrap();
    });
    let answer = worker.call("files::process", json!({"reader": reader_ref})).await;
    feed.await.unwrap();
    assert_eq!(answer["result"]["bytes"], 4 << 20, "{answer}");
    assert_eq!(answer["result"]["sha256"], expected.as_str());

    // A client writes, wasm `transform::uppercase` transforms, a client reads.
    let (in_writer, in_reader) = create_channel(&mut worker).await;
    let (out_writer, out_reader) = create_channel(&mut worker).await;
    let mut writer = open(address, &in_writer).await;
    writer.send(Frame::Binary(b"streamed through wasm".to_vec().into())).await.unwrap();
    writer.send(Frame::Text("kept as is".into())).await.unwrap();
    writer.send(Frame::Close(None)).await.unwrap();
    let answer = worker.call("transform::uppercase", json!({"input": in_reader, "output": out_writer})).await;
    assert_eq!(answer["result"]["bytes"], 21, "{answer}");
    let (bytes, texts, close) = read_all(open(address, &out_reader).await).await;
    assert_eq!((bytes.as_slice(), texts), (&b"STREAMED THROUGH WASM"[..], vec!["kept as is".to_owned()]));
    assert_eq!(close.unwrap().code, CloseCode::Normal);

    // A wasm writer that traps mid-stream: the client reader gets the data, then 1011
    // with the trap.
    let (writer_ref, reader_ref) = create_channel(&mut worker).await;
    let reader = open(address, &reader_ref).await;
    let answer = worker.call("test::write_then_trap", json!({"writer": writer_ref, "bytes": 1000})).await;
    assert_eq!(answer["error"]["code"], "invocation_failed", "{answer}");
    let (bytes, _, close) = read_all(reader).await;
    assert_eq!(bytes.len(), 1000);
    let close = close.unwrap();
    assert_eq!(close.code, CloseCode::Error);
    assert!(close.reason.starts_with("function \"test::write_then_trap\" trapped"), "{close:?}");
    assert!(close.reason.len() <= 123);
}

/// Every call through the worker protocol is answered, exactly once: 10,000 calls on one
/// connection, up to 32 in flight at a time (under the host's default of 64 calls of one
/// function running at once, so that none is refused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_calls_get_ten_thousand_answers() {
    const CALLS: usize = 10_000;
    const IN_FLIGHT: usize = 32;
    let address = serve().await;
    let worker = Worker::connect(address).await;
    let (mut sink, mut stream) = worker.socket.split();
    let (sent, mut answered) = (&mut 0usize, HashSet::new());
    while answered.len() < CALLS {
        while *sent < CALLS && *sent - answered.len() < IN_FLIGHT {
            let call = json!({"type": "invokefunction", "invocation_id": format!("call-{sent}"), "function_id": "test::echo", "data": {"i": *sent}});
            sink.send(Frame::Text(call.to_string().into())).await.unwrap();
            *sent += 1;
        }
        let answer = next_json_stream(&mut stream).await;
        let id = answer["invocation_id"].as_str().unwrap().to_owned();
        let i: usize = id.strip_prefix("call-").unwrap().parse().unwrap();
        assert_eq!(answer["result"], json!({"i": i}), "{answer}");
        assert!(answered.insert(id), "answered twice: {answer}");
    }
}

async fn next_json_stream(stream: &mut futures::stream::SplitStream<Socket>) -> Value {
    loop {
        let frame = tokio::time::timeout(PATIENCE, stream.next()).await.expect("a message in time");
        if let Frame::Text(text) = frame.expect("the connection is open").unwrap() {
            return serde_json::from_str(text.as_str()).unwrap();
        }
    }
}

#[tokio::test]
async fn a_host_serves_one_server() {
    let host = host();
    let _first = Server::new(host.clone(), ServerConfig::default()).unwrap();
    let second = Server::new(host, ServerConfig::default());
    assert!(matches!(second, Err(ServerError::HostInUse)), "{second:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_guards_every_route() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let server = Server::new(host(), ServerConfig::default().with_token("s3cret")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(server.serve(listener, std::future::pending()));

    let with = |path: &str, authorization: Option<&str>| {
        let mut request = format!("ws://{address}{path}").into_client_request().unwrap();
        if let Some(value) = authorization {
            request.headers_mut().insert("authorization", value.parse().unwrap());
        }
        request
    };
    let status = |request| async move {
        match connect_async(request).await {
            Ok(_) => 101,
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
            Err(other) => panic!("{other}"),
        }
    };
    // Violated: no token, a wrong one, the right one in the wrong scheme; on every route,
    // before anything else is looked at (an unknown channel is 401, not 404).
    for path in ["/", "/otel", "/healthz", "/ws/channels/00000000-0000-0000-0000-000000000000?key=k&dir=read"]
    {
        assert_eq!(status(with(path, None)).await, 401, "{path}");
        assert_eq!(status(with(path, Some("Bearer s3cret-not"))).await, 401, "{path}");
        assert_eq!(status(with(path, Some("Bearer s3cre"))).await, 401, "{path}");
        assert_eq!(status(with(path, Some("Basic s3cret"))).await, 401, "{path}");
    }
    // Obeyed: the worker protocol and the channel endpoint work with the token.
    let (mut socket, _) = connect_async(with("/", Some("Bearer s3cret"))).await.unwrap();
    assert_eq!(next_json(&mut socket).await["type"], "workerregistered");
    let call = json!({"type": "invokefunction", "invocation_id": "c", "function_id": "engine::channels::create", "data": {}});
    socket.send(Frame::Text(call.to_string().into())).await.unwrap();
    let reader_ref = next_json(&mut socket).await["result"]["reader"].clone();
    let path = end_url(address, &reader_ref).replace(&format!("ws://{address}"), "");
    assert_eq!(status(with(&path, None)).await, 401);
    assert_eq!(status(with(&path, Some("Bearer s3cret"))).await, 101);
}

/// Shutdown lets a running call finish within the grace period, refuses new calls, and
/// then ends what is left: a stream cut off reaches its reader as 1011 (never a clean
/// end), and workers get 1001.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_then_ends_streams_as_errors() {
    let grace = Duration::from_millis(1500);
    let server = Server::new(host(), ServerConfig::default().with_shutdown_grace(grace)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(listener, async move {
        let _ = stopped.await;
    }));

    let (mut serving_worker, mut caller) = serving_and_caller(address, "worker::slow").await;
    let (writer_ref, reader_ref) = create_channel(&mut caller).await;
    let mut writer = open(address, &writer_ref).await;
    writer.send(Frame::Binary(b"partial".to_vec().into())).await.unwrap();
    let reader = open(address, &reader_ref).await;

    caller.invoke("running", "worker::slow", json!({})).await;
    let forwarded = serving_worker.recv().await;
    let began = std::time::Instant::now();
    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Draining: a new call is refused; the running one still gets its answer.
    caller.invoke("late", "test::echo", json!(1)).await;
    let refused = caller.recv().await;
    assert_eq!(refused["invocation_id"], "late");
    assert!(refused["error"]["message"].as_str().unwrap().contains("shutting down"), "{refused}");
    let answer = json!({"type": "invocationresult", "invocation_id": forwarded["invocation_id"], "function_id": "worker::slow", "result": "done"});
    serving_worker.send(answer).await;
    let finished = caller.recv().await;
    assert_eq!((finished["invocation_id"].as_str(), &finished["result"]), (Some("running"), &json!("done")));

    // The open stream is cut off after the grace period, as an abort.
    let (bytes, _, close) = read_all(reader).await;
    assert!(began.elapsed() >= grace, "cut off before the grace period ended");
    assert_eq!(bytes, b"partial");
    let close = close.unwrap();
    assert_eq!(close.code, CloseCode::Error, "{close:?}");
    assert!(close.reason.contains("shut down"), "{close:?}");
    // Workers are told the server is going away.
    let frame = tokio::time::timeout(PATIENCE, caller.socket.next()).await.unwrap();
    match frame {
        Some(Ok(Frame::Close(Some(close)))) => assert_eq!(close.code, CloseCode::Away),
        other => panic!("expected Close 1001, got {other:?}"),
    }
    tokio::time::timeout(PATIENCE, serving).await.unwrap().unwrap();
}

async fn serve_with(config: ServerConfig) -> SocketAddr {
    let server = Server::new(host(), config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(server.serve(listener, std::future::pending()));
    address
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_obeyed_and_violated() {
    let address = serve_with(ServerConfig::default().with_max_connections(2)).await;
    let first = Worker::connect(address).await;
    let mut second = Worker::connect(address).await;
    // A third connection is closed at once, whatever it is for.
    assert!(connect_async(format!("ws://{address}/")).await.is_err(), "a third connection");
    let (_, reader_ref) = create_channel(&mut second).await;
    assert!(connect_async(end_url(address, &reader_ref)).await.is_err(), "channel ends count too");
    drop(first);
    // The slot comes back once the connection is gone.
    connect_once_a_slot_is_free(address).await;
}

/// Connect a worker, retrying while the server is still freeing a connection slot.
async fn connect_once_a_slot_is_free(address: SocketAddr) {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        match connect_async(format!("ws://{address}/")).await {
            Ok(_) => return,
            Err(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(err) => panic!("no connection slot was freed: {err}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_functions_per_worker_obeyed_and_violated() {
    let address = serve_with(ServerConfig::default().with_max_functions_per_worker(2)).await;
    let mut worker = Worker::connect(address).await;
    worker.register("w::one").await;
    worker.register("w::two").await;
    worker.register("w::one").await; // its owner registering it again is an update
    worker.register("w::three").await;
    let rejected = worker.recv().await;
    assert_eq!(rejected["type"], "registrationrejected");
    assert_eq!(
        (rejected["code"].as_str(), rejected["function_id"].as_str()),
        (Some("FUNCTION_LIMIT_EXCEEDED"), Some("w::three"))
    );
    let ids = worker.function_ids().await;
    assert!(
        ids.iter().any(|id| id == "w::one")
            && ids.iter().any(|id| id == "w::two")
            && !ids.iter().any(|id| id == "w::three"),
        "{ids:?}"
    );
    // Unregistering makes room.
    worker.send(json!({"type": "unregisterfunction", "id": "w::one"})).await;
    worker.register("w::three").await;
    let ids = worker.function_ids().await;
    assert!(ids.iter().any(|id| id == "w::three") && !ids.iter().any(|id| id == "w::one"), "{ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_calls_per_worker_obeyed_and_violated() {
    let address = serve_with(ServerConfig::default().with_max_calls_per_worker(2)).await;
    let (mut serving, mut caller) = serving_and_caller(address, "w::slow").await;
    caller.invoke("a", "w::slow", json!(1)).await;
    caller.invoke("b", "w::slow", json!(2)).await;
    let [first, second] = serving.recv_calls_in_payload_order::<2>().await;
    // A third call while two run is answered at once.
    caller.invoke("c", "w::slow", json!(3)).await;
    let refused = caller.recv().await;
    assert_eq!(
        (refused["invocation_id"].as_str(), refused["error"]["code"].as_str()),
        (Some("c"), Some("limit-exceeded"))
    );
    // Another connection is not held back by this one's calls.
    let mut other = Worker::connect(address).await;
    assert_eq!(other.call("test::echo", json!(7)).await["result"], 7);
    // Once one finishes, the connection may call again.
    let done = json!({"type": "invocationresult", "invocation_id": first["invocation_id"], "function_id": "w::slow", "result": "a"});
    serving.send(done).await;
    assert_eq!(caller.recv().await["invocation_id"], "a");
    assert_eq!(caller.call("test::echo", json!(4)).await["result"], 4);
    let done = json!({"type": "invocationresult", "invocation_id": second["invocation_id"], "function_id": "w::slow", "result": "b"});
    serving.send(done).await;
    assert_eq!(caller.recv().await["invocation_id"], "b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_message_bytes_obeyed_and_violated() {
    let address = serve_with(ServerConfig::default().with_max_message_bytes(64 << 10)).await;
    let mut worker = Worker::connect(address).await;
    let fits = "x".repeat(60 << 10);
    assert_eq!(worker.call("test::echo", json!(fits)).await["result"], json!(fits));
    let too_big = "x".repeat(70 << 10);
    worker.invoke("big", "test::echo", json!(too_big)).await;
    // The server closes the connection with 1009 ("message too big").
    let close = loop {
        match tokio::time::timeout(PATIENCE, worker.socket.next()).await.unwrap() {
            Some(Ok(Frame::Close(frame))) => break frame,
            Some(Ok(Frame::Text(text))) => panic!("answered a message over the limit: {text}"),
            Some(Ok(_)) => {}
            other => panic!("expected a Close, got {other:?}"),
        }
    };
    assert_eq!(close.map(|c| c.code), Some(CloseCode::Size));
}

/// The scrape counts calls by function and outcome, and a client cannot grow it or
/// break it with the ids it sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_calls_and_bound_client_chosen_labels() {
    let address = serve().await;
    let mut worker = Worker::connect(address).await;
    worker.call("test::echo", json!(1)).await;
    worker.call("test::trap", json!({})).await;
    for i in 0..100 {
        worker.call(&format!("made::up::{i}"), json!(1)).await;
        worker.call(&format!("made::up::{i}\"\n}} evil"), json!(1)).await;
    }
    // Served ids get labels of their own, up to the bound; the rest share "other".
    let mut serving = Worker::connect(address).await;
    let served = rill_server::MAX_FUNCTION_LABELS + 10;
    for i in 0..served {
        serving.register(&format!("w::f{i}")).await;
    }
    let _ = serving.call("engine::functions::list", json!({})).await;
    for i in 0..served {
        worker.invoke(&format!("w-{i}"), &format!("w::f{i}"), json!(i)).await;
        let forwarded = serving.recv().await;
        let answer = json!({"type": "invocationresult", "invocation_id": forwarded["invocation_id"], "function_id": forwarded["function_id"], "result": "ok"});
        serving.send(answer).await;
        assert_eq!(worker.recv().await["result"], "ok");
    }

    let scrape = scrape(address).await;
    assert!(scrape.contains(r#"rill_calls_total{function="test::echo",outcome="ok"} 1"#), "{scrape}");
    assert!(
        scrape.contains(r#"rill_calls_total{function="test::trap",outcome="invocation_failed"} 1"#),
        "{scrape}"
    );
    assert!(
        scrape.contains(r#"rill_calls_total{function="other",outcome="function_not_found"} 100"#),
        "{scrape}"
    );
    assert!(scrape.contains(r#"rill_calls_total{function="other",outcome="invalid-input"} 100"#), "{scrape}");
    assert!(scrape.contains("rill_traps_total 1"), "{scrape}");
    assert!(scrape.contains(r#"rill_connections{kind="worker"} 2"#), "{scrape}");
    assert!(
        !scrape.contains("made::up") && !scrape.contains("evil"),
        "ids nobody serves get no label of their own"
    );
    let own_labels =
        (0..served).filter(|i| scrape.contains(&format!(r#"function="w::f{i}",outcome="ok""#))).count();
    // test::echo, test::trap and engine::functions::list took three of the labels.
    assert_eq!(own_labels, rill_server::MAX_FUNCTION_LABELS - 3);
    assert!(scrape.contains(r#"rill_calls_total{function="other",outcome="ok"} 13"#), "{scrape}");
    assert!(scrape.ends_with("# EOF\n"));
}

async fn scrape(address: SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(address).await.unwrap();
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response.split_once("\r\n\r\n").unwrap().1.to_owned()
}

/// `curl` against the server: its exit code and stdout.
async fn curl(args: &[&str]) -> (i32, String) {
    let output = tokio::process::Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "60"])
        .args(args)
        .output()
        .await
        .expect("curl runs (install curl to run these tests)");
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_triggers_functions_with_status_codes_by_error_kind() {
    let address = serve().await;
    let url = |path: &str| format!("http://{address}{path}");
    let post = |path: String, body: String| async move {
        curl(&["--write-out", "\n%{http_code}", "-X", "POST", "--data-binary", &body, &path]).await.1
    };
    let split = |out: String| {
        let (body, status) = out.rsplit_once('\n').unwrap();
        (status.to_owned(), body.to_owned())
    };
    let (status, body) = split(post(url("/functions/test::echo"), r#"{"a":[1,2]}"#.into()).await);
    assert_eq!((status.as_str(), body.as_str()), ("200", r#"{"a":[1,2]}"#));
    let (status, body) = split(post(url("/functions/no::such"), "{}".into()).await);
    assert_eq!(status, "404", "{body}");
    let (status, body) = split(post(url("/functions/test::echo"), "{not json".into()).await);
    assert_eq!(status, "400", "{body}");
    let (status, body) = split(post(url("/functions/test::fail"), r#"{"message":"nope"}"#.into()).await);
    assert_eq!(status, "500", "{body}");
    assert!(body.contains("nope"), "{body}");
    // Over the host's payload limit (1 MiB by default).
    let dir = tempfile::tempdir().unwrap();
    let too_big = dir.path().join("big.json");
    std::fs::write(&too_big, serde_json::to_string(&"x".repeat(1_200_000)).unwrap()).unwrap();
    let (status, body) = split(post(url("/functions/test::echo"), format!("@{}", too_big.display())).await);
    assert_eq!(status, "413", "{body}");
    let (status, body) =
        split(post(url("/functions/test::call"), r#"{"function":"test::echo","payload":5}"#.into()).await);
    assert_eq!((status.as_str(), body.as_str()), ("200", r#"{"ok":5}"#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_streams_files_through_channels_and_never_ends_an_abort_cleanly() {
    let address = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.bin");
    let data: Vec<u8> = (0..(6u32 << 20)).map(|i| (i % 253) as u8).collect();
    std::fs::write(&input, &data).unwrap();

    // Upload a file into a channel that wasm `files::process` reads.
    let (_, created) = curl(&["-X", "POST", &format!("http://{address}/channels")]).await;
    let refs: Value = serde_json::from_str(&created).unwrap();
    let end = |r: &Value| {
        format!(
            "http://{address}/channels/{}?key={}",
            r["channel_id"].as_str().unwrap(),
            r["access_key"].as_str().unwrap()
        )
    };
    let payload = json!({"reader": refs["reader"]}).to_string();
    let process = format!("http://{address}/functions/files::process");
    let call = tokio::spawn(async move { curl(&["-X", "POST", "--data-binary", &payload, &process]).await });
    let (code, uploaded) = curl(&["--upload-file", input.to_str().unwrap(), &end(&refs["writer"])]).await;
    assert_eq!((code, uploaded.as_str()), (0, r#"{"bytes":6291456}"#));
    let (code, result) = call.await.unwrap();
    assert_eq!(code, 0);
    let result: Value = serde_json::from_str(&result).unwrap();
    assert_eq!(result["sha256"], format!("{:x}", Sha256::digest(&data)).as_str());

    // Download a stream a wasm writer closes: every byte, exit 0.
    let (_, created) = curl(&["-X", "POST", &format!("http://{address}/channels")]).await;
    let refs: Value = serde_json::from_str(&created).unwrap();
    let mut worker = Worker::connect(address).await;
    let answer =
        worker.call("test::write_then_close", json!({"writer": refs["writer"], "bytes": 100_000})).await;
    assert_eq!(answer["result"]["close"], "ok", "{answer}");
    let output = dir.path().join("closed.bin");
    let (code, _) = curl(&["--output", output.to_str().unwrap(), &end(&refs["reader"])]).await;
    assert_eq!((code, std::fs::metadata(&output).unwrap().len()), (0, 100_000));

    // Download a stream its wasm writer aborts: curl fails, it never gets a clean end.
    let (_, created) = curl(&["-X", "POST", &format!("http://{address}/channels")]).await;
    let refs: Value = serde_json::from_str(&created).unwrap();
    let answer = worker
        .call(
            "test::write_then_abort",
            json!({"writer": refs["writer"], "bytes": 100_000, "reason": "bad input"}),
        )
        .await;
    assert_eq!(answer["result"]["abort"], "ok", "{answer}");
    let output = dir.path().join("aborted.bin");
    let (code, _) = curl(&["--output", output.to_str().unwrap(), &end(&refs["reader"])]).await;
    assert_ne!(code, 0, "an aborted stream must fail the download");

    // An upload whose client goes away mid-body aborts the channel.
    let (_, created) = curl(&["-X", "POST", &format!("http://{address}/channels")]).await;
    let refs: Value = serde_json::from_str(&created).unwrap();
    let reader = open(address, &refs["reader"]).await;
    {
        use tokio::io::AsyncWriteExt;
        let path = end(&refs["writer"]).replace(&format!("http://{address}"), "");
        let mut socket = TcpStream::connect(address).await.unwrap();
        let head = format!("PUT {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 1000\r\n\r\n");
        socket.write_all(head.as_bytes()).await.unwrap();
        socket.write_all(&[b'x'; 10]).await.unwrap();
        socket.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (bytes, _, close) = read_all(reader).await;
    assert_eq!(bytes, vec![b'x'; 10]);
    assert_eq!(close.unwrap().code, CloseCode::Error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_timeout_obeyed_and_violated() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let timeout = Duration::from_millis(300);
    let address =
        serve_with(ServerConfig::default().with_handshake_timeout(timeout).with_max_connections(1)).await;
    // Violated: headers trickled and never finished; the server hangs up.
    let mut slow = TcpStream::connect(address).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let began = std::time::Instant::now();
    let mut rest = Vec::new();
    let read =
        tokio::time::timeout(PATIENCE, slow.read_to_end(&mut rest)).await.expect("the server hangs up");
    assert!(began.elapsed() >= timeout / 2, "hung up after {:?}", began.elapsed());
    assert!(read.is_ok() || rest.is_empty(), "{read:?}");
    // Obeyed: the slot it held is free again, and a prompt request is served.
    connect_once_a_slot_is_free(address).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_obeyed_and_violated() {
    let idle = Duration::from_millis(600);
    let address = serve_with(ServerConfig::default().with_idle_timeout(idle)).await;
    // Obeyed: a client that sends nothing but keeps reading answers the server's pings,
    // and its connection outlives several idle periods.
    let mut quiet = Worker::connect(address).await;
    let until = tokio::time::Instant::now() + idle * 4;
    while let Ok(frame) = tokio::time::timeout_at(until, quiet.socket.next()).await {
        match frame {
            Some(Ok(Frame::Ping(_))) => {}
            other => panic!("a healthy quiet client was dropped: {other:?}"),
        }
    }
    assert_eq!(quiet.call("test::echo", json!("still here")).await["result"], "still here");
    drop(quiet);
    // Violated: a client that stops reading never answers a ping, and is dropped.
    let mut stuck = Worker::connect(address).await;
    tokio::time::sleep(idle * 2).await;
    // Reading now, it meets the queued pings (whose pongs it then fails to send on the
    // closed connection) or the server's Close 1001; either way the connection is over.
    loop {
        match tokio::time::timeout(PATIENCE, stuck.socket.next()).await.unwrap() {
            Some(Ok(Frame::Close(frame))) => {
                let close = frame.unwrap();
                assert_eq!(close.code, CloseCode::Away);
                assert!(close.reason.contains("not even a pong"), "{close:?}");
                break;
            }
            Some(Ok(Frame::Ping(_))) => {}
            Some(Err(_)) | None => break,
            Some(Ok(other)) => panic!("unexpected {other:?}"),
        }
    }
    let scrape = scrape(address).await;
    assert!(
        scrape.contains(r#"rill_limit_hits_total{limit="idle"} 1"#),
        "only the stuck client was dropped: {scrape}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_calls_per_function_obeyed_and_violated() {
    let address = serve_with(ServerConfig::default().with_max_calls_per_function(2)).await;
    let (mut serving, mut first_caller) = serving_and_caller(address, "w::busy").await;
    // Two callers on two connections: the bound is the function's, not a connection's.
    let mut second_caller = Worker::connect(address).await;
    first_caller.invoke("a", "w::busy", json!(1)).await;
    second_caller.invoke("b", "w::busy", json!(2)).await;
    let [first, second] = serving.recv_calls_in_payload_order::<2>().await;
    // Violated: a third call while two run is refused at once, as "at capacity".
    let mut third_caller = Worker::connect(address).await;
    third_caller.invoke("c", "w::busy", json!(3)).await;
    let refused = third_caller.recv().await;
    assert_eq!(
        (refused["invocation_id"].as_str(), refused["error"]["code"].as_str()),
        (Some("c"), Some("unavailable")),
        "{refused}"
    );
    // Over plain HTTP that is 429, and other functions are not held back.
    let url = format!("http://{address}/functions/w::busy");
    let (exit, status) = curl(&["-o", "/dev/null", "-w", "%{http_code}", "-d", "4", &url]).await;
    assert_eq!((exit, status.as_str()), (0, "429"));
    assert_eq!(third_caller.call("test::echo", json!(5)).await["result"], 5);
    // Obeyed: once one call is answered, the function takes a call again.
    let done = json!({"type": "invocationresult", "invocation_id": first["invocation_id"], "function_id": "w::busy", "result": "a"});
    serving.send(done).await;
    assert_eq!(first_caller.recv().await["result"], "a");
    third_caller.invoke("d", "w::busy", json!(6)).await;
    let fourth = serving.recv().await;
    assert_eq!(fourth["data"], 6);
    for (call, caller) in [(&second, &mut second_caller), (&fourth, &mut third_caller)] {
        let done = json!({"type": "invocationresult", "invocation_id": call["invocation_id"], "function_id": "w::busy", "result": "done"});
        serving.send(done).await;
        assert_eq!(caller.recv().await["result"], "done");
    }
    let scrape = scrape(address).await;
    assert!(scrape.contains(r#"rill_limit_hits_total{limit="calls_per_function"} 2"#), "{scrape}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_timeout_obeyed_and_violated() {
    let timeout = Duration::from_millis(500);
    let address = serve_with(ServerConfig::default().with_send_timeout(timeout)).await;
    let payload = json!("x".repeat(1 << 20));
    // Obeyed: a worker that pauses (for less than the timeout) before reading gets
    // every call.
    let (mut slow, mut caller) = serving_and_caller(address, "w::slow_reader").await;
    for n in 0..8 {
        caller.invoke(&format!("s{n}"), "w::slow_reader", payload.clone()).await;
    }
    tokio::time::sleep(timeout / 3).await;
    for _ in 0..8 {
        let call = slow.recv().await;
        assert_eq!(call["data"], payload);
        let done = json!({"type": "invocationresult", "invocation_id": call["invocation_id"], "function_id": "w::slow_reader", "result": "ok"});
        slow.send(done).await;
    }
    for _ in 0..8 {
        assert_eq!(caller.recv().await["result"], "ok");
    }
    // Violated: a worker that stops reading cannot take the calls sent to it. Once the
    // socket's buffers are full, the server gives up on it within the timeout, and the
    // calls fail at once instead of waiting forever.
    let (stuck, mut caller) = serving_and_caller(address, "w::stuck").await;
    let calls = 64;
    for n in 0..calls {
        caller.invoke(&format!("c{n}"), "w::stuck", payload.clone()).await;
    }
    let mut stopped = 0;
    for _ in 0..calls {
        let answer = caller.recv().await;
        assert_eq!(answer["error"]["code"], "invocation_stopped", "{answer}");
        stopped += 1;
    }
    assert_eq!(stopped, calls);
    drop(stuck);
    let scrape = scrape(address).await;
    assert!(scrape.contains(r#"rill_limit_hits_total{limit="send_timeout"} 1"#), "{scrape}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_reader_that_stops_reading_is_dropped_after_the_send_timeout() {
    let timeout = Duration::from_millis(500);
    let address = serve_with(ServerConfig::default().with_send_timeout(timeout)).await;
    let mut worker = Worker::connect(address).await;
    let (writer_ref, reader_ref) = create_channel(&mut worker).await;
    // A reader that never reads: the server's sends to it stop once the sockets'
    // buffers are full.
    let stuck_reader = open(address, &reader_ref).await;
    let (mut sink, mut stream) = open(address, &writer_ref).await.split();
    let feeding = tokio::spawn(async move {
        let chunk = vec![7u8; 64 << 10];
        // Stops when the server closes the writing side (sending then fails).
        while sink.send(Frame::Binary(chunk.clone().into())).await.is_ok() {}
    });
    // The writing client learns that nobody reads any more: Close 1011, not a hang.
    let close = loop {
        match tokio::time::timeout(PATIENCE, stream.next()).await.expect("the server ends the stream") {
            Some(Ok(Frame::Close(frame))) => break frame.unwrap(),
            Some(Ok(_)) => {}
            other => panic!("expected a Close, got {other:?}"),
        }
    };
    assert_eq!(close.code, CloseCode::Error, "{close:?}");
    feeding.abort();
    drop(stuck_reader);
    let scrape = scrape(address).await;
    assert!(scrape.contains(r#"rill_limit_hits_total{limit="send_timeout"} 1"#), "{scrape}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_ends_idle_timeout_obeyed_and_violated() {
    let idle = Duration::from_millis(600);
    let address = serve_with(ServerConfig::default().with_idle_timeout(idle)).await;
    // Both channels made first: the worker connection is left idle (and dropped) below.
    let mut worker = Worker::connect(address).await;
    let (writer_ref, reader_ref) = create_channel(&mut worker).await;
    let (second_writer_ref, second_reader_ref) = create_channel(&mut worker).await;
    // Obeyed: a writer with nothing to say for several idle periods, but alive (it
    // reads, so it answers the server's pings), then writes and closes; a reader
    // equally quiet and alive gets every byte and the clean end.
    let reader = tokio::spawn(read_all(open(address, &reader_ref).await));
    let mut writer = open(address, &writer_ref).await;
    let until = tokio::time::Instant::now() + idle * 4;
    while let Ok(frame) = tokio::time::timeout_at(until, writer.next()).await {
        assert!(matches!(frame, Some(Ok(Frame::Ping(_)))), "a healthy quiet writer was dropped: {frame:?}");
    }
    writer.send(Frame::Binary(b"late but whole".to_vec().into())).await.unwrap();
    writer.close(None).await.unwrap();
    let (bytes, _, close) = reader.await.unwrap();
    assert_eq!((bytes.as_slice(), close.map(|c| c.code)), (&b"late but whole"[..], Some(CloseCode::Normal)));
    // Violated: a writer that goes silent (it stops reading, so its pings go
    // unanswered) is dropped, and its reader sees the stream aborted, not ended.
    let reader = tokio::spawn(read_all(open(address, &second_reader_ref).await));
    let mut silent = open(address, &second_writer_ref).await;
    silent.send(Frame::Binary(b"a start".to_vec().into())).await.unwrap();
    let (bytes, _, close) = tokio::time::timeout(PATIENCE, reader).await.unwrap().unwrap();
    let close = close.unwrap();
    assert_eq!((bytes.as_slice(), close.code), (&b"a start"[..], CloseCode::Error));
    assert!(close.reason.contains("went silent"), "{close:?}");
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_says_ready_while_the_server_takes_calls() {
    let address = serve().await;
    let (exit, body) = curl(&["--fail", &format!("http://{address}/readyz")]).await;
    assert_eq!((exit, body.as_str()), (0, "ready\n"));
}

/// A read buffer far smaller than a frame still takes every frame whole: it only sets
/// how much each read asks the socket for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_read_buffer_still_takes_whole_frames() {
    let address = serve_with(ServerConfig::default().with_read_buffer_bytes(512)).await;
    let mut worker = Worker::connect(address).await;
    let (writer_ref, reader_ref) = create_channel(&mut worker).await;
    let data: Vec<u8> = (0..1u32 << 20).map(|i| (i * 7 % 253) as u8).collect();
    let expected = format!("{:x}", Sha256::digest(&data));
    let mut writer = open(address, &writer_ref).await;
    let feed = tokio::spawn(async move {
        for frame in data.chunks(64 << 10) {
            writer.send(Frame::Binary(frame.to_vec().into())).await.unwrap();
        }
        writer.close(None).await.unwrap();
    });
    let answer = worker.call("files::process", json!({"reader": reader_ref})).await;
    feed.await.unwrap();
    assert_eq!(answer["result"]["bytes"], 1 << 20, "{answer}");
    assert_eq!(answer["result"]["sha256"], expected.as_str());
}

/// iii SDKs (0.25+) set `TCP_NODELAY` on their end of a worker or channel socket when
/// the engine lists `tcp-nodelay` in `x-iii-capabilities`; rill does on every upgrade.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_advertise_tcp_nodelay_to_iii_sdks() {
    let address = serve().await;
    let (socket, response) = connect_async(format!("ws://{address}/")).await.unwrap();
    assert_eq!(response.headers()["x-iii-capabilities"], "tcp-nodelay");
    let mut worker = Worker { socket, worker_id: String::new() };
    assert_eq!(worker.recv().await["type"], "workerregistered");
    let (writer_ref, reader_ref) = create_channel(&mut worker).await;
    for end in [writer_ref, reader_ref] {
        let (_, response) = connect_async(end_url(address, &end)).await.unwrap();
        assert_eq!(response.headers()["x-iii-capabilities"], "tcp-nodelay", "{end}");
    }
}

/// `rill_server::client`, the calling client `rill call --server` uses: results, the
/// function's errors as answers, and a refusal before the upgrade as a connection error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_client_calls_and_reports_errors() {
    use rill_server::client::{ClientError, WorkerClient};
    let address = serve_with(ServerConfig::default().with_token("t0k")).await;
    let url = format!("ws://{address}/");
    let mut client = WorkerClient::connect(&url, Some("t0k")).await.unwrap();
    let data = serde_json::value::to_raw_value(&json!({"echo": [1, 2]})).unwrap();
    let answer = client.call("test::echo", data).await.unwrap();
    assert_eq!(answer.result.unwrap().get(), r#"{"echo":[1,2]}"#);
    let data = serde_json::value::to_raw_value(&json!({})).unwrap();
    let answer = client.call("no::such", data).await.unwrap();
    assert_eq!(answer.error.unwrap().code, "function_not_found");
    let refused = WorkerClient::connect(&url, Some("wrong")).await.unwrap_err();
    assert!(matches!(refused, ClientError::Connection(_)), "{refused:?}");
    let invalid = WorkerClient::connect("http:// not a url", None).await.unwrap_err();
    assert!(matches!(invalid, ClientError::InvalidRequest(_)), "{invalid:?}");
}
