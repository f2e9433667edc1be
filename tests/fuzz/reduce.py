"""Shrinks a saved fuzzer failure: drops calls, then source lines (a line with the block under
it, or one line alone), keeping each change that still fails the same way (a crash with the
same signal, or any difference), until nothing more can go.

    python3 tests/fuzz/reduce.py fuzz-failures/seed1-prog24.py [-o smaller.py]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run  # noqa: E402


def outcome(source, calls, threshold, timeout=30):
    """'crash:<rc>', 'diff', 'ok' or 'hang' for one program in a fresh child."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump([{"seed": 0, "index": 0, "source": source, "calls": calls, "threshold": threshold}], fh)
    try:
        proc = subprocess.run([sys.executable, os.path.join(HERE, "run.py"), "--worker", fh.name],
                              capture_output=True, text=True, timeout=timeout,
                              env={k: v for k, v in os.environ.items() if not k.startswith("RJIT")})
    except subprocess.TimeoutExpired:
        return "hang"
    finally:
        os.unlink(fh.name)
    if proc.returncode != 0:
        return f"crash:{proc.returncode}"
    if "\nDIFF 0 " in "\n" + proc.stdout:
        if "harness_error" in proc.stdout or "SyntaxError" in proc.stdout:
            return "broken"
        return "diff"
    return "ok"


def block_end(lines, i):
    indent = len(lines[i]) - len(lines[i].lstrip())
    j = i + 1
    while j < len(lines) and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent):
        j += 1
    return j


def reduce(source, calls, threshold):
    want = outcome(source, calls, threshold)
    print("failure:", want, file=sys.stderr)
    if want in ("ok", "broken"):
        return source, calls, want
    # Fewer calls.
    i = 0
    while i < len(calls) and len(calls) > 1:
        trial = calls[:i] + calls[i + 1:]
        if outcome(source, trial, threshold) == want:
            calls = trial
        else:
            i += 1
    # Fewer lines: blocks first, then single lines; repeat until stable.
    changed = True
    while changed:
        changed = False
        lines = source.split("\n")
        i = len(lines) - 1
        while i >= 0:
            lines = source.split("\n")
            if i >= len(lines) or not lines[i].strip() or lines[i].startswith(("import", "def ")):
                i -= 1
                continue
            for end in sorted({block_end(lines, i), i + 1}, reverse=True):
                trial = "\n".join(lines[:i] + lines[end:])
                try:
                    compile(trial, "<trial>", "exec")
                except SyntaxError:
                    continue
                if outcome(trial, calls, threshold) == want:
                    source = trial
                    changed = True
                    break
            i -= 1
    return source, calls, want


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file")
    ap.add_argument("-o", "--output")
    args = ap.parse_args()
    ns = {}
    with open(args.file) as fh:
        exec(compile(fh.read(), args.file, "exec"), ns)  # noqa: S102
    source, calls, want = reduce(ns["SOURCE"], ns["CALLS"], ns["THRESHOLD"])
    prog = run.gen.Program(ns["SEED"], ns["INDEX"], source, calls, ns["THRESHOLD"])
    print(f"# {want}; threshold={prog.threshold}\n{source}\n# calls: {calls}")
    if args.output:
        out_dir, name = os.path.split(os.path.abspath(args.output))
        path = run.save_failure(out_dir, prog, f"reduced: {want}", None)
        os.replace(path, os.path.join(out_dir, name))


if __name__ == "__main__":
    main()
