"""Full local self-inspection: `precaution scan` wall time and peak RSS against `lynis audit system --quick`.

Both run on this machine as the user runs them (console script / lynis, output to /dev/null). precaution: one
warm-up run, then the median of RUNS warm runs. Lynis takes minutes per run, so it runs LYNIS_RUNS times, right
after precaution's runs have warmed the page cache. Peak RSS comes from GNU time (-v, the child's ru_maxrss);
for Lynis, a shell script, that is the largest single process it ran, not the sum of its children.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

TITLE = "Full local self-inspection (precaution scan vs Lynis quick audit)"
RUNS = 5
LYNIS_RUNS = 1
BUDGET_WALL_S = 1.0  # issue 8 "Keep": precaution scan <= 1 s, <= 60 MB peak RSS on this machine
BUDGET_RSS_MB = 60.0
GNU_TIME = "/usr/bin/time"
# A checkout of the tree before a change (e.g. `git archive BASE | tar -x -C DIR`): its `precaution scan` is
# measured in the same run, from the same venv, with the editable install bypassed (python -S).
BEFORE_ENV = "PRECAUTION_BENCH_BEFORE"


@dataclass(frozen=True, slots=True)
class Sample:
    wall_s: float
    rss_mb: float
    returncode: int


def measure(argv: list[str], env: dict[str, str]) -> Sample:
    """Wall time by the clock around the child; peak RSS from GNU time, or by polling when it is absent."""
    if os.path.exists(GNU_TIME):
        with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
            started = time.perf_counter()
            proc = subprocess.run([GNU_TIME, "-v", "-o", report.name, *argv], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env, check=False)
            wall = time.perf_counter() - started
            match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", report.read())
        rss = int(match.group(1)) / 1024 if match else float("nan")
        return Sample(wall, rss, proc.returncode)
    return _measure_polling(argv, env)


def _measure_polling(argv: list[str], env: dict[str, str]) -> Sample:
    import psutil

    started = time.perf_counter()
    child = psutil.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                         env=env)
    peak = 0
    while child.poll() is None:
        try:
            peak = max(peak, child.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.005)
    return Sample(time.perf_counter() - started, peak / 2**20, child.returncode or 0)


def series(argv: list[str], env: dict[str, str], runs: int, warm_up: bool = True) -> list[Sample]:
    if warm_up:
        measure(argv, env)  # page cache, bytecode cache
    return [measure(argv, env) for _ in range(runs)]


def _probe_times(precaution: str, env: dict[str, str]) -> str:
    proc = subprocess.run([precaution, "scan", "--json"], capture_output=True, text=True, env=env, check=False)
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return "(could not read per-probe times)"
    probes = sorted(data["probes"], key=lambda p: -p["duration_s"])
    return ", ".join(f"{p['id']} {p['duration_s'] * 1000:.0f} ms" for p in probes[:5])


def _before_argv(tree: str) -> list[str]:
    import sysconfig

    site = sysconfig.get_paths()["purelib"]
    code = (f"import sys; sys.path[:0] = [{tree!r}, {site!r}]; from agent.cli.main import main; "
            "sys.exit(main(['scan']))")
    return [sys.executable, "-S", "-c", code]


def run() -> str:
    precaution = str(Path(sys.executable).parent / "precaution")
    home = tempfile.mkdtemp(prefix="bench-scan-")  # no baseline, no waivers: the plain first scan
    env = {**os.environ, "PRECAUTION_HOME": home}
    before_tree = os.environ.get(BEFORE_ENV)
    load_start = os.getloadavg()[0]
    before: list[Sample] = []
    same_path: list[Sample] = []
    try:
        ours = series([precaution, "scan"], env, RUNS)
        slowest = _probe_times(precaution, env)
        if before_tree:  # the same launch path for both trees (python -S -c), one after the other, both warm
            same_path = series(_before_argv(str(Path(__file__).resolve().parent.parent)), env, RUNS)
            before = series(_before_argv(before_tree), env, RUNS)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    lynis = shutil.which("lynis") or ("/usr/sbin/lynis" if os.path.exists("/usr/sbin/lynis") else None)
    # Lynis reads the same files precaution's runs just brought into the page cache; a separate warm-up run
    # would cost another two minutes for no change.
    theirs = series([lynis, "audit", "system", "--quick", "--no-colors"], dict(os.environ), LYNIS_RUNS,
                    warm_up=False) if lynis else []

    wall = statistics.median(s.wall_s for s in ours)
    rss = statistics.median(s.rss_mb for s in ours)
    ok_wall, ok_rss = wall <= BUDGET_WALL_S, rss <= BUDGET_RSS_MB
    lines = [
        "| | runs | wall (median) | peak RSS (median) | exit |",
        "|---|---|---|---|---|",
        f"| `precaution scan` (all host probes, default profile) | {RUNS} | {wall:.2f} s "
        f"(min {min(s.wall_s for s in ours):.2f}, max {max(s.wall_s for s in ours):.2f}) | {rss:.1f} MB | "
        f"{', '.join(sorted({str(s.returncode) for s in ours}))} |",
    ]
    if before:
        bw = statistics.median(s.wall_s for s in before)
        br = statistics.median(s.rss_mb for s in before)
        sw = statistics.median(s.wall_s for s in same_path)
        sr = statistics.median(s.rss_mb for s in same_path)
        lines.append(f"| same, this tree through `python -S -c` (as the before row) | {RUNS} | {sw:.2f} s "
                     f"(min {min(s.wall_s for s in same_path):.2f}, max {max(s.wall_s for s in same_path):.2f}) | "
                     f"{sr:.1f} MB | {', '.join(sorted({str(s.returncode) for s in same_path}))} |")
        lines.append(f"| same, tree before the change (`{BEFORE_ENV}`: {Path(before_tree or '').name}) | {RUNS} | "
                     f"{bw:.2f} s (min {min(s.wall_s for s in before):.2f}, max {max(s.wall_s for s in before):.2f})"
                     f" | {br:.1f} MB | {', '.join(sorted({str(s.returncode) for s in before}))} |")
        lines.append(f"| after / before (both through `python -S -c`) | | {sw / bw:.2f}x | {sr / br:.2f}x | |")
    if theirs:
        lw = statistics.median(s.wall_s for s in theirs)
        lr = statistics.median(s.rss_mb for s in theirs)
        lines.append(f"| `lynis audit system --quick` (Lynis {_lynis_version(lynis)}) | {LYNIS_RUNS} | {lw:.1f} s | "
                     f"{lr:.1f} MB (largest single process) | "
                     f"{', '.join(sorted({str(s.returncode) for s in theirs}))} |")
        ratio = f"precaution takes {wall / lw * 100:.1f} % of Lynis' wall time ({lw / wall:.0f}x faster)."
    else:
        ratio = "Lynis is not installed: no reference figure."
    verdict = "PASS" if ok_wall and ok_rss else "FAIL"
    lines += [
        "",
        ratio,
        "",
        f"Load average (1 min, {os.cpu_count()} cores) at the start: {load_start:.1f}, at the end: "
        f"{os.getloadavg()[0]:.1f}; on a loaded machine compare the rows with each other (same run, same load).",
        "",
        f"Budget: wall <= {BUDGET_WALL_S:.0f} s: {'pass' if ok_wall else 'FAIL'} ({wall:.2f} s); "
        f"peak RSS <= {BUDGET_RSS_MB:.0f} MB: {'pass' if ok_rss else 'FAIL'} ({rss:.1f} MB). **{verdict}**",
        "",
        f"Slowest probes in one run: {slowest}.",
        "",
        "Method: console script, table output to /dev/null, fresh empty state directory (no baseline), "
        "one warm-up run first (Lynis: one run after precaution's, no separate warm-up); peak RSS from "
        "GNU time -v. The two tools do not check the same things: "
        "Lynis runs some 250 shell tests, precaution its host probes and profile rules."
        + (f" The before row runs the tree in ${BEFORE_ENV} the same way but through `python -S -c` (the editable"
           " install would otherwise import this tree), right after this tree's runs." if before else ""),
    ]
    return "\n".join(lines)


def _lynis_version(lynis: str | None) -> str:
    if not lynis:
        return "?"
    proc = subprocess.run([lynis, "--version"], capture_output=True, text=True, check=False)
    return proc.stdout.strip() or "?"


if __name__ == "__main__":
    print(run())
