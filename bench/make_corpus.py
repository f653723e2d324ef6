#!/usr/bin/env python3
"""Build a deterministic DICOM benchmark corpus from the real sample files.

Every output file is a copy of one of the real DICOM files in
``../shared/corpus/dicom/`` (relative to the repository root) with:

* fresh, distinct SOPInstanceUID / StudyInstanceUID / SeriesInstanceUID
  (and MediaStorageSOPInstanceUID), derived deterministically from the copy
  index with ``pydicom.uid.generate_uid(entropy_srcs=[...])``;
* realistic, planted PHI (PatientName, PatientID, PatientBirthDate,
  InstitutionName, ReferringPhysicianName, OperatorsName, AccessionNumber,
  ImageComments, plus StudyDate/StudyTime/StudyID) so that every
  de-identification tool has real work to do.

Copies are distributed round-robin over the usable source files until the
target size is reached, written ``--per-dir`` files per sub-directory
(``OUT/dicom/d0000/``, ``OUT/dicom/d0001/``, ...). The DICOM tree lives in
``OUT/dicom/`` so that it holds nothing but DICOM files (a tool that treats a
non-DICOM file as an error must not trip over the manifest); ``OUT/MANIFEST.txt``
sits beside it. Output is byte-for-byte deterministic for a
given ``--size-mb`` / ``--per-dir`` / source set (no timestamps, no real
randomness). A ``MANIFEST.txt`` records file count, total bytes and per-source
counts.

Usage:
    bench/.venv/bin/python bench/make_corpus.py [--size-mb 160] [--out bench/corpus]
                                                [--src ../shared/corpus/dicom]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import random
import shutil
import sys
from collections import Counter
from pathlib import Path

try:
    import pydicom
    from pydicom.uid import generate_uid
except ImportError:  # pragma: no cover
    sys.exit("make_corpus.py needs pydicom: run bench/peers/install.sh and use bench/.venv/bin/python")

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
DEFAULT_SRC = REPO_DIR.parent / "shared" / "corpus" / "dicom"
DEFAULT_OUT = BENCH_DIR / "corpus"

# Known-broken fixtures (truncated, bad VR, missing file meta): never used.
BROKEN_MARKERS = ("truncated", "badVR", "no_meta", "NoMeta", "meta_missing", "rtplan_truncated")

# Files that pydicom reads but which are not usable as benchmark input for
# *all* tools (verified by dry-running every peer tool on one copy of each
# source, see bench/README.md).  name -> reason
EXCLUDED = {
    # dcmanon 0.3.1 (PyPI) raises "Read error: could not read data set token".
    "image_dfl.dcm": "Deflated Explicit VR Little Endian: dcmanon cannot read it",
    # dcmanon 0.3.1 raises "bad value cast: requested str but value is u8".
    "rtdose_rle.dcm": "dcmanon fails (bad value cast: requested str but value is u8)",
    "rtdose_rle_1frame.dcm": "dcmanon fails (bad value cast: requested str but value is u8)",
}

# Only real, complete objects: must have these attributes after reading.
# (Study/Series UIDs are added per copy, so they may be missing in the source.)
REQUIRED = ("SOPClassUID", "SOPInstanceUID")

UID_ENTROPY = "alpes-bench-corpus-v1"

FAMILY = [
    "SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCIA", "MILLER", "DAVIS",
    "RODRIGUEZ", "MARTINEZ", "HERNANDEZ", "LOPEZ", "GONZALEZ", "WILSON", "ANDERSON",
    "THOMAS", "TAYLOR", "MOORE", "JACKSON", "MARTIN", "LEE", "PEREZ", "THOMPSON",
    "WHITE", "HARRIS", "SANCHEZ", "CLARK", "RAMIREZ", "LEWIS", "ROBINSON", "DUBOIS",
    "MUELLER", "ROSSI", "NOVAK", "KOWALSKI", "JANSEN", "BERNARD", "FISCHER",
]
GIVEN = [
    "JAMES", "MARY", "ROBERT", "PATRICIA", "JOHN", "JENNIFER", "MICHAEL", "LINDA",
    "DAVID", "ELIZABETH", "WILLIAM", "BARBARA", "RICHARD", "SUSAN", "JOSEPH", "JESSICA",
    "CLAIRE", "LOUIS", "AMELIE", "HUGO", "LENA", "JONAS", "SOFIA", "MARCO", "ANNA",
]
INSTITUTIONS = [  # keep in sync with bench/phi_check.py
    "ST MARY GENERAL HOSPITAL", "ALPINE UNIVERSITY MEDICAL CENTER",
    "LAKESIDE IMAGING CLINIC", "NORTHWEST REGIONAL HOSPITAL",
    "CENTRE HOSPITALIER DE GRENOBLE", "RIVERSIDE CHILDRENS HOSPITAL",
    "MOUNT HOPE CANCER INSTITUTE", "VALLEY ORTHOPAEDIC CENTER",
]
COMMENT_TEMPLATES = [
    "Pt {given} {family} (MRN {pid}) seen by Dr {ref}; DOB {dob}",
    "Follow-up for {family}, {given}. Call 555-{phone} re results. Acc {acc}",
    "Prior study at {inst} on {date}; patient {given} {family} claustrophobic",
    "Tech {op}: contrast given, {given} {family} tolerated well. ID {pid}",
]


def is_broken(name: str) -> bool:
    return any(marker in name for marker in BROKEN_MARKERS)


def load_sources(src: Path) -> list[tuple[str, bytes]]:
    """Return sorted (name, raw bytes) of every usable source file."""
    usable: list[tuple[str, bytes]] = []
    for path in sorted(src.iterdir()):
        name = path.name
        if not path.is_file() or not name.lower().endswith(".dcm"):
            continue
        if is_broken(name):
            print(f"skip {name}: known-broken fixture", file=sys.stderr)
            continue
        if name in EXCLUDED:
            print(f"skip {name}: {EXCLUDED[name]}", file=sys.stderr)
            continue
        raw = path.read_bytes()
        try:
            ds = pydicom.dcmread(io.BytesIO(raw))
        except Exception as exc:  # noqa: BLE001
            print(f"skip {name}: pydicom cannot read it ({type(exc).__name__})", file=sys.stderr)
            continue
        missing = [kw for kw in REQUIRED if kw not in ds]
        if missing or "TransferSyntaxUID" not in ds.file_meta:
            print(f"skip {name}: not a complete object (missing {missing or 'TransferSyntaxUID'})",
                  file=sys.stderr)
            continue
        try:
            make_copy(raw, 0)
        except Exception as exc:  # noqa: BLE001
            print(f"skip {name}: pydicom cannot re-write it ({type(exc).__name__}: {str(exc).splitlines()[0]})",
                  file=sys.stderr)
            continue
        usable.append((name, raw))
    return usable


def plant_phi(ds: pydicom.Dataset, k: int) -> None:
    """Deterministic, realistic PHI for copy k. Patients are shared by 4 consecutive copies."""
    prng = random.Random(f"{UID_ENTROPY}-patient-{k // 4}")
    family, given = prng.choice(FAMILY), prng.choice(GIVEN)
    pid = f"MRN{prng.randrange(10**7, 10**8)}"
    dob = f"{prng.randrange(1930, 2015)}{prng.randrange(1, 13):02d}{prng.randrange(1, 29):02d}"
    inst = prng.choice(INSTITUTIONS)

    crng = random.Random(f"{UID_ENTROPY}-copy-{k}")
    ref = f"{crng.choice(FAMILY)}^{crng.choice(GIVEN)}^^DR"
    op = f"{crng.choice(FAMILY)}^{crng.choice(GIVEN)}"
    acc = f"A{crng.randrange(10**8, 10**9)}"
    date = f"{crng.randrange(2015, 2025)}{crng.randrange(1, 13):02d}{crng.randrange(1, 29):02d}"
    time = f"{crng.randrange(7, 19):02d}{crng.randrange(0, 60):02d}{crng.randrange(0, 60):02d}"
    comment = crng.choice(COMMENT_TEMPLATES).format(
        given=given, family=family, pid=pid, ref=ref.split("^")[0], dob=dob,
        phone=f"{crng.randrange(1000, 10000)}", acc=acc, inst=inst, date=date,
        op=op.split("^")[0],
    )

    ds.PatientName = f"{family}^{given}"
    ds.PatientID = pid
    ds.PatientBirthDate = dob
    ds.InstitutionName = inst
    ds.ReferringPhysicianName = ref
    ds.OperatorsName = op
    ds.AccessionNumber = acc
    ds.StudyDate = date
    ds.StudyTime = time
    ds.StudyID = f"S{k % 100000:05d}"
    ds.ImageComments = comment[:10240]


def make_copy(raw: bytes, k: int) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(raw))
    # Retired group-length elements (gggg,0000) would be stale after our edits.
    for tag in [t for t in ds.keys() if t.element == 0]:
        del ds[tag]
    # The copy carries planted PHI, so it must not claim to be de-identified
    # (gdcmanon refuses files with PatientIdentityRemoved=YES).
    for kw in ("PatientIdentityRemoved", "DeidentificationMethod", "DeidentificationMethodCodeSequence"):
        if kw in ds:
            delattr(ds, kw)
    sop = generate_uid(entropy_srcs=[UID_ENTROPY, "sop", str(k)])
    ds.SOPInstanceUID = sop
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.StudyInstanceUID = generate_uid(entropy_srcs=[UID_ENTROPY, "study", str(k)])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[UID_ENTROPY, "series", str(k)])
    plant_phi(ds, k)
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=float, default=160.0,
                    help="target corpus size in MB (10^6 bytes); stops at the first file reaching it (default 160)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")
    ap.add_argument("--src", type=Path, default=DEFAULT_SRC, help=f"source DICOM directory (default {DEFAULT_SRC})")
    ap.add_argument("--per-dir", type=int, default=100, help="files per sub-directory (default 100)")
    ap.add_argument("--max-files", type=int, default=0, help="stop after N files (0 = no limit; for quick tests)")
    ap.add_argument("--force", action="store_true", help="delete --out first if it exists")
    args = ap.parse_args(argv)

    if not args.src.is_dir():
        sys.exit(f"source directory not found: {args.src}")
    out: Path = args.out
    if out.exists():
        if not args.force and any(out.iterdir()):
            sys.exit(f"{out} exists and is not empty (use --force to rebuild)")
        shutil.rmtree(out)
    (out / "dicom").mkdir(parents=True)

    sources = load_sources(args.src)
    if not sources:
        sys.exit("no usable source files")
    target = int(args.size_mb * 1_000_000)

    counts: Counter[str] = Counter()
    bytes_by_src: Counter[str] = Counter()
    total = 0
    k = 0
    digest = hashlib.sha256()
    while total < target and (args.max_files == 0 or k < args.max_files):
        name, raw = sources[k % len(sources)]
        data = make_copy(raw, k)
        sub = out / "dicom" / f"d{k // args.per_dir:04d}"
        if k % args.per_dir == 0:
            sub.mkdir()
        fname = f"{k:06d}_{Path(name).stem}.dcm"
        (sub / fname).write_bytes(data)
        digest.update(f"{sub.name}/{fname}".encode() + b"\0" + hashlib.sha256(data).digest())
        counts[name] += 1
        bytes_by_src[name] += len(data)
        total += len(data)
        k += 1
        if k % 1000 == 0:
            print(f"  {k} files, {total / 1e6:.1f} MB", file=sys.stderr)

    lines = [
        "Alpes benchmark corpus (generated by bench/make_corpus.py; do not commit)",
        f"source_dir: {args.src}",
        "layout: dicom/dNNNN/<copy index>_<source name>.dcm",
        f"target_mb: {args.size_mb:g}",
        f"files_per_dir: {args.per_dir}",
        f"pydicom: {pydicom.__version__}",
        f"files: {k}",
        f"total_bytes: {total}",
        f"total_mb: {total / 1e6:.2f}",
        f"subdirs: {(k + args.per_dir - 1) // args.per_dir}",
        f"source_files_used: {len(sources)}",
        f"content_sha256: {digest.hexdigest()}",
        "",
        "per-source counts (copies  bytes  source):",
    ]
    for name, _ in sources:
        lines.append(f"{counts[name]:6d} {bytes_by_src[name]:11d}  {name}")
    (out / "MANIFEST.txt").write_text("\n".join(lines) + "\n")
    print(f"wrote {k} files, {total} bytes ({total / 1e6:.1f} MB) from {len(sources)} sources into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
