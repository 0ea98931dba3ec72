"""What the emulated API serves: resource types, discovery documents and the OpenAPI index."""

from __future__ import annotations

import collections
import importlib.resources

import attrs
import kmock

from hfwizard.sandbox.emulator.api import JSON, ApiError, ResourceType, bundled_discovery

__all__ = ["Catalogue"]

_CRD_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@attrs.define
class Catalogue:
    """The resource types the server knows: k3s's bundled list plus every registered CRD."""

    types: dict[tuple[str, str, str], ResourceType] = attrs.field(factory=dict)
    discovery: dict[str, JSON] = attrs.field(factory=dict)

    @classmethod
    def bundled(cls) -> Catalogue:
        catalogue = cls()
        for doc in bundled_discovery():
            catalogue.add_discovery(doc)
        return catalogue

    @staticmethod
    def load_into(emulator: kmock.KubernetesEmulator) -> None:
        """Keep kmock's own discovery consistent with ours (load_bundled uses a deprecated API)."""
        emulator.resources.load_path(
            str(importlib.resources.files("kmock._internal").joinpath("resources.json.gz"))
        )

    def add_discovery(self, doc: JSON) -> None:
        group_version = doc["groupVersion"]
        group, _, version = group_version.rpartition("/")
        self.discovery[group_version] = doc
        subresources: dict[str, set[str]] = collections.defaultdict(set)
        for res in doc.get("resources", []):
            plural, _, sub = res["name"].partition("/")
            if sub:
                subresources[plural].add(sub)
        for res in doc.get("resources", []):
            if "/" in res["name"]:
                continue
            self.types[(group, version, res["name"])] = ResourceType(
                group=group,
                version=version,
                plural=res["name"],
                kind=res["kind"],
                namespaced=bool(res.get("namespaced")),
                subresources=frozenset(subresources[res["name"]]),
            )

    def register_crd(self, crd: JSON) -> None:
        spec = crd.get("spec", {})
        names = spec.get("names", {})
        for version in spec.get("versions", []):
            if not version.get("served", True):
                continue
            group_version = f"{spec['group']}/{version['name']}"
            doc = self.discovery.setdefault(
                group_version,
                {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": []},
            )
            doc["resources"] = [r for r in doc["resources"] if r["name"].split("/")[0] != names["plural"]]
            entry = {
                "name": names["plural"],
                "singularName": names.get("singular", ""),
                "namespaced": spec.get("scope") == "Namespaced",
                "kind": names["kind"],
                "verbs": _CRD_VERBS,
                "shortNames": names.get("shortNames", []),
            }
            doc["resources"].append(entry)
            if "status" in (version.get("subresources") or {}):
                doc["resources"].append(
                    {
                        "name": f"{names['plural']}/status",
                        "singularName": "",
                        "namespaced": entry["namespaced"],
                        "kind": names["kind"],
                        "verbs": ["get", "patch", "update"],
                    }
                )
            self.add_discovery(doc)

    def resource_type(self, api_version: str, kind: str) -> ResourceType:
        """The entry for an apiVersion and kind (e.g. "apps/v1", "Deployment")."""
        group, _, version = api_version.rpartition("/")
        for info in self.types.values():
            if info.group == group and info.version == version and info.kind == kind:
                return info
        raise KeyError(f"{api_version} {kind} is not served by the emulator")

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self.types.get((group, version, plural))

    # ---- discovery documents -------------------------------------------------------------------

    def group_list(self) -> JSON:
        groups: dict[str, list[str]] = {}
        for group_version in self.discovery:
            if "/" in group_version:
                group, version = group_version.split("/")
                groups.setdefault(group, []).append(version)
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {
                    "name": group,
                    "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in versions],
                    "preferredVersion": {"groupVersion": f"{group}/{versions[0]}", "version": versions[0]},
                }
                for group, versions in groups.items()
            ],
        }

    def openapi_v3(self, group_version_path: str, *, git_version: str, revision: int) -> JSON:
        # Just enough OpenAPI v3 for kubectl's validator (used by Helm) to see that the server does
        # field validation itself: each kind appears with its x-kubernetes-group-version-kind.
        # Without it Helm falls back to client-side validation and needs the protobuf /openapi/v2.
        if not group_version_path:
            return {
                "paths": {
                    (f"apis/{gv}" if "/" in gv else f"api/{gv}"): {
                        "serverRelativeURL": f"/openapi/v3/{'apis' if '/' in gv else 'api'}/{gv}"
                        f"?hash={revision}"
                    }
                    for gv in self.discovery
                }
            }
        group_version = group_version_path.split("/", 1)[1] if "/" in group_version_path else ""
        doc = self.discovery.get(group_version)
        if doc is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        group, _, version = group_version.rpartition("/")
        prefix = f"/apis/{group_version}" if group else f"/api/{version}"
        paths: JSON = {}
        schemas: JSON = {}
        for res in doc.get("resources", []):
            if "/" in res["name"]:
                continue
            gvk = {"group": group, "version": version, "kind": res["kind"]}
            scope = "/namespaces/{namespace}" if res.get("namespaced") else ""
            # kubectl's QueryParamVerifierV3 looks for a PATCH operation tagged with the kind that
            # accepts the fieldValidation query parameter.
            paths[f"{prefix}{scope}/{res['name']}/{{name}}"] = {
                "patch": {
                    "x-kubernetes-group-version-kind": gvk,
                    "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}],
                    "responses": {"200": {"description": "OK"}},
                }
            }
            schemas[f"{group or 'core'}.{version}.{res['kind']}"] = {
                "type": "object",
                "x-kubernetes-group-version-kind": [gvk],
            }
        return {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes (emulated)", "version": git_version},
            "paths": paths,
            "components": {"schemas": schemas},
        }
