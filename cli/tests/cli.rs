//! The `rill` command line, run as a real process.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is a test failure")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// A manifest naming every function of every guest in `guests/rust`, built by
/// `rill-test-artifacts`, so `rill` itself builds nothing (and spawns no cargo whose
/// memory would count as the child's).
fn manifest() -> &'static Path {
    static MANIFEST: OnceLock<PathBuf> = OnceLock::new();
    MANIFEST.get_or_init(|| {
        let mut text = String::new();
        for guest in rill_test_artifacts::GUESTS {
            for id in guest.functions {
                text.push_str(&format!("[functions.{id:?}]\ncomponent = {:?}\n\n", guest.component));
            }
        }
        let path = std::env::temp_dir().join(format!("rill-cli-test-{}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    })
}

fn rill() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rill"));
    cmd.env("RILL_CACHE_DIR", std::env::temp_dir().join("rill-cli-test-cache"));
    cmd.arg("call").arg("--manifest").arg(manifest());
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().unwrap()
}

fn stdout_json(output: &Output) -> serde_json::Value {
    assert!(output.status.success(), "rill failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Deterministic pseudo-random bytes (xorshift), so a failure reproduces.
fn random_file(path: &Path, len: usize) -> String {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut hasher = Sha256::new();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut block = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for chunk in block.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        let n = left.min(block.len());
        file.write_all(&block[..n]).unwrap();
        hasher.update(&block[..n]);
        left -= n;
    }
    file.flush().unwrap();
    format!("{:x}", hasher.finalize())
}

/// Run `cmd` to completion and return its output and its peak resident set in bytes,
/// from the kernel's accounting of that one child (`wait4`).
#[expect(clippy::zombie_processes, reason = "the child is reaped by wait4, which std cannot see")]
fn run_measuring_peak_rss(cmd: &mut Command) -> (Output, u64) {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut buf).unwrap();
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut buf).unwrap();
        buf
    });
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    let mut status = 0;
    // SAFETY: `rusage` is plain old data, valid when zeroed; `wait4` writes into the two
    // out-pointers, which point at live locals, and reaps our own child exactly once (the
    // `Child` handle is never waited on afterwards).
    #[allow(unsafe_code, reason = "wait4 is the only way to read one child's peak RSS")]
    let (reaped, usage) = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        let reaped = libc::wait4(pid, &mut status, 0, &mut usage);
        (reaped, usage)
    };
    assert_eq!(reaped, pid);
    let output = Output {
        status: std::os::unix::process::ExitStatusExt::from_raw(status),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    // ru_maxrss is in KiB on Linux.
    (output, u64::try_from(usage.ru_maxrss).unwrap() * 1024)
}

/// The issue's headline case: a 256 MiB random file through `rill call` with a 1 MiB
/// buffer arrives byte-exact, and the host never holds more than a sliver of it.
#[test]
fn a_256_mib_file_streams_byte_exact_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("random.bin");
    let len = 256 << 20;
    let digest = random_file(&path, len);
    let (output, peak_rss) = run_measuring_peak_rss(
        rill()
            .arg("files::process")
            .arg("--buffer-bytes")
            .arg((1 << 20).to_string())
            .arg("--reader-from")
            .arg(format!("reader={}", path.display())),
    );
    let result = stdout_json(&output);
    assert_eq!(result["bytes"], len);
    assert_eq!(result["sha256"], digest, "the function read exactly the file");
    let limit = 96 << 20;
    assert!(peak_rss < limit, "peak RSS {} MiB, expected far below the 256 MiB file", peak_rss >> 20);
    eprintln!("peak RSS streaming 256 MiB: {} MiB", peak_rss >> 20);
}

#[test]
fn reader_from_and_writer_to_round_trip_through_a_transformer() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    let output_path = dir.path().join("out.txt");
    let text = "streams of text, 123 and more\n".repeat(50_000);
    std::fs::write(&input, &text).unwrap();
    let output = run(rill()
        .arg("transform::uppercase")
        .arg("--reader-from")
        .arg(format!("input={}", input.display()))
        .arg("--writer-to")
        .arg(format!("output={}", output_path.display())));
    let result = stdout_json(&output);
    assert_eq!(result["bytes"], text.len());
    assert_eq!(std::fs::read_to_string(&output_path).unwrap(), text.to_uppercase());
}

#[test]
fn a_pipe_is_streamed_as_it_arrives() {
    // A named pipe is not a regular file: what is written to it must reach the function
    // (and come back out) before the pipe ends, not once 64 KiB have gathered.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("in.fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let mut child = uppercase_to_stdout(&fifo).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (sender, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut first = [0u8; 4];
        let read = std::io::Read::read_exact(&mut stdout, &mut first).map(|()| first);
        sender.send(read.map_err(|e| e.to_string())).unwrap();
    });
    let mut pipe = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    pipe.write_all(b"abc\n").unwrap();
    pipe.flush().unwrap();
    let first = received.recv_timeout(Duration::from_secs(30));
    drop(pipe);
    let status = child.wait().unwrap();
    assert_eq!(first.unwrap().unwrap(), *b"ABC\n", "the first line came back while the pipe was open");
    assert!(status.success());
}

#[test]
fn stdin_and_stdout_stand_in_for_files_and_text_goes_to_stderr() {
    let mut child = rill()
        .arg("words::count")
        .arg("--reader-from")
        .arg("input=-")
        .arg("--writer-to")
        .arg("output=-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"one two three").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    // Only the function's binary output on stdout; the call's result goes to stderr.
    assert_eq!(String::from_utf8(output.stdout).unwrap(), r#"{"word_count":3,"bytes":13}"#);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains(r#"{"type":"complete","word_count":3}"#), "{stderr}");
    assert!(stderr.lines().any(|line| line == r#"{"word_count":3,"bytes":13}"#), "the result: {stderr}");
}

#[test]
fn a_failed_call_exits_even_while_stdin_stays_open() {
    // The function times out before stdin ends; a thread still blocked reading stdin
    // must not hold the process open.
    let mut child = rill()
        .arg("files::process")
        .arg("--reader-from")
        .arg("reader=-")
        .arg("--timeout-ms")
        .arg("300")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("rill did not exit while its stdin stayed open");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(stdin);
    assert_eq!(status.code(), Some(3), "a timeout");
}

#[test]
fn an_input_that_fails_to_read_aborts_the_stream() {
    // A directory opens but cannot be read: the function must see an abort with the
    // reason, never a clean (empty) end.
    let dir = tempfile::tempdir().unwrap();
    let output = run(rill()
        .arg("files::process")
        .arg("--reader-from")
        .arg(format!("reader={}", dir.path().display())));
    assert_eq!(output.status.code(), Some(1), "the function failed");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("aborted") && stderr.contains("reading the input failed"), "{stderr}");
}

#[test]
fn nested_payload_fields_carry_the_ref() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.bin");
    std::fs::write(&input, b"abc").unwrap();
    // files::process finds its ref anywhere in the payload, at key `reader`.
    let output = run(rill()
        .arg("files::process")
        .arg(r#"{"job": {"name": "x"}}"#)
        .arg("--reader-from")
        .arg(format!("job.reader={}", input.display())));
    assert_eq!(stdout_json(&output)["sha256"], sha256_hex(b"abc"));
}

fn assert_fails(output: &Output, code: i32, message: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "stderr: {stderr}");
    assert!(stderr.contains(message), "expected {message:?} in: {stderr}");
    assert!(output.stdout.is_empty(), "no result on failure");
}

#[test]
fn an_unknown_function_is_a_clear_error() {
    assert_fails(&run(rill().arg("no::such")), 2, "no function \"no::such\" is registered");
}

#[test]
fn malformed_payload_json_is_a_clear_error() {
    assert_fails(&run(rill().arg("test::echo").arg("{oops")), 2, "the payload is not valid JSON");
}

#[test]
fn a_malformed_field_spec_is_a_clear_error() {
    assert_fails(
        &run(rill().arg("test::echo").arg("--reader-from").arg("nofield")),
        2,
        "expected FIELD=PATH",
    );
}

#[test]
fn a_trap_exits_7_with_the_trap() {
    assert_fails(&run(rill().arg("test::trap").arg(r#"{"message":"kaboom"}"#)), 7, "trapped");
}

#[test]
fn a_timeout_exits_3() {
    assert_fails(&run(rill().arg("test::spin").arg("--timeout-ms").arg("100")), 3, "did not finish within");
}

#[test]
fn a_missing_input_file_is_a_clear_error() {
    assert_fails(
        &run(rill().arg("files::process").arg("--reader-from").arg("reader=/no/such/file")),
        2,
        "cannot open /no/such/file",
    );
}

#[test]
fn a_missing_manifest_is_a_clear_error() {
    let output =
        run(Command::new(env!("CARGO_BIN_EXE_rill")).args(["call", "x", "--manifest", "/no/rill.toml"]));
    assert_fails(&output, 5, "cannot read the manifest /no/rill.toml");
}

#[test]
fn an_echo_prints_the_result_json() {
    let output = run(rill().arg("test::echo").arg(r#"{"hello": [1, 2]}"#));
    assert_eq!(stdout_json(&output), serde_json::json!({"hello": [1, 2]}));
}

/// `rill bench --json` reports every documented figure (the numbers themselves are for
/// people and dashboards, not for assertions on a shared machine).
#[test]
fn bench_reports_every_figure_as_json() {
    // The test guests, and the Python bench functions the Python rows measure.
    let dir = tempfile::tempdir().unwrap();
    let bench_manifest = dir.path().join("rill.toml");
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guests/python/examples/bench");
    let mut text = std::fs::read_to_string(manifest()).unwrap();
    for id in ["py::bench::noop", "py::bench::write", "py::bench::read"] {
        text.push_str(&format!("[functions.{id:?}]\ncomponent = {python:?}\nlanguage = \"python\"\n\n"));
    }
    std::fs::write(&bench_manifest, text).unwrap();
    let output = run(Command::new(env!("CARGO_BIN_EXE_rill"))
        .env("RILL_CACHE_DIR", std::env::temp_dir().join("rill-cli-test-cache"))
        .args(["bench", "--quick", "--json", "--manifest"])
        .arg(&bench_manifest));
    let report = stdout_json(&output);
    let mut fields = vec![
        "memcpy_gbps".to_owned(),
        "call_path_gbps".to_owned(),
        "trigger_serial_per_sec".to_owned(),
        "trigger_p50_us".to_owned(),
        "trigger_p99_us".to_owned(),
        "trigger_parallel_per_sec".to_owned(),
        "trigger_function_to_function_per_sec".to_owned(),
        "cold_start_compile_ms".to_owned(),
        "cold_start_cached_ms".to_owned(),
        "cache_speedup".to_owned(),
        "idle_channels_10k_mib".to_owned(),
        "server_loopback_tcp_gbps".to_owned(),
        "server_client_to_wasm_gbps".to_owned(),
        "server_client_to_wasm_vs_tcp".to_owned(),
        "server_wasm_to_client_gbps".to_owned(),
        "server_wasm_to_client_vs_tcp".to_owned(),
        "server_worker_calls_per_s".to_owned(),
        "server_worker_call_p99_ms".to_owned(),
        "server_worker_calls_vs_in_process".to_owned(),
        "server_http_calls_per_s".to_owned(),
        "server_http_vs_in_process".to_owned(),
        "server_stream_peak_rss_added_mib".to_owned(),
        "python_component_mib".to_owned(),
        "python_cold_start_compile_ms".to_owned(),
        "python_cold_start_cached_ms".to_owned(),
        "python_trigger_serial_per_sec".to_owned(),
        "python_guest_to_guest_64k_gbps".to_owned(),
        "python_guest_to_guest_64k_vs_rust".to_owned(),
    ];
    // The idle-connection figures need a file descriptor per socket; below that the
    // bench says so and leaves them out.
    if !String::from_utf8_lossy(&output.stderr).contains("ulimit -n") {
        for field in [
            "server_idle_ws_connections",
            "server_idle_ws_connections_mib",
            "server_idle_ws_kib_per_connection",
        ] {
            fields.push(field.to_owned());
        }
    }
    for chunk in ["4k", "64k", "1m"] {
        for figure in [
            "host_two_copies_{}_gbps",
            "guest_to_guest_{}_gbps",
            "guest_to_guest_{}_vs_memcpy",
            "guest_to_guest_{}_vs_host_two_copies",
            "guest_to_guest_{}_peak_rss_added_mib",
        ] {
            fields.push(figure.replace("{}", chunk));
        }
    }
    for field in fields {
        let value = report[&field].as_f64().unwrap_or_else(|| panic!("{field} missing in {report}"));
        assert!(value.is_finite() && value >= 0.0, "{field} = {value}");
    }
    for chunk in ["4k", "64k", "1m"] {
        for figure in ["host_two_copies_{}_runs_gbps", "guest_to_guest_{}_runs_gbps"] {
            let field = figure.replace("{}", chunk);
            let runs = report[&field].as_array().unwrap_or_else(|| panic!("{field} missing in {report}"));
            assert_eq!(runs.len(), 5, "{field}: {runs:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Issue 8: `rill call` never loses, mixes or rewrites data.

/// Text of `len` bytes, mixed case, and its uppercase digest (what `transform::uppercase`
/// must produce).
fn mixed_case_file(path: &Path, len: usize) -> String {
    let line = b"Streams of Text, 123 and more: the Quick brown fox.\n";
    let text: Vec<u8> = line.iter().copied().cycle().take(len).collect();
    std::fs::write(path, &text).unwrap();
    sha256_hex(&text.to_ascii_uppercase())
}

/// Spawn `cmd` with stdout and stderr piped; stderr is collected on a thread.
/// `rill call transform::uppercase --reader-from input=<input> --writer-to output=-`: the
/// stream goes to stdout.
fn uppercase_to_stdout(input: &Path) -> Command {
    let mut cmd = rill();
    cmd.arg("transform::uppercase")
        .arg("--reader-from")
        .arg(format!("input={}", input.display()))
        .arg("--writer-to")
        .arg("output=-");
    cmd
}

fn spawn_piped(cmd: &mut Command) -> (std::process::Child, std::thread::JoinHandle<String>) {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
        text
    });
    (child, err)
}

/// Wait for `child`, killing it and failing after `limit`.
fn wait_within(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            child.kill().unwrap();
            panic!("rill did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn piped_output_is_the_stream_alone_and_the_result_goes_to_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    let len = 6 << 20;
    let expected = mixed_case_file(&input, len);
    let output = run(&mut uppercase_to_stdout(&input));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(output.stdout.len(), len, "stdout holds the stream and nothing else");
    assert_eq!(sha256_hex(&output.stdout), expected);
    assert_eq!(stderr, format!("{{\"bytes\":{len},\"messages\":0}}\n"));
}

#[test]
fn result_to_writes_the_result_to_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    let result = dir.path().join("result.json");
    let expected = mixed_case_file(&input, 100_000);
    let output = run(uppercase_to_stdout(&input).arg("--result-to").arg(&result));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(sha256_hex(&output.stdout), expected);
    assert!(output.stderr.is_empty(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(std::fs::read_to_string(&result).unwrap(), "{\"bytes\":100000,\"messages\":0}\n");
}

#[test]
fn result_to_stdout_beside_a_stdout_stream_is_a_usage_error() {
    assert_fails(
        &run(rill().arg("test::echo").args(["--writer-to", "output=-", "--result-to", "-"])),
        2,
        "--result-to - and a --writer-to stream cannot both write stdout",
    );
}

#[test]
fn a_slow_consumer_gets_every_byte() {
    // 3 MB read at about 400 KB/s: the function returns long before the consumer is done,
    // and draining goes on for as long as the consumer keeps reading.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    let len = 3_000_000;
    let expected = mixed_case_file(&input, len);
    let (mut child, stderr) = spawn_piped(&mut uppercase_to_stdout(&input));
    let mut stdout = child.stdout.take().unwrap();
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buf = vec![0u8; 40_000];
    loop {
        let n = std::io::Read::read(&mut stdout, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        received.extend_from_slice(&buf[..n]);
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = wait_within(&mut child, Duration::from_secs(60));
    let stderr = stderr.join().unwrap();
    assert!(started.elapsed() > Duration::from_secs(3), "the consumer really was slow");
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(received.len(), len);
    assert_eq!(sha256_hex(&received), expected);
    assert_eq!(stderr, format!("{{\"bytes\":{len},\"messages\":0}}\n"));
}

#[test]
fn an_output_the_function_never_opens_fails_at_once_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.bin");
    let started = Instant::now();
    let output = run(rill().arg("test::echo").arg("--writer-to").arg(format!("output={}", out.display())));
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert_fails(&output, 6, "the function returned without opening this output; nothing was written to it");
}

#[test]
fn the_payload_arrives_as_written() {
    let payload = r#"{"z": 1,  "a": {"big": 12345678901234567890123, "f": 1.0, "i": 1, "e": 1E2}, "s": "\u00e9\ud83d\ude00\"", "k":[ ]}"#;
    let output = run(rill().arg("test::raw").arg(payload));
    assert_eq!(stdout_json(&output)["raw"], payload);
}

#[test]
fn refs_are_added_without_touching_the_rest_of_the_payload() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.bin");
    std::fs::write(&input, b"abc").unwrap();
    let head = r#"{"z": 1, "a": {"big": 12345678901234567890123, "f": 1.0"#;
    let tail = r#"}, "s": "\u00e9"}"#;
    let output = run(rill()
        .arg("test::raw")
        .arg(format!("{head}{tail}"))
        .arg("--reader-from")
        .arg(format!("a.in={}", input.display())));
    let raw = stdout_json(&output)["raw"].as_str().unwrap().to_owned();
    let inserted =
        raw.strip_prefix(head).and_then(|r| r.strip_suffix(tail)).unwrap_or_else(|| panic!("{raw}"));
    let channel_ref: serde_json::Value =
        serde_json::from_str(inserted.strip_prefix(r#","in":"#).unwrap()).unwrap();
    assert_eq!(channel_ref["direction"], "read");
}

/// A JSON payload of exactly `len` bytes: `{"data":"xxx…","n":12345678901234567890123}`.
fn payload_of(len: usize) -> String {
    let frame = r#"{"data":"","n":12345678901234567890123}"#;
    format!(r#"{{"data":"{}","n":12345678901234567890123}}"#, "x".repeat(len - frame.len()))
}

#[test]
fn a_payload_file_under_the_limit_arrives_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("payload.json");
    let payload = payload_of(600_000);
    std::fs::write(&path, &payload).unwrap();
    let output = run(rill().arg("test::raw").arg(format!("@{}", path.display())));
    assert_eq!(stdout_json(&output)["raw"], payload);
}

#[test]
fn a_payload_file_over_the_limit_is_the_limit_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("payload.json");
    std::fs::write(&path, payload_of((1 << 20) + 1)).unwrap();
    let output = run(rill().arg("test::raw").arg(format!("@{}", path.display())));
    assert_fails(&output, 4, "is more than 1048576 bytes; at most 1048576 bytes are allowed");
}

#[test]
fn a_payload_from_stdin_arrives_exact() {
    let payload = r#"{"b": 2, "a": 12345678901234567890123, "f": 1.0}"#;
    let mut child = rill()
        .arg("test::raw")
        .arg("@-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(payload.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(stdout_json(&output)["raw"], payload);
}

#[test]
fn a_payload_and_a_stream_cannot_both_read_stdin() {
    assert_fails(
        &run(rill().args(["test::raw", "@-", "--reader-from", "input=-"])),
        2,
        "the payload (`@-`) and a --reader-from stream cannot both read stdin",
    );
}

#[test]
fn a_missing_payload_file_is_a_clear_error() {
    assert_fails(
        &run(rill().args(["test::raw", "@/no/such/payload.json"])),
        2,
        "cannot open the payload file /no/such/payload.json",
    );
}

/// `test::echo` never opens its input: whatever the input's size, the call succeeds with
/// a warning, at once.
fn an_unopened_input_of(len: usize) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.bin");
    random_file(&input, len);
    let started = Instant::now();
    let output = run(rill().arg("test::echo").arg("--reader-from").arg(format!("input={}", input.display())));
    let took = started.elapsed();
    let result = stdout_json(&output);
    assert_eq!(result["input"]["direction"], "read", "the result is still printed");
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "warning: the function did not read its input input ({}): it returned without opening it\n",
            input.display()
        )
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn an_unopened_small_input_is_a_warning() {
    an_unopened_input_of(100);
}

#[test]
fn an_unopened_large_input_is_the_same_warning() {
    an_unopened_input_of(5_000_000);
}

#[test]
fn an_input_read_only_in_part_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.bin");
    random_file(&input, 5_000_000);
    let output = run(rill()
        .arg("test::read")
        .arg(r#"{"limit": 1000}"#)
        .arg("--reader-from")
        .arg(format!("reader={}", input.display())));
    assert_eq!(stdout_json(&output)["outcome"], "limit");
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "warning: the function did not read all of its input reader ({}): it returned before the end of the stream\n",
            input.display()
        )
    );
}

#[test]
fn stdin_closed_at_once_is_an_empty_stream() {
    let output = run(rill().arg("files::process").arg("--reader-from").arg("reader=-"));
    let result = stdout_json(&output);
    assert_eq!(result["bytes"], 0);
    assert_eq!(result["sha256"], sha256_hex(b""));
    assert!(output.stderr.is_empty(), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn a_consumer_that_closes_the_pipe_is_a_clean_stop() {
    // `rill call … --writer-to output=- | head -c 100`.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    mixed_case_file(&input, 16 << 20);
    let (mut child, stderr) = spawn_piped(&mut uppercase_to_stdout(&input));
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 100];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let status = wait_within(&mut child, Duration::from_secs(30));
    let stderr = stderr.join().unwrap();
    assert_eq!(first.to_vec(), b"STREAMS OF TEXT, 123 AND MORE: THE QUICK BROWN FOX.\nSTREAMS OF TEXT, 123 AND MORE: THE QUICK BROWN FOX.\n"[..100].to_vec());
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with("note: the output's consumer closed the pipe, so streaming stopped"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `rill serve` as a child process on a free loopback port; killed when dropped.
struct Served {
    child: std::process::Child,
    url: String,
}

impl Served {
    fn start(extra: &[&str]) -> Served {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_rill"))
            .env("RILL_CACHE_DIR", std::env::temp_dir().join("rill-cli-test-cache"))
            .args(["serve", "--listen", "127.0.0.1:0", "--manifest"])
            .arg(manifest())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url =
            line.split_whitespace().find(|w| w.starts_with("ws://")).expect("the address line").to_owned();
        Served { child, url }
    }

    fn call(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rill"));
        cmd.args(["call", "--server", &self.url]);
        cmd
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn call_with_server_streams_files_through_a_running_rill_serve() {
    let served = Served::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.bin");
    let digest = random_file(&input, 20 << 20);
    let result = stdout_json(&run(served
        .call()
        .args(["files::process", "--reader-from"])
        .arg(format!("reader={}", input.display()))));
    assert_eq!(
        (result["bytes"].as_u64(), result["sha256"].as_str()),
        (Some(20 << 20), Some(digest.as_str()))
    );

    // Both ways at once: the stream alone on stdout, the result on stderr.
    let text = dir.path().join("text.txt");
    let expected = mixed_case_file(&text, 3 << 20);
    let output = run(served
        .call()
        .args(["transform::uppercase", "--writer-to", "output=-", "--reader-from"])
        .arg(format!("input={}", text.display())));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(sha256_hex(&output.stdout), expected);
    assert!(String::from_utf8_lossy(&output.stderr).contains(r#""bytes":3145728"#));

    // Errors keep their exit codes.
    assert_fails(&run(served.call().arg("no::such")), 2, "function_not_found");
    assert_fails(&run(served.call().args(["test::fail", r#"{"message":"told to"}"#])), 1, "told to");
}

#[test]
fn call_with_server_needs_the_token_the_server_wants() {
    let served = Served::start(&["--token", "s3cret"]);
    assert_fails(&run(served.call().arg("test::echo")), 5, "401");
    let output = run(served.call().args(["--token", "s3cret", "test::echo", r#"{"ok":true}"#]));
    assert_eq!(stdout_json(&output), serde_json::json!({"ok": true}));
    let output = run(served.call().env("RILL_TOKEN", "s3cret").args(["test::echo", "[1]"]));
    assert_eq!(stdout_json(&output), serde_json::json!([1]));
}

/// On a terminal a stream that runs for a while shows its progress on stderr; piped, the
/// same call prints nothing but its result.
#[test]
fn call_with_server_shows_progress_only_on_a_terminal() {
    let served = Served::start(&[]);
    // Slow to start, so the call outlasts the moment before bars appear.
    let call = format!(
        "(sleep 1.5; head -c 3000000 /dev/zero) | '{}' call --server {} files::process --reader-from reader=-",
        env!("CARGO_BIN_EXE_rill"),
        served.url
    );
    // `script` (util-linux) runs the command on a pseudo-terminal and copies what it
    // shows to its own stdout.
    let on_terminal = Command::new("script")
        .args(["--quiet", "--return", "--command", &call, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("`script` runs (install util-linux to run this test)");
    let shown = String::from_utf8_lossy(&on_terminal.stdout);
    assert!(on_terminal.status.success(), "{shown}");
    assert!(shown.contains("- → reader") && shown.contains("/s"), "a bar with the rate: {shown}");
    assert!(shown.contains(r#""bytes":3000000"#), "{shown}");

    let piped = run(Command::new("sh").args(["-c", &call]));
    assert_eq!(stdout_json(&piped)["bytes"], 3000000);
    assert_eq!(String::from_utf8_lossy(&piped.stderr), "", "nothing but the result when piped");
}
