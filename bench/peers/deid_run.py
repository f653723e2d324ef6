#!/usr/bin/env python3
"""Benchmark driver for pydicom/deid: de-identify every *.dcm under INPUT_DIR.

Uses deid's ``replace_identifiers`` with deid's default recipe
(``DeidRecipe()`` == the packaged ``deid.dicom`` recipe, what you get with
``deid=None``; built once instead of once per file). The directory layout
is mirrored into OUTPUT_DIR. One process; per-file errors are counted, not
fatal; exit status 1 if any file failed.

    bench/.venv/bin/python bench/peers/deid_run.py INPUT_DIR OUTPUT_DIR
"""

import logging
import sys
import time

from _common import iter_files, report, usage

from deid.config import DeidRecipe
from deid.dicom import replace_identifiers
from deid.logger import bot


def main() -> int:
    src, out = usage("deid_run.py")
    bot.level = 0  # silence deid's per-file chatter (errors still raise)
    logging.disable(logging.WARNING)
    t0 = time.monotonic()
    recipe = DeidRecipe()
    ok, failed = 0, []
    made = set()
    for path, rel in iter_files(src):
        dest = out / rel.parent
        if dest not in made:
            dest.mkdir(parents=True, exist_ok=True)
            made.add(dest)
        try:
            replace_identifiers([str(path)], deid=recipe, save=True, overwrite=True, output_folder=str(dest))
            ok += 1
        except Exception as exc:  # noqa: BLE001
            failed.append((path, f"{type(exc).__name__}: {exc}"))
    return report("deid_run.py", ok, failed, t0)


if __name__ == "__main__":
    sys.exit(main())
