"""Image sizes from the headers of the formats OpenCV decodes beyond JPEG/PNG/BMP/WebP (those are in
:mod:`flowdet.core.imread`): TIFF and BigTIFF, GIF, JPEG 2000 (JP2 boxes and the bare codestream),
AVIF/HEIF (``ispe``), PNM/PAM/PFM, Sun raster, Radiance HDR. A few small reads per file, no decoding:
:func:`flowdet.core.imread.read_header` checks the pixel cap on what these return before the
decoder allocates anything. Torch-free.
"""
from __future__ import annotations

import struct
from typing import BinaryIO

Size = tuple[int, int] | None  # (width, height), None when the header does not give it
_HEIF_BRANDS = (b"avif", b"avis", b"mif1", b"msf1", b"heic", b"heix", b"hevc", b"heim", b"heis")


def tiff_size(f: BinaryIO, head: bytes) -> Size:
    """TIFF or BigTIFF: ImageWidth (256) / ImageLength (257) of the first IFD, wherever it lies."""
    e = ">" if head[:2] == b"MM" else "<"
    bigtiff = struct.unpack(e + "H", head[2:4])[0] == 43
    f.seek(8 if bigtiff else 4)
    raw = f.read(8 if bigtiff else 4)
    if len(raw) < (8 if bigtiff else 4):
        return None
    f.seek(struct.unpack(e + ("Q" if bigtiff else "I"), raw)[0])
    raw = f.read(8 if bigtiff else 2)
    if len(raw) < (8 if bigtiff else 2):
        return None
    n = min(struct.unpack(e + ("Q" if bigtiff else "H"), raw)[0], 4096)
    size = 20 if bigtiff else 12
    entries = f.read(n * size)
    tags = {}
    for k in range(len(entries) // size):
        ent = entries[k * size:(k + 1) * size]
        tag, typ = struct.unpack(e + "HH", ent[:4])
        value = ent[12:] if bigtiff else ent[8:]
        if tag in (256, 257) and typ in (3, 4, 16):
            fmt = {3: "H", 4: "I", 16: "Q"}[typ]
            if struct.calcsize(fmt) <= len(value):
                tags[tag] = struct.unpack(e + fmt, value[:struct.calcsize(fmt)])[0]
    return (tags[256], tags[257]) if {256, 257} <= tags.keys() else None


def _tokens(text: bytes, n: int) -> list[bytes]:
    """The first ``n`` whitespace-separated tokens of a PNM/PFM header, ``#`` comments left out."""
    out: list[bytes] = []
    for line in text.split(b"\n"):
        out += line.split(b"#", 1)[0].split()
        if len(out) >= n:
            break
    return out[:n]


def _ints(values: list[bytes]) -> Size:
    try:
        w, h = (int(v) for v in values)
    except ValueError:
        return None
    return (w, h) if w > 0 and h > 0 else None


def other_header(f: BinaryIO, head: bytes) -> tuple[str, Size]:
    """(format, size) of a GIF, JPEG 2000, AVIF, PNM/PAM/PFM, Sun raster or Radiance HDR header;
    ("unknown", None) for anything else."""
    if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        return "gif", tuple(struct.unpack("<HH", head[6:10]))  # the logical screen the decoder allocates
    if head[:4] == b"\x59\xa6\x6a\x95" and len(head) >= 12:  # Sun raster
        return "sunras", tuple(struct.unpack(">II", head[4:12]))
    if head[:4] == b"\xff\x4f\xff\x51" and len(head) >= 24:  # JPEG 2000 codestream: SOC, SIZ
        xs, ys, xo, yo = struct.unpack(">IIII", head[8:24])
        return "jpeg2000", (max(xs - xo, 0), max(ys - yo, 0))
    if head[4:12] == b"jP  \r\n\x87\n" or (head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS):  # JP2 / AVIF
        f.seek(0)
        buf = f.read(1 << 16)
        if head[4:8] == b"jP  ":
            i = buf.find(b"ihdr")
            dims = struct.unpack(">II", buf[i + 4:i + 12])[::-1] if 0 <= i <= len(buf) - 12 else None
            return "jpeg2000", dims
        sizes = [struct.unpack(">II", buf[i + 8:i + 16])
                 for i in range(len(buf)) if buf.startswith(b"ispe", i) and i + 16 <= len(buf)]
        return "avif", max(sizes, key=lambda s: s[0] * s[1]) if sizes else None  # the largest item
    if head[:1] == b"P" and head[1:2] in b"1234567fF" and head[1:2] != b"":
        f.seek(0)
        text = f.read(4096)
        if head[1:2] == b"7":  # PAM: WIDTH / HEIGHT lines
            fields = dict(ln.split(None, 1) for ln in text.split(b"\n") if len(ln.split(None, 1)) == 2)
            return "pnm", _ints([fields.get(b"WIDTH", b""), fields.get(b"HEIGHT", b"")])
        return "pnm", _ints(_tokens(text[2:], 2))
    if head[:2] == b"#?":  # Radiance HDR: header lines, a blank line, then "-Y <rows> +X <cols>"
        f.seek(0)
        lines = f.read(1 << 16).split(b"\n")
        blank = next((k for k, ln in enumerate(lines) if not ln.strip()), None)
        if blank is None or blank + 1 >= len(lines):
            return "hdr", None
        t = lines[blank + 1].split()
        if len(t) != 4:
            return "hdr", None
        dims = _ints([t[3], t[1]])
        return "hdr", dims if t[0][1:2] == b"Y" else (dims[1], dims[0]) if dims else None
    return "unknown", None
