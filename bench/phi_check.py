#!/usr/bin/env python3
"""Count output files in which PHI planted by make_corpus.py survives verbatim.

Stdlib only. Scans the raw bytes of every regular file under OUTPUT_DIR
(except MANIFEST.txt) for two markers that make_corpus.py plants and that no
anonymizer would generate by chance:

* a planted medical record number ``MRN`` + 8 digits (PatientID, and also
  quoted inside ImageComments for half of the copies);
* a planted InstitutionName (see INSTITUTIONS in make_corpus.py).

A tool that keeps the values only in encrypted form (gdcmanon's Encrypted
Attributes Sequence) is not flagged. This is a coarse sanity check that a
tool actually de-identified the files (and a hint that it did less work),
not a conformance test.

    python3 bench/phi_check.py OUTPUT_DIR     -> prints "<files_with_phi> <files_scanned>"
"""

import os
import re
import sys

# Must match INSTITUTIONS in make_corpus.py (duplicated: this script is stdlib-only).
INSTITUTIONS = [
    "ST MARY GENERAL HOSPITAL", "ALPINE UNIVERSITY MEDICAL CENTER",
    "LAKESIDE IMAGING CLINIC", "NORTHWEST REGIONAL HOSPITAL",
    "CENTRE HOSPITALIER DE GRENOBLE", "RIVERSIDE CHILDRENS HOSPITAL",
    "MOUNT HOPE CANCER INSTITUTE", "VALLEY ORTHOPAEDIC CENTER",
]

MARKERS = re.compile(rb"MRN\d{8}|" + b"|".join(re.escape(i.encode()) for i in INSTITUTIONS))


def main() -> int:
    if len(sys.argv) != 2:
        sys.exit("usage: phi_check.py OUTPUT_DIR")
    leaked = scanned = 0
    for dirpath, _, filenames in os.walk(sys.argv[1]):
        for name in filenames:
            if name == "MANIFEST.txt":
                continue
            path = os.path.join(dirpath, name)
            if not os.path.isfile(path) or os.path.islink(path):
                continue
            scanned += 1
            with open(path, "rb") as fh:
                if MARKERS.search(fh.read()):
                    leaked += 1
    print(leaked, scanned)
    return 0


if __name__ == "__main__":
    sys.exit(main())
