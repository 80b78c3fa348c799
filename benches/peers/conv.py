"""PyTorch's convolutions on the passes benches/conv.rs timed: reads that bench's `--json` lines
(a file, or standard input) and prints one {"layer", "pass", "ms"} object per line, the best of
the repetitions that fit in about 0.7 s, on `THREADS` intra-op threads.
scripts/compare_pytorch.sh puts the two side by side.

    python benches/peers/conv.py THREADS graphc-conv.jsonl

A layer's passes are those a training step runs: a convolution's forward pass (with its bias),
its input gradient (backward-data) and its weight gradient (backward-filter); for a transposed
convolution (`"transposed": true`, given by the convolution it transposes), the same three passes
of the transposed one. PyTorch runs each through aten's convolution and convolution_backward, as
autograd does (oneDNN on x86).
"""

import json
import sys
import time

import torch


def best_ms(f, budget=0.7, most=200):
    """Milliseconds of the fastest of the repetitions that fit in `budget` seconds (at least 3)."""
    f()
    start, best, runs = time.perf_counter(), float("inf"), 0
    while runs < 3 or (time.perf_counter() - start < budget and runs < most):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
        runs += 1
    return best * 1e3


def passes(spec):
    """The three passes of one layer as functions of nothing, keyed by the bench's pass names."""
    n, c, h, w = spec["input"]
    o, k, s, p, transposed = spec["outputs"], spec["kernel"], spec["stride"], spec["pad"], spec["transposed"]
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    image, output = torch.randn(n, c, h, w), torch.randn(n, o, ho, wo)
    # The convolution's weight (O×C×k×k) is also the transposed convolution's (in O, out C).
    weight = torch.randn(o, c, k, k)
    x, grad = (output, image) if transposed else (image, output)
    bias = torch.randn(c if transposed else o)
    args = ([s, s], [p, p], [1, 1], transposed, [0, 0], 1)

    def backward(mask):
        return lambda: torch.ops.aten.convolution_backward(grad, x, weight, None, *args, mask)

    return {
        "forward": lambda: torch.ops.aten.convolution(x, weight, bias, *args),
        "backward-data": backward([True, False, False]),
        "backward-filter": backward([False, True, False]),
    }


def main():
    torch.set_num_threads(int(sys.argv[1]))
    source = open(sys.argv[2]) if len(sys.argv) > 2 else sys.stdin
    layers = {}
    for line in source:
        spec = json.loads(line)
        layers.setdefault(spec["layer"], spec)
    with torch.no_grad():
        for name, spec in layers.items():
            for pass_name, run in passes(spec).items():
                print(json.dumps({"layer": name, "pass": pass_name, "ms": round(best_ms(run), 3)}), flush=True)


if __name__ == "__main__":
    main()
