"""Data services: PostgreSQL, the Redis cluster and the ClickHouse backup bucket, prefilled from discovery."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from textual import work
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from hfwizard import operations
from hfwizard import requirements as req

from .base import StepScreen


class DataScreen(StepScreen):
    STEP = "data"
    TITLE = "Data services"
    HELP = f"""\
Highflame keeps its state in a managed **PostgreSQL {req.POSTGRES.text}+** \
({req.POSTGRES_VCPU_MIN} vCPU / {req.POSTGRES_MEMORY_GIB_MIN} GiB at least) and a
**Redis {req.REDIS.text}+ cluster** ({req.REDIS_MEMORY_GIB_MIN} GiB per node), and backs ClickHouse up to a \
bucket (S3, GCS or Azure Blob).

What the wizard finds with your cloud credential is listed at the top; Enter on one fills its fields.
Passwords take references only (`env:NAME`, `file:PATH`, `keyring:SERVICE/NAME`, `k8s:SECRET/KEY`):
the value itself is never written anywhere by the wizard.

Redis endpoints: `host:port`, separated by commas. Preflight connects to each service before anything
is installed.
"""

    def __init__(self) -> None:
        super().__init__()
        self.choices: list[tuple[str, Any]] = []
        self.live: dict[str, str] = {}  # what each live check found, shown together under the fields

    @property
    def cloud(self) -> str:
        return str(self.value("target.cloud"))

    def compose_body(self) -> Iterable[Any]:
        if self.cloud == "sandbox":
            yield Static("The sandbox has no data services: their checks are skipped and the emulated "
                         "cluster gets placeholders.", classes="intro", id="sandbox-info")
            return
        if self.cloud in operations.CLOUDS:
            yield Static("Found with your credential (Enter fills the fields):", classes="intro")
            yield OptionList(id="found", classes="found")
        yield from self.compose_questions()
        yield Static("", id="host-check", classes="note", markup=False)

    def on_mount(self) -> None:
        super().on_mount()
        if self.cloud in operations.CLOUDS:
            self.discover()

    @work(exclusive=True, group="discover", exit_on_error=False)
    async def discover(self) -> None:
        self.start_busy("discover", "looking for databases, caches and buckets")
        found = await asyncio.to_thread(operations.discover_data_services, self.cloud, self.draft.data)
        box = self.query_one("#found", OptionList)
        self.choices = [("postgres", p) for p in found.postgres] + [("redis", r) for r in found.redis] + \
                       [("bucket", b) for b in found.buckets]
        for i, (kind, item) in enumerate(self.choices):
            box.add_option(Option(f"{kind:<8} {item.name}  {getattr(item, 'version', '') or ''}", id=str(i)))
        for note in found.notes:
            box.add_option(Option(f"note     {note}", disabled=True))
        # Prefill: the first of each kind, only where the operator has not answered.
        for kind in ("postgres", "redis", "bucket"):
            first = next((item for k, item in self.choices if k == kind), None)
            if first is not None:
                self.apply(kind, first, only_empty=True)

    def answer(self, path: str, value: Any) -> None:
        before = self.draft.get(path)
        super().answer(path, value)
        if path == "postgres.host" and value != before and isinstance(value, str) and not self.problems_at(path):
            self.check_host(value)
        if path == "redis.endpoints" and value != before and value and not self.problems_at(path):
            self.check_endpoints(list(value))

    def problems_at(self, path: str) -> bool:
        return any(p.path == path for p in self.problems())

    @work(exclusive=True, group="resolve", exit_on_error=False)
    async def check_host(self, host: str) -> None:
        """The PostgreSQL host resolves? Said beside the field, in the background (a warning: the cluster
        may resolve names this machine cannot)."""
        await asyncio.sleep(0.5)  # typed key by key: resolve once the typing stops (a new key cancels this)
        self.start_busy("resolve", f"resolving {host}")
        ok, text = await asyncio.to_thread(operations.resolves, host)
        if self.draft.get("postgres.host") == host:
            self.show_live("postgres", ("✓ " if ok else "! ") + text)

    @work(exclusive=True, group="redis-check", exit_on_error=False)
    async def check_endpoints(self, endpoints: list[str]) -> None:
        """Each Redis endpoint takes a connection? Said under the fields, in the background, all at once (a
        warning, as for the PostgreSQL host: the cluster may reach what this machine cannot)."""
        await asyncio.sleep(0.5)  # resolve once the typing stops (a new key cancels this)
        self.start_busy("redis-check", f"trying {len(endpoints)} Redis endpoint(s)")
        found = await asyncio.gather(*(asyncio.to_thread(operations.port_answers, host, int(port))
                                       for host, _, port in (e.rpartition(":") for e in endpoints)))
        if self.draft.get("redis.endpoints") == endpoints:
            self.show_live("redis", "\n".join(("✓ " if ok else "! ") + text for ok, text in found))

    def show_live(self, service: str, text: str) -> None:
        self.live[service] = text
        self.query_one("#host-check", Static).update("\n".join(self.live[s] for s in ("postgres", "redis")
                                                               if s in self.live))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        kind, item = self.choices[int(event.option.id or 0)]
        self.apply(kind, item, only_empty=False)

    def apply(self, kind: str, item: Any, *, only_empty: bool) -> None:
        for path, value in operations.data_service_answers(kind, item, self.cloud).items():
            if value is None or (only_empty and self.draft.get(path) not in (None, [], "")):
                continue
            self.draft.set(path, value)
            self.show_value(path, value)
        self.revalidate()
