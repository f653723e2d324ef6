#!/usr/bin/env python3
"""One-time setup of a fresh `alpes up` for the Locust / wrk flows (stdlib only).

    setup.py BASE_URL OUT_DIR [--images N]

Needs ALPES_BOOTSTRAP_ADMIN_EMAIL / ALPES_BOOTSTRAP_ADMIN_PASSWORD (the admin
`alpes up` was started with). Creates, as that admin:

* institution "registro" (policy `retener`), its provider and one doctor: the
  registration flow registers patients there;
* institution "liberar" (policy `liberar`) and its provider: its uploads of
  unregistered patients are offered to consumers, so the download flow gets 200;
* a consumer, approved for downloads with ample credit;

then uploads N distinct images as the "liberar" provider and waits until every
one is anonymized (HEAD /imagenes/{id}/anonimizada, which is not metered).

Writes OUT_DIR/setup.json (read by locustfile.py) and, for flows.lua,
OUT_DIR/download-ids.txt (one image id a line).
"""

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import CT_SMALL, padded  # noqa: E402

PASSWORD = "bench-password-0123456789"


class Api:
    def __init__(self, base: str):
        self.base = base.rstrip("/")

    def call(self, method, path, body=None, token=None, ctype=None, ok=(200, 201, 202)):
        data, headers = None, {}
        if body is not None:
            if isinstance(body, bytes):
                data, headers["Content-Type"] = body, ctype or "application/octet-stream"
            else:
                data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        if token:
            headers["Authorization"] = "Bearer " + token
        req = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                status, text = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read()
        if ok and status not in ok:
            sys.exit(f"setup: {method} {path} -> {status} {text[:300]!r}")
        if method == "HEAD" or not text or not text.lstrip().startswith((b"{", b"[")):
            return status, text
        return status, json.loads(text)

    def login(self, email, password=PASSWORD):
        return self.call("POST", "/auth/login", {"email": email, "password": password})[1]["access_token"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base_url")
    ap.add_argument("out_dir")
    ap.add_argument("--images", type=int, default=200, help="images pre-uploaded for the download flow [200]")
    ap.add_argument("--timeout", type=float, default=300, help="seconds to wait for their anonymization [300]")
    a = ap.parse_args()
    api = Api(a.base_url)
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())

    admin = api.login(os.environ["ALPES_BOOTSTRAP_ADMIN_EMAIL"], os.environ["ALPES_BOOTSTRAP_ADMIN_PASSWORD"])

    def institution(name, policy):
        body = {"nombre": f"Bench {name}", "tipo": "hospital", "licencia": f"BENCH-{name}-{stamp}",
                "email": f"{name}-{stamp}@bench.example", "politica_no_registrados": policy}
        return api.call("POST", "/instituciones", body, admin)[1]["id"]

    def provider(name, inst):
        email = f"prov-{name}-{stamp}@bench.example"
        body = {"nombre": f"Provider {name}", "email": email, "password": PASSWORD, "rol": "proveedor",
                "institucion_id": inst}
        uid = api.call("POST", "/usuarios", body, admin)[1]["id"]
        return uid, api.login(email)

    inst_reg = institution("registro", "retener")
    inst_lib = institution("liberar", "liberar")
    prov_reg_id, prov_reg = provider("registro", inst_reg)
    prov_lib_id, prov_lib = provider("liberar", inst_lib)

    doc_email = f"medico-{stamp}@bench.example"
    medico_id = api.call("POST", "/medicos", {
        "nombre": "Dra. Bench", "email": doc_email, "password": PASSWORD, "licencia": f"MED-{stamp}",
        "institucion_id": inst_reg, "especialidad": "radiologia"}, admin)[1]["id"]
    medico = api.login(doc_email)

    con_email = f"consumer-{stamp}@bench.example"
    consumer_id = api.call("POST", "/usuarios", {
        "nombre": "Bench Lab", "email": con_email, "password": PASSWORD, "rol": "consumidor"})[1]["id"]
    # Ample credit: every download is charged (100 minor units by default).
    api.call("PUT", f"/monetizacion/consumidores/{consumer_id}",
             {"verificado": True, "limite_credito_minor": 10**15, "moneda": "EUR"}, admin)
    consumer = api.login(con_email)

    with open(CT_SMALL, "rb") as f:
        ct = f.read()
    ids = []
    for i in range(a.images):
        _, r = api.call("POST", "/imagenes", padded(ct, f"setup-{stamp}-{i}"), prov_lib, "application/dicom", ok=(202,))
        ids.append(r["id"])
    deadline, pending = time.time() + a.timeout, list(ids)
    while pending:
        pending = [i for i in pending if api.call("HEAD", f"/imagenes/{i}/anonimizada", None, consumer, ok=None)[0] != 200]
        if not pending:
            break
        if time.time() > deadline:
            sys.exit(f"setup: {len(pending)} of {len(ids)} images not downloadable after {a.timeout}s "
                     f"(HEAD /imagenes/{pending[0]}/anonimizada)")
        time.sleep(0.5)
    # One real (metered) download: the flow works end to end.
    _, dcm = api.call("GET", f"/imagenes/{ids[0]}/anonimizada", None, consumer, ok=(200,))
    if dcm[128:132] != b"DICM":
        sys.exit(f"setup: GET /imagenes/{ids[0]}/anonimizada is not DICOM: {dcm[:140]!r}")

    os.makedirs(a.out_dir, exist_ok=True)
    setup = {
        "base_url": api.base,
        "ct_path": CT_SMALL,
        "registration": {"institucion_id": inst_reg, "medico_id": medico_id,
                         "provider_token": prov_reg, "medico_token": medico, "provider_id": prov_reg_id},
        "upload": {"provider_token": prov_lib, "provider_id": prov_lib_id},
        "download": {"consumer_token": consumer, "consumer_id": consumer_id, "image_ids": ids},
    }
    with open(os.path.join(a.out_dir, "setup.json"), "w") as f:
        json.dump(setup, f, indent=1)
    with open(os.path.join(a.out_dir, "download-ids.txt"), "w") as f:
        f.write("\n".join(ids) + "\n")
    print(f"setup: institutions {inst_reg} (retener), {inst_lib} (liberar); doctor {medico_id}; "
          f"consumer {consumer_id}; {len(ids)} images anonymized and downloadable", file=sys.stderr)


if __name__ == "__main__":
    main()
