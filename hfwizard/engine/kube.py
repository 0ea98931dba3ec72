"""Thin, blocking helpers over the Kubernetes python client for the engine (call them in a thread)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from hfwizard.platform.secretspec import MANAGED_BY, MANAGED_BY_LABEL


def connect(kubeconfig: str | None, context: str | None) -> Any:
    """An ApiClient for the kubeconfig and context (imports the client lazily: it is slow to import)."""
    from kubernetes import config

    return config.new_client_from_config(config_file=kubeconfig, context=context)


def plain(api_client: Any, obj: Any) -> Any:
    """A typed client object as plain JSON-style data."""
    return api_client.sanitize_for_serialization(obj)


def items(list_call: Callable[..., Any], *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """The items of a list call, from the response's JSON as the API sent it.

    The typed client builds a model object per field and `plain` turns it back into dicts: about five
    times the CPU of parsing the JSON, paid on every readiness poll while Helm's child and the
    API want the same cores. Errors still raise the client's ApiException.
    """
    response = list_call(*args, _preload_content=False, **kwargs)
    try:
        return list(json.loads(response.data).get("items") or [])
    finally:
        response.release_conn()


def not_found(exc: BaseException) -> bool:
    return getattr(exc, "status", None) == 404


class Kube:
    """What the engine asks of the cluster, each call blocking (the engine runs them in threads)."""

    def __init__(self, api_client: Any) -> None:
        from kubernetes import client

        self.api_client = api_client
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.net = client.NetworkingV1Api(api_client)
        self.discovery = client.DiscoveryV1Api(api_client)

    # ---- namespace -------------------------------------------------------------------------------

    def namespace_exists(self, name: str) -> bool:
        try:
            self.core.read_namespace(name)
            return True
        except Exception as exc:
            if not_found(exc):
                return False
            raise

    def ensure_namespace(self, name: str) -> bool:
        """Create the namespace (labelled managed-by hfwizard) unless it exists; True when created."""
        if self.namespace_exists(name):
            return False
        try:
            self.core.create_namespace({"apiVersion": "v1", "kind": "Namespace",
                                        "metadata": {"name": name, "labels": {MANAGED_BY_LABEL: MANAGED_BY}}})
        except Exception as exc:
            if getattr(exc, "status", None) == 409:
                return False
            raise
        return True

    # ---- secrets ---------------------------------------------------------------------------------

    def read_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return dict(plain(self.api_client, self.core.read_namespaced_secret(name, namespace)))
        except Exception as exc:
            if not_found(exc):
                return None
            raise

    def write_secret(self, namespace: str, name: str, type_: str, data: dict[str, str],
                     existing: dict[str, Any] | None) -> None:
        """Create or replace a Secret we manage; `data` values are plain text (base64 is done here)."""
        body: dict[str, Any] = {
            "apiVersion": "v1", "kind": "Secret", "type": type_,
            "metadata": {"name": name, "namespace": namespace, "labels": {MANAGED_BY_LABEL: MANAGED_BY}},
            "data": {k: base64.b64encode(v.encode("utf-8")).decode("ascii") for k, v in data.items()},
        }
        if existing is None:
            self.core.create_namespaced_secret(namespace, body)
            return
        meta = existing.get("metadata") or {}
        body["metadata"]["resourceVersion"] = meta.get("resourceVersion")
        labels = dict(meta.get("labels") or {})
        labels[MANAGED_BY_LABEL] = MANAGED_BY
        body["metadata"]["labels"] = labels
        if meta.get("annotations"):
            body["metadata"]["annotations"] = meta["annotations"]
        self.core.replace_namespaced_secret(name, namespace, body)

    # ---- any object, by its apiVersion and kind (server-side apply) ------------------------------

    def read_object(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The object as the API has it, or None when it does not exist (nor its kind)."""
        try:
            return self._call("GET", object_path(api_version, kind, namespace, name))
        except Exception as exc:
            if not_found(exc):
                return None
            raise

    def apply_object(self, obj: dict[str, Any], *, force: bool = False) -> dict[str, Any]:
        """Server-side apply under hfwizard's field manager; `force` takes over fields another
        manager set (the API answers 409 with the fields otherwise)."""
        meta = obj["metadata"]
        query = [("fieldManager", FIELD_MANAGER)] + ([("force", "true")] if force else [])
        return self._call("PATCH", object_path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"]),
                          body=obj, query=query, content_type="application/apply-patch+yaml")

    def delete_object(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        """Delete (its dependents in the background); False when it was not there."""
        try:
            self._call("DELETE", object_path(api_version, kind, namespace, name),
                       body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"})
        except Exception as exc:
            if not_found(exc):
                return False
            raise
        return True

    def pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return items(self.core.list_namespaced_pod, namespace, label_selector=selector)

    def _call(self, method: str, path: str, *, body: Any = None, query: list[tuple[str, str]] | None = None,
              content_type: str = "application/json") -> dict[str, Any]:
        response = self.api_client.call_api(
            path, method, query_params=query or [], body=body, auth_settings=["BearerToken"],
            header_params={"Accept": "application/json", "Content-Type": content_type},
            response_types_map={}, _return_http_data_only=True, _preload_content=False)
        try:
            data = json.loads(response.data or b"{}")
        finally:
            response.release_conn()
        return data if isinstance(data, dict) else {}

    # ---- Helm's release records ------------------------------------------------------------------

    def release_record(self, namespace: str, release: str) -> tuple[int, str] | None:
        """(revision, status) of a release's latest revision, read from Helm's storage Secrets.

        Helm 3 and 4 keep each revision in a Secret labelled owner=helm, name, version, status;
        reading those labels answers "is it deployed, at which revision, is it pending" without
        starting Helm. None when no record exists (never installed, or another storage driver).
        """
        records = items(self.core.list_namespaced_secret, namespace, label_selector=f"owner=helm,name={release}")
        best: tuple[int, str] | None = None
        for item in records:
            labels = item["metadata"].get("labels") or {}
            try:
                rev = int(labels.get("version", ""))
            except ValueError:
                continue
            if best is None or rev > best[0]:
                best = (rev, str(labels.get("status", "")))
        return best

    # ---- Services and pods ---------------------------------------------------------------------

    def endpoint_view(self, namespace: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Every EndpointSlice and Pod of the namespace, listed once for a whole verification pass."""
        return (items(self.discovery.list_namespaced_endpoint_slice, namespace),
                items(self.core.list_namespaced_pod, namespace))

    def service_has_endpoints(self, namespace: str, svc: dict[str, Any],
                              view: tuple[list[dict[str, Any]], list[dict[str, Any]]] | None = None) -> bool:
        """Ready endpoints from EndpointSlices; where a cluster (or the emulator) has none, the ready
        pods the Service selects, which is what the endpoint controller would publish."""
        name = svc["metadata"]["name"]
        all_slices, all_pods = view if view is not None else self.endpoint_view(namespace)
        slices = [s for s in all_slices
                  if (s["metadata"].get("labels") or {}).get("kubernetes.io/service-name") == name]
        publish_all = bool((svc.get("spec") or {}).get("publishNotReadyAddresses"))
        for sl in slices:
            for ep in sl.get("endpoints") or []:
                if publish_all or (ep.get("conditions") or {}).get("ready", True):
                    return True
        if slices:
            return False
        selector = (svc.get("spec") or {}).get("selector") or {}
        if not selector:
            return True  # a Service without a selector has endpoints managed by someone else
        pods = [p for p in all_pods
                if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())]
        return any(publish_all or pod_ready(p) for p in pods)

    def ingress(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return dict(plain(self.api_client, self.net.read_namespaced_ingress(name, namespace)))
        except Exception as exc:
            if not_found(exc):
                return None
            raise

    def pod_problems(self, namespace: str, pods: list[dict[str, Any]], limit: int = 10) -> list[str]:
        """Why each unready pod among `pods` waits, and the last Warning events about them."""
        lines: list[str] = []
        names = set()
        for pod in pods:
            if pod_ready(pod):
                continue
            pname = pod["metadata"]["name"]
            names.add(pname)
            for cs in (pod.get("status") or {}).get("containerStatuses") or []:
                waiting = (cs.get("state") or {}).get("waiting")
                if waiting and waiting.get("reason"):
                    lines.append(f"pod/{pname} container {cs.get('name')}: {waiting['reason']}"
                                 + (f" ({waiting['message']})" if waiting.get("message") else ""))
        if not names:
            return lines[-limit:]
        events = items(self.core.list_namespaced_event, namespace)
        related = [e for e in events if (e.get("involvedObject") or {}).get("name") in names
                   and e.get("type") == "Warning"]
        related.sort(key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
        for e in related[-limit:]:
            obj = e.get("involvedObject") or {}
            lines.append(f"pod/{obj.get('name')}: {e.get('reason')}: {e.get('message')}")
        return lines[-limit:]


FIELD_MANAGER = "hfwizard"  # the field manager of every object hfwizard applies server-side

# Plurals the API uses where "kind + s" is wrong, for the kinds an install may apply.
_PLURALS = {"Ingress": "ingresses", "Endpoints": "endpoints", "NetworkPolicy": "networkpolicies",
            "PriorityClass": "priorityclasses", "StorageClass": "storageclasses", "IngressClass": "ingressclasses"}


def object_path(api_version: str, kind: str, namespace: str | None, name: str) -> str:
    """The REST path of an object: namespaced, or cluster-scoped when `namespace` is None."""
    root = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    plural = _PLURALS.get(kind, kind.lower() + "s")
    return f"{root}/{plural}/{name}" if namespace is None else f"{root}/namespaces/{namespace}/{plural}/{name}"


def pod_ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])
