#!/usr/bin/env bash
# Runs on the GPU machine, from the unpacked bundle or from the repository with the bundle's path:
#   bash bench/webgpu/run.sh [dist/webgpu-bench/cxr-webgpu-bench.tar.gz] [densenet-webgpu.js options...]
# Prints the GPU, the Vulkan setup Dawn will see, PyTorch CUDA forward and gradient x input (the reference,
# same card, same run), then TF.js webgpu forward and LRP on DenseNet-201 at batch 1 and 8, in ms/img.
# Writes summary.txt, torch-cuda.json and webgpu.json under $OUT (or a temporary folder, printed).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ -f "${1:-}" ]; then
  work=$(mktemp -d)
  tar xzf "$1" -C "$work"
  shift
  exec bash "$work/cxr-webgpu-bench/run.sh" "$@"
fi
if [ ! -x "$here/node/bin/node" ]; then
  echo "usage: bash bench/webgpu/run.sh BUNDLE.tar.gz (build it with bench/webgpu/make-bundle.sh)" >&2
  exit 2
fi
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
say() { echo "$*" | tee -a "$out/summary.txt"; }
say "== machine: $(uname -srm); $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
say "== GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -3)"
say "== NVIDIA_DRIVER_CAPABILITIES=${NVIDIA_DRIVER_CAPABILITIES:-unset}"

# Vulkan, as Dawn will load it: the loader (libvulkan.so.1) and an NVIDIA ICD.
fallback=""
ldconfig -p | grep -q 'libvulkan\.so\.1 ' || fallback="libvulkan.so.1"
if ! grep -qa GLIBCXX_3.4.30 "$(ldconfig -p | awk '/libstdc\+\+\.so\.6 .*x86-64/{print $NF; exit}')" 2>/dev/null; then
  fallback="$fallback libstdc++.so.6"
fi
if [ -n "$fallback" ]; then
  mkdir -p "$out/lib"
  for l in $fallback; do cp "$here/lib-fallback/$l" "$out/lib/"; done
  export LD_LIBRARY_PATH="$out/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  say "== using the bundle's $fallback (Debian 12) for lack of the machine's own"
fi
icds=$(ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json /usr/local/share/vulkan/icd.d/*.json /usr/local/nvidia/share/vulkan/icd.d/*.json 2>/dev/null | tr '\n' ' ')
say "== Vulkan ICDs: ${icds:-none}"
# Some GPU images mount the driver under /usr/local/nvidia, outside the loader's search paths.
for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
  [ -d "$d" ] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d"
done
nv_icd=$(ls /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd*.json 2>/dev/null | head -1)
if [ -n "$nv_icd" ]; then
  export VK_DRIVER_FILES="$nv_icd" VK_ICD_FILENAMES="$nv_icd"
  say "== using $nv_icd: $(tr -d '\n' <"$nv_icd" | head -c 300)"
fi
if ! echo "$icds" | grep -q nvidia; then
  glx=$(ldconfig -p | awk '/libGLX_nvidia\.so\.0 /{print $NF; exit}')
  if [ -n "$glx" ]; then
    # The driver's Vulkan implementation is in libGLX_nvidia; containers often have it but not the JSON.
    printf '{ "file_format_version": "1.0.0", "ICD": { "library_path": "%s", "api_version": "1.3.0" } }\n' "$glx" >"$out/nvidia_icd.json"
    export VK_DRIVER_FILES="$out/nvidia_icd.json" VK_ICD_FILENAMES="$out/nvidia_icd.json"
    say "== wrote $out/nvidia_icd.json for $glx"
  else
    say "== no NVIDIA Vulkan driver here (no nvidia_icd.json, no libGLX_nvidia.so.0; a container needs the 'graphics'"
    say "   driver capability, NVIDIA_DRIVER_CAPABILITIES=all): webgpu will find no GPU adapter"
  fi
fi

# PyTorch CUDA reference; it also exports the weights and input so webgpu runs the same model.
ref="$(mktemp -d)/reference.safetensors"
py=""
for candidate in python3 python /usr/bin/python3 /opt/conda/bin/python; do
  if command -v "$candidate" >/dev/null && "$candidate" -c 'import torch, torchvision' 2>/dev/null; then py=$(command -v "$candidate"); break; fi
done
[ -n "$py" ] || say "== no python with torch and torchvision found (tried python3, python, /usr/bin/python3, /opt/conda/bin/python)"
if [ -n "$py" ] && timeout 300 "$py" "$here/torch_cuda_densenet.py" --arch densenet201 --batches 1,8 --export "$ref" \
    --json-out "$out/torch-cuda.json" 2>&1 | tee -a "$out/summary.txt"; then
  ref_args=(--reference "$ref")
else
  say "== no PyTorch CUDA reference (see above); webgpu runs on random weights"
  ref_args=()
  rm -f "$ref"
fi

say "== TF.js webgpu"
timeout 400 "$here/node/bin/node" "$here/app/dist/bench/webgpu/densenet-webgpu.js" --arch densenet201 --batches 1,8 \
  "${ref_args[@]}" --json-out "$out/webgpu.json" "$@" 2>&1 | tee -a "$out/summary.txt"
status=${PIPESTATUS[0]}
rm -f "$ref"
say "== results in $out (webgpu exit status $status)"
exit "$status"
