#!/usr/bin/env python3
"""Benchmark driver for Kitware's dicom-anonymizer (PyPI ``dicom-anonymizer``).

The ``dicom-anonymizer INPUT OUTPUT`` console script accepts a directory but
only processes the files directly inside it (``os.listdir``; sub-directories
are silently ignored, despite the docstring saying otherwise). To process the
whole corpus in ONE process this driver calls the very function the console
script calls, with the console script's defaults (no extra actions, private
tags deleted), once per directory that contains files:

    dicomanonymizer.anonymize(in_dir, out_dir, {}, True)

Equivalent to running ``dicom-anonymizer IN/dXXXX OUT/dXXXX`` for each
sub-directory, minus one interpreter start-up per directory.

    bench/.venv/bin/python bench/peers/dicom_anonymizer_run.py INPUT_DIR OUTPUT_DIR
"""

import os
import sys
import time
from pathlib import Path

from _common import report, usage

from dicomanonymizer import anonymize


def main() -> int:
    src, out = usage("dicom_anonymizer_run.py")
    t0 = time.monotonic()
    ok, failed = 0, []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        if not any(f.lower().endswith(".dcm") for f in filenames):
            continue
        rel = Path(dirpath).relative_to(src)
        dest = out / rel
        dest.mkdir(parents=True, exist_ok=True)
        try:
            anonymize(str(dirpath), str(dest), {}, True)
            ok += sum(1 for f in filenames if f.lower().endswith(".dcm"))
        except SystemExit as exc:
            failed.append((Path(dirpath), f"SystemExit {exc.code}"))
        except Exception as exc:  # noqa: BLE001  (one bad file aborts its directory)
            failed.append((Path(dirpath), f"{type(exc).__name__}: {exc}"))
    return report("dicom_anonymizer_run.py", ok, failed, t0)


if __name__ == "__main__":
    sys.exit(main())
