"""Writes the README's results section from the runs scripts/results.sh made.

Reads runs/<name>/{wall_seconds, metrics.jsonl, eval.json} for each model file and replaces the
text between the README's `<!-- results:begin -->` and `<!-- results:end -->` markers.
Usage: python3 scripts/results_section.py README.md
"""

import json
import platform
import sys
from pathlib import Path

MODELS = [
    ("vae", "graphs/vae.g", "VAE, 30-D latent"),
    ("vae_2d", "graphs/vae_2d.g", "VAE, 2-D latent"),
    ("dcgan", "graphs/dcgan.g", "DC-GAN"),
    ("infogan", "graphs/infogan.g", "InfoGAN"),
]


def run_facts(name):
    """Wall time, iterations, mean images/s and the eval report of runs/<name>."""
    run = Path("runs") / name
    wall = float((run / "wall_seconds").read_text())
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rates = [r["images_per_sec"] for r in records if "images_per_sec" in r]
    steps = max(r["step"] for r in records)
    report = json.loads((run / "eval.json").read_text())
    return wall, steps, sum(rates) / len(rates), report


def minutes(seconds):
    return f"{int(seconds // 60)} min {int(round(seconds % 60)):02d} s"


def cpu_name():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def section():
    rows, code_rows = [], []
    lines = [
        f"Measured by `scripts/results.sh` on {cpu_name()}, 2 threads. Each model file trained with its",
        "default settings (`cargo run --release -- run FILE`), then scored by",
        "`graphc eval RUN --classifier runs/LeNet` on 10,000 generated images against the 1,000",
        "held-out real digits (classifier: `graphs/lenet.g`).",
        "",
        "| file | iterations | wall time | images/s | classifier score (real: ceiling) "
        "| Fréchet distance (real: floor) | class entropy, nats | class JS vs real | other |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, path, _ in MODELS:
        wall, steps, rate, r = run_facts(name)
        other = []
        if r.get("code_accuracy"):
            c = r["code_accuracy"]
            other.append(f"categorical-code accuracy {100 * c['accuracy']:.1f}% (paper: 95%)")
            code_rows.append(c)
        if r.get("held_out_loss"):
            phase, loss = r["held_out_loss"]
            other.append(f"held-out −ELBO {loss:.1f} nats")
        lines.append(
            f"| `{path}` | {steps:,} | {minutes(wall)} | {rate:,.0f} "
            f"| {r['classifier_score']:.2f} ({r['classifier_score_real']:.2f}) "
            f"| {r['frechet_distance']:.1f} ({r['frechet_distance_real']:.1f}) "
            f"| {r['class_entropy']:.3f} | {r['class_js_divergence']:.4f} | {'; '.join(other)} |"
        )
    lines.append("")
    lines.append("Class histograms of the generated images (digits 0-9, as the classifier reads them):")
    lines.append("")
    for name, path, _ in MODELS:
        _, _, _, r = run_facts(name)
        counts = " ".join(str(c) for c in r["class_histogram"])
        lines.append(f"- `{path}`: {counts}")
    for c in code_rows:
        mapping = " ".join(str(d) for d in c["mapping"])
        lines.append("")
        lines.append(f"InfoGAN's code values 0-9 map to digits {mapping} (best one-to-one assignment).")
    return "\n".join(lines)


def main():
    readme = Path(sys.argv[1])
    text = readme.read_text()
    begin, end = "<!-- results:begin -->", "<!-- results:end -->"
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{begin}\n{section()}\n{end}{tail}")


if __name__ == "__main__":
    main()
