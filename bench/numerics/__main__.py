"""``python -m bench.numerics``: the CPU numerics a run on this machine computes with.

    python -m bench.numerics             # mode, level, settings, what each library dispatches to, the probe
    python -m bench.numerics --exports   # the shell line that sets them (a Slurm job script evaluates it)

``BENCH_NUMERICS`` (pinned, portable, native) chooses, as for a run. ``--exports`` loads no
numerical library, so that the line can run before one does.
"""

from __future__ import annotations

import argparse
import json
import sys

from bench.errors import BenchError
from bench.numerics import export_line, numerics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.numerics", description=__doc__.split("\n\n")[0])
    parser.add_argument("--exports", action="store_true", help="print the shell line that sets this machine's pins")
    args = parser.parse_args(argv)
    try:
        if args.exports:
            print(export_line())
            return 0
        import torch

        torch.set_num_threads(1)  # as a run with torch_threads=1 (the default) computes
        print(json.dumps(numerics(), indent=2))
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
