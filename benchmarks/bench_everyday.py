"""Benchmark: the everyday commands of a kgfuse install -- CLI start-up (CPU seconds of
``kgfuse --help``, ``kgfuse --version``, ``kgfuse train --help``) and the size on disk of the
demo's run folder, part by part.

It runs ``kgfuse`` as the given Python would (``python -c "from kgfuse.tasks.cli import main;
main()"``), so another version of kgfuse can be measured by putting its install folder first on
``PYTHONPATH`` (``--pythonpath``); that is how before/after figures are taken. CPU time is the
child processes' user + system time (``resource.getrusage``): on a shared machine the wall
time is noise.

Usage::

    .venv/bin/python benchmarks/bench_everyday.py [--runs 5] [--pythonpath DIR] [--skip-demo] \\
        [--out results.json]

The demo (``kgfuse demo --output TMP``: MiniLM, bundled sample graph and questions) takes
about half a minute on an idle 2-core machine, then a 2-epoch ``kgfuse train`` of the same
config with the train section's default ``save_last: true`` (the demo config turns it off)
shows what a plain training run keeps; both folders are deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLI = "import sys; from kgfuse.tasks.cli import main; sys.exit(main())"


def _env(pythonpath: str | None, home: Path) -> dict[str, str]:
    env = dict(os.environ, KGFUSE_HOME=str(home), OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    if pythonpath:
        env["PYTHONPATH"] = pythonpath + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _run(python: str, args: list[str], env: dict[str, str]) -> tuple[int, float, float, str]:
    """(exit status, child CPU seconds, wall seconds, output) of one ``kgfuse ARGS``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    p = subprocess.run([python, "-c", CLI, *args], env=env, capture_output=True, text=True, cwd=tempfile.gettempdir())
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return p.returncode, cpu, wall, p.stdout + p.stderr


def _sizes(folder: Path) -> dict[str, int]:
    """Bytes per top-level entry of a run folder (and ``total``); links are not followed."""
    out: dict[str, int] = {}
    for child in sorted(folder.iterdir()):
        files = [child] if child.is_file() else [p for p in child.rglob("*") if p.is_file() and not p.is_symlink()]
        out[child.name + ("/" if child.is_dir() else "")] = sum(p.stat().st_size for p in files)
    out["total"] = sum(out.values())
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", default=sys.executable, help="interpreter that has kgfuse's dependencies")
    ap.add_argument("--pythonpath", help="folder put first on PYTHONPATH (another kgfuse install to measure)")
    ap.add_argument("--runs", type=int, default=5, help="runs of each start-up command")
    ap.add_argument("--skip-demo", action="store_true", help="start-up only")
    ap.add_argument("--out", type=Path, help="also write the results as JSON")
    args = ap.parse_args(argv)

    home = Path(tempfile.mkdtemp(prefix="kgfuse-bench-home-"))
    env = _env(args.pythonpath, home)
    res: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}",
                 "python": args.python, "pythonpath": args.pythonpath, "startup_cpu_s": {}}
    try:
        for cmd in (["--help"], ["--version"], ["train", "--help"]):
            name = "kgfuse " + " ".join(cmd)
            rows = [_run(args.python, cmd, env) for _ in range(args.runs)]
            if any(rc for rc, *_ in rows):
                res["startup_cpu_s"][name] = f"exit status {rows[0][0]}: {rows[0][3].strip().splitlines()[-1:]}"
                print(f"{name:<24} fails: {res['startup_cpu_s'][name]}")
                continue
            cpu = [c for _, c, _, _ in rows]
            wall = [w for _, _, w, _ in rows]
            res["startup_cpu_s"][name] = {"median": round(statistics.median(cpu), 3), "min": round(min(cpu), 3),
                                          "max": round(max(cpu), 3), "median_wall": round(statistics.median(wall), 3)}
            print(f"{name:<24} CPU s median {statistics.median(cpu):.3f} (min {min(cpu):.3f}, max {max(cpu):.3f}); "
                  f"wall median {statistics.median(wall):.3f}")
        if not args.skip_demo:
            out = home / "demo"
            rc, cpu, wall, text = _run(args.python, ["demo", "--output", str(out)], env)
            if rc:
                raise SystemExit(f"kgfuse demo failed (exit status {rc}):\n{text[-2000:]}")
            sizes = _sizes(out)
            res["demo"] = {"cpu_s": round(cpu, 1), "wall_s": round(wall, 1), "bytes": sizes}
            print(f"kgfuse demo: {cpu:.1f} CPU s, {wall:.1f} s wall; run folder {sizes['total'] / 1e6:.1f} MB:")
            for k, v in sizes.items():
                if k != "total":
                    print(f"    {k:<28} {v / 1e6:8.1f} MB")
            # a training run with the train section's defaults (the demo config turns off the
            # resumable last/ state; a plain config keeps it): 2 epochs of the same sample
            out = home / "train"
            cmd = ["train", "--config", str(REPO / "configs" / "demo.yaml"), "--output", str(out),
                   "--set", "train.save_last=true", "--set", "train.epochs=2"]
            rc, cpu, wall, text = _run(args.python, cmd, env)
            if rc:
                raise SystemExit(f"kgfuse train failed (exit status {rc}):\n{text[-2000:]}")
            sizes = _sizes(out)
            res["train"] = {"command": "kgfuse " + " ".join(cmd[:2]) + " configs/demo.yaml --output OUT "
                            + " ".join(cmd[5:]), "cpu_s": round(cpu, 1), "wall_s": round(wall, 1), "bytes": sizes}
            print(f"{res['train']['command']}: {cpu:.1f} CPU s; run folder {sizes['total'] / 1e6:.1f} MB:")
            for k, v in sizes.items():
                if k != "total" and v >= 1e5:
                    print(f"    {k:<28} {v / 1e6:8.1f} MB")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if args.out:
        args.out.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
