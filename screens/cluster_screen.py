"""Cluster: the clusters found (or the kubeconfig context), with version and node sizes against the requirements."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from textual import work
from textual.widgets import DataTable, OptionList, Static
from textual.widgets.option_list import Option

from hfwizard import operations
from hfwizard.requirements import KUBERNETES, WORKER_CORES, WORKER_MEMORY_GIB, WORKERS_MIN, span

from .base import FieldInput, StepScreen


def _mark(ok: bool | None, text: str) -> str:
    return f"{'✓' if ok else '?' if ok is None else '✗'} {text}"


def cluster_row(c: Any) -> tuple[str, ...]:
    """One table row: each figure marked against what the platform needs (operations.cluster_fit judges)."""
    fit = operations.cluster_fit(c)
    sizes = []
    for pool in c.node_pools:
        sizes.append(f"{pool.cores or '?'}c/{pool.memory_gib or '?':g}G" if pool.memory_gib
                     else f"{pool.cores or '?'}c/?G")
    return (c.name, c.location, _mark(fit.version, c.version or "?"), _mark(fit.nodes, str(c.node_count)),
            _mark(fit.sizes, ", ".join(sizes) or "?"))


class ClusterScreen(StepScreen):
    STEP = "cluster"
    TITLE = "Cluster"
    HELP = (
        f"Pick the Kubernetes cluster. The platform needs Kubernetes **{KUBERNETES.text} or newer**, at least "
        f"**{WORKERS_MIN} worker\nnodes**, each with **{span(WORKER_CORES)} cores** and **{span(WORKER_MEMORY_GIB)} "
        "GiB** of memory. Each figure is marked ✓ when it meets\n"
        "that, ✗ when not, ? when the cloud did not say (preflight measures the real nodes).\n"
        "\n"
        "For an existing cluster give the kubeconfig file (empty: `$KUBECONFIG` or `~/.kube/config`) and\n"
        "choose a context.\n"
    )

    def __init__(self) -> None:
        super().__init__()
        self.clusters: list[Any] = []

    @property
    def cloud(self) -> str:
        return str(self.value("target.cloud"))

    def compose_body(self) -> Iterable[Any]:
        if self.cloud == "sandbox":
            info = operations.sandbox_cluster()
            yield Static(f"The sandbox runs an emulated Kubernetes {info['version']} cluster on "
                         f"{info['where']}; nodes are {info['nodes']}.", classes="intro", id="sandbox-info")
            return
        if self.cloud == "existing":
            kubeconfig, context = self.questions()
            yield Static("Which kubeconfig and context reach the cluster?", classes="intro")
            yield self.question_field(kubeconfig)
            yield OptionList(id="contexts", classes="found")
            yield self.question_field(context)
            return
        yield Static("Clusters found (Enter to choose one):", classes="intro")
        table: DataTable[str] = DataTable(id="clusters", cursor_type="row", classes="found")
        table.add_columns("Name", "Location", "Version", "Nodes", "Node sizes")
        yield table
        yield Static("", id="clusters-note", classes="note", markup=False)
        for q in self.questions():
            yield self.question_field(q)

    def on_mount(self) -> None:
        super().on_mount()
        if self.cloud == "existing":
            self.load_contexts()
        elif self.cloud in operations.CLOUDS:
            self.discover()

    def load_contexts(self) -> None:
        names, current = operations.kube_contexts(self.value("target.kubeconfig"))
        box = self.query_one("#contexts", OptionList)
        box.clear_options()
        for name in names:
            box.add_option(Option(name + ("  (current)" if name == current else ""), id=name))

    def on_input_changed(self, event: FieldInput.Changed) -> None:
        super().on_input_changed(event)
        if isinstance(event.input, FieldInput) and event.input.path == "target.kubeconfig":
            self.load_contexts()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self._set_field("target.context", event.option.id)

    def _set_field(self, path: str, value: Any) -> None:
        self.draft.set(path, value)
        self.show_value(path, value)
        self.revalidate()

    @work(exclusive=True, group="discover", exit_on_error=False)
    async def discover(self) -> None:
        self.start_busy("discover", "listing clusters")
        note = self.query_one("#clusters-note", Static)
        try:
            self.clusters = await asyncio.to_thread(operations.list_clusters, self.cloud, self.draft.data)
        except Exception as exc:  # said in place: the fields below still take a cluster typed by hand
            remedy = getattr(exc, "remedy", None)
            note.update(f"✗ none listed: {getattr(exc, 'message', None) or exc}" + (f"\n→ {remedy}" if remedy else ""))
            return
        table = self.query_one("#clusters", DataTable)
        table.clear()
        for i, c in enumerate(self.clusters):
            table.add_row(*cluster_row(c), key=str(i))
        if not self.clusters:
            region = self.value("target.region")
            where = f"in {region}" if region else "in any region"
            note.update(f"None found {where} with the chosen credential (or no credential was found: see the "
                        "Credentials step). Type the region and cluster name below.")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        c = self.clusters[int(event.row_key.value or 0)]
        self._set_field("target.region", c.location)
        self._set_field("target.cluster", c.name)
