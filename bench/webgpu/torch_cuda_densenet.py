#!/usr/bin/env python3
"""PyTorch reference on the GPU for bench/webgpu: DenseNet forward and gradient x input, ms per image.

tools/bench_torch_densenet.py times the CPU only (torch.set_num_threads, no --device); this is its CUDA
counterpart, kept separate and dependency-free (torch + torchvision only) so that it runs from the bundle on
a GPU machine without internet.

Usage:
    python3 torch_cuda_densenet.py [--arch densenet201] [--size 224] [--batches 1,8] [--repeats 10]
        [--warmup 3] [--seed 0] [--tf32] [--export REF.safetensors] [--json-out FILE]

Weights: torchvision's own random init after torch.manual_seed(--seed), 3 classes. Input:
torch.randn(max batch, 3, S, S) from torch.Generator().manual_seed(--seed + 1). TF32 is off unless --tf32
(PyTorch allows it for cuDNN convolutions by default on Ampere and later, which changes results at 1e-3).
Timing: CUDA-synchronised wall time; --warmup untimed runs, then --repeats timed ones; median per image.
--export writes the weights (torchvision names), the input (NCHW) and the fp32 logits into one safetensors
file, which densenet-webgpu.js --reference loads to run the same model on webgpu and compare logits.
"""

from __future__ import annotations

import argparse
import array
import json
import statistics
import struct
import sys
import time


def tensor_bytes(torch, t) -> bytes:
    t = t.detach().to("cpu", dtype=torch.float32).contiguous()
    try:
        return t.numpy().tobytes()
    except Exception:  # a torch without numpy: slower, same bytes (x86 is little-endian)
        return array.array("f", t.flatten().tolist()).tobytes()


def write_safetensors(torch, path: str, tensors: "dict[str, object]") -> int:
    """Minimal F32 safetensors writer (header JSON padded to 8 bytes, then the raw little-endian data)."""
    header = {}
    blobs = []
    offset = 0
    for name, t in tensors.items():
        data = tensor_bytes(torch, t)
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)
    return 8 + len(raw) + offset


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", choices=["densenet121", "densenet169", "densenet201"], default="densenet201")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batches", default="1,8")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tf32", action="store_true", help="allow TF32 in cuDNN/cuBLAS (PyTorch's default for convs)")
    p.add_argument("--export", metavar="FILE", help="write weights + input + logits (safetensors) for densenet-webgpu.js")
    p.add_argument("--json-out", metavar="FILE")
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda", help="cpu: only to check this script without a GPU")
    args = p.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",") if b.strip()]
    say = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731

    try:
        import torch
        import torchvision
    except ImportError as e:
        say(f"error: PyTorch/torchvision not importable here ({e}): no CUDA reference")
        return 2
    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        say(f"error: torch {torch.__version__} sees no CUDA device (built for CUDA {torch.version.cuda}): no CUDA reference")
        return 2

    torch.backends.cudnn.allow_tf32 = args.tf32
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    device_name = torch.cuda.get_device_name(0) if cuda else "cpu"
    torch.manual_seed(args.seed)
    model = getattr(torchvision.models, args.arch)(weights=None, num_classes=3).eval()
    g = torch.Generator().manual_seed(args.seed + 1)
    x_all = torch.randn(max(batches), 3, args.size, args.size, generator=g)
    if args.export:
        with torch.no_grad():
            logits = model.to(dev)(x_all.to(dev))
        tensors = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
        tensors["input"] = x_all
        tensors["logits"] = logits
        size = write_safetensors(torch, args.export, tensors)
        say(f"exported weights, input and logits to {args.export} ({size:,} bytes)")
    model = model.to(dev)
    say(f"{args.arch} on {device_name}, torch {torch.__version__} (CUDA {torch.version.cuda}), "
        f"cudnn {torch.backends.cudnn.version()}, tf32 {'on' if args.tf32 else 'off'}")

    def timed(fn, warmup, repeats):
        for _ in range(warmup):
            fn()
        sync()
        out = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            sync()
            out.append((time.perf_counter() - t0) * 1000.0)
        return out

    results = []
    for b in batches:
        x = x_all[:b].to(dev)

        def forward():
            with torch.no_grad():
                return model(x)

        def grad_x_input():
            xg = x.clone().requires_grad_(True)
            out = model(xg)
            out.gather(1, out.argmax(dim=1, keepdim=True)).sum().backward()
            return xg.grad * x

        fwd = timed(forward, args.warmup, args.repeats)
        gxi = timed(grad_x_input, args.warmup, args.repeats)
        model.zero_grad(set_to_none=True)
        row = {
            "batch": b,
            "forward_ms_per_image": round(statistics.median(fwd) / b, 3),
            "grad_x_input_ms_per_image": round(statistics.median(gxi) / b, 3),
        }
        results.append(row)
        say(f"batch {b}: forward {row['forward_ms_per_image']:.2f} ms/img, grad x input {row['grad_x_input_ms_per_image']:.2f} ms/img")

    summary = {
        "backend": f"torch-{args.device}",
        "gpu": device_name,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "tf32": args.tf32,
        "arch": args.arch,
        "size": args.size,
        "repeats": args.repeats,
        "results": results,
    }
    line = json.dumps(summary)
    print(line, flush=True)
    if args.json_out:
        with open(args.json_out, "w") as f:
            f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
