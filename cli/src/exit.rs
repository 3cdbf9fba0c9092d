//! The exit codes of `rill`, in one table: each code's constant, what it means (as
//! `rill call --help` lists it), and which [`CallError`] gives it.

use rill::CallError;

/// The function returned an error.
pub(crate) const FAILED: u8 = 1;
/// Bad input: usage, payload JSON, payload file, unknown function, field paths.
pub(crate) const INPUT: u8 = 2;
/// The function did not finish before its deadline.
pub(crate) const TIMEOUT: u8 = 3;
/// A limit was exceeded (for example the payload size).
pub(crate) const LIMIT: u8 = 4;
/// The host could not start or load the function.
pub(crate) const HOST: u8 = 5;
/// A stream failed.
pub(crate) const STREAM: u8 = 6;
/// The function trapped.
pub(crate) const TRAPPED: u8 = 7;
/// The function exceeded its memory limit.
pub(crate) const MEMORY: u8 = 8;
/// The function ran out of fuel.
pub(crate) const FUEL: u8 = 9;

/// Every exit code and what it means, in the words of `rill call --help`.
const MEANINGS: [(u8, &str); 10] = [
    (0, "the function returned a result (or a stdout stream's consumer closed the pipe)"),
    (FAILED, "the function returned an error"),
    (INPUT, "bad input: usage, payload JSON, payload file, unknown function, field paths"),
    (TIMEOUT, "the function did not finish before its deadline"),
    (LIMIT, "a limit was exceeded (for example the payload size)"),
    (HOST, "the host could not start or load the function (manifest, build, compile)"),
    (
        STREAM,
        "a stream failed: a file could not be read or written, an output stalled, or the\n     \
         function aborted or never opened a --writer-to channel",
    ),
    (TRAPPED, "the function trapped (the trap and the guest backtrace are printed)"),
    (MEMORY, "the function exceeded its memory limit"),
    (FUEL, "the function ran out of fuel"),
];

/// The exit code for a call that failed with `err`.
pub(crate) fn of_call_error(err: &CallError) -> u8 {
    match err {
        CallError::Failed { .. } => FAILED,
        CallError::Trapped { .. } => TRAPPED,
        CallError::MemoryLimitExceeded { .. } => MEMORY,
        CallError::OutOfFuel { .. } => FUEL,
        CallError::NotFound(_) | CallError::InvalidInput(_) => INPUT,
        CallError::TimedOut { .. } => TIMEOUT,
        CallError::LimitExceeded(_) => LIMIT,
        _ => HOST,
    }
}

/// The `Exit codes:` section of `rill call --help`.
pub(crate) fn help() -> String {
    let mut help = String::from("Exit codes:");
    for (code, meaning) in MEANINGS {
        help.push_str(&format!("\n  {code}  {meaning}"));
    }
    help
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_listed_once_in_order() {
        let codes: Vec<u8> = MEANINGS.iter().map(|(code, _)| *code).collect();
        assert_eq!(codes, (0..=9).collect::<Vec<u8>>());
    }
}
