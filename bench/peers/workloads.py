"""PyTorch peers of LatentLab's three reference workloads (bench/performance.ts), layer for layer.

Usage: python3 workloads.py '{"workload": "vae" | "dcgan" | "ddpm" | "ddpm-sample", "threads": 1,
                              "reps": 10, "warmup": 3, "warmup_seconds": 3, "batch": 128}'
Prints one JSON line: the parameter count, the median and all times in ms.
"""
import json
import math
import statistics
import sys
import time

import torch
from torch import nn
import torch.nn.functional as F

spec = json.loads(sys.argv[1])
torch.set_num_threads(spec.get("threads", 1))
torch.manual_seed(0)
B = spec.get("batch", 128)


def count(*mods):
    return sum(p.numel() for m in mods for p in m.parameters())


# --- MLP-VAE 784-512-256, latent 20, mirror decoder, BCE + KL --------------------------------
class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 40))
        self.dec = nn.Sequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 784))

    def loss(self, x):
        mu, logvar = self.enc(x).chunk(2, 1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        rec = F.binary_cross_entropy_with_logits(self.dec(z), x, reduction="none").sum(1)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(1)
        return (rec + kl).mean()


# --- DCGAN-small on 28x28x1 ------------------------------------------------------------------
class G(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 7 * 7 * 128)
        self.up0 = nn.ConvTranspose2d(128, 64, 4, 2, 1)
        self.bn = nn.BatchNorm2d(64, momentum=0.1, eps=1e-5)
        self.out = nn.ConvTranspose2d(64, 1, 4, 2, 1)

    def forward(self, z):
        h = self.fc(z).view(-1, 128, 7, 7)
        return torch.tanh(self.out(F.relu(self.bn(self.up0(h)))))


class D(nn.Module):
    def __init__(self):
        super().__init__()
        self.c0 = nn.Conv2d(1, 64, 4, 2, 1)
        self.c1 = nn.Conv2d(64, 128, 4, 2, 1)
        self.fc = nn.Linear(7 * 7 * 128, 1)

    def forward(self, x):
        h = F.leaky_relu(self.c0(x), 0.2)
        h = F.leaky_relu(self.c1(h), 0.2)
        return self.fc(h.flatten(1))


# --- The small U-Net of src/models/diffusion/denoisers.ts ------------------------------------
class ChannelNorm(nn.Module):
    """LayerNorm over channels at every pixel (LatentLab's layerNorm on NHWC's last axis)."""

    def __init__(self, c):
        super().__init__()
        self.ln = nn.LayerNorm(c, eps=1e-5)

    def forward(self, x):
        return self.ln(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class Res(nn.Module):
    def __init__(self, cin, cout, tdim):
        super().__init__()
        self.n1, self.c1 = ChannelNorm(cin), nn.Conv2d(cin, cout, 3, 1, 1)
        self.t = nn.Linear(tdim, cout)
        self.n2, self.c2 = ChannelNorm(cout), nn.Conv2d(cout, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb):
        h = self.c1(F.silu(self.n1(x))) + self.t(temb)[:, :, None, None]
        h = self.c2(F.silu(self.n2(h)))
        return h + (self.skip(x) if self.skip is not None else x)


class UNet(nn.Module):
    def __init__(self, c1=32, c2=64, blocks=2, ch=1):
        super().__init__()
        self.c1 = c1
        td = 4 * c1
        self.t0, self.t1 = nn.Linear(c1, td), nn.Linear(td, td)
        self.inc = nn.Conv2d(ch, c1, 3, 1, 1)
        self.down1 = nn.ModuleList([Res(c1, c1, td) for _ in range(blocks)])
        self.downs = nn.Conv2d(c1, c2, 3, 2, 1)
        self.down2 = nn.ModuleList([Res(c2, c2, td) for _ in range(blocks)])
        self.mid = Res(c2, c2, td)
        self.up2 = nn.ModuleList([Res(2 * c2, c2, td) for _ in range(blocks)])
        self.ups = nn.ConvTranspose2d(c2, c1, 4, 2, 1)
        self.up1 = nn.ModuleList([Res(2 * c1, c1, td) for _ in range(blocks)])
        self.on, self.oc = ChannelNorm(c1), nn.Conv2d(c1, ch, 3, 1, 1)

    def forward(self, x, t):
        half = self.c1 // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half) / half)
        a = (t * 1000)[:, None] * freqs[None]
        temb = self.t1(F.silu(self.t0(torch.cat([a.sin(), a.cos()], 1))))
        h = self.inc(x)
        s1 = []
        for b in self.down1:
            h = b(h, temb)
            s1.append(h)
        h = self.downs(h)
        s2 = []
        for b in self.down2:
            h = b(h, temb)
            s2.append(h)
        h = self.mid(h, temb)
        for b in self.up2:
            h = b(torch.cat([h, s2.pop()], 1), temb)
        h = self.ups(h)
        for b in self.up1:
            h = b(torch.cat([h, s1.pop()], 1), temb)
        return self.oc(F.silu(self.on(h)))


w = spec["workload"]
if w == "vae":
    model = VAE()
    params = count(model)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x = torch.rand(B, 784)

    def step():
        loss = model.loss(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
elif w == "dcgan":
    g, d = G(), D()
    params = count(g, d)
    og = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    od = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    real = torch.rand(B, 1, 28, 28) * 2 - 1

    def step():
        z = torch.randn(B, 64)
        fake = g(z).detach()
        logits = d(torch.cat([real, fake]))
        ld = F.softplus(-logits[:B]).mean() + F.softplus(logits[B:]).mean()
        od.zero_grad()
        ld.backward()
        od.step()
        lg = F.softplus(-d(g(torch.randn(B, 64)))).mean()
        og.zero_grad()
        lg.backward()
        og.step()
elif w in ("ddpm", "ddpm-sample"):
    net = UNet()
    params = count(net)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    x0 = torch.rand(B, 1, 28, 28) * 2 - 1
    ab = torch.cos(torch.linspace(0, 1, 1000) * math.pi / 2) ** 2 * 0.9999 + 1e-4
    if w == "ddpm":
        def step():
            t = torch.randint(0, 1000, (B,))
            eps = torch.randn_like(x0)
            a = ab[t][:, None, None, None]
            xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
            loss = (net(xt, t.float() / 1000) - eps).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    else:
        n = spec.get("n", 16)

        def step():
            with torch.no_grad():
                x = torch.randn(n, 1, 28, 28)
                ts = torch.linspace(999, 0, 100).long()
                for i, t in enumerate(ts):
                    a = ab[t]
                    ap = ab[ts[i + 1]] if i + 1 < len(ts) else torch.tensor(1.0)
                    eps = net(x, torch.full((n,), float(t) / 1000))
                    x0h = (x - (1 - a).sqrt() * eps) / a.sqrt()
                    x = ap.sqrt() * x0h + (1 - ap).sqrt() * eps
else:
    raise SystemExit(f"unknown workload {w}")

# Warm-up: at least `warmup` steps and `warmup_seconds` seconds (the same rule as LatentLab's side).
warm_start = time.perf_counter()
warm_steps = 0
while warm_steps < spec.get("warmup", 3) or time.perf_counter() - warm_start < spec.get("warmup_seconds", 0):
    step()
    warm_steps += 1
times = []
for _ in range(spec.get("reps", 10)):
    t0 = time.perf_counter()
    step()
    times.append(1000 * (time.perf_counter() - t0))
print(json.dumps({"workload": w, "params": params, "threads": torch.get_num_threads(), "median": statistics.median(times), "times": times, "torch": torch.__version__}))
