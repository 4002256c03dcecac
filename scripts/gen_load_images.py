"""Reference values for crates/models/tests/load_images.rs: plenoptic's `load_images`
(plenoptic 1.1.0; current plenoptic loads the same way) on small gray, RGB and RGBA files
(8 and 16 bit, opaque and half-transparent), and JPEG (colour with 4:2:0 chroma, gray), with
`as_gray=True` (plenoptic's default:
skimage's rgb2gray, RGBA first composited onto white by rgba2rgb) and `as_gray=False`.

Run with a venv that has plenoptic 1.1.0 (imageio, scikit-image) on torch 2.13:
    python scripts/gen_load_images.py
Writes crates/models/tests/data/load_images/:
    <name>.png / .pgm   the files, written byte by byte here (a minimal PNG writer, so 16-bit
                        RGB and gray+alpha files need no imaging library)
    <name>.jpg          written by Pillow (quality 90; colour with its default 4:2:0 chroma
                        subsampling), decoded by plenoptic through Pillow's libjpeg, which
                        synthsweep's decoder does not reproduce bit for bit (the test bounds
                        the difference)
    expected.npz        <name>__gray and <name>__color: load_images(path, as_gray=...) as
                        float32 (1, C, H, W)
    expected.json       per file: its PNG colour type and bit depth, the shapes, and the error
                        plenoptic raises where it cannot load the file

What plenoptic gets from imageio (Pillow 13) is recorded as it is: a 16-bit RGB, RGBA or
gray+alpha PNG arrives as 8 bits (the high bytes; gray+alpha as RGBA), and a 16-bit PGM as
32-bit integers, which plenoptic then divides by 2^31 - 1 (synthsweep reads k / 65535
instead; the test checks that this scale is the only difference).
"""
import json
import os
import struct
import zlib

import numpy as np
import plenoptic as po
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates/models/tests/data/load_images")

# PNG colour types: channels per pixel.
CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}


def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def write_png(path, pixels, color_type, bit_depth):
    """pixels: (H, W, C) unsigned ints, C = CHANNELS[color_type]."""
    h, w, c = pixels.shape
    assert c == CHANNELS[color_type]
    dtype = ">u2" if bit_depth == 16 else "u1"
    raw = b"".join(b"\x00" + pixels[i].astype(dtype).tobytes() for i in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def write_pgm(path, pixels, maxval):
    h, w = pixels.shape
    dtype = ">u2" if maxval > 255 else "u1"
    with open(path, "wb") as f:
        f.write(f"P5\n{w} {h}\n{maxval}\n".encode() + pixels.astype(dtype).tobytes())


def files(rng):
    h, w = 4, 5
    rgb8 = rng.integers(0, 256, (h, w, 3))
    alpha = rng.integers(0, 256, (h, w, 1))
    alpha[0, 0] = 255  # opaque
    alpha[0, 1] = 0  # fully transparent
    alpha[0, 2] = 128  # half-transparent
    rgb8[0, 2] = [200, 100, 50]  # the example pixel: plenoptic gives 0.7296
    opaque = np.full((h, w, 1), 255)
    gray8 = rng.integers(0, 256, (h, w, 1))
    return {
        "rgb8.png": (np.concatenate([rgb8], 2), 2, 8),
        "rgba8.png": (np.concatenate([rgb8, alpha], 2), 6, 8),
        "rgba8_opaque.png": (np.concatenate([rgb8, opaque], 2), 6, 8),
        "rgb16.png": (rng.integers(0, 65536, (h, w, 3)), 2, 16),
        "rgba16.png": (np.concatenate([rng.integers(0, 65536, (h, w, 3)), rng.integers(0, 65536, (h, w, 1))], 2), 6, 16),
        "gray8.png": (gray8, 0, 8),
        "gray16.png": (rng.integers(0, 65536, (h, w, 1)), 0, 16),
        "gray_alpha8.png": (np.concatenate([gray8, alpha], 2), 4, 8),
        "gray_alpha16.png": (rng.integers(0, 65536, (h, w, 2)), 4, 16),
        "gray8.pgm": (gray8[..., 0], "pgm", 255),
        "gray16.pgm": (rng.integers(0, 65536, (h, w)), "pgm", 65535),
        "rgb8_420.jpg": (smooth_rgb(), "jpeg", 90),
        "gray8.jpg": (smooth_rgb()[..., 1], "jpeg", 90),
    }


def smooth_rgb():
    """A 16x16 colour image with edges and gradients (what JPEG's blocks and chroma
    subsampling act on)."""
    y, x = np.mgrid[0:16, 0:16]
    r = (x * 16) % 256
    g = np.where((x // 4 + y // 4) % 2 == 0, 200, 40)
    b = (255 - y * 15) % 256
    return np.stack([r, g, b], -1).astype(np.uint8)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(2)
    arrays, meta = {}, {}
    for name, (pixels, kind, depth) in files(rng).items():
        path = os.path.join(OUT, name)
        if kind == "pgm":
            write_pgm(path, pixels, depth)
            entry = dict(format="pgm", maxval=depth)
        elif kind == "jpeg":
            from PIL import Image

            Image.fromarray(pixels.astype(np.uint8)).save(path, quality=depth)
            entry = dict(format="jpeg", quality=depth)
        else:
            write_png(path, pixels, kind, depth)
            entry = dict(format="png", color_type=kind, bit_depth=depth)
        stem = name.replace(".", "_")
        for as_gray, suffix in ((True, "gray"), (False, "color")):
            try:
                t = po.tools.load_images(path, as_gray=as_gray)
            except Exception as e:
                entry[f"{suffix}_error"] = f"{type(e).__name__}: {e}"
                continue
            assert t.dtype == torch.float32
            arrays[f"{stem}__{suffix}"] = t.numpy()
            entry[f"{suffix}_shape"] = list(t.shape)
        meta[name] = entry
        print(name, entry)
    np.savez(os.path.join(OUT, "expected.npz"), **arrays)
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(dict(generator="scripts/gen_load_images.py", plenoptic=po.__version__, files=meta), f, indent=1)
        f.write("\n")
    half = arrays["rgba8_png__gray"][0, 0, 0, 2]
    print("half-transparent (200, 100, 50, 128) ->", half)


if __name__ == "__main__":
    main()
