"""The benchmark harness's pure parts (benchmarks/run_benchmarks.py): event parsing, peaks, marginal costs,
the table and JSON, process-tree RSS sampling on a tiny child process, and the serving floor's ratios. No
pipeline run: the harness's own run at 10k rows takes minutes, far over this suite's budget for one test."""

import dataclasses
import json
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest

from benchmarks import run_benchmarks as bench
from benchmarks.run_benchmarks import ComponentTiming


def test_component_events_pair_start_and_done_lines_and_ignore_other_output():
    lines = [(1.0, "some log line\n"), (2.0, "[start]  CsvExampleGen\n"), (5.5, "[done]   CsvExampleGen in 3.5 s\n"),
             (6.0, "[start]  Trainer\n"), (9.0, "[failed] Trainer after 3.0 s\n"), (9.5, "[start]  Pusher\n")]
    timings = bench.component_events(lines)
    assert [(t.name, t.start_s, t.end_s) for t in timings] == [
        ("CsvExampleGen", 2.0, 5.5), ("Trainer", 6.0, 9.0), ("Pusher", 9.5, None)]
    assert timings[0].wall_s == pytest.approx(3.5)
    assert timings[2].wall_s != timings[2].wall_s  # NaN: never finished


def test_assign_peaks_takes_the_largest_sample_inside_each_interval_including_overlaps():
    timings = [ComponentTiming("A", 0.0, 2.0), ComponentTiming("B", 1.5, 4.0), ComponentTiming("C", 10.0, 11.0)]
    samples = [(0.5, 100), (1.6, 300), (2.5, 200), (3.9, 50), (5.0, 999)]
    bench.assign_peaks(timings, samples)
    assert [t.peak_rss_bytes for t in timings] == [300, 300, 0]


def test_a_component_shorter_than_the_sampling_interval_gets_the_next_sample():
    timings = [ComponentTiming("Pusher", 1.01, 1.02)]
    bench.assign_peaks(timings, [(1.0, 100), (1.2, 150), (1.4, 900)])
    assert timings[0].peak_rss_bytes == 150


def test_rows_per_second_is_left_out_for_components_too_short_to_time():
    assert bench.rows_per_second(10_000, 4.0) == 2500
    assert bench.rows_per_second(10_000, 0.01) is None


def test_marginal_seconds_per_100k_rows_between_consecutive_sizes():
    marginal = bench.marginal_seconds_per_100k({1_000_000: 190.0, 10_000: 10.0, 100_000: 28.0})
    assert marginal == {"10000->100000": 20.0, "100000->1000000": 18.0}
    assert bench.marginal_seconds_per_100k({10_000: 10.0}) == {}


def _run(rows: int, trainer_s: float, total_s: float) -> dict:
    return {"rows": rows, "total_s": total_s, "startup_s": 30.0, "peak_rss_bytes": 3 * 2**30,
            "components": {"Transform": {"wall_s": 10.0, "rows_per_s": rows / 10.0, "peak_rss_bytes": 2**30},
                           "Trainer": {"wall_s": trainer_s, "rows_per_s": rows / trainer_s,
                                       "peak_rss_bytes": 2 * 2**30}}}


def test_marginal_costs_cover_every_component_in_run_order_and_the_whole_command():
    costs = bench.marginal_costs({10_000: _run(10_000, 20.0, 100.0), 100_000: _run(100_000, 65.0, 190.0)})
    assert list(costs) == ["Transform", "Trainer", "total (whole command)"]
    assert costs["Trainer"] == {"10000->100000": 50.0}
    assert costs["total (whole command)"] == {"10000->100000": 100.0}
    assert bench.marginal_costs({10_000: _run(10_000, 20.0, 100.0)}) == {}


def test_table_has_a_row_per_component_and_columns_per_size():
    table = bench.format_table({100_000: _run(100_000, 65.0, 190.0), 10_000: _run(10_000, 20.0, 100.0)})
    lines = table.splitlines()
    assert lines[0].index("10,000 rows") < lines[0].index("100,000 rows")
    trainer = next(line for line in lines if line.startswith("Trainer"))
    assert trainer.split() == ["Trainer", "20.0", "500", "2,048", "65.0", "1,538", "2,048"]
    runs = {10_000: _run(10_000, 20.0, 100.0)}
    runs[10_000]["components"]["Pusher"] = {"wall_s": 0.0, "rows_per_s": None, "peak_rss_bytes": 0}
    pusher = next(line for line in bench.format_table(runs).splitlines() if line.startswith("Pusher"))
    assert pusher.split() == ["Pusher", "0.0", "-", "0"]
    total = next(line for line in lines if line.startswith("total"))
    assert total.split()[-3:] == ["190.0", "526", "3,072"]


def test_results_json_carries_the_fixed_training_settings_and_marginal_costs():
    runs = {10_000: _run(10_000, 20.0, 100.0), 100_000: _run(100_000, 65.0, 190.0)}
    training = {"trunk": [64, 32], "batch_size": 64, "epochs": 30, "learning_rate": 0.005}
    results = json.loads(json.dumps(bench.build_results(training, bench.DEFAULT_HEADS, runs, {"help_s": 1.2})))
    assert results["training"] == {"trunk": [64, 32], "batch_size": 64, "epochs": 30}
    assert list(results["runs"]) == ["10000", "100000"]
    assert results["marginal_s_per_100k_rows"]["Trainer"] == {"10000->100000": 50.0}
    assert results["help_s"] == 1.2


_TREE = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c",
    "import time; block = bytearray(200 * 2**20); block[::4096] = b'x' * len(block[::4096]); "
    "print('ready', flush=True); time.sleep(60)"], stdout=subprocess.PIPE)
child.stdout.readline()
print('ready', flush=True)
time.sleep(60)
"""


def test_tree_rss_counts_a_grandchild_process_memory():
    parent = subprocess.Popen([sys.executable, "-c", _TREE], stdout=subprocess.PIPE)
    try:
        assert parent.stdout.readline().strip() == b"ready"
        own = psutil.Process(parent.pid).memory_info().rss
        tree = bench.tree_rss_bytes(parent.pid)
        # The grandchild touched 200 MiB; the parent alone holds a bare interpreter.
        assert tree - own > 190 * 2**20
    finally:
        for process in psutil.Process(parent.pid).children(recursive=True):
            process.kill()
        parent.kill()
        parent.wait()
    time.sleep(0.1)
    assert bench.tree_rss_bytes(parent.pid) == 0


def test_penguin_anchor_rows_take_the_examples_column_names_and_species_index_and_skip_incomplete_rows():
    from benchmarks.tfx_penguin_anchor import example_rows

    rows = [{"species": "Gentoo", "island": "Biscoe", "bill_length_mm": "46.1", "bill_depth_mm": "13.2",
             "flipper_length_mm": "211", "body_mass_g": "4500", "sex": "female", "year": "2007"},
            {"species": "Adelie", "island": "Torgersen", "bill_length_mm": "", "bill_depth_mm": "",
             "flipper_length_mm": "", "body_mass_g": "", "sex": "", "year": "2007"}]
    assert example_rows(rows) == [{"species": 2, "culmen_length_mm": 46.1, "culmen_depth_mm": 13.2,
                                   "flipper_length_mm": 211.0, "body_mass_g": 4500.0}]


def test_serving_ratio_is_the_signature_throughput_over_the_floor_and_a_stall_moves_only_the_mean():
    from benchmarks.floors import compare_to_floor, latency_summary  # noqa: PLC0415  (imports TensorFlow)

    signature = latency_summary(np.full(100, 0.002), batch=1000)   # 2 ms a call
    floor_seconds = np.full(100, 0.001)
    floor_seconds[0] = 0.101                                        # one 100 ms stall of the machine
    floor = latency_summary(floor_seconds, batch=1000)
    assert (signature["p50_ms"], signature["examples_per_s"]) == (2.0, 500000.0)
    compared = compare_to_floor(signature, floor)
    assert compared["p50_throughput_ratio"] == 0.5                  # 1 ms against 2 ms: half the floor's rate
    assert compared["throughput_ratio"] == 1.0                      # 200 ms in all on either side
    assert compared["serving_default"] is signature and compared["bare_model"] is floor


def test_parse_ceiling_is_the_bare_model_against_the_bare_model_plus_parsing_alone():
    from benchmarks.floors import latency_summary, parse_ceiling  # noqa: PLC0415  (imports TensorFlow)

    bare = latency_summary(np.full(10, 0.0010), batch=1000)
    parse_only = latency_summary(np.full(10, 0.0009), batch=1000)   # 0.6 ms of parsing over the empty call's 0.3
    empty_call = latency_summary(np.full(10, 0.0003), batch=1000)
    ceiling = parse_ceiling(bare, parse_only, empty_call)
    assert ceiling["parse_ms"] == pytest.approx(0.6)
    assert ceiling["p50_ratio_ceiling"] == pytest.approx(1.0 / 1.6, abs=1e-3)


def test_interleaved_timing_takes_every_call_in_every_round():
    import tensorflow as tf  # noqa: PLC0415

    from benchmarks.floors import WARMUP_CALLS, time_interleaved  # noqa: PLC0415

    order = []
    calls = {name: (lambda x, name=name: order.append(name) or tf.constant(x), 0) for name in ("a", "b")}
    seconds = time_interleaved(calls, calls_each=6, rounds=3)
    assert {name: s.size for name, s in seconds.items()} == {"a": 6, "b": 6}
    one_round = ["a"] * (WARMUP_CALLS + 2) + ["b"] * (WARMUP_CALLS + 2)
    assert order == one_round * 3


# benchmarks/marginal_cost.py: StatisticsGen's and Transform's marginal cost, repeated with sizes interleaved.

def test_marginal_cost_reads_each_components_seconds_from_the_runners_done_lines():
    from benchmarks.marginal_cost import done_seconds

    log = ("[start]  StatisticsGen\nsome Beam log\n[done]   StatisticsGen in 7.4 s\n"
           "[start]  Transform\n[done]   Transform in 29.3 s\n")
    assert done_seconds(log) == {"StatisticsGen": 7.4, "Transform": 29.3}


def test_marginal_cost_rounds_alternate_the_order_of_sizes():
    from benchmarks.marginal_cost import round_orders

    assert round_orders([100, 10, 1000], 3) == [[10, 100, 1000], [1000, 100, 10], [10, 100, 1000]]


def test_marginal_cost_summary_compares_the_last_steps_cost_with_the_firsts_in_medians_and_rounds():
    from benchmarks.marginal_cost import summarize

    # Round 1 grows (10 s then 12 s per 100k rows); rounds 2 and 3 fall; the medians fall.
    seconds = {"Transform": {10_000: [20.0, 21.0, 19.0], 100_000: [29.0, 28.0, 30.0], 1_000_000: [137.0, 95.0, 110.0]}}
    result = summarize(seconds)["Transform"]
    assert result["median_s"] == {"10000": 20.0, "100000": 29.0, "1000000": 110.0}
    assert result["marginal_s_per_100k_from_medians"] == {"10000->100000": 10.0, "100000->1000000": 9.0}
    assert [r["100000->1000000"] for r in result["marginal_s_per_100k_per_round"]] == [12.0, 7.44, 8.89]
    assert result["last_step_above_first"] == {"in_medians": False, "rounds": 1, "of_rounds": 3}


def test_conditioning_sweep_compares_the_spec_with_its_conditioned_on_removed(penguins_spec):
    from benchmarks.conditioning_sweep import with_model_seed, without_conditioning

    plain = without_conditioning(penguins_spec)
    assert [h.conditioned_on for h in penguins_spec.heads] == [None, "species", None]
    assert [h.conditioned_on for h in plain.heads] == [None, None, None]
    assert dataclasses.replace(plain, heads=penguins_spec.heads) == penguins_spec   # nothing else differs
    assert with_model_seed(penguins_spec, 7).training.seed == 7
    assert with_model_seed(penguins_spec, 7).training.epochs == penguins_spec.training.epochs


def test_conditioning_sweep_pairs_scores_and_counts_improvements_in_each_metrics_direction():
    from benchmarks.conditioning_sweep import paired_summary

    accuracy = paired_summary([0.90, 0.88, 0.86], [0.88, 0.88, 0.87], higher_is_better=True)
    assert (accuracy.conditioned, accuracy.unconditioned) == (pytest.approx(0.88), pytest.approx(0.8766667))
    assert accuracy.difference == pytest.approx(0.02 / 3 - 0.01 / 3)
    assert accuracy.difference_std == pytest.approx(np.std([0.02, 0.0, -0.01], ddof=1))
    assert (accuracy.better, accuracy.pairs) == (1, 3)
    error = paired_summary([270.0, 280.0], [275.0, 279.0], higher_is_better=False)
    assert (error.difference, error.better, error.pairs) == (pytest.approx(-2.0), 1, 2)


def test_conditional_ceiling_fits_one_model_per_class_of_the_given_head():
    # y is x > 0 in group a and x < 0 in group b: no single linear model fits it, one per group does.
    import pandas as pd

    from benchmarks.conditional_ceiling import per_class_accuracy
    from components.spec import spec_from_dict

    def head(name, classes):
        return {"name": name, "kind": "binary", "classes": classes, "loss": "binary_crossentropy",
                "threshold": {"metric": "accuracy", "lower": 0.5}}

    spec = spec_from_dict({"name": "t", "features": [{"name": "x", "kind": "numeric"},
                                                          {"name": "g_hint", "kind": "numeric"}],
                                "heads": [head("g", ["a", "b"]), head("y", ["no", "yes"])]})
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, 400)
    group = np.where(rng.uniform(size=400) < 0.5, "a", "b")
    positive = np.where(group == "a", x > 0, x < 0)
    # g_hint tells the groups apart except for a few rows, so the predicted group is nearly always right.
    hint = np.where(group == "a", 1.0, -1.0) * np.where(rng.uniform(size=400) < 0.05, -1, 1)
    frame = pd.DataFrame({"x": x, "g_hint": hint, "g": group, "y": np.where(positive, "yes", "no")})
    frame.loc[:9, "y"] = np.nan   # rows without the head's label are left out
    train, test = frame.iloc[:300], frame.iloc[300:]
    assert per_class_accuracy(spec, "y", "g", train, test, predict_given=False) > 0.95
    predicted = per_class_accuracy(spec, "y", "g", train, test, predict_given=True)
    assert 0.85 < predicted < 0.99
