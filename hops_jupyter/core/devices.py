"""GPUs visible to this process, as the seed's `devices` module reports them."""

from __future__ import annotations

import os
import shutil
import subprocess


def gpu_ids() -> list[str]:
    """The ids of the GPUs this process may use, as CUDA numbers them for its children:
    `$CUDA_VISIBLE_DEVICES` (up to the first invalid id) when set, else nvidia-smi's."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = []
        for dev in (d.strip() for d in visible.split(",")):
            if not dev or dev.startswith("-"):
                break  # CUDA stops at the first invalid id ("-1" hides every GPU)
            ids.append(dev)
        return ids
    return [str(i) for i in range(get_num_gpus())]


def get_num_gpus() -> int:
    """Number of GPUs this process may use: `$CUDA_VISIBLE_DEVICES` when set, else the GPUs
    `nvidia-smi -L` lists, else 0."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [d.strip() for d in visible.split(",") if d.strip()]
        # CUDA stops at the first invalid id ("-1" is the usual way to hide every GPU).
        count = 0
        for dev in ids:
            if dev.startswith("-"):
                break
            count += 1
        return count
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return 0
    try:
        done = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    if done.returncode != 0:
        return 0
    return sum(1 for line in done.stdout.splitlines() if line.startswith("GPU "))
