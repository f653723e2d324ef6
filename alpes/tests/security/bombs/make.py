#!/usr/bin/env python3
"""Writes the two decompression bombs of the outside review (issue 16), with
the standard library alone. Run from this folder: python3 make.py

- deflated-16384x16384x3.dcm: a Deflated Explicit VR Little Endian DICOM file
  whose dataset (an RGB image of 16384 x 16384 zeros) inflates to 805 MB from
  about 780 KB.
- zeros-20000x20000.png: an 8-bit gray PNG of 20000 x 20000 zeros, 400 MB
  decoded from about 390 KB.

Both are synthetic: no patient, no licence beyond the project's.
"""
import struct
import zlib

CHUNK = 16 << 20


def element(group, elem, vr, value):
    if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT"):
        return struct.pack("<HH2sHI", group, elem, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", group, elem, vr, len(value)) + value


def text(s):
    b = s.encode("ascii")
    return b + (b"\0" if len(b) % 2 else b"")


def padded(s):
    b = s.encode("ascii")
    return b + (b" " if len(b) % 2 else b"")


def dicom_bomb(path, rows=16384, cols=16384, samples=3):
    sop_class = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture
    sop_instance = "2.25.1600000000000000000000000000000016"
    meta_body = b"".join([
        element(0x0002, 0x0001, b"OB", b"\0\1"),
        element(0x0002, 0x0002, b"UI", text(sop_class)),
        element(0x0002, 0x0003, b"UI", text(sop_instance)),
        element(0x0002, 0x0010, b"UI", text("1.2.840.10008.1.2.1.99")),
        element(0x0002, 0x0012, b"UI", text("2.25.16")),
    ])
    meta = element(0x0002, 0x0000, b"UL", struct.pack("<I", len(meta_body))) + meta_body
    pixels = rows * cols * samples
    head = b"".join([
        element(0x0008, 0x0016, b"UI", text(sop_class)),
        element(0x0008, 0x0018, b"UI", text(sop_instance)),
        element(0x0010, 0x0010, b"PN", padded("Bomb^Probe")),
        element(0x0010, 0x0020, b"LO", padded("BOMB-1")),
        element(0x0028, 0x0002, b"US", struct.pack("<H", samples)),
        element(0x0028, 0x0004, b"CS", padded("RGB")),
        element(0x0028, 0x0006, b"US", struct.pack("<H", 0)),
        element(0x0028, 0x0010, b"US", struct.pack("<H", rows % 65536)),
        element(0x0028, 0x0011, b"US", struct.pack("<H", cols % 65536)),
        element(0x0028, 0x0100, b"US", struct.pack("<H", 8)),
        element(0x0028, 0x0101, b"US", struct.pack("<H", 8)),
        element(0x0028, 0x0102, b"US", struct.pack("<H", 7)),
        element(0x0028, 0x0103, b"US", struct.pack("<H", 0)),
        struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, pixels),
    ])
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    with open(path, "wb") as f:
        f.write(b"\0" * 128 + b"DICM" + meta)
        f.write(deflate.compress(head))
        zeros = b"\0" * CHUNK
        left = pixels
        while left:
            n = min(left, CHUNK)
            f.write(deflate.compress(zeros[:n]))
            left -= n
        f.write(deflate.flush())


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(path, width=20000, height=20000):
    compress = zlib.compressobj(9)
    row = b"\0" * (width + 1)  # filter type 0, then zeros
    rows_per_chunk = max(1, CHUNK // len(row))
    idat = []
    left = height
    while left:
        n = min(left, rows_per_chunk)
        idat.append(compress.compress(row * n))
        left -= n
    idat.append(compress.flush())
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)))
        f.write(png_chunk(b"IDAT", b"".join(idat)))
        f.write(png_chunk(b"IEND", b""))


if __name__ == "__main__":
    dicom_bomb("deflated-16384x16384x3.dcm")
    png_bomb("zeros-20000x20000.png")
