"""Target: where the platform goes (AWS, GCP, Azure, an existing cluster or the local sandbox)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.widgets import Label, RadioButton, RadioSet, Static

from hfwizard.profile import Cloud

from .base import StepScreen

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
    HELP = """\
Choose where the platform runs.

* **AWS / Google Cloud / Azure**: the wizard finds your credentials, lists your clusters, databases,
  caches and buckets, and writes a kubeconfig for the cluster you pick.
* **Existing cluster**: any conformant Kubernetes 1.32+ reached through a kubeconfig context; you give
  the data services by hand.
* **Sandbox**: a rehearsal into an emulated cluster on this machine. Nothing outside changes.

**Namespace** and **release** name the Kubernetes namespace and the Helm release
(lowercase letters, digits and dashes).
"""

    def compose_body(self) -> Iterable[Any]:
        yield Static("Where will Highflame run?", classes="intro")
        current = self.value("target.cloud")
        with RadioSet(id="cloud"):
            for cloud, label in CLOUD_LABELS.items():
                yield RadioButton(label, value=current == cloud.value, id=f"cloud-{cloud.value}")
        yield Label(f"Install: {self.draft.name}", classes="note")
        yield self.field("target.namespace", "Namespace")
        yield self.field("target.release", "Helm release name")

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        cloud = (event.pressed.id or "").removeprefix("cloud-")
        self.answer("target.cloud", cloud)
