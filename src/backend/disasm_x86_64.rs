//! x86-64 disassembly for `rjit.dis`, with iced-x86 (decoder and Intel formatter only).

use iced_x86::{Decoder, DecoderOptions, Formatter, Instruction, IntelFormatter};

use super::MachineInst;

/// Decodes `bytes`, which sit at `address` (so relative jumps and calls print their absolute
/// targets). Bytes that are not an instruction come out as `(bad)`, one byte each.
pub fn decode(bytes: &[u8], address: u64) -> Vec<MachineInst> {
    let mut decoder = Decoder::with_ip(64, bytes, address, DecoderOptions::NONE);
    let mut formatter = IntelFormatter::new();
    formatter.options_mut().set_hex_prefix("0x");
    formatter.options_mut().set_hex_suffix("");
    formatter.options_mut().set_first_operand_char_index(8);
    formatter.options_mut().set_space_after_operand_separator(true);
    formatter.options_mut().set_branch_leading_zeros(false);
    formatter.options_mut().set_uppercase_hex(false);
    let mut instruction = Instruction::default();
    let mut out = Vec::new();
    while decoder.can_decode() {
        let offset = (decoder.ip() - address) as usize;
        decoder.decode_out(&mut instruction);
        let mut text = String::new();
        if instruction.is_invalid() {
            text.push_str("(bad)");
        } else {
            formatter.format(&instruction, &mut text);
        }
        let len = ((decoder.ip() - address) as usize - offset).max(1);
        out.push(MachineInst { offset: offset as u32, bytes: bytes[offset..offset + len].to_vec(), text });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_prologue() {
        // push rbp; mov rbp, rsp; ret
        let insts = decode(&[0x55, 0x48, 0x89, 0xe5, 0xc3], 0x1000);
        let texts: Vec<&str> = insts.iter().map(|i| i.text.as_str()).collect();
        assert_eq!(texts, ["push    rbp", "mov     rbp, rsp", "ret"]);
        assert_eq!(insts[1].offset, 1);
        assert_eq!(insts[1].bytes, [0x48, 0x89, 0xe5]);
    }

    #[test]
    fn relative_calls_print_absolute_targets() {
        // call +0 (the next instruction) at 0x2000: target 0x2005
        let insts = decode(&[0xe8, 0, 0, 0, 0], 0x2000);
        assert_eq!(insts[0].text, "call    0x2005");
    }
}
