#!/usr/bin/python3
"""Time a torchvision DenseNet on the CPU with PyTorch, as a reference for the TensorFlow.js port.

Usage:
    /usr/bin/python3 tools/bench_torch_densenet.py --arch densenet201 --batch 1 --threads 2 \
        --size 224 --repeats 10 [--num-classes 3] [--weights FILE.safetensors] [--grad-x-input] \
        [--export-weights OUT.safetensors] [--json]

Weights are random from a fixed seed (torchvision's own init after torch.manual_seed(--seed))
unless --weights gives a safetensors file written by tools/torch_to_safetensors.py (names may
carry `module.` prefixes or the old `norm.1`/`conv.2` style). --export-weights writes the weights
used, so the TypeScript side can load exactly the same model.

Timing: torch.set_num_threads(--threads); eval mode; 2 warm-up runs under no_grad; then
--repeats timed forward passes under no_grad; the result is the median time per image
(median batch time / batch). With --grad-x-input, also 2 warm-up + --repeats timed runs of
forward + backward of the top-class logit, gradient times input (per image as above).

Note: Debian's python3-torch is built with BLAS_INFO=generic and uses whatever libblas.so.3 the
alternatives system selects; the default is the slow reference BLAS. PyTorch 1.13 runs most convs
through oneDNN (fast), but at batch 1 it sends 1x1 convs with one thread, and small convs (input
C*H*W <= 20480: e.g. DenseNet's last dense block at 224x224) through im2col + BLAS. So with the
reference BLAS, --threads 1 at batch 1 is about 10x slower than --threads 2, and about 20% of a
densenet201 batch-1 forward at 2 threads is that path. The JSON reports the BLAS in use.

Output: human-readable lines then one JSON line; with --json only the JSON line on stdout
(progress goes to stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import time
from collections import OrderedDict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no tools/__pycache__ in the working tree
sys.path.insert(0, HERE)

from torch_to_safetensors import (  # noqa: E402
    ARCHS,
    ConversionError,
    canonical_name,
    read_safetensors,
    state_dict_to_tensors,
    write_safetensors,
)

import torch  # noqa: E402
import torchvision  # noqa: E402


def build_model(arch: str, num_classes: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return getattr(torchvision.models, arch)(weights=None, num_classes=num_classes)


def load_weights(model: torch.nn.Module, path: str) -> None:
    tensors, _ = read_safetensors(path)
    sd = OrderedDict()
    for name, t in tensors.items():
        c = canonical_name(name)
        if c in sd:
            raise ConversionError(f"{path}: two tensors map to {c}")
        sd[c] = t
    expected = model.state_dict()
    wrong = [k for k in sd if k in expected and tuple(sd[k].shape) != tuple(expected[k].shape)]
    if wrong:
        raise ConversionError(
            f"{path}: shape mismatch for {len(wrong)} tensor(s), e.g. {wrong[0]}: "
            f"{list(sd[wrong[0]].shape)} vs {list(expected[wrong[0]].shape)}"
        )
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ConversionError(
            f"{path}: does not match the model: {len(missing)} missing (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})"
        )


def num_classes_in(path: str) -> "int | None":
    tensors, _ = read_safetensors(path)
    for name, t in tensors.items():
        if canonical_name(name) == "classifier.weight":
            return int(t.shape[0])
    return None


def blas_info() -> str:
    """BLAS_INFO from torch's build config, plus the library libblas.so.3 resolves to (Debian alternatives)."""
    cfg = torch.__config__.show()
    m = re.search(r"BLAS_INFO=([^,\s]+)", cfg)
    info = m.group(1) if m else "unknown"
    lib = "/usr/lib/x86_64-linux-gnu/libblas.so.3"
    if os.path.exists(lib):
        info += f" ({os.path.realpath(lib)})"
    return info


def time_runs(fn, warmup: int, repeats: int) -> "list[float]":
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return times


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Benchmark a torchvision DenseNet on the CPU.")
    p.add_argument("--arch", choices=ARCHS, default="densenet201")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--size", type=int, default=224, help="input height = width")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--num-classes", type=int, help="classifier size (default: from --weights, else 3)")
    p.add_argument("--seed", type=int, default=0, help="seed for the random weights and the input")
    p.add_argument("--weights", help="safetensors file (from tools/torch_to_safetensors.py) to load")
    p.add_argument("--export-weights", metavar="OUT", help="write the weights used to OUT.safetensors")
    p.add_argument("--grad-x-input", action="store_true", help="also time forward+backward, gradient x input")
    p.add_argument("--json", action="store_true", help="print only the JSON line on stdout")
    args = p.parse_args(argv)
    for k in ("batch", "threads", "size", "repeats"):
        if getattr(args, k) < 1:
            p.error(f"--{k} must be positive")

    say = (lambda *a: print(*a, file=sys.stderr, flush=True)) if args.json else (lambda *a: print(*a, flush=True))

    try:
        num_classes = args.num_classes
        if num_classes is None:
            num_classes = (num_classes_in(args.weights) if args.weights else None) or 3
        torch.set_num_threads(args.threads)
        model = build_model(args.arch, num_classes, args.seed)
        if args.weights:
            load_weights(model, args.weights)
            say(f"loaded {args.weights}")
        model.eval()
        if args.export_weights:
            tensors = state_dict_to_tensors(model.state_dict(), log=lambda *a: None)
            meta = OrderedDict(
                format="pt",
                source=os.path.basename(args.weights) if args.weights else f"torchvision {args.arch}, torch.manual_seed({args.seed})",
                torch_version=torch.__version__,
                torchvision_version=torchvision.__version__,
                arch=args.arch,
                num_classes=str(num_classes),
            )
            size = write_safetensors(args.export_weights, tensors, meta)
            say(f"exported {len(tensors)} tensors to {args.export_weights} ({size:,} bytes)")
    except ConversionError as e:
        sys.stderr.write(f"error: {e}\n")
        return 1

    g = torch.Generator().manual_seed(args.seed + 1)
    x = torch.randn(args.batch, 3, args.size, args.size, generator=g)
    n_params = sum(t.numel() for t in model.parameters())
    blas = blas_info()
    if "/blas/libblas.so" in blas:
        # PyTorch 1.13 sends a conv to its im2col+GEMM path (i.e. to BLAS) instead of oneDNN when the batch is
        # 1 and either the conv is 1x1 and only one thread is used, or the conv input is small
        # (C*H*W <= 20480, e.g. DenseNet's last block at 224x224). With Debian's reference BLAS that path is
        # about 10x slower than oneDNN.
        say(f"warning: libblas.so.3 is the reference BLAS ({blas}); batch-1 convs that PyTorch routes to BLAS "
            "(1x1 convs when --threads 1, small late-block convs always) are slow. libopenblas0-pthread fixes that.")
    say(f"{args.arch}: {n_params:,} parameters, {num_classes} classes, input {list(x.shape)}, "
        f"torch {torch.__version__} threads {torch.get_num_threads()}")

    def forward():
        with torch.no_grad():
            return model(x)

    fwd = time_runs(forward, args.warmup, args.repeats)
    logits = forward()
    say(f"forward: median {statistics.median(fwd):.1f} ms/batch (min {min(fwd):.1f}, max {max(fwd):.1f}), "
        f"{statistics.median(fwd) / args.batch:.1f} ms/image")

    gxi_times = None
    if args.grad_x_input:
        def grad_x_input():
            xg = x.clone().requires_grad_(True)
            out = model(xg)
            target = out.argmax(dim=1, keepdim=True)
            out.gather(1, target).sum().backward()
            return xg.grad * x

        gxi_times = time_runs(grad_x_input, args.warmup, args.repeats)
        model.zero_grad(set_to_none=True)
        say(f"grad x input: median {statistics.median(gxi_times):.1f} ms/batch (min {min(gxi_times):.1f}, "
            f"max {max(gxi_times):.1f}), {statistics.median(gxi_times) / args.batch:.1f} ms/image")

    result = OrderedDict(
        arch=args.arch,
        batch=args.batch,
        threads=args.threads,
        size=args.size,
        repeats=args.repeats,
        num_classes=num_classes,
        weights=args.weights or f"random(seed={args.seed})",
        torch=torch.__version__,
        torchvision=torchvision.__version__,
        mkldnn=bool(torch.backends.mkldnn.is_available()),
        blas=blas,
        cpu=platform.processor() or platform.machine(),
        ms_per_image_forward=round(statistics.median(fwd) / args.batch, 3),
        ms_per_image_grad_x_input=round(statistics.median(gxi_times) / args.batch, 3) if gxi_times else None,
        ms_per_batch_forward=[round(t, 3) for t in fwd],
        top_class=logits.argmax(dim=1).tolist(),
    )
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
