"""Seeing what rjit does (issue 6): ``rjit.info`` (specialisations, entry guards, side exits,
native vs interpreted calls, the construct that stops compilation), ``rjit.dis``,
``rjit.stats``, the sampling profiler (``rjit.profile``, ``python -m rjit --profile``), perf
maps (``RJIT_PERF_MAP``) and event logging (``RJIT_LOG``)."""

import gc
import html.parser
import importlib.util
import io
import json
import os
import re
import signal
import textwrap

import pytest

import rjit
from conftest import assert_ok, make_function, run_code, run_python


def load_module(tmp_path, source, name="observed"):
    """Imports ``source`` from a real file (so rjit.dis and the profiler can show its lines)."""
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Line 1 of each source is blank (after dedent): `def` is on line 2.
SCALE = """
    def scale(n, x):
        s = 0
        for i in range(n):
            s += i * x
        return s
"""

TAGGED = """
    def tagged(n, x, tag):
        s = 0
        for i in range(n):
            s += i * x
        return s, tag
"""

GROW = """
    def grow(n, x):
        for i in range(n):
            x = x * 3
        return x
"""

MATCHING = """
    def matching(a):
        total = len(a) if isinstance(a, tuple) else 0
        match a:
            case (1, 2): return 1
        return total
"""


def run_enabled(threshold, calls):
    """Runs ``calls()`` with rjit enabled at ``threshold``, then disables it."""
    rjit.enable(threshold=threshold)
    try:
        calls()
    finally:
        rjit.disable()


# ---------------------------------------------------------------------------------------------
# rjit.info


def test_info_lists_the_specialisation_and_its_entry_guards():
    f = make_function(TAGGED)
    run_enabled(0, lambda: f(10, 3, 7))
    info = rjit.info(f)
    assert info.compiled
    (spec,) = info.specializations
    assert spec.current and spec.specialised
    assert spec.arg_types == {"n": "int", "x": "int", "tag": "int"}
    # Only the arguments whose machine values the code uses are guarded (tag is only
    # returned, as the object it is).
    assert spec.entry_guards == {"n": "int", "x": "int"}
    assert spec.code_size == info.code_size > 0
    assert "entry guards: n: int, x: int" in str(info)


def test_side_exits_count_by_reason_and_line():
    f = make_function(GROW)

    def calls():
        assert f(3, 1) == 27
        # 3**40 overflows 64 bits at line 4's multiply: the interpreter redoes it and finishes.
        assert f(50, 1) == 3**50

    run_enabled(0, calls)
    info = rjit.info(f)
    spec = info.specializations[-1]
    by_reason = {(e.reason, e.line): e for e in spec.side_exits}
    overflow = by_reason[("int overflow (*)", 4)]
    assert overflow.count == 1
    assert overflow.offset > 0
    assert all(e.count == 0 for e in spec.side_exits if e is not overflow)
    assert info.side_exits == {("int overflow (*)", 4): 1}
    assert "1x  line 4: int overflow (*)" in str(info)


def test_entry_guard_exit_counts_calls_with_other_types():
    f = make_function(SCALE)

    def calls():
        f(10, 3)
        assert f(4, 0.5) == 3.0
        assert f(4, 0.5) == 3.0

    run_enabled(0, calls)
    ((reason, line), count), = rjit.info(f).side_exits.items()
    assert reason.startswith("entry guard: argument is not int")
    assert line == f.__code__.co_firstlineno
    assert count == 2


def test_native_and_interpreted_calls_add_up_to_calls():
    f = make_function(SCALE)
    rjit.enable(threshold=3)  # a function with a loop is hot sooner: hot_after says when
    try:
        hot_after = rjit.info(f).hot_after
        for _ in range(hot_after + 5):
            f(3, 2)
    finally:
        rjit.disable()
    info = rjit.info(f)
    assert info.compiled
    assert info.calls == hot_after + 5
    # The calls up to the hot limit ran in the interpreter; the one that crossed it compiled
    # the function and ran the machine code, like every call after it.
    assert info.interpreted_calls == hot_after
    assert info.native_calls == 5
    assert f"{info.native_calls} in machine code, {info.interpreted_calls} in the interpreter" in str(info)


def test_declined_reason_names_opcode_line_and_construct(tmp_path):
    module = load_module(tmp_path, MATCHING)
    run_enabled(0, lambda: module.matching((1, 2)))
    info = rjit.info(module.matching)
    assert info.state == "declined"
    assert info.reason.startswith("MATCH_SEQUENCE at offset")
    assert "(line 5)" in info.reason  # MATCH_SEQUENCE belongs to the `case` line
    assert "a `match` statement" in info.reason
    assert info.reason_opcode == "MATCH_SEQUENCE"
    assert info.reason_line == 5
    # str() quotes the source line.
    assert "line 5: case (1, 2): return 1" in str(info)


def test_info_of_an_uncompiled_function_has_no_versions():
    info = rjit.info(make_function(SCALE))
    assert info.specializations == ()
    assert info.side_exits == {}
    assert info.native_calls == info.interpreted_calls == 0


def test_a_despecialised_function_lists_both_versions():
    before = rjit.stats()["recompilations"]
    g = make_function(SCALE)

    def calls():
        g(3, 2)
        for _ in range(120):
            # Every call fails the entry guard: compiled again for (int, float), whose type
            # profile (ints seen first) then keeps failing: recompiled without speculation.
            g(3, 0.5)

    run_enabled(0, calls)
    info = rjit.info(g)
    versions = info.specializations
    assert len(versions) == 3
    first, second, last = versions
    assert first.current is False and first.specialised and first.entry_guards == {"n": "int", "x": "int"}
    assert second.current is False and second.specialised and second.entry_guards == {"n": "int", "x": "float"}
    assert last.current and not last.specialised and last.entry_guards == {}
    assert sum(e.count for e in first.side_exits) == 8
    assert sum(e.count for e in second.side_exits) >= 50
    assert "machine code (replaced): specialised" in str(info)
    assert rjit.stats()["recompilations"] == before + 2


# ---------------------------------------------------------------------------------------------
# rjit.dis


def dis_text(func) -> str:
    out = io.StringIO()
    rjit.dis(func, file=out)
    return out.getvalue()


def machine_blocks(text: str) -> dict:
    """The machine code section: each LIR block header -> the lines under it."""
    section = text.split("\n== machine code:", 1)[1]
    blocks, current = {}, None
    for line in section.splitlines()[1:]:
        if re.match(r"^L\d+\(", line):
            current = line
            blocks[current] = []
        elif current is not None and not line.startswith(" "):
            current = None  # slow paths, exit stubs, constants
        elif current is not None:
            blocks[current].append(line)
    return blocks


@pytest.fixture
def compiled_scale(tmp_path):
    module = load_module(tmp_path, SCALE)
    run_enabled(0, lambda: module.scale(10, 3))
    return module.scale


def test_dis_shows_every_stage_with_source_lines(compiled_scale):
    text = dis_text(compiled_scale)
    for title in ("== bytecode ==", "== HIR before specialisation", "== HIR after specialisation",
                  "== LIR ==", "== machine code:"):
        assert title in text, title
    assert "JUMP_BACKWARD" in text  # dis's bytecode
    assert "GuardType" in text and "IntMul" in text  # the specialised HIR
    assert "# line 5: s += i * x" in text
    assert "# line 4: for i in range(n):" in text
    assert "push    rbp" in text  # decoded machine instructions
    assert "disassembled with iced-x86" in text


def test_dis_has_machine_instructions_for_every_compiled_block(compiled_scale):
    text = dis_text(compiled_scale)
    blocks = machine_blocks(text)
    lir = text.split("== LIR ==", 1)[1].split("== machine code", 1)[0]
    assert len(blocks) == len(re.findall(r"^L\d+\(", lir, re.M)) > 3
    instruction = re.compile(r"^ {6}0x[0-9a-f]{4,}  [0-9a-f ]+ \S")
    with_code = 0
    for header, lines in blocks.items():
        has_code = any(instruction.match(l) for l in lines)
        # A block that only falls through to the next one emits no bytes; dis says so.
        assert has_code or "(no code: falls through)" in "\n".join(lines), header
        with_code += has_code
    assert with_code >= len(blocks) - 2


def test_dis_machine_code_adds_up_to_the_code_size(compiled_scale):
    machine = rjit._rjit.dis_data(compiled_scale.__code__)["machine"]
    assert machine["matches_lir"]
    assert machine["size"] == rjit.info(compiled_scale).code_size
    pieces = machine["pieces"]
    # The pieces tile the code, and every byte but the constants is decoded.
    assert pieces[0]["start"] == 0 and pieces[-1]["end"] == machine["size"]
    assert all(a["end"] == b["start"] for a, b in zip(pieces, pieces[1:]))
    decoded = sum(len(bytes.fromhex(h)) for p in pieces for _, h, _ in p["insts"])
    data_bytes = sum(p["end"] - p["start"] for p in pieces if p["kind"] == "data")
    assert decoded + data_bytes == machine["size"]
    assert not any("(bad)" in t for p in pieces for _, _, t in p["insts"])
    assert {"prologue", "block", "inst", "term", "exit", "data"} <= {p["kind"] for p in pieces}


INLINED = """
    def weight(i, j):
        return 1.0 / ((i + j) * (i + j + 1) // 2 + i + 1)

    def total(n):
        s = 0.0
        for i in range(n):
            for j in range(n):
                s += weight(i, j)
        return s
"""


def test_dis_rebuilds_the_ir_with_the_calls_the_compiler_inlined(tmp_path):
    # Compiled at its first call in whole-program mode, `total` inlines `weight` (which never
    # ran) and keeps `s` unboxed. The listing must show that code, not a version that calls
    # `weight` through the C API: the IR is rebuilt from the function's globals.
    module = load_module(tmp_path, INLINED, name="inlined_observed")
    run_enabled(0, lambda: module.total(30))
    assert rjit.info(module.total).compiled
    code = module.total.__code__
    with_globals = rjit._rjit.dis_data(code, module.total.__globals__, module.total.__builtins__)
    assert with_globals["machine"]["matches_lir"]
    lir = "\n".join(text for _, text in with_globals["lir"])
    assert "PyObject_Vectorcall" not in lir and "rjit_rt_inplace_add" not in lir
    assert "float.Div" in lir
    # From the code object alone the compiler cannot see `weight`: the call stays a call,
    # and the listing says the IR does not match the machine code block for block.
    alone = rjit._rjit.dis_data(code)
    assert not alone["machine"]["matches_lir"]
    assert "PyObject_Vectorcall" in "\n".join(text for _, text in alone["lir"])
    text = dis_text(module.total)
    assert "rebuilt without the calls the compiler inlined" not in text
    assert "rebuilt without the calls the compiler inlined" in dis_text(code)


HINTED = """
    class Holder:
        pass

    p = Holder()
    p.x = 1

    def f(n):
        s = 0
        for i in range(n):
            s = s + p.x
        return s
"""


def test_dis_rebuilds_the_ir_on_the_profile_the_compiler_had(tmp_path):
    # `s + p.x` is compiled on the interpreter's profile (int operands). When the interpreter
    # later sees floats there and respecialises its bytecode, dis must still list the code
    # that was compiled, not what the new profile would make.
    module = load_module(tmp_path, HINTED, name="hinted_observed")
    for _ in range(100):
        module.f(20)  # CPython specialises the addition on ints
    run_enabled(0, lambda: module.f(20))
    code, f = module.f.__code__, module.f
    assert rjit.info(f).compiled

    def listing():
        data = rjit._rjit.dis_data(code, f.__globals__, f.__builtins__)
        return data["final_hir"], data["lir"], data["machine"]["matches_lir"]

    before = listing()
    assert before[2]
    assert any("GuardType" in text and "Int" in text for _, text in before[0])
    module.p.x = 1.5
    for _ in range(100):
        module.f(20)  # rjit disabled: the interpreter respecialises the addition on floats
    assert listing() == before


def test_dis_of_a_declined_and_of_a_cold_function(tmp_path):
    module = load_module(tmp_path, MATCHING)
    run_enabled(0, lambda: module.matching(3))
    text = dis_text(module.matching)
    assert "declined" in text.splitlines()[0]
    assert "not compiled: MATCH_SEQUENCE" in text
    assert "== machine code" not in text
    text = dis_text(make_function(SCALE))
    assert "== HIR before specialisation" in text
    assert "none: the function is cold" in text


def test_dis_rejects_what_is_not_a_function():
    with pytest.raises(TypeError, match=r"rjit.dis\(\) expects a Python function"):
        rjit.dis(len)


# ---------------------------------------------------------------------------------------------
# rjit.stats


def test_stats_count_declines_by_opcode_and_deopts_by_reason():
    before = rjit.stats()
    f = make_function(GROW)
    g = make_function(MATCHING)

    def calls():
        f(3, 1)
        f(50, 1)
        g(0)

    run_enabled(0, calls)
    after = rjit.stats()
    assert after["declined_by_opcode"]["MATCH_SEQUENCE"] == before["declined_by_opcode"].get("MATCH_SEQUENCE", 0) + 1
    key = "int overflow (*)"
    assert after["deopts_by_reason"][key] == before["deopts_by_reason"].get(key, 0) + 1
    assert sum(after["deopts_by_reason"].values()) == after["deopts"]


def test_code_memory_in_use_is_the_live_machine_code():
    f = make_function(SCALE)
    run_enabled(0, lambda: f(3, 3))
    stats = rjit.stats()
    regions = rjit._rjit._code_regions()
    assert stats["code_memory_in_use"] == sum(size for _, size in regions)
    start, size = rjit._rjit._code_address(f.__code__)
    assert [start, size] in [list(r) for r in regions]
    before = stats["code_memory_in_use"]
    del f
    gc.collect()
    assert rjit.stats()["code_memory_in_use"] <= before - size
    assert start not in [r[0] for r in rjit._rjit._code_regions()]


# ---------------------------------------------------------------------------------------------
# The profiler

HOT_SCRIPT = """
    def setup(n):
        data = []
        for i in range(n):
            data.append(i % 7)
        return data

    def steps(n):
        count = 0
        while n != 1:
            if n % 2 == 0:
                n = n // 2
            else:
                n = 3 * n + 1
            count += 1
        return count

    def total(limit):
        t = 0
        for start in range(1, limit):
            t += steps(start * 1000003)
        return t

    setup(2000)
    print(total(LIMIT))
"""
# steps() is at line 8; its while loop spans lines 10-15.


def hot_script(tmp_path, limit=40000):
    path = tmp_path / "hot.py"
    path.write_text(textwrap.dedent(HOT_SCRIPT).replace("LIMIT", str(limit)))
    return path


def first_line_range(report: str) -> str:
    return re.search(r"lines (\d+-\d+)", report).group(1)


def _steps(n):
    count = 0
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        count += 1
    return count


def test_profile_report_names_the_hot_loop_first(tmp_path):
    proc = assert_ok(run_python("-m", "rjit", "--profile", str(hot_script(tmp_path))))
    assert proc.stdout.strip() == str(sum(_steps(s * 1000003) for s in range(1, 40000)))
    report = proc.stderr
    assert first_line_range(report) == "10-15", report
    assert "steps (hot.py:8)" in report
    assert "compiled" in report
    # Functions come with their loops; the runner's and the profiler's frames are not listed.
    assert "loop lines 10-15" in report
    for own in ("__main__.py", "runpy", "profiler.py"):
        assert own not in report


# The documented JSON shape (README, "Profile JSON"): key -> type; a list holds one shape.
NUMBER = (int, float)
OPTIONAL_STR = (str, type(None))
LOOP_SHAPE = {"first_line": int, "last_line": int, "samples": int, "share": NUMBER,
              "share_of_function": NUMBER, "self_samples": int, "iterations": type(None)}
FUNCTION_SHAPE = {"name": str, "qualname": str, "file": str, "line": int, "samples": int, "share": NUMBER,
                  "calls": int, "native_calls": int, "interpreted_calls": int, "compiled": bool, "state": str,
                  "reason": OPTIONAL_STR, "side_exits": int, "loops": [LOOP_SHAPE]}
HOT_LOOP_SHAPE = {"name": str, "qualname": str, "file": str, "line": int, "first_line": int, "last_line": int,
                  "self_samples": int, "share": NUMBER, "compiled": bool}
PROFILE_SHAPE = {"version": int, "clock": str, "interval_s": NUMBER, "duration_s": NUMBER, "samples": int,
                 "hot_loops": [HOT_LOOP_SHAPE], "functions": [FUNCTION_SHAPE]}


def validate(value, shape, where="$"):
    if isinstance(shape, dict):
        assert isinstance(value, dict), where
        assert set(value) == set(shape), f"{where}: keys {sorted(value)} != {sorted(shape)}"
        for key, sub in shape.items():
            validate(value[key], sub, f"{where}.{key}")
    elif isinstance(shape, list):
        assert isinstance(value, list), where
        for i, item in enumerate(value):
            validate(item, shape[0], f"{where}[{i}]")
    else:
        assert isinstance(value, shape) and not (shape is int and isinstance(value, bool)), f"{where}: {value!r}"


def test_validate_catches_a_wrong_shape():
    with pytest.raises(AssertionError):
        validate({"version": 1}, PROFILE_SHAPE)
    with pytest.raises(AssertionError):
        validate({"first_line": 1, "last_line": 2, "samples": "3", "share": 0.1, "share_of_function": 0.2,
                  "self_samples": 1, "iterations": None}, LOOP_SHAPE)


def test_profile_json_has_the_documented_shape(tmp_path):
    out = tmp_path / "profile.json"
    assert_ok(run_python("-m", "rjit", f"--profile-json={out}", str(hot_script(tmp_path))))
    data = json.loads(out.read_text())
    validate(data, PROFILE_SHAPE)
    assert data["version"] == 1 and data["clock"] == "wall"
    assert data["samples"] > 0
    assert (data["hot_loops"][0]["first_line"], data["hot_loops"][0]["last_line"]) == (10, 15)
    steps = next(f for f in data["functions"] if f["name"] == "steps")
    assert steps["compiled"] and steps["calls"] == 39999
    assert 0 < steps["share"] <= 1
    assert steps["loops"][0]["first_line"] == 10
    shares = [f["share"] for f in data["functions"]]
    assert shares == sorted(shares, reverse=True)


def test_profile_html_is_self_contained(tmp_path):
    out = tmp_path / "profile.html"
    proc = assert_ok(run_python("-m", "rjit", "--profile-html", str(out), str(hot_script(tmp_path))))
    assert "rjit profile" not in proc.stderr  # only --profile prints the table
    page = out.read_text()
    html.parser.HTMLParser().feed(page)
    assert page.startswith("<!DOCTYPE html>")
    assert "steps (hot.py:8)" in page
    assert 'class="bar jit"' in page
    assert "loop lines 10-15" in page
    for external in ("http://", "https://", "<script", "<link", "src="):
        assert external not in page


def test_profile_context_manager(tmp_path):
    source = textwrap.dedent(HOT_SCRIPT).replace("setup(2000)\n", "").replace("print(total(LIMIT))\n", "")
    module = load_module(tmp_path, source, name="hotmod")
    rjit.enable()
    try:
        with rjit.profile(interval=0.0005) as p:
            module.total(40000)
    finally:
        rjit.disable()
    assert p.samples > 0
    out = io.StringIO()
    text = p.report(file=out)
    assert out.getvalue().strip() == text
    assert first_line_range(text) == "10-15"
    names = [f["name"] for f in p.to_dict()["functions"]]
    # Samples stop at the frame holding the `with`: pytest's frames above it are not listed.
    assert set(names) == {"total", "steps", "test_profile_context_manager"}
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)  # the timer is off again


def test_profile_rejects_bad_arguments():
    with pytest.raises(ValueError):
        rjit.profile(interval=0)
    with pytest.raises(ValueError):
        rjit.profile(clock="gpu")


def test_profile_cli_reports_even_when_the_program_exits(tmp_path):
    script = tmp_path / "exits.py"
    script.write_text("import sys\nfor i in range(10**6):\n    pass\nsys.exit(3)\n")
    proc = run_python("-m", "rjit", "--profile", str(script))
    assert proc.returncode == 3
    assert "rjit profile:" in proc.stderr


def test_profile_cli_bad_option():
    proc = run_python("-m", "rjit", "--profile-bogus", "x.py")
    assert proc.returncode == 2
    assert "unknown option" in proc.stderr
    proc = run_python("-m", "rjit", "--profile-json")
    assert proc.returncode == 2
    assert "needs a file name" in proc.stderr


# ---------------------------------------------------------------------------------------------
# RJIT_PERF_MAP


def test_perf_map_entries_lie_in_rjits_code_memory():
    proc = assert_ok(run_code(
        """
        import json, os, rjit
        def a(n):
            return [n, n]
        def b(x, y):
            return x * y + 1
        def c(n):
            t = 0
            for i in range(n):
                t += i
            return t
        rjit.enable(threshold=0)
        a(3); b(2, 3); c(10)
        rjit.disable()
        compiled = {f.__qualname__: rjit._rjit._code_address(f.__code__) for f in (a, b, c)}
        print(json.dumps({"pid": os.getpid(), "path": rjit._rjit.perf_map_path(),
                          "regions": rjit._rjit._code_regions(), "compiled": compiled}))
        """,
        env={"RJIT_PERF_MAP": "1"},
    ))
    out = json.loads(proc.stdout)
    path = f"/tmp/perf-{out['pid']}.map"
    assert out["path"] == path
    try:
        entries = []
        with open(path) as f:
            for line in f:
                start, size, name = line.rstrip("\n").split(" ", 2)
                entries.append((int(start, 16), int(size, 16), name))
    finally:
        os.unlink(path)
    regions = out["regions"]
    inside = lambda start, size: any(r0 <= start and start + size <= r0 + rlen for r0, rlen in regions)
    assert len(entries) >= 3
    for start, size, name in entries:
        assert name.startswith("rjit:") and size > 0
        assert inside(start, size), (hex(start), size, name)
    for qualname, address in out["compiled"].items():
        assert address is not None, qualname
        mine = [(s, n) for s, n, name in entries if name.startswith(f"rjit:{qualname} (<string>:")]
        assert tuple(address) in mine, qualname
        assert inside(*address)


def test_no_perf_map_without_the_variable():
    proc = assert_ok(run_code(
        """
        import os, rjit
        def b(x):
            return x + 1
        rjit.enable(threshold=0); b(1); rjit.disable()
        print(os.getpid(), rjit._rjit.perf_map_path())
        """
    ))
    pid, path = proc.stdout.split()
    assert path == "None"
    assert not os.path.exists(f"/tmp/perf-{pid}.map")


# ---------------------------------------------------------------------------------------------
# RJIT_LOG

LOGGED = """
    import rjit
    def grow(n, x):
        for i in range(n):
            x = x * 3
        return x
    def matching(a):
        match a:
            case (1, 2): return 1
        return 0
    rjit.enable(threshold=0)
    grow(50, 1)
    matching(0)
    rjit.disable()
"""

LOG_LINE = re.compile(r"^\[rjit \+(\d+\.\d{4})s\] (compile|deopt|decline) (\S+) \((.+):(\d+)\): (.+)$")


def log_lines(stderr):
    return [LOG_LINE.match(l).groups() for l in stderr.splitlines() if l.startswith("[rjit")]


def test_log_prints_one_line_per_event():
    proc = assert_ok(run_code(LOGGED, env={"RJIT_LOG": "compile,deopt,decline"}))
    lines = [l for l in log_lines(proc.stderr) if l[3] == "<string>"]
    events = {(kind, func): (line, message) for _, kind, func, _, line, message in lines}
    assert len(events) == len(lines) == 3, lines
    line, message = events[("compile", "grow")]
    assert line == "3"
    assert re.match(r"\d+ bytes in \d+\.\d us, specialised for n: int, x: int$", message), message
    assert events[("deopt", "grow")] == ("5", "int overflow (*)")
    line, message = events[("decline", "matching")]
    assert line == "9"
    assert message.startswith("MATCH_SEQUENCE at offset") and "a `match` statement" in message
    times = [float(t) for t, *_ in lines]
    assert times == sorted(times)


def test_log_categories_are_separate_and_off_by_default():
    only = assert_ok(run_code(LOGGED, env={"RJIT_LOG": "deopt"}))
    assert {kind for _, kind, *_ in log_lines(only.stderr)} == {"deopt"}
    off = assert_ok(run_code(LOGGED))
    assert "[rjit" not in off.stderr


def test_log_warns_about_unknown_categories():
    proc = assert_ok(run_code("import rjit", env={"RJIT_LOG": "compile,everything"}))
    assert 'RJIT_LOG: unknown category "everything" ignored' in proc.stderr
