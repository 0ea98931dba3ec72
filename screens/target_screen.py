"""Target: where the platform goes (AWS, GCP, Azure, an existing cluster or the local sandbox)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.widgets import Label, RadioSet, Static

from hfwizard.profile import Cloud
from hfwizard.requirements import KUBERNETES

from .base import Choice, FieldRadioSet, StepScreen

CLOUD_LABELS: dict[str, str] = {
    Cloud.AWS: "AWS (EKS, RDS, ElastiCache, S3)",
    Cloud.GCP: "Google Cloud (GKE, Cloud SQL, Memorystore, GCS)",
    Cloud.AZURE: "Azure (AKS, Azure Database, Azure Cache, Blob)",
    Cloud.EXISTING: "An existing cluster, through a kubeconfig",
    Cloud.SANDBOX: "Sandbox: rehearse on an emulated cluster here",
}


class TargetScreen(StepScreen):
    STEP = "target"
    TITLE = "Target"
    HELP = f"""\
Choose where the platform runs.

* **AWS / Google Cloud / Azure**: the wizard finds your credentials, lists your clusters, databases,
  caches and buckets, and writes a kubeconfig for the cluster you pick.
* **Existing cluster**: any conformant Kubernetes {KUBERNETES.text}+ reached through a kubeconfig context; you give
  the data services by hand.
* **Sandbox**: a rehearsal into an emulated cluster on this machine. Nothing outside changes.

**Namespace** and **release** name the Kubernetes namespace and the Helm release
(lowercase letters, digits and dashes).
"""

    def compose_body(self) -> Iterable[Any]:
        where, *names = self.questions()
        yield Static(where.label, classes="intro")
        current = self.value(where.path)
        with FieldRadioSet(path=where.path, id="cloud"):
            for cloud in where.options():
                yield Choice(CLOUD_LABELS[cloud], value=current == cloud, id=f"cloud-{cloud}")
        yield Label(f"Install: {self.draft.name}", classes="note")
        for q in names:
            yield self.question_field(q)

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        cloud = (event.pressed.id or "").removeprefix("cloud-")
        self.answer("target.cloud", cloud)
