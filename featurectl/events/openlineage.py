"""OpenLineage run events for materializations, sent with the openlineage-python client.

Each materialized view is one run of job `materialize.<view>`: START when it begins, COMPLETE
or FAIL when it ends, with the view's source as input and its online table
(`<project>.<view>.v<major>`) as output, carrying the schema facet of the features.

Lineage is a side channel: events go out from a background thread, so a slow endpoint never
holds up a write, and closing waits at most `timeout_seconds` for what is still in flight
before giving up with one warning.
"""
from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable

from featurectl.events.config import LineageConfig

if TYPE_CHECKING:
    from featurectl.app.materialize import ViewRun
    from featurectl.offline.base import ViewRequest

log = logging.getLogger("featurectl.lineage")
PRODUCER = "urn:featurectl"  # identifies the emitter; OpenLineage wants a URI, nothing is fetched from it


def mask_url(url: str) -> str:
    """The URL without user-info, for messages."""
    scheme, sep, rest = url.partition("://")
    host = rest.split("/", 1)[0]
    return f"{scheme}{sep}{host.rpartition('@')[2]}" if sep else url


class OpenLineageEmitter:
    """A materialization observer (featurectl.app.materialize.RunObserver).

    Events are built on the caller's thread and sent, in order, by one background worker
    through the client's HTTP transport; the first failure stops further sends (a down
    endpoint would fail them all) and becomes one warning when the emitter closes."""

    def __init__(self, config: LineageConfig, project: str, clock: Callable[[], datetime]):
        from openlineage.client import OpenLineageClient
        from openlineage.client.transport.http import HttpConfig, HttpTransport

        self.config, self.project, self._clock = config, project, clock
        # One attempt per event: retries with backoff would outlast the short timeout anyway.
        transport = HttpTransport(HttpConfig(
            url=config.openlineage_url, endpoint=config.endpoint, timeout=config.timeout_seconds,
            retry={"total": 0, "read": 0, "connect": 0, "backoff_factor": 0, "status_forcelist": [],
                   "allowed_methods": ["POST"]}))
        # Explicit config: no openlineage.yml lookup, no git facet from whatever directory we run in.
        self._client = OpenLineageClient(transport=transport, config={
            "transport": {}, "facets": {"source_code_location": {"disabled": True}, "environment_variables": []}})
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="featurectl-openlineage")
        self._pending: list[Future] = []
        self._failure: str | None = None
        self._run_ids: dict[str, str] = {}

    def started(self, run: "ViewRun", request: "ViewRequest") -> None:
        from openlineage.client.uuid import generate_new_uuid

        self._run_ids[run.view] = str(generate_new_uuid(self._clock()))
        self._emit("START", run, request)

    def finished(self, run: "ViewRun", request: "ViewRequest") -> None:
        if run.view in self._run_ids:
            self._emit("COMPLETE" if run.status == "ok" else "FAIL", run, request)

    def _emit(self, state: str, run: "ViewRun", request: "ViewRequest") -> None:
        try:
            event = self._event(state, run, request)
        except Exception as exc:  # lineage never fails a materialization
            self._failure = self._failure or f"cannot build the {state} event of view '{run.view}': {exc}"
            return
        self._pending.append(self._worker.submit(self._send, event))

    def _send(self, event: Any) -> None:
        if self._failure is not None:
            raise RuntimeError("not sent after an earlier failure")
        try:
            self._client.emit(event)
        except Exception as exc:
            self._failure = self._failure or _reason(exc)
            raise

    def _event(self, state: str, run: "ViewRun", request: "ViewRequest") -> Any:
        from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
        from openlineage.client.facet_v2 import error_message_run, job_type_job, schema_dataset

        view = request.view
        schema = schema_dataset.SchemaDatasetFacet(fields=[
            schema_dataset.SchemaDatasetFacetFields(name=f.name, type=f.dtype, description=f.description or None)
            for f in view.features])
        run_facets: dict[str, Any] = {}
        if state == "FAIL":
            reason = run.error or f"invalid data: {run.report.violations if run.report else run.status}"
            run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=str(reason), programmingLanguage="PYTHON")
        return RunEvent(
            eventType=getattr(RunState, state), eventTime=self._clock().isoformat(), producer=PRODUCER,
            run=Run(runId=self._run_ids[run.view], facets=run_facets),
            job=Job(namespace=self.config.namespace, name=f"materialize.{view.name}", facets={
                "jobType": job_type_job.JobTypeJobFacet(processingType="BATCH", integration="FEATURECTL",
                                                        jobType="MATERIALIZATION")}),
            inputs=[InputDataset(namespace=self.config.namespace, name=request.source.name)],
            outputs=[OutputDataset(namespace=self.config.namespace, name=f"{self.project}.{view.name}.v{view.major}",
                                   facets={"schema": schema})],
        )

    def close(self) -> None:
        """Wait at most the timeout for events in flight; warn once about what did not arrive."""
        done, not_done = wait(self._pending, timeout=self.config.timeout_seconds)
        self._worker.shutdown(wait=False, cancel_futures=True)
        lost = len(not_done) + sum(1 for f in done if f.exception() is not None)
        if lost:
            reason = self._failure or f"no answer within {self.config.timeout_seconds:g}s"
            log.warning("OpenLineage endpoint %s did not take %d of %d event(s) (%s); the materialization "
                        "itself is unaffected", mask_url(self.config.openlineage_url), lost, len(self._pending),
                        reason)


def _reason(exc: Exception) -> str:
    """A one-line cause: requests' messages embed whole reprs of connection pools."""
    name = type(exc).__name__
    if "Timeout" in name or "timed out" in str(exc):
        return "timed out"
    if "Connection" in name:
        return "connection refused or unreachable"
    response = getattr(exc, "response", None)
    if response is not None:
        return f"HTTP {response.status_code}"
    return f"{name}: {exc}"[:200]
