//! Exporting handlers: the [`export!`](crate::export!) macro and what it expands to.
//!
//! The world exports one function, `handle(function-id, payload-json) -> result<string,
//! string>`. `export!` implements it for you: it decodes the payload JSON into the
//! handler's input type, calls the handler, and encodes its output as JSON. Failures on the
//! way (bad input JSON, an unknown function id, an output that does not serialize) become
//! the call's error message; nothing here panics.

use std::cell::RefCell;
use std::fmt::Display;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A boxed error that any error converts into with `?`: a handy handler error type.
///
/// [`ChannelError`](crate::ChannelError), [`CallError`](crate::CallError), `std::io::Error`,
/// `serde_json::Error`, `String` and `&str` all convert into it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The result type of a handler that uses [`BoxError`].
pub type HandlerResult<T> = Result<T, BoxError>;

/// Exports handlers as this component's `handle` function. Use it once per guest crate,
/// at the top level.
///
/// A handler is a function (or a closure with typed parameters)
/// `fn(In) -> Result<Out, E>` where `In: serde::de::DeserializeOwned`,
/// `Out: serde::Serialize` and `E: std::fmt::Display`. `In` and `Out` may be
/// `serde_json::Value`.
///
/// One handler for every function id the host routes to this component:
///
/// ```ignore
/// fn handler(input: serde_json::Value) -> Result<serde_json::Value, String> {
///     Ok(input)
/// }
/// rill_guest::export!(handler);
/// ```
///
/// Or a handler per function id; a call with any other id fails with
/// `"this component does not serve function id …"`:
///
/// ```ignore
/// rill_guest::export! {
///     "files::process" => process,
///     "files::other" => other,
/// }
/// ```
///
/// Input JSON that does not fit `In` fails the call with a message naming the function id
/// and serde's reason. Inside a handler, [`function_id`](crate::function_id) tells which id
/// the caller used.
///
/// The expansion contains the `unsafe` ABI glue that wit-bindgen generates, so a guest
/// crate that uses this macro can `#![deny(unsafe_code)]` but not `#![forbid(unsafe_code)]`.
#[macro_export]
macro_rules! export {
    ($($function_id:literal => $handler:expr),+ $(,)?) => {
        $crate::__export_guest! {
            |function_id, payload_json| match function_id {
                $(
                    $function_id => $crate::__private::run($handler, function_id, payload_json),
                )+
                _ => ::core::result::Result::Err($crate::__private::unknown_function(
                    function_id,
                    &[$($function_id),+],
                )),
            }
        }
    };
    ($handler:expr $(,)?) => {
        $crate::__export_guest! {
            |function_id, payload_json| $crate::__private::run($handler, function_id, payload_json)
        }
    };
}

/// Implementation detail of [`export!`]: implements the generated `Guest` trait with a
/// dispatch closure and invokes wit-bindgen's export macro.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_guest {
    ($dispatch:expr) => {
        #[allow(unsafe_code)]
        const _: () = {
            struct RillGuestExport;

            impl $crate::bindings::Guest for RillGuestExport {
                fn handle(
                    function_id: ::std::string::String,
                    payload_json: ::std::string::String,
                ) -> ::core::result::Result<::std::string::String, ::std::string::String> {
                    $crate::__private::dispatch(&function_id, &payload_json, $dispatch)
                }
            }

    $crate::bindings::export!(RillGuestExport with_types_in $crate::bindings);
        };
    };
}

thread_local! {
    static CURRENT_FUNCTION_ID: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The function id the current call was made with, while a handler exported with
/// [`export!`](crate::export!) runs; `None` outside a call.
///
/// Useful when one handler serves several ids (`export!(handler)`).
pub fn function_id() -> Option<String> {
    CURRENT_FUNCTION_ID.with(|current| current.borrow().clone())
}

/// Support for the macros. Not public API: it may change in any release.
#[doc(hidden)]
pub mod __private {
    use super::*;

    /// Runs `dispatch` with [`function_id`] set for its duration.
    pub fn dispatch(
        function_id: &str,
        payload_json: &str,
        dispatch: impl FnOnce(&str, &str) -> Result<String, String>,
    ) -> Result<String, String> {
        CURRENT_FUNCTION_ID.with(|current| *current.borrow_mut() = Some(function_id.to_owned()));
        let result = dispatch(function_id, payload_json);
        CURRENT_FUNCTION_ID.with(|current| *current.borrow_mut() = None);
        result
    }

    /// Decodes the input, runs a typed handler and encodes its output.
    pub fn run<I, O, E>(
        handler: impl FnOnce(I) -> Result<O, E>,
        function_id: &str,
        payload_json: &str,
    ) -> Result<String, String>
    where
        I: DeserializeOwned,
        O: Serialize,
        E: Display,
    {
        let input: I = serde_json::from_str(payload_json)
            .map_err(|e| format!("invalid input for {function_id}: {e}"))?;
        let output = handler(input).map_err(|e| e.to_string())?;
        serde_json::to_string(&output)
            .map_err(|e| format!("the result of {function_id} could not be serialized: {e}"))
    }

    /// The error message for a function id no handler serves.
    pub fn unknown_function(function_id: &str, served: &[&str]) -> String {
        format!(
            "this component does not serve function id {function_id:?} (it serves: {})",
            served.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::Value;

    use super::__private::*;
    use super::*;

    #[derive(Deserialize)]
    struct In {
        n: u32,
    }

    #[derive(Serialize)]
    struct Out {
        double: u32,
    }

    fn double(input: In) -> Result<Out, String> {
        if input.n == 13 {
            return Err("unlucky".to_owned());
        }
        Ok(Out { double: input.n * 2 })
    }

    fn echo(input: Value) -> HandlerResult<Value> {
        Ok(input)
    }

    #[test]
    fn typed_handlers_decode_and_encode() {
        assert_eq!(run(double, "t::double", r#"{"n":4}"#), Ok(r#"{"double":8}"#.to_owned()));
        assert_eq!(run(double, "t::double", r#"{"n":13}"#), Err("unlucky".to_owned()));
        assert_eq!(run(echo, "t::echo", r#"[1,"a",null]"#), Ok(r#"[1,"a",null]"#.to_owned()));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let wrong_shape = run(double, "t::double", r#"{"m":4}"#);
        assert!(matches!(&wrong_shape, Err(m) if m.starts_with("invalid input for t::double: ")));
        let not_json = run(echo, "t::echo", "{");
        assert!(matches!(&not_json, Err(m) if m.starts_with("invalid input for t::echo: ")));
    }

    #[test]
    fn unknown_ids_are_named() {
        let message = unknown_function("x::y", &["a::b", "c::d"]);
        assert_eq!(message, r#"this component does not serve function id "x::y" (it serves: a::b, c::d)"#);
    }

    #[test]
    fn function_id_is_set_only_during_dispatch() {
        assert_eq!(function_id(), None);
        let seen = dispatch("a::b", "{}", |_, _| Ok(function_id().unwrap_or_default()));
        assert_eq!(seen, Ok("a::b".to_owned()));
        assert_eq!(function_id(), None);
    }
}
