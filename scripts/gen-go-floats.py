#!/usr/bin/env python3
"""Regenerates crates/model/tests/fixtures/go_floats.txt: floats as Go prints them.

Go's own output is the oracle for cairn_model::format_go_g/format_go_f. The
values go through `promtool tsdb create-blocks-from openmetrics` and come back
from `promtool tsdb dump`, which prints each value with Go's %g. Each fixture
line is `<f64 bits in hex> <what Go printed>`.

The values: random bit patterns, magnitudes where two shortest candidates tie
(Go takes the even one; Rust's Display does not), values near 2^53 and above,
and dashboard-like decimals. Seeded, so a rerun gives the same file.

Usage: scripts/gen-go-floats.py   (needs promtool, e.g. from scripts/install-deps.sh)
"""
import os
import random
import struct
import subprocess
import sys
import tempfile

OUT = os.path.join(os.path.dirname(__file__), "..", "crates/model/tests/fixtures/go_floats.txt")


def from_bits(b):
    return struct.unpack("<d", struct.pack("<Q", b))[0]


def bits(v):
    return struct.unpack("<Q", struct.pack("<d", v))[0]


def values():
    rng = random.Random(20261122)
    out = []
    while len(out) < 800:
        v = from_bits(rng.getrandbits(64))
        if v == v and abs(v) != float("inf"):
            out.append(v)
    # ulp 2^-shift at [2^(52-shift), 2^(53-shift)): every other value is a tie.
    for shift in range(1, 9):
        # At 2^-2 a quarter of the values (x.25) are ties; weight it.
        for _ in range(500 if shift == 2 else 100):
            out.append(((1 << 52) + rng.getrandbits(52)) * 2.0 ** -shift)
    # Above 2^53 the spacing is 2, 4, ...: integers with 17+ digits.
    for shift in range(1, 8):
        for _ in range(40):
            out.append(float(((1 << 52) + rng.getrandbits(52)) << shift))
    # Dashboard-like: small decimals, percentages, byte counts, negatives.
    for _ in range(400):
        m = rng.randint(-10**9, 10**9)
        out.append(m * 10.0 ** rng.randint(-12, 12))
    out += [0.0, -0.0, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
            0.1, 0.2, 0.30000000000000004, 1e21, 1e-7, 123456.0, 1e6, 1713696777316956.25]
    return out


def main():
    vals = values()
    with tempfile.TemporaryDirectory() as tmp:
        om = os.path.join(tmp, "in.om")
        with open(om, "w") as f:
            f.write("# TYPE m gauge\n")
            for i, v in enumerate(vals):
                f.write(f"m {v!r} {i + 1}\n")
            f.write("# EOF\n")
        data = os.path.join(tmp, "data")
        subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", om, data],
                       check=True, stdout=subprocess.DEVNULL)
        os.makedirs(os.path.join(data, "wal"), exist_ok=True)
        dump = subprocess.run(["promtool", "tsdb", "dump", data], check=True,
                              capture_output=True, text=True).stdout
    printed = {}
    for line in dump.splitlines():
        _, val, ts = line.rsplit(" ", 2)
        printed[int(ts) // 1000 - 1] = val
    if len(printed) != len(vals):
        sys.exit(f"promtool dumped {len(printed)} of {len(vals)} values")
    with open(OUT, "w") as f:
        f.write("# f64 bits (hex) and Go's %g of it, printed by promtool tsdb dump; "
                "regenerate with scripts/gen-go-floats.py\n")
        for i, v in enumerate(vals):
            f.write(f"{bits(v):016x} {printed[i]}\n")
    print(f"wrote {len(vals)} values to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
