"""numpy's GEMM (its bundled OpenBLAS) at given shapes, in the JSON-lines format of
benches/gemm.rs: one {"name", "m", "k", "n", "gflops"} object per shape, the best of several
repetitions. scripts/compare_pytorch.sh passes the shapes benches/gemm.rs timed.

    OPENBLAS_NUM_THREADS=2 python benches/peers/gemm.py MxKxN [MxKxN ...]

Prints the BLAS kernel in use (threadpoolctl) on standard error.
"""

import json
import sys
import time

import numpy as np

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
    shapes = [tuple(int(d) for d in arg.split("x")) for arg in sys.argv[1:]]
    for m, k, n in shapes:
        a = rng.random((m, k), dtype=np.float32)
        b = rng.random((k, n), dtype=np.float32)
        c = np.empty((m, n), dtype=np.float32)
        seconds = best_time(lambda: np.matmul(a, b, out=c))
        print(json.dumps({"name": "numpy", "m": m, "k": k, "n": n, "gflops": round(2 * m * k * n / seconds / 1e9, 1)}))


if __name__ == "__main__":
    main()
