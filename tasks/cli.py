"""The ``kgfuse`` command line (placeholder until the tasks pipeline lands)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def data_dir() -> Path:
    """The bundled sample data folder (installed as the ``kgfuse.data`` package)."""
    from importlib.resources import files

    return Path(str(files("kgfuse.data")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kgfuse")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="run the main job on the bundled sample")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from kgfuse.kg import KnowledgeGraph

        path = data_dir() / "sample_kg" / "assertions.csv"
        kg = KnowledgeGraph.from_conceptnet(path)
        print(kg)
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
