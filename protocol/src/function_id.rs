//! Function ids: the one rule for what names a function.

use std::fmt;

/// Longest function id (128 bytes). Ids are checked before lookup and before they reach a
/// log line, so a caller cannot make the host hash or log megabytes of "id".
pub const MAX_FUNCTION_ID_BYTES: usize = 128;

/// A function id that follows the rule: 1 to [`MAX_FUNCTION_ID_BYTES`] bytes of UTF-8,
/// with no control characters (iii's ids look like `files::process`). Hosts check ids
/// with it when functions are registered and when calls arrive, so both use one rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FunctionId(String);

/// Why a text is not a function id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FunctionIdError {
    /// The id is empty.
    Empty,
    /// The id is longer than [`MAX_FUNCTION_ID_BYTES`]; the payload is its length in bytes.
    TooLong(usize),
    /// The id holds a control character (a newline, an escape, …).
    ControlCharacter,
}

impl fmt::Display for FunctionIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FunctionIdError::Empty => f.write_str("a function id cannot be empty"),
            FunctionIdError::TooLong(len) => {
                write!(f, "a function id must be 1 to {MAX_FUNCTION_ID_BYTES} bytes long, not {len}")
            }
            FunctionIdError::ControlCharacter => f.write_str("a function id cannot hold control characters"),
        }
    }
}

impl std::error::Error for FunctionIdError {}

impl FunctionId {
    /// Check `id` against the rule.
    ///
    /// # Errors
    ///
    /// [`FunctionIdError`] saying which part of the rule `id` breaks.
    pub fn parse(id: &str) -> Result<FunctionId, FunctionIdError> {
        if id.is_empty() {
            return Err(FunctionIdError::Empty);
        }
        if id.len() > MAX_FUNCTION_ID_BYTES {
            return Err(FunctionIdError::TooLong(id.len()));
        }
        if id.chars().any(char::is_control) {
            return Err(FunctionIdError::ControlCharacter);
        }
        Ok(FunctionId(id.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FunctionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for FunctionId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_within_the_rule_are_accepted() {
        for id in ["files::process", "x", "ünïcode::ok", &"x".repeat(MAX_FUNCTION_ID_BYTES)] {
            assert_eq!(FunctionId::parse(id).map(|f| f.as_str().to_owned()), Ok(id.to_owned()));
        }
    }

    #[test]
    fn ids_outside_the_rule_are_refused_with_the_reason() {
        assert_eq!(FunctionId::parse(""), Err(FunctionIdError::Empty));
        let long = "x".repeat(MAX_FUNCTION_ID_BYTES + 1);
        assert_eq!(FunctionId::parse(&long), Err(FunctionIdError::TooLong(MAX_FUNCTION_ID_BYTES + 1)));
        for id in ["a\nb", "\u{1b}[31m", "tab\there", "nul\0"] {
            assert_eq!(FunctionId::parse(id), Err(FunctionIdError::ControlCharacter), "{id:?}");
        }
    }
}
