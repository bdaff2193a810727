"""The Trainer and serving floors of issue 6, measured on one finished pipeline run's own artifacts.

- Trainer floor: the same model (`components.trainer.model.build_model`, with the vocabulary sizes and label statistics
  `run_fn` uses), batch size and epochs, trained by a plain Keras loop on the run's transformed train split held
  in memory as tensors (no `dataset.cache()`). Its examples per second against the Trainer component's (train
  examples x epochs / the component's wall time, which also covers reading files, the pass for row count and
  label statistics, and the export: what a user waits for).
- Serving floor: the pushed model's `serving_default` on serialized raw tf.Examples (from the run's own CSV
  rows, labels left out), at batch 1 and 1,000, against the bare Keras model (loaded from the same SavedModel,
  called through a `tf.function`) on already-transformed tensors; the two timed in alternating rounds. At batch
  1,000 also `tf.io.parse_example` alone, which gives the best ratio any signature on tf.Examples could reach.

Run by benchmarks/run_benchmarks.py: `python -m benchmarks.floors --workdir W --data DIR --heads H
[--trainer-wall-s S]`; prints its results as one JSON line last on stdout.
"""

import components  # noqa: F401 - the Keras choice (tf_keras), before TensorFlow loads

# isort: split
import argparse
import csv
import glob
import json
import os
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

import components.trainer.losses  # noqa: F401 - registers the custom objects the SavedModel names
import components.trainer.metrics  # noqa: F401
from components.spec import (
    OOV_BUCKETS,
    HeadsSpec,
    load_spec,
    transformed_name,
    vocabulary_name,
)
from components.trainer.inputs import scan_split, split_features_labels_weights
from components.trainer.model import build_model
from components.trainer.serving import serving_feature_spec

SERVING_BATCH = 1000
SINGLE_CALLS = 300          # batch-1 calls timed, for p50/p99
BATCH_REPEATS = 200         # batch-1000 calls timed (at 10, one 28 ms stall of the shared machine decided the ratio)
WARMUP_CALLS = 5            # traced and warmed before timing, in every round
ROUNDS = 10                 # turns in which the compared calls are timed one after the other


def newest_path(pattern: str, what: str) -> str:
    """The most recently modified path matching `pattern` (the newest run's artifact)."""
    paths = sorted(glob.glob(pattern), key=os.path.getmtime)
    if not paths:
        raise SystemExit(f"no {what} under {pattern}")
    return paths[-1]


def load_transformed(transformed_dir: str, tf_transform_output) -> dict[str, tf.Tensor]:
    """Every transformed example of one split, as one dense tensor per feature, label and weight."""
    files = tf.io.gfile.glob(os.path.join(transformed_dir, "*"))
    dataset = (tf.data.TFRecordDataset(files, compression_type="GZIP")
               .batch(65536)
               .map(lambda records: tf.io.parse_example(records, tf_transform_output.transformed_feature_spec())))
    batches = list(dataset)
    return {name: tf.concat([b[name] for b in batches], axis=0) for name in batches[0]}


def trainer_floor(spec: HeadsSpec, tf_transform_output, train_dir: str) -> dict:
    """Examples per second of `model.fit` on the in-memory train split: same model, batch size and epochs."""
    training = spec.training
    tensors = load_transformed(train_dir, tf_transform_output)
    examples = int(next(iter(tensors.values())).shape[0])
    vocab_sizes = {f.name: tf_transform_output.vocabulary_size_by_name(vocabulary_name(f.name)) + OOV_BUCKETS
                   for f in spec.features if f.kind == "categorical"}
    stats = scan_split(tf.data.Dataset.from_tensor_slices(tensors).batch(65536), spec).label_stats
    keras.utils.set_random_seed(training.seed)
    model = build_model(spec, vocab_sizes, stats)
    # Shuffled each epoch like the Trainer's input; the whole split is one in-memory tensor per column.
    batches = (tf.data.Dataset.from_tensor_slices(split_features_labels_weights(tensors, spec))
               .shuffle(examples, seed=training.seed).batch(training.batch_size).prefetch(tf.data.AUTOTUNE))
    started = time.monotonic()
    model.fit(batches, epochs=training.epochs, verbose=0)
    seconds = time.monotonic() - started
    return {"train_examples": examples, "epochs": training.epochs, "batch_size": training.batch_size,
            "fit_s": round(seconds, 1), "examples_per_s": round(examples * training.epochs / seconds, 0)}


def raw_examples(data_dir: str, spec: HeadsSpec, raw_feature_spec: dict, count: int) -> list[bytes]:
    """Up to `count` serialized tf.Examples of the run's CSV rows: feature columns only, empty cells left out."""
    features = [f.name for f in spec.features]
    serialized = []
    for path in sorted(glob.glob(os.path.join(data_dir, "*.csv"))):
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                example = tf.train.Example()
                for name in features:
                    value = row[name]
                    if value == "":
                        continue
                    if raw_feature_spec[name].dtype == tf.string:
                        example.features.feature[name].bytes_list.value.append(value.encode())
                    elif raw_feature_spec[name].dtype == tf.int64:
                        example.features.feature[name].int64_list.value.append(int(value))
                    else:
                        example.features.feature[name].float_list.value.append(float(value))
                serialized.append(example.SerializeToString())
                if len(serialized) == count:
                    return serialized
    return serialized


def _time_calls(call, argument, calls: int) -> np.ndarray:
    for _ in range(WARMUP_CALLS):
        call(argument)
    seconds = np.empty(calls)
    for i in range(calls):
        started = time.perf_counter()
        outputs = call(argument)
        # Eager tensors are ready when returned on CPU; reading one keeps an async device honest too.
        tf.nest.flatten(outputs)[0].numpy()  # a dict of outputs, from either
        seconds[i] = time.perf_counter() - started
    return seconds


def time_interleaved(calls: dict, calls_each: int, rounds: int) -> dict[str, np.ndarray]:
    """Seconds of `calls_each` timed calls of every `(function, argument)` in `calls`, taken in `rounds` turns.

    Each turn times every function in order, so a slow spell of the shared machine falls on all of them alike
    instead of on whichever happened to run then.
    """
    per_round = calls_each // rounds
    seconds = {name: [] for name in calls}
    for _ in range(rounds):
        for name, (call, argument) in calls.items():
            seconds[name].append(_time_calls(call, argument, per_round))
    return {name: np.concatenate(parts) for name, parts in seconds.items()}


def latency_summary(seconds: np.ndarray, batch: int) -> dict:
    """p50/p99 latency in milliseconds and examples per second (from the total time) of timed calls."""
    return {"batch": batch, "calls": int(seconds.size),
            "p50_ms": round(float(np.percentile(seconds, 50)) * 1000, 2),
            "p99_ms": round(float(np.percentile(seconds, 99)) * 1000, 2),
            "examples_per_s": round(batch * seconds.size / float(seconds.sum()), 0)}


def compare_to_floor(signature: dict, floor: dict) -> dict:
    """Two `latency_summary`s side by side, and the signature's throughput as a fraction of the floor's."""
    return {"serving_default": signature, "bare_model": floor,
            "throughput_ratio": round(signature["examples_per_s"] / floor["examples_per_s"], 3),
            # Typical calls only: a stall of the machine in either loop moves the mean.
            "p50_throughput_ratio": round(floor["p50_ms"] / signature["p50_ms"], 3)}


def parse_ceiling(bare: dict, parse_only: dict, empty_call: dict) -> dict:
    """The highest p50 ratio a signature on serialized tf.Examples could reach: the bare model plus parsing alone.

    Parsing costs the parse-only function's p50 less that of a function that takes the same batch and does
    nothing; a signature cannot do less than parse its input and run the model.
    """
    parse_ms = max(parse_only["p50_ms"] - empty_call["p50_ms"], 0.0)
    return {"parse_only": parse_only, "empty_call": empty_call, "parse_ms": round(parse_ms, 3),
            "p50_ratio_ceiling": round(bare["p50_ms"] / (bare["p50_ms"] + parse_ms), 3)}


def serving_floor(spec: HeadsSpec, model_dir: str, data_dir: str, raw_feature_spec: dict) -> dict:
    """`serving_default` on raw examples against the bare Keras model on transformed tensors, batch 1 and 1,000.

    At batch 1,000 it also times `tf.io.parse_example` alone on the same batch, with the signature's own feature
    spec, to tell how much of the gap parsing leaves to close (`parse_ceiling`).
    """
    loaded = tf.saved_model.load(model_dir)
    serve = loaded.signatures["serving_default"]
    transform = loaded.signatures["transform_features"]
    bare_model = keras.models.load_model(model_dir, compile=False)
    inputs = [transformed_name(f.name) for f in spec.features]
    # The batch dimension left unknown, as in the serving signature: traced for batch 1, a rank-1 categorical
    # input would otherwise be read as one example's token list by CategoryEncoding.
    transformed_spec = {name: tf.TensorSpec([None], spec_dtype) for name, spec_dtype in
                        ((transformed_name(f.name), tf.float32 if f.kind == "numeric" else tf.int64)
                         for f in spec.features)}
    bare = tf.function(lambda features: bare_model(features, training=False), input_signature=[transformed_spec])
    serving_spec = serving_feature_spec(raw_feature_spec, spec)
    examples_spec = [tf.TensorSpec([None], tf.string)]
    # Every parsed column's size as the one output: returning the SparseTensors would time their trip to Python.
    parse_only = tf.function(lambda e: tf.stack([tf.size(column.values if isinstance(column, tf.SparseTensor)
                                                         else column)
                                                 for column in tf.io.parse_example(e, serving_spec).values()]),
                             input_signature=examples_spec, autograph=False)
    empty_call = tf.function(lambda e: tf.size(e), input_signature=examples_spec, autograph=False)

    examples = raw_examples(data_dir, spec, raw_feature_spec, SERVING_BATCH)
    result = {"model_dir": model_dir}
    for batch, calls in ((1, SINGLE_CALLS), (SERVING_BATCH, BATCH_REPEATS)):
        raw = tf.constant(examples[:batch])
        transformed = {name: tensor for name, tensor in transform(examples=raw).items() if name in inputs}
        timed = {"serving_default": (lambda x: serve(examples=x), raw), "bare_model": (bare, transformed)}
        if batch == SERVING_BATCH:
            timed.update(parse_only=(parse_only, raw), empty_call=(empty_call, raw))
        seconds = time_interleaved(timed, calls, ROUNDS)
        summaries = {name: latency_summary(s, batch) for name, s in seconds.items()}
        result[f"batch_{batch}"] = compare_to_floor(summaries["serving_default"], summaries["bare_model"])
        if batch == SERVING_BATCH:
            result[f"batch_{batch}"]["parse_ceiling"] = parse_ceiling(
                summaries["bare_model"], summaries["parse_only"], summaries["empty_call"])
    return result


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--heads", required=True)
    parser.add_argument("--trainer-wall-s", type=float, help="the Trainer component's wall time in that run")
    parser.add_argument("--serving-only", action="store_true", help="measure the serving floor alone")
    args = parser.parse_args(argv)
    spec = load_spec(Path(args.heads))
    artifacts = os.path.join(args.workdir, "artifacts")  # the pipeline root `python -m pipeline run` uses
    transform_graph = newest_path(os.path.join(artifacts, "Transform", "transform_graph", "*"), "Transform graph")
    tf_transform_output = tft.TFTransformOutput(transform_graph)
    train_dir = newest_path(os.path.join(artifacts, "Transform", "transformed_examples", "*", "Split-train"),
                        "transformed train split")
    results = {} if args.serving_only else {"trainer": trainer_floor(spec, tf_transform_output, train_dir)}
    if args.trainer_wall_s and not args.serving_only:
        pipeline_rate = results["trainer"]["train_examples"] * spec.training.epochs / args.trainer_wall_s
        results["trainer"].update(pipeline_trainer_wall_s=args.trainer_wall_s,
                                  pipeline_examples_per_s=round(pipeline_rate, 0),
                                  ratio=round(pipeline_rate / results["trainer"]["examples_per_s"], 3))
    pushed = sorted(glob.glob(os.path.join(args.workdir, "serving", "[0-9]*")))
    # Not blessed means nothing pushed; the Trainer's exported model is the same SavedModel the Pusher copies.
    model_dir = pushed[-1] if pushed else newest_path(
        os.path.join(artifacts, "Trainer", "model", "*", "Format-Serving"), "Trainer model")
    results["serving"] = serving_floor(spec, model_dir, args.data, tf_transform_output.raw_feature_spec())
    results["serving"]["pushed"] = bool(pushed)
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    sys.exit(main())
