"""numpy's GEMM (its bundled OpenBLAS) at the shapes benches/gemm.rs times, in the same JSON-lines
format: one {"name", "m", "k", "n", "gflops"} object per shape, the best of several repetitions.

    OPENBLAS_NUM_THREADS=2 python benches/peers/gemm.py

Prints the BLAS kernel in use (threadpoolctl) on standard error.
"""

import json
import sys
import time

import numpy as np

# (m, k, n), as benches/gemm.rs's SHAPES.
SHAPES = [
    (100, 784, 1000),
    (100, 1000, 500),
    (128, 74, 1024),
    (128, 6272, 1024),
    (1024, 1024, 1024),
    (128, 784, 1024),
    (64, 4 * 4, 128 * 14 * 14),
    (128, 64 * 4 * 4, 128 * 7 * 7),
    (64, 128 * 25, 14 * 14),
    (128, 64 * 25, 10 * 10),
]


def best_time(f):
    """Seconds of the fastest of the repetitions that fit in about half a second (at least 3)."""
    f()
    start, best, runs = time.perf_counter(), float("inf"), 0
    while runs < 3 or (time.perf_counter() - start < 0.5 and runs < 1000):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
        runs += 1
    return best


def main():
    try:
        from threadpoolctl import threadpool_info

        for pool in threadpool_info():
            print(f"numpy BLAS: {pool.get('internal_api')} {pool.get('version')} "
                  f"{pool.get('architecture')} threads={pool.get('num_threads')}", file=sys.stderr)
    except ImportError:
        pass
    rng = np.random.default_rng(0)
    for m, k, n in SHAPES:
        a = rng.random((m, k), dtype=np.float32)
        b = rng.random((k, n), dtype=np.float32)
        c = np.empty((m, n), dtype=np.float32)
        seconds = best_time(lambda: np.matmul(a, b, out=c))
        print(json.dumps({"name": "numpy", "m": m, "k": k, "n": n, "gflops": round(2 * m * k * n / seconds / 1e9, 1)}))


if __name__ == "__main__":
    main()
