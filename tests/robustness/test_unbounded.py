"""Bounded memory for every flag in range: an image's size is read from its header — for every format
the decoder takes — before anything is decoded, and sliced inference makes a bounded number of tiles."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from robustness import hostile

SIDE = 12000  # 144 MP: over the 64 MP cap; decoding it takes ~430 MB (gray) to 1.7 GB


def _bigtiff(path: Path) -> Path:
    """A few-hundred-byte BigTIFF whose first IFD says SIDE × SIDE (one deflated strip of zeros)."""
    strip = zlib.compress(b"\x00" * 4096)
    tags = [(256, 16, 1, SIDE), (257, 16, 1, SIDE), (258, 3, 1, 8), (259, 3, 1, 8), (262, 3, 1, 1),
            (273, 16, 1, 0), (277, 3, 1, 1), (278, 16, 1, SIDE), (279, 16, 1, len(strip))]
    ifd_at = 16
    data_at = ifd_at + 8 + 20 * len(tags) + 8
    ifd = struct.pack("<Q", len(tags))
    for tag, typ, count, value in tags:
        value = data_at if tag == 273 else value
        ifd += struct.pack("<HHQ", tag, typ, count) + (struct.pack("<Q", value) if typ == 16 else
                                                       struct.pack("<H", value) + b"\x00" * 6)
    path.write_bytes(b"II+\x00" + struct.pack("<HHQ", 8, 0, ifd_at) + ifd + struct.pack("<Q", 0) + strip)
    return path


def _gif(path: Path) -> Path:
    """A GIF (named .jpg, as found in the wild) whose logical screen is SIDE × SIDE."""
    path.write_bytes(b"GIF89a" + struct.pack("<HH", SIDE, SIDE) + b"\x80\x00\x00" + b"\x00" * 6 +
                     b"\x2c" + struct.pack("<HHHH", 0, 0, SIDE, SIDE) + b"\x00\x02\x02\x44\x01\x00\x3b")
    return path


def _header_only(make_head):
    def write(path: Path) -> Path:
        path.write_bytes(make_head() + b"\x00" * 256)
        return path
    return write


HUGE = {
    "big.tif": _bigtiff,
    "anim.jpg": _gif,
    "classic.tif": _header_only(lambda: b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 2) +
                                struct.pack("<HHII", 256, 4, 1, SIDE) + struct.pack("<HHII", 257, 4, 1, SIDE) +
                                struct.pack("<I", 0)),
    "j.jp2": _header_only(lambda: b"\x00\x00\x00\x0cjP  \r\n\x87\n" + b"\x00\x00\x00\x14ftypjp2 \x00\x00\x00\x00jp2 "
                          + b"\x00\x00\x00\x2djp2h\x00\x00\x00\x16ihdr" + struct.pack(">II", SIDE, SIDE) +
                          b"\x00\x03\x07\x07\x00\x00"),
    "c.j2k": _header_only(lambda: b"\xff\x4f\xff\x51\x00\x29\x00\x00" + struct.pack(">IIII", SIDE, SIDE, 0, 0)),
    "a.avif": _header_only(lambda: b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" +
                           b"\x00\x00\x00\x14ispe\x00\x00\x00\x00" + struct.pack(">II", SIDE, SIDE)),
    "p.ppm": _header_only(lambda: f"P6\n# a comment\n{SIDE} {SIDE}\n255\n".encode()),
    "p.pam": _header_only(lambda: f"P7\nWIDTH {SIDE}\nHEIGHT {SIDE}\nDEPTH 3\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\n".encode()),
    "f.pfm": _header_only(lambda: f"PF\n{SIDE} {SIDE}\n-1.0\n".encode()),
    "s.ras": _header_only(lambda: struct.pack(">IIIIIIII", 0x59A66A95, SIDE, SIDE, 24, 0, 1, 0, 0)),
    "r.hdr": _header_only(lambda: f"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y {SIDE} +X {SIDE}\n".encode()),
}


@pytest.fixture
def no_decoder(monkeypatch):
    """cv2.imread fails the test if called: the refusal must come from the header alone."""
    import cv2

    def refuse(*a, **k):
        raise AssertionError(f"decoded {a[0]} before checking its size")

    monkeypatch.setattr(cv2, "imread", refuse)


@pytest.mark.parametrize("name", sorted(HUGE))
def test_every_format_is_size_checked_before_decoding(tmp_path, no_decoder, name):
    from flowdet.core.imread import ImageReadError, image_size, read_image

    path = HUGE[name](tmp_path / name)
    assert path.stat().st_size < 500_000
    for read in (read_image, image_size):
        with pytest.raises(ImageReadError, match=f"{SIDE}x{SIDE} .*over the"):
            read(path)


def test_real_files_of_every_format_keep_their_size(tmp_path):
    """The header sizes agree with the decoder's, format by format (as OpenCV writes them)."""
    import cv2

    from flowdet.core.imread import read_header, read_image

    img = np.random.default_rng(0).integers(0, 255, (37, 53, 3), dtype=np.uint8)
    for ext in (".gif", ".jp2", ".avif", ".ppm", ".pam", ".pfm", ".ras", ".hdr", ".tif", ".webp", ".bmp", ".png"):
        path = tmp_path / f"x{ext}"
        try:
            ok = cv2.imwrite(str(path), img.astype(np.float32) / 255 if ext in (".pfm", ".hdr") else img)
        except cv2.error:
            ok = False
        if not ok:
            continue  # a codec this OpenCV build lacks
        assert read_header(path).size == (53, 37), ext
        assert read_image(path).shape[:2] == (37, 53), ext


def test_no_known_header_is_never_handed_to_the_decoder(tmp_path, no_decoder):
    from flowdet.core.imread import ImageReadError, read_image

    for name, head in (("g.jpg", hostile.garbage(tmp_path / "g.bin").read_bytes()), ("t.tif", b"II+\x00\x08\x00")):
        (tmp_path / name).write_bytes(head)
        with pytest.raises(ImageReadError):
            read_image(tmp_path / name)


@pytest.mark.timeout(300)
def test_stream_tiles_are_bounded(cli, onnx64, video_factory, tmp_path):
    """`--tile 32 --overlap 0.95` (both in range) on a 320x192 video: 11,745 tiles a frame, 3 GB in 6 s."""
    pytest.importorskip("torch")
    video = video_factory(tmp_path / "v.mp4", frames=3, size=(320, 192))
    cli("stream", "--model", onnx64, video, "--tile", 32, "--overlap", 0.95, "--jsonl", tmp_path / "d.jsonl",
        "--max-frames", 1).fails("--tile", "11745 tiles", "limit of 256")
