#!/usr/bin/python3
"""The statistics of examples/fashion_mnist/report.py: Student's t tail
probability against closed forms (df 1 and 2) and against a numerical
integral of the density (any df, non-integer too), and Welch's t and
degrees of freedom on a worked example. Tolerance 1e-6 on p."""
import math
import os
import sys

from tap import done, ok  # tests/tap.py, beside this script

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "examples", "fashion_mnist"))
import report  # noqa: E402


def p_by_integral(t, df, n=20000):
    """2 * integral of Student's density from |t| to infinity, by Simpson's
    rule after x = |t| + u / (1 - u), u in [0, 1)."""
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)

    def f(u):
        if u >= 1.0:
            return 0.0
        x = abs(t) + u / (1 - u)
        return c * (1 + x * x / df) ** (-(df + 1) / 2) / (1 - u) ** 2
    h = 1.0 / n
    s = f(0) + f(1)
    for i in range(1, n):
        s += (4 if i % 2 else 2) * f(i * h)
    return 2 * s * h / 3


def close(a, b, tol=1e-6):
    return abs(a - b) <= tol


for t in (0.0, 0.3, 1.0, 3.0, 12.0):
    want = 1 - 2 / math.pi * math.atan(t)
    got = report.t_two_sided_p(t, 1)
    ok(close(got, want), "df 1 (Cauchy), t %g: p %.6f" % (t, got), "want %.8f" % want)
for t in (0.5, 2.0, -4.0):
    want = 1 - abs(t) / math.sqrt(2 + t * t)
    got = report.t_two_sided_p(t, 2)
    ok(close(got, want), "df 2, t %g: p %.6f" % (t, got), "want %.8f" % want)
for t, df in ((2.0, 10), (2.228, 10), (1.5, 3.7), (0.8, 5.88), (5.0, 4.2), (2.5, 30)):
    want = p_by_integral(t, df)
    got = report.t_two_sided_p(t, df)
    ok(close(got, want), "df %g, t %g: p %.6f (numerical integral %.6f)" % (df, t, got, want))
got = report.t_two_sided_p(1.959964, 1e7)
ok(close(got, 0.05, 1e-5), "a huge df is the normal: t 1.96 gives p %.6f" % got)

# Welch: xs mean 3, var 2.5, n 5; ys mean 6, var 10, n 5
# t = -3 / sqrt(0.5 + 2) and df = 2.5^2 / (0.5^2 / 4 + 2^2 / 4) = 6.25 / 1.0625
t, df, p = report.welch([1, 2, 3, 4, 5], [2, 4, 6, 8, 10])
ok(close(t, -3 / math.sqrt(2.5)), "Welch t %.6f" % t)
ok(close(df, 6.25 / 1.0625), "Welch-Satterthwaite df %.6f" % df)
ok(close(p, p_by_integral(t, df)), "Welch p %.6f" % p)
ok(report.welch([0.9, 0.9], [0.8, 0.8]) is None, "no spread in either sample: no test")
m, s = report.mean_std([0.88, 0.9, 0.92])
ok(close(m, 0.9) and close(s, 0.02), "mean %.4f and sample std %.4f (n - 1)" % (m, s))

sys.exit(done())
