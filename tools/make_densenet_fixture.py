#!/usr/bin/python3
"""Build the tiny DenseNet fixtures in test/fixtures/densenet/ with Debian's PyTorch.

Usage:
    /usr/bin/python3 tools/make_densenet_fixture.py [--out test/fixtures/densenet] [--no-roundtrip]

Model: torchvision.models.DenseNet(growth_rate=8, block_config=(2, 2, 2), num_init_features=16,
bn_size=4, drop_rate=0, num_classes=3), every weight and BatchNorm statistic randomised from a
fixed seed (so the fixtures test the BN/conv arithmetic, not just identity-ish defaults), eval mode.

Writes (see the README.md it also writes for shapes):
  tiny.safetensors               the state_dict (F32, num_batches_tracked skipped)
  tiny-legacy-keys.safetensors   same tensors, old torchvision names (norm.1/conv.1/norm.2/conv.2)
  tiny-module-prefix.safetensors same tensors, every name prefixed "module." (DataParallel)
  tiny-biasfree.safetensors      bias-free copy (BN beta = 0, BN running_mean = 0, linear bias = 0)
  tiny-state-dict.pt             torch.save(state_dict), input for the converter round-trip check
  tiny-io.safetensors            input, features, pool, logits, grad_x_input, biasfree_logits,
                                 biasfree_grad_x_input
  README.md

Everything is deterministic: a second run gives byte-identical files (single thread,
deterministic algorithms, fixed seeds, no timestamps).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import os
import re
import subprocess
import sys
import tempfile
from collections import OrderedDict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no tools/__pycache__ in the working tree
sys.path.insert(0, HERE)

import torch_to_safetensors as tts  # noqa: E402  (also checks that torch imports)
from torch_to_safetensors import read_safetensors, state_dict_to_tensors, write_safetensors  # noqa: E402

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torchvision  # noqa: E402

REPO = os.path.dirname(HERE)
DEFAULT_OUT = os.path.join(REPO, "test", "fixtures", "densenet")

ARCH = OrderedDict(
    growth_rate=8,
    block_config=(2, 2, 2),
    num_init_features=16,
    bn_size=4,
    drop_rate=0,
    num_classes=3,
)
BATCH = 2
SIZE = 64
# Seed picked so that the two samples get different argmax classes (with a top-2 gap > 0.2) in both the
# normal and the bias-free model: grad_x_input then also checks per-sample target selection.
WEIGHT_SEED = 198
INPUT_SEED = 7
SCRIPT = "tools/make_densenet_fixture.py"

_LEGACY_RENAME = re.compile(r"^(.*denselayer\d+\.)(norm|conv)([12])\.")


def log(*a):
    print(*a, flush=True)


def build_model() -> nn.Module:
    torch.manual_seed(WEIGHT_SEED)
    model = torchvision.models.DenseNet(
        growth_rate=ARCH["growth_rate"],
        block_config=ARCH["block_config"],
        num_init_features=ARCH["num_init_features"],
        bn_size=ARCH["bn_size"],
        drop_rate=ARCH["drop_rate"],
        num_classes=ARCH["num_classes"],
    )
    g = torch.Generator().manual_seed(WEIGHT_SEED)

    def normal(t, std, mean=0.0):
        t.copy_(torch.randn(t.shape, generator=g) * std + mean)

    def uniform(t, lo, hi):
        t.copy_(torch.rand(t.shape, generator=g) * (hi - lo) + lo)

    with torch.no_grad():
        for _, m in model.named_modules():  # deterministic module order
            if isinstance(m, nn.Conv2d):
                fan_in = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
                normal(m.weight, math.sqrt(2.0 / fan_in))  # He init: keeps ReLU activations O(1)
                if m.bias is not None:
                    normal(m.bias, 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                uniform(m.weight, 0.5, 1.5)
                normal(m.bias, 0.1)
                normal(m.running_mean, 0.2)
                uniform(m.running_var, 0.5, 2.0)
            elif isinstance(m, nn.Linear):
                normal(m.weight, math.sqrt(2.0 / m.in_features))
                normal(m.bias, 0.5)
    model.eval()
    return model


def biasfree_copy(model: nn.Module) -> nn.Module:
    bf = copy.deepcopy(model)
    with torch.no_grad():
        for m in bf.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
                m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.bias.zero_()
                m.running_mean.zero_()
    bf.eval()
    return bf


def make_input() -> torch.Tensor:
    """Two clearly different smooth images (distinct per channel) plus a little noise, ~N(0,1)-scaled."""
    g = torch.Generator().manual_seed(INPUT_SEED)
    ys = torch.linspace(0.0, 1.0, SIZE).view(SIZE, 1)
    xs = torch.linspace(0.0, 1.0, SIZE).view(1, SIZE)
    x = torch.empty(BATCH, 3, SIZE, SIZE)
    for c in range(3):
        # sample 0: diagonal waves, phase differs by channel
        x[0, c] = 1.5 * torch.sin(2 * math.pi * (1.5 * xs + 1.0 * ys) + c * 2.1) * torch.cos(2 * math.pi * 0.7 * ys)
        # sample 1: an off-centre bright blob (like a lung field) on a vertical gradient
        cx, cy, r = 0.35 + 0.1 * c, 0.55, 0.22
        blob = torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * r * r))
        x[1, c] = 2.5 * blob - 1.2 + 1.0 * (ys - 0.5) - 0.3 * c
    x += 0.15 * torch.randn(x.shape, generator=g)
    return x.contiguous()


def grad_x_input(model: nn.Module, x: torch.Tensor):
    xg = x.clone().requires_grad_(True)
    logits = model(xg)
    target = logits.argmax(dim=1)
    logits.gather(1, target.view(-1, 1)).sum().backward()  # samples are independent in eval mode
    return (xg.grad * x).detach(), target, logits.detach()


def forward_parts(model: nn.Module, x: torch.Tensor):
    with torch.no_grad():
        feats = model.features(x)
        pool = torch.flatten(F.adaptive_avg_pool2d(F.relu(feats), (1, 1)), 1)
        logits = model(x)
        assert torch.allclose(logits, model.classifier(pool), atol=1e-6), "pool/classifier mismatch"
    return feats, pool, logits


def activation_report(model: nn.Module, x: torch.Tensor):
    stats = []
    hooks = []
    names = ["conv0", "pool0", "denseblock1", "transition1", "denseblock2", "transition2", "denseblock3", "norm5"]
    for n in names:
        mod = getattr(model.features, n)
        hooks.append(mod.register_forward_hook(lambda m, i, o, n=n: stats.append((n, o.detach().clone()))))  # clone: forward() relu()s norm5 in place
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    for n, o in stats:
        log(f"  {n:12s} {str(list(o.shape)):18s} mean {o.mean():+8.4f}  std {o.std():8.4f}  min {o.min():+8.4f}  max {o.max():+8.4f}")


def legacy_name(name: str) -> str:
    return _LEGACY_RENAME.sub(lambda m: f"{m.group(1)}{m.group(2)}.{m.group(3)}.", name)


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def assert_same_tensors(a, b, what: str, names_map=lambda n: n):
    keys_a = [names_map(k) for k in a]
    assert keys_a == list(b), f"{what}: names/order differ"
    for k in a:
        ta, tb = a[k], b[names_map(k)]
        assert ta.dtype == tb.dtype and ta.shape == tb.shape, f"{what}: {k}: {ta.dtype}{list(ta.shape)} vs {tb.dtype}{list(tb.shape)}"
        assert torch.equal(ta, tb), f"{what}: {k}: values differ"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Write the tiny DenseNet fixtures.")
    p.add_argument("--out", default=DEFAULT_OUT, help="output directory (default: test/fixtures/densenet)")
    p.add_argument("--no-roundtrip", action="store_true", help="skip the torch_to_safetensors.py round-trip check")
    args = p.parse_args(argv)

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    out = args.out
    os.makedirs(out, exist_ok=True)
    path = lambda n: os.path.join(out, n)  # noqa: E731

    model = build_model()
    bf = biasfree_copy(model)
    x = make_input()

    versions = OrderedDict(torch_version=torch.__version__, torchvision_version=torchvision.__version__)
    arch_meta = OrderedDict(
        arch="densenet-tiny",
        growth_rate=str(ARCH["growth_rate"]),
        block_config=json.dumps(list(ARCH["block_config"])),
        num_init_features=str(ARCH["num_init_features"]),
        bn_size=str(ARCH["bn_size"]),
        drop_rate=str(ARCH["drop_rate"]),
        num_classes=str(ARCH["num_classes"]),
        bn_eps="1e-05",
        input_size=str(SIZE),
        input_shape=json.dumps([BATCH, 3, SIZE, SIZE]),
    )

    # ---- weights -------------------------------------------------------------------------
    quiet = lambda *a: None  # noqa: E731
    sd = model.state_dict()
    tensors = state_dict_to_tensors(sd, log=log)
    n_params = sum(t.numel() for t in tensors.values())
    log(f"tiny DenseNet: {len(tensors)} tensors, {n_params:,} values (weights + BN stats)")
    wmeta = OrderedDict(format="pt", source=SCRIPT, **versions, **arch_meta, weight_seed=str(WEIGHT_SEED))
    write_safetensors(path("tiny.safetensors"), tensors, OrderedDict(wmeta, key_style="torchvision"))
    legacy = OrderedDict((legacy_name(k), v) for k, v in tensors.items())
    n_legacy = sum(1 for a, b in zip(tensors, legacy) if a != b)
    assert n_legacy > 0
    write_safetensors(path("tiny-legacy-keys.safetensors"), legacy, OrderedDict(wmeta, key_style="legacy norm.1/conv.1/norm.2/conv.2"))
    prefixed = OrderedDict(("module." + k, v) for k, v in tensors.items())
    write_safetensors(path("tiny-module-prefix.safetensors"), prefixed, OrderedDict(wmeta, key_style="module. prefix"))
    bf_tensors = state_dict_to_tensors(bf.state_dict(), log=quiet)
    write_safetensors(
        path("tiny-biasfree.safetensors"),
        bf_tensors,
        OrderedDict(wmeta, key_style="torchvision", variant="biasfree: BN bias=0, BN running_mean=0, classifier bias=0"),
    )
    torch.save(sd, path("tiny-state-dict.pt"))

    # ---- forward / gradients -------------------------------------------------------------
    log("activations, sample batch:")
    activation_report(model, x)
    feats, pool, logits = forward_parts(model, x)
    gxi, target, logits_g = grad_x_input(model, x)
    assert torch.allclose(logits_g, logits, atol=1e-6)
    bf_feats, bf_pool, bf_logits = forward_parts(bf, x)
    bf_gxi, bf_target, _ = grad_x_input(bf, x)

    # Bias-free net is positively homogeneous (conv, BN-as-scale, ReLU, max/avg pool, linear):
    # Euler => sum(grad * input) == logit of the target class (= LRP-0 conservation).
    sums = bf_gxi.flatten(1).sum(1)
    picked = bf_logits.gather(1, bf_target.view(-1, 1)).view(-1)
    log(f"biasfree: sum(grad_x_input) {sums.tolist()} vs target logit {picked.tolist()}")
    assert torch.allclose(sums, picked, rtol=1e-4, atol=1e-4), "bias-free grad x input does not sum to the logit"

    frange = (feats.max() - feats.min()).item()
    fdiff = (feats[0] - feats[1]).abs()
    log(f"input    {list(x.shape)} min {x.min():+.4f} max {x.max():+.4f}")
    log(f"features {list(feats.shape)} min {feats.min():+.4f} max {feats.max():+.4f} range {frange:.4f}")
    log(f"  sample difference: max |f0-f1| {fdiff.max():.4f} ({100 * fdiff.max() / frange:.1f}% of range), "
        f"mean {fdiff.mean():.4f} ({100 * fdiff.mean() / frange:.1f}% of range)")
    log(f"pool     {list(pool.shape)} min {pool.min():+.4f} max {pool.max():+.4f}")
    log(f"logits   {list(logits.shape)} {[[round(v, 4) for v in r] for r in logits.tolist()]} target {target.tolist()}")
    log(f"biasfree logits {[[round(v, 4) for v in r] for r in bf_logits.tolist()]} target {bf_target.tolist()}")
    log(f"grad_x_input min {gxi.min():+.5f} max {gxi.max():+.5f}; biasfree min {bf_gxi.min():+.5f} max {bf_gxi.max():+.5f}")
    assert fdiff.max() > 0.1 * frange, "the two samples' features are too similar"
    assert frange > 0.5 and torch.isfinite(feats).all() and torch.isfinite(logits).all(), "degenerate features"
    assert (bf_logits - logits).abs().max() > 0.05, "bias-free logits should differ from the biased ones"
    assert target[0] != target[1] and bf_target[0] != bf_target[1], "samples should have different target classes"

    io = OrderedDict(
        input=x,
        features=feats,
        pool=pool,
        logits=logits,
        grad_x_input=gxi,
        biasfree_features=bf_feats,
        biasfree_pool=bf_pool,
        biasfree_logits=bf_logits,
        biasfree_grad_x_input=bf_gxi,
    )
    io_meta = OrderedDict(
        format="pt",
        source=SCRIPT,
        **versions,
        **arch_meta,
        layout="NCHW",
        input_seed=str(INPUT_SEED),
        weights="tiny.safetensors",
        biasfree_weights="tiny-biasfree.safetensors",
        features="model.features(input): after norm5, before the final ReLU",
        pool="flatten(adaptive_avg_pool2d(relu(features), 1))",
        logits="model(input) = classifier(pool)",
        targets=json.dumps(target.tolist()),
        grad_x_input="d logits[i, targets[i]] / d input[i] * input[i]",
        biasfree_targets=json.dumps(bf_target.tolist()),
        biasfree_grad_x_input="same for tiny-biasfree.safetensors; sums per sample to biasfree_logits[i, biasfree_targets[i]]",
    )
    write_safetensors(path("tiny-io.safetensors"), io, io_meta)

    # ---- checks: read back, legacy/prefix equivalence, converter round trip ---------------
    back, meta = read_safetensors(path("tiny.safetensors"))
    assert_same_tensors(tensors, back, "tiny.safetensors read-back")
    assert meta["growth_rate"] == "8"
    lg, _ = read_safetensors(path("tiny-legacy-keys.safetensors"))
    assert_same_tensors(tensors, lg, "legacy keys", legacy_name)
    assert all(tts.canonical_name(k) in tensors for k in lg)
    mp, _ = read_safetensors(path("tiny-module-prefix.safetensors"))
    assert_same_tensors(tensors, mp, "module prefix", lambda k: "module." + k)
    iob, _ = read_safetensors(path("tiny-io.safetensors"))
    assert_same_tensors(io, iob, "tiny-io read-back")
    # the legacy-key file, mapped the way torchvision does, gives the same model
    m2 = torchvision.models.DenseNet(**{k: v for k, v in ARCH.items()})
    missing, unexpected = m2.load_state_dict(OrderedDict((tts.canonical_name(k), v) for k, v in lg.items()), strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
    m2.eval()
    with torch.no_grad():
        assert torch.equal(m2(x), logits), "reloaded weights give different logits"
    log(f"read-back OK; legacy-key file has {n_legacy} renamed tensors and reproduces the logits")

    if not args.no_roundtrip:
        with tempfile.TemporaryDirectory() as td:
            rt = os.path.join(td, "rt.safetensors")
            cmd = [sys.executable, os.path.join(HERE, "torch_to_safetensors.py"), path("tiny-state-dict.pt"), rt]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                sys.stderr.write(r.stdout + r.stderr)
                raise SystemExit("converter round trip failed")
            rtt, rtm = read_safetensors(rt)
            assert_same_tensors(back, rtt, "converter round trip")
            assert rtm["source"] == "tiny-state-dict.pt" and rtm["format"] == "pt"
            log(f"converter round trip OK: tiny-state-dict.pt -> {len(rtt)} tensors equal to tiny.safetensors")

    write_readme(out, tensors, io, n_params, n_legacy, target, bf_target, feats, logits, bf_logits)
    total = 0
    for n in sorted(os.listdir(out)):
        s = os.path.getsize(path(n))
        total += s
        log(f"  {s:>9,}  {n}")
    log(f"  {total:>9,}  total")
    return 0


def write_readme(out, tensors, io, n_params, n_legacy, target, bf_target, feats, logits, bf_logits):
    files = [
        "tiny.safetensors",
        "tiny-legacy-keys.safetensors",
        "tiny-module-prefix.safetensors",
        "tiny-biasfree.safetensors",
        "tiny-state-dict.pt",
        "tiny-io.safetensors",
    ]
    names = list(tensors)
    fmt = lambda t: "[" + ", ".join(str(s) for s in t.shape) + "]"  # noqa: E731
    L = []
    L.append("# Tiny DenseNet fixtures")
    L.append("")
    L.append("Reference weights and PyTorch outputs for testing the TensorFlow.js DenseNet port and the safetensors")
    L.append("importer. Generated by `tools/make_densenet_fixture.py`; **CI does not rebuild them** (it has no PyTorch):")
    L.append("they are committed as is. To regenerate (Debian's PyTorch, not the pyenv python):")
    L.append("")
    L.append("```sh")
    L.append("apt-get install python3-torch python3-torchvision   # once")
    L.append("/usr/bin/python3 tools/make_densenet_fixture.py      # writes test/fixtures/densenet/*")
    L.append("```")
    L.append("")
    L.append(f"Made with torch {torch.__version__}, torchvision {torchvision.__version__} (Debian 12 packages), single thread.")
    L.append("The script is deterministic: running it twice gives byte-identical files (sha256 below); another torch")
    L.append("version may change the last bits of the float outputs (and changes the `torch_version` metadata).")
    L.append("")
    L.append("## Model")
    L.append("")
    L.append("```python")
    L.append("torchvision.models.DenseNet(growth_rate=8, block_config=(2, 2, 2), num_init_features=16,")
    L.append("                            bn_size=4, drop_rate=0, num_classes=3).eval()")
    L.append("```")
    L.append("")
    L.append("Every weight is random (seed %d), so that BN and conv arithmetic is exercised:" % WEIGHT_SEED)
    L.append("conv weights normal(0, sqrt(2 / fan_in)) (He), BN weight uniform(0.5, 1.5), BN bias normal(0, 0.1),")
    L.append("BN running_mean normal(0, 0.2), BN running_var uniform(0.5, 2.0), classifier weight")
    L.append("normal(0, sqrt(2 / 32)), classifier bias normal(0, 0.5). BN eps = 1e-5. torchvision's DenseNet convs")
    L.append("have no bias. Channels: conv0 -> 16, denseblock1 -> 32, transition1 -> 16, denseblock2 -> 32,")
    L.append("transition2 -> 16, denseblock3 -> 32, norm5 (32). A 64x64 input gives 4x4 features.")
    L.append("")
    L.append("## Files")
    L.append("")
    L.append("All `.safetensors` files hold little-endian F32 tensors only; `__metadata__` holds `format` (\"pt\"),")
    L.append("`source`, `torch_version`, `torchvision_version` and the architecture (`growth_rate`, `block_config`")
    L.append("(JSON), `num_init_features`, `bn_size`, `drop_rate`, `num_classes`, `bn_eps`, `input_size`,")
    L.append("`input_shape`), all as strings.")
    L.append("")
    L.append(f"- `tiny.safetensors`: the state_dict, {len(tensors)} tensors, {n_params:,} values, torchvision key names,")
    L.append(f"  state_dict order, `num_batches_tracked` skipped. First `{names[0]}` {fmt(tensors[names[0]])},")
    L.append(f"  last `{names[-1]}` {fmt(tensors[names[-1]])}.")
    L.append(f"- `tiny-legacy-keys.safetensors`: the same tensors; the {n_legacy} dense-layer tensors use the old torchvision")
    L.append("  names (`features.denseblock1.denselayer1.norm.1.weight`, `conv.1`, `norm.2`, `conv.2` instead of")
    L.append("  `norm1`/`conv1`/`norm2`/`conv2`), as in the original torchvision/CheXNet checkpoints.")
    L.append("- `tiny-module-prefix.safetensors`: the same tensors with every name prefixed `module.` (DataParallel).")
    L.append("- `tiny-biasfree.safetensors`: a bias-free copy: every BN bias and running_mean set to 0 and the")
    L.append("  classifier bias set to 0 (BN weight and running_var kept), torchvision key names.")
    L.append("- `tiny-state-dict.pt`: `torch.save(model.state_dict())` of the same model (includes")
    L.append("  `num_batches_tracked`); the script converts it with `tools/torch_to_safetensors.py` and checks that")
    L.append("  the result equals `tiny.safetensors` tensor for tensor.")
    L.append("- `tiny-io.safetensors`: inputs and PyTorch outputs (NCHW, F32); `__metadata__` also has `targets` and")
    L.append("  `biasfree_targets` (JSON lists, argmax of the logits) and a description of each tensor:")
    L.append("")
    L.append("  | tensor | shape | what |")
    L.append("  | --- | --- | --- |")
    desc = OrderedDict(
        input="two 64x64 3-channel images: smooth waves / an off-centre blob, each channel different, plus noise "
        f"({io['input'].min().item():.2f} .. {io['input'].max().item():.2f})",
        features="`model.features(input)`: after norm5, BEFORE the final ReLU",
        pool="`flatten(adaptive_avg_pool2d(relu(features), 1))`",
        logits="`model(input)` = `classifier(pool)`",
        grad_x_input="d logits[i, targets[i]] / d input[i], times input[i]",
        biasfree_features="as `features`, bias-free model",
        biasfree_pool="as `pool`, bias-free model",
        biasfree_logits="as `logits`, bias-free model",
        biasfree_grad_x_input="as `grad_x_input` for the bias-free model and `biasfree_targets`; per sample it sums to "
        "`biasfree_logits[i, biasfree_targets[i]]` (the net is positively homogeneous: the LRP-0 conservation reference)",
    )
    for k, t in io.items():
        L.append(f"  | `{k}` | {fmt(t)} | {desc[k]} |")
    L.append("")
    L.append(f"Values for a quick look: features {feats.min().item():+.4f} .. {feats.max().item():+.4f}; logits")
    L.append(f"{[[round(v, 4) for v in r] for r in logits.tolist()]} (targets {target.tolist()}); bias-free logits")
    L.append(f"{[[round(v, 4) for v in r] for r in bf_logits.tolist()]} (targets {bf_target.tolist()}).")
    L.append("Suggested tolerance for a float32 port: about 1e-4 times each tensor's largest absolute value.")
    L.append("")
    L.append("## sha256")
    L.append("")
    L.append("```")
    for f in files:
        L.append(f"{sha256(os.path.join(out, f))}  {f}")
    L.append("```")
    L.append("")
    with open(os.path.join(out, "README.md"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(L))


if __name__ == "__main__":
    sys.exit(main())
