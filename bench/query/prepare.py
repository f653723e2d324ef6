#!/usr/bin/env python3
"""Load the same DICOM files into Alpes and Orthanc for the read-path bench
(bench/query/run.sh). Not timed as part of the measurement. Stdlib only.

1. Uploads every file of FILES_TXT to both servers, PARALLEL at a time:
   Alpes `POST /imagenes` (provider token), Orthanc `POST /instances`. An Alpes 503 or
   429 is retried (up to 5 times) and counted in prepare.json.
2. Waits until Alpes has an outcome for every upload: `GET /imagenes/{id}` with the
   provider's token until `estado` is `anonimizada` or `rechazada`.
3. Checks every pair the bench will read: Alpes `GET /imagenes/{id}` with the
   consumer's token and Orthanc `GET /instances/{ID}` must both answer 200.
4. Writes OUT/alpes-ids.txt and OUT/orthanc-ids.txt (line k of each = the same file;
   files Alpes rejected or that failed anywhere are left out of both),
   OUT/uploads.tsv (one row per file) and OUT/prepare.json (counts, body sizes).

Usage: prepare.py FILES_TXT OUT --alpes URL --prov-token T --cons-token T --orthanc URL
                  [--parallel 4] [--wait-s 900] [--query QS]
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import http.client
import json
import statistics
import sys
import threading
import time
import urllib.parse


class Client:
    """One keep-alive connection per (thread, server)."""

    def __init__(self, base: str):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port
        self.local = threading.local()

    def call(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        for attempt in range(3):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = self.local.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
            try:
                conn.request(method, path, body=body, headers=headers or {})
                r = conn.getresponse()
                data = r.read()
                return r.status, data
            except (http.client.HTTPException, OSError):
                conn.close()
                self.local.conn = None
                if attempt == 2:
                    raise
                time.sleep(0.2)
        raise AssertionError("unreachable")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] prepare: {msg}", file=sys.stderr, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("files")
    ap.add_argument("out")
    ap.add_argument("--alpes", required=True)
    ap.add_argument("--prov-token", required=True)
    ap.add_argument("--cons-token", required=True)
    ap.add_argument("--orthanc", required=True)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--wait-s", type=float, default=900)
    ap.add_argument("--query", default="")
    a = ap.parse_args()

    files = [line for line in open(a.files).read().splitlines() if line]
    alpes, orthanc = Client(a.alpes), Client(a.orthanc)
    prov = {"Authorization": f"Bearer {a.prov_token}"}
    cons = {"Authorization": f"Bearer {a.cons_token}"}
    upload_path = "/imagenes" + (f"?{a.query}" if a.query else "")
    rows = [{"file": f, "alpes_id": "", "orthanc_id": "", "estado": "", "note": ""} for f in files]

    # ------------------------------------------------------------ 1. upload
    retried: list[str] = []  # Alpes answers retried (503 / 429): counted in prepare.json

    def upload(row):
        body = open(row["file"], "rb").read()
        for attempt in range(6):
            st, data = alpes.call("POST", upload_path, body, {**prov, "Content-Type": "application/dicom"})
            if st not in (429, 503) or attempt == 5:
                break
            retried.append(f"{st} {data[:200].decode(errors='replace')}")
            time.sleep(0.2 * (attempt + 1))
        if st == 202:
            row["alpes_id"] = json.loads(data)["id"]
        else:
            row["note"] += f"alpes POST {st} {data[:200]!r}; "
        st, data = orthanc.call("POST", "/instances", body, {"Content-Type": "application/dicom"})
        if st == 200:
            d = json.loads(data)
            row["orthanc_id"] = d["ID"]
            row["orthanc_status"] = d.get("Status", "")
        else:
            row["note"] += f"orthanc POST {st} {data[:200]!r}; "

    t0 = time.monotonic()
    with cf.ThreadPoolExecutor(a.parallel) as pool:
        list(pool.map(upload, rows))
    upload_s = time.monotonic() - t0
    log(f"uploaded {len(rows)} files to both in {upload_s:.1f} s"
        + (f"; {len(retried)} Alpes answers retried, first: {retried[0]}" if retried else ""))

    # ------------------------------------------------------------ 2. wait for Alpes' outcomes
    def estado(row):
        st, data = alpes.call("GET", f"/imagenes/{row['alpes_id']}", None, prov)
        if st == 200:
            row["estado"] = json.loads(data).get("estado", "")
        elif st != 404:  # 404: not materialized yet
            row["estado"] = f"http-{st}"

    t1 = time.monotonic()
    pending = [r for r in rows if r["alpes_id"]]
    last_log = 0.0
    while pending:
        with cf.ThreadPoolExecutor(a.parallel) as pool:
            list(pool.map(estado, pending))
        pending = [r for r in pending if r["estado"] in ("", "registrada")]
        waited = time.monotonic() - t1
        if not pending:
            break
        if waited > a.wait_s:
            log(f"{len(pending)} images still without an outcome after {a.wait_s:.0f} s; leaving them out")
            for r in pending:
                r["note"] += f"no outcome after {a.wait_s:.0f} s (estado {r['estado'] or 'not in catalog'}); "
            break
        if waited - last_log >= 10:
            log(f"waiting for {len(pending)} of {len(rows)} images to be anonymized ({waited:.0f} s)")
            last_log = waited
        time.sleep(1)
    wait_s = time.monotonic() - t1
    log(f"every upload has an outcome after {wait_s:.1f} s")

    # ------------------------------------------------------------ 3. check what the bench reads
    sizes: dict[str, list[int]] = {"alpes": [], "orthanc": []}
    samples: dict[str, dict] = {}
    lock = threading.Lock()

    def check(row):
        if row["estado"] != "anonimizada" or not row["orthanc_id"]:
            return
        st, data = alpes.call("GET", f"/imagenes/{row['alpes_id']}", None, cons)
        st2, data2 = orthanc.call("GET", f"/instances/{row['orthanc_id']}")
        if st != 200:
            row["note"] += f"alpes GET (consumer) {st} {data[:200]!r}; "
        if st2 != 200:
            row["note"] += f"orthanc GET {st2} {data2[:200]!r}; "
        if st == 200 and st2 == 200:
            row["ok"] = True
            with lock:
                sizes["alpes"].append(len(data))
                sizes["orthanc"].append(len(data2))
                samples.setdefault("alpes", json.loads(data))
                samples.setdefault("orthanc", json.loads(data2))

    with cf.ThreadPoolExecutor(a.parallel) as pool:
        list(pool.map(check, rows))

    # ------------------------------------------------------------ 4. write
    ok = [r for r in rows if r.get("ok")]
    with open(f"{a.out}/alpes-ids.txt", "w") as fa, open(f"{a.out}/orthanc-ids.txt", "w") as fo:
        for r in ok:
            fa.write(r["alpes_id"] + "\n")
            fo.write(r["orthanc_id"] + "\n")
    with open(f"{a.out}/uploads.tsv", "w") as f:
        f.write("file\talpes_id\testado\torthanc_id\torthanc_status\tused\tnote\n")
        for r in rows:
            f.write("\t".join([r["file"], r["alpes_id"], r["estado"], r["orthanc_id"],
                               r.get("orthanc_status", ""), "1" if r.get("ok") else "0", r["note"]]) + "\n")

    def dist(v):
        return {"min": min(v), "mean": round(statistics.mean(v), 1), "max": max(v)} if v else {}

    estados: dict[str, int] = {}
    for r in rows:
        estados[r["estado"] or "-"] = estados.get(r["estado"] or "-", 0) + 1
    summary = {
        "files": len(rows),
        "used": len(ok),
        "alpes_estados": estados,
        "alpes_distinct_ids": len({r["alpes_id"] for r in ok}),
        "orthanc_distinct_ids": len({r["orthanc_id"] for r in ok}),
        "orthanc_already_stored": sum(1 for r in rows if r.get("orthanc_status") == "AlreadyStored"),
        "left_out": [{"file": r["file"], "estado": r["estado"], "note": r["note"]} for r in rows if not r.get("ok")][:20],
        "left_out_count": len(rows) - len(ok),
        "alpes_upload_retries": len(retried),
        "alpes_upload_retry_first": retried[0] if retried else "",
        "upload_s": round(upload_s, 1),
        "anonymize_wait_s": round(wait_s, 1),
        "body_bytes": {k: dist(v) for k, v in sizes.items()},
        "sample_keys": {k: sorted(v.keys()) for k, v in samples.items()},
    }
    json.dump(summary, open(f"{a.out}/prepare.json", "w"), indent=1)
    for k in ("alpes", "orthanc"):
        if k in samples:
            json.dump(samples[k], open(f"{a.out}/sample-{k}.json", "w"), indent=1)
    log(f"{len(ok)} of {len(rows)} files usable; Alpes estados {estados}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
