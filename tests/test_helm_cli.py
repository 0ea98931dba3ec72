"""The operator's-helm backend: version checks and argument building. No helm binary exists on these
machines, so it is not exercised against a real helm."""

from __future__ import annotations

import pytest

from hfwizard.engine.helm import ChartRef
from hfwizard.engine.helm_cli import HelmCli, check_version, parse_version
from hfwizard.errors import BadInput


def test_version_parsing_and_minimum() -> None:
    assert parse_version("v3.14.2+gc309b6f\n") == (3, 14, 2)
    assert check_version("v3.8.0+gd14138609b") == (3, 8, 0)
    assert check_version("v4.0.1") == (4, 0, 1)
    with pytest.raises(BadInput, match="too old"):
        check_version("v3.7.2+g663a896")
    with pytest.raises(BadInput, match="cannot read"):
        parse_version("garbage")


async def test_missing_binary_is_bad_input() -> None:
    with pytest.raises(BadInput, match="not found"):
        await HelmCli("/nonexistent/helm").ensure_version()


def test_upgrade_args_put_values_on_stdin() -> None:
    cli = HelmCli("helm", kubeconfig="/k", context="ctx")
    args = cli.upgrade_args("hf", ChartRef("highflame", "https://charts.example"), "ns", version="1.2.3",
                            wait=True, timeout_s=90.5, create_namespace=False, atomic=True)
    assert args[:4] == ["upgrade", "--install", "hf", "highflame"]
    assert args[args.index("--values") + 1] == "-"
    assert args[args.index("--repo") + 1] == "https://charts.example"
    assert "--wait" in args and "--atomic" in args and "--timeout" in args and "90s" in args
    assert args[-6:] == ["--kubeconfig", "/k", "--kube-context", "ctx", "--namespace", "ns"]
