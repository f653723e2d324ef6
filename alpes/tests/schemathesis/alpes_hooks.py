"""Schemathesis hooks for alpes/tests/schemathesis.rs (loaded through
SCHEMATHESIS_HOOKS=alpes_hooks with this directory on PYTHONPATH).

- STOW-RS bodies: Schemathesis has no serializer for multipart/related, so a
  generated body becomes the one part of a multipart/related body with a fixed
  boundary, and the request's Content-Type names that boundary.
- Examples: ALPES_ST_EXAMPLES holds JSON {"<path template>": {"<path parameter>":
  value}} naming data the test seeded (an anonymized image, its study, series and
  instance, a provider, a user); each becomes that parameter's `example`, so the
  run reaches real resources and checks the 200 bodies too. Nothing else in the
  document is changed.
"""

import json
import os

import schemathesis

BOUNDARY = "alpes-schemathesis-boundary-7c1f"
STOW_MEDIA_TYPE = 'multipart/related; type="application/dicom"'


@schemathesis.serializer("multipart/related")
def multipart_related(ctx, value):
    if value is None:
        return None
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogatepass")
    if not isinstance(value, (bytes, bytearray)):
        value = json.dumps(value).encode("utf-8")
    return (
        f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode("ascii")
        + bytes(value)
        + f"\r\n--{BOUNDARY}--\r\n".encode("ascii")
    )


@schemathesis.hook
def before_call(context, case, kwargs):
    media_type = (case.media_type or "").split(";")[0].strip().lower()
    if media_type == "multipart/related":
        headers = case.headers if case.headers is not None else {}
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = f"{STOW_MEDIA_TYPE}; boundary={BOUNDARY}"
            case.headers = headers


@schemathesis.hook
def before_load_schema(context, raw_schema):
    examples = json.loads(os.environ.get("ALPES_ST_EXAMPLES") or "{}")
    for path, values in examples.items():
        item = raw_schema.get("paths", {}).get(path)
        if item is None:
            raise SystemExit(f"ALPES_ST_EXAMPLES names {path}, which the document lacks")
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "path" and parameter.get("name") in values:
                    parameter["example"] = values[parameter["name"]]
