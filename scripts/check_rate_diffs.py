#!/usr/bin/env python3
"""Explains rate() differences between Prometheus 2.42 and Cairn.

Usage: check_rate_diffs.py PROM_URL CAIRN_URL START END STEP METRIC

Runs `rate(METRIC[5m])` as a range query on both. For every point where
they differ, it reads the window's raw samples from Cairn and recomputes
both extrapolations: Prometheus 2.x clamps the start extrapolation at the
counter's zero point before testing it against the 1.1x-average threshold,
Prometheus 3.x (and Cairn) after (prometheus/prometheus#13725). A point is
explained when Prometheus matches the 2.x value and Cairn the 3.x one. Exits
non-zero if any point is unexplained.
"""
import json, sys, urllib.parse, urllib.request

prom, cairn, start, end, step, metric = sys.argv[1:7]
rng = 300


def post(url, path, **kw):
    d = urllib.parse.urlencode(kw).encode()
    return json.load(urllib.request.urlopen(url + path, data=d))["data"]["result"]


q = "rate(%s[5m])" % metric
a = {json.dumps(s["metric"], sort_keys=True): s["values"]
     for s in post(prom, "/api/v1/query_range", query=q, start=start, end=end, step=step)}
b = {json.dumps(s["metric"], sort_keys=True): s["values"]
     for s in post(cairn, "/api/v1/query_range", query=q, start=start, end=end, step=step)}
assert a.keys()==b.keys(), "series differ"
def rate(pts, lo, hi, v3):
    first_t, first_v = pts[0]; last_t, last_v = pts[-1]
    res = last_v - first_v
    prev = first_v
    for t, v in pts[1:]:
        if v < prev: res += prev
        prev = v
    to_start = first_t - lo; to_end = hi - last_t
    sampled = last_t - first_t; avg = sampled/(len(pts)-1); thr = avg*1.1
    if v3:
        if to_start >= thr: to_start = avg/2
        if res > 0 and first_v >= 0:
            z = sampled*(first_v/res)
            if z < to_start: to_start = z
        ext = sampled + to_start
    else:
        if res > 0 and first_v >= 0:
            z = sampled*(first_v/res)
            if z < to_start: to_start = z
        ext = sampled + (to_start if to_start < thr else avg/2)
    ext += to_end if to_end < thr else avg/2
    return res*ext/sampled/rng
diff=ok=bad=0
for k in a:
    for (ta,xa),(tb,xb) in zip(a[k],b[k]):
        assert ta==tb
        fa,fb=float(xa),float(xb)
        if abs(fa-fb) <= 1e-9*max(abs(fa),abs(fb)): continue
        diff+=1
        m=json.loads(k); sel="%s{%s}[5m]"%(metric, ",".join('%s="%s"'%(x,y) for x,y in m.items()))
        raw=post(cairn,"/api/v1/query",query=sel,time=ta)
        pts=[(float(t),float(v)) for t,v in raw[0]["values"]]
        r2=rate(pts, ta-rng, ta, False); r3=rate(pts, ta-rng, ta, True)
        if abs(r2-fa)<=1e-6*abs(fa) and abs(r3-fb)<=1e-6*abs(fb): ok+=1
        else: bad+=1; print("UNEXPLAINED", k, ta, fa, fb, r2, r3)
print("series %d, differing points %d, explained by 2.x vs 3.x extrapolation %d, unexplained %d" % (len(a), diff, ok, bad))
sys.exit(1 if bad else 0)
