#!/usr/bin/env bash
# ONNX Runtime on a GPU machine against PyTorch CUDA on the same card, in one run of bench/engines.js (under
# 10 minutes): DenseNet-201, 224x224, batch 1 and 8, forward and forward + isnet LRP, the CUDA 12 provider and the
# WebGPU provider. From the repository, built (`npm ci && npx tsc -p tsconfig.json`), on a machine with:
#   - the CUDA provider: node node_modules/onnxruntime-node/script/install --onnxruntime-node-install=cuda12
#     (downloads Microsoft.ML.OnnxRuntime.Gpu.Linux from NuGet; needs CUDA 12 and cuDNN 9 libraries);
#   - /usr/bin/python3 with torch (CUDA) and torchvision, for the reference and the random weights.
# Writes engines-gpu.md and engines-gpu.json under $OUT (or a temporary folder, printed).
# Goal (issue 18): forward + LRP <= 1.5x PyTorch CUDA's forward + gradient x input.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
say() { echo "$*" | tee -a "$out/engines-gpu.md"; }
say "== $(date -u +%FT%TZ) $(uname -srm)"
say "== GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -3)"
ep=node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so
engines=onnxruntime:webgpu
if [ -f "$ep" ]; then
  engines=onnxruntime:cuda,onnxruntime:webgpu
else
  say "== the CUDA provider is not installed ($ep): only WebGPU is measured"
fi
/usr/bin/python3 -c 'import torch; print("== torch", torch.__version__, "cuda", torch.cuda.is_available())' 2>&1 | tee -a "$out/engines-gpu.md"
timeout 540 node dist/bench/engines.js --torch cuda --engines "$engines" --batches 1,8 --repeats 10 \
  --json-out "$out/engines-gpu.json" | tee -a "$out/engines-gpu.md"
echo "results in $out"
