#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/seeds/<target>/.

The seeds are committed; this script documents where each one comes from and
rebuilds them byte for byte (it is deterministic). Run it from anywhere:

    python3 fuzz/seeds/make_seeds.py

Every seed is either cut from a frozen fixture under tests/fixtures/ or built
by hand here with an independent encoder (CRC32C, snappy literals, protobuf
and varints are written out below rather than taken from Cairn), so the
seeds do not merely echo what Cairn's own encoders produce. Each target's
input layout (what a first byte selects, which variant stamps a header) is
described in its fuzz_targets/<target>.rs.
"""

import gzip
import json
import os
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.path.join(ROOT, "tests", "fixtures")
OUT = os.path.join(ROOT, "fuzz", "seeds")


# --- small independent encoders -------------------------------------------

def _crc_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


_CRC = _crc_table()


def crc32c(b):
    c = 0xFFFFFFFF
    for x in b:
        c = _CRC[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def uvarint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def zigzag(v):
    return (v << 1) ^ (v >> 63) if v < 0 else v << 1


def varint(v):
    return uvarint(zigzag(v) & 0xFFFFFFFFFFFFFFFF)


def read_uvarint(b, p):
    v = s = 0
    while True:
        x = b[p]
        p += 1
        v |= (x & 0x7F) << s
        s += 7
        if x < 0x80:
            return v, p


def snappy_literal(data):
    """A valid snappy block made of literal elements only."""
    out = bytearray(uvarint(len(data)))
    for i in range(0, len(data), 60):
        chunk = data[i:i + 60]
        out.append((len(chunk) - 1) << 2)
        out += chunk
    return bytes(out)


def snappy_decompress(b):
    n, p = read_uvarint(b, 0)
    out = bytearray()
    while p < len(b):
        tag = b[p]
        p += 1
        kind = tag & 3
        if kind == 0:
            ln = tag >> 2
            if ln >= 60:
                k = ln - 59
                ln = int.from_bytes(b[p:p + k], "little")
                p += k
            ln += 1
            out += b[p:p + ln]
            p += ln
            continue
        if kind == 1:
            ln = 4 + ((tag >> 2) & 7)
            off = ((tag >> 5) << 8) | b[p]
            p += 1
        elif kind == 2:
            ln = (tag >> 2) + 1
            off = int.from_bytes(b[p:p + 2], "little")
            p += 2
        else:
            ln = (tag >> 2) + 1
            off = int.from_bytes(b[p:p + 4], "little")
            p += 4
        for _ in range(ln):
            out.append(out[-off])
    assert len(out) == n
    return bytes(out)


def pb_key(field, wire):
    return uvarint((field << 3) | wire)


def pb_bytes(field, data):
    if isinstance(data, str):
        data = data.encode()
    return pb_key(field, 2) + uvarint(len(data)) + data


def pb_uint(field, v):
    return pb_key(field, 0) + uvarint(v & 0xFFFFFFFFFFFFFFFF)


def pb_sint(field, v):
    return pb_key(field, 0) + varint(v)


def pb_double(field, v):
    return pb_key(field, 1) + struct.pack("<d", v)


def pb_packed_uint(field, vs):
    return pb_bytes(field, b"".join(uvarint(v) for v in vs))


# --- helpers --------------------------------------------------------------

seeds = {}


def seed(target, name, data):
    seeds.setdefault(target, {})[name] = bytes(data)


def fixture(*path):
    with open(os.path.join(FIX, *path), "rb") as f:
        return f.read()


# --- xor_chunk: chunk payloads (2-byte sample count, then the bit stream) --

def chunk_segment_payloads(seg, encoding=1):
    # Block chunk segment: magic (4), version (1), padding (3), then chunks
    # of uvarint length, encoding byte, data, CRC32C.
    p, out = 8, []
    while p < len(seg):
        ln, q = read_uvarint(seg, p)
        enc = seg[q]
        data = seg[q + 1:q + 1 + ln]
        crc = struct.unpack(">I", seg[q + 1 + ln:q + 5 + ln])[0]
        assert enc == encoding and crc == crc32c(seg[q:q + 1 + ln])
        out.append(data)
        p = q + 5 + ln
    return out


payloads = chunk_segment_payloads(fixture("chunks", "promtool-2.42", "000001"))
for i, c in enumerate(payloads):
    seed("xor_chunk", f"promtool-2.42-chunk{i}", c)
seed("xor_chunk", "empty", b"\x00\x00")
seed("xor_chunk", "truncated", payloads[0][: len(payloads[0]) // 2])

# --- xor2_chunk: XOR2 chunk data (sample count, ST header, bit stream) ------
# Cut from tests/fixtures/xor2/, whose bytes Prometheus's own encoder wrote
# (that folder's README.md): a few shapes of timestamps, values and start
# timestamps, plus both corrupt chunks.

for name in ["basic", "staleness", "stale_dod_nonzero", "irregular_timestamps", "large_dod",
             "more_than_127_zero_st", "more_than_127_st_at_end", "active_st_13bit_dod_st_deltas",
             "constant_nonzero_st", "adversarial_values", "adversarial_timestamps", "empty",
             "corrupt-truncated", "corrupt-bad-window"]:
    seed("xor2_chunk", name, fixture("xor2", name + ".chunk"))

# --- histogram_chunk: native-histogram chunk data (encodings 2 and 3) -------
# Cut from tests/fixtures/histogram-chunk/, whose bytes Prometheus v3.8.1's
# own appenders wrote (that folder's README.md): recoded layouts, resets,
# stale markers, special values, gauges, custom buckets, both encodings
# (the target decodes every input as both), plus both corrupt chunks.

for name in ["int_prometheus_bucket_changes.0", "int_stale_markers.0", "int_stale_markers.2",
             "int_gauge.0", "int_custom_buckets.0", "int_resets_and_headers.0",
             "float_prometheus_bucket_changes.0", "float_special_values.0", "float_gauge.0",
             "float_custom_buckets.0", "float_hand_two_samples.0",
             "corrupt-int-truncated", "corrupt-float-bad-window"]:
    seed("histogram_chunk", name.replace(".0", "").replace(".2", "-2"),
         fixture("histogram-chunk", name + ".chunk"))
seed("histogram_chunk", "empty-gauge", b"\x00\x00\xc0")

# --- dense_chunk: Cairn's dense chunks (0xfe) -------------------------------
# Every frozen chunk of tests/fixtures/dense/ (written by Cairn's encoder,
# see that folder's README.md): decimal mode with deltas, gaps, exceptions
# and several packed blocks, float mode, one sample, i64-extreme
# timestamps, and both corrupt chunks (unlike the XOR2 seeds, these bytes
# come from Cairn's own encoder: there is no other). The target also reads
# each input as 13-byte sample records (kind, step, payload; see
# fuzz_targets/dense_chunk.rs); one hand-made seed of that kind.

for name in sorted(os.listdir(os.path.join(FIX, "dense"))):
    if name.endswith(".chunk"):
        seed("dense_chunk", name[: -len(".chunk")], fixture("dense", name))


def dense_record(kind, step, payload):
    return bytes([kind]) + struct.pack("<i", step) + struct.pack("<Q", payload & 0xFFFFFFFFFFFFFFFF)


seed("dense_chunk", "records-decimal-stale",
     dense_record(0x09, 850, 1500 << 11)        # t0 = 850 << 31, 1500 / 10^2 = 15.0
     + dense_record(0x09, 15000, 1575 << 11)    # 15.75
     + dense_record(0x02, 15003, 0)             # stale marker
     + dense_record(0x03, 14998, 0)             # the previous value again
     + dense_record(0x40, 7, 0x3FF8000000000000))  # 7 << 32 ms later, raw bits of 1.5

# --- aggr_chunk: aggregate chunks (0xff) of the frozen downsampled blocks --
# (the corrupt fixture's chunk included: its CRC is valid, its counter entry
# is not).

for level in ("5m", "1h", "corrupt-5m", "counter-max/5m", "counter-max/1h"):
    seg = fixture("downsample", *level.split("/"), "chunks", "000001")
    for i, c in enumerate(chunk_segment_payloads(seg, encoding=0xFF)):
        seed("aggr_chunk", f"{level.replace('/', '-')}-chunk{i}", c)
seed("aggr_chunk", "all-absent", b"\x00" * 5)

# --- index_reader ----------------------------------------------------------
# Whole index files, and the same files without their 5-byte header: the
# target's second variant stamps magic and version back on and recomputes
# the table-of-contents CRC, which turns those into the valid file again.

indexes = {
    "promtool-2.42-small": fixture("index", "promtool-2.42-small.index"),
    "corrupt-series-crc": fixture("index", "corrupt-series-crc.index"),
    "corrupt-truncated-toc": fixture("index", "corrupt-truncated-toc.index"),
    "block-8-samples": fixture("blocks", "promtool", "01M80P5JVWBR6BKGS34HVKGPMN", "index"),
    "block-1-sample": fixture("blocks", "promtool", "01M80P5JX6R0JMME9YV3JM54DS", "index"),
}
for name, b in indexes.items():
    seed("index_reader", name, b)
    if not name.startswith("corrupt"):
        seed("index_reader", name + "-body", b[5:])

# --- wal_reader --------------------------------------------------------------
# Segments (trailing zero padding cut, which reads the same), and raw records
# joined by 0xff for the variant that frames each piece as one record.

PAGE = 32768


def segment_records(seg):
    p, recs, cur, comp = 0, [], bytearray(), False
    while p + 7 <= len(seg):
        left = PAGE - p % PAGE
        typ = seg[p]
        if typ == 0:
            p += left
            continue
        ln = struct.unpack(">H", seg[p + 1:p + 3])[0]
        data = seg[p + 7:p + 7 + ln]
        assert struct.unpack(">I", seg[p + 3:p + 7])[0] == crc32c(data)
        cur += data
        comp = bool(typ & 0x08)
        if typ & 7 in (1, 4):
            recs.append(snappy_decompress(bytes(cur)) if comp else bytes(cur))
            cur = bytearray()
        p += 7 + ln
    return recs


def trim_segment(seg):
    """The segment up to the end of its last fragment (drops zero padding)."""
    p, end = 0, 0
    while p + 7 <= len(seg):
        if seg[p] == 0:
            p += PAGE - p % PAGE
            continue
        p += 7 + struct.unpack(">H", seg[p + 1:p + 3])[0]
        end = p
    return seg[:end]


big = fixture("wal", "two-segments", "00000000")
seed("wal_reader", "two-segments-0-page-crossing", trim_segment(big))
seed("wal_reader", "two-segments-1", fixture("wal", "two-segments", "00000001"))
seed("wal_reader", "torn-tail-1", fixture("wal", "torn-tail", "00000001"))
prom = fixture("wal", "prometheus-2.42", "wal", "00000000")
seed("wal_reader", "prometheus-2.42-snappy", trim_segment(prom))

small_recs = segment_records(fixture("wal", "two-segments", "00000001"))
seed("wal_reader", "records-two-segments-1", b"\xff".join(small_recs))
prom_recs = segment_records(prom)
# Prometheus's records are large (its series record lists every metric); the
# smallest two, a samples record among them, are enough.
seed("wal_reader", "records-prometheus-2.42", b"\xff".join(sorted(prom_recs, key=len)[:2]))


def fragment(typ, data):
    return bytes([typ]) + struct.pack(">HI", len(data), crc32c(data)) + data


# One record split into first, middle and last fragments inside one page,
# and a snappy-compressed one (flag 0x08 on every fragment).
rec = small_recs[0]
seed(
    "wal_reader",
    "hand-split-record",
    fragment(2, rec[:5]) + fragment(3, rec[5:9]) + fragment(4, rec[9:]) + fragment(1, b""),
)
comp = snappy_literal(small_recs[-1])
seed("wal_reader", "hand-snappy-split", fragment(0x0A, comp[:4]) + fragment(0x0C, comp[4:]))
# Native-histogram samples (type 7): one sample of schema 3 with one span
# and two delta buckets; type 10: a float histogram with custom bounds.
hist = bytes([7]) + struct.pack(">QQ", 7, 1000) + bytes([0, 0, 2, 6]) + struct.pack(">d", 0.001)
hist += bytes([2, 10]) + struct.pack(">d", 18.4) + bytes([1, 1, 2, 0, 2, 10, 3, 0])
fhist = bytes([10]) + struct.pack(">QQ", 3, 5) + bytes([0, 0, 0, 105]) + struct.pack(">dddd", 0.0, 0.0, 3.0, 1.5)
fhist += bytes([1, 0, 2, 0, 2]) + struct.pack(">dd", 1.0, 2.0) + bytes([0, 1]) + struct.pack(">d", 0.5)
seed("wal_reader", "records-histograms", hist + b"\xff" + fhist)
# M-map markers (type 5, Prometheus's wbl/ only): series ref, chunk ref.
seed("wal_reader", "records-mmap-markers", bytes([5]) + struct.pack(">QQQQ", 3, (1 << 32) | 8, 4, (2 << 32) | 16))

# --- remote_write --------------------------------------------------------------
# First byte: bits 0-1 pick the content type (0 default 1.0, 1 2.0,
# 2 explicit 1.0, 3 text/plain), bit 2 makes the harness snappy-compress
# the rest; the rest is also read as stream frames.


def v1_label(n, v):
    return pb_bytes(1, n) + pb_bytes(2, v)


def v1_series(labels, samples, exemplars=(), histograms=()):
    b = b"".join(pb_bytes(1, v1_label(n, v)) for n, v in labels)
    b += b"".join(pb_bytes(2, pb_double(1, v) + pb_uint(2, t)) for t, v in samples)
    for labs, v, t in exemplars:
        e = b"".join(pb_bytes(1, v1_label(n, x)) for n, x in labs)
        b += pb_bytes(3, e + pb_double(2, v) + pb_uint(3, t))
    b += b"".join(pb_bytes(4, h) for h in histograms)
    return b


histogram = (
    pb_uint(1, 5) + pb_double(3, 12.5) + pb_sint(4, 3) + pb_double(5, 1e-128) + pb_uint(6, 1)
    + pb_bytes(11, pb_sint(1, 0) + pb_uint(2, 2)) + pb_bytes(12, varint(2) + varint(-1))
    + pb_uint(15, 1700000000000)
)
stale_nan = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
v1 = (
    pb_bytes(1, v1_series(
        [("__name__", "http_requests_total"), ("job", "api"), ("path", "/a")],
        [(1700000000000, 1.0), (1700000015000, 2.0), (1700000030000, stale_nan)],
        exemplars=[([("trace_id", "abc")], 1.0, 1700000000000)],
    ))
    + pb_bytes(1, v1_series([("__name__", "up"), ("instance", "h:9")], [(1700000000000, 1.0)]))
    + pb_bytes(3, pb_uint(1, 1) + pb_bytes(2, "http_requests_total") + pb_bytes(4, "Requests.")
               + pb_bytes(5, "requests"))
)
v1_hist = pb_bytes(1, v1_series([("__name__", "lat"), ("job", "api")], [], histograms=[histogram]))
v1_bad = pb_bytes(1, v1_series([("job", "api"), ("__name__", "unsorted"), ("job", "dup")],
                               [(5, float("inf"))]))

syms = ["", "__name__", "http_requests_total", "job", "api", "Requests.", "requests", "trace_id", "abc"]
v2_series = (
    pb_packed_uint(1, [1, 2, 3, 4])
    + pb_bytes(2, pb_double(1, 1.0) + pb_uint(2, 1700000000000) + pb_uint(3, 1699999990000))
    + pb_bytes(2, pb_double(1, 3.0) + pb_uint(2, 1700000015000))
    + pb_bytes(4, pb_packed_uint(1, [7, 8]) + pb_double(2, 1.0) + pb_uint(3, 1700000000000))
    + pb_bytes(5, pb_uint(1, 1) + pb_uint(3, 5) + pb_uint(4, 6))
    + pb_uint(6, 1699999990000)
)
v2 = b"".join(pb_bytes(4, s) for s in syms) + pb_bytes(5, v2_series)
v2_hist = (b"".join(pb_bytes(4, s) for s in syms[:5])
           + pb_bytes(5, pb_packed_uint(1, [1, 2]) + pb_bytes(3, histogram)))
v2_bad_refs = b"".join(pb_bytes(4, s) for s in syms[:3]) + pb_bytes(5, pb_packed_uint(1, [1, 9, 2]))

seed("remote_write", "v1-harness-snappy", b"\x04" + v1)
seed("remote_write", "v1-explicit-harness-snappy", b"\x06" + v1)
seed("remote_write", "v1-histogram-harness-snappy", b"\x04" + v1_hist)
seed("remote_write", "v1-bad-labels-harness-snappy", b"\x04" + v1_bad)
seed("remote_write", "v2-harness-snappy", b"\x05" + v2)
seed("remote_write", "v2-histogram-harness-snappy", b"\x05" + v2_hist)
seed("remote_write", "v2-bad-refs-harness-snappy", b"\x05" + v2_bad_refs)
seed("remote_write", "v1-raw-snappy", b"\x00" + snappy_literal(v1))
seed("remote_write", "v2-raw-snappy", b"\x01" + snappy_literal(v2))


def frame(payload):
    return uvarint(len(payload)) + struct.pack(">I", crc32c(payload)) + payload


seed("remote_write", "text-plain-frames", b"\x03" + frame(v1_series([("a", "b")], [(1, 2.0)])) + frame(b""))

# --- tombstones ------------------------------------------------------------
# Raw inputs go to the tombstones decoder and the meta.json parser; the
# target also frames the input (magic, version, CRC) as a file's entries.


def entries(es):
    return b"".join(uvarint(r) + varint(a) + varint(b) for r, a, b in es)


def tomb_file(body):
    return struct.pack(">I", 0x0130BA30) + b"\x01" + body + struct.pack(">I", crc32c(body))


seed("tombstones", "promtool-empty-file", fixture("blocks", "promtool", "01M80P5JVWBR6BKGS34HVKGPMN", "tombstones"))
seed("tombstones", "corrupt-crc-file", fixture("blocks", "corrupt", "tombstones-crc", "tombstones"))
seed("tombstones", "meta-8-samples", fixture("blocks", "promtool", "01M80P5JVWBR6BKGS34HVKGPMN", "meta.json"))
seed("tombstones", "meta-1-sample", fixture("blocks", "promtool", "01M80P5JX6R0JMME9YV3JM54DS", "meta.json"))
meta = json.loads(fixture("blocks", "promtool", "01M80P5JVWBR6BKGS34HVKGPMN", "meta.json"))
meta["stats"]["numTombstones"] = 3
meta["compaction"].update(
    level=2,
    sources=["01M80P5JVWBR6BKGS34HVKGPMN", "01M80P5JX6R0JMME9YV3JM54DS"],
    parents=[
        {"ulid": "01M80P5JVWBR6BKGS34HVKGPMN", "minTime": 1700000000000, "maxTime": 1700000030001},
        {"ulid": "01M80P5JX6R0JMME9YV3JM54DS", "minTime": 1700007300500, "maxTime": 1700007300501},
    ],
    deletable=True,
    hints=["from-out-of-order"],
)
seed("tombstones", "meta-compacted", json.dumps(meta, indent="\t").encode())
many = [(5, 100, 200), (5, 201, 300), (5, 250, 260), (9, -(2**63), -1), (9, 10, 2**63 - 1),
        (2**64 - 1, 0, 0), (7, 50, 40)]
seed("tombstones", "entries-several", entries(many))
seed("tombstones", "file-several", tomb_file(entries(many)))
# The first failure the fuzzer found: an empty interval (mint 10 > maxt 5).
seed("tombstones", "entries-inverted", entries([(3, 10, 5)]))

# --- otlp ------------------------------------------------------------------
# The first byte picks gzip (odd) or none; the rest is an
# ExportMetricsServiceRequest (field numbers: proto/otlp.md).


def pb_fixed64(field, v):
    return pb_key(field, 1) + struct.pack("<Q", v)


def otlp_kv(k, v):
    any_value = pb_bytes(1, v) if isinstance(v, str) else pb_uint(3, v)
    return pb_bytes(1, k) + pb_bytes(2, any_value)


def otlp_number_point(attrs, t, v, flags=0):
    b = b"".join(pb_bytes(7, otlp_kv(k, x)) for k, x in attrs)
    b += pb_fixed64(2, t - 60 * 10**9) + pb_fixed64(3, t) + pb_double(4, v)
    if flags:
        b += pb_uint(8, flags)
    return b


T = 1_700_000_000_123_000_000
gauge = pb_bytes(1, "gpu.temperature") + pb_bytes(3, "Cel") + pb_bytes(
    5, pb_bytes(1, otlp_number_point([("gpu", "0")], T, 61.5)) + pb_bytes(1, otlp_number_point([("gpu", 1)], T, 0.0, 1))
)
counter = pb_bytes(1, "http.server.requests") + pb_bytes(
    7, pb_bytes(1, otlp_number_point([("http.method", "GET")], T, 42.0)) + pb_uint(2, 2) + pb_uint(3, 1)
)
delta = pb_bytes(1, "delta.events") + pb_bytes(7, pb_bytes(1, otlp_number_point([], T, 3.0)) + pb_uint(2, 1) + pb_uint(3, 1))
hist_point = (
    pb_fixed64(2, T - 60 * 10**9) + pb_fixed64(3, T) + pb_fixed64(4, 10) + pb_double(5, 4.25)
    + pb_bytes(6, b"".join(struct.pack("<Q", c) for c in [2, 5, 3]))
    + pb_bytes(7, b"".join(struct.pack("<d", x) for x in [0.1, 1.0]))
)
hist = pb_bytes(1, "http.server.duration") + pb_bytes(3, "s") + pb_bytes(9, pb_bytes(1, hist_point) + pb_uint(2, 2))
summary_point = pb_fixed64(3, T) + pb_fixed64(4, 7) + pb_double(5, 70.0) + pb_bytes(6, pb_double(1, 0.5) + pb_double(2, 9.0))
summary = pb_bytes(1, "rpc.latency") + pb_bytes(3, "ms") + pb_bytes(11, pb_bytes(1, summary_point))
resource = pb_bytes(1, otlp_kv("service.name", "dcgm")) + pb_bytes(1, otlp_kv("service.instance.id", "node-7")) + pb_bytes(1, otlp_kv("host.name", "node-7"))
scope = pb_bytes(1, pb_bytes(1, "cairn")) + b"".join(pb_bytes(2, m) for m in [gauge, counter, delta, hist, summary])
request = pb_bytes(1, pb_bytes(1, resource) + pb_bytes(2, scope))
seed("otlp", "request", b"\x00" + request)
seed("otlp", "request-gzip", b"\x01" + gzip.compress(request, mtime=0))
seed("otlp", "empty", b"\x00")
# The fuzzer's first find: points far apart in time made target_info write
# a sample every 150 s between them (now at most an hour's worth).
seed("otlp", "timeout-far-apart-points", bytes.fromhex(
    "000a86040a500a160a0c736572766963652e6e616d6512060a046463676d0a1f0a13736572766963652e696e7374616e63652e696412080a066e6f64652d370a150a09686f73742e6e616d6512080a066e6f64652d3712b1030a070a05636169726e126b0a0f6770752e74656d70657261747572651a0343656c2a530a273a0a0a0367707512030a013011c07c3745f09c971719c0d47e3dfe9c9717210000000000c04e400a283a090a036770751202180111c07c3745f09c971719c0d417977e9cfe3d2100000000000000004001124f0a14687474702e7365727665722e72657175657374733a370a313a140a0b687474702e6d6574686f6412050a0347455411c07c3745f09c971719c0d47e3dfe9c97172100000000000045401002180112310a0c64656c74612e6576656e74733a210a1b11c07c3745f09c971719c0d47e3dfe9c971721000000000000084010011801126f0a14687474702e7365727665722e6475726174696f6e1a01734a540a5011c07cb745f09c971719c0d47e3dfe9c9717210a0000000000000029000000000000134032180200000000000000050000000000000003000000000000003a109a9999990112b93f000000000000f03f100212440a0b7270632e6c6174656e63791a026d735a310a2f19c0d47e3dfe9c9717210700000000000000290000000000805140321209000000000000e03f110000000000002240"))

# --- remote_read_response --------------------------------------------------

# Remote read answers as a --query.store sends them; the first byte picks
# the kind (1: streamed frames, 0: snappy SAMPLES). The streamed one holds
# one series over two frames, each with the promtool fixture's first XOR
# chunk; the SAMPLES one two samples of the same series.
rr_labels = pb_bytes(1, pb_bytes(1, "__name__") + pb_bytes(2, "gpu_temp")) + pb_bytes(
    1, pb_bytes(1, "gpu") + pb_bytes(2, "0"))


def rr_frame(chunk, t0, t1):
    c = pb_uint(1, t0) + pb_uint(2, t1) + pb_uint(3, 1) + pb_bytes(4, chunk)
    msg = pb_bytes(1, rr_labels + pb_bytes(2, c)) + pb_uint(2, 0)
    return uvarint(len(msg)) + struct.pack(">I", crc32c(msg)) + msg


rr_chunk = seeds["xor_chunk"]["promtool-2.42-chunk0"]
seed("remote_read_response", "streamed", b"\x01" + rr_frame(rr_chunk, 0, 10**13) * 2)
rr_samples = pb_bytes(2, pb_double(1, 40.0) + pb_sint(2, 1000)) + pb_bytes(2, pb_double(1, 41.0) + pb_sint(2, 2000))
rr_response = pb_bytes(1, pb_bytes(1, rr_labels + rr_samples))
seed("remote_read_response", "samples", b"\x00" + snappy_literal(rr_response))

# --- promql_query ----------------------------------------------------------

# The first byte is the step in seconds (0: an instant query).
for i, q in enumerate([
    'sum by (Hostname) (rate(DCGM_FI_PROF_PIPE_TENSOR_ACTIVE{gpu="0"}[5m] anchored))',
    'histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket[1h+5m:step()*2] offset -(1h / 2))))',
    'info(up, {__name__=~".+_info", k8s_pod=~".+"}) > bool 0.5 or on (job) group_left (x) vector(1)',
    'topk(3, max_over_time(DCGM_FI_DEV_GPU_TEMP[30m] @ end())) unless ignoring (gpu) absent(up smoothed offset min(step(), 1m) ^ 2)',
    'label_replace(count_values("v", node_load1), "a", "$1", `b`, "(.*)") / scalar(limit_ratio(0.5, x{a!~"b|c", d!="e"}))',
]):
    seed("promql_query", f"seed_{i}.txt", b"\x0f" + q.encode())

# --- write -----------------------------------------------------------------

# Only the files this script writes are replaced: seeds added by hand (a
# fuzzer's finds, fixtures copied in) stay.
total = 0
for target, files in sorted(seeds.items()):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    for name, data in sorted(files.items()):
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        total += len(data)
    print(f"{target}: {len(files)} seeds, {sum(map(len, files.values()))} bytes")
print(f"total {total} bytes")
