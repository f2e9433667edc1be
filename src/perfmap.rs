//! `RJIT_PERF_MAP=1`: a perf map (`/tmp/perf-<pid>.map`, one `START SIZE name` line in hex per
//! compiled function, the format `perf report` reads for JIT code) so profilers name rjit's
//! machine code. Written once per compilation, never on a hot path.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Set at import from `RJIT_PERF_MAP` (nothing reads the environment while compiling).
static ENABLED: AtomicBool = AtomicBool::new(false);

/// The open map and the process it belongs to (a forked child writes its own file).
static MAP: Mutex<Option<(u32, File)>> = Mutex::new(None);

/// Whether `RJIT_PERF_MAP` asks for a perf map: any value but empty and `0`.
pub fn wanted(value: Option<&str>) -> bool {
    value.is_some_and(|v| !v.is_empty() && v != "0")
}

/// Reads `RJIT_PERF_MAP` (at import).
pub fn init_from_env() {
    ENABLED.store(wanted(std::env::var("RJIT_PERF_MAP").ok().as_deref()), Ordering::Relaxed);
}

/// Whether compilations are written to the perf map.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The map's path for this process.
pub fn path() -> String {
    format!("/tmp/perf-{}.map", std::process::id())
}

/// One line of a perf map: start and size in hex (no `0x`, as perf writes them), then the name
/// on the rest of the line.
pub fn line(start: usize, size: usize, name: &str) -> String {
    let name: String = name.chars().map(|c| if c == '\n' || c == '\r' { ' ' } else { c }).collect();
    format!("{start:x} {size:x} {name}\n")
}

/// Appends a compiled function's entry. Failures (a read-only /tmp) are ignored: the map is
/// a debugging aid and must not change what the program does.
pub fn record(start: usize, size: usize, name: &str) {
    let mut map = MAP.lock().unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id();
    if map.as_ref().is_none_or(|(owner, _)| *owner != pid) {
        *map = OpenOptions::new().create(true).append(true).open(path()).ok().map(|f| (pid, f));
    }
    if let Some((_, file)) = map.as_mut() {
        let _ = file.write_all(line(start, size, name).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_perfs_format() {
        assert_eq!(line(0x7f00_1234_5000, 0x1a0, "rjit:f (a.py:1)"), "7f0012345000 1a0 rjit:f (a.py:1)\n");
        assert_eq!(line(16, 1, "a\nb"), "10 1 a b\n");
    }

    #[test]
    fn only_a_set_value_turns_it_on() {
        assert!(wanted(Some("1")));
        assert!(wanted(Some("yes")));
        assert!(!wanted(Some("0")));
        assert!(!wanted(Some("")));
        assert!(!wanted(None));
    }
}
