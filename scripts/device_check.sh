#!/bin/bash
# The measurements that need the lent GPU machine, as one script (its device time is short):
# wgpu training with a cold and a warm tuning cache, the PyTorch CUDA peer, the CPU path's
# scaling over 1..N threads beside PyTorch on all cores, end to end on all cores, and the data
# pipeline on all cores.
#
# Prepare here (see scripts/prepare_device.sh), then on the device machine, from the repository
# root with `.gl` and `.gpu` carried:  bash scripts/device_check.sh
# Results go to $OUT (the device tool brings them back) or ./device-out.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-device-out}
mkdir -p "$OUT"
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
gunzip -c .gpu/convscope.gz > /tmp/convscope && chmod +x /tmp/convscope
B=/tmp/convscope
export CONVSCOPE_CACHE_DIR=/tmp/cscache
# What the CPU numbers mean depends on these: physical cores or hyperthreads, and any CPU quota.
{
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  nproc
  lscpu | grep -E "Model name|^CPU\(s\)|Thread|Core|Socket|MHz|L2|L3"
  cat /sys/fs/cgroup/cpu.max 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null
} 2>&1 | tee "$OUT/machine.txt"

echo "== wgpu, cold tuning cache (also checks that --device wgpu accepts the real GPU)"
( time timeout 150 $B bench --device wgpu --batch-size 64 --steps 30 --warmup 3 --pipeline false ) 2>&1 | tee "$OUT/bench-wgpu-cold.txt"
echo "== wgpu, warm tuning cache (a second process)"
( time timeout 90 $B bench --device wgpu --batch-size 64 --steps 30 --warmup 3 --pipeline false ) 2>&1 | tee "$OUT/bench-wgpu-warm.txt"
echo "== PyTorch CUDA"
timeout 90 python3 .gpu/peer_torch.py --random 8192 --size 150 --epochs 3 --batch 64 --device cuda 2>&1 | tee "$OUT/peer-cuda.txt"

echo "== CPU scaling: training step by thread count"
n=$(nproc)
for t in 1 2 4 8 "$n"; do
  [ "$t" -le "$n" ] || continue
  echo "-- $t threads"
  RAYON_NUM_THREADS=$t timeout 60 $B bench --device cpu --batch-size 64 --steps 6 --warmup 2 --pipeline false 2>&1
done | tee "$OUT/bench-cpu-threads.txt"
timeout 60 python3 .gpu/peer_torch.py --random 512 --size 150 --epochs 2 --batch 64 --threads "$n" 2>&1 | tee "$OUT/peer-cpu.txt"
echo "== end to end on all cores: 512 generated JPEGs, 3 epochs (the overhead around the steps)"
timeout 120 $B bench --device cpu --batch-size 64 --steps 6 --warmup 2 --pipeline false --end-to-end --epochs 3 --images 512 2>&1 | tee "$OUT/end-to-end-cpu.txt"
echo "== data pipeline, all cores"
timeout 120 $B bench --device cpu --steps 0 --warmup 0 2>&1 | tee "$OUT/pipeline.txt"
echo done
