"""Quality report: the multi-head model against single-task scikit-learn baselines, 5-fold cross-validated.

For each fold (fixed fold seed) of a CSV, in this one run:
- the multi-head model: the project's `preprocessing_fn` through TF Transform's Beam implementation (analyzing the
  training folds only), then the builders `run_fn` uses (`scan_split`, `build_model`,
  `split_features_labels_weights`) and the same training settings, scored on the held-out fold through the
  serving outputs (`serving_outputs`), with each head's rows of missing labels left out;
- single-task baselines on the same folds, one model per head, trained on the rows that have that head's label:
  logistic regression and gradient boosting (classification), ridge and gradient boosting (regression); features
  mean-imputed and z-scored, categorical features one-hot.

Prints per head the mean and standard deviation of each model's score, and exits 1 when a target is missed:
every head at least as good as the best baseline's mean minus one of its standard deviations, and the absolute
targets given with `--target HEAD=VALUE` (for penguins by default: species accuracy >= 0.98, sex accuracy
>= 0.88, body_mass_g MAE <= 285). Angle heads have no scikit-learn baseline; they are compared with predicting
the circular mean of the training labels.

Usage: `.venv/bin/python -m benchmarks.quality_report [--data CSV --heads HEADS.yaml --schema SCHEMA.pbtxt]`.
"""

import components  # noqa: F401 - the Keras choice (tf_keras), before TensorFlow loads

# isort: split
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import dataclasses
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from components.spec import HeadSpec, HeadsSpec, label_name, load_spec, weight_name

ROOT = Path(__file__).resolve().parent.parent
PENGUINS_TARGETS = {"species": 0.98, "sex": 0.88, "body_mass_g": 285.0}
FOLDS = 5
FOLD_SEED = 20240601


# ---------------------------------------------------------------------------------------------------------
# The Trainer's steps, in memory.


def read_schema(path: Path):
    from google.protobuf import text_format  # noqa: PLC0415
    from tensorflow_metadata.proto.v0 import schema_pb2  # noqa: PLC0415

    return text_format.Parse(Path(path).read_text(), schema_pb2.Schema())


def raw_rows(frame: pd.DataFrame, schema) -> list[dict]:
    """CSV rows as TF Transform's in-memory instances: every column a list of 0 or 1 values of the schema's type."""
    from tensorflow_metadata.proto.v0 import schema_pb2  # noqa: PLC0415

    types = {f.name: f.type for f in schema.feature}
    cast = {schema_pb2.INT: int, schema_pb2.FLOAT: float, schema_pb2.BYTES: lambda v: str(v).encode()}
    rows = []
    for record in frame.to_dict("records"):
        rows.append({column: ([] if pd.isna(value) else [cast[types[column]](value)])
                     for column, value in record.items() if column in types})
    return rows


def transform_in_memory(spec: HeadsSpec, schema, train: list[dict], evaluate: list[dict], workdir: str):
    """Runs `preprocessing_fn` like Transform does: analyze `train`, transform both; writes the transform graph.

    Returns:
      (transformed train rows, transformed eval rows, TFTransformOutput of the written graph).
    """
    import tensorflow_transform as tft  # noqa: PLC0415
    import tensorflow_transform.beam as tft_beam  # noqa: PLC0415
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io  # noqa: PLC0415

    from components.transform.module import preprocessing_fn  # noqa: PLC0415

    metadata = dataset_metadata.DatasetMetadata(schema)
    config = {"heads_spec": spec.to_dict()}
    with tft_beam.Context(temp_dir=os.path.join(workdir, "tmp"), force_tf_compat_v1=False):
        (train_out, _), transform_fn = ((train, metadata) | tft_beam.AnalyzeAndTransformDataset(
            lambda inputs: preprocessing_fn(inputs, config)))
        eval_out, _ = ((evaluate, metadata), transform_fn) | tft_beam.TransformDataset()
        _ = transform_fn | tft_beam.WriteTransformFn(os.path.join(workdir, "transform"))
    # The raw schema, where TFX's Transform writes it: the serving signature parses raw examples with it.
    metadata_io.write_metadata(metadata, os.path.join(workdir, "transform", tft.TFTransformOutput.RAW_METADATA_DIR))
    return train_out, eval_out, tft.TFTransformOutput(os.path.join(workdir, "transform"))


def as_batches(rows: list[dict], batch_size: int, shuffle_seed: Optional[int] = None):
    """Transformed rows as a tf.data.Dataset of dict batches, as the Trainer's dataset factory gives them."""
    import tensorflow as tf  # noqa: PLC0415

    columns = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    dataset = tf.data.Dataset.from_tensor_slices(columns)
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(rows), seed=shuffle_seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size)


def train_model(spec: HeadsSpec, train_rows: list[dict], tf_transform_output, log_dir: Optional[str] = None):
    """What `run_fn` does between reading the Transform output and exporting, on in-memory rows."""
    import tf_keras as keras  # noqa: PLC0415

    from components.spec import OOV_BUCKETS, vocabulary_name  # noqa: PLC0415
    from components.trainer.inputs import scan_split, split_features_labels_weights  # noqa: PLC0415
    from components.trainer.model import build_model  # noqa: PLC0415

    training = spec.training
    vocab_sizes = {f.name: tf_transform_output.vocabulary_size_by_name(vocabulary_name(f.name)) + OOV_BUCKETS
                   for f in spec.features if f.kind == "categorical"}
    stats = scan_split(as_batches(train_rows, 4096), spec).label_stats
    model = build_model(spec, vocab_sizes, stats)
    batches = as_batches(train_rows, training.batch_size, shuffle_seed=training.seed).map(
        lambda batch: split_features_labels_weights(batch, spec))
    callbacks = [keras.callbacks.TensorBoard(log_dir=log_dir)] if log_dir else []
    model.fit(batches, epochs=training.epochs, callbacks=callbacks, verbose=0)
    return model


def predict_served(model, spec: HeadsSpec, rows: list[dict]) -> dict[str, np.ndarray]:
    """The serving signature's per-head outputs for transformed rows."""
    from components.trainer.inputs import split_features_labels_weights  # noqa: PLC0415
    from components.trainer.serving import serving_outputs  # noqa: PLC0415

    outputs: dict[str, list] = {}
    for batch in as_batches(rows, 1024):
        features, _, _ = split_features_labels_weights(batch, spec)
        for key, value in serving_outputs(spec, model(features)).items():
            outputs.setdefault(key, []).append(value.numpy())
    return {k: np.concatenate(v) for k, v in outputs.items()}


# ---------------------------------------------------------------------------------------------------------
# Scores: one number per head, its direction given by `higher_is_better`.


def angular_error_deg(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    difference = np.mod(np.asarray(truth, np.float64) - np.asarray(predicted, np.float64), 2 * math.pi)
    return np.degrees(np.minimum(difference, 2 * math.pi - difference))


def circular_mean(angles: np.ndarray) -> float:
    return float(np.mod(math.atan2(np.sin(angles).mean(), np.cos(angles).mean()), 2 * math.pi))


def score_name(head: HeadSpec) -> str:
    return {"regression": "MAE", "angle": "angular error (deg)"}.get(head.kind, "accuracy")


def higher_is_better(head: HeadSpec) -> bool:
    return head.is_classification


def head_score(head: HeadSpec, truth: np.ndarray, predicted: np.ndarray) -> float:
    """Accuracy (predicted class indices), MAE (values) or mean angular error in degrees (radians)."""
    if head.is_classification:
        return float(np.mean(np.asarray(truth) == np.asarray(predicted)))
    if head.kind == "angle":
        return float(np.mean(angular_error_deg(truth, predicted)))
    return float(np.mean(np.abs(np.asarray(truth, np.float64) - np.asarray(predicted, np.float64))))


def multihead_scores(spec: HeadsSpec, model, rows: list[dict]) -> dict[str, float]:
    served = predict_served(model, spec, rows)
    scores = {}
    for head in spec.heads:
        labelled = np.array([r[weight_name(head.name)] for r in rows]) > 0
        truth = np.array([r[label_name(head.name)] for r in rows])[labelled]
        out = served[head.name][labelled]
        if head.kind == "multiclass":
            predicted = out.argmax(axis=-1)
        elif head.kind == "binary":
            predicted = (out[:, 0] > 0.5).astype(int)
        else:
            predicted = out[:, 0]
        scores[head.name] = head_score(head, truth, predicted)
    return scores


# ---------------------------------------------------------------------------------------------------------
# Single-task baselines.


def baseline_makers(head: HeadSpec, seed: int) -> dict[str, Callable]:
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor  # noqa: PLC0415
    from sklearn.linear_model import LogisticRegression, Ridge  # noqa: PLC0415

    if head.is_classification:
        return {"logistic regression": lambda: LogisticRegression(max_iter=2000),
                "gradient boosting": lambda: GradientBoostingClassifier(random_state=seed)}
    if head.kind == "regression":
        return {"ridge": lambda: Ridge(alpha=1.0),
                "gradient boosting": lambda: GradientBoostingRegressor(random_state=seed)}
    return {}


def baseline_pipeline(spec: HeadsSpec, estimator):
    from sklearn.compose import ColumnTransformer  # noqa: PLC0415
    from sklearn.impute import SimpleImputer  # noqa: PLC0415
    from sklearn.pipeline import make_pipeline  # noqa: PLC0415
    from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: PLC0415

    numeric = [f.name for f in spec.features if f.kind == "numeric"]
    categorical = [f.name for f in spec.features if f.kind == "categorical"]
    columns = ColumnTransformer([
        ("numeric", make_pipeline(SimpleImputer(strategy="mean"), StandardScaler()), numeric),
        ("categorical", make_pipeline(SimpleImputer(strategy="constant", fill_value="(missing)"),
                                      OneHotEncoder(handle_unknown="ignore")), categorical),
    ])
    return make_pipeline(columns, estimator)


def labelled_targets(frame: pd.DataFrame, head: HeadSpec) -> tuple[np.ndarray, np.ndarray]:
    """A head's targets as the model sees them (class index, value, angle) and which rows have one."""
    column = frame[head.label]
    if head.is_classification:
        index = column.map({c: i for i, c in enumerate(head.classes)})
        return index.fillna(-1).astype(int).to_numpy(), index.notna().to_numpy()
    values = column.astype(float).to_numpy()
    if head.kind == "angle":
        values = np.mod(values, 2 * math.pi)
    return values, ~np.isnan(values)


def baseline_scores(spec: HeadsSpec, train: pd.DataFrame, test: pd.DataFrame, seed: int) -> dict[tuple, float]:
    features = [f.name for f in spec.features]
    scores = {}
    for head in spec.heads:
        y_train, has_train = labelled_targets(train, head)
        y_test, has_test = labelled_targets(test, head)
        if head.kind == "angle":
            mean = circular_mean(y_train[has_train])
            scores[(head.name, "circular mean")] = head_score(head, y_test[has_test], np.full(has_test.sum(), mean))
            continue
        for name, make in baseline_makers(head, seed).items():
            model = baseline_pipeline(spec, make()).fit(train.loc[has_train, features], y_train[has_train])
            scores[(head.name, name)] = head_score(head, y_test[has_test],
                                                   model.predict(test.loc[has_test, features]))
    return scores


# ---------------------------------------------------------------------------------------------------------
# The report.


def fold_splits(frame: pd.DataFrame, folds: int = FOLDS, fold_seed: int = FOLD_SEED):
    """The report's folds of `frame`, as (train, test) frames: shuffled with `fold_seed`, as every script here
    that compares with the report splits its data."""
    from sklearn.model_selection import KFold  # noqa: PLC0415

    for train_index, test_index in KFold(folds, shuffle=True, random_state=fold_seed).split(frame):
        yield frame.iloc[train_index], frame.iloc[test_index]


@dataclasses.dataclass
class Report:
    """Per (head, model) the score on each fold; model `multi-head` is the project's."""

    spec: HeadsSpec
    scores: dict[tuple[str, str], list[float]]

    def summary(self, head: str, model: str) -> tuple[float, float]:
        values = np.array(self.scores[(head, model)])
        return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def cross_validate(spec: HeadsSpec, frame: pd.DataFrame, schema, folds: int = FOLDS, fold_seed: int = FOLD_SEED,
                   workdir: Optional[str] = None, log: Callable[[str], None] = print) -> Report:
    """Scores every model on every fold; each fold's Transform output is written under `workdir`, which is kept,
    or, without one, under a temporary folder removed at the end (a few MB of TF Transform output per fold)."""
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="quality_report_") as temporary:
            return cross_validate(spec, frame, schema, folds, fold_seed, temporary, log)

    scores: dict[tuple[str, str], list[float]] = {}
    for fold, (train, test) in enumerate(fold_splits(frame, folds, fold_seed)):
        started = time.monotonic()
        train_rows, test_rows, tft_output = transform_in_memory(
            spec, schema, raw_rows(train, schema), raw_rows(test, schema), os.path.join(workdir, f"fold{fold}"))
        model = train_model(spec, train_rows, tft_output)
        for head, value in multihead_scores(spec, model, test_rows).items():
            scores.setdefault((head, "multi-head"), []).append(value)
        for key, value in baseline_scores(spec, train, test, spec.training.seed).items():
            scores.setdefault(key, []).append(value)
        log(f"fold {fold + 1}/{folds} done in {time.monotonic() - started:.1f} s")
    return Report(spec=spec, scores=scores)


def check(report: Report, targets: Mapping[str, float]) -> list[str]:
    """Every missed target, as a sentence; empty when all are met."""
    missed = []
    for head in report.spec.heads:
        better = higher_is_better(head)
        mean, _ = report.summary(head.name, "multi-head")
        baselines = [m for (h, m) in report.scores if h == head.name and m != "multi-head"]
        if baselines:
            best = (max if better else min)(baselines, key=lambda m: report.summary(head.name, m)[0])
            best_mean, best_std = report.summary(head.name, best)
            if head.kind == "angle":
                # The Done-when bar for angles: at most half the error of predicting the circular mean.
                bar, text = best_mean / 2, f"half of {best}'s {best_mean:.4g}"
            else:
                bar = best_mean - best_std if better else best_mean + best_std
                text = f"best baseline ({best}) {best_mean:.4g} {'-' if better else '+'} std {best_std:.4g}"
            if (mean < bar) if better else (mean > bar):
                missed.append(f"{head.name}: multi-head {mean:.4g} is worse than {text} = {bar:.4g}")
        if head.name in targets:
            target = targets[head.name]
            if (mean < target) if better else (mean > target):
                missed.append(f"{head.name}: multi-head {mean:.4g} misses the target "
                              f"{'>=' if better else '<='} {target:g}")
    return missed


def format_report(report: Report) -> str:
    lines = [f"{'head':<14}{'score':<22}{'model':<22}{'mean':>10}{'std':>10}"]
    for head in report.spec.heads:
        models = ["multi-head"] + sorted(m for (h, m) in report.scores if h == head.name and m != "multi-head")
        for model in models:
            mean, std = report.summary(head.name, model)
            lines.append(f"{head.name:<14}{score_name(head):<22}{model:<22}{mean:>10.4g}{std:>10.3g}")
    return "\n".join(lines)


def parse_targets(values: Sequence[str]) -> dict[str, float]:
    targets = {}
    for value in values:
        head, _, number = value.partition("=")
        try:
            targets[head] = float(number)
        except ValueError:
            raise SystemExit(f"--target {value!r}: expected HEAD=NUMBER") from None
    return targets


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(ROOT / "data" / "penguins" / "penguins.csv"))
    parser.add_argument("--heads", default=str(ROOT / "schemas" / "penguins" / "heads.yaml"))
    parser.add_argument("--schema", help="curated schema.pbtxt (default: beside the heads spec)")
    parser.add_argument("--folds", type=int, default=FOLDS)
    parser.add_argument("--fold-seed", type=int, default=FOLD_SEED)
    parser.add_argument("--target", action="append", default=None, metavar="HEAD=VALUE",
                        help="an absolute target (accuracy: at least; MAE, angular error: at most); "
                             "default: the penguins targets when --heads is the penguins spec")
    args = parser.parse_args(argv)
    spec = load_spec(args.heads)
    schema = read_schema(Path(args.schema) if args.schema else Path(args.heads).parent / "schema.pbtxt")
    frame = pd.read_csv(args.data, keep_default_na=False, na_values=[""])
    targets = (parse_targets(args.target) if args.target is not None
               else PENGUINS_TARGETS if spec.name == "penguins" else {})
    started = time.monotonic()
    report = cross_validate(spec, frame, schema, args.folds, args.fold_seed,
                            log=lambda m: print(m, file=sys.stderr, flush=True))
    print(f"{spec.name}: {args.folds}-fold cross-validation (fold seed {args.fold_seed}), {len(frame)} rows, "
          f"{time.monotonic() - started:.0f} s\n")
    print(format_report(report))
    missed = check(report, targets)
    print()
    for line in missed:
        print(f"MISSED {line}")
    if not missed:
        print("every head meets its targets" + (f" ({', '.join(f'{h} {v:g}' for h, v in targets.items())})"
                                                if targets else "") + " and the best baseline's bar")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
