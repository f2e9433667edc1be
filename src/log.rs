//! `RJIT_LOG=compile,deopt,decline`: one line per event on stderr, saying which function, which
//! source line, why, and when (seconds since rjit was imported).
//!
//! ```text
//! [rjit +0.0125s] compile f (/tmp/t.py:3): 412 bytes in 180.2 us, specialised: n: int
//! [rjit +0.0130s] deopt f (/tmp/t.py:5): int overflow (+)
//! [rjit +0.0131s] decline g (/tmp/t.py:9): MATCH_SEQUENCE at offset 4 (line 9): ...
//! ```
//! Each category is a bit read once per event, on paths that are already slow (compiling, a
//! deoptimisation), so logging that is off costs nothing measurable.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Instant;

use once_cell::sync::OnceCell;

/// What can be logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Event {
    /// A function was compiled.
    Compile = 1,
    /// Compiled code handed its frame to the interpreter at a failed guard or overflow.
    Deopt = 2,
    /// A function was left to the interpreter for good.
    Decline = 4,
}

impl Event {
    fn name(self) -> &'static str {
        match self {
            Event::Compile => "compile",
            Event::Deopt => "deopt",
            Event::Decline => "decline",
        }
    }
}

static FLAGS: AtomicU8 = AtomicU8::new(0);
static START: OnceCell<Instant> = OnceCell::new();

/// Parses an `RJIT_LOG` value: comma-separated categories (`all` for every one). Returns the
/// flags and a warning per word not understood.
pub fn parse(spec: &str) -> (u8, Vec<String>) {
    let mut flags = 0;
    let mut warnings = Vec::new();
    for word in spec.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        flags |= match word {
            "compile" => Event::Compile as u8,
            "deopt" => Event::Deopt as u8,
            "decline" => Event::Decline as u8,
            "all" => Event::Compile as u8 | Event::Deopt as u8 | Event::Decline as u8,
            other => {
                warnings.push(format!(
                    "RJIT_LOG: unknown category {other:?} ignored (known: compile, deopt, decline, all)"
                ));
                0
            }
        };
    }
    (flags, warnings)
}

/// Reads `RJIT_LOG` (at import) and starts the clock; returns warnings for bad values.
pub fn init_from_env() -> Vec<String> {
    let _ = START.set(Instant::now());
    let (flags, warnings) = parse(&std::env::var("RJIT_LOG").unwrap_or_default());
    FLAGS.store(flags, Ordering::Relaxed);
    warnings
}

/// Whether `event` is logged.
#[inline]
pub fn enabled(event: Event) -> bool {
    FLAGS.load(Ordering::Relaxed) & event as u8 != 0
}

/// The text of one log line (without the newline).
pub fn format_line(seconds: f64, event: Event, function: &str, message: &str) -> String {
    format!("[rjit +{seconds:.4}s] {} {function}: {message}", event.name())
}

/// Writes one event, if its category is on. `function` names the function and place, as
/// `qualname (file:line)`.
pub fn emit(event: Event, function: &str, message: &str) {
    if !enabled(event) {
        return;
    }
    let seconds = START.get().map_or(0.0, |s| s.elapsed().as_secs_f64());
    let line = format_line(seconds, event, function, message);
    // Straight to fd 2 (not Python's sys.stderr): no Python code may run while compiling.
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// `qualname (file:line)` of a code object, for log lines; `line` overrides the first line.
pub fn place(code: &pyo3::Bound<'_, pyo3::PyAny>, line: Option<u32>) -> String {
    use pyo3::types::PyAnyMethods;
    let attr = |name: &str| code.getattr(name).map(|v| v.to_string()).unwrap_or_else(|_| "?".into());
    let line = line.map_or_else(|| attr("co_firstlineno"), |l| l.to_string());
    format!("{} ({}:{line})", attr("co_qualname"), attr("co_filename"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_categories() {
        assert_eq!(parse("compile,deopt").0, 3);
        assert_eq!(parse(" decline ").0, 4);
        assert_eq!(parse("all").0, 7);
        assert_eq!(parse("").0, 0);
        let (flags, warnings) = parse("compile,bogus");
        assert_eq!(flags, 1);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("bogus"));
    }

    #[test]
    fn lines_name_event_function_and_reason() {
        assert_eq!(
            format_line(1.5, Event::Deopt, "f (t.py:5)", "int overflow (+)"),
            "[rjit +1.5000s] deopt f (t.py:5): int overflow (+)"
        );
    }
}
