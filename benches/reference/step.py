"""PyTorch twin of crates/guidance/benches/step.rs: one training step of the
Deep FCN (plain and guided by an untrained ResNet-18), of the Deep ConvNet
guided by a ResNet-50 and of the copy-paste RNN guided by a Transformer, the
plain step's forward + backward without the optimiser, the guide's forward
alone and the guidance terms alone, with the same sizes,
batch and thread count; and the machine's f32 matrix-product ceiling.

    python step.py [--threads 2] [--iters 20] [--device cpu|cuda] [--sizes cpu|paper]

`--sizes paper` takes the paper presets' networks and batch (as the Rust
bench with UNTRAINABLE_BENCH_SIZES=paper), for a GPU.

Prints one JSON line per benchmark, named as criterion names its directory
(target/criterion/<group>/<function>); parameter and tap counts go to stderr
so that they can be checked against the Rust networks.
"""

import argparse
import json
import math
import statistics
import sys
import time

import torch
from torch import nn
import torch.nn.functional as F

ARGS = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ARGS.add_argument("--threads", type=int, default=2)
ARGS.add_argument("--iters", type=int, default=20)
ARGS.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
ARGS.add_argument("--sizes", choices=["cpu", "paper"], default="cpu")
ARGS = ARGS.parse_args()
THREADS, ITERS, DEVICE = ARGS.threads, ARGS.iters, torch.device(ARGS.device)
torch.set_num_threads(THREADS)
torch.manual_seed(0)


class DeepFcn(nn.Module):
    """784 → hidden × (Linear → BN → ReLU → dropout) → classes; taps are
    the Linear outputs before the norm, as in crates/arch-fcn."""

    def __init__(self, inputs=784, first=512, width=512, hidden=20, classes=10, dropout=0.1):
        super().__init__()
        dims = [inputs, first] + [width] * (hidden - 1)
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims, dims[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(d) for d in dims[1:])
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        x = x.flatten(1)
        taps = []
        for linear, norm in zip(self.linears, self.norms):
            x = linear(x)
            taps.append(x)
            x = self.drop(F.relu(norm(x)))
        return self.head(x), taps


def conv(cin, cout, k, stride=1):
    return nn.Conv2d(cin, cout, k, stride, k // 2, bias=False)


class Block(nn.Module):
    """Basic (two 3×3) or bottleneck (1×1, 3×3, 1×1) block; taps are each
    conv's output before its norm and the downsample conv's; without
    `residual` the skip is dropped (the Deep ConvNet)."""

    def __init__(self, bottleneck, cin, width, cout, stride, residual):
        super().__init__()
        if bottleneck:
            self.conv1, self.conv2 = conv(cin, width, 1), conv(width, width, 3, stride)
            self.conv3, self.norm3 = conv(width, cout, 1), nn.BatchNorm2d(cout)
        else:
            self.conv1, self.conv2 = conv(cin, width, 3, stride), conv(width, width, 3)
            self.conv3 = None
        self.norm1, self.norm2 = nn.BatchNorm2d(width), nn.BatchNorm2d(width)
        self.residual = residual
        self.down = None
        if residual and (stride != 1 or cin != cout):
            self.down, self.down_norm = conv(cin, cout, 1, stride), nn.BatchNorm2d(cout)

    def forward(self, x, taps):
        h = self.conv1(x)
        taps.append(h)
        h = self.conv2(F.relu(self.norm1(h)))
        taps.append(h)
        h = self.norm2(h)
        if self.conv3 is not None:
            h = self.conv3(F.relu(h))
            taps.append(h)
            h = self.norm3(h)
        if not self.residual:
            return F.relu(h)
        identity = x
        if self.down is not None:
            d = self.down(x)
            taps.append(d)
            identity = self.down_norm(d)
        return F.relu(h + identity)


class ResNet(nn.Module):
    """crates/arch-cnn's ResNet with the small stem (3×3 conv, stride 1, no
    pooling) or the ImageNet one (7×7 conv, stride 2, 3×3 max pool, stride
    2): taps conv1, every block's convs, avgpool."""

    def __init__(self, blocks, bottleneck, width, residual=True, classes=10, imagenet=False):
        super().__init__()
        expansion = 4 if bottleneck else 1
        if imagenet:
            self.stem, self.pool = conv(3, width, 7, 2), nn.MaxPool2d(3, 2, 1)
        else:
            self.stem, self.pool = conv(1, width, 3), nn.Identity()
        self.stem_norm = nn.BatchNorm2d(width)
        layers, cin = [], width
        for stage, n in enumerate(blocks):
            w = width << stage
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                layers.append(Block(bottleneck, cin, w, w * expansion, stride, residual))
                cin = w * expansion
        self.blocks = nn.ModuleList(layers)
        self.head = nn.Linear(cin, classes)

    def forward(self, x):
        h = self.stem(x)
        taps = [h]
        h = self.pool(F.relu(self.stem_norm(h)))
        for block in self.blocks:
            h = block(h, taps)
        pooled = h.mean((2, 3))
        taps.append(pooled)
        return self.head(pooled), taps


class RnnLm(nn.Module):
    """crates/arch-rnn's RnnLm: embedding → stacked single-layer tanh RNNs
    from zero states → linear head; taps are every layer's output sequence."""

    def __init__(self, vocab=13, embedding=64, hidden=128, layers=4):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embedding)
        widths = [embedding] + [hidden] * layers
        self.layers = nn.ModuleList(nn.RNN(w, hidden, batch_first=True) for w in widths[:-1])
        self.head = nn.Linear(hidden, vocab)

    def forward(self, ids):
        x, taps = self.embedding(ids), []
        for layer in self.layers:
            x = layer(x)[0]
            taps.append(x)
        return self.head(x).flatten(0, 1), taps


def sinusoids(time, d):
    position = torch.arange(time, dtype=torch.float64)[:, None]
    rate = torch.exp(-torch.arange(0, d, 2, dtype=torch.float64) * math.log(10_000.0) / d)
    table = torch.zeros(time, d, dtype=torch.float64)
    table[:, 0::2], table[:, 1::2] = torch.sin(position * rate), torch.cos(position * rate)
    return table.float()


class CopyPasteGuide(nn.Module):
    """crates/arch-transformer's copy-paste guide without dropout: embeddings
    × √d plus sinusoidal positions, then one post-norm decoder layer (causal
    self-attention, unmasked attention to the layer's input, ReLU
    feed-forward) applied `layers` times; 8 taps per application, as the
    released code hooks nn.TransformerDecoderLayer."""

    def __init__(self, vocab=13, d=64, heads=4, ff=64, layers=4):
        super().__init__()
        self.d, self.layers = d, layers
        self.embedding = nn.Embedding(vocab, d)
        self.self_attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.linear1, self.linear2 = nn.Linear(d, ff), nn.Linear(ff, d)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)

    def forward(self, ids):
        time = ids.shape[1]
        causal = torch.triu(torch.ones(time, time, dtype=torch.bool, device=ids.device), 1)
        x = self.embedding(ids) * math.sqrt(self.d) + sinusoids(time, self.d).to(ids.device)
        taps = []
        for _ in range(self.layers):
            memory = x
            a = self.self_attn(x, x, x, attn_mask=causal, need_weights=False)[0]
            h1 = self.norm1(x + a)
            c = self.cross_attn(h1, memory, memory, need_weights=False)[0]
            h2 = self.norm2(h1 + c)
            f1 = self.linear1(h2)
            f2 = self.linear2(F.relu(f1))
            x = self.norm3(h2 + f2)
            taps += [a, h1, c, h2, f1, f2, x, x]
        return self.head(x).flatten(0, 1), taps


def uniform_pairs(n_target, n_guide):
    """Guide tap i → target tap round(i (n_t − 1) / (n_g − 1)), halves to even
    (Python's round), as crates/guidance/src/mapping.rs."""
    step = 1.0 if n_guide == 1 else (n_target - 1) / (n_guide - 1)
    return [(min(round(i * step), n_target - 1), i) for i in range(n_guide)]


def centred_gram(x):
    x = x.flatten(1)
    k = x @ x.T
    return k - k.mean(0, keepdim=True) - k.mean(1, keepdim=True) + k.mean()


def linear_cka(x, y):
    kc, lc = centred_gram(x), centred_gram(y)
    return (kc * lc).sum() / torch.sqrt((kc * kc).sum() * (lc * lc).sum())


def guidance(target_taps, guide_taps, pairs):
    return sum(1 - linear_cka(target_taps[t], guide_taps[g]) for t, g in pairs)


def terms_gflop(n, target, guide, pairs):
    """The products the guidance terms cannot do without, in GFLOP: each
    guide tap's Gram matrix and each paired target tap's, on and above the
    diagonal (n (n + 1) d each), and the target taps' input gradients
    (2 Gbar X, 2 n² d each); `target` and `guide` are the taps' feature
    counts."""
    used = {t for t, _ in pairs}
    grams = sum(n * (n + 1) * d for d in guide) + sum(n * (n + 1) * target[t] for t in used)
    return (grams + sum(2 * n * n * target[t] for t in used)) / 1e9


def synchronize():
    """Wait for the GPU's queued kernels: CUDA calls return before they run."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def median_seconds(fn, iters):
    for _ in range(3):
        fn()
    synchronize()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def report(bench, seconds, **extra):
    row = {"bench": bench, "median_s": seconds, "iters": ITERS, "threads": THREADS, "device": ARGS.device, **extra}
    print(json.dumps(row), flush=True)


def group(name, make_target, make_guide, x, loss_of):
    """Plain step, its forward + backward without the optimiser, guided step,
    guide forward and guidance terms of one
    target and guide on the batch `x`, with `loss_of(output)` the task loss."""
    guide = make_guide().to(DEVICE).eval()
    for p in guide.parameters():
        p.requires_grad_(False)
    plain, guided = make_target().to(DEVICE).train(), make_target().to(DEVICE).train()
    with torch.no_grad():
        features = [[t[0].numel() for t in net(x)[1]] for net in (plain, guide)]
    n_target, n_guide = map(len, features)
    pairs = uniform_pairs(n_target, n_guide)
    for label, net, taps in [("target", plain, n_target), ("guide", guide, n_guide)]:
        count = sum(p.numel() for p in net.parameters())
        print(f"{name}: {label} {count} parameters, {taps} taps", file=sys.stderr)
    print(f"{name}: CKA terms need at least {terms_gflop(len(x), *features, pairs):.2f} GFLOP", file=sys.stderr)
    # burn's Adam default epsilon, as the Rust bench uses.
    optims = {id(net): torch.optim.Adam(net.parameters(), 1e-3, eps=1e-5) for net in (plain, guided)}

    def step(net, with_guide):
        optim = optims[id(net)]
        optim.zero_grad(set_to_none=True)
        out, taps = net(x)
        loss = loss_of(out)
        if with_guide:
            with torch.no_grad():
                guide_taps = guide(x)[1]
            loss = loss + guidance(taps, guide_taps, pairs)
        loss.backward()
        optim.step()
        return loss.item()

    report(f"{name}/plain_step", median_seconds(lambda: step(plain, False), ITERS))

    def target_forward_backward():
        plain.zero_grad(set_to_none=True)
        loss_of(plain(x)[0]).backward()

    report(f"{name}/target_forward_backward", median_seconds(target_forward_backward, ITERS))
    report(f"{name}/guided_step", median_seconds(lambda: step(guided, True), ITERS))

    def guide_forward():
        with torch.no_grad():
            guide(x)[0].cpu().numpy()

    report(f"{name}/guide_forward", median_seconds(guide_forward, ITERS))
    with torch.no_grad():
        guide_taps = guide(x)[1]
        fixed = [t.detach().clone() for t in guided(x)[1]]
    fixed = [t.requires_grad_(True) for t in fixed]

    def terms():
        for t in fixed:
            t.grad = None
        guidance(fixed, guide_taps, pairs).backward()
        return fixed[0].grad.cpu().numpy()

    report(f"{name}/guidance_terms_forward_backward", median_seconds(terms, ITERS))


def image_group(name, make_target, make_guide, batch, channels=1, size=28):
    """Random `channels × size × size` images normalised as the bench's
    InputSpec (mean 0.3, std 0.3), labels cycling through the 10 classes."""
    x = ((torch.rand(batch, channels, size, size) - 0.3) / 0.3).to(DEVICE)
    y = (torch.arange(batch) % 10).to(DEVICE)
    group(name, make_target, make_guide, x, lambda out: F.cross_entropy(out, y))


def copy_paste_group(make_target, make_guide, batch, min_len, max_len, pad=10, copy=11, eos=12):
    """Copy-paste sequences as crates/tasks builds them: L digits, COPY, L
    pads, EOS, padded to the longest; the loss is the mean cross-entropy
    over the L copied positions of each sequence."""
    rows, targets, scored = [], [], []
    for _ in range(batch):
        n = int(torch.randint(min_len, max_len + 1, ()))
        digits = torch.randint(0, 10, (n,)).tolist()
        rows.append(digits + [copy] + [pad] * n + [eos])
        targets.append([pad] * (n + 1) + digits + [eos])
        scored.append([n < t <= 2 * n for t in range(2 * n + 2)])
    time = max(map(len, rows))
    fill = lambda r, v: r + [v] * (time - len(r))
    x = torch.tensor([fill(r, pad) for r in rows], device=DEVICE)
    y = torch.tensor([fill(r, pad) for r in targets], device=DEVICE).flatten()
    w = torch.tensor([fill(r, False) for r in scored], dtype=torch.float32, device=DEVICE).flatten()
    print(f"copy_paste_rnn_transformer: batch {batch} × {time} tokens", file=sys.stderr)

    def loss_of(out):
        return (F.cross_entropy(out, y, reduction="none") * w).sum() / w.sum()

    group("copy_paste_rnn_transformer", make_target, make_guide, x, loss_of)


def sgemm(size):
    a, b = torch.rand(size, size, device=DEVICE), torch.rand(size, size, device=DEVICE)
    seconds = median_seconds(lambda: torch.mm(a, b), ITERS)
    report(f"sgemm/torch_mm_{size}", seconds, gflops=2 * size**3 / seconds / 1e9)
    if DEVICE.type != "cpu":
        return
    try:
        import numpy as np
    except ImportError:
        return
    a, b = np.random.rand(size, size).astype(np.float32), np.random.rand(size, size).astype(np.float32)
    seconds = median_seconds(lambda: a @ b, ITERS)
    report(f"sgemm/numpy_matmul_{size}", seconds, gflops=2 * size**3 / seconds / 1e9)


if __name__ == "__main__":
    print(f"torch {torch.__version__} on {DEVICE}, {THREADS} threads, median of {ITERS}", file=sys.stderr)
    if DEVICE.type == "cuda":
        print(
            f"{torch.cuda.get_device_name()}; TF32 in cuDNN convolutions {torch.backends.cudnn.allow_tf32},"
            f" in matrix products {torch.backends.cuda.matmul.allow_tf32} (PyTorch's defaults, also LibTorch's)",
            file=sys.stderr,
        )
    if ARGS.sizes == "cpu":
        sgemm(2048)
        image_group("deep_fcn_resnet18", DeepFcn, lambda: ResNet([2, 2, 2, 2], False, 16), 256)
        image_group(
            "deep_convnet_resnet50",
            lambda: ResNet([3, 4, 6, 3], True, 8, residual=False),
            lambda: ResNet([3, 4, 6, 3], True, 8),
            64,
        )
        copy_paste_group(RnnLm, CopyPasteGuide, 64, 5, 10)
    else:
        # The paper presets: crates' FcnConfig::deep_imagenet, ResNetConfig::*_imagenet,
        # RnnLmConfig::copy_paste_paper, CausalLmConfig::copy_paste_paper; 10 classes.
        sgemm(8192)
        image_group(
            "deep_fcn_resnet18",
            lambda: DeepFcn(150528, 2048, 1024, 48),
            lambda: ResNet([2, 2, 2, 2], False, 64, imagenet=True),
            256, 3, 224,
        )
        image_group(
            "deep_convnet_resnet50",
            lambda: ResNet([3, 4, 6, 3], True, 64, residual=False, imagenet=True),
            lambda: ResNet([3, 4, 6, 3], True, 64, imagenet=True),
            256, 3, 224,
        )
        copy_paste_group(lambda: RnnLm(13, 256, 512), lambda: CopyPasteGuide(13, 512, 16, 512), 256, 20, 40)
