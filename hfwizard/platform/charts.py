"""Chart sources: fetch a pinned (chart, version) from a Helm repository, a mirror folder, a local chart or OCI.

A repository's `index.yaml` gives each version's tarball and sha256 digest; the tarball is checked against
it and cached in a folder the caller gives (the install's state directory). Every failure names the URL,
chart and version, and happens before anything in the cluster changes. `pull_to` writes a mirror folder
(tarballs + index.yaml) for air-gapped sites.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hfwizard.errors import Failed
from hfwizard.platform.catalog import Catalog, ChartPin

_MAX_INDEX = 64 * 1024 * 1024
_MAX_CHART = 256 * 1024 * 1024


class ChartError(Failed):
    """A chart that cannot be had: unreachable source, missing version, wrong digest, wrong content."""


@dataclass(frozen=True)
class FetchedChart:
    name: str
    version: str
    path: Path
    """The chart tarball (or chart folder, for a local chart) Helm installs from."""
    digest: str | None
    """sha256 of the tarball; None for a chart folder."""
    origin: str
    """Where it came from (URL, folder or reference), for messages and the journal."""


class ChartSource:
    """Where charts come from. `location` is one of:

    - an `https://` or `http://` Helm repository (index.yaml + tarballs), cached in `cache_dir`;
    - a mirror folder holding index.yaml and tarballs (as `pull_to` writes);
    - a local chart folder (with Chart.yaml) or a .tgz, for one chart;
    - an `oci://registry/path` under which each chart is `<path>/<name>`.
    """

    def __init__(self, location: str, cache_dir: Path | None = None, timeout_s: float = 30.0) -> None:
        self.location = location
        self.cache_dir = cache_dir
        self.timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"ChartSource({self.location!r})"

    @property
    def kind(self) -> str:
        if self.location.startswith(("https://", "http://")):
            return "repository"
        if self.location.startswith("oci://"):
            return "oci"
        path = Path(self.location).expanduser()
        if path.is_dir() and (path / "index.yaml").is_file():
            return "mirror"
        return "local"

    def fetch(self, name: str, version: str) -> FetchedChart:
        """The chart's tarball (or folder) on this machine, checked; raises ChartError naming what failed."""
        kind = self.kind
        if kind == "repository":
            return self._from_repository(name, version)
        if kind == "mirror":
            return self._from_mirror(name, version)
        if kind == "oci":
            return self._from_oci(name, version)
        return _from_local(Path(self.location).expanduser(), name, version)

    # ---- repository ------------------------------------------------------------------------------

    def _from_repository(self, name: str, version: str) -> FetchedChart:
        base = self.location.rstrip("/") + "/"
        index_url = base + "index.yaml"
        index = _parse_index(_get(index_url, self.timeout_s, _MAX_INDEX, name, version), index_url, name, version)
        entry = _entry(index, index_url, name, version)
        url = urllib.parse.urljoin(base, _first_url(entry, index_url, name, version))
        digest = _digest(entry, index_url, name, version)
        if self.cache_dir is None:
            raise ChartError(f"no cache folder given for charts from {self.location}")
        cached = self.cache_dir / f"{name}-{version}.tgz"
        if cached.is_file() and _sha256(cached.read_bytes()) == digest:
            return FetchedChart(name, version, cached, digest, url)
        data = _get(url, self.timeout_s, _MAX_CHART, name, version)
        _check_digest(data, digest, url, name, version)
        _check_chart(data, url, name, version)
        self.cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_atomic(cached, data)
        return FetchedChart(name, version, cached, digest, url)

    def _from_mirror(self, name: str, version: str) -> FetchedChart:
        folder = Path(self.location).expanduser()
        index_path = folder / "index.yaml"
        index = _parse_index(index_path.read_bytes(), str(index_path), name, version)
        entry = _entry(index, str(index_path), name, version)
        rel = _first_url(entry, str(index_path), name, version)
        if "://" in rel:
            raise ChartError(f"mirror {folder}: index.yaml points {name} {version} at {rel}, outside the folder",
                             remedy="write the mirror with `hfwizard charts pull --to DIR`")
        path = (folder / rel).resolve()
        if folder.resolve() not in path.parents or not path.is_file():
            raise ChartError(f"mirror {folder}: {name} {version} is listed but {rel} is not in the folder")
        data = path.read_bytes()
        digest = _digest(entry, str(index_path), name, version)
        _check_digest(data, digest, str(path), name, version)
        _check_chart(data, str(path), name, version)
        return FetchedChart(name, version, path, digest, str(path))

    def _from_oci(self, name: str, version: str) -> FetchedChart:
        ref = self.location.rstrip("/") + "/" + name
        if self.cache_dir is None:
            raise ChartError(f"no cache folder given for charts from {self.location}")
        self.cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tempfile.TemporaryDirectory(dir=self.cache_dir) as tmp:
            # Helm's Go code runs in a child process: its log lines and a stuck registry cannot touch ours.
            cmd = [sys.executable, "-m", "hfwizard.platform.charts", "oci-pull", ref, version, tmp]
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout_s + 30)
            except subprocess.TimeoutExpired:
                raise ChartError(f"pulling {ref} version {version} timed out after {self.timeout_s:.0f} s") from None
            got = list(Path(tmp).glob("*.tgz"))
            if done.returncode != 0 or len(got) != 1:
                reason = (done.stderr.strip().splitlines() or ["no chart was written"])[-1]
                raise ChartError(f"cannot pull {ref} version {version}: {reason}",
                                 remedy="check the reference, the version and the registry login")
            data = got[0].read_bytes()
        _check_chart(data, ref, name, version)
        cached = self.cache_dir / f"{name}-{version}.tgz"
        _write_atomic(cached, data)
        return FetchedChart(name, version, cached, _sha256(data), ref)


def platform_source(location: str, mirror: str | None, cache_dir: Path | None,
                    timeout_s: float = 30.0) -> ChartSource:
    """The source of the platform's charts: the mirror folder when one is set, else the repository."""
    return ChartSource(mirror or location, cache_dir, timeout_s)


def operator_source(catalog: Catalog, mirror: str | None, cache_dir: Path | None,
                    timeout_s: float = 30.0) -> ChartSource:
    """The ClickHouse operator's source: the mirror folder, else the repository the catalog pins it to."""
    return ChartSource(mirror or catalog.clickhouse_operator.repository or catalog.repository, cache_dir, timeout_s)


def pull_to(dest: Path, catalog: Catalog, platform: ChartSource, operator: ChartSource | None = None) -> Path:
    """Write a mirror folder: every chart of the catalog (the operator's too) and an index.yaml with digests.

    Charts already in `dest` with the right digest are kept. Returns the index path.
    """
    from ruamel.yaml import YAML

    dest.mkdir(parents=True, exist_ok=True)
    entries: dict[str, list[dict[str, Any]]] = {}
    charts = catalog.charts
    pins: list[tuple[ChartPin, ChartSource]] = [(p, platform) for p in (charts.generic, charts.redteam, charts.ingress)]
    pins.append((catalog.clickhouse_operator, operator or platform))
    for pin, source in pins:
        fetched = source.fetch(pin.name, pin.version)
        data = fetched.path.read_bytes() if fetched.path.is_file() else _package(fetched.path)
        target = dest / f"{pin.name}-{pin.version}.tgz"
        if not (target.is_file() and _sha256(target.read_bytes()) == _sha256(data)):
            _write_atomic(target, data)
        meta = _chart_meta(data, str(target))
        entries.setdefault(pin.name, []).append({
            "apiVersion": meta.get("apiVersion", "v2"), "name": pin.name, "version": pin.version,
            "appVersion": str(meta.get("appVersion", "")), "description": meta.get("description", ""),
            "digest": _sha256(data), "urls": [target.name]})
    index = dest / "index.yaml"
    buf = io.StringIO()
    YAML(typ="safe", pure=True).dump({"apiVersion": "v1", "entries": entries}, buf)
    _write_atomic(index, buf.getvalue().encode())
    return index


# ---- helpers ----------------------------------------------------------------------------------------


def _get(url: str, timeout_s: float, limit: int, name: str, version: str) -> bytes:
    what = f"{name} {version}"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            data = resp.read(limit + 1)
    except urllib.error.HTTPError as exc:
        raise ChartError(f"{url} answered HTTP {exc.code} while fetching {what}",
                         remedy="check charts.repository (or use a mirror folder: charts.mirror)") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ChartError(f"chart repository unreachable: {url} ({reason}) while fetching {what}",
                         remedy="check the network path, proxy settings and charts.repository, or install "
                                "from a mirror folder (charts.mirror)") from None
    if len(data) > limit:
        raise ChartError(f"{url} is larger than {limit // (1024 * 1024)} MiB; refusing it ({what})")
    return data


def _parse_index(raw: bytes, where: str, name: str, version: str) -> dict[str, Any]:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        index = YAML(typ="safe", pure=True).load(raw)
    except YAMLError:
        raise ChartError(f"{where} is not a Helm repository index (bad YAML) while looking for {name} "
                         f"{version}") from None
    if not isinstance(index, dict) or not isinstance(index.get("entries"), dict):
        raise ChartError(f"{where} is not a Helm repository index (no entries) while looking for {name} {version}")
    return index


def _entry(index: dict[str, Any], where: str, name: str, version: str) -> dict[str, Any]:
    versions = [e for e in index["entries"].get(name) or [] if isinstance(e, dict)]
    for e in versions:
        if str(e.get("version")) == version:
            return e
    have = ", ".join(str(e.get("version")) for e in versions) or "none"
    raise ChartError(f"chart {name} version {version} is not in {where} (versions there: {have})",
                     remedy="choose a platform.version whose charts the repository holds, or update the mirror")


def _first_url(entry: dict[str, Any], where: str, name: str, version: str) -> str:
    urls = entry.get("urls") or []
    if not urls or not isinstance(urls[0], str):
        raise ChartError(f"{where} lists {name} {version} without a download URL")
    return urls[0]


def _digest(entry: dict[str, Any], where: str, name: str, version: str) -> str:
    digest = str(entry.get("digest") or "").lower().removeprefix("sha256:")
    if len(digest) != 64:
        raise ChartError(f"{where} gives no sha256 digest for {name} {version}; hfwizard installs only "
                         "charts it can check")
    return digest


def _check_digest(data: bytes, digest: str, url: str, name: str, version: str) -> None:
    got = _sha256(data)
    if got != digest:
        raise ChartError(f"digest mismatch for {name} {version} from {url}: sha256 {got}, the index says {digest}",
                         remedy="the download or the repository was tampered with or is stale; nothing was installed")


def _check_chart(data: bytes, where: str, name: str, version: str) -> None:
    meta = _chart_meta(data, where)
    if meta.get("name") != name or str(meta.get("version")) != version:
        raise ChartError(f"{where} holds chart {meta.get('name')} {meta.get('version')}, not {name} {version}")


def _chart_meta(data: bytes, where: str) -> dict[str, Any]:
    from ruamel.yaml import YAML

    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar.getmembers():
                parts = member.name.split("/")
                if len(parts) == 2 and parts[1] == "Chart.yaml" and member.isfile():
                    f = tar.extractfile(member)
                    meta = YAML(typ="safe", pure=True).load(f.read() if f else b"")
                    return meta if isinstance(meta, dict) else {}
    except (tarfile.TarError, OSError, EOFError):
        raise ChartError(f"{where} is not a chart archive (.tgz)") from None
    raise ChartError(f"{where} has no Chart.yaml at its top")


def chart_crds(path: Path) -> list[dict[str, Any]]:
    """The CustomResourceDefinitions in a chart's own `crds/` folder (a .tgz or a chart folder), in file
    order: what Helm installs once on a first install and never upgrades."""
    import yaml

    texts: list[tuple[str, bytes]] = []
    if path.is_dir():
        texts = [(str(f), f.read_bytes()) for f in sorted((path / "crds").glob("*")) if f.suffix in _CRD_SUFFIXES]
    else:
        try:
            with tarfile.open(path, mode="r:gz") as tar:
                for member in sorted(tar.getmembers(), key=lambda m: m.name):
                    parts = member.name.split("/")
                    if (len(parts) == 3 and parts[1] == "crds" and member.isfile()
                            and Path(parts[2]).suffix in _CRD_SUFFIXES):
                        f = tar.extractfile(member)
                        texts.append((member.name, f.read() if f else b""))
        except (tarfile.TarError, OSError, EOFError):
            raise ChartError(f"{path} is not a chart archive (.tgz)") from None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    crds: list[dict[str, Any]] = []
    for where, text in texts:
        try:
            docs = list(yaml.load_all(text, Loader=loader))
        except yaml.YAMLError as exc:
            raise ChartError(f"{where} in the chart is not YAML: {exc}") from None
        for doc in docs:
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                crds.append(doc)
    return crds


_CRD_SUFFIXES = (".yaml", ".yml", ".json")


def _from_local(path: Path, name: str, version: str) -> FetchedChart:
    from ruamel.yaml import YAML

    if path.is_dir():
        chart_yaml = path / "Chart.yaml"
        if not chart_yaml.is_file():
            raise ChartError(f"{path} is neither a chart folder (no Chart.yaml) nor a mirror (no index.yaml)")
        meta = YAML(typ="safe", pure=True).load(chart_yaml.read_bytes()) or {}
        if meta.get("name") != name or str(meta.get("version")) != version:
            raise ChartError(f"{path} holds chart {meta.get('name')} {meta.get('version')}, not {name} {version}")
        return FetchedChart(name, version, path, None, str(path))
    if not path.is_file():
        raise ChartError(f"chart source {path} does not exist (looking for {name} {version})")
    data = path.read_bytes()
    _check_chart(data, str(path), name, version)
    return FetchedChart(name, version, path, _sha256(data), str(path))


def _package(folder: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return buf.getvalue()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _oci_pull(ref: str, version: str, dest: str) -> int:
    import helm_python

    try:
        helm_python.pull(ref, version=version, destination=dest)
    except helm_python.HelmError as exc:
        print(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "oci-pull":
    raise SystemExit(_oci_pull(sys.argv[2], sys.argv[3], sys.argv[4]))
