"""Checks of Alpes' DICOM listener with pynetdicom as the calling AE.

Run by alpes/tests/dimse_pynetdicom.rs with one JSON argument:
{"host", "port", "tls_port", "ca", "ae", "called", "fixtures", "files", "max_associations"}.
Prints one JSON line of results; exits 1 on the first failed check.
"""

import json
import ssl
import sys

from pydicom import dcmread
from pynetdicom import AE, build_context
from pynetdicom.sop_class import Verification

cfg = json.loads(sys.argv[1])
results = {}


def check(name, ok, detail=""):
    results[name] = {"ok": bool(ok), "detail": str(detail)}
    if not ok:
        print(json.dumps(results))
        sys.exit(1)


def associate(calling, contexts, port=None, tls=None):
    ae = AE(ae_title=calling)
    ae.acse_timeout = 10
    ae.dimse_timeout = 30
    ae.network_timeout = 30
    return ae.associate(cfg["host"], port or cfg["port"], contexts=contexts, ae_title=cfg["called"], tls_args=tls)


def rejection(assoc):
    rj = assoc.acceptor.primitive
    return (rj.result, rj.result_source, rj.diagnostic) if rj is not None else None


# C-ECHO from the mapped AE.
assoc = associate(cfg["ae"], [build_context(Verification)])
check("echo_associates", assoc.is_established)
status = assoc.send_c_echo()
check("echo_status", status is not None and status.Status == 0x0000, status)
assoc.release()

# An unknown calling AE: rejected permanent, by the service user, calling AE not recognized (3).
assoc = associate("NOT_MAPPED", [build_context(Verification)])
check("unknown_rejected", assoc.is_rejected, rejection(assoc))
check("unknown_reason", rejection(assoc) == (1, 1, 3), rejection(assoc))

# Each compressed file, proposed only in its own transfer syntax.
for name in cfg["files"]:
    ds = dcmread(f"{cfg['fixtures']}/{name}")
    ts = str(ds.file_meta.TransferSyntaxUID)
    assoc = associate(cfg["ae"], [build_context(ds.SOPClassUID, [ts])])
    check(f"{name}_associates", assoc.is_established)
    accepted = [c for c in assoc.accepted_contexts]
    check(f"{name}_context", len(accepted) == 1 and accepted[0].transfer_syntax[0] == ts, accepted)
    status = assoc.send_c_store(ds)
    check(f"{name}_stored", status is not None and status.Status == 0x0000, status)
    assoc.release()

# Past the association limit: rejected transient, by the provider's presentation layer,
# local limit exceeded (2); the held associations still work.
held = [associate(cfg["ae"], [build_context(Verification)]) for _ in range(cfg["max_associations"])]
check("held_associate", all(a.is_established for a in held))
extra = associate(cfg["ae"], [build_context(Verification)])
check("over_limit_rejected", extra.is_rejected, rejection(extra))
check("over_limit_reason", rejection(extra) == (2, 3, 2), rejection(extra))
status = held[0].send_c_echo()
check("held_still_serve", status is not None and status.Status == 0x0000, status)
for a in held:
    a.release()

# TLS: an echo over TLS verified against the listener's certificate; plain TCP to it fails.
if cfg.get("tls_port"):
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cfg["ca"])
    context.check_hostname = False
    assoc = associate(cfg["ae"], [build_context(Verification)], port=cfg["tls_port"], tls=(context, None))
    check("tls_associates", assoc.is_established)
    status = assoc.send_c_echo()
    check("tls_echo", status is not None and status.Status == 0x0000, status)
    assoc.release()
    plain = associate(cfg["ae"], [build_context(Verification)], port=cfg["tls_port"])
    check("plain_to_tls_refused", not plain.is_established)

print(json.dumps(results))
