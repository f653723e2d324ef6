"""Shared helpers for the Python peer-tool drivers (stdlib only)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def usage(prog: str) -> tuple[Path, Path]:
    if len(sys.argv) != 3:
        sys.exit(f"usage: {prog} INPUT_DIR OUTPUT_DIR")
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    if not src.is_dir():
        sys.exit(f"{prog}: not a directory: {src}")
    out.mkdir(parents=True, exist_ok=True)
    return src, out


def iter_files(src: Path):
    """(input path, output path relative to src) for every *.dcm under src, sorted."""
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        for name in sorted(filenames):
            if name.lower().endswith(".dcm"):
                p = Path(dirpath) / name
                yield p, p.relative_to(src)


def report(prog: str, ok: int, failed: list[tuple[Path, str]], t0: float) -> int:
    for path, err in failed[:20]:
        print(f"{prog}: FAILED {path}: {err}", file=sys.stderr)
    if len(failed) > 20:
        print(f"{prog}: ... and {len(failed) - 20} more failures", file=sys.stderr)
    print(f"{prog}: {ok} ok, {len(failed)} failed, {time.monotonic() - t0:.2f}s", file=sys.stderr)
    return 1 if failed else 0
