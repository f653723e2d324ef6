#!/usr/bin/env python3
"""report.md for the read-path bench (bench/query/run.sh). Stdlib only.

    report.py RESULTS          the whole report on stdout
    report.py --last RESULTS   one line on the last run in RESULTS/runs.jsonl
"""

from __future__ import annotations

import json
import os
import statistics
import sys


def load_runs(results: str) -> list[dict]:
    runs = []
    for line in open(os.path.join(results, "runs.jsonl")):
        if line.strip():
            d = json.loads(line)
            d["rps"] = d["requests"] / d["duration_us"] * 1e6 if d["duration_us"] else 0.0
            d["socket_errors"] = d["connect"] + d["read"] + d["write"] + d["timeout"]
            # non200 is -1 when get.lua did not check statuses; wrk's own count (> 399) remains.
            d["bad"] = max(d["non200"], 0) + (d["status_errors"] if d["non200"] < 0 else 0)
            d["flagged"] = d["bad"] > 0 or d["socket_errors"] > 0 or d["requests"] == 0
            d["server_cpu_us_per_req"] = d["server_cpu_s"] / d["requests"] * 1e6 if d["requests"] else 0.0
            runs.append(d)
    return runs


def ms(us: float) -> str:
    return f"{us / 1000:.2f}"


def last_line(results: str) -> str:
    d = load_runs(results)[-1]
    return (f"{d['rps']:.0f} req/s, p50 {ms(d['p50_us'])} ms, p99 {ms(d['p99_us'])} ms, "
            f"max {ms(d['max_us'])} ms, non-200 {d['non200'] if d['non200'] >= 0 else 'unchecked'}, "
            f"status > 399 {d['status_errors']}, socket errors {d['socket_errors']}, "
            f"server CPU {d['server_cpu_s']} s, wrk CPU {d['wrk_cpu_s']} s"
            + ("  ** FLAGGED **" if d["flagged"] else ""))


def read(results: str, name: str, default: str = "") -> str:
    try:
        return open(os.path.join(results, name)).read().strip()
    except OSError:
        return default


def main(results: str) -> None:
    meta = json.load(open(os.path.join(results, "meta.json")))
    prep = json.load(open(os.path.join(results, "prepare.json")))
    runs = load_runs(results)
    servers = ["alpes", "orthanc"]
    by = {s: [r for r in runs if r["server"] == s] for s in servers}
    out: list[str] = []
    w = out.append

    w(f"# Read path: Alpes `GET /imagenes/{{id}}` vs Orthanc `GET /instances/{{id}}`\n")
    w(f"{meta['date_utc']} UTC, commit {meta['commit']}, {meta['nproc']} cores ({meta['cpu']}), "
      f"{meta['connections']} connections, {meta['threads']} wrk threads, {meta['duration_s']} s per run "
      f"(after a {meta['warmup_s']} s warm-up run), {meta['rounds']} round(s) (Alpes then Orthanc in each), "
      f"{meta['ids']} images read round-robin, the same files in both servers.\n")

    cols = ("| round | server | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | non-200 | socket err "
            "| server CPU s | server CPU µs/req | wrk CPU s | idle server CPU s | load1 before |")
    sep = "|" + "---|" * (cols.count("|") - 1)

    def row(label: str, d: dict) -> str:
        bad = str(d["non200"]) if d["non200"] >= 0 else f"({d['status_errors']} > 399)"
        flag = " **flagged**" if d["flagged"] else ""
        return (f"| {label} | {d['server']}{flag} | {d['rps']:,.0f} | {ms(d['p50_us'])} | {ms(d['p90_us'])} | "
                f"{ms(d['p99_us'])} | {ms(d['p999_us'])} | {ms(d['max_us'])} | {bad} | {d['socket_errors']} | "
                f"{d['server_cpu_s']:.2f} | {d['server_cpu_us_per_req']:.0f} | {d['wrk_cpu_s']:.2f} | "
                f"{d['other_server_cpu_s']:.2f} | {d['loadavg1_before']:.2f} |")

    def ratio_row(label: str, a: dict, o: dict) -> str:
        rr = a["rps"] / o["rps"] if o["rps"] else float("nan")
        pr = a["p99_us"] / o["p99_us"] if o["p99_us"] else float("nan")
        return f"| {label} | **Alpes / Orthanc** | **{rr:.2f}×** | | | **{pr:.2f}×** | | | | | | | | | |"

    w("## Median over rounds\n")
    w(cols)
    w(sep)
    med: dict[str, dict] = {}
    for s in servers:
        rs = by[s]
        if not rs:
            continue
        m = {"server": s}
        for k in ("rps", "p50_us", "p90_us", "p99_us", "p999_us", "max_us", "server_cpu_s",
                  "server_cpu_us_per_req", "wrk_cpu_s", "other_server_cpu_s", "loadavg1_before"):
            m[k] = statistics.median(r[k] for r in rs)
        m["non200"] = sum(r["non200"] for r in rs) if all(r["non200"] >= 0 for r in rs) else -1
        m["status_errors"] = sum(r["status_errors"] for r in rs)
        m["socket_errors"] = sum(r["socket_errors"] for r in rs)
        m["flagged"] = any(r["flagged"] for r in rs)
        med[s] = m
        w(row("median", m))
    if len(med) == 2:
        w(ratio_row("median", med["alpes"], med["orthanc"]))
    w("\nMedian of each column separately; non-200 and socket errors are the sums over all rounds. "
      "The idle server is the one not being measured (its background CPU during the run); "
      "server CPU µs/req = server CPU s ÷ requests.\n")

    if "alpes" in med and meta["connections"] == 64:
        a = med["alpes"]
        ok_rps, ok_p99 = a["rps"] >= 30000, a["p99_us"] <= 4000
        w(f"**Issue 15 target** (≥ 30,000 req/s with p99 ≤ 4 ms at 64 connections, Alpes median): "
          f"{a['rps']:,.0f} req/s ({'met' if ok_rps else 'NOT met'}), p99 {ms(a['p99_us'])} ms "
          f"({'met' if ok_p99 else 'NOT met'})"
          + ("; some runs flagged for errors" if a["flagged"] else "") + ".\n")

    w("## Every round\n")
    w(cols)
    w(sep)
    for rnd in sorted({r["round"] for r in runs}):
        pair = {r["server"]: r for r in runs if r["round"] == rnd}
        for s in servers:
            if s in pair:
                w(row(str(rnd), pair[s]))
        if len(pair) == 2:
            w(ratio_row(str(rnd), pair["alpes"], pair["orthanc"]))
    flagged = [r for r in runs if r["flagged"]]
    if flagged:
        w("\n**Flagged runs** (a non-200 answer or a socket error):\n")
        for r in flagged:
            w(f"* round {r['round']} {r['server']}: non-200 {r['non200']}, status > 399 {r['status_errors']}, "
              f"connect {r['connect']}, read {r['read']}, write {r['write']}, timeout {r['timeout']}; "
              f"first bad answer: `{(r.get('first_bad') or '-')[:200]}`")
    else:
        w(("\nEvery response of every run was 200 (get.lua checked each status)" if meta.get("check_status")
           else "\nNo response with a status > 399 (wrk's count; statuses were not checked one by one)")
          + ", and no socket errors.")
    w("")

    w("## What each returns\n")
    w("| | Alpes `GET /imagenes/{id}` (consumer token) | Orthanc `GET /instances/{id}` |")
    w("|---|---|---|")
    bb = prep.get("body_bytes", {})
    w(f"| body of one sample response, bytes (`curl -s \\| wc -c`) | {read(results, 'sample-alpes.bytes', '?')} | "
      f"{read(results, 'sample-orthanc.bytes', '?')} |")
    if bb:
        w(f"| body bytes over all {prep['used']} ids, min / mean / max | "
          f"{bb['alpes']['min']} / {bb['alpes']['mean']} / {bb['alpes']['max']} | "
          f"{bb['orthanc']['min']} / {bb['orthanc']['mean']} / {bb['orthanc']['max']} |")
    per = {s: statistics.median(r["bytes"] / r["requests"] for r in by[s]) for s in servers if by[s]}
    if len(per) == 2:
        w(f"| bytes read per response by wrk (headers + body) | {per['alpes']:.0f} | {per['orthanc']:.0f} |")

    def headers(name: str) -> str:
        h = read(results, f"sample-{name}.headers").splitlines()
        keep = [x for x in h if x.split(":")[0].lower() in ("content-type", "etag", "content-length", "cache-control")]
        return "<br>".join(f"`{x}`" for x in ([h[0]] if h else []) + keep)

    w(f"| status line and headers | {headers('alpes')} | {headers('orthanc')} |")
    keys = prep.get("sample_keys", {})
    w(f"| top-level JSON keys | {', '.join(keys.get('alpes', []))} | {', '.join(keys.get('orthanc', []))} |")
    w("")

    w("## Data\n")
    w(f"* {prep['files']} corpus files (`FILES`) uploaded to both (not timed: {prep['upload_s']} s, "
      f"then {prep['anonymize_wait_s']} s until Alpes had anonymized them); Alpes outcomes: "
      f"{json.dumps(prep['alpes_estados'])}; {prep['used']} files used by both benches, "
      f"{prep['left_out_count']} left out of both.")
    if prep.get("alpes_upload_retries"):
        w(f"* Alpes answered {prep['alpes_upload_retries']} uploads with 503/429 (retried; first: "
          f"`{prep['alpes_upload_retry_first'][:200]}`).")
    w(f"* Distinct ids read: Alpes {prep['alpes_distinct_ids']}, Orthanc {prep['orthanc_distinct_ids']} "
      f"(Orthanc `AlreadyStored` answers: {prep['orthanc_already_stored']}).")
    for x in prep.get("left_out", [])[:5]:
        w(f"  * left out: `{x['file']}` (estado `{x['estado'] or '-'}`) {x['note'][:200]}")
    w("")

    w("## Meta\n")
    for k in ("date_utc", "commit", "alpes_sha256", "nproc", "cpu", "mem_gib", "kernel", "loadavg_before",
              "loadavg_after", "wrk", "orthanc", "orthanc_http_threads", "check_status", "alpes_up_args", "work_dir"):
        w(f"* {k}: `{meta.get(k, '')}`")
    w(f"* Alpes log: {read(results, 'alpes-warnings.txt', '?').splitlines()[0] if read(results, 'alpes-warnings.txt') else '?'}"
      f" (first lines in `alpes-warnings.txt`); server log sizes, bytes: "
      f"{'; '.join(read(results, 'server-log-bytes.txt').splitlines())}")
    w("* wrk command lines (each measured run; the warm-up runs are the same with their own `-d`):")
    for s in servers:
        w(f"  * `{read(results, f'command-{s}.txt', '?')}`")
    w("")
    w("## Caveats\n")
    w(f"* Client and servers share the machine's {meta['nproc']} cores: wrk's CPU seconds are in the tables; "
      "on a small machine wrk takes a real share, and both servers stay up (the idle one's background CPU "
      "is in the tables too).")
    w("* Alpes verifies a JWT (the consumer's bearer token) on every request; Orthanc runs without "
      "authentication. The two JSON bodies differ (see above).")
    w("* Both answer from their SQLite index (Alpes: the catalog; Orthanc: its index), "
      "no DICOM file is read; wrk caches nothing (no `If-None-Match`, so Alpes never answers 304).")
    w("* Latency percentiles are wrk 4.1's, which include its coordinated-omission correction "
      "(synthetic samples for responses slower than twice the mean per-connection interval): "
      "the same numbers as `wrk --latency` prints (`wrk-*.txt`).")
    print("\n".join(out))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--last":
        print(last_line(sys.argv[2]))
    else:
        main(sys.argv[1])
