"""File-integrity baseline of /usr/lib: the engine (probes/fim/engine.py) side by side with coreutils sha256sum
(two parallel xargs workers) and AIDE (sha256 only, same tree), page cache warm; then the unchanged re-check,
the files probe's first and second run over its default paths, and `precaution scan` warm (what a repeat
scan costs in wall time and peak memory, now that dpkg ownership is cached).

The machine may be shared: the engine and sha256sum run alternately, ROUNDS times, and each round's ratio is
reported with the load average at that moment; the verdict uses the best (least disturbed) time of each.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.bench_scan import measure
from probes.base import GatherContext
from probes.fim.engine import POOL_MIN_CPUS, FimOptions, scan
from probes.host.files import FilesOptions, FilesProbe
from probes.transport import LocalTransport

TITLE = "File integrity: first baseline and re-check of /usr/lib"
TREE = "/usr/lib"
ROUNDS = 4
RECHECKS = 5
SCAN_RUNS = 3


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _best(fn: Callable[[], object], repeat: int) -> float:
    return min(_timed(fn) for _ in range(repeat))


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def _sha256sum() -> None:
    subprocess.run(f"find {TREE} -type f -print0 | xargs -0 -P2 sha256sum > /dev/null", shell=True, check=True)


def _aide(work: Path) -> Callable[[], None]:
    conf = work / "aide.conf"
    conf.write_text(f"database_out=file:{work}/aide.db.new\ngzip_dbout=no\nnum_workers=2\n{TREE} sha256\n")

    def run() -> None:
        (work / "aide.db.new").unlink(missing_ok=True)
        subprocess.run(["aide", "--init", f"--config={conf}"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    return run


def _scan_warm(work: Path) -> tuple[list[float], list[float]]:
    """`precaution scan` as the user runs it: one warm-up, then SCAN_RUNS runs (wall s, peak RSS MB)."""
    exe = Path(sys.executable).parent / "precaution"
    env = {**os.environ, "PRECAUTION_HOME": str(work / "home")}
    argv = [str(exe), "scan"]
    measure(argv, env)
    samples = [measure(argv, env) for _ in range(SCAN_RUNS)]
    return [s.wall_s for s in samples], [s.rss_mb for s in samples]


def run() -> str:
    transport = LocalTransport()
    work = Path(tempfile.mkdtemp(prefix="bench-fim-"))
    full = FimOptions(paths=(TREE,), full=True)
    try:
        warm = scan(transport, full, None)  # also warms the page cache for every contender
        files = warm.stats.hashed
        gb = warm.stats.bytes_hashed / 1e9
        rounds = []
        for _ in range(ROUNDS):
            load = _load()
            rounds.append((_timed(lambda: scan(transport, full, None)), _timed(_sha256sum), load))
        t_ours = min(r[0] for r in rounds)
        t_sum = min(r[1] for r in rounds)
        t_procs = _best(lambda: scan(transport, FimOptions(paths=(TREE,), full=True, processes=True), None), 2)
        aide = _aide(work) if shutil.which("aide") else None
        t_aide = _best(aide, 2) if aide else None

        cache = work / "cache"
        scan(transport, FimOptions(paths=(TREE,)), cache)
        recheck = scan(transport, FimOptions(paths=(TREE,)), cache)
        assert recheck.stats.hashed == 0, "re-check hashed files: the tree changed during the benchmark"
        load_recheck = _load()
        rechecks = [_timed(lambda: scan(transport, FimOptions(paths=(TREE,)), cache)) for _ in range(RECHECKS)]
        t_recheck = min(rechecks)
        t_recheck_py = _best(lambda: scan(transport, FimOptions(paths=(TREE,), find_walk=False), cache), 3)
        per_60k = t_recheck * 60000 / max(1, recheck.stats.cache_hits)

        probe = FilesProbe(FilesOptions(), cache_dir=work / "probe-cache")
        t0 = time.perf_counter()
        raw = probe.gather(GatherContext(transport))
        t_probe_first = time.perf_counter() - t0
        t0 = time.perf_counter()
        probe.parse(probe.gather(GatherContext(transport)))
        t_probe_again = time.perf_counter() - t0

        load_scan = _load()
        scan_walls, scan_rss = _scan_warm(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    speedup = t_sum / t_ours
    wall, rss = statistics.median(scan_walls), statistics.median(scan_rss)
    lines = [
        f"Tree: {TREE}, {files:,} files, {gb:.2f} GB; {os.cpu_count()} cores; page cache warm. The engine and "
        f"sha256sum alternate {ROUNDS} times; best of each is compared. Load average (1/5/15 min) is given "
        "with each measurement.",
        "",
        "| run | time | vs precaution |",
        "|---|---|---|",
        f"| precaution FIM first baseline (SHA-256, stat, immutable flag; default engine: find walk, "
        f"{'threads' if (os.cpu_count() or 1) < POOL_MIN_CPUS else 'worker processes'}) | {t_ours:.2f} s | 1.0x |",
        f"| `find -type f -print0 \\| xargs -0 -P2 sha256sum` | {t_sum:.2f} s | {speedup:.1f}x slower |",
    ]
    if t_aide is not None:
        lines.append(f"| `aide --init` (sha256 only, num_workers=2) | {t_aide:.2f} s | {t_aide / t_ours:.1f}x slower |")
    lines += [
        f"| same, forced into {os.cpu_count()} worker processes (`processes=True`) | {t_procs:.2f} s | "
        f"{t_procs / t_ours:.2f}x |",
        f"| unchanged re-check ({recheck.stats.cache_hits:,} files, cache hits; find walk) | {t_recheck:.2f} s | "
        f"{per_60k:.2f} s per 60k files |",
        f"| same re-check with the os.scandir walk (`find_walk=False`) | {t_recheck_py:.2f} s | "
        f"{t_recheck_py * 60000 / max(1, recheck.stats.cache_hits):.2f} s per 60k files |",
        "",
        "Rounds (engine / sha256sum / ratio, load average at the start of the round): "
        + "; ".join(f"{o:.2f} s / {s:.2f} s / {s / o:.1f}x (load {ld})" for o, s, ld in rounds) + ".",
        f"Re-checks: {', '.join(f'{t:.2f}' for t in rechecks)} s (load {load_recheck}).",
        "",
        f"Budget: first baseline >= 3x faster than sha256sum: **{'met' if speedup >= 3 else 'NOT met'}** "
        f"({speedup:.1f}x); re-check <= 1 s per 60k files: **{'met' if per_60k <= 1 else 'NOT met'}** "
        f"({per_60k:.2f} s).",
        "",
        f"`files` probe, default paths ({raw['stats']['entries']:,} entries, {raw['stats']['hashed']:,} files "
        f"hashed, {raw['stats']['bytes_hashed'] / 1e6:.0f} MB, with dpkg ownership and MD5 of package files): "
        f"first run {t_probe_first:.2f} s, next run {t_probe_again:.2f} s (dpkg ownership from its cache).",
        "",
        f"`precaution scan` (all host probes, fresh state dir, after one warm-up run; load {load_scan}): wall "
        f"{', '.join(f'{w:.2f}' for w in scan_walls)} s (median {wall:.2f} s, budget 2 s: "
        f"**{'met' if wall <= 2 else 'NOT met'}**); peak RSS {', '.join(f'{r:.1f}' for r in scan_rss)} MB "
        f"(median {rss:.1f} MB, budget 80 MB: **{'met' if rss <= 80 else 'NOT met'}**).",
    ]
    return "\n".join(lines)
