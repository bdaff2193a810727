"""Conditioned heads against the same spec without them, over several fold splits and model seeds.

The quality report scores one fold split with one model seed, and on penguins the split alone moves a head's
5-fold mean by about 0.02: too much to tell a modelling change from luck. This sweep trains both versions of a
spec, as written and with every `conditioned_on` removed, on the same folds of each fold seed and with each model
seed, in one run (each fold is transformed once; the builders are `run_fn`'s, through the quality report), and
prints per head both means and their paired difference over the (fold seed, model seed) pairs.

The default fold seeds leave out the report's own (20240601) on purpose: `conditioned_on: species` was chosen for
the penguins `sex` head on these seeds, then scored once on the report's split.

Usage: `.venv/bin/python -m benchmarks.conditioning_sweep [--heads HEADS.yaml --data CSV --json OUT]`.
"""

import components  # noqa: F401 - the Keras choice (tf_keras), before TensorFlow loads

# isort: split
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from benchmarks import quality_report
from components.spec import HeadsSpec, load_spec

ROOT = Path(__file__).resolve().parent.parent
FOLD_SEEDS = (1, 2, 3, 4, 5)
MODEL_SEEDS = (42, 7, 123)


def without_conditioning(spec: HeadsSpec) -> HeadsSpec:
    """The same spec with every head's `conditioned_on` removed."""
    return dataclasses.replace(spec, heads=tuple(dataclasses.replace(h, conditioned_on=None) for h in spec.heads))


def with_model_seed(spec: HeadsSpec, seed: int) -> HeadsSpec:
    return dataclasses.replace(spec, training=dataclasses.replace(spec.training, seed=seed))


@dataclasses.dataclass(frozen=True)
class PairedSummary:
    """One head's scores with and without conditioning over the same (fold seed, model seed) pairs."""

    conditioned: float       # mean of the 5-fold means
    unconditioned: float
    difference: float        # mean of conditioned - unconditioned, pair by pair
    difference_std: float
    better: int              # pairs where conditioning scored better (higher accuracy, lower error)
    pairs: int


def paired_summary(conditioned: Sequence[float], unconditioned: Sequence[float],
                   higher_is_better: bool) -> PairedSummary:
    conditioned, unconditioned = np.asarray(conditioned, np.float64), np.asarray(unconditioned, np.float64)
    difference = conditioned - unconditioned
    better = difference > 0 if higher_is_better else difference < 0
    return PairedSummary(conditioned=float(conditioned.mean()), unconditioned=float(unconditioned.mean()),
                         difference=float(difference.mean()),
                         difference_std=float(difference.std(ddof=1)) if len(difference) > 1 else 0.0,
                         better=int(better.sum()), pairs=len(difference))


def sweep(spec: HeadsSpec, frame: pd.DataFrame, schema, fold_seeds: Sequence[int], model_seeds: Sequence[int],
          workdir: str, log=print) -> dict[str, dict[tuple[int, int], dict[str, float]]]:
    """{'conditioned' | 'unconditioned': {(fold seed, model seed): {head: 5-fold mean score}}}."""
    versions = {"conditioned": spec, "unconditioned": without_conditioning(spec)}
    per_fold: dict[str, dict[tuple[int, int], dict[str, list[float]]]] = {v: {} for v in versions}
    for fold_seed in fold_seeds:
        for fold, (train, test) in enumerate(quality_report.fold_splits(frame, fold_seed=fold_seed)):
            started = time.monotonic()
            train_rows, test_rows, tft_output = quality_report.transform_in_memory(
                spec, schema, quality_report.raw_rows(train, schema), quality_report.raw_rows(test, schema),
                os.path.join(workdir, f"seed{fold_seed}_fold{fold}"))
            for version, version_spec in versions.items():
                for model_seed in model_seeds:
                    seeded = with_model_seed(version_spec, model_seed)
                    model = quality_report.train_model(seeded, train_rows, tft_output)
                    scores = per_fold[version].setdefault((fold_seed, model_seed), {})
                    for head, value in quality_report.multihead_scores(seeded, model, test_rows).items():
                        scores.setdefault(head, []).append(value)
            log(f"fold seed {fold_seed}, fold {fold + 1}: {time.monotonic() - started:.0f} s")
    return {version: {pair: {head: float(np.mean(values)) for head, values in scores.items()}
                      for pair, scores in pairs.items()}
            for version, pairs in per_fold.items()}


def summarize(spec: HeadsSpec, results) -> dict[str, PairedSummary]:
    pairs = sorted(results["conditioned"])
    return {head.name: paired_summary([results["conditioned"][p][head.name] for p in pairs],
                                      [results["unconditioned"][p][head.name] for p in pairs],
                                      quality_report.higher_is_better(head))
            for head in spec.heads}


def format_summary(spec: HeadsSpec, summary: dict[str, PairedSummary]) -> str:
    lines = [f"{'head':<14}{'score':<22}{'conditioned':>12}{'without':>10}{'difference':>12}{'std':>8}"
             f"{'better in':>12}"]
    for head in spec.heads:
        s = summary[head.name]
        lines.append(f"{head.name:<14}{quality_report.score_name(head):<22}{s.conditioned:>12.4g}"
                     f"{s.unconditioned:>10.4g}{s.difference:>+12.4f}{s.difference_std:>8.4f}"
                     f"{f'{s.better}/{s.pairs}':>12}")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(ROOT / "data" / "penguins" / "penguins.csv"))
    parser.add_argument("--heads", default=str(ROOT / "schemas" / "penguins" / "heads.yaml"))
    parser.add_argument("--schema", help="curated schema.pbtxt (default: beside the heads spec)")
    parser.add_argument("--fold-seeds", type=int, nargs="+", default=list(FOLD_SEEDS))
    parser.add_argument("--model-seeds", type=int, nargs="+", default=list(MODEL_SEEDS))
    parser.add_argument("--json", help="also write every (fold seed, model seed) score and the summary here")
    args = parser.parse_args(argv)
    spec = load_spec(args.heads)
    if all(h.conditioned_on is None for h in spec.heads):
        raise SystemExit(f"{args.heads}: no head has conditioned_on; nothing to compare")
    schema = quality_report.read_schema(Path(args.schema) if args.schema else Path(args.heads).parent / "schema.pbtxt")
    frame = pd.read_csv(args.data, keep_default_na=False, na_values=[""])
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="conditioning_sweep_") as workdir:
        results = sweep(spec, frame, schema, args.fold_seeds, args.model_seeds, workdir,
                        log=lambda m: print(m, file=sys.stderr, flush=True))
    summary = summarize(spec, results)
    print(f"{spec.name}: {quality_report.FOLDS}-fold means over fold seeds {args.fold_seeds} x model seeds "
          f"{args.model_seeds}, with and without conditioned_on, {time.monotonic() - started:.0f} s\n")
    print(format_summary(spec, summary))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "fold_seeds": args.fold_seeds, "model_seeds": args.model_seeds,
            "scores": {version: [{"fold_seed": fold_seed, "model_seed": model_seed, **scores}
                                 for (fold_seed, model_seed), scores in sorted(pairs.items())]
                       for version, pairs in results.items()},
            "summary": {head: dataclasses.asdict(s) for head, s in summary.items()},
        }, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
