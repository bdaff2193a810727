"""Deterministic synthetic data for the multi-head pipeline: five heads of four kinds, some labels missing.

Every row has numeric features `x1`..`x4` and categorical features `region`, `channel`, and five targets:

| column      | head kind  | how it is made (noise levels fixed here, see the constants)                           |
| ----------- | ---------- | ------------------------------------------------------------------------------------- |
| `demand`    | regression | 50 + 10 x1 - 5 x3 + 3 x4 + region effect, plus N(0, DEMAND_NOISE)                     |
| `lead_time` | regression | 2 + 0.5 x4 + abs(x2) + channel effect, plus N(0, LEAD_TIME_NOISE)                      |
| `churn`     | binary     | `yes` with probability sigmoid(1.5 x2 - x3 + channel effect) (Bernoulli noise)         |
| `segment`   | multiclass | A..D, argmax of linear scores in x1, x3, x4 and region, plus Gumbel(SEGMENT_NOISE)     |
| `heading`   | angle      | atan2(x2, x1) + region turn, plus N(0, HEADING_NOISE) radians, wrapped into [0, 2*pi)  |

Each feature value is missing (an empty cell) with probability FEATURE_MISSING, each label with probability
LABEL_MISSING. The output is deterministic for a given (rows, shards, seed): shard `i` draws from
`numpy.random.default_rng([seed, i])`, so shards can be written one at a time, whatever the row count.

Usage: `python -m data.synthetic.generate --rows 5000 --shards 2 --out DIR` (run from the project root); writes
`DIR/part-00000-of-00002.csv`, ... each with a header row, which `python -m pipeline run --data DIR
--heads schemas/synthetic/heads.yaml` reads.
"""

import argparse
import csv
import math
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

DEMAND_NOISE = 5.0          # standard deviation, in demand units
LEAD_TIME_NOISE = 0.5       # standard deviation, in days
SEGMENT_NOISE = 0.5         # Gumbel scale on the segment scores
HEADING_NOISE = 0.15        # standard deviation, radians (about 8.6 degrees)
FEATURE_MISSING = 0.02
LABEL_MISSING = 0.08

REGIONS = ("north", "east", "south", "west")
CHANNELS = ("web", "store", "phone")
SEGMENTS = ("A", "B", "C", "D")
COLUMNS = ("x1", "x2", "x3", "x4", "region", "channel", "demand", "lead_time", "churn", "segment", "heading")
FEATURES = COLUMNS[:6]
LABELS = COLUMNS[6:]

_REGION_DEMAND = np.array([0.0, 8.0, -6.0, 3.0])
_REGION_TURN = np.array([0.0, 0.5, 1.0, 1.5])              # radians
_REGION_SEGMENT = np.array([[0.5, 0.0, 0.0, -0.5], [0.0, 0.5, -0.5, 0.0], [0.0, -0.5, 0.5, 0.0],
                            [-0.5, 0.0, 0.0, 0.5]])
_CHANNEL_LEAD = np.array([1.0, 0.0, 2.0])
_CHANNEL_CHURN = np.array([0.5, -0.5, 0.0])
_SEGMENT_WEIGHTS = np.array([[1.5, 0.0, -1.5, 0.2], [0.0, 1.5, 0.0, -0.2], [-1.0, -1.0, 1.0, 0.0],
                             [0.0, 0.0, 0.0, 0.0]])    # rows: x1, x3, x4 - 5, 1 (bias); columns: A..D


def generate_rows(rows: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """`rows` rows as columns; missing values are None (object arrays) or NaN."""
    x1, x2, x3 = rng.normal(size=(3, rows))
    x4 = rng.uniform(0.0, 10.0, size=rows)
    region = rng.integers(0, len(REGIONS), size=rows)
    channel = rng.integers(0, len(CHANNELS), size=rows)

    demand = 50 + 10 * x1 - 5 * x3 + 3 * x4 + _REGION_DEMAND[region] + rng.normal(0, DEMAND_NOISE, rows)
    lead_time = 2 + 0.5 * x4 + np.abs(x2) + _CHANNEL_LEAD[channel] + rng.normal(0, LEAD_TIME_NOISE, rows)
    churn = rng.uniform(size=rows) < 1 / (1 + np.exp(-(1.5 * x2 - x3 + _CHANNEL_CHURN[channel])))
    scores = np.stack([x1, x3, x4 - 5, np.ones(rows)], axis=1) @ _SEGMENT_WEIGHTS + _REGION_SEGMENT[region]
    segment = np.argmax(scores + rng.gumbel(0, SEGMENT_NOISE, size=scores.shape), axis=1)
    heading = np.mod(np.arctan2(x2, x1) + _REGION_TURN[region] + rng.normal(0, HEADING_NOISE, rows), 2 * math.pi)

    columns = {
        "x1": x1, "x2": x2, "x3": x3, "x4": x4,
        "region": np.array(REGIONS, object)[region], "channel": np.array(CHANNELS, object)[channel],
        "demand": demand, "lead_time": lead_time, "churn": np.where(churn, "yes", "no").astype(object),
        "segment": np.array(SEGMENTS, object)[segment], "heading": heading,
    }
    for name in COLUMNS:
        missing = rng.uniform(size=rows) < (FEATURE_MISSING if name in FEATURES else LABEL_MISSING)
        columns[name] = columns[name].astype(object)
        columns[name][missing] = None
    return columns


def _cell(value) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else f"{value:.4f}"


def write_shards(out: Path, rows: int, shards: int = 1, seed: int = 7) -> list[Path]:
    """Writes `rows` rows into `shards` CSV files under `out`; returns their paths.

    Raises:
      ValueError: if rows < shards or shards < 1.
    """
    if shards < 1 or rows < shards:
        raise ValueError(f"need 1 <= shards <= rows, got rows={rows}, shards={shards}")
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for shard in range(shards):
        count = rows // shards + (1 if shard < rows % shards else 0)
        columns = generate_rows(count, np.random.default_rng([seed, shard]))
        path = out / f"part-{shard:05d}-of-{shards:05d}.csv"
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(COLUMNS)
            for i in range(count):
                writer.writerow([_cell(columns[c][i]) for c in COLUMNS])
        paths.append(path)
    return paths


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5000, help="rows in all (default 5000)")
    parser.add_argument("--shards", type=int, default=1, help="CSV files to split the rows into (default 1)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", required=True, help="folder to write the shards into")
    args = parser.parse_args(argv)
    try:
        paths = write_shards(Path(args.out), args.rows, args.shards, args.seed)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.rows} rows into {len(paths)} shard(s) under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
