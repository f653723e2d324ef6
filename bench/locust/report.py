#!/usr/bin/env python3
"""The tables of bench/locust/run.sh (stdlib only).

    report.py one RUN_DIR NAME        one line about one run (progress)
    report.py report RUN_DIR [...]    the Markdown report, on stdout

A run is one line of RUN_DIR/runs.jsonl (tool, flow, users, duration, client and
server CPU seconds, command). Locust's numbers come from its --csv stats file
(NAME-final.json, which locustfile.py writes at exit: Locust's own requests/s and
percentiles, which Locust rounds: to 1 ms below 100 ms, 10 ms below 1 s, 100 ms
above). wrk's come from flows.lua's per-request logs
(NAME/req-*.tsv: raw latency per request, nearest-rank percentiles) and its BENCH
line (the run's duration, socket errors). Both count every answered request,
failures included, in requests/s and in the percentiles.
"""

import argparse
import collections
import csv
import glob
import json
import os
import platform
import re
import subprocess
import sys

AGG = "all requests"
FLOW_TITLES = {
    "registration": "Patient registration and validation (4 requests per iteration)",
    "upload": "Upload: POST /imagenes (39 KB DICOM, distinct bytes each)",
    "download": "Download: GET /imagenes/{id}/anonimizada (consumer, metered)",
}


def pct(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    k = max(0, min(len(sorted_vals) - 1, -(-len(sorted_vals) * p // 100) - 1))
    return sorted_vals[int(k)]


def locust_stats(run_dir, run):
    out = {}
    final = os.path.join(run_dir, run["name"] + "-final.json")  # locustfile.py's ALPES_BENCH_STATS
    if os.path.exists(final):
        with open(final) as f:
            for name, s in json.load(f).items():
                out[AGG if name == "Aggregated" else name] = s
    else:  # the last --csv snapshot (up to a second old)
        with open(os.path.join(run_dir, run["name"] + "_stats.csv")) as f:
            for r in csv.DictReader(f):
                out[AGG if r["Name"] == "Aggregated" else r["Name"]] = {
                    "count": int(r["Request Count"]), "failures": int(r["Failure Count"]),
                    "rps": float(r["Requests/s"]),
                    "p50": float(r["50%"]), "p95": float(r["95%"]), "p99": float(r["99%"]),
                }
    errors = collections.Counter()
    fpath = os.path.join(run_dir, run["name"] + "_failures.csv")
    if os.path.exists(fpath):
        with open(fpath) as f:
            for r in csv.DictReader(f):
                errors[f'{r["Method"]} {r["Name"]}: {r["Error"][:160]}'] += int(r["Occurrences"])
    return out, errors


def wrk_stats(run_dir, run):
    lat, fails, errors = collections.defaultdict(list), collections.Counter(), collections.Counter()
    for path in glob.glob(os.path.join(run_dir, run["name"], "req-*.tsv")):
        with open(path, errors="replace") as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) < 3:
                    continue
                name, status, secs = parts[0], parts[1], float(parts[2])
                lat[name].append(secs * 1000)
                if len(parts) > 3:
                    fails[name] += 1
                    errors[f"{name}: {status} {parts[3][5:160]}"] += 1
    bench = {}
    with open(os.path.join(run_dir, run["name"] + ".stdout")) as f:
        for line in f:
            if line.startswith("BENCH "):
                bench = {k: int(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
    duration = bench.get("duration_us", run["duration"] * 1e6) / 1e6
    sock = sum(bench.get(k, 0) for k in ("connect", "read", "write", "timeout"))
    if sock:
        errors[f"socket errors (connect/read/write/timeout): {sock}"] += sock
    out = {}
    everything = []
    for name, vals in lat.items():
        vals.sort()
        everything.extend(vals)
        out[name] = {"count": len(vals), "failures": fails[name], "rps": len(vals) / duration,
                     "p50": pct(vals, 50), "p95": pct(vals, 95), "p99": pct(vals, 99)}
    everything.sort()
    out[AGG] = {"count": len(everything), "failures": sum(fails.values()) + sock,
                "rps": len(everything) / duration,
                "p50": pct(everything, 50), "p95": pct(everything, 95), "p99": pct(everything, 99)}
    return out, errors


def stats(run_dir, run):
    s, errors = (locust_stats if run["tool"] == "locust" else wrk_stats)(run_dir, run)
    run["stats"], run["errors"] = s, errors
    run["client_cpu_pct"] = 100 * (run["client_user_s"] + run["client_sys_s"]) / max(run["wall_s"], 1e-9)
    run["server_cpu_pct"] = 100 * run["server_cpu_s"] / run["duration"]
    # What the rest of the machine took meanwhile (another build, the test suite...).
    other = run.get("machine_busy_s", 0) - run["server_cpu_s"] - run["client_user_s"] - run["client_sys_s"]
    run["other_cpu_pct"] = max(0.0, 100 * other / run["duration"])
    if run["tool"] == "locust":
        err = open(os.path.join(run_dir, run["name"] + ".stderr"), errors="replace").read()
        run["locust_cpu_warning"] = "CPU usage above" in err or "CPU usage was too high" in err
    return run


def load_runs(run_dir):
    with open(os.path.join(run_dir, "runs.jsonl")) as f:
        return [stats(run_dir, json.loads(line)) for line in f if line.strip()]


def ms(v):
    if v != v:  # nan
        return "–"
    if v == int(v):  # Locust's rounded values
        return f"{v:.0f}"
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def ratio(a, b):
    return f"{a / b:.2f}×" if b else "–"


TOOL = {"locust": "Locust", "wrk": "wrk"}


def flow_table(runs, flow, key=AGG):
    lines = ["| users | tool | requests/s | p50 ms | p95 ms | p99 ms | requests | failures | client CPU | server CPU "
             "| other CPU |",
             "|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for u in sorted({r["users"] for r in runs if r["flow"] == flow}):
        by = {r["tool"]: r for r in runs if r["flow"] == flow and r["users"] == u}
        for tool in ("locust", "wrk"):
            r = by.get(tool)
            if not r or key not in r["stats"]:
                continue
            s = r["stats"][key]
            lines.append(f'| {u} | {TOOL[tool]} | {s["rps"]:.1f} | {ms(s["p50"])} | {ms(s["p95"])} | {ms(s["p99"])} '
                         f'| {s["count"]} | {s["failures"]} | {r["client_cpu_pct"]:.0f} % | {r["server_cpu_pct"]:.0f} % '
                         f'| {r["other_cpu_pct"]:.0f} % |')
        if "locust" in by and "wrk" in by and key in by["locust"]["stats"] and key in by["wrk"]["stats"]:
            a, b = by["locust"]["stats"][key], by["wrk"]["stats"][key]
            lines.append(f'| {u} | **Locust ÷ wrk** | **{ratio(a["rps"], b["rps"])}** | {ratio(a["p50"], b["p50"])} '
                         f'| {ratio(a["p95"], b["p95"])} | {ratio(a["p99"], b["p99"])} | | | | | |')
    return "\n".join(lines)


def detail_table(runs, flow):
    names = []
    for r in runs:
        if r["flow"] == flow:
            names += [n for n in r["stats"] if n != AGG and n not in names]
    lines = ["| users | tool | request | requests/s | p50 ms | p95 ms | p99 ms | failures |",
             "|--:|---|---|--:|--:|--:|--:|--:|"]
    for r in sorted((r for r in runs if r["flow"] == flow), key=lambda r: (r["users"], r["tool"])):
        for n in names:
            if n in r["stats"]:
                s = r["stats"][n]
                lines.append(f'| {r["users"]} | {TOOL[r["tool"]]} | `{n}` | {s["rps"]:.1f} | {ms(s["p50"])} '
                             f'| {ms(s["p95"])} | {ms(s["p99"])} | {s["failures"]} |')
    return "\n".join(lines)


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:  # noqa: BLE001
        return ""


def read(run_dir, name):
    try:
        with open(os.path.join(run_dir, name)) as f:
            return f.read().strip()
    except OSError:
        return "?"


def machine():
    cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
    mem = sh("awk '/MemTotal/ {printf \"%.1f GiB\", $2/1048576}' /proc/meminfo")
    osname = sh(". /etc/os-release && echo $PRETTY_NAME")
    return (f"{sh('nproc')} vCPU ({cpu}), {mem} RAM, {osname}, Linux {platform.release()}, "
            f"Python {platform.python_version()}")


def report(a):
    runs = load_runs(a.run_dir)
    flows = list(dict.fromkeys(r["flow"] for r in runs))
    durations = sorted({r["duration"] for r in runs})
    users = sorted({r["users"] for r in runs})
    commit = sh("git rev-parse --short HEAD")
    dirty = sh("git status --porcelain --untracked-files=no | wc -l")
    locust_v = sh(f"{os.path.dirname(sys.executable)}/locust --version").split(" from ")[0]
    wrk_v = sh("wrk -v 2>&1 | head -1").split(" [")[0]
    tools = list(dict.fromkeys(r["tool"] for r in runs))
    order = " then ".join(TOOL[t] for t in tools) if len(tools) > 1 else TOOL[tools[0]] + " only"
    out = [f"# Consent workflow load: Locust vs wrk (issue 20), {a.stamp} UTC", ""]
    out += [
        f"* **Date**: {a.stamp} UTC. **Machine**: {machine()}.",
        f"* **Server**: `alpes up` of commit {commit}"
        + (f" plus {dirty} uncommitted changed files" if dirty not in ("", "0") else "")
        + ", release build, embedded defaults (SQLite, local blobs, in-process mock Kafka), fresh data dir, "
        "one process on 127.0.0.1; the load generator runs on the same machine.",
        f"* **Load generators**: {locust_v} (one process, `FastHttpUser`, no wait time) and {wrk_v} "
        "(`-t N -c N`: one connection per thread, `flows.lua`). Both are closed loops: N users each send their next "
        "request when the previous one is answered.",
        f"* **Runs**: {', '.join(str(u) for u in users)} users, {', '.join(str(d) for d in durations)} s each, "
        f"{order} at each size, one after the other, with the server idle (under 10 % of a core) before each run; "
        f"flows in this order: {', '.join(flows)}.",
        "* **client / server / other CPU**: CPU time of the load generator / of `alpes up` / of every other "
        "process on the machine during the run, in % of one core (the machine has "
        f"{sh('nproc')} cores, so {100 * int(sh('nproc') or 1)} % is everything). Load average before / after: "
        f"{read(a.run_dir, 'loadavg-before')} / {read(a.run_dir, 'loadavg-after')}.",
        "",
    ]
    for flow in flows:
        out += [f"## {FLOW_TITLES.get(flow, flow)}", "", flow_table(runs, flow), ""]
        if flow == "registration":
            out += ["Per request:", "", detail_table(runs, flow), ""]
    errs = [(r, e, n) for r in runs for e, n in r["errors"].most_common(5)]
    out += ["## Failures", ""]
    if errs:
        out += [f'* {r["name"]}: {n} × {e}' for r, e, n in errs]
    else:
        out += ["None: every request got its success status (Locust: no failures; wrk: no non-2xx/unexpected "
                "status, no socket errors)."]
    hot = [r["name"] for r in runs if r.get("locust_cpu_warning")]
    if hot:
        out += ["", f"Locust warned that its own CPU usage was above 90 % in: {', '.join(hot)}."]
    warn = os.path.join(a.run_dir, "alpes-warnings.txt")
    if os.path.exists(warn):
        n = sum(1 for _ in open(warn, errors="replace"))
        out += ["", f"Server log: {n} WARN/ERROR lines."]
    out += ["", "## Commands", "", "```sh", "bench/locust/run.sh   # everything below, then this file",
            f"# environment: USERS=\"{' '.join(map(str, users))}\" DURATION={durations[-1]}",
            "ALPES_BOOTSTRAP_ADMIN_EMAIL=admin@bench.example ALPES_BOOTSTRAP_ADMIN_PASSWORD=... \\",
            f"  {a.server_cmd} &", a.setup_cmd]
    out += [r["command"] for r in runs]
    out += ["```", "", "Raw per-run data: Locust's `--csv` files, flows.lua's per-request logs and the server log stay in "
            f"`{a.run_dir}` (not committed)."]
    print("\n".join(out))


def one(a):
    r = [r for r in load_runs(a.run_dir) if r["name"] == a.name][-1]
    s = r["stats"][AGG]
    print(f'{r["name"]}: {s["rps"]:.1f} req/s, p50 {ms(s["p50"])} / p95 {ms(s["p95"])} / p99 {ms(s["p99"])} ms, '
          f'{s["count"]} requests, {s["failures"]} failures, client CPU {r["client_cpu_pct"]:.0f} %, '
          f'server CPU {r["server_cpu_pct"]:.0f} %, other CPU {r["other_cpu_pct"]:.0f} %, waited {r["quiet_wait_s"]} s for idle first')
    for e, n in r["errors"].most_common(3):
        print(f"  {n} x {e}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("one")
    p.add_argument("run_dir")
    p.add_argument("name")
    p = sub.add_parser("report")
    p.add_argument("run_dir")
    p.add_argument("--stamp", default="")
    p.add_argument("--server-cmd", default="alpes up")
    p.add_argument("--setup-cmd", default="bench/locust/setup.py")
    a = ap.parse_args()
    one(a) if a.cmd == "one" else report(a)


if __name__ == "__main__":
    main()
