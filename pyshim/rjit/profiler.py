"""A sampling profiler that shows the hot functions and loops of a program together with what
rjit did to each: ``python -m rjit --profile script.py`` or

    with rjit.profile() as p:
        work()
    p.report()

How it measures. A timer signal (``setitimer``: wall clock by default, ``clock="cpu"`` for
process CPU time) interrupts the program every ``interval`` seconds; the handler records the
stack of the main thread (and of other threads, through ``sys._current_frames()``) as
(code object, current instruction) pairs. Compiled functions link their frames like the
interpreter does and record their current instruction before each call and at each loop's
back-edge (where they also serve signals), so their samples land in the right loop.

- A function's share is inclusive: the samples in which it is anywhere on the stack.
- A loop is a back-edge in the bytecode (``JUMP_BACKWARD``): its line range is that of the
  instructions between the jump's target and the jump. A loop's share of its function is the
  samples in which that function's frame stood inside the loop; the *hot loops* list ranks
  loops by the samples in which the loop was the innermost loop of the innermost frame that was
  in a loop (where the time was really spent).
- Iterations are **not** measured: counting them would mean tracing every back-edge, which
  costs far more than the 10% this profiler allows itself. The report gives samples instead;
  ``iterations`` is null in the JSON.
- Calls are rjit's own counts (``rjit.info(f).calls``: calls seen by its hook since it was
  enabled, so only with rjit on).
"""

from __future__ import annotations

import dis
import html
import json
import signal
import sys
import threading
import time
import types
from typing import Optional, TextIO

#: The frames recorded per sample, from the innermost out (deeper stacks are cut).
MAX_DEPTH = 256

#: The version of the JSON shape (README: "Profile JSON").
JSON_VERSION = 1


def loops_of(code: types.CodeType) -> list:
    """The loops of a code object as (start, end, first_line, last_line): byte offsets of the
    back-edge's target and of the back-edge itself, and the source lines between. Back-edges
    to the same target (``continue``) make one loop. Sorted by start, outer loops first."""
    instructions = list(dis.get_instructions(code))
    ends: dict = {}
    jumps = set(dis.hasjrel) | set(dis.hasjabs)
    for ins in instructions:
        # A back-edge: JUMP_BACKWARD, or 3.11's POP_JUMP_BACKWARD_IF_* closing a `while`.
        if ins.opcode in jumps and isinstance(ins.argval, int) and ins.argval <= ins.offset:
            ends[ins.argval] = max(ends.get(ins.argval, 0), ins.offset)
    loops = []
    for start, end in ends.items():
        lines = [i.positions.lineno for i in instructions
                 if start <= i.offset <= end and i.positions is not None and i.positions.lineno is not None]
        if lines:
            loops.append((start, end, min(lines), max(lines)))
    loops.sort(key=lambda l: (l[0], -l[1]))
    return loops


def _innermost(loops: list, offset: int) -> Optional[tuple]:
    """The innermost loop containing the instruction at `offset`."""
    best = None
    for loop in loops:
        if loop[0] <= offset <= loop[1] and (best is None or loop[1] - loop[0] < best[1] - best[0]):
            best = loop
    return best


class Profile:
    """Samples the program's stacks between ``start()`` and ``stop()`` (or in a ``with``)."""

    def __init__(self, interval: float = 0.002, clock: str = "wall"):
        if clock not in ("wall", "cpu"):
            raise ValueError(f"clock must be 'wall' or 'cpu', not {clock!r}")
        if not interval > 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval!r}")
        self.interval = float(interval)
        self.clock = clock
        #: (stack, count): a stack is a tuple of (code, f_lasti), innermost first.
        self.stacks: dict = {}
        self.samples = 0
        self.duration = 0.0
        self._started: Optional[float] = None
        self._root = None
        self._previous_handler = None
        self._main = threading.main_thread().ident

    # ---- sampling ----

    def _timer(self):
        return (signal.ITIMER_REAL, signal.SIGALRM) if self.clock == "wall" else (signal.ITIMER_PROF, signal.SIGPROF)

    def start(self) -> "Profile":
        """Starts sampling. Frames of the main thread above the caller of ``start`` (or of the
        ``with`` block) are not the profiled code's: samples stop at the caller."""
        return self._start(sys._getframe(1))

    def _start(self, root) -> "Profile":
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("rjit.profile() must be started in the main thread (it uses a timer signal)")
        if self._started is not None:
            raise RuntimeError("this profile is already running")
        which, signum = self._timer()
        self._root = root
        self._previous_handler = signal.signal(signum, self._sample)
        self._started = time.perf_counter()
        signal.setitimer(which, self.interval, self.interval)
        return self

    def stop(self) -> "Profile":
        if self._started is None:
            return self
        which, signum = self._timer()
        signal.setitimer(which, 0, 0)
        previous = self._previous_handler
        signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._root = None
        self.duration += time.perf_counter() - self._started
        self._started = None
        return self

    def __enter__(self) -> "Profile":
        return self._start(sys._getframe(1))

    def __exit__(self, *exc) -> None:
        self.stop()

    def _record(self, frame, root=None) -> None:
        stack = []
        seen = set()
        while frame is not None and len(stack) < MAX_DEPTH:
            code = frame.f_code
            if code not in seen:  # a recursive function counts once per sample
                seen.add(code)
                stack.append((code, frame.f_lasti))
            if frame is root:
                break
            frame = frame.f_back
        key = tuple(stack)
        self.stacks[key] = self.stacks.get(key, 0) + 1

    def _sample(self, signum, frame) -> None:
        """The timer's handler: `frame` is where the main thread was interrupted."""
        self.samples += 1
        self._record(frame, self._root)
        for ident, other in sys._current_frames().items():
            if ident != self._main:
                self._record(other)

    # ---- results ----

    def to_dict(self, top: int = 20) -> dict:
        """The results in the JSON shape documented in the README ("Profile JSON")."""
        import rjit

        total = max(sum(self.stacks.values()), 1)
        func_samples: dict = {}
        loop_samples: dict = {}
        loop_self: dict = {}
        loops_cache: dict = {}

        def loops(code):
            if code not in loops_cache:
                loops_cache[code] = loops_of(code)
            return loops_cache[code]

        for stack, count in self.stacks.items():
            innermost_done = False
            for code, lasti in stack:
                if _is_runner(code):  # the handler itself, interrupted by a later sample
                    continue
                func_samples[code] = func_samples.get(code, 0) + count
                code_loops = loops(code)
                for loop in code_loops:
                    if loop[0] <= lasti <= loop[1]:
                        loop_samples[(code, loop)] = loop_samples.get((code, loop), 0) + count
                if not innermost_done:
                    inner = _innermost(code_loops, lasti)
                    if inner is not None:
                        loop_self[(code, inner)] = loop_self.get((code, inner), 0) + count
                        innermost_done = True

        def where(code):
            return {"name": code.co_name, "qualname": code.co_qualname, "file": code.co_filename,
                    "line": code.co_firstlineno}

        functions = []
        for code, samples in sorted(func_samples.items(), key=lambda kv: -kv[1])[:top]:
            info = rjit.info(code)
            entry = where(code)
            entry.update(
                samples=samples,
                share=samples / total,
                calls=info.calls,
                native_calls=info.native_calls,
                interpreted_calls=info.interpreted_calls,
                compiled=info.compiled,
                state=info.state,
                reason=info.reason,
                side_exits=sum(info.side_exits.values()),
                loops=[
                    {"first_line": loop[2], "last_line": loop[3],
                     "samples": loop_samples.get((code, loop), 0),
                     "share": loop_samples.get((code, loop), 0) / total,
                     "share_of_function": loop_samples.get((code, loop), 0) / samples,
                     "self_samples": loop_self.get((code, loop), 0),
                     "iterations": None}
                    for loop in sorted(loops(code), key=lambda l: -loop_samples.get((code, l), 0))
                    if loop_samples.get((code, loop), 0)
                ],
            )
            functions.append(entry)
        hot_loops = []
        for (code, loop), samples in sorted(loop_self.items(), key=lambda kv: -kv[1])[:top]:
            entry = where(code)
            entry.update(first_line=loop[2], last_line=loop[3], self_samples=samples, share=samples / total,
                         compiled=rjit.info(code).compiled)
            hot_loops.append(entry)
        return {
            "version": JSON_VERSION,
            "clock": self.clock,
            "interval_s": self.interval,
            "duration_s": self.duration,
            "samples": sum(self.stacks.values()),
            "hot_loops": hot_loops,
            "functions": functions,
        }

    def report(self, file: Optional[TextIO] = None, top: int = 10) -> str:
        """Prints (to `file`, default stderr) and returns the table: the hottest loops first,
        then the hot functions with their loops."""
        data = self.to_dict(top=top)
        lines = [
            f"rjit profile: {data['duration_s']:.3f} s, {data['samples']} samples every "
            f"{data['interval_s'] * 1000:g} ms ({data['clock']} clock)"
        ]
        if not data["samples"]:
            lines.append("  no samples (the profiled code ran for less than one interval)")
        if data["hot_loops"]:
            lines.append("")
            lines.append("hot loops (where the time was spent; iterations are not measured: samples instead)")
            lines.append(f"  {'share':>6} {'samples':>8}  lines        function")
            for loop in data["hot_loops"]:
                span = f"lines {loop['first_line']}-{loop['last_line']}"
                state = "compiled" if loop["compiled"] else "interpreted"
                lines.append(f"  {loop['share']:>6.1%} {loop['self_samples']:>8}  {span:<12} "
                             f"{loop['qualname']} ({_short(loop['file'])}:{loop['line']}) [{state}]")
        if data["functions"]:
            lines.append("")
            lines.append("hot functions (share of samples with the function on the stack: inclusive)")
            lines.append(f"  {'share':>6} {'samples':>8} {'calls':>9}  function / rjit")
            for f in data["functions"]:
                lines.append(f"  {f['share']:>6.1%} {f['samples']:>8} {f['calls']:>9}  "
                             f"{f['qualname']} ({_short(f['file'])}:{f['line']})")
                lines.append(f"  {'':>6} {'':>8} {'':>9}    {_jit_status(f)}")
                for loop in f["loops"]:
                    lines.append(f"  {'':>6} {'':>8} {'':>9}    loop lines {loop['first_line']}-{loop['last_line']}: "
                                 f"{loop['share_of_function']:.0%} of the function ({loop['samples']} samples)")
        text = "\n".join(lines)
        print(text, file=file if file is not None else sys.stderr)
        return text

    def to_json(self, top: int = 20) -> str:
        return json.dumps(self.to_dict(top=top), indent=2)

    def write_json(self, path: str, top: int = 20) -> None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_json(top=top))

    def to_html(self, top: int = 20) -> str:
        """A self-contained page (inline CSS, no scripts or external resources) with a bar
        chart of the hot functions and, under each, its loops."""
        data = self.to_dict(top=top)
        rows = []
        for f in data["functions"]:
            status = html.escape(_jit_status(f))
            name = html.escape(f"{f['qualname']} ({_short(f['file'])}:{f['line']})")
            rows.append(
                f'<tr><td class="name">{name}<div class="why">{status}</div></td>'
                f'<td class="num">{f["share"]:.1%}</td><td class="num">{f["calls"]}</td>'
                f'<td class="chart"><div class="bar {"jit" if f["compiled"] else "interp"}" '
                f'style="width:{100 * f["share"]:.1f}%"></div></td></tr>'
            )
            for loop in f["loops"]:
                rows.append(
                    f'<tr class="loop"><td class="name">loop lines {loop["first_line"]}-{loop["last_line"]}</td>'
                    f'<td class="num">{loop["share"]:.1%}</td><td class="num"></td>'
                    f'<td class="chart"><div class="bar loopbar" style="width:{100 * loop["share"]:.1f}%"></div></td></tr>'
                )
        title = f"rjit profile: {data['duration_s']:.3f} s, {data['samples']} samples"
        return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ padding: 3px 8px; text-align: left; vertical-align: top; }}
tr.loop td {{ color: #555; font-size: 12px; }} tr.loop td.name {{ padding-left: 2em; }}
.num {{ text-align: right; white-space: nowrap; }} .chart {{ width: 40%; }}
.bar {{ height: 14px; min-width: 1px; }} .jit {{ background: #2a7; }} .interp {{ background: #d84; }}
.loopbar {{ background: #7ab; height: 8px; }} .why {{ color: #777; font-size: 12px; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Share is inclusive (samples with the function on the stack), {html.escape(data['clock'])} clock,
one sample every {data['interval_s'] * 1000:g} ms. Green: compiled by rjit; orange: interpreted.</p>
<table><tr><th>function</th><th class="num">share</th><th class="num">calls</th><th>time</th></tr>
{chr(10).join(rows)}
</table></body></html>
"""

    def write_html(self, path: str, top: int = 20) -> None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_html(top=top))


#: Files whose frames are the profiler's or the runner's (``python -m rjit``), not the program's.
_RUNNER_FILES = {__file__, __file__.rsplit("/", 1)[0] + "/__main__.py", "<frozen runpy>"}


def _is_runner(code: types.CodeType) -> bool:
    return code.co_filename in _RUNNER_FILES or code.co_filename.endswith("/runpy.py")


def _short(path: str) -> str:
    """The file name without its directory, for the table."""
    return path.rsplit("/", 1)[-1]


def _jit_status(f: dict) -> str:
    if f["compiled"]:
        text = f"compiled ({f['native_calls']} calls in machine code)"
        if f["side_exits"]:
            text += f", {f['side_exits']} side exits"
        return text
    if f["reason"]:
        return f"interpreted: {f['reason']}"
    return f"interpreted ({f['state']})"
