#!/usr/bin/python3
"""Builds the wine drift fixtures of the modeldatastats tests and their reference figures.

Data: the UCI wine data set as Debian's python3-sklearn ships it (sklearn.datasets.load_wine, 178 rows,
13 numeric features and a 3-class target). Even rows are the baseline, odd rows the current window; a
"shifted" current window adds 1.0 to alcohol. The current windows carry a few dirty cells (empty magnesium
cells, one "n/a" ash cell) so null and type-error counts are tested too.

Reference figures are computed here independently of the Go code: counts and order statistics with
numpy, the Jensen-Shannon distance with scipy.spatial.distance.jensenshannon(base=2), the Wasserstein
distance with scipy.stats.wasserstein_distance, and PSI with Azure ML model monitoring's formula.

Re-run with `make stats-reference` (Debian: apt-get install python3-scipy python3-sklearn); the output
is deterministic and checked in, so the Go tests need neither package.
"""
import csv
import json
import math
import os

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance
from sklearn.datasets import load_wine

HERE = os.path.dirname(os.path.abspath(__file__))
AML = ["$aml_dc_correlation_id", "$aml_dc_scoring_timestamp", "$aml_dc_boundary", "$aml_workspace",
       "$aml_service_name", "$aml_model_name", "$aml_model_version", "$aml_request_id"]
QUANTILES = [0.1, 0.5, 0.9, 0.99]
TOP_K = 2


def fmt(x):
    return repr(float(x)) if not float(x).is_integer() else str(int(x)) if abs(x) < 1e15 else repr(float(x))


def load():
    wine = load_wine()
    names = list(wine.feature_names)
    rows = []
    for x, y in zip(wine.data, wine.target):
        rows.append([fmt(v) for v in x] + ["class_%d" % y])
    return names + ["class"], rows


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow(header + AML)
        for i, r in enumerate(rows):
            w.writerow(r + ["c%d" % i, "2026-11-20T10:00:00.000000", "1440", "sub/rg/ws", "svc", "wine", "1", "r%d" % i])


def parse(cell):
    try:
        return float(cell)
    except ValueError:
        return None


def sturges_bins(base):
    n = len(base)
    bins = math.ceil(math.log2(n) + 1)
    lo, hi = min(base), max(base)
    width = (hi - lo) / bins

    def index(v):
        if v < lo:
            return 0
        if v > hi:
            return bins + 1
        if width == 0:
            return 1
        return 1 + min(int(math.floor((v - lo) / width)), bins - 1)

    return bins, index


def psi(base_counts, cur_counts, n_base, n_cur):
    total = 0.0
    for b, c in zip(base_counts, cur_counts):
        p, q = (b + 1) / n_base, (c + 1) / n_cur
        total += (q - p) * math.log(q / p)
    return total


def numeric_reference(base_cells, cur_cells):
    base = [float(c) for c in base_cells if c != ""]
    cur_all = [c for c in cur_cells if c != ""]
    cur = [parse(c) for c in cur_all if parse(c) is not None]
    type_errors = len(cur_all) - len(cur)
    bins, index = sturges_bins(base)
    bc, cc = [0] * (bins + 2), [0] * (bins + 2)
    for v in base:
        bc[index(v)] += 1
    for v in cur:
        cc[index(v)] += 1
    lo, hi = min(base), max(base)
    std = float(np.std(np.array(base), ddof=1))
    s = sorted(cur)
    n = len(s)
    return {
        "type": "numeric",
        "rows": len(cur_cells),
        "nulls": len(cur_cells) - len(cur_all),
        "numeric_values": n,
        "string_values": type_errors,
        "sum": float(math.fsum(s)),
        "min": s[0],
        "max": s[-1],
        "quantiles": {str(q): s[max(math.ceil(q * n), 1) - 1] for q in QUANTILES},
        "psi": psi(bc, cc, len(base), n),
        "jensen_shannon": float(jensenshannon(bc, cc, base=2)),
        "wasserstein": float(wasserstein_distance(base, cur)) / max(std, 0.001),
        "out_of_bounds_rate": sum(1 for v in cur if v < lo or v > hi) / len(cur_all),
        "type_error_rate": type_errors / len(cur_all),
    }


def categorical_reference(base_cells, cur_cells):
    base = [c for c in base_cells if c != ""]
    cur = [c for c in cur_cells if c != ""]
    bcount, ccount = {}, {}
    for v in base:
        bcount[v] = bcount.get(v, 0) + 1
    for v in cur:
        ccount[v] = ccount.get(v, 0) + 1
    keys = sorted(set(bcount) | set(ccount))
    bc, cc = [bcount.get(k, 0) for k in keys], [ccount.get(k, 0) for k in keys]
    ranked = sorted(ccount.items(), key=lambda kv: (-kv[1], kv[0]))
    top = dict(ranked[:TOP_K])
    other = sum(c for _, c in ranked[TOP_K:])
    if other:
        top["__other__"] = other
    return {
        "type": "string",
        "rows": len(cur_cells),
        "nulls": len(cur_cells) - len(cur),
        "string_values": len(cur),
        "distinct": len(ccount),
        "top_values": top,
        "psi": psi(bc, cc, len(base), len(cur)),
        "jensen_shannon": float(jensenshannon(bc, cc, base=2)),
        "out_of_bounds_rate": sum(1 for v in cur if v not in bcount) / len(cur),
        "type_error_rate": 0.0,
    }


def reference(header, base_rows, cur_rows):
    out = {}
    for j, name in enumerate(header):
        b, c = [r[j] for r in base_rows], [r[j] for r in cur_rows]
        out[name] = categorical_reference(b, c) if name == "class" else numeric_reference(b, c)
    return out


def main():
    header, rows = load()
    base, current = rows[0::2], [list(r) for r in rows[1::2]]
    mg, ash, alcohol = header.index("magnesium"), header.index("ash"), header.index("alcohol")
    for i in range(0, len(current), 10):
        current[i][mg] = ""
    current[3][ash] = "n/a"
    shifted = [list(r) for r in current]
    for r in shifted:
        r[alcohol] = fmt(float(r[alcohol]) + 1.0)
    write_csv(os.path.join(HERE, "baseline.csv"), header, base)
    write_csv(os.path.join(HERE, "current.csv"), header, current)
    write_csv(os.path.join(HERE, "shifted.csv"), header, shifted)
    ref = {"source": "sklearn.datasets.load_wine (Debian python3-sklearn), scipy " + __import__("scipy").__version__,
           "top_k": TOP_K, "quantiles": QUANTILES,
           "current": reference(header, base, current), "shifted": reference(header, base, shifted)}
    with open(os.path.join(HERE, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
