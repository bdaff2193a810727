"""Bad input stops the run before Transform, naming the file or column; nothing is pushed, nothing left behind.

Two tiers, sharing work: files CsvExampleGen could not read as the spec needs are stopped by the command's
preflight (no component runs; each case takes a second), and one real pipeline run on a file that holds every
kind of schema-breaking value at once checks that TFDV and the gate name each of them.
"""

import pytest
from ml_metadata.metadata_store import metadata_store

from components.spec import load_spec
from pipeline import cli
from pipeline.definition.provenance import project_git_commit
from pipeline.read import results
from pipeline.runners import local as local_runner

from conftest import PENGUINS_CSV, PENGUINS_HEADS, run_cli

HEADER = PENGUINS_CSV.read_text().splitlines()[0]
ROWS = PENGUINS_CSV.read_text().splitlines()[1:]


def penguins_with(edit) -> str:
    """The penguins CSV text after `edit(list of (column -> value) dicts)`."""
    columns = HEADER.split(",")
    rows = [dict(zip(columns, line.split(","))) for line in ROWS]
    edit(rows)
    return "\n".join([",".join(columns)] + [",".join(r[c] for c in columns) for r in rows]) + "\n"


def assert_stopped_early(result, workdir, *phrases):
    assert result.returncode == cli.EXIT_DATA_REJECTED, result.stderr[-3000:]
    for phrase in phrases:
        assert phrase in result.stderr, (phrase, result.stderr[-3000:])
    assert "Nothing was transformed, trained or pushed." in result.stderr
    assert not (workdir / "serving").exists()


PREFLIGHT_CASES = {
    "wrong_number_of_fields": (lambda p: p.write_text(HEADER + "\n" + ROWS[0] + "\n" + ROWS[1] + ",extra\n"),
                               ["line 3: 9 fields, but the header has 8"]),
    "feature_column_missing": (lambda p: p.write_text(HEADER.replace("island", "isle") + "\n" + "\n".join(ROWS)),
                               ["features[0].name: column 'island' is not in the header of"]),
    "label_column_missing": (lambda p: p.write_text(HEADER.replace(",sex,", ",gender,") + "\n" + "\n".join(ROWS)),
                             ["heads[1].label: column 'sex' is not in the header of"]),
    "empty_file": (lambda p: p.write_text(""), ["the file is empty"]),
    "header_only": (lambda p: p.write_text(HEADER + "\n"), ["a header but no data rows"]),
    "not_csv_binary": (lambda p: p.write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(256)) * 4),
                       ["not a CSV file (it holds binary data; if it is TFRecord data, pass --format tfrecord)"]),
    "not_csv_text": (lambda p: p.write_text('{"species": "Adelie", "island": "Dream"}\n'),
                     ["column 'island' is not in the header of"]),
    "byte_order_mark": (lambda p: p.write_text("\ufeff" + HEADER + "\n" + "\n".join(ROWS), encoding="utf-8"),
                        ["starts with a UTF-8 byte-order mark", "save it as UTF-8 without one"]),
}


@pytest.mark.parametrize("case", sorted(PREFLIGHT_CASES))
def test_unreadable_input_stops_before_any_component(tmp_path, case):
    write, phrases = PREFLIGHT_CASES[case]
    data = tmp_path / "penguins.csv"
    write(data)
    result = run_cli("run", "--data", str(data), "--heads", str(PENGUINS_HEADS), "--workdir", str(tmp_path / "w"))
    assert_stopped_early(result, tmp_path / "w", str(data), *phrases)
    assert not (tmp_path / "w" / "metadata.sqlite").exists()   # no component ran


def reversed_columns(path):
    columns = HEADER.split(",")[::-1]
    path.write_text(",".join(columns) + "\n" + "\n".join(",".join(line.split(",")[::-1]) for line in ROWS[:50]))


# A span folder of files each readable alone, which ExampleGen would still fail on (or read wrongly) together.
SPAN_CASES = {
    "headers_differ": ({"b.csv": reversed_columns},
                       ["b.csv: its header differs from that of", "a.csv, which is read with it as one table"]),
    "broken_link": ({"b.csv": lambda p: p.symlink_to(p.parent / "gone" / "part.csv")},
                    ["b.csv: a link to", "which does not exist"]),
    "hidden_file": ({"._a.csv": lambda p: p.write_bytes(b"\x00\x05\x16\x07 AppleDouble")},
                    ["._a.csv: a hidden file or marker in span 2, which ExampleGen would read as data"]),
}


@pytest.mark.parametrize("case", sorted(SPAN_CASES))
def test_unreadable_files_in_a_span_stop_before_any_component(tmp_path, case):
    extra, phrases = SPAN_CASES[case]
    for span in (1, 2):
        (tmp_path / f"span-{span}").mkdir()
        (tmp_path / f"span-{span}" / "a.csv").write_text(HEADER + "\n" + "\n".join(ROWS[:50]) + "\n")
    for name, write in extra.items():
        write(tmp_path / "span-2" / name)
    result = run_cli("retrain", "--data", str(tmp_path / "span-{SPAN}" / "*.csv"), "--heads", str(PENGUINS_HEADS),
                     "--workdir", str(tmp_path / "w"))
    assert "new span 2" in result.stdout
    assert_stopped_early(result, tmp_path / "w", *phrases)
    assert not (tmp_path / "w" / "metadata.sqlite").exists()   # no component ran


def break_schema(rows):
    rows[0]["flipper_length_mm"] = "long"           # text in a numeric column
    rows[1]["bill_length_mm"] = "nan"               # NaN where the schema disallows it
    rows[2]["bill_depth_mm"] = "inf"                # infinity where the schema disallows it
    rows[4]["body_mass_g"] = "380000"               # far outside the schema's range
    rows[5]["island"] = ""                          # empty where the schema requires a value
    for row in rows:
        row["sex"] = ""                             # a label column empty in every row


@pytest.fixture(scope="module")
def rejected_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad_data")
    data = tmp / "penguins.csv"
    data.write_text(penguins_with(break_schema))
    workdir = tmp / "run"
    return workdir, run_cli("run", "--data", str(data), "--heads", str(PENGUINS_HEADS), "--workdir", str(workdir))


@pytest.mark.slow
@pytest.mark.parametrize("column,problem", [
    ("flipper_length_mm", "Expected data of type: INT but got STRING"),
    ("bill_length_mm", "NaN"),
    ("bill_depth_mm", "Inf"),
    ("body_mass_g", "Unexpectedly large value: 380000"),
    ("island", "fewer values than expected"),
    ("sex", "label column has no value in any row"),
])
def test_schema_breaking_values_are_each_named(rejected_run, column, problem):
    workdir, result = rejected_run
    assert_stopped_early(result, workdir, "does not match the curated schema")
    lines = [line for line in result.stderr.splitlines() if f"column '{column}'" in line]
    assert lines, result.stderr[-3000:]
    assert any(problem.lower() in line.lower() for line in lines), lines


@pytest.mark.slow
def test_nothing_after_the_gate_ran(rejected_run):
    workdir, _ = rejected_run
    store = metadata_store.MetadataStore(local_runner.metadata_config(str(workdir / "metadata.sqlite")))
    ran = results.executions_by_node(store)
    assert "ExampleValidator" in ran and "SchemaGate" in ran
    assert not set(ran) & {"Transform", "Trainer", "Evaluator", "Pusher"}


@pytest.mark.slow
def test_the_report_of_the_stopped_run_repeats_the_gates_reason(rejected_run):
    workdir, _ = rejected_run
    (page,) = (workdir / "reports").glob("*/report.html")
    text = page.read_text()
    assert "SchemaGate failed:" in text
    assert "does not match the curated schema and does not fit the heads spec; the run stops before Transform" in text
    assert "column &#x27;flipper_length_mm&#x27;" in text
    assert "heads unknown" not in text and "stopped before Transform" in text


@pytest.mark.slow
def test_the_runs_list_shows_the_stopped_runs_spec_and_commit_printed_once(rejected_run):
    workdir, result = rejected_run
    listing = run_cli("runs", "--workdir", str(workdir))
    (line,) = listing.stdout.strip().splitlines()[1:]
    assert "stopped by the data at SchemaGate" in line
    assert load_spec(PENGUINS_HEADS).fingerprint() in line and project_git_commit()[:12] in line
    # The gate's findings once, after RUN STOPPED: not also in Beam's logged copy of the error.
    assert result.stderr.count("does not match the curated schema") == 1, result.stderr[-3000:]


# Without a curated schema SchemaGen infers one from the same data, so ExampleValidator finds nothing; the gate
# still checks the data against the heads spec before Transform would fail on it, naming no column.

@pytest.fixture(scope="module")
def rejected_run_without_schema(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad_data_no_schema")
    data = tmp / "penguins.csv"
    data.write_text(penguins_with(lambda rows: [row.update(bill_length_mm="NA") for row in rows[:5]]))
    heads = tmp / "heads.yaml"                      # no schema.pbtxt beside it
    heads.write_text(PENGUINS_HEADS.read_text().replace("classes: [female, male]", "classes: [Female, Male]")
                     .replace("[Adelie, Chinstrap, Gentoo]", "[Adelie, Chinstrapp, Gentoo]"))
    workdir = tmp / "run"
    return workdir, run_cli("run", "--data", str(data), "--heads", str(heads), "--workdir", str(workdir))


@pytest.mark.slow
def test_without_a_curated_schema_data_that_does_not_fit_the_spec_stops_at_the_gate(rejected_run_without_schema):
    workdir, result = rejected_run_without_schema
    assert "schema inferred by SchemaGen" in result.stdout
    assert_stopped_early(result, workdir, "does not fit the heads spec",
                         "column 'bill_length_mm': the heads spec reads it as numbers, but it holds text such as "
                         "'NA'",
                         "label column 'sex': none of its values is one of its head's classes ['Female', 'Male']",
                         "label column 'species': class 'Chinstrapp' of its head never occurs in the train split, "
                         "which holds 'Chinstrap'")
    assert "class 'Female' of its head" not in result.stderr   # the sex column is named once, above


# Skew: the spec's bound against TFDV statistics of the serving data, here given as a binary proto (one of the
# three forms the command reads); the serving data holds one island only.

@pytest.mark.slow
def test_serving_data_past_a_skew_bound_stops_the_run_naming_the_column(tmp_path):
    import pandas as pd
    import tensorflow_data_validation as tfdv

    heads = tmp_path / "heads.yaml"
    heads.write_text(PENGUINS_HEADS.read_text() + "\nskew:\n  island: 0.2\n")
    stats = tmp_path / "serving_stats.pb"
    stats.write_bytes(tfdv.generate_statistics_from_dataframe(
        pd.DataFrame({"island": ["Torgersen"] * 50, "year": [2009] * 50})).SerializeToString())
    workdir = tmp_path / "run"
    result = run_cli("run", "--data", str(PENGUINS_CSV), "--heads", str(heads), "--workdir", str(workdir),
                     "--schema", str(PENGUINS_HEADS.parent / "schema.pbtxt"), "--serving-stats", str(stats))
    assert_stopped_early(result, workdir, "moved further from the serving data", "column 'island'")
    assert "column 'island'" in result.stderr.split("RUN STOPPED")[1]
    # Read as a snapshot in the workdir, so an edited file is compared again (not taken from the cache).
    assert list((workdir / "serving_statistics").glob("*/stats.pbtxt"))


def test_a_serving_statistics_file_that_is_not_statistics_exits_2_before_anything_runs(tmp_path):
    stats = tmp_path / "serving.csv"
    stats.write_text(PENGUINS_CSV.read_text())
    result = run_cli("run", "--data", str(PENGUINS_CSV), "--heads", str(PENGUINS_HEADS), "--workdir",
                     str(tmp_path / "run"), "--serving-stats", str(stats))
    assert result.returncode == cli.EXIT_BAD_CONFIG
    assert f"--serving-stats: {stats} is not TFDV statistics" in result.stderr
    assert not (tmp_path / "run").exists()
