"""Shared by setup.py and locustfile.py (stdlib only).

`padded(ct, tag)` makes a distinct DICOM object from one fixture, as
alpes/tests/imports.rs `ct_named` does: the same bytes plus a trailing
(FFFC,FFFC) Data Set Trailing Padding element (OB) that carries `tag`. Alpes
de-duplicates an upload of the same bytes by the same provider, so every upload
of the bench carries a tag of its own. flows.lua builds the same bytes in Lua.
"""

import json
import os
import struct

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CT_SMALL = os.path.join(REPO, "anonymizer", "tests", "fixtures", "dicom", "CT_small.dcm")
DEFAULT_SETUP = "/tmp/alpes-locust/setup.json"


def padded(ct: bytes, tag: str) -> bytes:
    pad = tag.encode()
    if len(pad) % 2:
        pad += b"\0"
    return ct + b"\xfc\xff\xfc\xffOB\0\0" + struct.pack("<I", len(pad)) + pad


def load_setup(path: str | None = None) -> dict:
    """The JSON file setup.py wrote (ALPES_BENCH_SETUP, default /tmp/alpes-locust/setup.json)."""
    with open(path or os.environ.get("ALPES_BENCH_SETUP", DEFAULT_SETUP)) as f:
        return json.load(f)
