//! Runs the `plugin_host` example as a user would: an application hosting a plugin in its
//! own store, with its own import, streaming through rill channels to a rill function.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use sha2::{Digest, Sha256};

fn run(name: &str, input: &[u8]) -> (Output, Value) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let dir = std::env::temp_dir().join(format!("rill-example-plugin-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("input.txt");
    std::fs::write(&path, input).unwrap();
    let output =
        Command::new(env!("CARGO_BIN_EXE_plugin_host")).arg(&path).current_dir(root).output().unwrap();
    std::fs::remove_dir_all(&dir).ok();
    let report = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
    (output, report)
}

#[test]
fn the_plugin_numbers_lines_into_a_rill_function() {
    // 2,500 lines, the last without a newline.
    let text: String = (0..2500).map(|i| format!("line {i}\n")).collect::<String>() + "tail";
    let (output, report) = run("ok", text.as_bytes());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    // What `cat -n` would print, computed here.
    let numbered: String =
        text.split_inclusive('\n').enumerate().map(|(i, line)| format!("{:>6}\t{line}", i + 1)).collect();
    assert_eq!(report["plugin"]["lines"], 2501, "{report}");
    // The plugin's `app.log` import reached the application's own state.
    assert_eq!(
        report["plugin"]["log"],
        serde_json::json!(["1000 lines numbered", "2000 lines numbered", "done: 2501 lines"])
    );
    let processed = &report["files::process"];
    assert_eq!(processed["bytes"], numbered.len(), "{report}");
    assert_eq!(processed["sha256"], format!("{:x}", Sha256::digest(numbered.as_bytes())), "{report}");
}

#[test]
fn a_plugin_that_traps_mid_stream_reaches_the_reader_as_aborted() {
    // 100 KiB of text, then a NUL byte: the plugin has written part of its output when it
    // traps.
    let mut input = "some text\n".repeat(10_240).into_bytes();
    input.extend_from_slice(b"\0 and more\n");
    let (output, report) = run("trap", &input);
    assert!(!output.status.success());
    let error = report["plugin"]["error"].as_str().unwrap();
    assert_eq!(error, "the plugin trapped: wasm trap: wasm `unreachable` instruction executed", "{report}");
    // The application recorded the failure with `RillCtx::fail` before dropping the
    // store, so `files::process` read an abort with that reason — never a clean end.
    let processed = report["files::process"]["error"].as_str().unwrap();
    assert!(processed.ends_with(&format!("channel aborted by the writer: {error}")), "{report}");
}
