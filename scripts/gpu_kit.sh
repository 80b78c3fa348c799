#!/usr/bin/env bash
# Builds what scripts/gpu_check.sh runs on a GPU machine that may have no Rust toolchain: the
# release `graphc`, the `peer_step` benchmark and the `cuda_device` GPU tests, with the `cuda`
# feature, into gpu-kit/bin (git-ignored; carry it to the GPU machine with the checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p gpu-kit/bin
cargo build --release --features cuda --bin graphc
cp target/release/graphc gpu-kit/bin/
executable() { # the test or bench executable cargo reports for "$@"
    cargo "$@" --no-run --message-format=json 2>/dev/null |
        python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["executable"])' | tail -1
}
cp "$(executable test --release --features cuda --test cuda_device)" gpu-kit/bin/cuda_device
cp "$(executable bench --features cuda --bench peer_step)" gpu-kit/bin/peer_step
ls -la gpu-kit/bin
