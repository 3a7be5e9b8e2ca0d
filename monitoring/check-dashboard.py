#!/usr/bin/env python3
"""Checks grafana-dashboard.json against a real Roster /metrics exposition.

Every metric name, every label name (in matchers, by/without/on clauses,
label_values() and legend templates) and every exact label value used by the
dashboard must occur in the exposition. `job` and `instance` are the only
exceptions: Prometheus attaches them to every scraped series, so they never
appear in /metrics itself.

Usage:
    python3 monitoring/check-dashboard.py [DASHBOARD] METRICS

METRICS is a file holding a /metrics capture or an http(s) URL to scrape,
e.g. http://127.0.0.1:8080/metrics. Generate traffic first (a login, a failed
login, an unknown path...): Roster exports a label set only once it has
happened. Exit status 0 when everything is found, 1 otherwise.
"""

import json
import re
import sys
import urllib.request
from pathlib import Path

TARGET_LABELS = {"job", "instance"}
KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "offset", "bool", "inf", "nan",
}
IDENT = r"[a-zA-Z_:][a-zA-Z0-9_:]*"


def read_exposition(source):
    if re.match(r"https?://", source):
        with urllib.request.urlopen(source, timeout=10) as response:
            text = response.read().decode()
    else:
        text = Path(source).read_text()
    series = {}  # metric name -> {label -> set of values}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = re.match(rf"({IDENT})(?:\{{(.*)\}})?\s", line)
        if not match:
            continue
        labels = series.setdefault(match.group(1), {})
        for name, value in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""):
            labels.setdefault(name, set()).add(value)
    return series


def expressions(dashboard):
    """(where, expr, legend) for every query of the dashboard."""
    def walk(panels):
        for panel in panels:
            yield from walk(panel.get("panels", []))
            for target in panel.get("targets", []):
                yield f'panel "{panel.get("title")}" {target.get("refId")}', target["expr"], target.get("legendFormat", "")
    yield from walk(dashboard.get("panels", []))
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if variable.get("type") == "query" and query:
            yield f'variable "{variable["name"]}"', query, ""


def analyse(expr):
    """Metric names, label names and exact (label, value) matchers of a PromQL expression."""
    labels, exact = set(), set()
    # label_values(selector, label) -> a selector plus a label name.
    lv = re.fullmatch(rf"\s*label_values\((.*),\s*({IDENT})\s*\)\s*", expr, re.S)
    if lv:
        expr, label = lv.group(1), lv.group(2)
        labels.add(label)
    for body in re.findall(r"\{([^}]*)\}", expr):
        for name, op, value in re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"', body):
            labels.add(name)
            if op == "=" and "$" not in value:
                exact.add((name, value))
    for _, names in re.findall(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", expr):
        labels.update(n.strip() for n in names.split(",") if n.strip())
    rest = re.sub(r"\{[^}]*\}", " ", expr)
    rest = re.sub(r"\[[^\]]*\]", " ", rest)
    rest = re.sub(r'"[^"]*"', " ", rest)
    rest = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", rest)
    metrics = set()
    for match in re.finditer(IDENT, rest):
        word = match.group(0)
        following = rest[match.end():].lstrip()
        if word.lower() in KEYWORDS or following.startswith("("):
            continue
        start = match.start()
        if start and (rest[start - 1].isdigit() or rest[start - 1] in ".$"):
            continue  # part of a number such as 1e3, or a Grafana variable
        metrics.add(word)
    return metrics, labels, exact


def main(argv):
    if len(argv) == 2:
        dashboard_path, source = Path(__file__).with_name("grafana-dashboard.json"), argv[1]
    elif len(argv) == 3:
        dashboard_path, source = Path(argv[1]), argv[2]
    else:
        print(__doc__, file=sys.stderr)
        return 2
    dashboard = json.loads(Path(dashboard_path).read_text())
    series = read_exposition(source)
    problems, checked = [], 0
    used_metrics, used_labels, used_target_labels = set(), set(), set()
    for where, expr, legend in expressions(dashboard):
        checked += 1
        metrics, labels, exact = analyse(expr)
        labels |= set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend))
        if not metrics:
            problems.append(f"{where}: no metric found in {expr!r}")
        available = set()
        for metric in metrics:
            if metric not in series:
                problems.append(f"{where}: metric {metric} is not in the exposition")
                continue
            used_metrics.add(metric)
            available |= set(series[metric])
        for label in sorted(labels):
            if label in TARGET_LABELS:
                used_target_labels.add(label)
            elif label not in available:
                problems.append(f"{where}: label {label} is on none of {sorted(metrics)}")
            else:
                used_labels.add(label)
        for label, value in sorted(exact):
            if label in TARGET_LABELS:
                continue
            if not any(value in series.get(m, {}).get(label, set()) for m in metrics):
                problems.append(f'{where}: no series has {label}="{value}"')
    for panel in dashboard.get("panels", []):
        ds = panel.get("datasource")
        if panel.get("type") != "row" and ds != {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}:
            problems.append(f'panel "{panel.get("title")}": datasource is {ds!r}')
    if not any(i.get("name") == "DS_PROMETHEUS" for i in dashboard.get("__inputs", [])):
        problems.append("__inputs does not declare DS_PROMETHEUS")
    print(f"{checked} queries checked against {source}")
    print(f"metrics used: {', '.join(sorted(used_metrics))}")
    print(f"labels used: {', '.join(sorted(used_labels))}")
    print(f"target labels used (attached by Prometheus, not in /metrics): {', '.join(sorted(used_target_labels)) or 'none'}")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    print("OK" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
