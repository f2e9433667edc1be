//! Machine code generation. Nothing outside this module (and the code buffer) knows the target
//! architecture: `current` is the backend for the architecture rjit is built for.

#[cfg(target_arch = "x86_64")]
pub mod x86_64;

#[cfg(target_arch = "x86_64")]
pub use self::x86_64 as current;
