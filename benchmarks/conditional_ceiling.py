"""How well a classification head can do per class of another head: scikit-learn's answer, fold split by fold split.

For a head conditioned on another (`--head sex --given species` on penguins), fits one logistic regression per
class of the given head on the spec's features (`quality_report.baseline_pipeline`: mean-imputed, z-scored,
one-hot), on the same 5 folds as the quality report for each fold seed, and scores the head's accuracy with the
given head's class taken two ways:
- `true`: the row's own label (an oracle: the best a model of this shape can do on these features);
- `predicted`: what a logistic regression on the same features predicts for it (a two-stage model).
Rows without the head's label, or without the given head's, are left out, as the report leaves them out.

It tells a hard fold split from a weak model: the report's split (20240601) is scored first, then the others.

Usage: `.venv/bin/python -m benchmarks.conditional_ceiling [--head sex --given species --fold-seeds ...]`.
"""

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from benchmarks.quality_report import FOLD_SEED, FOLDS, baseline_pipeline, fold_splits, labelled_targets
from components.spec import HeadsSpec, load_spec

ROOT = Path(__file__).resolve().parent.parent
def per_class_accuracy(spec: HeadsSpec, head: str, given: str, train: pd.DataFrame, test: pd.DataFrame,
                       predict_given: bool) -> float:
    """Accuracy of one logistic regression per class of `given`, picked by its true or predicted class."""
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415

    features = [f.name for f in spec.features]
    (target, has_target), (given_class, has_given) = (labelled_targets(train, spec.head(n)) for n in (head, given))
    (target_test, has_target_test), (given_class_test, has_given_test) = (
        labelled_targets(test, spec.head(n)) for n in (head, given))
    train_rows, test_rows = has_target & has_given, has_target_test & has_given_test
    train, test = train[train_rows], test[test_rows]
    target, target_test = target[train_rows], target_test[test_rows]
    given_class, given_class_test = given_class[train_rows], given_class_test[test_rows]
    if predict_given:
        given_model = baseline_pipeline(spec, LogisticRegression(max_iter=2000)).fit(train[features], given_class)
        given_class_test = given_model.predict(test[features])
    predicted = np.zeros(len(test), dtype=int)
    for cls in np.unique(given_class):
        in_class, in_class_test = given_class == cls, given_class_test == cls
        if not in_class_test.any():
            continue
        if len(np.unique(target[in_class])) == 1:   # one label only in this class: nothing to fit
            predicted[in_class_test] = target[in_class][0]
            continue
        model = baseline_pipeline(spec, LogisticRegression(max_iter=2000)).fit(train[features][in_class],
                                                                               target[in_class])
        predicted[in_class_test] = model.predict(test[features][in_class_test])
    return float(np.mean(predicted == target_test))


def ceiling(spec: HeadsSpec, frame: pd.DataFrame, head: str, given: str, fold_seed: int) -> dict[str, float]:
    """5-fold mean accuracy with the given head's class `true` and `predicted`."""
    scores: dict[str, list[float]] = {"true": [], "predicted": []}
    for train, test in fold_splits(frame, fold_seed=fold_seed):
        for way in scores:
            scores[way].append(per_class_accuracy(spec, head, given, train, test, predict_given=way == "predicted"))
    return {way: float(np.mean(values)) for way, values in scores.items()}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(ROOT / "data" / "penguins" / "penguins.csv"))
    parser.add_argument("--heads", default=str(ROOT / "schemas" / "penguins" / "heads.yaml"))
    parser.add_argument("--head", default="sex")
    parser.add_argument("--given", default="species")
    parser.add_argument("--fold-seeds", type=int, nargs="+", default=[FOLD_SEED, *range(1, 11)])
    args = parser.parse_args(argv)
    spec = load_spec(args.heads)
    for name in (args.head, args.given):
        if name not in {h.name for h in spec.heads} or not spec.head(name).is_classification:
            raise SystemExit(f"{args.heads}: {name!r} is not a classification head of the spec")
    frame = pd.read_csv(args.data, keep_default_na=False, na_values=[""])
    print(f"{args.head} accuracy, one logistic regression per {args.given} class, {FOLDS}-fold means")
    print(f"{'fold seed':>10}{'true ' + args.given:>20}{'predicted ' + args.given:>22}")
    results = {seed: ceiling(spec, frame, args.head, args.given, seed) for seed in args.fold_seeds}
    for seed, result in results.items():
        print(f"{seed:>10}{result['true']:>20.4f}{result['predicted']:>22.4f}")
    others = [r for seed, r in results.items() if seed != FOLD_SEED]
    if others:
        print(f"{'others':>10}{np.mean([r['true'] for r in others]):>20.4f}"
              f"{np.mean([r['predicted'] for r in others]):>22.4f}   (mean over the fold seeds but {FOLD_SEED})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
