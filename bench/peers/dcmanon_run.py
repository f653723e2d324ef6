#!/usr/bin/env python3
"""Benchmark driver for dcmanon (PyPI ``dcmanon``: Python bindings of the Rust
``dicom-anonymization`` crate; the PyPI package ships no command-line tool).

Anonymizes every *.dcm under INPUT_DIR with ``dcmanon.Anonymizer()`` default
settings and writes the returned bytes to the mirrored path under OUTPUT_DIR.
One process, sequential (the binding offers no batch/parallel API); per-file
errors are counted, not fatal; exit status 1 if any file failed.

    bench/.venv/bin/python bench/peers/dcmanon_run.py INPUT_DIR OUTPUT_DIR
"""

import sys
import time

from _common import iter_files, report, usage

from dcmanon import Anonymizer


def main() -> int:
    src, out = usage("dcmanon_run.py")
    t0 = time.monotonic()
    anonymizer = Anonymizer()
    ok, failed = 0, []
    made = set()
    for path, rel in iter_files(src):
        dest = out / rel
        if dest.parent not in made:
            dest.parent.mkdir(parents=True, exist_ok=True)
            made.add(dest.parent)
        try:
            dest.write_bytes(anonymizer.anonymize(str(path)))
            ok += 1
        except Exception as exc:  # noqa: BLE001
            failed.append((path, f"{type(exc).__name__}: {exc}"))
    return report("dcmanon_run.py", ok, failed, t0)


if __name__ == "__main__":
    sys.exit(main())
