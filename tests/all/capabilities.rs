//! Capabilities: a function granted nothing sees nothing; grants open exactly what they
//! name.

use std::net::TcpListener;

use rill::{Capabilities, DirGrant, FunctionConfig, HostConfig, NetworkGrant};
use rill_test_artifacts::HOSTILE;
use rill_tests::{call, component, host_with_functions};
use serde_json::{Value, json};

fn host_granting(capabilities: Capabilities) -> rill::Host {
    let probes = ["hostile::read_file", "hostile::write_file", "hostile::env", "hostile::connect"];
    let special: Vec<_> = probes
        .iter()
        .map(|id| (*id, FunctionConfig::new(component(&HOSTILE)).capabilities(capabilities.clone())))
        .collect();
    host_with_functions(HostConfig::default(), &special)
}

fn error_of(result: &Value) -> &str {
    result["error"].as_str().unwrap_or_else(|| panic!("expected an error: {result}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_granted_nothing_sees_nothing() {
    let host = host_granting(Capabilities::default());
    let read = call(&host, "hostile::read_file", json!({ "path": "/etc/passwd" })).await;
    error_of(&read);
    let write = call(&host, "hostile::write_file", json!({ "path": "/tmp/rill-escape", "text": "x" })).await;
    error_of(&write);
    assert!(!std::path::Path::new("/tmp/rill-escape").exists());
    // The host surely has PATH; the guest must not see it.
    assert!(std::env::var_os("PATH").is_some());
    let env = call(&host, "hostile::env", json!({ "name": "PATH" })).await;
    error_of(&env["value"]);
    assert_eq!(env["visible"], 0);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let connect = call(&host, "hostile::connect", json!({ "addr": addr.to_string() })).await;
    error_of(&connect);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_directory_can_be_read_not_written() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), "hi from the host").unwrap();
    let mut caps = Capabilities::default();
    caps.dirs.push(DirGrant::read_only(dir.path(), "/data"));
    let host = host_granting(caps);
    let read = call(&host, "hostile::read_file", json!({ "path": "/data/hello.txt" })).await;
    assert_eq!(read["ok"], "hi from the host");
    let write = call(&host, "hostile::write_file", json!({ "path": "/data/new.txt", "text": "x" })).await;
    error_of(&write);
    assert!(!dir.path().join("new.txt").exists());
    // Nothing outside the grant.
    let outside = call(&host, "hostile::read_file", json!({ "path": "/data/../../etc/passwd" })).await;
    error_of(&outside);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writable_directory_can_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut caps = Capabilities::default();
    caps.dirs.push(DirGrant::writable(dir.path(), "/out"));
    let host = host_granting(caps);
    let write =
        call(&host, "hostile::write_file", json!({ "path": "/out/result.txt", "text": "from wasm" })).await;
    assert_eq!(write["ok"], "written");
    assert_eq!(std::fs::read_to_string(dir.path().join("result.txt")).unwrap(), "from wasm");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn granted_environment_variables_and_only_those() {
    let mut caps = Capabilities::default();
    caps.env.insert("REGION".into(), "eu-west".into());
    let host = host_granting(caps);
    let env = call(&host, "hostile::env", json!({ "name": "REGION" })).await;
    assert_eq!(env["value"]["ok"], "eu-west");
    assert_eq!(env["visible"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_network_allow_list_opens_exactly_its_addresses() {
    let allowed = TcpListener::bind("127.0.0.1:0").unwrap();
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let allowed_addr = allowed.local_addr().unwrap();
    let mut caps = Capabilities::default();
    caps.network.push(allowed_addr.to_string().parse::<NetworkGrant>().unwrap());
    let host = host_granting(caps);
    let accept = std::thread::spawn(move || allowed.accept().map(|_| ()));
    let connected = call(&host, "hostile::connect", json!({ "addr": allowed_addr.to_string() })).await;
    assert_eq!(connected["ok"], "connected", "{connected}");
    accept.join().unwrap().unwrap();
    let denied =
        call(&host, "hostile::connect", json!({ "addr": other.local_addr().unwrap().to_string() })).await;
    error_of(&denied);
}
