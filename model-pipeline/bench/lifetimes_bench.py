#!/usr/bin/env python3
"""Times lifetimes 0.11.3 on a customer-summary CSV (frequency,recency,T,monetary_value).

Called by the Rust benchmark (model-pipeline/benches/models.rs) with the venv from setup.sh:
    python lifetimes_bench.py <csv> <horizon weeks> <repeats>
Prints one JSON object: median seconds of each step over the repeats and the fitted parameters.
Reading the CSV is not timed, as on the Rust side.
"""
import json
import statistics
import sys
import time
import warnings

import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter

warnings.simplefilter("ignore")

path, horizon, repeats = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
data = pd.read_csv(path, float_precision="round_trip")
f, r, T = data["frequency"], data["recency"], data["T"]
repeat = data[data["frequency"] > 0]

fit_s, score_s, gg_s = [], [], []
for _ in range(repeats):
    start = time.perf_counter()
    bg = BetaGeoFitter(penalizer_coef=0.0)
    bg.fit(f, r, T)
    fitted = time.perf_counter()
    expected = bg.conditional_expected_number_of_purchases_up_to_time(horizon, f, r, T)
    alive = bg.conditional_probability_alive(f, r, T)
    scored = time.perf_counter()
    gg = GammaGammaFitter(penalizer_coef=0.0)
    gg.fit(repeat["frequency"], repeat["monetary_value"])
    done = time.perf_counter()
    fit_s.append(fitted - start)
    score_s.append(scored - fitted)
    gg_s.append(done - scored)

print(json.dumps({
    "bgnbd_fit_s": statistics.median(fit_s),
    "bgnbd_score_s": statistics.median(score_s),
    "gamma_gamma_fit_s": statistics.median(gg_s),
    "bgnbd": {k: float(bg.params_[k]) for k in ["r", "alpha", "a", "b"]},
    "gamma_gamma": {k: float(gg.params_[k]) for k in ["p", "q", "v"]},
    "mean_expected": float(expected.mean()),
    "mean_p_alive": float(alive.mean()),
}))
