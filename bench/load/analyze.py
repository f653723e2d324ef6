#!/usr/bin/env python3
"""Turns the raw logs of bench/load/run.sh into numbers (stdlib only).

    analyze.py wait    LOGDIR TAIL [--timeout S]      block until every accepted upload has an outcome
    analyze.py alpes   LOGDIR TAIL OUT.json [--label L] [--cpu-s X] [--minutes]
    analyze.py orthanc LOGDIR OUT.json [--label L] [--cpu-s X]
    analyze.py rss     SAMPLES.csv START END OUT.json
    analyze.py report  RESULTS_DIR                    Markdown tables on stdout

LOGDIR holds the per-thread `req-*.tsv` written by upload.lua; TAIL is the
file written by kafka_tail.py. Times are unix seconds; Kafka timestamps are
the producer's CreateTime in ms (same host clock).
"""

from __future__ import annotations

import glob
import json
import math
import os
import sys
import time

REGISTERED = "alpes.images.registered"
ANONYMIZED = "alpes.images.anonymized"
REJECTED = "alpes.images.rejected"


def pct(values, p):
    """Nearest-rank percentile (p in 0..100) of a list; None when empty."""
    if not values:
        return None
    v = sorted(values)
    k = max(0, min(len(v) - 1, math.ceil(p / 100 * len(v)) - 1))
    return v[k]


def dist_ms(values_s):
    if not values_s:
        return {"n": 0}
    ms = [x * 1000 for x in values_s]
    return {
        "n": len(ms),
        "mean": round(sum(ms) / len(ms), 3),
        "p50": round(pct(ms, 50), 3),
        "p90": round(pct(ms, 90), 3),
        "p99": round(pct(ms, 99), 3),
        "p99_9": round(pct(ms, 99.9), 3),
        "max": round(max(ms), 3),
    }


def read_log(logdir, fields, row):
    """Every request line of upload.lua's per-thread logs with at least `fields` fields, as `row(parts)`."""
    rows = []
    for path in sorted(glob.glob(os.path.join(logdir, "req-*.tsv"))):
        with open(path) as f:
            for line in f:
                p = line.rstrip("\n").split("\t")
                if len(p) >= fields:
                    rows.append(row(p))
    return rows


def read_alpes(logdir):
    return read_log(logdir, 10, lambda p: {
        "tid": int(p[0]), "pass": int(p[2]), "file": int(p[3]), "bytes": int(p[4]),
        "send": float(p[5]), "lat": float(p[6]), "status": int(p[7]), "id": p[8], "dup": int(p[9]),
        "err": p[10] if len(p) > 10 else "",
    })


def read_orthanc(logdir):
    return read_log(logdir, 12, lambda p: {
        "tid": int(p[0]), "file": int(p[3]), "bytes": int(p[4]), "send": float(p[5]),
        "lat": float(p[6]), "status": int(p[7]), "id": p[8], "anon_status": int(p[9]),
        "anon_lat": float(p[10]), "anon_bytes": int(p[11]),
    })


def read_tail(tail, wanted=None):
    """{topic: {key: ts_ms}} (first occurrence), optionally only for keys in `wanted`."""
    out = {REGISTERED: {}, ANONYMIZED: {}, REJECTED: {}}
    if not os.path.exists(tail):
        return out
    with open(tail) as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if len(p) < 5 or p[0] not in out:
                continue
            if wanted is not None and p[3] not in wanted:
                continue
            out[p[0]].setdefault(p[3], int(p[4]))
    return out


def status_counts(rows, key="status"):
    c = {}
    for r in rows:
        c[str(r[key])] = c.get(str(r[key]), 0) + 1
    return dict(sorted(c.items()))


def cmd_wait(argv):
    logdir, tail = argv[0], argv[1]
    timeout = float(argv[argv.index("--timeout") + 1]) if "--timeout" in argv else 600
    ids = {r["id"] for r in read_alpes(logdir) if r["status"] == 202 and not r["dup"]}
    t0 = time.time()
    last = -1
    while True:
        ev = read_tail(tail, ids)
        done = len(set(ev[ANONYMIZED]) | set(ev[REJECTED]))
        if done >= len(ids):
            print(f"wait: all {len(ids)} accepted uploads have an outcome ({len(ev[REJECTED])} rejected) after {time.time() - t0:.1f}s")
            return 0
        if time.time() - t0 > timeout:
            print(f"wait: TIMEOUT after {timeout:.0f}s: {done}/{len(ids)} outcomes", file=sys.stderr)
            return 1
        if done != last:
            last = done
        time.sleep(1.0)


def alpes_summary(rows, ev, label, cpu_s=None):
    ok = [r for r in rows if r["status"] == 202]
    fresh = [r for r in ok if not r["dup"]]
    first = min(r["send"] for r in rows)
    last_resp = max(r["send"] + r["lat"] for r in rows)
    wall = last_resp - first
    nbytes = sum(r["bytes"] for r in ok)
    anon = ev[ANONYMIZED]
    rej = ev[REJECTED]
    reg = ev[REGISTERED]
    outcome = {}
    for r in fresh:
        ts = anon.get(r["id"], rej.get(r["id"]))
        if ts is not None:
            outcome[r["id"]] = ts / 1000.0
    e2e = [anon[r["id"]] / 1000.0 - r["send"] for r in fresh if r["id"] in anon]
    after_reg = [(anon[r["id"]] - reg[r["id"]]) / 1000.0 for r in fresh if r["id"] in anon and r["id"] in reg]
    last_outcome = max(outcome.values()) if outcome else None
    pipe_wall = (last_outcome - first) if last_outcome else None
    s = {
        "label": label,
        "system": "alpes",
        "requests": len(rows),
        "status": status_counts(rows),
        "non_2xx": sum(1 for r in rows if not 200 <= r["status"] < 300),
        "duplicates": sum(1 for r in ok if r["dup"]),
        "error_samples": [{"status": r["status"], "file": r["file"], "latency_ms": round(r["lat"] * 1000, 3), "body": r["err"]}
                          for r in rows if r["status"] != 202][:10],
        "accepted": len(fresh),
        "upload_wall_s": round(wall, 3),
        "uploads_per_s": round(len(ok) / wall, 1) if wall > 0 else None,
        "upload_MB_per_s": round(nbytes / 1e6 / wall, 2) if wall > 0 else None,
        "bytes": nbytes,
        "upload_latency_ms": dist_ms([r["lat"] for r in ok]),
        "anonymized": sum(1 for r in fresh if r["id"] in anon),
        "rejected": sum(1 for r in fresh if r["id"] in rej),
        "missing_outcome": sum(1 for r in fresh if r["id"] not in outcome),
        "pipeline_wall_s": round(pipe_wall, 3) if pipe_wall else None,
        "pipeline_files_per_s": round(len(outcome) / pipe_wall, 1) if pipe_wall else None,
        "pipeline_MB_per_s": round(sum(r["bytes"] for r in fresh if r["id"] in outcome) / 1e6 / pipe_wall, 2) if pipe_wall else None,
        "e2e_ms": dist_ms(e2e),
        "registered_to_anonymized_ms": dist_ms(after_reg),
    }
    if cpu_s is not None:
        s["alpes_cpu_s"] = cpu_s
        s["alpes_cpu_ms_per_file"] = round(cpu_s * 1000 / max(1, len(fresh)), 3)
    return s


def per_minute(rows, ev):
    """Per-minute slices of a long run: uploads/s, upload p50/p99, e2e p50/p99, outcomes/s."""
    if not rows:
        return []
    t0 = min(r["send"] for r in rows)
    anon = ev[ANONYMIZED]
    buckets = {}
    for r in rows:
        buckets.setdefault(int((r["send"] - t0) // 60), []).append(r)
    out_ts = sorted(v / 1000.0 for v in anon.values())
    res = []
    for m in sorted(buckets):
        b = buckets[m]
        ok = [r for r in b if r["status"] == 202]
        e2e = [anon[r["id"]] / 1000.0 - r["send"] for r in ok if r["id"] in anon]
        lo, hi = t0 + 60 * m, t0 + 60 * (m + 1)
        n_out = sum(1 for t in out_ts if lo <= t < hi)
        span = min(60.0, max(r["send"] for r in b) - lo) or 60.0
        lat = dist_ms([r["lat"] for r in ok])
        e = dist_ms(e2e)
        res.append({
            "minute": m, "uploads": len(b), "uploads_per_s": round(len(b) / span, 1),
            "non_2xx": sum(1 for r in b if r["status"] != 202),
            "upload_p50_ms": lat.get("p50"), "upload_p99_ms": lat.get("p99"), "upload_max_ms": lat.get("max"),
            "e2e_p50_ms": e.get("p50"), "e2e_p99_ms": e.get("p99"), "anonymized_per_s": round(n_out / 60.0, 1),
        })
    return res


def extras(argv):
    """--extra KEY=VALUE pairs (numbers parsed) to add to a summary."""
    out = {}
    for i, a in enumerate(argv):
        if a == "--extra" and i + 1 < len(argv):
            k, _, v = argv[i + 1].partition("=")
            try:
                out[k] = int(v)
            except ValueError:
                try:
                    out[k] = float(v)
                except ValueError:
                    out[k] = v
    return out


def cmd_alpes(argv):
    logdir, tail, out = argv[0], argv[1], argv[2]
    label = argv[argv.index("--label") + 1] if "--label" in argv else os.path.basename(logdir)
    cpu = float(argv[argv.index("--cpu-s") + 1]) if "--cpu-s" in argv else None
    rows = read_alpes(logdir)
    ids = {r["id"] for r in rows}
    ev = read_tail(tail, ids)
    s = alpes_summary(rows, ev, label, cpu)
    s.update(extras(argv))
    if "--minutes" in argv:
        s["per_minute"] = per_minute(rows, ev)
    with open(out, "w") as f:
        json.dump(s, f, indent=1)
    print(json.dumps({k: v for k, v in s.items() if k != "per_minute"}, indent=1))
    return 0


def cmd_orthanc(argv):
    logdir, out = argv[0], argv[1]
    label = argv[argv.index("--label") + 1] if "--label" in argv else os.path.basename(logdir)
    cpu = float(argv[argv.index("--cpu-s") + 1]) if "--cpu-s" in argv else None
    rows = read_orthanc(logdir)
    ok = [r for r in rows if r["status"] == 200 and r["anon_status"] == 200]
    first = min(r["send"] for r in rows)
    last = max(r["send"] + r["lat"] + r["anon_lat"] for r in rows)
    wall = last - first
    nbytes = sum(r["bytes"] for r in ok)
    s = {
        "label": label,
        "system": "orthanc",
        "requests": len(rows),
        "store_status": status_counts(rows),
        "anonymize_status": status_counts(rows, "anon_status"),
        "completed": len(ok),
        "failed": len(rows) - len(ok),
        "pipeline_wall_s": round(wall, 3),
        "pipeline_files_per_s": round(len(ok) / wall, 1) if wall > 0 else None,
        "pipeline_MB_per_s": round(nbytes / 1e6 / wall, 2) if wall > 0 else None,
        "bytes": nbytes,
        "store_latency_ms": dist_ms([r["lat"] for r in ok]),
        "anonymize_latency_ms": dist_ms([r["anon_lat"] for r in ok]),
        "store_plus_anonymize_ms": dist_ms([r["lat"] + r["anon_lat"] for r in ok]),
    }
    if cpu is not None:
        s["orthanc_cpu_s"] = cpu
        s["orthanc_cpu_ms_per_file"] = round(cpu * 1000 / max(1, len(ok)), 3)
    s.update(extras(argv))
    with open(out, "w") as f:
        json.dump(s, f, indent=1)
    print(json.dumps(s, indent=1))
    return 0


def cmd_rss(argv):
    """RSS over a window of the sampler's CSV: start/middle/end, min/max and a least-squares slope."""
    path, start, end, out = argv[0], float(argv[1]), float(argv[2]), argv[3]
    pts = []
    with open(path) as f:
        header = f.readline().strip().split(",")
        for line in f:
            d = dict(zip(header, line.strip().split(",")))
            t = float(d["unix_s"])
            if start <= t <= end and d.get("alpes_rss_kb", "") not in ("", "-"):
                pts.append((t - start, int(d["alpes_rss_kb"]) / 1024.0))
    s = {"samples": len(pts)}
    if len(pts) >= 3:
        n = len(pts)
        mx = sum(p[0] for p in pts) / n
        my = sum(p[1] for p in pts) / n
        sxx = sum((p[0] - mx) ** 2 for p in pts)
        slope = sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx if sxx else 0.0
        half = [p for p in pts if p[0] >= pts[-1][0] / 2]
        mh = sum(p[0] for p in half) / len(half)
        myh = sum(p[1] for p in half) / len(half)
        sxxh = sum((p[0] - mh) ** 2 for p in half)
        slope2 = sum((p[0] - mh) * (p[1] - myh) for p in half) / sxxh if sxxh else 0.0
        s.update({
            "start_MiB": round(pts[0][1], 1),
            "at_1min_MiB": round(min(pts, key=lambda p: abs(p[0] - 60))[1], 1),
            "middle_MiB": round(pts[n // 2][1], 1),
            "end_MiB": round(pts[-1][1], 1),
            "min_MiB": round(min(p[1] for p in pts), 1),
            "max_MiB": round(max(p[1] for p in pts), 1),
            "slope_MiB_per_min": round(slope * 60, 3),
            "slope_second_half_MiB_per_min": round(slope2 * 60, 3),
            "duration_s": round(pts[-1][0], 1),
        })
    with open(out, "w") as f:
        json.dump(s, f, indent=1)
    print(json.dumps(s, indent=1))
    return 0


def fmt(v, nd=1):
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    return f"{v:,}"


def cmd_report(argv):
    d = argv[0]
    load = lambda name: json.load(open(os.path.join(d, name))) if os.path.exists(os.path.join(d, name)) else None
    meta = load("meta.json") or {}
    conc = meta.get("concurrency", [])
    print("| C | system | files | files/s upload→anonymized | MB/s | upload (store) p50 / p99 ms | end-to-end p50 / p99 ms | non-2xx | server CPU ms/file | server RSS after, MiB | wrk CPU s |")
    print("|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    systems = (("alpes", "Alpes: POST /imagenes → ImagenAnonimizada (mock broker, SQLite, local blobs)"),
               ("alpes-engines", "Alpes on the real engines (Kafka ×3, Cassandra, S3, registry)"))

    def alpes_row(c, a, label):
        print(f"| {c} | {label} | {a['anonymized'] + a['rejected']} | {fmt(a['pipeline_files_per_s'])} | {fmt(a['pipeline_MB_per_s'], 2)} | "
              f"{fmt(a['upload_latency_ms'].get('p50'), 2)} / {fmt(a['upload_latency_ms'].get('p99'), 2)} | "
              f"{fmt(a['e2e_ms'].get('p50'), 1)} / {fmt(a['e2e_ms'].get('p99'), 1)} | {a['non_2xx']} | {fmt(a.get('alpes_cpu_ms_per_file'), 2)} | {fmt(a.get('rss_after_kb', 0) / 1024)} | {a.get('client_cpu_s')} |")

    def ratio_row(c, num, den, label):
        if num and den and num.get("pipeline_files_per_s") and den.get("pipeline_files_per_s"):
            r = num["pipeline_files_per_s"] / den["pipeline_files_per_s"]
            print(f"| {c} | **ratio {label}** | | **{r:.2f}×** | | | | | | | |")

    for c in conc:
        o = load(f"orthanc-c{c}.json")
        a = {name: load(f"{name}-c{c}.json") for name, _ in systems}
        if o:
            print(f"| {c} | Orthanc: POST /instances + /anonymize | {o['completed']} | {fmt(o['pipeline_files_per_s'])} | {fmt(o['pipeline_MB_per_s'], 2)} | "
                  f"{fmt(o['store_latency_ms'].get('p50'), 2)} / {fmt(o['store_latency_ms'].get('p99'), 2)} | "
                  f"{fmt(o['store_plus_anonymize_ms'].get('p50'), 2)} / {fmt(o['store_plus_anonymize_ms'].get('p99'), 2)} | {o['failed']} | {fmt(o.get('orthanc_cpu_ms_per_file'), 2)} | {fmt(o.get('rss_after_kb', 0) / 1024)} | {o.get('client_cpu_s')} |")
        for name, label in systems:
            if a[name]:
                alpes_row(c, a[name], label)
        ratio_row(c, a["alpes"], o, "Alpes ÷ Orthanc")
        ratio_row(c, a["alpes-engines"], o, "Alpes on the engines ÷ Orthanc")
        ratio_row(c, a["alpes-engines"], a["alpes"], "Alpes on the engines ÷ Alpes on the mock")
    print()
    print("| C | Alpes upload phase | uploads/s | MB/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | anonymized/s (first upload → last event) | registered→anonymized p50 / p99 ms |")
    print("|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for c, name in ((c, name) for c in conc for name, _ in systems):
        a = load(f"{name}-c{c}.json")
        if a:
            L = a["upload_latency_ms"]
            where = " on the engines" if name == "alpes-engines" else ""
            print(f"| {c} | {a['requests']} uploads{where}, {a['non_2xx']} non-2xx, {a['duplicates']} duplicates | {fmt(a['uploads_per_s'])} | {fmt(a['upload_MB_per_s'], 2)} | "
                  f"{fmt(L.get('p50'), 2)} | {fmt(L.get('p90'), 2)} | {fmt(L.get('p99'), 2)} | {fmt(L.get('p99_9'), 2)} | {fmt(L.get('max'), 1)} | "
                  f"{fmt(a['pipeline_files_per_s'])} | {fmt(a['registered_to_anonymized_ms'].get('p50'), 1)} / {fmt(a['registered_to_anonymized_ms'].get('p99'), 1)} |")
    for name in ("target", "sustained"):
        s = load(f"{name}.json")
        r = load(f"{name}-rss.json")
        if not s:
            continue
        L, E = s["upload_latency_ms"], s["e2e_ms"]
        print()
        title = "Target load (3 × Orthanc's files/s)" if name == "target" else "Sustained run (memory)"
        print(f"**{title}**: target {s.get('target_rate')} uploads/s, C={s.get('concurrency')}, {s.get('seconds')} s: "
              f"{s['requests']} uploads ({s['non_2xx']} non-2xx, {s['duplicates']} duplicates), achieved {fmt(s['uploads_per_s'])} uploads/s, "
              f"{fmt(s['upload_MB_per_s'], 2)} MB/s; upload latency p50 {fmt(L.get('p50'), 2)} / p90 {fmt(L.get('p90'), 2)} / p99 {fmt(L.get('p99'), 2)} / "
              f"p99.9 {fmt(L.get('p99_9'), 2)} / max {fmt(L.get('max'), 1)} ms; end-to-end (upload start → ImagenAnonimizada) "
              f"p50 {fmt(E.get('p50'), 1)} / p99 {fmt(E.get('p99'), 1)} / max {fmt(E.get('max'), 1)} ms; first upload → last event "
              f"{fmt(s['pipeline_files_per_s'])} files/s; anonymized {s['anonymized']}, rejected {s['rejected']}, missing {s['missing_outcome']}; "
              f"Alpes CPU {fmt(s.get('alpes_cpu_ms_per_file'), 2)} ms/file, client (wrk) CPU {s.get('client_cpu_s')} s.")
        if r and r.get("samples", 0) >= 3:
            print()
            print(f"Alpes RSS during it: start {r.get('start_MiB')} MiB, after 1 min {r.get('at_1min_MiB')}, middle {r.get('middle_MiB')}, "
                  f"end {r.get('end_MiB')} MiB (min {r.get('min_MiB')}, max {r.get('max_MiB')}); least-squares slope {r.get('slope_MiB_per_min')} MiB/min "
                  f"overall, {r.get('slope_second_half_MiB_per_min')} MiB/min over the second half; {r.get('samples')} samples; "
                  f"idle 20 s after the drain: {round(s.get('rss_idle_after_kb', 0) / 1024, 1)} MiB.")
        if s.get("per_minute"):
            print()
            print("| minute | uploads/s | non-2xx | upload p50 ms | upload p99 ms | upload max ms | e2e p50 ms | e2e p99 ms | anonymized/s |")
            print("|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
            for m in s["per_minute"]:
                print(f"| {m['minute']} | {fmt(m['uploads_per_s'])} | {m['non_2xx']} | {fmt(m['upload_p50_ms'], 2)} | {fmt(m['upload_p99_ms'], 2)} | "
                      f"{fmt(m['upload_max_ms'], 1)} | {fmt(m['e2e_p50_ms'], 1)} | {fmt(m['e2e_p99_ms'], 1)} | {fmt(m['anonymized_per_s'])} |")
    return 0


def main():
    cmds = {"wait": cmd_wait, "alpes": cmd_alpes, "orthanc": cmd_orthanc, "rss": cmd_rss, "report": cmd_report}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        print(__doc__, file=sys.stderr)
        return 2
    return cmds[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
