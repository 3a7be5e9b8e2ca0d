#!/usr/bin/env python3
"""Turns one run.sh output directory into the Markdown results page.

    python3 k6/report.py k6/results/<timestamp>  > k6/results/<timestamp>.md

Reads env.tsv and meta.tsv (written by run.sh) and each <workload>.json
(k6 --summary-export). One row per scenario of each workload, and for the mix
one more row per operation (`op` tag); then criterion.md and notes.md from
the same directory when present (written by hand after the run). Figures
come from the scenario's sub-metrics only, so requests made in setup()
(logins, id look-ups) are not counted. Requests/s is the scenario's request count over `scenario_seconds`
(end of setup() to teardown(), recorded by lib.js), falling back to the
configured duration; k6's own `rate` divides by the whole run, setup included.
"""

import json
import re
import sys
from pathlib import Path


def duration_seconds(text):
    """'30s', '2m', '1m30s', '500ms' -> seconds."""
    total = 0.0
    for value, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text):
        total += float(value) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total or float(text)


def read_tsv(path, header):
    lines = [line.rstrip("\n").split("\t") for line in path.read_text().splitlines() if line]
    if header:
        keys = lines[0]
        return [dict(zip(keys, row)) for row in lines[1:]]
    return {row[0]: "\t".join(row[1:]) for row in lines}


def ms(value):
    if value is None:
        return "–"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def scenario_selectors(metrics):
    """Tag selectors such as 'scenario:get_user' or 'scenario:mix,op:W1': each
    scenario, then its per-operation selectors, in name order."""
    selectors = []
    for key in metrics:
        m = re.fullmatch(r"http_reqs\{(.+)\}", key)
        if m and m.group(1).startswith("scenario:"):
            selectors.append(m.group(1))
    return sorted(selectors, key=lambda s: (s.split(",")[0], "," in s, s))


def main():
    out = Path(sys.argv[1])
    env = read_tsv(out / "env.tsv", header=False)
    meta = read_tsv(out / "meta.tsv", header=True)
    seconds = duration_seconds(env["duration"])

    rows = []
    for entry in meta:
        name = entry["workload"]
        summary_path = out / f"{name}.json"
        rss_mib = f"{int(entry['peak_rss_kb']) / 1024:.1f}" if entry["peak_rss_kb"] else "–"
        verdict = {"0": "pass", "99": "thresholds failed"}.get(entry["exit"], f"k6 exit {entry['exit']}")
        if not summary_path.exists():
            rows.append([name, "–", "–", "–", "–", "–", "–", "–", rss_mib, entry["cpu_seconds"], "–", verdict])
            continue
        metrics = json.loads(summary_path.read_text())["metrics"]
        ran = metrics.get("scenario_seconds", {}).get("value") or seconds
        # All scenarios' requests (not the per-op rows): the server's CPU is shared by them.
        scenario_requests = sum(metrics[f"http_reqs{{{sel}}}"].get("count", 0)
                                for sel in scenario_selectors_top(metrics))
        cpu_per_req = (f"{1e6 * float(entry['cpu_seconds']) / scenario_requests:.0f}"
                       if scenario_requests else "–")
        for selector in scenario_selectors(metrics):
            reqs = metrics[f"http_reqs{{{selector}}}"]
            dur = metrics.get(f"http_req_duration{{{selector}}}", {})
            scenario = selector.split(",")[0].split(":", 1)[1]
            failed = metrics.get(f"http_req_failed{{scenario:{scenario}}}", {})
            checks = metrics.get(f"checks{{scenario:{scenario}}}", {})
            is_op = "," in selector
            label = f"{name} {selector.split(',', 1)[1]}" if is_op else (
                name if len(scenario_selectors_top(metrics)) == 1 else f"{name} ({scenario})"
            )
            rows.append([
                label,
                f"{reqs.get('count', 0) / ran:.1f}",
                ms(dur.get("med")),
                ms(dur.get("p(95)")),
                ms(dur.get("p(99)")),
                ms(dur.get("max")),
                "" if is_op else f"{100 * failed.get('value', 0):.2f}%",
                "" if is_op else f"{100 * checks.get('value', 0):.2f}%",
                "" if is_op else rss_mib,
                "" if is_op else entry["cpu_seconds"],
                "" if is_op else cpu_per_req,
                "" if is_op else verdict,
            ])

    print(f"# Load test results {out.name}")
    print()
    print("| | |")
    print("|---|---|")
    for key in ["commit", "date", "backend", "users", "bcrypt_cost", "duration", "vus",
                "seed", "k6", "rustc", "cpu", "load_before"]:
        print(f"| {key} | {env.get(key, '')} |")
    print()
    print("Server: release build pinned to core 0 (`taskset -c 0`); k6 pinned to core 1. "
          "Latencies in milliseconds; requests/s is the scenario's requests over the "
          "time it really ran, from the end of setup() to teardown() (so setup requests "
          "are excluded and the tail of in-flight requests is included). Error rate is k6's "
          "`http_req_failed` (any status >= 400 or no response); checks look at the "
          "response bodies. Peak RSS is the server's VmHWM "
          + ("during that workload alone (reset before each)."
             if env.get("rss_scope") == "workload" else "since start (it could not be reset).")
          + " Server CPU is user+system seconds of the server process during the workload "
          "(setup included); CPU µs/req divides it by the requests of all the workload's "
          "scenarios, which stays comparable when the load generator, not the server, is the limit.")
    print()
    print("| workload | requests/s | p50 ms | p95 ms | p99 ms | max ms | error rate | checks "
          "| peak RSS MiB | server CPU s | CPU µs/req | thresholds |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()
    print(f"Summary exports: `{out.name}/<workload>.json`; k6 output: `{out.name}/<workload>.txt`.")
    # Sections added by hand after the run (criterion medians, observations).
    for extra in ("criterion.md", "notes.md"):
        if (out / extra).exists():
            print()
            print((out / extra).read_text().rstrip())


def scenario_selectors_top(metrics):
    return [s for s in scenario_selectors(metrics) if "," not in s]


if __name__ == "__main__":
    main()
