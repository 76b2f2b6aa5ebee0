#!/usr/bin/env python3
"""Writes hyp2f1_mpmath.csv: reference values of 2F1(a, b; c; z) computed with mpmath at 50 digits.

The Rust implementation in ../hyp2f1.rs is checked against this table. Run from this folder with
`python3 -m pip install mpmath==1.3.0 && python3 hyp2f1_mpmath.py > hyp2f1_mpmath.csv`.
The cases are drawn with a fixed seed and cover the arguments the customer-value models produce:
BG/NBD expectations 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t)), Pareto/NBD likelihood terms
2F1(r+s+x, s+1; r+s+x+1; (alpha-beta)/(alpha+t)), plus generic arguments including negative z.
"""
import random

import mpmath

mpmath.mp.dps = 50
rng = random.Random(20240611)
rows = []


def add(a, b, c, z):
    value = mpmath.hyp2f1(a, b, c, z)
    if value.imag != 0 or not (1e-250 < abs(value) < 1e250):
        return
    rows.append((a, b, c, z, value.real))


# BG/NBD conditional expectation arguments.
for _ in range(80):
    r, alpha, a, b = rng.uniform(0.05, 3), rng.uniform(0.5, 40), rng.uniform(0.2, 5), rng.uniform(0.2, 8)
    x = rng.choice([0, 1, 2, 3, 5, 8, 13, 30, 80, 200])
    T = rng.uniform(1, 100)
    t = rng.choice([1, 4, 13, 26, 52, 104, 520])
    add(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
# BG/NBD unconditional expectation 2F1(r, b; a+b-1; t/(alpha+t)).
for _ in range(40):
    r, alpha, a, b = rng.uniform(0.05, 3), rng.uniform(0.5, 40), rng.uniform(0.2, 5), rng.uniform(0.2, 8)
    t = rng.choice([1, 4, 13, 26, 52, 104, 520])
    c = a + b - 1
    if abs(c) < 1e-3 or (c < 0 and abs(c - round(c)) < 1e-3):
        continue
    add(r, b, c, t / (alpha + t))
# Pareto/NBD likelihood arguments, both branches.
for _ in range(80):
    r, s = rng.uniform(0.05, 3), rng.uniform(0.05, 3)
    alpha, beta = rng.uniform(0.5, 40), rng.uniform(0.5, 40)
    x = rng.choice([0, 1, 2, 5, 13, 40])
    t = rng.uniform(0, 100)
    if alpha >= beta:
        add(r + s + x, s + 1, r + s + x + 1, (alpha - beta) / (alpha + t))
    else:
        add(r + s + x, r + x, r + s + x + 1, (beta - alpha) / (beta + t))
# Generic arguments, including negative z and negative non-integer parameters.
for _ in range(80):
    a, b = rng.uniform(-4.5, 12), rng.uniform(-4.5, 12)
    c = rng.uniform(0.1, 15)
    z = rng.choice([rng.uniform(-20, -1), rng.uniform(-1, 0), rng.uniform(0, 0.9), rng.uniform(0.9, 0.995)])
    add(a, b, c, z)

print("a,b,c,z,value")
for a, b, c, z, value in rows:
    print(f"{a!r},{b!r},{c!r},{z!r},{mpmath.nstr(value, 17, strip_zeros=False)}")
