"""Turn a pytest-benchmark JSON file into the ratios the issues set as goals.

    OMP_WAIT_POLICY=PASSIVE pytest bench/ --benchmark-only --benchmark-json=bench.json
    python bench/report.py bench.json

Ratios use each benchmark's minimum time (the least disturbed round on a
shared machine); medians are printed beside them.
"""
import json
import sys

# (description, numerator test, denominator test, goal, "min" or "max"; goal None: context)
SK_EPOCH = "sklearn epoch (marginal)"  # derived below from the fits of 1 and 6 epochs
GOALS = [
    ("W1 b=1: sklearn SGDClassifier epoch / fastgd", SK_EPOCH, "test_w1_sgd_fastgd[{b}]", 5.0, "min"),
    ("W1 b=1: sklearn 1-epoch fit (set-up in) / fastgd", "test_w1_sgd_sklearn[1]", "test_w1_sgd_fastgd[{b}]", None, "min"),
    ("W1 b=1: 5-epoch fits, set-up in on both sides", "test_w1_sgd_fit5_sklearn", "test_w1_sgd_fit5_fastgd[{b}]", None, "min"),
    ("W1 b=32: PyTorch loop / fastgd", "test_w1_mbgd_torch_loop", "test_w1_mbgd_fastgd[{b}]", 50.0, "min"),
    ("W1 b=32: NumPy loop / fastgd", "test_w1_mbgd_numpy_loop", "test_w1_mbgd_fastgd[{b}]", 3.0, "min"),
    ("W1: fastgd b=32 epoch / fastgd BGD epoch", "test_w1_mbgd_fastgd[{b}]", "test_w1_bgd_fastgd[{b}]", 2.0, "max"),
    ("W1 BGD: fastgd / NumPy X.sum()", "test_w1_bgd_fastgd[{b}]", "test_w1_bgd_numpy_read_once", 1.2, "max"),
    ("W1 BGD: NumPy two-pass gradient / fastgd", "test_w1_bgd_numpy_two_pass", "test_w1_bgd_fastgd[{b}]", 3.0, "min"),
    ("W2 b=32: PyTorch / fastgd", "test_w2_torch_loop[32]", "test_w2_fastgd[{b}-32]", 3.0, "min"),
    ("W2 b=32: sklearn MLPClassifier / fastgd", "test_w2_sklearn_mlp", "test_w2_fastgd[{b}-32]", 3.0, "min"),
    ("W2 b=256: PyTorch / fastgd", "test_w2_torch_loop[256]", "test_w2_fastgd[{b}-256]", 1.2, "min"),
]


def main(path):
    with open(path) as fh:
        data = json.load(fh)
    stats = {b["name"]: b["stats"] for b in data["benchmarks"]}
    groups = {}
    for b in data["benchmarks"]:
        groups.setdefault(b["group"], []).append(b)
    machine = data.get("machine_info", {})
    print(f"machine: {machine.get('cpu', {}).get('brand_raw', '?')}, {machine.get('cpu', {}).get('count', '?')} cores")
    for group, items in sorted(groups.items()):
        print(f"\n[{group}]")
        for b in sorted(items, key=lambda b: b["stats"]["min"]):
            print(f"  {b['name']:<40} min {b['stats']['min'] * 1e3:10.2f} ms   median "
                  f"{b['stats']['median'] * 1e3:10.2f} ms")
    fits = sorted((b["extra_info"]["epochs"], b["stats"]) for b in data["benchmarks"]
                  if b["name"].startswith("test_w1_sgd_sklearn[") and "epochs" in b["extra_info"])
    if len(fits) == 2:
        # scikit-learn's epoch without its set-up (bench/test_bench_linear.py), from the
        # minima and from the medians of the same number of rounds
        (e1, one), (e2, more) = fits
        stats[SK_EPOCH] = {k: (more[k] - one[k]) / (e2 - e1) for k in ("min", "median")}
        print(f"\n{SK_EPOCH}: min {stats[SK_EPOCH]['min'] * 1e3:.2f} ms, median "
              f"{stats[SK_EPOCH]['median'] * 1e3:.2f} ms")
    elif "test_w1_sgd_sklearn" in stats:
        print("\nno scikit-learn marginal epoch in this file (a run from before the twenty-ninth "
              "session: its one-epoch fit, set-up included, is test_w1_sgd_sklearn)")
    print("\ngoals (ratio of minima; of medians in brackets, where the rounds differ a lot "
          "in number, a check on the minima's luck):")
    for text, num, den, goal, kind in GOALS:
        for backend in ("cython", "numba"):
            a, b = num.format(b=backend), den.format(b=backend)
            if a in stats and b in stats:
                ratio = stats[a]["min"] / stats[b]["min"]
                med = stats[a]["median"] / stats[b]["median"]
                if goal is None:
                    verdict = "(context, not a goal)"
                else:
                    ok = ratio >= goal if kind == "min" else ratio <= goal
                    sign = ">=" if kind == "min" else "<="
                    verdict = f"(goal {sign} {goal})  {'ok' if ok else 'SHORT'}"
                print(f"  {backend:<7}{text:<50} {ratio:8.2f} [{med:6.2f}]  {verdict}")
    for case in ("sgd", "mbgd", "bgd"):  # issue 4: the two within 1.5x of each other
        nb, cy = stats.get(f"test_w1_{case}_fastgd[numba]"), stats.get(f"test_w1_{case}_fastgd[cython]")
        if nb and cy:
            ratio, med = nb["min"] / cy["min"], nb["median"] / cy["median"]
            ok = max(ratio, 1 / ratio) <= 1.5
            print(f"  W1 {case}: numba / cython{'':<33} {ratio:8.2f} [{med:6.2f}]  "
                  f"(goal within 1.5x either way)  {'ok' if ok else 'SHORT'}")
    extra = {b["name"]: b.get("extra_info", {}) for b in data["benchmarks"]}
    floor = stats.get("test_w1_bgd_numpy_read_once", {}).get("min")
    print("\ncompiled epoch alone (the driver's shuffle excluded), min:")
    for backend in ("cython", "numba"):
        for case in ("sgd", "mbgd", "bgd"):
            k = extra.get(f"test_w1_{case}_fastgd[{backend}]", {}).get("kernel_min_s")
            if k is not None:
                ratio = f", {k / floor:.2f}x X.sum()" if floor and case == "bgd" else ""
                print(f"  {backend:<7}W1 {case:<5} {k * 1e3:8.2f} ms{ratio}")
    floor2 = stats.get("test_w1_shuffled_read_floor[2]", {}).get("min")
    if floor2 and floor:
        # context for the b = 32 goal: a floor for an epoch that fetches X's rows in a shuffled
        # order (docs/cython.md), against the sequential read the BGD epoch makes
        print(f"\nshuffled-read floor on two cores: {floor2 * 1e3:.2f} ms = {floor2 / floor:.2f}x X.sum()")
        for backend in ("cython", "numba"):
            b32 = stats.get(f"test_w1_mbgd_fastgd[{backend}]", {}).get("min")
            if b32:
                print(f"  {backend:<7}W1 b=32 epoch / that floor {b32 / floor2:.2f}")
    for name in ("test_import_and_first_fit",):
        if name in stats:
            print(f"  import fastgd + first small fit: {stats[name]['min'] * 1e3:.0f} ms (goal < 500 ms; "
                  f"bare python+numpy {stats.get('test_bare_interpreter_with_numpy', {}).get('min', float('nan')) * 1e3:.0f} ms)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench.json")
