#!/usr/bin/env python3
"""Cold-cache range queries against a Cairn that reads its blocks from a bucket.

Usage: bench_bucket_cold.py START END STEP ROUNDS LOCAL_URL BUCKET_URL CACHE_DIR LOG -- CMD...

For each query of bench_query.py and each of ROUNDS rounds: the bucket
Cairn (CMD, serving BUCKET_URL) is started afresh with CACHE_DIR emptied,
so its page cache is empty and no index header is on disk, and the query
is timed once on it (cold); then once on the local Cairn (LOCAL_URL, whose
blocks are on local disk and in the page cache after the first round).
Prints one Markdown row per query: medians in ms, the cold/local ratio, and
whether the answers are equal.
"""
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request

from bench_query import QUERIES, run, same


def wait_ready(url):
    for _ in range(300):
        try:
            with urllib.request.urlopen(url + "/-/ready", timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not become ready")


def main():
    sep = sys.argv.index("--")
    start, end, step, rounds, local, bucket, cache, log = sys.argv[1:sep]
    cmd = sys.argv[sep + 1:]
    rounds = int(rounds)
    print("| query | local (ms) | bucket, cold (ms) | cold / local | equal |")
    print("|---|---|---|---|---|")
    with open(log, "a") as logf:
        for label, q in QUERIES:
            cold, loc, eq = [], [], True
            for _ in range(rounds):
                shutil.rmtree(cache, ignore_errors=True)
                p = subprocess.Popen(cmd, stdout=logf, stderr=logf)
                try:
                    wait_ready(bucket)
                    ms, rb = run(bucket, q, start, end, step)
                    cold.append(ms)
                finally:
                    p.terminate()
                    p.wait()
                ms, rl = run(local, q, start, end, step)
                loc.append(ms)
                eq = eq and same(rl, rb)
            c, l = statistics.median(cold), statistics.median(loc)
            print(f"| `{label}` | {l:.1f} | {c:.1f} | {c / l:.2f} | {'yes' if eq else 'NO'} |", flush=True)


if __name__ == "__main__":
    main()
