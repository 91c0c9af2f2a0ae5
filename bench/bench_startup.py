"""CLI start-up: `precaution --version` (budget < 0.1 s, issue 8 "Keep") and `precaution scan --help`, against
the bare interpreter in the same run. tests/test_cli_imports.py keeps heavy modules out of these paths (no
timing in tests); this measures them."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

TITLE = "CLI start-up: precaution --version and scan --help"
RUNS = 21
BUDGET_VERSION_S = 0.1


def _time(argv: list[str]) -> list[float]:
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)  # warm caches
    out = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        out.append(time.perf_counter() - t0)
    return out


def _modules(args: list[str]) -> int:
    code = ("import sys; from agent.cli.main import main\ntry: main(" + repr(args) + ")\n"
            "except SystemExit: pass\nsys.stderr.write(str(len(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    return int(proc.stderr.strip().splitlines()[-1])


def run() -> str:
    precaution = str(Path(sys.executable).parent / "precaution")
    load_start = os.getloadavg()[0]
    rows = [
        ("`python -c pass` (the interpreter alone, reference)", [sys.executable, "-c", "pass"], None),
        ("`precaution --version`", [precaution, "--version"], ["--version"]),
        ("`precaution scan --help`", [precaution, "scan", "--help"], ["scan", "--help"]),
    ]
    results = [(label, _time(argv), _modules(args) if args else None) for label, argv, args in rows]
    bare = statistics.median(results[0][1])
    bare_min = min(results[0][1])
    lines = ["| command | median | min | max | vs interpreter alone (median; min) | modules loaded |",
             "|---|---|---|---|---|---|"]
    for label, series, mods in results:
        med = statistics.median(series)
        lines.append(f"| {label} | {med * 1000:.0f} ms | {min(series) * 1000:.0f} ms | {max(series) * 1000:.0f} ms "
                     f"| {med / bare:.2f}x; {min(series) / bare_min:.2f}x | {mods if mods is not None else '-'} |")
    version = statistics.median(results[1][1])
    verdict = "pass" if version < BUDGET_VERSION_S else "FAIL"
    lines += [
        "",
        f"{RUNS} runs each after one warm-up, console script as installed (editable install: its import hook is "
        f"part of the start-up). Load average (1 min, {os.cpu_count()} cores) at the start: {load_start:.1f}, at "
        f"the end: {os.getloadavg()[0]:.1f}; the interpreter row is the reference measured in the same run.",
        "",
        f"Budget: `precaution --version` < {BUDGET_VERSION_S:.1f} s: **{verdict}** ({version * 1000:.0f} ms; "
        f"{(version - bare) * 1000:+.0f} ms against the bare interpreter's median, "
        f"{(min(results[1][1]) - bare_min) * 1000:+.0f} ms against its best run).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
