#!/usr/bin/env python3
"""Prints the medians of the last criterion run as a Markdown table.

    python3 k6/criterion_medians.py [target-dir]    (default $CARGO_TARGET_DIR or target)

Reads <target>/criterion/**/new/estimates.json: the median of the per-iteration
times and its 95% confidence interval, as criterion estimated them.
"""

import json
import os
import sys
from pathlib import Path


def fmt(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def main():
    target = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("CARGO_TARGET_DIR", "target"))
    rows = []
    for est in sorted((target / "criterion").glob("**/new/estimates.json")):
        bench = json.loads((est.parent / "benchmark.json").read_text())
        median = json.loads(est.read_text())["median"]
        ci = median["confidence_interval"]
        rows.append((bench["full_id"], fmt(median["point_estimate"]),
                     f"{fmt(ci['lower_bound'])} – {fmt(ci['upper_bound'])}"))
    if not rows:
        sys.exit(f"no criterion results under {target}/criterion")
    print("| benchmark | median | 95% CI of the median |")
    print("|---|---:|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
