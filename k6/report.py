#!/usr/bin/env python3
"""Turns one run.sh output directory into the Markdown results page.

    python3 k6/report.py k6/results/<timestamp>  > k6/results/<timestamp>.md
    python3 k6/report.py --metrics-check <dir> <workload> <before.prom> <after.prom>
    python3 k6/report.py --wrk-check <dir> <workload>

Reads env.tsv and meta.tsv (written by run.sh) and each <workload>.json
(k6 --summary-export). One row per scenario of each workload, and for the mix
one more row per operation (`op` tag); then criterion.md and notes.md from
the same directory when present (written by hand after the run). Figures
come from the scenario's sub-metrics only, so requests made in setup()
(logins, id look-ups) are not counted. Requests/s is the scenario's request count over `scenario_seconds`
(end of setup() to teardown(), recorded by lib.js), falling back to the
configured duration; k6's own `rate` divides by the whole run, setup included.

With --wrk, run.sh also writes wrk.tsv and <workload>.wrk.json (from
k6/wrk/roster.lua): a `W0 (wrk)`, `W1 (wrk)`, `W2 (wrk)` or `W2c (wrk)` row
after the workload's rows.

Each <workload>.metrics.tsv (written by --metrics-check, which run.sh calls
after every workload) holds the server's request count per method and route
over the k6 run, from /metrics scraped before and after it, next to k6's count
(the `http_reqs{name:…}` sub-metrics that lib.js defines, setup() included);
the page has one line per workload saying whether they are equal.
--metrics-check and --wrk-check print their verdict and exit non-zero when
the counts differ, or when wrk failed or met 1% errors or more.
"""

import json
import re
import sys
from pathlib import Path

# The server's request counter (a histogram's count) and its labels.
REQUEST_COUNT = "http_server_request_duration_seconds_count"
# What a check scrape itself adds between the two scrapes: the first scrape is
# recorded once it has answered, so the second one counts it; the second one
# does not count itself.
OWN_SCRAPES = {("GET", "/metrics"): 1}
# The k6 requests whose name is not in lib.js REQUEST_NAMES have no route.
UNNAMED = ("*", "(not in REQUEST_NAMES)")
METRICS_COLUMNS = ["method", "route", "server", "k6", "own_scrapes"]
# wrk's error rate from which its row fails, as k6's thresholds do.
WRK_MAX_ERROR_RATE = 0.01


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


def route_key(method, route):
    """(method, route) with every path parameter written `{}`, so that k6's
    `/users/:id` and the server's `/users/{id}` meet."""
    return method, re.sub(r"\{[^/}]*\}|:[^/]+", "{}", route)


def scraped_counts(path):
    """Requests per (method, route) in one /metrics scrape, over every status;
    None when the scrape is missing or empty (it failed)."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    counts = {}
    for line in path.read_text().splitlines():
        if not line.startswith(REQUEST_COUNT + "{"):
            continue
        labels_text, _, value = line[len(REQUEST_COUNT) + 1:].rpartition("} ")
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels_text))
        key = (labels.get("http_request_method", "?"), labels.get("http_route", "?"))
        counts[key] = counts.get(key, 0) + int(float(value))
    return counts


def k6_counts(summary_path):
    """k6's requests per (method, route) from the `http_reqs{name:METHOD /path?…}`
    sub-metrics, plus UNNAMED: the total minus the named ones. None without a
    summary export."""
    if not summary_path.exists():
        return None
    metrics = json.loads(summary_path.read_text())["metrics"]
    counts = {}
    named = 0
    for key, values in metrics.items():
        m = re.fullmatch(r"http_reqs\{name:([A-Z]+) ([^?,]+)(?:\?[^,]*)?\}", key)
        if m:
            route = re.sub(r":([^/]+)", r"{\1}", m.group(2))
            counts[(m.group(1), route)] = counts.get((m.group(1), route), 0) + values.get("count", 0)
            named += values.get("count", 0)
    counts[UNNAMED] = metrics.get("http_reqs", {}).get("count", 0) - named
    return counts


def metrics_rows(before, after, k6):
    """One row per method and route that either side saw (see METRICS_COLUMNS);
    `server` or `k6` is empty when that side could not be counted."""
    server = None
    if before is not None and after is not None:
        server = {key: after[key] - before.get(key, 0) for key in after}
    labels = {}
    for key in list((server or {}).keys()) + list((k6 or {}).keys()) + list(OWN_SCRAPES):
        labels.setdefault(route_key(*key), key)  # the server's spelling first
    rows = []
    for canonical, (method, route) in sorted(labels.items(), key=lambda kv: kv[1]):
        def count(side):
            if side is None:
                return ""
            return str(sum(n for key, n in side.items() if route_key(*key) == canonical))
        own = OWN_SCRAPES.get((method, route), 0) if server is not None else 0
        row = [method, route, count(server), count(k6), str(own)]
        if any(value not in ("", "0") for value in row[2:]):
            rows.append(row)
    return rows


def metrics_verdict(rows):
    """(ok, text): whether the server counted what k6 sent, route by route."""
    if not rows:
        return False, "not checked: nothing counted"
    if any(row[2] == "" for row in rows):
        return False, "not checked: /metrics could not be scraped"
    if any(row[3] == "" for row in rows):
        return False, "not checked: no k6 summary export"
    differ = []
    equal = []
    for method, route, server, k6, own in rows:
        if int(server) != int(k6) + int(own):
            scrapes = f" + {own} own scrape{'s' if own != '1' else ''}" if own != "0" else ""
            differ.append(f"{method} {route} server {server}, k6 {k6}{scrapes}")
        elif int(k6):
            equal.append(f"{method} {route} {k6}")
    if differ:
        return False, (f"{len(differ)} of {len(differ) + len(equal)} routes differ: "
                       + "; ".join(differ))
    return True, f"all {len(equal)} route{'s' if len(equal) != 1 else ''} equal ({', '.join(equal)})"


def metrics_check(out, name, before, after):
    """--metrics-check: writes <name>.metrics.tsv, prints the verdict, and
    returns the exit status."""
    rows = metrics_rows(scraped_counts(Path(before)), scraped_counts(Path(after)),
                        k6_counts(out / f"{name}.json"))
    (out / f"{name}.metrics.tsv").write_text(
        "\n".join("\t".join(row) for row in [METRICS_COLUMNS] + rows) + "\n")
    ok, text = metrics_verdict(rows)
    print(f"{name}: metrics vs k6: {text}")
    return 0 if ok else 1


def wrk_result(out, entry):
    """(summary or None, verdict, passed) of one wrk.tsv row."""
    path = out / f"{entry['workload']}.wrk.json"
    summary = json.loads(path.read_text()) if path.exists() and path.stat().st_size else None
    if entry["exit"] == "setup":
        return summary, "setup failed", False
    if entry["exit"] != "0":
        return summary, f"wrk exit {entry['exit']}", False
    if summary is None or not summary["requests"]:
        return summary, "no requests", False
    rate = sum(summary["errors"].values()) / summary["requests"]
    if rate >= WRK_MAX_ERROR_RATE:
        return summary, f"errors ≥ {100 * WRK_MAX_ERROR_RATE:.0f}%", False
    return summary, "pass", True


def wrk_check(out, name):
    """--wrk-check: prints the verdict of the workload's wrk run and returns the exit status."""
    entry = next(e for e in read_tsv(out / "wrk.tsv", header=True) if e["workload"] == name)
    _, verdict, passed = wrk_result(out, entry)
    print(f"{name} (wrk): {verdict}")
    return 0 if passed else 1


def wrk_row(out, entry):
    """The table row of one wrk run."""
    summary, verdict, _ = wrk_result(out, entry)
    rss_mib = f"{int(entry['peak_rss_kb']) / 1024:.1f}" if entry["peak_rss_kb"] else "–"
    label = f"{entry['workload']} (wrk)"
    if summary is None:
        return [label, "–", "–", "–", "–", "–", "–", "–", rss_mib, entry["cpu_seconds"] or "–", "–", verdict]
    requests = summary["requests"]
    errors = sum(summary["errors"].values())
    return [
        label,
        f"{requests / summary['seconds']:.1f}" if summary["seconds"] else "–",
        ms(summary["p50_ms"]),
        ms(summary["p95_ms"]),
        ms(summary["p99_ms"]),
        ms(summary["max_ms"]),
        f"{100 * errors / requests:.2f}%" if requests else "–",
        "–",
        rss_mib,
        entry["cpu_seconds"],
        f"{1e6 * float(entry['cpu_seconds']) / requests:.0f}" if requests else "–",
        verdict,
    ]


def main():
    if sys.argv[1] == "--metrics-check":
        sys.exit(metrics_check(Path(sys.argv[2]), *sys.argv[3:6]))
    if sys.argv[1] == "--wrk-check":
        sys.exit(wrk_check(Path(sys.argv[2]), sys.argv[3]))
    out = Path(sys.argv[1])
    env = read_tsv(out / "env.tsv", header=False)
    meta = read_tsv(out / "meta.tsv", header=True)
    seconds = duration_seconds(env["duration"])
    wrk_path = out / "wrk.tsv"
    wrk = {e["workload"]: e for e in read_tsv(wrk_path, header=True)} if wrk_path.exists() else {}

    rows = []
    count_checks = []
    for entry in meta:
        name = entry["workload"]
        summary_path = out / f"{name}.json"
        rss_mib = f"{int(entry['peak_rss_kb']) / 1024:.1f}" if entry["peak_rss_kb"] else "–"
        verdict = {"0": "pass", "99": "thresholds failed"}.get(entry["exit"], f"k6 exit {entry['exit']}")
        metrics_path = out / f"{name}.metrics.tsv"
        if metrics_path.exists():
            lines = metrics_path.read_text().splitlines()[1:]
            count_checks.append((name, metrics_verdict([line.split("\t") for line in lines if line])))
        if not summary_path.exists():
            rows.append([name, "–", "–", "–", "–", "–", "–", "–", rss_mib, entry["cpu_seconds"], "–", verdict])
            if name in wrk:
                rows.append(wrk_row(out, wrk[name]))
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
        if name in wrk:
            rows.append(wrk_row(out, wrk[name]))

    print(f"# Load test results {out.name}")
    print()
    print("| | |")
    print("|---|---|")
    for key in ["commit", "date", "backend", "users", "bcrypt_cost", "duration", "vus",
                "seed", "k6", "wrk", "rustc", "cpu", "load_before"]:
        if key != "wrk" or key in env:
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
          "scenarios, which stays comparable when the load generator, not the server, is the limit."
          + (" Rows `(wrk)`: the same requests from wrk (`run.sh --wrk`), also on core 1, one "
             "thread with as many connections as VUs, for the same duration, right after the "
             "k6 run; requests/s is wrk's count over its run, the error rate counts statuses "
             ">= 400 and socket errors, nothing checks the bodies, and server CPU and peak RSS "
             "are those of the wrk run alone." if wrk else ""))
    print()
    print("| workload | requests/s | p50 ms | p95 ms | p99 ms | max ms | error rate | checks "
          "| peak RSS MiB | server CPU s | CPU µs/req | thresholds |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()
    if count_checks:
        print("Request counts, the server's `/metrics` (`http_server_request_duration_seconds_count`, "
              "scraped before and after each k6 run) against k6's, per method and route, "
              "setup() included:")
        print()
        for name, (ok, text) in count_checks:
            print(f"- {name}: metrics vs k6: {text}" if ok else f"- **{name}: metrics vs k6: {text}**")
        print()
    print(f"Summary exports: `{out.name}/<workload>.json`; k6 output: `{out.name}/<workload>.txt`"
          + ("; wrk: `<workload>.wrk.json`, `<workload>.wrk.txt`" if wrk else "")
          + ("; counts: `<workload>.metrics.tsv`" if count_checks else "") + ".")
    # Sections added by hand after the run (criterion medians, observations).
    for extra in ("criterion.md", "notes.md"):
        if (out / extra).exists():
            print()
            print((out / extra).read_text().rstrip())


def scenario_selectors_top(metrics):
    return [s for s in scenario_selectors(metrics) if "," not in s]


if __name__ == "__main__":
    main()
