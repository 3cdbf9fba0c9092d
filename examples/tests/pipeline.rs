//! Runs the `pipeline` example as a user would, on a file whose counts are known.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

use std::path::Path;
use std::process::Command;

#[test]
fn the_pipeline_example_runs_three_functions_end_to_end() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let dir = std::env::temp_dir().join(format!("rill-example-pipeline-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("input.txt");
    // 3,000 lines of four words: 12,000 words, 78,000 bytes.
    let text = "the quick brown fox\nJUMPS over THE dog\n".repeat(1500);
    std::fs::write(&input, &text).unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_pipeline")).arg(&input).current_dir(root).output().unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();

    assert_eq!(report["transform::uppercase"], serde_json::json!({ "bytes": text.len(), "messages": 0 }));
    assert_eq!(report["words::count"], serde_json::json!({ "word_count": 12_000, "bytes": text.len() }));
    // `words::count` sends a progress message per 10-byte chunk, one completion message,
    // then its result as bytes: that is what the last function reads.
    let counted = serde_json::json!({ "word_count": 12_000, "bytes": text.len() }).to_string();
    let process = &report["files::process"];
    assert_eq!(process["bytes"], counted.len(), "{process}");
    assert_eq!(process["messages"], text.len().div_ceil(10) + 1, "{process}");
}
