"""Run every benchmark in this folder, one after another (pass --small for a quick run)."""

from __future__ import annotations

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> int:
    scripts = sorted(f for f in os.listdir(HERE) if f.startswith("bench_") and f.endswith(".py"))
    failed = []
    for script in scripts:
        print(f"\n== {script}", flush=True)
        if subprocess.run([sys.executable, os.path.join(HERE, script), *sys.argv[1:]]).returncode:
            failed.append(script)
    print(f"\n{len(scripts) - len(failed)} of {len(scripts)} benchmarks met their targets; missed: {failed or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
