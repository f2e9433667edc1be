"""``rjit.dis``'s text: the bytecode (``dis``), the HIR before and after type specialisation,
the LIR and the machine code, each with the source lines it comes from between its lines.

The native side (``_rjit.dis_data``) gives every IR line with the bytecode instruction (code
unit) it comes from, and the machine code cut into pieces at the places the backend marked
(block starts, LIR instructions, exit stubs); this module only lays them out.
"""

from __future__ import annotations

import dis as _dis
import io
import linecache
import platform
import types
from typing import Iterable, Optional

from . import _rjit

#: The disassembler behind the machine code section, by architecture.
DISASSEMBLER = {"x86_64": "iced-x86", "AMD64": "iced-x86"}.get(platform.machine(), "none yet (raw words)")


def unit_lines(code: types.CodeType) -> list:
    """The source line of each code unit (None where it has none)."""
    return [pos[0] for pos in code.co_positions()]


class _SourceMarks:
    """Writes a `# line N: source` header whenever the line of the next item changes."""

    def __init__(self, code: types.CodeType, out: io.StringIO, indent: str):
        self.lines = unit_lines(code)
        self.filename = code.co_filename
        self.out = out
        self.indent = indent
        self.current: Optional[int] = None

    def line_of(self, unit: Optional[int]) -> Optional[int]:
        if unit is None or not 0 <= unit < len(self.lines):
            return None
        return self.lines[unit]

    def before(self, unit: Optional[int]) -> None:
        line = self.line_of(unit)
        if line is None or line == self.current:
            return
        self.current = line
        source = linecache.getline(self.filename, line).strip()
        self.out.write(f"{self.indent}# line {line}: {source}\n")


def _ir_section(out: io.StringIO, code: types.CodeType, title: str, lines: Iterable) -> None:
    out.write(f"\n== {title} ==\n")
    marks = _SourceMarks(code, out, "")
    for unit, text in lines:
        marks.before(unit)
        out.write(f"{text}\n")


def _machine_section(out: io.StringIO, code: types.CodeType, machine: dict) -> None:
    out.write(
        f"\n== machine code: {machine['size']} bytes at {machine['address']:#x} "
        f"({platform.machine()}, disassembled with {DISASSEMBLER}) ==\n"
    )
    if not machine["matches_lir"]:
        out.write("(the IR above is rebuilt without the calls the compiler inlined into this code, so it\n"
                  " does not match the machine code block for block: pieces are labelled by position)\n")
    marks = _SourceMarks(code, out, "    ")
    for piece in machine["pieces"]:
        kind = piece["kind"]
        if kind == "block":
            marks.current = None  # restate the line at each block
            out.write(f"{piece['label']}\n")
            if piece["end"] == piece["start"] and not _block_has_code(machine, piece["block"]):
                out.write("    (no code: falls through)\n")
            continue
        if kind in ("inst", "term"):
            marks.before(piece["unit"])
            out.write(f"  {piece['label']}\n")
        else:
            marks.current = None
            out.write(f"{piece['label']}\n")
        for offset, hexbytes, text in piece["insts"]:
            out.write(f"      {offset:#06x}  {hexbytes:<30} {text}\n")


def _block_has_code(machine: dict, block: int) -> bool:
    return any(p["block"] == block and p["insts"] for p in machine["pieces"])


def render(code: types.CodeType, func: Optional[types.FunctionType] = None) -> str:
    """The whole listing for a code object; with its function, the IR is rebuilt with the
    calls the compiler inlined (from the function's globals and builtins)."""
    if func is not None:
        data = _rjit.dis_data(code, func.__globals__, func.__builtins__)
    else:
        data = _rjit.dis_data(code)
    info = _rjit.code_info(code)
    out = io.StringIO()
    out.write(f"{code.co_qualname} ({code.co_filename}:{code.co_firstlineno}): {info['state']}")
    if info["reason"]:
        out.write(f": {info['reason']}")
    if info["code_size"] is not None:
        out.write(f"; {info['code_size']} bytes of machine code")
    out.write("\n\n== bytecode ==\n")
    _dis.dis(code, file=out, depth=0)
    if data["error"] is not None:
        out.write(f"\n== HIR ==\nnot compiled: {data['error']}\n")
        return out.getvalue()
    _ir_section(out, code, "HIR before specialisation (generic: C API calls on objects)", data["generic_hir"])
    if data["specialised"]:
        _ir_section(out, code, "HIR after specialisation (guards, unboxed machine values)", data["final_hir"])
    else:
        out.write("\n== HIR after specialisation ==\n(not specialised: the generic HIR is compiled as it is)\n")
    _ir_section(out, code, "LIR", data["lir"])
    if data["machine"] is None:
        out.write(f"\n== machine code ==\nnone: the function is {info['state']}\n")
    else:
        _machine_section(out, code, data["machine"])
    return out.getvalue()
