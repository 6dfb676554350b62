#!/bin/bash
# Build what scripts/device_check.sh needs on the GPU machine, which has no network: the
# release binary with the wgpu feature, stripped and gzipped (the device tool carries at most
# 64 MiB), the peer script, and the Vulkan loader packages (the machine has the NVIDIA driver's
# Vulkan ICD but no loader). `.gl/` and `.gpu/` are kept out of git (.git/info/exclude).
# Then: the device tool's run with carry [".gl", ".gpu"] and `bash scripts/device_check.sh`.
set -eu
cd "$(dirname "$0")/.."
grep -qx '/.gl/' .git/info/exclude || echo '/.gl/' >> .git/info/exclude
grep -qx '/.gpu/' .git/info/exclude || echo '/.gpu/' >> .git/info/exclude
mkdir -p .gl .gpu
cargo build --release --features wgpu
strip -o /tmp/convscope-wgpu target/release/convscope
gzip -9 -c /tmp/convscope-wgpu > .gpu/convscope.gz
cp ../shared/bench/peer_torch.py .gpu/
(cd .gl && apt-get download libvulkan1 libegl1 libgl1 libgles2 libglvnd0 libglx0 libopengl0)
ls -la .gl .gpu
