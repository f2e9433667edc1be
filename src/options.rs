//! Settings read from the environment at import: `RJIT` and `RJIT_THRESHOLD`.
//!
//! Parsing is a pure function of the variables so it is tested without a process.

/// What `RJIT` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `RJIT` unset or empty: rjit does what the program asks (`enable()`, `@jit`).
    Default,
    /// `RJIT=1`: whole-program mode from interpreter start-up (the .pth autoloader).
    Autoload,
    /// `RJIT=0`: rjit stays off even where code calls `enable()` or uses `@jit`.
    Off,
}

/// The call-count threshold used when neither `enable(threshold=...)` nor
/// `RJIT_THRESHOLD` gives one.
pub const DEFAULT_THRESHOLD: u64 = 200;

/// A function with a loop is hot after `threshold / LOOP_DIVISOR` calls (at least 1): a loop is
/// where time goes, and its calls are few.
pub const LOOP_DIVISOR: u64 = 50;

/// Settings from the environment, plus warnings to show the user for values that made no sense.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvOptions {
    pub mode: Mode,
    pub threshold: u64,
    pub warnings: Vec<String>,
}

impl EnvOptions {
    /// Reads the settings through `var`, which returns a variable's value if it is set.
    pub fn parse(var: impl Fn(&str) -> Option<String>) -> EnvOptions {
        let mut warnings = Vec::new();
        let mode = match var("RJIT").as_deref().map(|v| v.trim().to_ascii_lowercase()) {
            None => Mode::Default,
            Some(v) => match v.as_str() {
                "" => Mode::Default,
                "1" | "on" | "true" | "yes" => Mode::Autoload,
                "0" | "off" | "false" | "no" => Mode::Off,
                _ => {
                    warnings.push(format!("RJIT={v:?} is not understood (use 1 or 0); ignoring it"));
                    Mode::Default
                }
            },
        };
        let threshold = match var("RJIT_THRESHOLD") {
            None => DEFAULT_THRESHOLD,
            Some(v) if v.trim().is_empty() => DEFAULT_THRESHOLD,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) => n,
                // More calls than a counter can reach: never hot (as enable() caps it).
                Err(e) if *e.kind() == std::num::IntErrorKind::PosOverflow => u64::MAX,
                Err(_) => {
                    warnings.push(format!(
                        "RJIT_THRESHOLD={v:?} is not a non-negative integer; using the default {DEFAULT_THRESHOLD}"
                    ));
                    DEFAULT_THRESHOLD
                }
            },
        };
        EnvOptions { mode, threshold, warnings }
    }

    /// Reads the settings from this process's environment.
    pub fn from_process() -> EnvOptions {
        EnvOptions::parse(|name| std::env::var(name).ok())
    }
}

/// The call count after which a function is compiled, given the global threshold.
pub fn hot_after(threshold: u64, has_loop: bool) -> u64 {
    if has_loop {
        (threshold / LOOP_DIVISOR).max(1).min(threshold)
    } else {
        threshold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(vars: &[(&str, &str)]) -> EnvOptions {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        EnvOptions::parse(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn unset_is_default_mode_and_threshold() {
        let o = parse(&[]);
        assert_eq!(o.mode, Mode::Default);
        assert_eq!(o.threshold, DEFAULT_THRESHOLD);
        assert!(o.warnings.is_empty());
    }

    #[test]
    fn rjit_values() {
        assert_eq!(parse(&[("RJIT", "1")]).mode, Mode::Autoload);
        assert_eq!(parse(&[("RJIT", " On ")]).mode, Mode::Autoload);
        assert_eq!(parse(&[("RJIT", "0")]).mode, Mode::Off);
        assert_eq!(parse(&[("RJIT", "false")]).mode, Mode::Off);
        assert_eq!(parse(&[("RJIT", "")]).mode, Mode::Default);
        let odd = parse(&[("RJIT", "maybe")]);
        assert_eq!(odd.mode, Mode::Default);
        assert_eq!(odd.warnings.len(), 1);
        assert!(odd.warnings[0].contains("maybe"));
    }

    #[test]
    fn threshold_values() {
        assert_eq!(parse(&[("RJIT_THRESHOLD", "0")]).threshold, 0);
        assert_eq!(parse(&[("RJIT_THRESHOLD", " 17 ")]).threshold, 17);
        let huge = parse(&[("RJIT_THRESHOLD", "1000000000000000000000000000000")]);
        assert_eq!((huge.threshold, huge.warnings.len()), (u64::MAX, 0));
        for bad in ["abc", "-1", "1.5"] {
            let o = parse(&[("RJIT_THRESHOLD", bad)]);
            assert_eq!(o.threshold, DEFAULT_THRESHOLD, "{bad}");
            assert_eq!(o.warnings.len(), 1, "{bad}");
            assert!(o.warnings[0].contains("RJIT_THRESHOLD"));
        }
    }

    #[test]
    fn loops_are_hot_sooner() {
        assert_eq!(hot_after(200, false), 200);
        assert_eq!(hot_after(200, true), 4);
        assert_eq!(hot_after(10, true), 1);
        assert_eq!(hot_after(0, true), 0);
        assert_eq!(hot_after(0, false), 0);
    }
}

/// Whether compiled code is specialised on observed types (unboxed ints and floats, with
/// guards). On unless `RJIT_SPECIALIZE=0`; tests switch it to compare both tiers.
static SPECIALISE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(2);

/// Whether to specialise (see `SPECIALISE`).
pub fn specialise() -> bool {
    use std::sync::atomic::Ordering;
    match SPECIALISE.load(Ordering::Relaxed) {
        0 => false,
        1 => true,
        _ => {
            let on = std::env::var("RJIT_SPECIALIZE").map_or(true, |v| v.trim() != "0");
            SPECIALISE.store(u8::from(on), Ordering::Relaxed);
            on
        }
    }
}

/// Turns specialisation on or off (for tests and benchmarks comparing the tiers).
pub fn set_specialise(on: bool) {
    SPECIALISE.store(u8::from(on), std::sync::atomic::Ordering::Relaxed);
}

/// `RJIT_DUMP_CODE`: a directory to write each compiled function's machine code into (a
/// debugging aid), read once at import (see `lib.rs`: nothing reads the environment while
/// compiling).
static DUMP_CODE: once_cell::sync::OnceCell<Option<std::path::PathBuf>> = once_cell::sync::OnceCell::new();

/// The `RJIT_DUMP_CODE` directory, if set.
pub fn dump_code_dir() -> Option<&'static std::path::Path> {
    DUMP_CODE.get_or_init(|| std::env::var_os("RJIT_DUMP_CODE").map(std::path::PathBuf::from)).as_deref()
}
