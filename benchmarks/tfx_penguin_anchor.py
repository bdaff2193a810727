"""The anchor of issue 6: TFX's own penguin example, run on this project's penguins data, timed.

Builds the pipeline with `create_pipeline` from the installed `tfx/examples/penguin/penguin_pipeline_local.py`,
with the example's own module file (`penguin_utils_keras.py`, passed by its path as the example does) and its
own DirectRunner Beam arguments, minus Tuner and BulkInferrer (they fail on this stack), and runs it with
TFX's `LocalDagRunner`, as the example's `__main__` does.

Two things differ from the example's defaults, both because of this environment, neither changes the work:

- the data: the example reads TFX's `penguins_processed.csv` (four numeric columns named `culmen_*`,
  `flipper_length_mm`, `body_mass_g`, species as 0/1/2, no missing values); this writes the same columns from
  `data/penguins/penguins.csv` (bill -> culmen, species name -> index, incomplete rows left out);
- `UNSUPPORTED_DO_NOT_PACKAGE_USER_MODULES=1`: otherwise TFX packages the module file as a wheel and installs it
  with `python -m pip`, which a uv venv does not have; with it, TFX imports the module file from its path.

Usage: `python -m benchmarks.tfx_penguin_anchor --workdir DIR`; prints `anchor total: S s` last.
"""

import components  # noqa: F401 - the Keras choice (tf_keras), before TensorFlow loads

# isort: split
import os

os.environ.setdefault("UNSUPPORTED_DO_NOT_PACKAGE_USER_MODULES", "1")

import argparse
import csv
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
PENGUINS_CSV = ROOT / "data" / "penguins" / "penguins.csv"
SPECIES = ("Adelie", "Chinstrap", "Gentoo")
# The example's column names for this project's columns (the example's data calls the bill the culmen).
_COLUMNS = {"culmen_length_mm": "bill_length_mm", "culmen_depth_mm": "bill_depth_mm",
            "flipper_length_mm": "flipper_length_mm", "body_mass_g": "body_mass_g"}


def example_rows(rows: Sequence[dict]) -> list[dict]:
    """This project's penguins rows in the example's format; rows missing any value it reads are left out."""
    converted = []
    for row in rows:
        if row["species"] not in SPECIES or any(row[source] == "" for source in _COLUMNS.values()):
            continue
        converted.append({"species": SPECIES.index(row["species"]),
                          **{name: float(row[source]) for name, source in _COLUMNS.items()}})
    return converted


def write_example_data(source: Path, data_root: Path) -> int:
    """Writes `data_root/labelled/penguins.csv` as the example expects; returns its row count."""
    with source.open(newline="") as f:
        rows = example_rows(list(csv.DictReader(f)))
    (data_root / "labelled").mkdir(parents=True, exist_ok=True)
    with (data_root / "labelled" / "penguins.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["species", *_COLUMNS])
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, required=True)
    args = parser.parse_args(argv)
    started = time.monotonic()
    from tfx import v1 as tfx  # noqa: PLC0415 - timed: the import is part of the example's cost
    from tfx.examples.penguin import penguin_pipeline_local as example  # noqa: PLC0415

    workdir = args.workdir.resolve()
    rows = write_example_data(PENGUINS_CSV, workdir / "data")
    name = "penguin_local_keras"
    pipeline = example.create_pipeline(
        pipeline_name=name, pipeline_root=str(workdir / "pipelines" / name), data_root=str(workdir / "data"),
        module_file=str(Path(example.__file__).with_name("penguin_utils_keras.py")), accuracy_threshold=0.6,
        serving_model_dir=str(workdir / "serving_model" / name),
        metadata_path=str(workdir / "metadata" / name / "metadata.db"), user_provided_schema_path=None,
        enable_tuning=False, enable_bulk_inferrer=False, enable_example_diff=False, examplegen_input_config=None,
        examplegen_range_config_date=None, resolver_range_config=None,
        beam_pipeline_args=example._beam_pipeline_args_by_runner["DirectRunner"],  # noqa: SLF001 - its own args
        enable_transform_input_cache=True)
    print(f"{rows} rows; imports and pipeline construction: {time.monotonic() - started:.1f} s", flush=True)
    tfx.orchestration.LocalDagRunner().run(pipeline)
    print(f"anchor total: {time.monotonic() - started:.1f} s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
