#!/usr/bin/env python3
"""Writes lifetimes_reference.csv: per-customer predictions of lifetimes 0.11.3 for fixed parameters.

The Rust models are checked against this table (an independent implementation of the same
formulas, using scipy's hyp2f1). Run from this folder with the benchmark's venv:
    bash ../../../bench/setup.sh   # prints the venv's python
    <venv python> lifetimes_reference.py > lifetimes_reference.csv
Parameters are the published CDNOW estimates; customers are a grid of histories.
"""
import itertools

from lifetimes import BetaGeoFitter, ParetoNBDFitter
import pandas as pd

bg = BetaGeoFitter()
bg.params_ = pd.Series({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
pnbd = ParetoNBDFitter()
pnbd.params_ = pd.Series({"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669})

print("model,t,frequency,recency,age,p_alive,expected")
for x, frac, T, t in itertools.product([0, 1, 2, 5, 12, 40], [0.1, 0.5, 0.9, 1.0], [2.0, 13.0, 38.86, 78.0], [4.0, 52.0]):
    t_x = 0.0 if x == 0 else frac * T
    if x == 0 and frac != 0.1:
        continue
    p_bg = float(bg.conditional_probability_alive(x, t_x, T))
    e_bg = float(bg.conditional_expected_number_of_purchases_up_to_time(t, x, t_x, T))
    print(f"bgnbd,{t!r},{x},{t_x!r},{T!r},{p_bg!r},{e_bg!r}")
    p_p = float(pnbd.conditional_probability_alive(x, t_x, T))
    e_p = float(pnbd.conditional_expected_number_of_purchases_up_to_time(t, x, t_x, T))
    print(f"pareto_nbd,{t!r},{x},{t_x!r},{T!r},{p_p!r},{e_p!r}")
for t in [1.0, 13.0, 39.0, 78.0, 520.0]:
    print(f"bgnbd_unconditional,{t!r},0,0.0,0.0,nan,{float(bg.expected_number_of_purchases_up_to_time(t))!r}")
