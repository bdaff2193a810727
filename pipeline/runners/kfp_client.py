"""`submit` and `schedule`: the compiled PipelineSpec to a Kubeflow Pipelines server through `kfp.Client`.

Both send the spec itself in the run (or recurring run) they create, with the pipeline root, which a bare
PipelineSpec does not carry. A recurring run cannot be updated (kubeflow/pipelines#6001), so `schedule` replaces
one of the same name: it creates the new one first, then deletes the old, so a failed creation leaves the old
schedule running.
"""

import contextlib
import json
from pathlib import Path
from typing import Iterator, Optional

from components.spec import SpecError

# kfp's cron (robfig/cron) has six fields, seconds first: "0 0 3 * * *" is 03:00:00 every day.
CRON_FIELDS = 6
# Each field's name, smallest and largest value, and the names it accepts for values (robfig/cron's).
_CRON_RANGES = (("seconds", 0, 59, ()), ("minutes", 0, 59, ()), ("hours", 0, 23, ()), ("day of month", 1, 31, ()),
                ("month", 1, 12, ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")),
                ("day of week", 0, 6, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")))


def _cron_field_problem(field: str, name: str, low: int, high: int, names: tuple[str, ...]) -> Optional[str]:
    """Why a cron field is not one robfig/cron reads (`*`, `?`, values, ranges, steps, lists), None if it is."""
    for item in field.split(","):
        span, _, step = item.partition("/")
        if step and not (step.isdigit() and int(step) > 0):
            return f"{name} field {field!r}: the step {step!r} is not a positive number"
        if span in ("*", "?"):
            continue
        for value in span.split("-", 1):
            if value.upper() in names:
                continue
            if not value.isdigit():
                return f"{name} field {field!r}: {value!r} is not a number" + (
                    f" or one of {', '.join(names[:3])}, ..." if names else "")
            if not low <= int(value) <= high:
                return f"{name} field {field!r}: {value} is outside {low}-{high}"
    return None


def check_cron(expression: str) -> str:
    """Returns the expression if it is kfp's cron (six fields, seconds first, each one robfig/cron reads);
    otherwise raises SpecError saying how to fix it."""
    fields = expression.split()
    if len(fields) == CRON_FIELDS - 1:
        raise SpecError(f"--cron: {expression!r} has 5 fields; kfp's cron has 6, seconds first "
                        f"(did you mean '0 {expression}'?)")
    if len(fields) != CRON_FIELDS:
        raise SpecError(f"--cron: {expression!r} has {len(fields)} fields; kfp's cron has 6, seconds first "
                        f"(e.g. '0 0 3 * * *': 03:00:00 every day)")
    for field, (name, low, high, names) in zip(fields, _CRON_RANGES):
        problem = _cron_field_problem(field, name, low, high, names)
        if problem:
            raise SpecError(f"--cron: {expression!r}: {problem} (fields: seconds minutes hours day-of-month month "
                            f"day-of-week)")
    return " ".join(fields)


def check_package(path: Path) -> Path:
    """The compiled spec file; raises SpecError unless it exists and is YAML (kfp 2.5 uploads .yaml/.yml)."""
    if path.suffix not in (".yaml", ".yml"):
        raise SpecError(f"--package: {path} must be the .yaml that `compile` writes")
    if not path.is_file():
        raise SpecError(f"--package: {path} does not exist (run `python -m pipeline compile` first)")
    return path


def check_endpoint(endpoint: str) -> str:
    """The Kubeflow Pipelines endpoint, which must name its scheme: without one, kfp's client takes HTTPS, and a
    port-forward (plain HTTP) fails with an SSL error that does not say why."""
    if not endpoint.startswith(("http://", "https://")):
        raise SpecError(f"--endpoint: {endpoint!r} has no scheme; write it with http:// (a port-forward, e.g. "
                        f"http://{endpoint}) or https://")
    return endpoint


class ClusterError(RuntimeError):
    """The Kubeflow Pipelines server cannot be reached, or is not healthy; the message names the endpoint."""


@contextlib.contextmanager
def reporting_cluster_errors(endpoint: str) -> Iterator[None]:
    """Turns an unreachable or unhealthy server into one ClusterError line instead of urllib3's traceback."""
    import urllib3  # noqa: PLC0415

    try:
        yield
    except urllib3.exceptions.HTTPError as e:   # MaxRetryError: refused, unknown host, timed out
        raise ClusterError(f"cannot reach Kubeflow Pipelines at {endpoint}: {getattr(e, 'reason', None) or e}"
                           ) from None
    except TimeoutError as e:                   # kfp's health check gave up
        raise ClusterError(f"Kubeflow Pipelines at {endpoint} is not healthy: {e}") from None


def connect(endpoint: str, namespace: Optional[str] = None):
    """A kfp.Client on `endpoint`; it checks the server's health on creation (5 tries, 5 s apart)."""
    import kfp  # noqa: PLC0415 - only the commands that talk to a server need it

    return kfp.Client(host=endpoint, namespace=namespace or "kubeflow")


def submit(client, package: Path, *, pipeline_root: str, experiment: str, namespace: Optional[str] = None,
           run_name: Optional[str] = None, enable_caching: Optional[bool] = None) -> str:
    """Starts one run of the compiled pipeline in `experiment` (created if missing); returns the run's id."""
    result = client.create_run_from_pipeline_package(
        str(package), run_name=run_name, experiment_name=experiment, namespace=namespace,
        pipeline_root=pipeline_root, enable_caching=enable_caching)
    return result.run_id


def _recurring_runs_named(client, name: str, experiment_id: str) -> list:
    name_filter = json.dumps({"predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": name}]})
    found, token = [], ""
    while True:
        page = client.list_recurring_runs(experiment_id=experiment_id, filter=name_filter, page_token=token,
                                          page_size=100)
        found += page.recurring_runs or []
        token = page.next_page_token
        if not token:
            return found


def schedule(client, package: Path, *, name: str, cron: str, pipeline_root: str, experiment: str,
             namespace: Optional[str] = None) -> tuple[str, list[str]]:
    """Creates the recurring run `name`: at most one run at a time, no catch-up of missed intervals.

    Returns:
      The new recurring run's id and the ids of the recurring runs of the same name it replaced (deleted).
    """
    cron = check_cron(cron)
    experiment_id = client.create_experiment(name=experiment, namespace=namespace).experiment_id
    existing = _recurring_runs_named(client, name, experiment_id)
    created = client.create_recurring_run(
        experiment_id=experiment_id, job_name=name, cron_expression=cron, max_concurrency=1, no_catchup=True,
        pipeline_package_path=str(package), pipeline_root=pipeline_root, enabled=True)
    for old in existing:
        client.delete_recurring_run(old.recurring_run_id)
    return created.recurring_run_id, [old.recurring_run_id for old in existing]
