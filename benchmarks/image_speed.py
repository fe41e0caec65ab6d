"""Training throughput of uqbench's image loop against a plain PyTorch loop, in the same run.

Both train the same network on the same uint8 images kept on the device, with random crop and
flip done on the device, bf16 autocast on CUDA, channels-last and (optionally) torch.compile:
the plain loop is the shortest correct loop one would write by hand; uqbench's is
``uqbench.training.classifier.fit``. Prints images per second of both and their ratio (target:
uqbench's epoch within 1.3x of the plain loop; for scale, a plain bf16 compiled WRN-28-10 step
runs at about 10,600 images/s on an H100).

    python benchmarks/image_speed.py --device=cuda --model=wrn28_10 --compile
    python benchmarks/image_speed.py --device=cpu --model=lenet --images=4096   # a quick check
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
import torch.nn.functional as F

from uqbench import models
from uqbench.training.classifier import Recipe, Runtime, fit


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain_loop(model, images, labels, mean, std, runtime, batch_size, epochs) -> float:
    """Seconds per epoch of a hand-written loop (the reference)."""
    optimizer = torch.optim.SGD(
        model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4
    )
    network = torch.compile(model) if runtime.compile else model
    m = torch.tensor(mean, device=images.device).view(1, -1, 1, 1)
    s = torch.tensor(std, device=images.device).view(1, -1, 1, 1)
    n = labels.shape[0] // batch_size * batch_size
    times = []
    for _ in range(epochs):
        synchronize(runtime.device)
        start = time.perf_counter()
        order = torch.randperm(labels.shape[0], device=images.device)[:n]
        for index in order.view(-1, batch_size):
            x = F.pad(images[index], (4, 4, 4, 4))
            b, c, h, w = x.shape[0], x.shape[1], images.shape[-2], images.shape[-1]
            dy, dx = torch.randint(0, 9, (2, b, 1, 1, 1), device=x.device)
            rows = (torch.arange(h, device=x.device).view(1, 1, h, 1) + dy).expand(b, c, h, w + 8)
            x = x.gather(2, rows)
            cols = (torch.arange(w, device=x.device).view(1, 1, 1, w) + dx).expand(b, c, h, w)
            flip = torch.rand(b, 1, 1, 1, device=x.device) < 0.5
            x = x.gather(3, torch.where(flip, w - 1 - (cols - dx) + dx, cols))
            x = ((x.float() / 255 - m) / s).contiguous(memory_format=torch.channels_last)
            with runtime.autocast():
                loss = F.cross_entropy(network(x).float(), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        synchronize(runtime.device)
        times.append(time.perf_counter() - start)
    return min(times[1:] or times)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="wrn28_10")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--batch_size", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=3, help="the first is warm-up")
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    runtime = Runtime.for_device(device, compile=args.compile)
    torch.manual_seed(0)
    images = torch.randint(0, 256, (args.images, 3, 32, 32), dtype=torch.uint8, device=device)
    labels = torch.randint(0, 10, (args.images,), device=device)
    mean, std = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)

    def build():
        torch.manual_seed(0)
        model = models.get(args.model, num_classes=10).to(device)
        return model.to(memory_format=torch.channels_last) if runtime.channels_last else model

    plain = plain_loop(build(), images, labels, mean, std, runtime, args.batch_size, args.epochs)
    recipe = Recipe(
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=0.05, schedule="cosine"
    )
    history = fit(build(), images, labels, mean, std, recipe, runtime, quiet=True)
    ours = min(h["seconds"] for h in history[1:]) if len(history) > 1 else history[0]["seconds"]
    n = args.images // args.batch_size * args.batch_size
    print(
        f"{args.model} on {device} ({runtime.precision}, channels_last={runtime.channels_last}, "
        f"compile={runtime.compile}), batch {args.batch_size}, {n} images per epoch"
    )
    print(f"  plain loop: {n / plain:9.0f} images/s ({plain:.2f} s/epoch)")
    print(f"  uqbench:    {n / ours:9.0f} images/s ({ours:.2f} s/epoch)")
    print(f"  ratio uqbench / plain epoch time: {ours / plain:.2f} (target <= 1.3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
