//! Soak run of `rill serve`'s worker protocol: N calls (default 1,000,000) through one
//! connection, up to 32 in flight, from a client worker to a function served by a
//! second worker and to a wasm function, alternately. Every answer is counted: the run
//! fails if any call is lost, answered twice or answered wrongly, and prints the rate.
//!
//! ```sh
//! cargo run --release -p rill-server --example call_soak -- 1000000
//! ```
//!
//! It builds the guests of `guests/rust` through the test artifacts, so run it from the
//! repository.

#![allow(clippy::print_stdout, reason = "a command-line program prints its result")]

use std::collections::HashSet;
use std::time::Instant;

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use rill::{ComponentSource, Host};
use rill_server::{Server, ServerConfig};
use serde_json::{Value, json};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message as Frame;

const IN_FLIGHT: usize = 32;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let calls: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()
        .context("N must be a number")?
        .unwrap_or(1_000_000);
    let guest = rill_test_artifacts::CALLS;
    let host =
        Host::builder().function("test::echo", ComponentSource::File(guest.component.into())).build()?;
    let server = Server::new(host, ServerConfig::default())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("ws://{}/", listener.local_addr()?);
    tokio::spawn(server.serve(listener, std::future::pending()));

    // A worker serving `soak::double`.
    let (serving, _) = connect_async(&url).await?;
    let (mut serving_sink, mut serving_stream) = serving.split();
    serving_sink
        .send(Frame::Text(json!({"type": "registerfunction", "id": "soak::double"}).to_string().into()))
        .await?;
    tokio::spawn(async move {
        while let Some(Ok(frame)) = serving_stream.next().await {
            let Frame::Text(text) = frame else { continue };
            let message: Value = serde_json::from_str(text.as_str())?;
            if message["type"] == "invokefunction" {
                let n = message["data"]["n"].as_u64().unwrap_or(0);
                let answer = json!({"type": "invocationresult", "invocation_id": message["invocation_id"], "function_id": "soak::double", "result": {"n": n * 2}});
                serving_sink.send(Frame::Text(answer.to_string().into())).await?;
            }
        }
        anyhow::Ok(())
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let (client, _) = connect_async(&url).await?;
    let (mut sink, mut stream) = client.split();
    let start = Instant::now();
    let (mut sent, mut answered) = (0usize, HashSet::with_capacity(calls));
    while answered.len() < calls {
        while sent < calls && sent - answered.len() < IN_FLIGHT {
            let function = if sent.is_multiple_of(2) { "soak::double" } else { "test::echo" };
            let call = json!({"type": "invokefunction", "invocation_id": format!("soak-{sent}"), "function_id": function, "data": {"n": sent}});
            sink.send(Frame::Text(call.to_string().into())).await?;
            sent += 1;
        }
        let Some(frame) = stream.next().await else {
            bail!("the server closed the connection after {} answers", answered.len())
        };
        let Frame::Text(text) = frame? else { continue };
        let answer: Value = serde_json::from_str(text.as_str())?;
        if answer["type"] != "invocationresult" {
            continue;
        }
        let id = answer["invocation_id"].as_str().unwrap_or_default().to_owned();
        let i: u64 = id.strip_prefix("soak-").and_then(|i| i.parse().ok()).context("an answer to no call")?;
        let expected = if i.is_multiple_of(2) { json!({"n": i * 2}) } else { json!({"n": i}) };
        if answer["result"] != expected {
            bail!("call {i} was answered wrongly: {answer}");
        }
        if !answered.insert(id) {
            bail!("call {i} was answered twice");
        }
        if answered.len().is_multiple_of(100_000) {
            println!(
                "{} answered, {:.0} calls/s",
                answered.len(),
                answered.len() as f64 / start.elapsed().as_secs_f64()
            );
        }
    }
    println!(
        "{calls} calls, {calls} answers, none lost or repeated: {:.0} calls/s",
        calls as f64 / start.elapsed().as_secs_f64()
    );
    Ok(())
}
