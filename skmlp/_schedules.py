"""Schedules: multipliers as small pure functions of t, the fraction of
training done (0 at the first step, approaching 1 at the last).

The tabular recipe (RealMLP-TD's published defaults) multiplies the learning
rate by :func:`coslog4` and the dropout rate and the weight decay by
:func:`flat_cos`.
"""

import math


def coslog4(t):
    """½ (1 - cos(2π log2(1 + 15 t))): four cosine cycles on a log time
    axis, each ending at 0 (t = 1/15, 3/15, 7/15, 1), the later ones longer."""
    return 0.5 * (1.0 - math.cos(2 * math.pi * math.log2(1.0 + 15.0 * t)))


def flat_cos(t):
    """1 for the first half of training, then a half cosine down to 0:
    ½ (1 + cos(π (2t - 1))) for t >= ½."""
    if t < 0.5:
        return 1.0
    return 0.5 * (1.0 + math.cos(math.pi * (2.0 * t - 1.0)))


def constant(t):
    """1 throughout."""
    return 1.0


SCHEDULES = {"coslog4": coslog4, "flat_cos": flat_cos, "constant": constant}
