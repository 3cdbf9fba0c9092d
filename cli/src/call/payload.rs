//! The payload of `rill call`: where its text comes from (the argument, `@PATH` or `@-`),
//! and how channel refs are put into it.
//!
//! The function receives the user's JSON text as written. Refs are added by editing the
//! text, never by parsing it into a value and printing that again (which would sort keys,
//! respell numbers such as `12345678901234567890123` and drop escapes): every byte outside
//! the inserted or replaced fields stays as it was.

use std::path::Path;

use anyhow::{Context, anyhow};
use rill::{CallError, Limits};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::{Failure, fail};
use crate::exit;

/// Where the payload text comes from.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Source<'a> {
    /// No payload argument: `{}`.
    Empty,
    /// The argument itself.
    Literal(&'a str),
    /// `@PATH`: the file's contents.
    File(&'a Path),
    /// `@-`: standard input.
    Stdin,
}

impl<'a> Source<'a> {
    /// JSON text never starts with `@`, so an argument that does names a file (or `-`).
    pub(crate) fn of(arg: Option<&'a str>) -> Source<'a> {
        match arg {
            None => Source::Empty,
            Some("@-") => Source::Stdin,
            Some(arg) => match arg.strip_prefix('@') {
                Some(path) => Source::File(Path::new(path)),
                None => Source::Literal(arg),
            },
        }
    }
}

/// Read the payload text and check it as the host checks any payload (`limits`: size,
/// nesting, syntax). A file or stdin is read only up to one byte past the size limit.
pub(crate) async fn read(source: &Source<'_>, limits: &Limits) -> Result<String, Failure> {
    let text = match source {
        Source::Empty => "{}".to_owned(),
        Source::Literal(text) => (*text).to_owned(),
        Source::Stdin => read_bounded(tokio::io::stdin(), "standard input", limits).await?,
        Source::File(path) => {
            if path.as_os_str().is_empty() {
                return Err(fail(exit::INPUT, anyhow!("`@` must be followed by a path, or `-` for stdin")));
            }
            let file = tokio::fs::File::open(path)
                .await
                .with_context(|| format!("cannot open the payload file {}", path.display()))
                .map_err(|e| fail(exit::INPUT, e))?;
            read_bounded(file, &path.display().to_string(), limits).await?
        }
    };
    limits.check_json("payload", &text)?;
    Ok(text)
}

async fn read_bounded(input: impl AsyncRead + Unpin, what: &str, limits: &Limits) -> Result<String, Failure> {
    let max = limits.max_payload_bytes;
    let mut bytes = Vec::new();
    input
        .take(u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_end(&mut bytes)
        .await
        .with_context(|| format!("cannot read the payload from {what}"))
        .map_err(|e| fail(exit::INPUT, e))?;
    if bytes.len() > max {
        return Err(CallError::LimitExceeded(format!(
            "the payload in {what} is more than {max} bytes; at most {max} bytes are allowed \
             (stream large data through a channel: --reader-from)"
        ))
        .into());
    }
    String::from_utf8(bytes).map_err(|_| fail(exit::INPUT, anyhow!("the payload in {what} is not UTF-8 text")))
}

/// Why a field could not be set.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FieldError {
    /// `a..b`, `.a`, `a.`: a path with an empty part.
    EmptyPart,
    /// Something on the way (or the payload itself) is not an object.
    NotAnObject,
    /// An object on the way has the key twice, so which one the function reads depends
    /// on its JSON parser.
    DuplicateKey(String),
}

impl FieldError {
    pub(crate) fn describe(&self, path: &str) -> String {
        match self {
            FieldError::EmptyPart => format!("field path {path:?} has an empty part"),
            FieldError::NotAnObject => {
                format!("cannot set {path:?}: the payload has a non-object on the way")
            }
            FieldError::DuplicateKey(key) => {
                format!("cannot set {path:?}: the payload has the key {key:?} twice in one object")
            }
        }
    }
}

/// Put `value` (JSON text) at the dotted `path` of the JSON object `text`, replacing what
/// is there or adding the key at the end of its object, and creating objects on the way.
/// `text` must be valid JSON (checked before); every byte of it outside the field is kept.
pub(crate) fn set_field(text: &str, path: &str, value: &str) -> Result<String, FieldError> {
    let parts: Vec<&str> = path.split('.').collect();
    if parts.iter().any(|part| part.is_empty()) {
        return Err(FieldError::EmptyPart);
    }
    let mut scan = Scan { bytes: text.as_bytes(), at: 0 };
    scan.skip_whitespace();
    for (i, part) in parts.iter().enumerate() {
        let rest = &parts[i + 1..];
        let object = scan.object()?;
        let mut found = object.members.iter().filter(|m| m.key == *part);
        let member = found.next();
        if found.next().is_some() {
            return Err(FieldError::DuplicateKey((*part).to_owned()));
        }
        match member {
            Some(member) if rest.is_empty() => {
                return Ok(splice(text, member.value.0, member.value.1, value));
            }
            Some(member) => scan.at = member.value.0,
            None => {
                let comma = if object.members.is_empty() { "" } else { "," };
                let insert = format!("{comma}{}", nested(&parts[i..], value));
                return Ok(splice(text, object.insert_at, object.insert_at, &insert));
            }
        }
    }
    // `parts` is never empty (`split` yields at least one part), so the loop returned.
    Err(FieldError::EmptyPart)
}

/// `"a":{"b":VALUE}` for the parts `a`, `b`.
fn nested(parts: &[&str], value: &str) -> String {
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push('{');
        }
        out.push_str(&serde_json::Value::from(*part).to_string());
        out.push(':');
    }
    out.push_str(value);
    out.push_str(&"}".repeat(parts.len() - 1));
    out
}

fn splice(text: &str, start: usize, end: usize, with: &str) -> String {
    let mut out = String::with_capacity(text.len() - (end - start) + with.len());
    out.push_str(&text[..start]);
    out.push_str(with);
    out.push_str(&text[end..]);
    out
}

/// A member of a JSON object: its decoded key and the byte span of its value.
struct Member {
    key: String,
    value: (usize, usize),
}

struct Object {
    members: Vec<Member>,
    /// Where a new member goes: right after the last member's value, or right after
    /// `{` in an empty object.
    insert_at: usize,
}

/// A cursor over JSON text already known to be valid. It never recurses (skipping a
/// nested value counts brackets), so no nesting depth can exhaust its stack.
struct Scan<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Scan<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// Past the string starting at the cursor (at its opening quote).
    fn skip_string(&mut self) {
        self.at += 1;
        while let Some(byte) = self.peek() {
            self.at += 1;
            match byte {
                b'\\' => self.at += 1,
                b'"' => return,
                _ => {}
            }
        }
    }

    /// Past the value starting at the cursor.
    fn skip_value(&mut self) {
        match self.peek() {
            Some(b'"') => self.skip_string(),
            Some(b'{' | b'[') => {
                let mut depth = 0usize;
                while let Some(byte) = self.peek() {
                    match byte {
                        b'"' => {
                            self.skip_string();
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.at += 1;
                                return;
                            }
                        }
                        _ => {}
                    }
                    self.at += 1;
                }
            }
            _ => {
                while !matches!(self.peek(), None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')) {
                    self.at += 1;
                }
            }
        }
    }

    /// The members of the object at the cursor.
    fn object(&mut self) -> Result<Object, FieldError> {
        if self.peek() != Some(b'{') {
            return Err(FieldError::NotAnObject);
        }
        self.at += 1;
        let mut object = Object { members: Vec::new(), insert_at: self.at };
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                // `}`: the end of the object.
                return Ok(object);
            }
            let key_start = self.at;
            self.skip_string();
            let key = serde_json::from_slice::<String>(&self.bytes[key_start..self.at])
                .map_err(|_| FieldError::NotAnObject)?;
            self.skip_whitespace();
            self.at += 1; // `:`
            self.skip_whitespace();
            let start = self.at;
            self.skip_value();
            object.members.push(Member { key, value: (start, self.at) });
            object.insert_at = self.at;
            self.skip_whitespace();
            if self.peek() == Some(b',') {
                self.at += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(text: &str, path: &str) -> Result<String, FieldError> {
        set_field(text, path, "REF")
    }

    #[test]
    fn fields_are_set_at_dotted_paths() {
        assert_eq!(
            set(r#"{"job": {"name": "x"}}"#, "job.source").unwrap(),
            r#"{"job": {"name": "x","source":REF}}"#
        );
        assert_eq!(set("{}", "top").unwrap(), r#"{"top":REF}"#);
        assert_eq!(set(" { } ", "a.b.c").unwrap(), r#" {"a":{"b":{"c":REF}} } "#);
        assert_eq!(
            set(r#"{"a": 1, "b": [1, {"c": "}"}]}"#, "a").unwrap(),
            r#"{"a": REF, "b": [1, {"c": "}"}]}"#
        );
        assert_eq!(set(r#"{"a": {}}"#, "a.b").unwrap(), r#"{"a": {"b":REF}}"#);
    }

    #[test]
    fn the_rest_of_the_text_is_untouched() {
        let text =
            "{\"z\": 12345678901234567890123, \"a\": 1.0, \"\\u00e9\\\"\": \"\\u2028\", \"n\" : [ ]\n}";
        let expected = "{\"z\": 12345678901234567890123, \"a\": 1.0, \"\\u00e9\\\"\": \"\\u2028\", \"n\" : [ ],\"in\":REF\n}";
        assert_eq!(set(text, "in").unwrap(), expected);
    }

    #[test]
    fn escaped_keys_are_matched_by_their_value() {
        assert_eq!(set(r#"{"\u0061": 1}"#, "a").unwrap(), r#"{"\u0061": REF}"#);
    }

    #[test]
    fn bad_paths_are_refused() {
        assert_eq!(set(r#"{"job": {"name": "x"}}"#, "job.name.deeper"), Err(FieldError::NotAnObject));
        assert_eq!(set("[1]", "a"), Err(FieldError::NotAnObject));
        assert_eq!(set("{}", "a..b"), Err(FieldError::EmptyPart));
        assert_eq!(set(r#"{"a": 1, "a": 2}"#, "a"), Err(FieldError::DuplicateKey("a".into())));
    }

    #[test]
    fn payload_arguments_name_their_source() {
        assert_eq!(Source::of(None), Source::Empty);
        assert_eq!(Source::of(Some("@-")), Source::Stdin);
        assert_eq!(Source::of(Some("@in.json")), Source::File(Path::new("in.json")));
        assert_eq!(Source::of(Some("{}")), Source::Literal("{}"));
    }
}
