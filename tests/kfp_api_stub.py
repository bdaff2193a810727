"""A local stand-in for the Kubeflow Pipelines v2beta1 REST API, for exercising the real `kfp.Client`.

It answers the health check, experiments, runs and recurring runs; validates every request body against the
`kfp_server_api` model the real server's API declares for it (unknown fields, wrong types and enum values are
400s, as grpc-gateway answers); and records every request, so a test asserts on what the client sent.

What it is not: a server. It stores what it is sent and runs nothing; it checks no pipeline spec beyond its
JSON shape, and no cron expression beyond what the model types say.
"""

import itertools
import json
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional

import kfp_server_api

API = "/apis/v2beta1"
_BODY_MODELS = {("POST", f"{API}/experiments"): "V2beta1Experiment",
                ("POST", f"{API}/runs"): "V2beta1Run",
                ("POST", f"{API}/recurringruns"): "V2beta1RecurringRun"}
_PRIMITIVES = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,), "object": (dict, list),
               "datetime": (str,)}
# grpc-gateway accepts an int64 as a JSON number or a string; the generated models type such fields `str`.
_INT64_AS_STR = {("V2beta1RecurringRun", "max_concurrency"), ("V2beta1PeriodicSchedule", "interval_second")}


class BodyError(ValueError):
    """A request body that the real API would reject."""


def validate(data: Any, type_name: str, where: str = "body") -> None:
    """Checks parsed JSON against a kfp_server_api model or type name; raises BodyError naming the field."""
    if type_name.startswith("list["):
        if not isinstance(data, list):
            raise BodyError(f"{where}: expected a list, got {type(data).__name__}")
        for i, item in enumerate(data):
            validate(item, type_name[5:-1], f"{where}[{i}]")
        return
    if type_name.startswith("dict("):
        if not isinstance(data, dict):
            raise BodyError(f"{where}: expected an object, got {type(data).__name__}")
        return
    if type_name in _PRIMITIVES:
        if not isinstance(data, _PRIMITIVES[type_name]) or (type_name != "bool" and isinstance(data, bool)):
            raise BodyError(f"{where}: expected {type_name}, got {data!r}")
        return
    model = getattr(kfp_server_api.models, type_name)
    if hasattr(model, "allowable_values"):            # an enum: a string among its values
        if data not in model.allowable_values:
            raise BodyError(f"{where}: {data!r} is not one of {model.allowable_values}")
        return
    if not isinstance(data, dict):
        raise BodyError(f"{where}: expected a {type_name} object, got {type(data).__name__}")
    by_json_name = {json_name: attr for attr, json_name in model.attribute_map.items()}
    for key, value in data.items():
        if key not in by_json_name:
            raise BodyError(f"{where}.{key}: not a field of {type_name}")
        if value is None:
            continue
        attr = by_json_name[key]
        if (type_name, attr) in _INT64_AS_STR and isinstance(value, int) and not isinstance(value, bool):
            continue
        validate(value, model.openapi_types[attr], f"{where}.{key}")


class KfpApiStub:
    """The stand-in server on a free local port; use as a context manager.

    Attributes:
      requests: every request received: dicts with method, path, query and body (parsed JSON or None).
      errors: bodies rejected, as messages (a test of a correct client expects none).
      experiments, runs, recurring_runs: what the server holds, by id.
      healthy: answer the health check (False: 503, as a server still starting).
    """

    def __init__(self, multi_user: bool = False):
        self.requests: list[dict] = []
        self.errors: list[str] = []
        self.experiments: dict[str, dict] = {}
        self.runs: dict[str, dict] = {}
        self.recurring_runs: dict[str, dict] = {}
        self.multi_user = multi_user
        self.healthy = True
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server: Optional[ThreadingHTTPServer] = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "KfpApiStub":
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _handle(self, method: str) -> None:
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                with stub._lock:
                    stub.requests.append({"method": method, "path": url.path, "query": query, "body": body})
                    status, answer = stub._answer(method, url.path, query, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def do_DELETE(self):
                self._handle("DELETE")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def sent(self, method: str, path: str) -> list[dict]:
        """The requests received for one method and path."""
        return [r for r in self.requests if r["method"] == method and r["path"] == path]

    def _new_id(self, kind: str) -> str:
        return f"{kind}-{next(self._ids)}"

    def _answer(self, method: str, path: str, query: dict, body: Any) -> tuple[int, Any]:
        model = _BODY_MODELS.get((method, path))
        if model is not None:
            try:
                validate(body, model)
            except BodyError as e:
                self.errors.append(str(e))
                return 400, {"error": str(e), "code": 3}
        if path == f"{API}/healthz" and method == "GET":
            return (200, {"multi_user": self.multi_user}) if self.healthy else (503, {"error": "starting"})
        if path == f"{API}/experiments" and method == "GET":
            found = [e for e in self.experiments.values() if _matches(e, query)]
            return 200, {"experiments": found, "total_size": len(found)} if found else {}
        if path == f"{API}/experiments" and method == "POST":
            experiment = {**body, "experiment_id": self._new_id("experiment")}
            self.experiments[experiment["experiment_id"]] = experiment
            return 200, experiment
        if path == f"{API}/runs" and method == "POST":
            run = {**body, "run_id": self._new_id("run"), "state": "PENDING"}
            self.runs[run["run_id"]] = run
            return 200, run
        if path == f"{API}/recurringruns" and method == "GET":
            found = [r for r in self.recurring_runs.values() if _matches(r, query)]
            return 200, {"recurringRuns": found, "total_size": len(found)} if found else {}
        if path == f"{API}/recurringruns" and method == "POST":
            recurring = {**body, "recurring_run_id": self._new_id("recurring"), "status": "ENABLED"}
            self.recurring_runs[recurring["recurring_run_id"]] = recurring
            return 200, recurring
        match = re.fullmatch(f"{API}/recurringruns/([^/:]+)", path)
        if match and method == "DELETE":
            if self.recurring_runs.pop(match.group(1), None) is None:
                return 404, {"error": f"recurring run {match.group(1)} not found", "code": 5}
            return 200, {}
        return 404, {"error": f"the stand-in does not serve {method} {path}", "code": 12}


def _matches(resource: dict, query: dict) -> bool:
    """Applies the list filters kfp.Client sends: experiment_id, namespace, and EQUALS predicates."""
    if "experiment_id" in query and resource.get("experiment_id") != query["experiment_id"]:
        return False
    if query.get("namespace") and resource.get("namespace", query["namespace"]) != query["namespace"]:
        return False
    if "filter" in query:
        for predicate in json.loads(query["filter"]).get("predicates", []):
            if predicate.get("operation") not in ("EQUALS", 1):
                raise BodyError(f"filter operation {predicate.get('operation')!r} is not served by the stand-in")
            if resource.get(predicate["key"]) != predicate.get("stringValue", predicate.get("string_value")):
                return False
    return True
