"""Image headers: format, size (width, height), completeness and EXIF orientation from a few small
reads per file, no decoding — for every format OpenCV decodes: JPEG (SOF, APP1 EXIF, end marker), PNG
(IHDR, eXIf, IEND), BMP, WebP (VP8/VP8L/VP8X, EXIF chunk), TIFF and BigTIFF, GIF, JPEG 2000 (JP2 boxes
and the bare codestream), AVIF/HEIF (``ispe``), PNM/PAM/PFM, Sun raster, Radiance HDR.
:func:`flowdet.core.imread.read_header` opens the file (regular files only), applies the orientation to
the size and checks the pixel cap on it before the decoder allocates anything. Torch-free.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

Size = tuple[int, int] | None  # (width, height), None when the header does not give it
_HEIF_BRANDS = (b"avif", b"avis", b"mif1", b"msf1", b"heic", b"heix", b"hevc", b"heim", b"heis")
_TAIL = 65536  # bytes at the end of a file searched for the end marker before a full scan


@dataclass
class Header:
    format: str                 # "jpeg", "png", "bmp", "webp", "tiff", "gif", … or "unknown"
    size: tuple[int, int] | None  # (width, height) as decoded (EXIF rotation applied), None if unknown
    complete: bool = True       # False: the end marker is missing (truncated file)
    orientation: int = 1        # EXIF orientation 1–8 (applied to ``size`` and by read_image)


def parse_header(f: BinaryIO, size: int) -> Header:
    """The header of an open image file of ``size`` bytes: format, stored size (EXIF orientation not yet
    applied to it), completeness, orientation. Unknown formats give ``Header("unknown", None)``."""
    head = f.read(64)
    if head[:3] == b"\xff\xd8\xff":
        return _jpeg(f, size)
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return _png(f, size, head)
    if head[:2] == b"BM":
        return _bmp(head)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        h = _webp(head)
        h.orientation = _webp_orientation(f, head)
        return h
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):  # TIFF, BigTIFF
        dims = tiff_size(f, head)
        f.seek(0)
        tag = _tiff_tags(f.read(1 << 16), {0x0112}).get(0x0112, 1)  # {} for BigTIFF: orientation 1
        return Header("tiff", dims, orientation=tag if 1 <= tag <= 8 else 1)
    fmt, dims = other_header(f, head)
    return Header(fmt, dims)


# ------------------------------------------------------------------ JPEG, PNG, BMP, WebP

def _u16(b: bytes, big: bool) -> int:
    return struct.unpack(">H" if big else "<H", b)[0]


def _u32(b: bytes, big: bool) -> int:
    return struct.unpack(">I" if big else "<I", b)[0]


def _tiff_tags(buf: bytes, wanted: set[int]) -> dict[int, int]:
    """First-IFD SHORT/LONG tags of a TIFF structure (a .tif file or a JPEG's EXIF block)."""
    if len(buf) < 8 or buf[:4] not in (b"II*\x00", b"MM\x00*"):
        return {}
    big = buf[:2] == b"MM"
    off = _u32(buf[4:8], big)
    if off + 2 > len(buf):
        return {}
    n = _u16(buf[off:off + 2], big)
    out = {}
    for k in range(min(n, 512)):
        e = off + 2 + 12 * k
        if e + 12 > len(buf):
            break
        tag, typ = _u16(buf[e:e + 2], big), _u16(buf[e + 2:e + 4], big)
        if tag in wanted:
            if typ == 3:
                out[tag] = _u16(buf[e + 8:e + 10], big)
            elif typ == 4:
                out[tag] = _u32(buf[e + 8:e + 12], big)
    return out


def _find_after(f: BinaryIO, start: int, size: int, marker: bytes) -> bool:
    """Whether ``marker`` occurs at or after ``start``: the file's tail first, then a full scan."""
    tail_start = max(start, size - _TAIL)
    f.seek(tail_start)
    if marker in f.read():
        return True
    if tail_start == start:
        return False
    f.seek(start)
    chunk, carry = 1 << 20, b""
    while True:
        block = f.read(chunk)
        if not block:
            return False
        if marker in carry + block:
            return True
        carry = block[-(len(marker) - 1):]


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(f: BinaryIO, size: int) -> Header:
    f.seek(2)
    dims, orientation, sos = None, 1, None
    while True:
        b = f.read(1)
        while b == b"\xff":  # fill bytes
            b = f.read(1)
        if not b:
            break
        m = b[0]
        if m in (0x01, *range(0xD0, 0xD8)):  # standalone markers
            b = f.read(1)
            if b != b"\xff":
                break
            continue
        if m == 0xD9:
            break
        ln = f.read(2)
        if len(ln) < 2:
            break
        n = _u16(ln, True)
        if n < 2:
            break
        pos = f.tell()
        if m == 0xDA:
            sos = pos + n - 2
            break
        if m in _SOF:
            seg = f.read(5)
            if len(seg) == 5:
                dims = (_u16(seg[3:5], True), _u16(seg[1:3], True))  # (width, height)
        elif m == 0xE1 and orientation == 1:
            seg = f.read(min(n - 2, 65533))
            if seg.startswith(b"Exif\x00\x00"):
                orientation = _tiff_tags(seg[6:], {0x0112}).get(0x0112, 1)
        f.seek(pos + n - 2)
        b = f.read(1)
        if b != b"\xff":
            break
    if dims is None or 0 in dims:
        return Header("jpeg", None, sos is not None)
    complete = sos is not None and _find_after(f, sos, size, b"\xff\xd9")
    return Header("jpeg", dims, complete, orientation)


_MAX_CHUNKS = 4096  # chunks walked looking for EXIF before the image data (a real file has a handful)


def _exif_orientation(block: bytes) -> int:
    """The orientation tag of an EXIF block (with or without the "Exif\\0\\0" prefix); 1 if none."""
    tiff = block[6:] if block.startswith(b"Exif\x00\x00") else block
    value = _tiff_tags(tiff, {0x0112}).get(0x0112, 1)
    return value if 1 <= value <= 8 else 1


def _png_orientation(f: BinaryIO) -> int:
    """From an ``eXIf`` chunk before the image data (where the PNG spec puts it)."""
    pos = 8
    for _ in range(_MAX_CHUNKS):
        f.seek(pos)
        hdr = f.read(8)
        if len(hdr) < 8 or hdr[4:8] in (b"IDAT", b"IEND"):
            return 1
        n = _u32(hdr[:4], True)
        if hdr[4:8] == b"eXIf":
            return _exif_orientation(f.read(min(n, 1 << 16)))
        pos += 12 + n
    return 1


def _webp_orientation(f: BinaryIO, head: bytes) -> int:
    """From the ``EXIF`` chunk of an extended (VP8X) WebP whose flags say it has one."""
    if head[12:16] != b"VP8X" or len(head) < 21 or not head[20] & 0x08:
        return 1
    pos = 12
    for _ in range(_MAX_CHUNKS):
        f.seek(pos)
        hdr = f.read(8)
        if len(hdr) < 8:
            return 1
        n = _u32(hdr[4:8], False)
        if hdr[:4] == b"EXIF":
            return _exif_orientation(f.read(min(n, 1 << 16)))
        pos += 8 + n + (n & 1)
    return 1


def _png(f: BinaryIO, size: int, head: bytes) -> Header:
    if len(head) < 24 or head[12:16] != b"IHDR":
        return Header("png", None, False)
    dims = (_u32(head[16:20], True), _u32(head[20:24], True))
    return Header("png", dims, _find_after(f, 8, size, b"IEND"), _png_orientation(f))


def _bmp(head: bytes) -> Header:
    if len(head) < 26:
        return Header("bmp", None)
    hsize = _u32(head[14:18], False)
    if hsize == 12:
        return Header("bmp", (_u16(head[18:20], False), _u16(head[20:22], False)))
    w, h = struct.unpack("<ii", head[18:26])
    return Header("bmp", (abs(w), abs(h)))


def _webp(head: bytes) -> Header:
    kind = head[12:16]
    if kind == b"VP8 " and len(head) >= 30:
        return Header("webp", (_u16(head[26:28], False) & 0x3FFF, _u16(head[28:30], False) & 0x3FFF))
    if kind == b"VP8L" and len(head) >= 25:
        bits = _u32(head[21:25], False)
        return Header("webp", ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
    if kind == b"VP8X" and len(head) >= 30:
        return Header("webp", (int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1))
    return Header("webp", None)


# ------------------------------------------------------------------ TIFF and the rest


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
