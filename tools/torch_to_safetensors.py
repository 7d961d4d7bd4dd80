#!/usr/bin/python3
"""Convert a PyTorch DenseNet checkpoint (.pt/.pth, or a .safetensors state dict) into a safetensors file.

Usage:
    /usr/bin/python3 tools/torch_to_safetensors.py CHECKPOINT.pt OUT.safetensors \
        [--arch densenet201|densenet121|densenet169] [--num-classes 3]

The checkpoint may be
  * a state_dict (a mapping of name -> tensor),
  * a dict holding the state_dict under `state_dict`, `model_state_dict` or `model`
    (the value may itself be a whole nn.Module), or
  * a whole pickled nn.Module, or
  * a safetensors file holding a state_dict (as `safetensors.torch.save_file(model.state_dict(), ...)` or the
    Hugging Face hub write them), recognised by its header, not by its name: it is never unpickled.

Every floating-point tensor is written as little-endian F32 under exactly the name it has in
the state_dict: no `module.` stripping and no renaming of the old torchvision
`norm.1`/`conv.2` keys (the TypeScript importer deals with both). `num_batches_tracked`
counters are skipped, as is any other non-float tensor (each skip is reported).

With --arch, the tensors are checked against the torchvision architecture of that name
(names, after normalising `module.` prefixes and old-style keys for the comparison only, and
shapes); a mismatch is an error. --num-classes sets the classifier size for that check; by
default it is read from `classifier.weight`.

The safetensors writer and reader in this file (`write_safetensors`, `read_safetensors`) are
plain Python (struct + json + numpy) and are shared by the other scripts in tools/.

Run with Debian's Python: /usr/bin/python3 (python3-torch, python3-torchvision).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import struct
import sys
from collections import OrderedDict

import numpy as np

try:
    import torch
except ImportError:  # pragma: no cover - environment problem
    sys.stderr.write(
        "error: cannot import torch. Run this script with Debian's /usr/bin/python3 "
        "(apt-get install python3-torch python3-torchvision).\n"
    )
    sys.exit(2)

ARCHS = ("densenet121", "densenet169", "densenet201")
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model")

# torch dtype <-> safetensors dtype string (reader side accepts a few more than we write)
_ST_TO_NP = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
# bfloat16 has no numpy dtype: read as uint16, then widened to float32 (its top 16 bits).
_BF16 = "BF16"


class ConversionError(Exception):
    """A problem with the input that should be reported without a traceback."""


# --------------------------------------------------------------------------------------
# safetensors writer / reader
# --------------------------------------------------------------------------------------


def write_safetensors(path: str, tensors: "dict[str, torch.Tensor]", metadata: "dict[str, str] | None" = None) -> int:
    """Write `tensors` (name -> tensor, in the given order) as F32 safetensors.

    Layout: 8-byte little-endian header length N, N bytes of UTF-8 JSON header (padded with
    spaces to a multiple of 8), then the raw little-endian tensor bytes, contiguous and in
    header order. `metadata` values are converted to strings. Returns the file size in bytes.
    The output is byte-for-byte deterministic for equal inputs.
    """
    header: "OrderedDict[str, object]" = OrderedDict()
    if metadata:
        header["__metadata__"] = OrderedDict((str(k), str(v)) for k, v in metadata.items())
    blobs = []
    offset = 0
    for name, t in tensors.items():
        if name == "__metadata__":
            raise ValueError("a tensor may not be called __metadata__")
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name}: not a tensor ({type(t).__name__})")
        if not t.is_floating_point():
            raise TypeError(f"{name}: only float tensors are written (got {t.dtype})")
        arr = t.detach().to("cpu", torch.float32).contiguous().numpy().astype("<f4", copy=False)
        data = arr.tobytes(order="C")
        header[name] = OrderedDict(
            (("dtype", "F32"), ("shape", list(arr.shape)), ("data_offsets", [offset, offset + len(data)]))
        )
        blobs.append(data)
        offset += len(data)
    hbytes = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    hbytes += b" " * ((-len(hbytes)) % 8)
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(hbytes)))
            f.write(hbytes)
            for b in blobs:
                f.write(b)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return 8 + len(hbytes) + offset


def read_safetensors(path: str) -> "tuple[OrderedDict[str, torch.Tensor], dict[str, str]]":
    """Read a safetensors file; returns (name -> tensor in header order, metadata)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ConversionError(f"cannot read {path}: {e.strerror or e}") from e
    if len(raw) < 8:
        raise ConversionError(f"{path}: too short to be a safetensors file ({len(raw)} bytes)")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise ConversionError(f"{path}: header length {n} exceeds file size {len(raw)}")
    try:
        header = json.loads(raw[8 : 8 + n].decode("utf-8"), object_pairs_hook=OrderedDict)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConversionError(f"{path}: header is not valid JSON: {e}") from e
    metadata = dict(header.pop("__metadata__", None) or {})
    data = memoryview(raw)[8 + n :]
    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for name, info in header.items():
        bf16 = info.get("dtype") == _BF16
        dt = np.dtype("<u2") if bf16 else _ST_TO_NP.get(info.get("dtype"))
        if dt is None:
            raise ConversionError(f"{path}: {name}: unsupported dtype {info.get('dtype')!r}")
        begin, end = info["data_offsets"]
        shape = [int(s) for s in info["shape"]]
        count = int(np.prod(shape)) if shape else 1
        if end - begin != count * dt.itemsize or end > len(data) or begin < 0:
            raise ConversionError(f"{path}: {name}: bad data_offsets {begin}..{end} for shape {shape}")
        arr = np.frombuffer(data[begin:end], dtype=dt).reshape(shape).astype(dt.newbyteorder("="), copy=True)
        if bf16:
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        out[name] = torch.from_numpy(arr)
    return out, metadata


# --------------------------------------------------------------------------------------
# checkpoint handling
# --------------------------------------------------------------------------------------


def is_safetensors(path: str) -> bool:
    """Whether the file starts as a safetensors file does: an 8-byte little-endian header length that fits the
    file, then a JSON object. A torch checkpoint starts with a zip signature (PK) or a pickle opcode (0x80)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        start = f.read(9)
    if len(start) < 9:
        return False
    (n,) = struct.unpack("<Q", start[:8])
    return 2 <= n <= size - 8 and start[8:9] == b"{"


def load_checkpoint(path: str):
    """A safetensors file as its mapping of tensors; anything else through torch.load on CPU with full
    unpickling (weights_only=False). Clear errors."""
    if not os.path.exists(path):
        raise ConversionError(f"{path}: no such file")
    if not os.path.isfile(path):
        raise ConversionError(f"{path}: not a regular file")
    if os.path.getsize(path) == 0:
        raise ConversionError(f"{path}: file is empty")
    if is_safetensors(path):
        tensors, _ = read_safetensors(path)
        if not tensors:
            raise ConversionError(f"{path}: the safetensors file holds no tensors")
        return SafetensorsStateDict(tensors)
    if path.endswith(".safetensors"):
        # Named as one but not one: unpickling it would only report a confusing pickle error.
        raise ConversionError(
            f"{path}: not a safetensors file (it does not start with an 8-byte header length and a JSON header); "
            "the file is damaged or was renamed"
        )
    kwargs = {"map_location": "cpu"}
    try:
        try:
            return torch.load(path, weights_only=False, **kwargs)
        except TypeError as e:  # torch older than 1.13 has no weights_only
            if "weights_only" not in str(e):
                raise
            return torch.load(path, **kwargs)
    except (ModuleNotFoundError, AttributeError) as e:
        raise ConversionError(
            f"{path}: the checkpoint pickles a whole model whose class cannot be imported here ({e}). "
            "Re-save it as a state_dict (torch.save(model.state_dict(), ...)) or run this script "
            "where that class is importable."
        ) from e
    except Exception as e:  # zip errors, pickle errors, truncated files, ...
        raise ConversionError(
            f"{path}: not a readable PyTorch checkpoint ({type(e).__name__}: {e})"
        ) from e


class SafetensorsStateDict(OrderedDict):
    """The tensors of a safetensors input: a state_dict, told apart so that the log and metadata say where it
    came from."""


def _is_tensor_mapping(obj) -> bool:
    return isinstance(obj, dict) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    )


def extract_state_dict(obj) -> "tuple[OrderedDict[str, torch.Tensor], str]":
    """Find the state_dict in a loaded checkpoint. Returns (state_dict, description)."""
    if isinstance(obj, torch.nn.Module):
        return OrderedDict(obj.state_dict()), f"whole model ({type(obj).__name__})"
    if isinstance(obj, SafetensorsStateDict):
        return OrderedDict(obj), "safetensors state_dict"
    if isinstance(obj, dict):
        for key in STATE_DICT_KEYS:
            if key in obj:
                inner = obj[key]
                if isinstance(inner, torch.nn.Module):
                    return OrderedDict(inner.state_dict()), f"dict[{key!r}] = whole model ({type(inner).__name__})"
                if _is_tensor_mapping(inner):
                    return OrderedDict(inner), f"dict[{key!r}] = state_dict"
        if _is_tensor_mapping(obj):
            return OrderedDict(obj), "state_dict"
        # a state_dict with a few non-tensor extras (e.g. _metadata is an attribute, not a key)
        tensors = OrderedDict((k, v) for k, v in obj.items() if isinstance(v, torch.Tensor))
        if tensors and len(tensors) >= len(obj) // 2:
            dropped = [k for k in obj if k not in tensors]
            return tensors, f"state_dict (ignoring non-tensor entries: {', '.join(map(str, dropped))})"
        keys = ", ".join(repr(k) for k in list(obj)[:10])
        raise ConversionError(
            f"checkpoint is a dict without a state_dict: no key among {', '.join(STATE_DICT_KEYS)} "
            f"holds tensors or a model (top-level keys: {keys})"
        )
    raise ConversionError(f"checkpoint holds a {type(obj).__name__}, not a state_dict or a model")


def state_dict_to_tensors(state_dict, log=print) -> "OrderedDict[str, torch.Tensor]":
    """Keep float tensors (as F32) under their exact names; skip and report the rest."""
    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    skipped_nbt = []
    for name, t in state_dict.items():
        if name.endswith("num_batches_tracked"):
            skipped_nbt.append(name)
            continue
        if not t.is_floating_point():
            log(f"skipping {name}: non-float tensor ({t.dtype}, shape {list(t.shape)})")
            continue
        if t.dtype != torch.float32:
            log(f"note: {name} is {t.dtype}, written as F32")
        out[name] = t.detach().to("cpu", torch.float32).contiguous()
    if skipped_nbt:
        log(f"skipped {len(skipped_nbt)} num_batches_tracked counter(s) (BatchNorm bookkeeping, not weights)")
    return out


_LEGACY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def _strip_module(name: str) -> str:
    while name.startswith("module."):
        name = name[len("module.") :]
    return name


def canonical_name(name: str) -> str:
    """For comparisons only: strip `module.` prefixes, map `norm.1` -> `norm1` etc."""
    name = _strip_module(name)
    m = _LEGACY.match(name)
    return m.group(1) + m.group(2) if m else name


def check_against_arch(tensors, arch: str, num_classes: "int | None") -> int:
    """Compare names and shapes with torchvision's `arch`; raise ConversionError on mismatch."""
    import torchvision

    canon = {}
    for name, t in tensors.items():
        c = canonical_name(name)
        if c in canon:
            raise ConversionError(f"two tensors map to the same parameter {c!r}")
        canon[c] = t
    if num_classes is None:
        w = canon.get("classifier.weight")
        if w is None:
            raise ConversionError("no classifier.weight; pass --num-classes")
        num_classes = int(w.shape[0])
    model = getattr(torchvision.models, arch)(weights=None, num_classes=num_classes)
    expected = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    missing = sorted(set(expected) - set(canon))
    unexpected = sorted(set(canon) - set(expected))
    wrong = [
        f"{k}: checkpoint {list(canon[k].shape)} vs {arch} {list(expected[k].shape)}"
        for k in expected
        if k in canon and tuple(canon[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or wrong:
        lines = [f"checkpoint does not match torchvision {arch} with {num_classes} classes:"]
        for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", wrong)):
            if items:
                lines.append(f"  {label} ({len(items)}): " + "; ".join(items[:8]) + (" ..." if len(items) > 8 else ""))
        raise ConversionError("\n".join(lines))
    return num_classes


def convert(checkpoint: str, out: str, arch: "str | None" = None, num_classes: "int | None" = None, log=print):
    obj = load_checkpoint(checkpoint)
    state_dict, kind = extract_state_dict(obj)
    log(f"loaded {checkpoint}: {kind}, {len(state_dict)} entries")
    tensors = state_dict_to_tensors(state_dict, log=log)
    if not tensors:
        raise ConversionError(f"{checkpoint}: no float tensors to write")
    metadata = OrderedDict(
        (("format", "pt"), ("source", os.path.basename(checkpoint)), ("torch_version", torch.__version__))
    )
    if isinstance(obj, SafetensorsStateDict):
        metadata["source_format"] = "safetensors"
    if arch:
        n = check_against_arch(tensors, arch, num_classes)
        metadata["arch"] = arch
        metadata["num_classes"] = str(n)
        log(f"matches torchvision {arch} with {n} classes")
    elif num_classes is not None:
        metadata["num_classes"] = str(num_classes)
    size = write_safetensors(out, tensors, metadata)
    names = list(tensors)
    total = sum(t.numel() for t in tensors.values())
    log(f"wrote {out}: {len(tensors)} tensors, {total:,} parameters (incl. BN running stats), {size:,} bytes")
    log(f"  first: {names[0]} {list(tensors[names[0]].shape)}")
    log(f"  last:  {names[-1]} {list(tensors[names[-1]].shape)}")
    prefixed = sum(1 for n in names if n.startswith("module."))
    legacy = sum(1 for n in names if _LEGACY.match(_strip_module(n)))
    if prefixed:
        log(f"  note: {prefixed} names carry a 'module.' prefix (kept as is)")
    if legacy:
        log(f"  note: {legacy} names use the old torchvision 'norm.1'/'conv.2' style (kept as is)")
    return tensors, metadata


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "checkpoint",
        help="PyTorch checkpoint (.pt/.pth: state_dict, dict with a state_dict, or a whole model) or a .safetensors state_dict",
    )
    p.add_argument("out", help="output .safetensors file")
    p.add_argument("--arch", choices=ARCHS, help="check names/shapes against this torchvision architecture")
    p.add_argument("--num-classes", type=int, help="classifier size for --arch (default: read from classifier.weight)")
    args = p.parse_args(argv)
    if args.num_classes is not None and args.num_classes < 1:
        p.error("--num-classes must be positive")
    try:
        convert(args.checkpoint, args.out, args.arch, args.num_classes)
    except ConversionError as e:
        sys.stderr.write(f"error: {e}\n")
        return 1
    except OSError as e:
        sys.stderr.write(f"error: cannot write {args.out}: {e.strerror or e}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
