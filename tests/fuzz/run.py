"""rjit's differential fuzzer: random programs (gen.py), each run plain and under rjit in the
same child process; any difference in return value (exact type and repr; arrays by dtype,
shape and bytes), in the arguments after the call (arrays mutate), or in the exception (type,
message, the program's traceback lines) is a failure, and so is a crash or a hang of the child.

    python3 tests/fuzz/run.py --seed 1 --count 2000          # what CI runs (tests/python/test_fuzz.py)
    python3 tests/fuzz/run.py --seed 7 --minutes 60           # a long run: new programs for an hour
    python3 tests/fuzz/run.py --seed 7 --only 1234            # one program again
    python3 tests/fuzz/run.py --replay fuzz-failures/seed7-prog1234.py

Programs run in batches in child processes (``--jobs`` at once); a child that dies (a signal,
a non-zero exit) or stops making progress for ``--timeout`` seconds is replaced, and the
program it was running is reported and saved, as is every program whose outcomes differ, as a
self-contained script in ``--out`` (default ./fuzz-failures) that ``--replay`` runs again.
Exit status: 0 when every program agreed, 1 otherwise. ``--json FILE`` writes the totals.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import queue
import subprocess
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import gen  # noqa: E402

# ------------------------------------------------------------------------------------ child side


def _normalize(value, depth=0):
    """A comparable, printable description of a value: exact type and repr; arrays by dtype,
    shape and raw bytes (so -0.0 and NaN payloads count); containers element by element."""
    import numpy as np

    if depth > 4:
        return ("deep", type(value).__qualname__)
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:  # its bytes are pointers: compare the objects
            return ("ndarray", value.dtype.str, value.shape, [_normalize(v, depth + 1) for v in value.ravel()])
        return ("ndarray", value.dtype.str, value.shape, value.tobytes().hex())
    if isinstance(value, (tuple, list)):
        return (type(value).__qualname__, [_normalize(v, depth + 1) for v in value])
    if isinstance(value, float):
        return ("float", value.hex() if value == value else "nan")
    return (type(value).__module__ + "." + type(value).__qualname__, repr(value))


def _outcome(func, args, filename):
    try:
        result = func(*args)
    except Exception as exc:  # noqa: BLE001 - the exception is the outcome
        lines = [(f.name, f.lineno) for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
        context = type(exc.__context__).__qualname__ if exc.__context__ is not None else None
        return {"raise": type(exc).__qualname__, "message": str(exc), "lines": lines, "context": context,
                "args_after": _normalize(list(args))}
    return {"value": _normalize(result), "args_after": _normalize(list(args))}


def _eval_args(call, env):
    return [eval(arg, env) for arg in call]  # noqa: S307 - our own generated argument text


def check_program(source, calls, threshold, name):
    """Runs the program's calls plain, then under rjit (fresh code objects), and returns the
    list of differences (empty when the two agree)."""
    import math
    import warnings

    import numpy as np

    import rjit

    env = {"np": np, "math": math}
    outcomes = {}
    for mode in ("plain", "rjit"):
        filename = f"<fuzz-{name}-{mode}>"
        namespace = {"__name__": f"fuzz_{mode}"}
        exec(compile(source, filename, "exec"), namespace)  # noqa: S102
        f = namespace["f"]
        results = []
        with warnings.catch_warnings():
            # NumPy's overflow and invalid-value warnings become exceptions: deterministic,
            # and compared like any other exception.
            warnings.simplefilter("error")
            for call in calls:
                args = _eval_args(call, env)
                if mode == "rjit":
                    rjit.enable(threshold=threshold)
                try:
                    results.append(_outcome(f, args, filename))
                finally:
                    if mode == "rjit":
                        rjit.disable()
        outcomes[mode] = results
    diffs = []
    for k, (plain, jitted) in enumerate(zip(outcomes["plain"], outcomes["rjit"])):
        if plain != jitted:
            diffs.append({"call": k, "args": calls[k], "plain": plain, "rjit": jitted})
    return diffs


def worker(batch_file):
    """Child process: runs each program of the batch, printing START/OK/DIFF lines."""
    import rjit

    # Programs make ints of any size; their reprs are compared (and printed in messages).
    sys.set_int_max_str_digits(0)
    with open(batch_file) as fh:
        batch = json.load(fh)
    compiled_before = rjit.stats().get("compiled", 0)
    for prog in batch:
        print("START", prog["index"], flush=True)
        try:
            diffs = check_program(prog["source"], prog["calls"], prog["threshold"], f"{prog['seed']}-{prog['index']}")
        except Exception:  # noqa: BLE001 - a harness error is a failure to report, not a crash
            diffs = [{"harness_error": traceback.format_exc()}]
        if diffs:
            print("DIFF", prog["index"], json.dumps(diffs, default=repr), flush=True)
        else:
            print("OK", prog["index"], flush=True)
    stats = rjit.stats()
    print("STATS", json.dumps({"compiled": stats.get("compiled", 0) - compiled_before,
                               "deopts": sum(stats.get("deopts_by_reason", {}).values())}), flush=True)


# ----------------------------------------------------------------------------------- parent side

REPRO_TEMPLATE = '''"""rjit fuzzer failure {name}: {why}

Replay: python3 tests/fuzz/run.py --replay THIS_FILE   (or: --seed {seed} --only {index})
"""
SEED = {seed}
INDEX = {index}
THRESHOLD = {threshold}
CALLS = {calls!r}
DETAIL = {detail!r}
SOURCE = {source!r}

if __name__ == "__main__":
    import os, sys
    sys.path.insert(0, {here!r})
    import run
    sys.exit(run.replay(__file__))
'''


def save_failure(out_dir, prog, why, detail):
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"{prog.name()}.py")
    with open(path, "w") as fh:
        fh.write(REPRO_TEMPLATE.format(name=prog.name(), why=why, seed=prog.seed, index=prog.index,
                                       threshold=prog.threshold, calls=prog.calls, detail=detail,
                                       source=prog.source, here=HERE))
    return path


def run_batch(programs, timeout, tmp_dir, child_env=None):
    """Runs programs in child processes until all have an outcome. Returns (results, stats):
    results maps index -> ("ok" | "diff" | "crash" | "hang", detail)."""
    results = {}
    stats = {"compiled": 0, "deopts": 0, "children": 0}
    pending = list(programs)
    while pending:
        batch_file = os.path.join(tmp_dir, f"batch-{pending[0].seed}-{pending[0].index}-{os.getpid()}-{threading.get_ident()}.json")
        with open(batch_file, "w") as fh:
            json.dump([{"seed": p.seed, "index": p.index, "source": p.source, "calls": p.calls,
                        "threshold": p.threshold} for p in pending], fh)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RJIT")}
        env["PYTHONHASHSEED"] = "0"
        env.update(child_env or {})
        proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", batch_file],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_dir)
        stats["children"] += 1
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout] + [lines.put(None)],
                         daemon=True).start()
        stderr_chunks = []
        threading.Thread(target=lambda: stderr_chunks.append(proc.stderr.read()), daemon=True).start()
        current = None
        hung = False
        while True:
            try:
                line = lines.get(timeout=timeout)
            except queue.Empty:
                hung = True
                proc.kill()
                break
            if line is None:
                break
            word, _, rest = line.rstrip("\n").partition(" ")
            if word == "START":
                current = int(rest)
            elif word == "OK":
                results[int(rest)] = ("ok", None)
                current = None
            elif word == "DIFF":
                index, _, detail = rest.partition(" ")
                results[int(index)] = ("diff", json.loads(detail))
                current = None
            elif word == "STATS":
                child = json.loads(rest)
                stats["compiled"] += child["compiled"]
                stats["deopts"] += child["deopts"]
        proc.wait()
        os.unlink(batch_file)
        stderr = "".join(stderr_chunks)[-4000:]
        if current is not None:
            if hung:
                results[current] = ("hang", f"no progress for {timeout} s")
            else:
                results[current] = ("crash", f"child exit status {proc.returncode}\n{stderr}")
        elif proc.returncode != 0 and not hung:
            # Died after its last program (at exit: a crash in finalisation).
            for p in pending:
                results.setdefault(p.index, ("crash", f"child exit status {proc.returncode} at exit\n{stderr}"))
        pending = [p for p in pending if p.index not in results]
    return results, stats


def fuzz(seed, indices, jobs, batch_size, timeout, out_dir, deadline=None, log=print, child_env=None):
    import tempfile

    t0 = time.time()
    totals = {"seed": seed, "programs": 0, "calls": 0, "ok": 0, "diff": 0, "crash": 0, "hang": 0,
              "compiled": 0, "deopts": 0, "children": 0, "failures": []}
    lock = threading.Lock()
    with tempfile.TemporaryDirectory(prefix="rjit-fuzz-") as tmp_dir:

        def one(chunk):
            programs = [gen.generate(seed, i) for i in chunk]
            results, stats = run_batch(programs, timeout, tmp_dir, child_env)
            with lock:
                for p in programs:
                    kind, detail = results[p.index]
                    totals["programs"] += 1
                    totals["calls"] += len(p.calls)
                    totals[kind] += 1
                    if kind != "ok":
                        path = save_failure(out_dir, p, kind, detail)
                        totals["failures"].append({"program": p.name(), "kind": kind, "file": path})
                        log(f"FAIL {kind}: {p.name()} saved to {path}\n{json.dumps(detail, default=repr)[:3000]}")
                for key in ("compiled", "deopts", "children"):
                    totals[key] += stats[key]

        def chunks():
            it = iter(indices)
            while deadline is None or time.time() < deadline:
                chunk = [i for _, i in zip(range(batch_size), it)]
                if not chunk:
                    return
                yield chunk

        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            running = set()
            for chunk in chunks():
                running.add(pool.submit(one, chunk))
                if len(running) >= 2 * jobs:
                    done, running = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
                    for fut in done:
                        fut.result()
            for fut in running:
                fut.result()
    totals["seconds"] = round(time.time() - t0, 1)
    return totals


def replay(path):
    namespace = {}
    with open(path) as fh:
        exec(compile(fh.read(), path, "exec"), namespace)  # noqa: S102
    prog = gen.Program(namespace["SEED"], namespace["INDEX"], namespace["SOURCE"], namespace["CALLS"],
                       namespace["THRESHOLD"])
    print(prog.source)
    sys.set_int_max_str_digits(0)
    diffs = check_program(prog.source, prog.calls, prog.threshold, prog.name())
    for d in diffs:
        print(json.dumps(d, indent=1, default=repr))
    print("differences:", len(diffs))
    return 1 if diffs else 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=2000, help="programs to run (default 2000)")
    ap.add_argument("--start", type=int, default=0, help="first program index")
    ap.add_argument("--minutes", type=float, default=None,
                    help="long run: keep generating programs (from --start on) for this long; ignores --count")
    ap.add_argument("--only", type=int, action="append", help="run only this program index (repeatable)")
    ap.add_argument("--jobs", type=int, default=2, help="child processes at once (default 2)")
    ap.add_argument("--batch", type=int, default=100, help="programs per child process (default 100)")
    ap.add_argument("--timeout", type=float, default=60, help="seconds without progress before a child counts as hung")
    ap.add_argument("--out", default="fuzz-failures", help="where failing programs are saved")
    ap.add_argument("--json", help="write the totals to this file")
    ap.add_argument("--show", action="store_true", help="print the programs' source instead of running them")
    ap.add_argument("--replay", help="rerun a saved failure")
    ap.add_argument("--generic", action="store_true",
                    help="compile without type specialisation (RJIT_SPECIALIZE=0: the generic tier only)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker)
        return 0
    if args.replay:
        return replay(args.replay)
    if args.only:
        indices = args.only
    elif args.minutes is not None:
        indices = iter(range(args.start, 2**62))
    else:
        indices = range(args.start, args.start + args.count)
    if args.show:
        for i in indices:
            p = gen.generate(args.seed, i)
            print(f"# {p.name()} threshold={p.threshold}\n{p.source}# calls: {p.calls}\n")
        return 0
    deadline = time.time() + args.minutes * 60 if args.minutes is not None else None
    child_env = {"RJIT_SPECIALIZE": "0"} if args.generic else {}
    totals = fuzz(args.seed, indices, args.jobs, args.batch, args.timeout, args.out, deadline, child_env=child_env)
    print("rjit fuzz: seed {seed}: {programs} programs, {calls} calls, {compiled} functions compiled, "
          "{deopts} deopts; ok {ok}, differ {diff}, crash {crash}, hang {hang}; {seconds} s "
          "({children} child processes)".format(**totals))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(totals, fh, indent=1)
    failed = totals["diff"] + totals["crash"] + totals["hang"]
    return 1 if failed or totals["programs"] == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
