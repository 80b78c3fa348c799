#!/usr/bin/env bash
# Regenerates the README's results section from real runs: trains each model file with its
# default settings into runs/<name> (skipped with --reuse when that run finished before), times
# it, scores it with `graphc eval`, copies the pictures the book's figures correspond to into
# docs/images/, and rewrites the README between its results markers (scripts/results_section.py).
#
#   scripts/results.sh [--reuse]
set -euo pipefail
cd "$(dirname "$0")/.."
reuse=false
[[ "${1:-}" == "--reuse" ]] && reuse=true

cargo build --release --quiet
bin=target/release/graphc
mkdir -p runs docs/images

# train NAME: trains graphs/NAME.g into runs/NAME, recording its wall time in seconds.
train() {
  local name=$1 dir=runs/$1
  if $reuse && [[ -f $dir/checkpoint.safetensors && -f $dir/wall_seconds ]]; then
    echo "reusing $dir"
    return
  fi
  rm -rf "$dir"
  local start end
  start=$(date +%s.%N)
  "$bin" run "graphs/$name.g" --out "$dir"
  end=$(date +%s.%N)
  python3 -c "print(round($end - $start, 1))" > "$dir/wall_seconds"
}

for name in vae vae_2d dcgan infogan; do
  train "$name"
done
[[ -f runs/LeNet/checkpoint.safetensors ]] || "$bin" run graphs/lenet.g --out runs/LeNet
for name in vae vae_2d dcgan infogan; do
  "$bin" eval "runs/$name" --classifier runs/LeNet --json > "runs/$name/eval.json"
done

# The pictures.
last() { ls "$1"/samples/step_*.png | sort | tail -1; }
cp "$(last runs/vae)" docs/images/vae_samples.png
cp runs/vae/loss.png docs/images/vae_loss.png
"$bin" sample runs/vae_2d --grid z_prior --n 400 --out docs/images/vae_2d_manifold.png > /dev/null
cp runs/dcgan/samples/step_000000.png docs/images/dcgan_samples_0.png
cp runs/dcgan/samples/step_000250.png docs/images/dcgan_samples_250.png
cp "$(last runs/dcgan)" docs/images/dcgan_samples_end.png
cp runs/dcgan/loss.png docs/images/dcgan_loss.png
cp runs/infogan/samples/step_000000.png docs/images/infogan_samples_0.png
# From the final checkpoint with the file as it is now (the grids written during training used the
# file as it was then).
"$bin" sample runs/infogan --n 128 --out docs/images/infogan_samples_end.png > /dev/null
cp runs/infogan/loss.png docs/images/infogan_loss.png
"$bin" sample runs/infogan --traverse disc_code > /dev/null
"$bin" sample runs/infogan --traverse cont_code > /dev/null
cp runs/infogan/traverse_disc_code.png docs/images/infogan_traverse_categorical.png
cp runs/infogan/traverse_cont_code_0.png docs/images/infogan_traverse_continuous_0.png
cp runs/infogan/traverse_cont_code_1.png docs/images/infogan_traverse_continuous_1.png

python3 scripts/results_section.py README.md
