"""PyTorch versions of graphc's three model files, for side-by-side speed comparisons.

Same architectures, initial-value distributions, losses, optimizers and per-iteration schedule as
graphs/vae.g, graphs/dcgan.g and graphs/infogan.g (see the comments in those files); only what
affects speed matters here, not matching numbers. Usage:
    python benches/peers/models.py MODEL BATCH STEPS THREADS [train|generate] [cpu|cuda]
prints one JSON line: {"model", "mode", "batch", "threads", "device", "images_per_sec"}. On
`cuda` everything is FP32 (TF32 off) and the timing waits for the GPU. `generate` times
the generator alone (the VAE's decoder on prior samples), without gradients, with the
normalization graphc's TEST graph uses: running statistics for DC-GAN, batch statistics for
InfoGAN (its graph file samples so, as openai/InfoGAN does).
"""

import json
import math
import sys
import time

import torch
from torch import nn
import torch.nn.functional as F


def minimize(opt, loss):
    """One optimizer step on `loss`."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def vae(batch):
    """graphs/vae.g: 784-1000-500-250-30 encoder, mirrored decoder, Adam (weight decay on
    weights only), sigmoid cross-entropy + KL (weight 1/batch on the summed KL)."""
    enc = nn.Sequential(nn.Linear(784, 1000), nn.ReLU(), nn.Linear(1000, 500), nn.ReLU(),
                        nn.Linear(500, 250), nn.ReLU())
    mu, logsd = nn.Linear(250, 30), nn.Linear(250, 30)
    dec = nn.Sequential(nn.Linear(30, 250), nn.ReLU(), nn.Linear(250, 500), nn.ReLU(),
                        nn.Linear(500, 1000), nn.ReLU(), nn.Linear(1000, 784))
    modules = [enc, mu, logsd, dec]
    params = [p for m in modules for p in m.parameters()]
    weights = [p for p in params if p.dim() > 1]
    biases = [p for p in params if p.dim() == 1]
    opt = torch.optim.Adam([{"params": weights, "weight_decay": 5e-4},
                            {"params": biases, "weight_decay": 0.0}], lr=1e-3, betas=(0.9, 0.999))

    def step(images):
        x = images.view(batch, 784) / 255.0
        h = enc(x)
        m, ls = mu(h), logsd(h)
        sd = torch.exp(ls)
        kl = (0.5 * m * m + 0.5 * sd * sd - ls - 0.5).sum() / batch
        z = m + sd * torch.randn_like(sd)
        logits = dec(z)
        ce = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / batch
        minimize(opt, ce + kl)

    def generate():
        return torch.sigmoid(dec(torch.randn(batch, 30)))

    return step, generate


def dcgan(batch):
    """graphs/dcgan.g (jacobgil/keras-dcgan): tanh everywhere, BN after the generator's second
    dense layer, upsampling + 5x5 convolutions; D with max pooling; Nesterov SGD; one D step
    (real and fake batches) then one G step per iteration."""
    g = nn.Sequential(nn.Linear(100, 1024), nn.Tanh(), nn.Linear(1024, 6272),
                      nn.BatchNorm1d(6272, eps=1e-3, momentum=0.01), nn.Tanh(),
                      nn.Unflatten(1, (128, 7, 7)), nn.Upsample(scale_factor=2),
                      nn.Conv2d(128, 64, 5, padding=2), nn.Tanh(), nn.Upsample(scale_factor=2),
                      nn.Conv2d(64, 1, 5, padding=2), nn.Tanh())
    d = nn.Sequential(nn.Conv2d(1, 64, 5, padding=2), nn.Tanh(), nn.MaxPool2d(2),
                      nn.Conv2d(64, 128, 5), nn.Tanh(), nn.MaxPool2d(2), nn.Flatten(),
                      nn.Linear(3200, 1024), nn.Tanh(), nn.Linear(1024, 1))
    opt_g = torch.optim.SGD(g.parameters(), lr=5e-4, momentum=0.9, nesterov=True)
    opt_d = torch.optim.SGD(d.parameters(), lr=5e-4, momentum=0.9, nesterov=True)
    ones, zeros = torch.ones(batch, 1), torch.zeros(batch, 1)

    def noise():
        return torch.rand(batch, 100) * 2 - 1

    def step(images):
        real = (images - 127.5) / 127.5
        with torch.no_grad():
            fake = g(noise())
        d_loss = (F.binary_cross_entropy_with_logits(d(real), ones)
                  + F.binary_cross_entropy_with_logits(d(fake), zeros))
        minimize(opt_d, d_loss)
        d.requires_grad_(False)
        g_loss = F.binary_cross_entropy_with_logits(d(g(noise())), ones)
        minimize(opt_g, g_loss)
        d.requires_grad_(True)

    def generate():
        g.eval()
        images = g(noise())
        g.train()
        return images

    return step, generate


def infogan(batch):
    """graphs/infogan.g (openai/InfoGAN): 62 noise + 10-way categorical + 2 continuous codes;
    D and Q share the trunk (computed once on the fake images); Q reads the categorical code from
    a randomly warped copy of the fakes (rotation up to 15 degrees, scale 1 +- 0.15, shift up to 2
    pixels: the file's RandomAffine, as affine_grid + grid_sample); the MI lower bound (weight 1)
    is subtracted from both players' losses; Adam, D lr 2e-4, G lr 1e-3, beta1 0.5."""
    g = nn.Sequential(nn.Linear(74, 1024), nn.BatchNorm1d(1024, momentum=0.1), nn.ReLU(),
                      nn.Linear(1024, 6272), nn.BatchNorm1d(6272, momentum=0.1), nn.ReLU(),
                      nn.Unflatten(1, (128, 7, 7)),
                      nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64, momentum=0.1), nn.ReLU(),
                      nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Sigmoid())
    trunk = nn.Sequential(nn.Conv2d(1, 64, 4, 2, 1), nn.LeakyReLU(0.1),
                          nn.Conv2d(64, 128, 4, 2, 1), nn.BatchNorm2d(128, momentum=0.1), nn.LeakyReLU(0.1),
                          nn.Flatten(), nn.Linear(6272, 1024), nn.BatchNorm1d(1024, momentum=0.1),
                          nn.LeakyReLU(0.1))
    d_head = nn.Linear(1024, 1)
    q_head = nn.Sequential(nn.Linear(1024, 128), nn.BatchNorm1d(128, momentum=0.1), nn.LeakyReLU(0.1),
                           nn.Linear(128, 12))
    dq = [trunk, d_head, q_head]
    opt_d = torch.optim.Adam([p for m in dq for p in m.parameters()], lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-3, betas=(0.5, 0.999))
    ones, zeros = torch.ones(batch, 1), torch.zeros(batch, 1)
    log_2pi = math.log(2 * math.pi)

    def latent():
        noise = torch.rand(batch, 62) * 2 - 1
        code = F.one_hot(torch.randint(0, 10, (batch,)), 10).float()
        cont = torch.rand(batch, 2) * 2 - 1
        return torch.cat([noise, code, cont], 1), code, cont

    def warp(images):
        # Output = centre + size * R(angle) * (input - centre) + shift, sampled by its inverse in
        # grid_sample's coordinates (-1 and 1 at the corner pixels' centres).
        d = torch.rand(images.shape[0], 4) * 2 - 1
        angle, size = d[:, 0] * math.radians(15), 1 + d[:, 1] * 0.15
        shift = d[:, 2:] * 2 / ((images.shape[-1] - 1) / 2)
        cos, sin = torch.cos(angle) / size, torch.sin(angle) / size
        rows = torch.stack([torch.stack([cos, sin], 1), torch.stack([-sin, cos], 1)], 1)
        theta = torch.cat([rows, -(rows @ shift.unsqueeze(2))], 2)
        grid = F.affine_grid(theta, list(images.shape), align_corners=True)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=True)

    def mutual_information(features, warped_features, code, cont):
        disc = (F.log_softmax(q_head(warped_features)[:, :10], 1) * code).sum(1).mean() + math.log(10)
        q = q_head(features)
        cont_ll = (-0.5 * (cont - q[:, 10:]) ** 2 - 0.5 * log_2pi).sum(1).mean()
        prior_ll = (-0.5 * cont ** 2 - 0.5 * log_2pi).sum(1).mean()
        return disc + cont_ll - prior_ll

    def step(images):
        real = images / 255.0
        z, code, cont = latent()
        with torch.no_grad():
            fake = g(z)
        fake_features = trunk(fake)
        d_loss = (F.binary_cross_entropy_with_logits(d_head(trunk(real)), ones)
                  + F.binary_cross_entropy_with_logits(d_head(fake_features), zeros)
                  - mutual_information(fake_features, trunk(warp(fake)), code, cont))
        minimize(opt_d, d_loss)
        for m in dq:
            m.requires_grad_(False)
        z, code, cont = latent()
        fake = g(z)
        features = trunk(fake)
        g_loss = (F.binary_cross_entropy_with_logits(d_head(features), ones)
                  - mutual_information(features, trunk(warp(fake)), code, cont))
        minimize(opt_g, g_loss)
        for m in dq:
            m.requires_grad_(True)

    def generate():
        return g(latent()[0])

    return step, generate


MODELS = {"vae": vae, "dcgan": dcgan, "infogan": infogan}


def main():
    model, batch, steps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    mode = sys.argv[5] if len(sys.argv) > 5 else "train"
    device = sys.argv[6] if len(sys.argv) > 6 else "cpu"
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    torch.manual_seed(1)
    if device == "cuda":
        # Full FP32, as graphc computes: no TF32 in cuDNN's convolutions (PyTorch's default
        # allows it there) nor in matrix products.
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
    torch.set_default_device(device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    step, generate = MODELS[model](batch)
    if mode == "train":
        images = torch.randint(0, 256, (batch, 1, 28, 28)).float()
        run = lambda: step(images)  # noqa: E731
    else:
        def run():
            with torch.no_grad():
                generate()
    run()  # warm-up
    sync()
    started = time.perf_counter()
    for _ in range(steps):
        run()
    sync()
    elapsed = time.perf_counter() - started
    print(json.dumps({"model": model, "mode": mode, "batch": batch, "threads": threads, "device": device,
                      "images_per_sec": round(batch * steps / elapsed, 1)}))


if __name__ == "__main__":
    main()
