#!/usr/bin/env python3
"""Independent reference values for rollback's sequential judge (msprt.go,
sequential.go, power.go), written to msprt_reference.json beside this script.

Run once with `python3 msprt_reference.py` (needs only mpmath, which ships
with most Python installs; no numpy/scipy). The Go tests compare against
the JSON; they never run Python.

What is computed, independently of the Go code (different formulas where
possible, 50-digit arithmetic):

* "sequences": looks of a release (cumulative counts per window, with or
  without a control), the always-valid p-value after each look:
    - "p_grid": the discrete half-normal mixture of the same 96-point grid as
      msprt.go (midpoints of (0, 5 tau], weights normalised) — what the Go
      code must reproduce to ~1e-9;
    - "p_cont": the continuous half-normal mixture, integrated by mpmath.quad
      over (0, inf) — what the grid approximates (within ~1 %).
* "normal_limit": one look with many errors (the first four at a fixed
  +67 %, the last four at a fixed z = 3 standard errors, where the limit
  holds): the continuous mixture of the
  exact conditional-binomial likelihood against the one-sided normal mSPRT
  closed form (Johari et al.), with d the log rate ratio over the tolerated
  one and v = 1/x1 + 1/x0 its variance; their ratio tends to 1 as counts
  grow.
* "sample_size": the closed-form two-proportion sample size with unequal
  groups (z from mpmath's erfinv), and the smallest detectable rise for a
  given n (solved by mpmath.findroot).
* "upper_bound": the Clopper-Pearson one-sided upper bound, as the p at
  which the binomial CDF, summed term by term, is a.
"""
import json
import os

import mpmath as mp

mp.mp.dps = 50
GRID, SPAN = 96, 5


def tau_for(catch, tol):
    return mp.log(1 + mp.mpf(catch)) - mp.log(1 + mp.mpf(tol))


def grid(tau):
    h = SPAN * tau / GRID
    us = [(k + mp.mpf("0.5")) * h for k in range(GRID)]
    ws = [mp.e ** (-(u / tau) ** 2 / 2) for u in us]
    s = mp.fsum(ws)
    return us, [w / s for w in ws]


def ll_control(u, a1, m1, a0, m0, c):
    """log LR of rise e^u against 1 for one increment, with a control."""
    if m1 <= 0 or m0 <= 0 or a1 + a0 <= 0:
        return mp.mpf(0)
    x = c * m1
    xr = x * mp.e ** u
    pi0, pir = x / (x + m0), xr / (xr + m0)
    s = mp.mpf(0)
    if a1:
        s += a1 * mp.log(pir / pi0)
    if a0:
        s += a0 * mp.log((1 - pir) / (1 - pi0))
    return s


def ll_baseline(u, a1, m1, p):
    if m1 <= 0 or p <= 0 or p >= 1:
        return mp.mpf(0)
    rp = p * mp.e ** u
    if rp >= 1:
        return mp.ninf if m1 - a1 > 0 else a1 * u
    return a1 * u + (m1 - a1) * mp.log((1 - rp) / (1 - p))


def upper_bound(x, n, a):
    if n <= 0 or x >= n:
        return mp.mpf(1)
    # P(Bin(n, p) <= x) = 1 - I_p(x+1, n-x) = a  <=>  I_p(x+1, n-x) = 1 - a
    # P(Bin(n, p) <= x), summed term by term, falls as p grows.
    cdf = lambda p: mp.fsum(mp.binomial(n, i) * p ** i * (1 - p) ** (n - i) for i in range(x + 1))
    lo, hi = mp.mpf(x) / n, mp.mpf(1)
    for _ in range(120):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) > a else (lo, mid)
    return (lo + hi) / 2


def increments(looks, c, alpha, baseline):
    """Yields, per look, a function u -> log LR of that look's increment,
    following sequential.go's bookkeeping of windows and controls."""
    st = dict(w=None, n1=0, x1=0, n0=0, x0=0, ctl=True)
    for lk in looks:
        n1, x1 = mp.mpf(lk["n1"]), mp.mpf(lk["x1"])
        if lk["window"] != st["w"]:
            st.update(w=lk["window"], n1=0, x1=0, n0=0, x0=0, ctl=True)
        d1n, d1x = max(n1 - st["n1"], 0), max(x1 - st["x1"], 0)
        st["n1"], st["x1"] = max(st["n1"], n1), max(st["x1"], x1)
        if lk.get("n0"):
            n0, x0 = mp.mpf(lk["n0"]), mp.mpf(lk["x0"])
            f = None
            if st["ctl"]:
                d0n, d0x = max(n0 - st["n0"], 0), max(x0 - st["x0"], 0)
                f = (lambda d1x, d1n, d0x, d0n: lambda u: ll_control(u, d1x, d1n, d0x, d0n, c))(d1x, d1n, d0x, d0n)
            st["n0"], st["x0"], st["ctl"] = max(st["n0"], n0), max(st["x0"], x0), True
            yield f or (lambda u: mp.mpf(0)), d1n, d1x
        else:
            b = upper_bound(baseline["x"], baseline["n"], mp.mpf(alpha) / 5)
            p = min(b * c, 1)
            yield (lambda d1x, d1n, p: lambda u: ll_baseline(u, d1x, d1n, p))(d1x, d1n, p), d1n, d1x
            st["ctl"] = False


def sequence(case):
    c = 1 + mp.mpf(case["tolerate"])
    tau = tau_for(case["catch"], case["tolerate"])
    us, ws = grid(tau)
    fs = []
    p_grid, p_cont = [], []
    pg, pc = mp.mpf(1), mp.mpf(1)
    for f, _, _ in increments(case["looks"], c, case["alpha"], case.get("baseline")):
        fs.append(f)

        def total(u, fs=list(fs)):
            return mp.fsum(g(u) for g in fs)

        lam_g = mp.fsum(w * mp.e ** total(u) for u, w in zip(us, ws))
        dens = lambda u: 2 / (tau * mp.sqrt(2 * mp.pi)) * mp.e ** (-(u / tau) ** 2 / 2)
        lam_c = mp.quad(lambda u: dens(u) * mp.e ** total(u), [0, tau, 2 * tau, 3 * tau, 5 * tau, 10 * tau, mp.inf])
        pg, pc = min(pg, 1 / lam_g, 1), min(pc, 1 / lam_c, 1)
        p_grid.append(float(pg))
        p_cont.append(float(pc))
    return dict(case, p_grid=p_grid, p_cont=p_cont)


def normal_limit(x1, m1, x0, m0, catch, tol):
    c = 1 + mp.mpf(tol)
    tau = tau_for(catch, tol)
    dens = lambda u: 2 / (tau * mp.sqrt(2 * mp.pi)) * mp.e ** (-(u / tau) ** 2 / 2)
    f = lambda u: ll_control(u, x1, m1, x0, m0, c)
    d = mp.log((mp.mpf(x1) / m1) / (c * mp.mpf(x0) / m0))
    v = 1 / mp.mpf(x1) + 1 / mp.mpf(x0)
    sd = mp.sqrt(v)
    pts = sorted({mp.mpf(0), max(d - 8 * sd, 0), max(d, 0), d + 8 * sd, 10 * tau + d + 8 * sd})
    exact = mp.quad(lambda u: dens(u) * mp.e ** f(u), pts + [mp.inf])
    t2 = tau ** 2
    closed = 2 * mp.sqrt(v / (v + t2)) * mp.e ** (t2 * d * d / (2 * v * (v + t2))) * mp.ncdf(d * tau / mp.sqrt(v * (v + t2)))
    return dict(x1=x1, m1=m1, x0=x0, m0=m0, catch=catch, tolerate=tol, d=float(d), v=float(v),
                log_lambda_exact=float(mp.log(exact)), log_lambda_normal=float(mp.log(closed)))


def at_z(zv, x0):
    """Counts at which the log rate ratio is zv standard errors: x0 control
    errors at 0.3 % of m0 requests, a canary a third the control's size."""
    m0 = mp.mpf(x0) / mp.mpf("0.003")
    m1 = m0 / 3
    x1 = mp.findroot(lambda x1: mp.log((x1 / m1) / (x0 / m0)) - zv * mp.sqrt(1 / x1 + 1 / mp.mpf(x0)), x0 / 3 * 1.2)
    return float(x1), float(m1), x0, float(m0)


def z(p):
    return mp.sqrt(2) * mp.erfinv(2 * mp.mpf(p) - 1)


def sample_size(base, rise, alpha, power, ratio):
    p0, p1 = mp.mpf(base), mp.mpf(base) * (1 + mp.mpf(rise))
    q0, q1 = 1 - p0, 1 - p1
    inv = 0 if ratio == "inf" else 1 / mp.mpf(ratio)
    s = z(1 - mp.mpf(alpha)) * mp.sqrt(p0 * q0 * (1 + inv)) + z(power) * mp.sqrt(p1 * q1 + p0 * q0 * inv)
    return s * s / (p1 - p0) ** 2


def detectable(n, base, alpha, power, ratio):
    lo, hi = mp.mpf(0), 1 / mp.mpf(base) - 1 - mp.mpf("1e-9")
    for _ in range(200):  # bisection: the sample size falls as the rise grows
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if sample_size(base, mid, alpha, power, ratio) > n else (lo, mid)
    return hi


def main():
    seqs = [
        # 1 % then 5 % of 200 req/s, a healthy canary against the control.
        dict(name="healthy, control", catch=0.5, tolerate=0, alpha=0.05, looks=[
            dict(window=1, n1=120, x1=0, n0=11880, x0=36),
            dict(window=1, n1=240, x1=1, n0=23760, x0=70),
            dict(window=1, n1=1200, x1=4, n0=118800, x0=357),
            dict(window=2, n1=600, x1=2, n0=11400, x0=33),
            dict(window=2, n1=6000, x1=17, n0=114000, x0=345)]),
        # +200 %: the canary's errors pile up.
        dict(name="+200 %, control", catch=0.5, tolerate=0, alpha=0.05, looks=[
            dict(window=1, n1=120, x1=1, n0=11880, x0=35),
            dict(window=1, n1=600, x1=6, n0=59400, x0=178),
            dict(window=1, n1=1200, x1=11, n0=118800, x0=356),
            dict(window=2, n1=600, x1=6, n0=11400, x0=34),
            dict(window=2, n1=3000, x1=27, n0=57000, x0=171)]),
        # A control with no errors at all, a canary with one, at 5 req/s.
        dict(name="zero-error control, 5 req/s", catch=0.5, tolerate=0, alpha=0.05, looks=[
            dict(window=1, n1=3, x1=1, n0=297, x0=0),
            dict(window=1, n1=30, x1=1, n0=2970, x0=9)]),
        # Tolerate 10 %, catch 50 %, a canary at +30 %.
        dict(name="tolerate 10 %, +30 %", catch=0.5, tolerate=0.1, alpha=0.05, looks=[
            dict(window=1, n1=30000, x1=117, n0=90000, x0=270),
            dict(window=2, n1=60000, x1=234, n0=60000, x0=180)]),
        # The watch: no control, against the baseline (3,000 requests, 9 errors).
        dict(name="watch against the baseline", catch=0.5, tolerate=0, alpha=0.05, baseline=dict(n=3000, x=9), looks=[
            dict(window=1, n1=150, x1=1),
            dict(window=1, n1=3000, x1=14),
            dict(window=2, n1=1500, x1=9),
            dict(window=2, n1=18000, x1=80)]),
        # A regression in the watch, against a large baseline.
        dict(name="watch regression", catch=0.5, tolerate=0, alpha=0.05, baseline=dict(n=120000, x=360), looks=[
            dict(window=1, n1=6000, x1=30),
            dict(window=1, n1=12000, x1=66),
            dict(window=2, n1=60000, x1=330)]),
        # Non-integer errors (Prometheus' increase() extrapolates) and a
        # count that goes down within a window.
        dict(name="extrapolated counts", catch=1.0, tolerate=0, alpha=0.01, looks=[
            dict(window=1, n1=130, x1=2.2, n0=1200, x0=3.1),
            dict(window=1, n1=129, x1=2.1, n0=1300, x0=3.3),
            dict(window=1, n1=400, x1=6.6, n0=4001, x0=9.9)]),
    ]
    out = dict(
        grid=GRID, span=SPAN,
        sequences=[sequence(s) for s in seqs],
        normal_limit=[normal_limit(x1, m1, x0, m0, 0.5, 0) for x1, m1, x0, m0 in [
            (30, 6000, 90, 30000), (300, 60000, 900, 300000), (3000, 600000, 9000, 3000000),
            (30000, 6000000, 90000, 30000000)]] +
        [normal_limit(*at_z(3, k), 0.5, 0) for k in (100, 1000, 10000, 100000)],
        sample_size=[dict(base=b, rise=r, alpha=a, power=pw, ratio=k, n=float(sample_size(b, r, a, pw, k)))
                     for b, r, a, pw, k in [(0.003, 0.5, 0.05, 0.8, 99), (0.003, 0.5, 0.05, 0.8, "inf"), (0.003, 2, 0.05, 0.8, 99),
                                            (0.003, 0.5, 0.05, 0.8, 19), (0.01, 0.2, 0.01, 0.9, 3), (0.003, 3, 0.05, 0.8, 99)]],
        detectable=[dict(n=n, base=b, alpha=a, power=pw, ratio=k, rise=float(detectable(n, b, a, pw, k)))
                    for n, b, a, pw, k in [(1200, 0.003, 0.05, 0.8, 99), (7200, 0.003, 0.05, 0.8, 19), (37200, 0.003, 0.05, 0.8, 3),
                                           (9596, 0.003, 0.05, 0.8, 99)]],
        upper_bound=[dict(x=x, n=n, a=a, p=float(upper_bound(x, n, mp.mpf(a)))) for x, n, a in [(9, 3000, 0.01), (0, 3000, 0.01), (360, 120000, 0.01), (1, 3, 0.05)]],
    )
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "msprt_reference.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
