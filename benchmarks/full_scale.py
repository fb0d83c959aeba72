"""Run named rows of the full-scale CPU protocol (docs/results.md) one after the other.

Each row is one ``kgfuse train`` command (a config of ``configs/`` plus ``--set`` overrides).
A row resumes from its newest checkpoint (``--resume auto``), so a queue stopped mid-run
continues where it was. When a row finishes, one JSON line is appended to
``<out>/rows.jsonl``: the command, the commit, the wall time of this invocation, the
machine, and the run's metrics.

    KGFUSE_DATA=../shared/data OMP_NUM_THREADS=1 python benchmarks/full_scale.py \\
        --out ~/kgfuse-full csqa-cn4-s0 csqa-lm-1e-4-s0

``--list`` prints the rows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

LM = ["model.lm_only=true"]
ROWS: dict[str, tuple[str, list[str]]] = {}
for seed in (0, 1, 2):
    for lr in ("1e-4", "5e-5", "2e-5"):
        ROWS[f"csqa-lm-{lr}-s{seed}"] = ("csqa_conceptnet4.yaml", LM + [f"train.lr_lm={lr}", f"train.seed={seed}"])
        ROWS[f"obqa-lm-{lr}-s{seed}"] = ("obqa_conceptnet4.yaml", LM + [f"train.lr_lm={lr}", f"train.seed={seed}"])
    ROWS[f"csqa-cn4-s{seed}"] = ("csqa_conceptnet4.yaml", [f"train.seed={seed}"])
    ROWS[f"csqa-wn-s{seed}"] = ("csqa_wordnet.yaml", [f"train.seed={seed}"])
    ROWS[f"obqa-cn4-s{seed}"] = ("obqa_conceptnet4.yaml", [f"train.seed={seed}"])
    ROWS[f"obqa-wn-s{seed}"] = ("obqa_wordnet.yaml", [f"train.seed={seed}"])


def _commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except Exception:  # noqa: BLE001
        return "unknown"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rows", nargs="*")
    ap.add_argument("--out", type=Path, default=Path.home() / "kgfuse-full")
    ap.add_argument("--kgfuse", default=str(Path(sys.executable).with_name("kgfuse")), help="the kgfuse command")
    ap.add_argument("--set", action="append", default=[], help="extra overrides for every row (label the rows!)")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args(argv)
    if args.list:
        for k, (cfg, sets) in ROWS.items():
            print(f"{k:<22} configs/{cfg} " + " ".join(f"--set {s}" for s in sets))
        return 0
    unknown = [r for r in args.rows if r not in ROWS]
    if unknown:
        ap.error(f"unknown rows {unknown}; see --list")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.rows:
        cfg, sets = ROWS[name]
        run_dir = args.out / name
        cmd = [args.kgfuse, "train", "--config", str(REPO / "configs" / cfg), "--output", str(run_dir),
               "--resume", "auto", "--quiet"]
        for s in sets + args.set:
            cmd += ["--set", s]
        t0 = time.time()
        with open(args.out / f"{name}.log", "a") as log:
            log.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n")
            log.flush()
            rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT).returncode
        wall = time.time() - t0
        row = {"row": name, "command": " ".join(["kgfuse", *cmd[1:]]), "commit": _commit(), "rc": rc,
               "wall_s": round(wall, 1), "threads": os.environ.get("OMP_NUM_THREADS"),
               "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores", "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
        mpath = run_dir / "metrics.json"
        if rc == 0 and mpath.is_file():
            m = json.loads(mpath.read_text())
            row["splits"] = {k: {kk: v.get(kk) for kk in ("accuracy", "correct", "count")} for k, v in m["splits"].items()}
            row["history"] = m.get("history")
            row["best_epoch"] = m.get("best_epoch")
        with open(args.out / "rows.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps({k: row[k] for k in ("row", "rc", "wall_s")} | {"splits": row.get("splits")}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
