"""`make bench`: the quick benchmarks of kgfuse, one after the other, with their output.

Each entry is a command that exists in this folder, run at a size that finishes in minutes on
a 2-core CPU; the full-size commands (ConceptNet-scale graphs, the full-scale training
protocol) are documented in docs/benchmarks.md and docs/results.md. Benchmarks that read
``../shared/data`` are skipped when it is absent.

    python benchmarks/run_all.py [--only NAME ...] [--list]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data"
WORK = HERE / "_work"

#: name -> (command after the interpreter, needs ../shared/data)
BENCHES: dict[str, tuple[list[str], bool]] = {
    "corruption_sweep": (["benchmarks/corruption_sweep.py", "--flips", "8"], False),
    "graph_small": (["-c", "import runpy, sys; "
                     "sys.argv=['gen', str(%r), '--concepts', '50000', '--english-rows', '150000', '--non-english-fraction', '0'];"
                     " runpy.run_path('benchmarks/gen_conceptnet.py', run_name='__main__');"
                     " sys.argv=['bench', '--assertions', str(%r), '--work', str(%r)];"
                     " runpy.run_path('benchmarks/bench_graph.py', run_name='__main__')"
                     % (str(WORK / "small.csv"), str(WORK / "small.csv"), str(WORK / "small"))], False),
    "coverage_csqa_dev": (["benchmarks/coverage.py", "--graph", str(SHARED / "conceptnet4" / "conceptnet4_en.tsv.gz"),
                           "--data", f"csqa:{SHARED / 'csqa' / 'dev_rand_split.jsonl'}"], True),
    "knowledge_text_cost": (["benchmarks/knowledge_text_cost.py", "--max-examples", "200"], True),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args(argv)
    if args.list:
        for name, (cmd, shared) in BENCHES.items():
            print(f"{name:<22} {'(needs ../shared/data) ' if shared else ''}python {' '.join(cmd)[:120]}")
        return 0
    WORK.mkdir(exist_ok=True)
    failed = []
    for name, (cmd, shared) in BENCHES.items():
        if args.only and name not in args.only:
            continue
        if shared and not SHARED.is_dir():
            print(f"== {name}: skipped ({SHARED} absent)", flush=True)
            continue
        print(f"== {name}: python {' '.join(cmd)[:160]}", flush=True)
        t0 = time.time()
        rc = subprocess.run([sys.executable, *cmd], cwd=HERE.parent).returncode
        print(f"== {name}: exit {rc}, {time.time() - t0:.1f} s wall", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print(f"failed: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
