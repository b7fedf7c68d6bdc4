"""The GPU cost table of docs/cluster.md, from the measured rates in this folder.

    python results/gpu/costs.py

Training steps only, at the paper's settings (20 epochs of about 6,330 training images, one
trial per GPU). Wall times place the trials longest first on the GPUs (a lower bound: Tune
starts them in grid order). `space=paper`'s resunet widths above 8 are scaled by U-Net's
filter ratios, invresunet expansion 4 is costed as 6 and every deeplabv3plus alpha as 0.5:
only those points were measured.
"""

from __future__ import annotations

import heapq
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
IMAGES = 20 * 6330  # epochs x training images


def _rates(name: str) -> list[dict]:
    return [json.loads(x) for x in (HERE / name).read_text().splitlines() if x.startswith("{")]


def _wall(durations: list[float], gpus: int) -> float:
    loads = [0.0] * gpus
    for seconds in sorted(durations, reverse=True):
        heapq.heappush(loads, heapq.heappop(loads) + seconds)
    return max(loads)


def main() -> None:
    unet = {x["filters"]: x["images_per_s"] for x in _rates("filters.jsonl")}
    other = {x["model"]: x["images_per_s"] for x in _rates("architectures.jsonl")}
    resunet = {f: other["resunet"] * unet[f] / unet[8] for f in unet}
    spaces = {
        # 16 points: filters x activation x loss; 8: filters x loss; 4: expansion x loss;
        # 8: alpha x loss (search/conf/space/*.yaml).
        "unet": [IMAGES / unet[f] for f in unet for _ in range(4)],
        "paper": [IMAGES / unet[f] for f in unet for _ in range(4)]
        + [IMAGES / resunet[f] for f in resunet for _ in range(2)]
        + [IMAGES / other["invresunet"]] * 4
        + [IMAGES / other["deeplabv3plus"]] * 8,
    }
    print("| space | trials | GPU-hours | 1 GPU | 4 GPUs | 16 GPUs |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, trials in spaces.items():
        walls = " | ".join(f"{_wall(trials, g) / 60:.0f} min" for g in (1, 4, 16))
        print(f"| `space={name}` | {len(trials)} | {sum(trials) / 3600:.1f} | {walls} |")


if __name__ == "__main__":
    main()
