//! Machine code generation. Nothing outside this module (and the code buffer) knows the target
//! architecture: `current` is the backend for the architecture rjit is built for.

#[cfg(target_arch = "x86_64")]
pub mod x86_64;

#[cfg(target_arch = "x86_64")]
pub use self::x86_64 as current;

#[cfg(target_arch = "x86_64")]
mod disasm_x86_64;
#[cfg(target_arch = "x86_64")]
pub use self::disasm_x86_64::decode as disassemble;

/// One machine instruction of a disassembly (`rjit.dis`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineInst {
    /// Byte offset from the start of the bytes decoded.
    pub offset: u32,
    pub bytes: Vec<u8>,
    /// The instruction in the target's assembly syntax.
    pub text: String,
}

/// AArch64 has no disassembler wired in yet: each 32-bit word is shown as `.word`, so `rjit.dis`
/// works (with raw words) the day an AArch64 backend lands; a decoder such as yaxpeax-arm
/// slots in here, with the same signature as `disasm_x86_64::decode`.
#[cfg(target_arch = "aarch64")]
pub fn disassemble(bytes: &[u8], _address: u64) -> Vec<MachineInst> {
    bytes
        .chunks(4)
        .enumerate()
        .map(|(i, word)| {
            let mut w = [0u8; 4];
            w[..word.len()].copy_from_slice(word);
            MachineInst {
                offset: 4 * i as u32,
                bytes: word.to_vec(),
                text: format!(".word {:#010x}  (no AArch64 disassembler yet)", u32::from_le_bytes(w)),
            }
        })
        .collect()
}

/// A place in a function's machine code, recorded by the backend while it emits (byte offsets
/// from the entry), so `rjit.dis` can show each LIR block's machine instructions under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// LIR block `n` (layout order) starts.
    Block(u32),
    /// Instruction `inst` of LIR block `block` starts.
    Inst { block: u32, inst: u32 },
    /// The terminator of LIR block `n` (with a compare fused into it) starts.
    Term(u32),
    /// The out-of-line slow paths start.
    SlowPaths,
    /// The stub of exit `n` starts.
    ExitStub(u32),
    /// Data (float constants, strings) starts: not instructions.
    Data,
}
