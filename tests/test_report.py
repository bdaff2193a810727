"""The run report: its pure parts on tiny in-memory data, and (slow) the report of a real penguins run, rendered in
headless Chromium."""

import dataclasses
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from components.spec import HeadSpec, spec_from_dict
from pipeline import cli
from pipeline.read import report

EXPECTED_PLOTS = {
    "species": ["threshold", "slices", "confusion", "training"],
    "sex": ["threshold", "slices", "confusion", "training"],
    "body_mass_g": ["threshold", "slices", "predicted_vs_true", "residuals", "training"],
}
ISLANDS = ("Biscoe", "Dream", "Torgersen")


def non_background_share(path: Path) -> float:
    """The share of pixels whose colour differs from the most common one (the background)."""
    pixels = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3)
    _, counts = np.unique(pixels, axis=0, return_counts=True)
    return 1.0 - counts.max() / counts.sum()


def assert_not_blank(path: Path, share: float = 0.01) -> None:
    assert path.is_file(), f"{path} is missing"
    drawn = non_background_share(path)
    assert drawn >= share, f"{path} is blank: only {drawn:.2%} of its pixels differ from the background"


def test_blank_check_fails_on_a_blank_image(tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (200, 100), "white").save(blank)
    with pytest.raises(AssertionError, match="blank"):
        assert_not_blank(blank)
    dot = tmp_path / "dot.png"
    image = Image.new("RGB", (200, 100), "white")
    image.putpixel((5, 5), (0, 0, 0))   # one pixel is not a plot
    image.save(dot)
    with pytest.raises(AssertionError, match="blank"):
        assert_not_blank(dot)


# ---------------------------------------------------------------------------------------------------------
# Pure helpers.

SPECIES = HeadSpec(name="species", label="species", kind="multiclass", loss=None, threshold=None,
                   classes=("Adelie", "Chinstrap", "Gentoo"))
MASS = HeadSpec(name="body_mass_g", label="body_mass_g", kind="regression", loss=None, threshold=None)


def test_confusion_counts():
    counts = report.confusion_counts([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0], 3)
    assert counts.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_residuals_wrap_angles_the_shorter_way():
    assert report.residuals("regression", np.array([10.0]), np.array([12.5])).tolist() == [2.5]
    wrapped = report.residuals("angle", np.array([0.1, 6.2]), np.array([6.2, 0.1]))
    np.testing.assert_allclose(wrapped, [6.1 - 2 * np.pi, 2 * np.pi - 6.1])


def test_head_labels_skip_missing_and_unknown_classes():
    labels, keep = report.head_labels(SPECIES, [b"Gentoo", None, b"Penguin?", b"Adelie"])
    assert labels.tolist() == [2, 0]
    assert keep.tolist() == [True, False, False, True]
    labels, keep = report.head_labels(MASS, [3500.0, None])
    assert labels.tolist() == [3500.0] and keep.tolist() == [True, False]


def test_count_slices_leaves_rows_without_the_feature_out():
    rows = [{"island": b"Biscoe"}, {"island": b"Biscoe"}, {"island": b"Dream"}, {"island": None}]
    assert report.count_slices(rows, [("island",)]) == {
        (): 4, (("island", "Biscoe"),): 2, (("island", "Dream"),): 1}


def test_head_predictions_align_labels_and_predictions():
    rows = [{"species": b"Gentoo"}, {"species": None}, {"species": b"Adelie"}]
    outputs = {"species__class": np.array([b"Gentoo", b"Adelie", b"Chinstrap"])}
    predicted = report.head_predictions(SPECIES, rows, outputs)
    assert predicted.true.tolist() == [2, 0] and predicted.predicted.tolist() == [2, 1] and predicted.rows == 3
    predicted = report.head_predictions(MASS, [{"body_mass_g": 3000.0}, {"body_mass_g": None}],
                                        {"body_mass_g": np.array([[3100.0], [4000.0]])})
    assert predicted.true.tolist() == [3000.0] and predicted.predicted.tolist() == [3100.0]


def _metrics_for_slice(island, values, too_small=False):
    from tensorflow_model_analysis.proto import metrics_for_slice_pb2  # noqa: PLC0415

    proto = metrics_for_slice_pb2.MetricsForSlice()
    if island:
        proto.slice_key.single_slice_keys.add(column="island", bytes_value=island.encode())
    if too_small:
        kv = proto.metric_keys_and_values.add()
        kv.key.name = "__ERROR__"
        kv.value.bytes_value = b"Example count for this slice key is lower than the minimum required value: 20."
    for (head, name, model, is_diff), value in values.items():
        kv = proto.metric_keys_and_values.add()
        kv.key.name, kv.key.output_name, kv.key.model_name, kv.key.is_diff = name, head, model, is_diff
        kv.key.example_weighted.value = True
        kv.value.double_value.value = value
    return proto


def test_read_scalars_keeps_numbers_and_skips_text(tmp_path):
    import tensorflow as tf

    with tf.summary.create_file_writer(str(tmp_path / "train")).as_default():
        for step, loss in enumerate([0.9, 0.5]):
            tf.summary.scalar("epoch_loss", loss, step=step)
        tf.summary.text("keras", '{"class_name": "MultiHeadModel"}', step=0)  # what the TensorBoard callback adds
    scalars = report.read_scalars(str(tmp_path))
    assert list(scalars) == ["train"] and list(scalars["train"]) == ["epoch_loss"]
    assert [step for step, _ in scalars["train"]["epoch_loss"]] == [0, 1]
    assert [v for _, v in scalars["train"]["epoch_loss"]] == pytest.approx([0.9, 0.5])


def test_parse_metrics_keeps_candidate_baseline_and_too_small_slices():
    metrics = report.parse_metrics([
        _metrics_for_slice("", {("species", "sparse_categorical_accuracy", "candidate", False): 0.97,
                                ("species", "sparse_categorical_accuracy", "baseline", False): 0.95,
                                ("species", "sparse_categorical_accuracy", "candidate", True): 0.02}),
        _metrics_for_slice("Biscoe", {("species", "sparse_categorical_accuracy", "", False): 1.0}),
        _metrics_for_slice("Torgersen", {}, too_small=True),
    ])
    assert metrics.get((), "species", "sparse_categorical_accuracy") == pytest.approx(0.97)
    assert metrics.get((), "species", "sparse_categorical_accuracy", "baseline") == pytest.approx(0.95)
    assert metrics.get((("island", "Biscoe"),), "species", "sparse_categorical_accuracy") == 1.0
    assert metrics.has_baseline
    assert list(metrics.too_small) == [(("island", "Torgersen"),)]
    assert "minimum required value" in metrics.too_small[(("island", "Torgersen"),)]
    assert metrics.slices() == [(), (("island", "Biscoe"),), (("island", "Torgersen"),)]


def test_parse_thresholds_reads_the_evaluators_config(penguins_spec):
    from pipeline.definition.eval_config import build_eval_config  # noqa: PLC0415

    data = penguins_spec.to_dict()
    data["heads"][0]["threshold"]["per_slice"] = [{"slice": ["island"], "lower": 0.9}]
    spec = spec_from_dict(data)
    thresholds = report.parse_thresholds(build_eval_config(spec, baseline_heads=["species", "sex", "body_mass_g"]))
    species = thresholds["species"]
    assert (species.metric, species.lower, species.upper, species.change) == (
        "sparse_categorical_accuracy", 0.95, None, pytest.approx(-0.02))
    assert species.slice_bound(()) == 0.95 and species.slice_bound((("island", "Dream"),)) == 0.9
    mass = thresholds["body_mass_g"]
    assert (mass.metric, mass.upper, mass.change, mass.higher_is_better) == ("mean_absolute_error", 350, 15, False)
    assert mass.slice_bound((("island", "Dream"),)) is None
    # A new head (not in the baseline) has no change bound.
    assert report.parse_thresholds(build_eval_config(spec, baseline_heads=["species", "sex"]))[
        "body_mass_g"].change is None


# ---------------------------------------------------------------------------------------------------------
# Plots and page on tiny data.

THRESHOLD = report.HeadThreshold(metric="sparse_categorical_accuracy", lower=0.9, change=-0.02,
                                 slice_bounds=((("island",), 0.8, None),))


def _tiny_report(tmp_path) -> tuple[report.RunReport, dict]:
    metrics = report.parse_metrics([
        _metrics_for_slice("", {("species", "sparse_categorical_accuracy", "candidate", False): 0.93,
                                ("species", "sparse_categorical_accuracy", "baseline", False): 0.94,
                                ("species", "weighted_example_count", "candidate", False): 10.0}),
        _metrics_for_slice("Biscoe", {("species", "sparse_categorical_accuracy", "candidate", False): 0.9,
                                      ("species", "weighted_example_count", "candidate", False): 7.0}),
        _metrics_for_slice("Torgersen", {}, too_small=True),
    ])
    run_report = report.RunReport(
        run_id="run-1", started=0.0, components=[("Trainer", "COMPLETE", 8)], heads=[SPECIES],
        thresholds={"species": THRESHOLD}, slicing=[("island",)], min_slice_size=5, metrics=metrics, blessed=True,
        failures=[], slice_counts={(): 10, (("island", "Biscoe"),): 7, (("island", "Torgersen"),): 3},
        predictions={"species": report.HeadPredictions(true=np.array([0, 1, 2, 2]), predicted=np.array([0, 1, 2, 1]),
                                                       rows=4)},
        curves={"train": {"epoch_species_loss": [(0, 1.0), (1, 0.5), (2, 0.3)],
                          "epoch_species_weight": [(0, 1.0), (1, 1.2), (2, 0.9)]}},
        pushed="pushed to /serving/7", provenance={"git_commit": "abc123", "pushed_at": 0.0, "heads": ["species"]},
        provenance_source="/serving/7/assets.extra/push.json", notes=[])
    return run_report, report.draw_plots(run_report, tmp_path)


def test_plots_on_tiny_data_are_drawn(tmp_path):
    _, plots = _tiny_report(tmp_path)
    assert [name for name, _ in plots["species"]] == [
        "species_threshold.png", "species_slices.png", "species_confusion.png", "species_training.png"]
    for name, _ in plots["species"]:
        assert_not_blank(tmp_path / name)
    mass = tmp_path / "pvt.png"
    report.plot_predicted_vs_true(mass, "body_mass_g", np.array([3000.0, 4000, 5000]), np.array([3100.0, 3900, 5200]))
    assert_not_blank(mass)
    residual = tmp_path / "residuals.png"
    report.plot_residuals(residual, "body_mass_g", np.array([3100.0, 3900, 5200]), np.array([100.0, -100, 200]))
    assert_not_blank(residual)


def test_slice_bars_show_suppressed_slices_as_too_small(tmp_path):
    run_report, _ = _tiny_report(tmp_path)
    bars = report.slice_bars(run_report, "species")
    assert [b[0] for b in bars] == ["overall", "island=Biscoe", "island=Torgersen"]
    assert bars[0][1:4] == (0.93, 0.94, 0.9)          # overall: candidate, baseline, the overall bound
    assert bars[1][1:4] == (0.9, None, 0.8)           # a slice: its per-slice bound
    assert bars[2][4] == "too small\n(n=3 < 5)"


def test_page_names_heads_slices_provenance_and_every_plot(tmp_path):
    run_report, plots = _tiny_report(tmp_path)
    page = report.render_html(run_report, plots)
    assert "<h2 id='head-species'>" in page
    assert "island=Biscoe" in page and "too small: 3 eval rows, below min_slice_size 5" in page
    assert "git_commit" in page and "abc123" in page and "1970-01-01 00:00:00 UTC" in page
    assert "<td>&gt;= 0.9</td>" in page and "<td>>= " not in page      # bounds escaped in the heads table
    # Metrics are named as the spec and the command's table name them, not as TFMA reports them.
    assert "<td>accuracy</td>" in page and "sparse_categorical_accuracy" not in page
    assert sorted(re.findall(r"<img src='([^']+)'", page)) == sorted(name for name, _ in plots["species"])
    assert "data-images" in page   # the load check a headless browser reads


def test_page_of_a_run_stopped_before_training_says_where():
    stopped = report.RunReport(
        run_id="run-2", started=0.0, components=[("StatisticsGen", "COMPLETE", 4), ("SchemaGate", "FAILED", 6)],
        heads=[], thresholds={}, slicing=[], min_slice_size=1, metrics=None, blessed=None, failures=[],
        slice_counts={}, predictions={}, curves={}, pushed="not pushed", provenance={}, provenance_source="",
        notes=["The run produced no evaluation (it stopped before the Evaluator)."],
        failure=("SchemaGate", "SchemaAnomaliesError: the input data does not fit the heads spec; the run stops "
                               "before Transform:\n  column 'bill_length_mm': ... such as 'NA'"))
    page = report.render_html(stopped, {})
    assert "not evaluated: the run stopped at SchemaGate" in page
    assert "SchemaGate failed:</p><pre>SchemaAnomaliesError: the input data does not fit" in page
    killed = dataclasses.replace(stopped, components=[("StatisticsGen", "COMPLETE", 4), ("Transform", "RUNNING", 7)],
                                 failure=None)
    assert "not evaluated: the run was interrupted during Transform" in report.render_html(killed, {})
    assert "column &#x27;bill_length_mm&#x27;: ... such as &#x27;NA&#x27;</pre>" in page
    assert "No provenance recorded" in page and "<img" not in page
    assert "Data:" not in page
    # A run's span, wherever it stopped: the examples it read, or the span the command recorded.
    read = dataclasses.replace(stopped, data="span 7 (/w/artifacts/CsvExampleGen/examples/3)")
    assert "Started 1970-01-01 00:00:00 UTC. Data: span 7 (/w/artifacts/CsvExampleGen/examples/3)." in \
        report.render_html(read, {})


def test_find_run_by_id_or_number(memory_store):
    from ml_metadata.proto import metadata_store_pb2  # noqa: PLC0415

    store = memory_store
    type_id = store.put_context_type(metadata_store_pb2.ContextType(name="pipeline_run"))
    store.put_contexts([metadata_store_pb2.Context(type_id=type_id, name=name)
                        for name in ("20261123-100000.1", "20261123-110000.2")])
    assert report.find_run(store).name == "20261123-110000.2"
    assert report.find_run(store, "1").name == "20261123-100000.1"
    assert report.find_run(store, "20261123-110000.2").name == "20261123-110000.2"
    with pytest.raises(report.ReportError, match=r"--run: no run '7' \(runs: 20261123-100000.1, 20261123-110000.2"):
        report.find_run(store, "7")


def test_report_command_needs_a_metadata_store(tmp_path, capsys):
    assert cli.main(["report", "--workdir", str(tmp_path)]) == cli.EXIT_BAD_CONFIG
    assert "holds no ML Metadata store" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------------
# The report of a real run.


def chromium(*args: str, user_data_dir: Path) -> subprocess.CompletedProcess:
    """Headless Chromium, isolated from the network and from any profile."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs Debian's package)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return subprocess.run(
        [executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={user_data_dir}", *args], capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def run_report_path(penguins_run) -> Path:
    workdir, result = penguins_run
    assert result.returncode == 0, result.stderr[-3000:]
    written = re.search(r"^report: (.+) \([\d.]+ s\)$", result.stdout, re.MULTILINE)
    assert written, f"the run printed no report path:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    path = Path(written.group(1))
    assert path.parent.parent == workdir / "reports" and path.name == "report.html"
    return path


@pytest.mark.slow
def test_run_report_has_every_head_island_slice_and_plot(run_report_path):
    page = run_report_path.read_text()
    for head, kinds in EXPECTED_PLOTS.items():
        assert f"<h2 id='head-{head}'>" in page
        for kind in kinds:
            assert_not_blank(run_report_path.parent / f"{head}_{kind}.png")
            assert f"<img src='{head}_{kind}.png'" in page
    for island in ISLANDS:
        assert f"island={island}" in page
    # Provenance: the pushed version's push.json.
    assert "assets.extra/push.json" in page and "heads_spec_fingerprint" in page and "model_uri" in page


@pytest.mark.slow
def test_run_report_renders_in_headless_chromium(run_report_path, tmp_path):
    url = run_report_path.as_uri()
    dom = chromium("--virtual-time-budget=5000", "--dump-dom", url, user_data_dir=tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom.stdout).group(0)
    images = sum(len(kinds) for kinds in EXPECTED_PLOTS.values())
    assert f'data-images="ok:{images}"' in body, f"not every image loaded: {body}"
    assert "data-errors" not in body, body
    screenshot = tmp_path / "report.png"
    shot = chromium("--window-size=1400,3600", "--hide-scrollbars", f"--screenshot={screenshot}", url,
                    user_data_dir=tmp_path / "profile-shot")
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert_not_blank(screenshot, share=0.05)


@pytest.mark.slow
def test_plots_agree_with_the_evaluator(penguins_run, run_report_path):
    """The predictions behind the confusion matrices and scatter plots reproduce TFMA's metrics: the labels and
    rows are the ones the Evaluator scored."""
    from ml_metadata.metadata_store import metadata_store  # noqa: PLC0415

    from pipeline.runners import local as local_runner  # noqa: PLC0415

    workdir, _ = penguins_run
    store = metadata_store.MetadataStore(local_runner.metadata_config(str(workdir / "metadata.sqlite")))
    gathered = report.gather_report(store, report.find_run(store, run_report_path.parent.name))
    assert gathered.notes == []
    for head in ("species", "sex"):
        predicted = gathered.predictions[head]
        counts = report.confusion_counts(predicted.true, predicted.predicted, 3 if head == "species" else 2)
        metric = gathered.thresholds[head].metric
        assert np.trace(counts) / counts.sum() == pytest.approx(gathered.metrics.get((), head, metric), abs=1e-6)
        assert counts.sum() == gathered.metrics.get((), head, "weighted_example_count")
    mass = gathered.predictions["body_mass_g"]
    assert np.mean(np.abs(mass.predicted - mass.true)) == pytest.approx(
        gathered.metrics.get((), "body_mass_g", "mean_absolute_error"), rel=1e-4)
    assert set(gathered.slice_counts) >= {(("island", island),) for island in ISLANDS}
    assert {"epoch_species_loss", "epoch_sex_loss", "epoch_body_mass_g_loss"} <= set(gathered.curves["train"])


@pytest.mark.slow
def test_report_command_recreates_a_past_runs_report(penguins_run, run_report_path, capsys):
    workdir, _ = penguins_run
    shutil.rmtree(run_report_path.parent)
    # In this process: TensorFlow is loaded already, and a fresh process would add half a minute of imports.
    assert cli.main(["report", "--workdir", str(workdir), "--run", "1"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(run_report_path)
    for head, kinds in EXPECTED_PLOTS.items():
        for kind in kinds:
            assert_not_blank(run_report_path.parent / f"{head}_{kind}.png")
