//! The `rill` command line, run as a real process.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is a test failure")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// A manifest naming the prebuilt example components, so `rill` itself builds nothing
/// (and spawns no cargo whose memory would count as the child's).
fn manifest() -> &'static Path {
    static MANIFEST: OnceLock<PathBuf> = OnceLock::new();
    MANIFEST.get_or_init(|| {
        let mut text = String::new();
        for (id, dir) in [
            ("files::process", "examples/files"),
            ("transform::uppercase", "examples/transform"),
            ("words::count", "examples/progress"),
            ("test::trap", "test-guests/scenario"),
            ("test::echo", "test-guests/scenario"),
            ("test::spin", "test-guests/scenario"),
            ("bench::noop", "examples/bench"),
            ("bench::write", "examples/bench"),
            ("bench::read", "examples/bench"),
            ("bench::call_loop", "examples/bench"),
        ] {
            let wasm = rill::rust_guest::build(&repo_root().join("guests/rust").join(dir)).unwrap();
            text.push_str(&format!("[functions.{id:?}]\ncomponent = {:?}\n\n", wasm.display().to_string()));
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
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
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
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
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
    let mut child = rill()
        .arg("transform::uppercase")
        .arg("--reader-from")
        .arg(format!("input={}", fifo.display()))
        .arg("--writer-to")
        .arg("output=-")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
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
    let first = received.recv_timeout(std::time::Duration::from_secs(30));
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
    let stdout = String::from_utf8(output.stdout).unwrap();
    // The function's binary output, then the call's result.
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines, [r#"{"word_count":3,"bytes":13}{"word_count":3,"bytes":13}"#]);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains(r#"{"type":"complete","word_count":3}"#), "{stderr}");
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
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("rill did not exit while its stdin stayed open");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
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
    let output = run(Command::new(env!("CARGO_BIN_EXE_rill"))
        .env("RILL_CACHE_DIR", std::env::temp_dir().join("rill-cli-test-cache"))
        .args(["bench", "--quick", "--json", "--manifest"])
        .arg(manifest()));
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
    ];
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
