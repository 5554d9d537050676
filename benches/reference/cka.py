"""PyTorch twin of the linear CKA benchmarks in crates/repsim/benches/cka.rs.

Same sizes (n = 256 examples, d features), same dtype (float32), same
formula (Gram form: K = X Xᵀ centred by row and column means, CKA =
<K, L> / (|K| |L|)), same thread count. Prints one JSON object per
measurement: {"bench": ..., "median_s": ...}. Run through run-cka.sh.
"""

import argparse
import json
import statistics
import time

import torch


def centred_gram(x):
    k = x @ x.T
    return k - k.mean(0, keepdim=True) - k.mean(1, keepdim=True) + k.mean()


def linear_cka(x, y):
    k, l = centred_gram(x), centred_gram(y)
    return (k * l).sum() / torch.sqrt((k * k).sum() * (l * l).sum())


def median_time(step, samples, warmup=2):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    args = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    args.add_argument("--threads", type=int, default=2)
    threads = args.parse_args().threads
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    n = 256
    for d in (1024, 16384, 200704):
        samples = 10 if d < 200704 else 5
        x = torch.randn(n, d)
        y = torch.randn(n, d)

        def forward():
            with torch.no_grad():
                linear_cka(x, y).item()

        xg = x.clone().requires_grad_(True)

        def forward_backward():
            xg.grad = None
            (1.0 - linear_cka(xg, y)).backward()
            xg.grad.sum().item()

        for name, step in (("forward", forward), ("forward_backward", forward_backward)):
            print(json.dumps({"bench": f"linear_cka/{name}/{d}", "median_s": median_time(step, samples)}), flush=True)
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
