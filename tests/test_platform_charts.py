"""Chart sources against Highflame's real chart repository (a copy served over loopback HTTP)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from hfwizard.platform.catalog import load_catalog
from hfwizard.platform.charts import ChartError, ChartSource, chart_crds, operator_source, platform_source, pull_to
from tests.platform_support import CHARTS, CHARTS_MISSING, serve

pytestmark = pytest.mark.skipif(not (CHARTS / "index.yaml").is_file(), reason=CHARTS_MISSING)


def _copy(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(CHARTS, repo)
    return repo


def test_fetches_the_pinned_version_checks_its_digest_and_caches_it(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    index = yaml.safe_load((CHARTS / "index.yaml").read_text())
    want = next(e["digest"] for e in index["entries"]["highflame-generic"] if e["version"] == "1.0.3")
    with serve(CHARTS) as url:
        got = ChartSource(url, cache).fetch("highflame-generic", "1.0.3")
    assert got.digest == want and got.path == cache / "highflame-generic-1.0.3.tgz"
    assert got.path.read_bytes() == (CHARTS / "highflame-generic-1.0.3.tgz").read_bytes()
    # The digest to trust comes from the index, so with the repository gone the cache alone is not used
    # (an air-gapped site uses a mirror folder instead).
    with pytest.raises(ChartError, match="unreachable"):
        ChartSource(url, cache, timeout_s=2).fetch("highflame-generic", "1.0.3")


def test_a_second_fetch_uses_the_cache(tmp_path: Path) -> None:
    repo = _copy(tmp_path)
    with serve(repo) as url:
        source = ChartSource(url, tmp_path / "cache")
        source.fetch("highflame-redteam", "1.0.4")
        (repo / "highflame-redteam-1.0.4.tgz").unlink()  # only the index is left on the server
        again = source.fetch("highflame-redteam", "1.0.4")
    assert again.path.is_file()


def test_a_missing_version_names_url_and_version(tmp_path: Path) -> None:
    with serve(CHARTS) as url, pytest.raises(ChartError) as err:
        ChartSource(url, tmp_path).fetch("highflame-generic", "1.0.9")
    text = str(err.value)
    assert f"{url}/index.yaml" in text and "1.0.9" in text and "1.0.3, 1.0.2" in text


def test_a_wrong_digest_fails_and_caches_nothing(tmp_path: Path) -> None:
    repo = _copy(tmp_path)
    tgz = repo / "highflame-generic-1.0.3.tgz"
    tgz.write_bytes(tgz.read_bytes() + b"tampered")
    cache = tmp_path / "cache"
    with serve(repo) as url, pytest.raises(ChartError) as err:
        ChartSource(url, cache).fetch("highflame-generic", "1.0.3")
    text = str(err.value)
    assert "digest mismatch" in text and f"{url}/highflame-generic-1.0.3.tgz" in text and "1.0.3" in text
    assert not (cache / "highflame-generic-1.0.3.tgz").exists()


def test_an_unreachable_repository_names_url_and_version(tmp_path: Path, closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}/charts"
    with pytest.raises(ChartError) as err:
        ChartSource(url, tmp_path, timeout_s=3).fetch("highflame-redteam", "1.0.5")
    text = str(err.value)
    assert f"{url}/index.yaml" in text and "highflame-redteam 1.0.5" in text and err.value.remedy


def test_a_page_that_is_not_an_index_is_refused(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.yaml").write_text("<html>captive portal</html>\n")
    with serve(site) as url, pytest.raises(ChartError, match="not a Helm repository index"):
        ChartSource(url, tmp_path / "cache").fetch("highflame-generic", "1.0.3")


def test_pull_to_writes_a_mirror_that_installs_offline(tmp_path: Path) -> None:
    catalog = load_catalog("2026.02")
    mirror = tmp_path / "mirror"
    with serve(CHARTS) as url:
        index = pull_to(mirror, catalog, ChartSource(url, tmp_path / "cache"))
    entries = yaml.safe_load(index.read_text())["entries"]
    assert {n: [e["version"] for e in v] for n, v in entries.items()} == {
        "highflame-generic": ["1.0.3"], "highflame-redteam": ["1.0.5"], "highflame-ingress": ["1.0.0"],
        "altinity-clickhouse-operator": ["0.25.6"]}
    source = platform_source("https://unreachable.invalid/charts", str(mirror), None)
    assert source.kind == "mirror"
    for pin in catalog.pins():
        got = source.fetch(pin.name, pin.version)
        assert got.path.parent == mirror and got.digest == entries[pin.name][0]["digest"]
    assert operator_source(catalog, str(mirror), None).fetch("altinity-clickhouse-operator", "0.25.6")
    (mirror / "highflame-ingress-1.0.0.tgz").write_bytes(b"not the chart")
    with pytest.raises(ChartError, match="digest mismatch"):
        source.fetch("highflame-ingress", "1.0.0")


def test_local_tgz_and_chart_folder(tmp_path: Path) -> None:
    tgz = CHARTS / "highflame-redteam-1.0.5.tgz"
    assert ChartSource(str(tgz)).fetch("highflame-redteam", "1.0.5").path == tgz
    with pytest.raises(ChartError, match=r"holds chart highflame-redteam 1\.0\.5, not highflame-redteam 1\.0\.4"):
        ChartSource(str(tgz)).fetch("highflame-redteam", "1.0.4")
    shutil.unpack_archive(tgz, tmp_path, filter="data")
    folder = tmp_path / "highflame-redteam"
    assert ChartSource(str(folder)).fetch("highflame-redteam", "1.0.5").digest is None
    with pytest.raises(ChartError, match="does not exist"):
        ChartSource(str(tmp_path / "nope.tgz")).fetch("highflame-redteam", "1.0.5")


def test_oci_failure_names_reference_and_version(tmp_path: Path, closed_port: int) -> None:
    ref = f"oci://127.0.0.1:{closed_port}/highflame-ai/charts"
    with pytest.raises(ChartError) as err:
        ChartSource(ref, tmp_path, timeout_s=10).fetch("highflame-generic", "1.0.3")
    assert f"{ref}/highflame-generic version 1.0.3" in str(err.value)


def test_the_crds_of_a_chart_come_from_its_crds_folder_packed_or_not(tmp_path: Path) -> None:
    import tarfile

    tgz = next(CHARTS.glob("altinity-clickhouse-operator-*.tgz"))
    packed = chart_crds(tgz)
    kinds = {c["spec"]["names"]["kind"] for c in packed}
    assert kinds == {"ClickHouseInstallation", "ClickHouseInstallationTemplate", "ClickHouseKeeperInstallation",
                     "ClickHouseOperatorConfiguration"}
    with tarfile.open(tgz) as tar:
        tar.extractall(tmp_path, filter="data")
    folder = tmp_path / "altinity-clickhouse-operator"
    assert chart_crds(folder) == packed
    # A chart without crds/ has none; a broken archive is named.
    assert chart_crds(next(CHARTS.glob("highflame-generic-*.tgz"))) == []
    broken = tmp_path / "broken.tgz"
    broken.write_bytes(b"not a tarball")
    with pytest.raises(ChartError, match=r"broken\.tgz is not a chart archive"):
        chart_crds(broken)
