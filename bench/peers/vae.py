"""PyTorch peer of LatentLab's MLP-VAE benchmark (same architecture, data, epochs, optimiser).

Reads float32 images written by bench/vae.ts, trains 784-H1-H2-latent (mirror decoder, BCE + KL,
Adam 1e-3, batch 128, the last partial batch dropped like LatentLab), and prints one JSON line:
train seconds, ms per step, parameter count and test −ELBO in nats per image.
"""
import json
import sys
import time

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

spec = json.loads(sys.argv[1])
torch.manual_seed(spec["seed"])
torch.set_num_threads(spec.get("threads", 1))
d = spec["pixels"]
train = torch.from_numpy(np.fromfile(spec["train"], dtype=np.float32).reshape(-1, d))
test = torch.from_numpy(np.fromfile(spec["test"], dtype=np.float32).reshape(-1, d))
h1, h2 = spec["hidden"]
z_dim = spec["latent"]


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(d, h1), nn.ReLU(), nn.Linear(h1, h2), nn.ReLU(), nn.Linear(h2, 2 * z_dim))
        self.dec = nn.Sequential(nn.Linear(z_dim, h2), nn.ReLU(), nn.Linear(h2, h1), nn.ReLU(), nn.Linear(h1, d))

    def forward(self, x):
        mu, logvar = self.enc(x).chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.dec(z), mu, logvar


def neg_elbo(logits, x, mu, logvar):
    rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
    kl = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(1)
    return rec, kl


model = VAE()
params = sum(p.numel() for p in model.parameters())
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
bs = spec["batchSize"]
steps = 0
t0 = time.perf_counter()
for epoch in range(spec["epochs"]):
    perm = torch.randperm(train.shape[0])
    for i in range(train.shape[0] // bs):
        x = train[perm[i * bs:(i + 1) * bs]]
        logits, mu, logvar = model(x)
        rec, kl = neg_elbo(logits, x, mu, logvar)
        loss = (rec + kl).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
seconds = time.perf_counter() - t0
with torch.no_grad():
    logits, mu, logvar = model(test)
    rec, kl = neg_elbo(logits, test, mu, logvar)
print(json.dumps({"seconds": seconds, "msPerStep": 1000 * seconds / steps, "steps": steps, "params": params,
                  "negElbo": float((rec + kl).mean()), "reconstruction": float(rec.mean()), "kl": float(kl.mean()),
                  "torch": torch.__version__, "threads": torch.get_num_threads()}))
