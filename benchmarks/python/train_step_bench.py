#!/usr/bin/env python3
"""The stage-1 training step of benchmarks/CoreBenchmark.cxx (BM_Stage1TrainingStep), in PyTorch.

Same architecture (ResNet-18 width 16, output stride 16, 2 input channels; projection head
128-128-256), same augmentation (random resized crop + rotation via affine_grid/grid_sample),
same conditional contrastive loss, Adam. Both call the same ATen kernels, so the C++/Python
time ratio measures the overhead of each front end.

Run with Debian's interpreter (it has torch): /usr/bin/python3 benchmarks/python/train_step_bench.py
"""
import argparse
import math
import os
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv(cin, cout, k, stride=1, dilation=1):
    pad = 0 if k == 1 else dilation * (k // 2)
    return nn.Conv2d(cin, cout, k, stride=stride, padding=pad, dilation=dilation, bias=False)


class BasicBlock(nn.Module):
    def __init__(self, cin, planes, stride, first_dilation, dilation):
        super().__init__()
        self.conv1, self.bn1 = conv(cin, planes, 3, stride, first_dilation), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = conv(planes, planes, 3, 1, dilation), nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(conv(cin, planes, 1, stride), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (self.downsample(x) if self.downsample is not None else x))


class Encoder(nn.Module):
    """ResNet-18 at width w, output stride 16 (last stage dilated), as agcl::ResNetEncoder."""

    def __init__(self, w=16, in_channels=2):
        super().__init__()
        self.conv1, self.bn1 = conv(in_channels, w, 7, 2), nn.BatchNorm2d(w)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.inplanes, self.dilation = w, 1
        self.layer1 = self._layer(w, 2, 1, False)
        self.layer2 = self._layer(2 * w, 2, 2, False)
        self.layer3 = self._layer(4 * w, 2, 2, False)
        self.layer4 = self._layer(8 * w, 2, 2, True)

    def _layer(self, planes, blocks, stride, dilate):
        previous = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        layers = []
        for b in range(blocks):
            layers.append(BasicBlock(self.inplanes, planes, stride if b == 0 else 1,
                                     previous if b == 0 else self.dilation, self.dilation))
            self.inplanes = planes
        return nn.Sequential(*layers)

    def represent(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return F.normalize(x.mean((2, 3)), dim=1)


class Head(nn.Module):
    def __init__(self, d, out=256):
        super().__init__()
        self.hidden, self.output = nn.Linear(d, d), nn.Linear(d, out)

    def forward(self, x):
        return F.normalize(self.output(F.relu(self.hidden(x))), dim=1)


def contrastive_loss(z, labels, temperature=0.1):
    sim = (z @ z.t()).float() / temperature
    n = z.shape[0]
    self_mask = torch.eye(n, dtype=torch.bool, device=z.device)
    log_den = torch.logsumexp(sim.masked_fill(self_mask, float("-inf")), 1, keepdim=True)
    log_prob = sim - log_den
    pos = labels[:, None].eq(labels[None, :]) & ~self_mask
    count = pos.sum(1)
    mean = log_prob.masked_fill(~pos, 0.0).sum(1) / count.clamp_min(1).to(sim.dtype)
    has = count.gt(0)
    return -(mean.masked_fill(~has, 0.0)).sum() / has.sum().clamp_min(1).to(sim.dtype)


def augment(batch, generator):
    n2 = 2 * batch.shape[0]
    d = torch.float64
    area = torch.empty(n2, dtype=d).uniform_(0.3, 0.7, generator=generator)
    aspect = torch.empty(n2, dtype=d).uniform_(math.log(3 / 4), math.log(4 / 3), generator=generator).exp()
    angle = torch.empty(n2, dtype=d).uniform_(-30.0, 30.0, generator=generator) * (math.pi / 180)
    cw, ch = (area * aspect).sqrt(), (area / aspect).sqrt()
    cx = torch.empty(n2, dtype=d).uniform_(-1.0, 1.0, generator=generator) * (1 - cw)
    cy = torch.empty(n2, dtype=d).uniform_(-1.0, 1.0, generator=generator) * (1 - ch)
    c, s = angle.cos(), angle.sin()
    theta = torch.stack([torch.stack([cw * c, -ch * s, cx], 1), torch.stack([cw * s, ch * c, cy], 1)], 1)
    x = torch.cat([batch, batch])
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return torch.cat([out[:, :1], out[:, 1:].ge(0.5).to(out.dtype)], 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--adam-foreach", choices=["default", "on", "off"], default="default",
                        help="PyTorch's multi-tensor Adam (default: on for CUDA in 2.x); the C++ side's agcl::AdamOptimizer has "
                             "its own (AdamOptions::kernels, BM_Stage1TrainingStep's second argument)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)  # Debian's torch starts with 1 thread here, as LibTorch does
    device = torch.device(args.device)
    torch.manual_seed(0)
    encoder, head = Encoder().to(device), Head(128).to(device)
    encoder.train()
    foreach = {"default": None, "on": True, "off": False}[args.adam_foreach]
    adam_args = {} if foreach is None else {"foreach": foreach}
    optimizer = torch.optim.Adam(list(encoder.parameters()) + list(head.parameters()), lr=1e-3, **adam_args)
    generator = torch.Generator().manual_seed(1)
    patches = torch.rand(32, 2, 64, 64, device=device)
    labels = (torch.arange(64) % 8).to(device)

    def step():
        views = augment(patches, generator)
        optimizer.zero_grad(set_to_none=True)  # as agcl::AdamOptimizer::ZeroGrad: gradients dropped
        contrastive_loss(head(encoder.represent(views)), labels).backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(3):
        step()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1000)
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, adam foreach {args.adam_foreach}")
    print(f"stage-1 training step: median {statistics.median(times):.1f} ms, mean {statistics.mean(times):.1f} ms "
          f"over {args.steps} steps (32 patches -> 64 views, 2x64x64, ResNet-18 w16)")


if __name__ == "__main__":
    main()
