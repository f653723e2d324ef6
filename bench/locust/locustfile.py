"""Locust flows against a running `alpes up` (issue 20). bench/locust/run.sh drives them.

Three user classes, one per flow; pick one by class name or by tag:

    locust -f bench/locust/locustfile.py --headless -u 8 -r 8 -t 60s RegistrationUser
    locust -f bench/locust/locustfile.py --headless -u 8 -r 8 -t 60s --tags upload

* RegistrationUser (tag `registration`): the consent workflow's institution side, four
  requests per iteration: POST /pacientes (provider; a new MRN each time) -> GET
  /pacientes/{id} (provider; audited read of the contact data) -> POST
  /pacientes/{id}/validar (the doctor) -> POST /pacientes/{id}/validar (the provider).
* UploadUser (tag `upload`): POST /imagenes, application/dicom, a distinct 39 KB CT each
  time (CT_small.dcm plus a trailing padding element that carries a unique tag).
* DownloadUser (tag `download`): GET /imagenes/{id}/anonimizada (the consumer; metered)
  over the images setup.py pre-uploaded, round robin.

Every user sends its next request as soon as the previous one is answered (no think
time), as wrk does. A request counts as a failure unless it gets exactly the status of
success (201, 200, 200, 200; 202; 200).

Environment:
  ALPES_BENCH_SETUP  the JSON file setup.py wrote [/tmp/alpes-locust/setup.json]; its
                     base_url is the host unless --host is given
  ALPES_BENCH_RUN    a label put into every MRN and upload tag, so two runs against
                     the same server never collide [the start time]
  ALPES_BENCH_STATS  a JSON file to write the final numbers to at exit (per request name and
                     "Aggregated": count, failures, requests/s, p50/p95/p99 ms); run.sh reads
                     it rather than the --csv stats file, which is written once a second and
                     so may miss the last second []
"""

import itertools
import json
import os
import time

from locust import FastHttpUser, constant, events, tag, task

from common import load_setup, padded

SETUP = load_setup()
RUN = os.environ.get("ALPES_BENCH_RUN") or time.strftime("%H%M%S")
_user_numbers = itertools.count()  # a distinct number per simulated user of this process


@events.init.add_listener
def _only_tagged_users(environment, **_kw):
    """With --tags, run only the user classes of those flows (Locust would otherwise start the
    others too, with their tasks filtered away, and fail on "No tasks defined")."""
    tags = set(getattr(environment.parsed_options, "tags", None) or [])
    if tags:
        environment.user_classes = [u for u in environment.user_classes if getattr(u, "flow", None) in tags]


@events.quitting.add_listener
def _write_stats(environment, **_kw):
    path = os.environ.get("ALPES_BENCH_STATS")
    if not path:
        return

    def numbers(e):
        return {"count": e.num_requests, "failures": e.num_failures, "rps": e.total_rps,
                "p50": e.get_response_time_percentile(0.5), "p95": e.get_response_time_percentile(0.95),
                "p99": e.get_response_time_percentile(0.99)}

    out = {name: numbers(e) for (name, _method), e in environment.stats.entries.items()}
    out["Aggregated"] = numbers(environment.stats.total)
    with open(path, "w") as f:
        json.dump(out, f, indent=1)


class AlpesUser(FastHttpUser):
    abstract = True
    host = SETUP["base_url"]
    wait_time = constant(0)
    # Fail fast rather than hide a stall: the server's own request timeout is 30 s.
    network_timeout = 60.0
    connection_timeout = 10.0

    def on_start(self):
        self.number = next(_user_numbers)
        self.seq = 0

    def next_tag(self) -> str:
        self.seq += 1
        return f"L{RUN}-{self.number}-{self.seq}"

    def expect(self, method, path, status, name, bad_body=None, **kw):
        """One request; a failure unless it is answered `status` (and, with `bad_body`, its body
        does not contain that string). Returns the response, or None on a failure."""
        with self.client.request(method, path, name=name, catch_response=True, **kw) as r:
            if r.status_code != status:
                r.failure(f"{r.status_code} {(r.text or '')[:200]}")
                return None
            if bad_body is not None and bad_body in (r.text or ""):
                r.failure(f"{r.status_code} body has {bad_body}")
                return None
            return r


@tag("registration")
class RegistrationUser(AlpesUser):
    flow = "registration"

    def on_start(self):
        super().on_start()
        s = SETUP["registration"]
        self.institucion_id, self.medico_id = s["institucion_id"], s["medico_id"]
        self.provider = {"Authorization": "Bearer " + s["provider_token"]}
        self.doctor = {"Authorization": "Bearer " + s["medico_token"]}

    @task
    def register_and_validate(self):
        mrn = self.next_tag()
        r = self.expect("POST", "/pacientes", 201, "POST /pacientes", headers=self.provider, json={
            "nombre": f"Paciente {mrn}", "email": f"{mrn.lower()}@patients.example",
            "telefono": "+57 300 123 4567", "id_paciente": mrn,
            "institucion_id": self.institucion_id, "medico_id": self.medico_id})
        if r is None:
            return
        pid = r.json()["id"]
        if self.expect("GET", f"/pacientes/{pid}", 200, "GET /pacientes/{id}", headers=self.provider) is None:
            return
        if self.expect("POST", f"/pacientes/{pid}/validar", 200, "POST /pacientes/{id}/validar (medico)",
                       headers=self.doctor) is None:
            return
        self.expect("POST", f"/pacientes/{pid}/validar", 200, "POST /pacientes/{id}/validar (proveedor)",
                    headers=self.provider)


@tag("upload")
class UploadUser(AlpesUser):
    flow = "upload"

    def on_start(self):
        super().on_start()
        with open(SETUP["ct_path"], "rb") as f:
            self.ct = f.read()
        self.headers = {"Authorization": "Bearer " + SETUP["upload"]["provider_token"],
                        "Content-Type": "application/dicom"}

    @task
    def upload(self):
        # A duplicate would measure the de-duplication path instead: counted as a failure.
        self.expect("POST", "/imagenes", 202, "POST /imagenes", bad_body='"duplicate":true',
                    headers=self.headers, data=padded(self.ct, self.next_tag()))


@tag("download")
class DownloadUser(AlpesUser):
    flow = "download"

    def on_start(self):
        super().on_start()
        d = SETUP["download"]
        self.headers = {"Authorization": "Bearer " + d["consumer_token"]}
        ids = d["image_ids"]
        start = (self.number * 7919) % len(ids)  # users start at different images
        self.ids = itertools.cycle(ids[start:] + ids[:start])

    @task
    def download(self):
        self.expect("GET", f"/imagenes/{next(self.ids)}/anonimizada", 200, "GET /imagenes/{id}/anonimizada",
                    headers=self.headers)
