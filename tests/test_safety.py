"""Safety of what users run: dashboards on 127.0.0.1 only, checkpoints loaded with
``weights_only=True``, YAML loaded safely, and Ray's token authentication never switched off by
the project (tests may switch it off for their own throwaway clusters). The hostile inputs
themselves (a YAML tag that would run code, a pickle that would run code) are cases of
tests/test_bad_inputs.py."""
from __future__ import annotations

import ast
import re
import types
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted(p for folder in ("hpo_prune", "analysis", "benchmarks")
                 for p in (ROOT / folder).rglob("*.py"))


def calls(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            yield (owner.id if isinstance(owner, ast.Name) else None), node.func.attr, node


def test_the_scan_sees_the_code():
    assert len(SHIPPED) > 40
    assert any(attr == "load" and owner == "torch"
               for path in SHIPPED for owner, attr, _ in calls(path))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_checkpoints_load_weights_only_and_yaml_loads_safely(path):
    for owner, attr, node in calls(path):
        where = f"{path.relative_to(ROOT)}:{node.lineno}"
        if owner == "torch" and attr == "load":
            flag = {k.arg: k.value for k in node.keywords}.get("weights_only")
            assert isinstance(flag, ast.Constant) and flag.value is True, where
        if owner == "yaml":
            assert attr not in ("load", "load_all", "unsafe_load", "full_load", "add_constructor"), \
                f"{where}: use yaml.safe_load"
        if owner == "pickle":
            assert attr not in ("load", "loads"), f"{where}: no pickle loads of user files"


@pytest.mark.parametrize("path", SHIPPED + [ROOT / "pyproject.toml"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_a_user_runs_turns_ray_token_auth_off(path):
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if "RAY_AUTH_MODE" not in line:
            continue
        setting = re.search(r"""setdefault\(\s*['"]RAY_AUTH_MODE|\[['"]RAY_AUTH_MODE['"]\]\s*=(?!=)"""
                            r"""|['"]RAY_AUTH_MODE['"]\s*:|putenv\(\s*['"]RAY_AUTH_MODE"""
                            r"|RAY_AUTH_MODE=", line)
        assert not setting, f"{path.relative_to(ROOT)}:{number}: {line.strip()}"


def test_ray_dashboard_listens_on_loopback_only(monkeypatch, capsys):
    try:  # a skipped safety test would pass CI without checking anything
        import aiohttp  # noqa: F401  (installed with ray[default], in the [test] extra)
    except ModuleNotFoundError:
        pytest.fail("the Ray dashboard needs ray[default]: pip install -e '.[test]'",
                    pytrace=False)
    import ray

    from hpo_prune.search.runner import start_ray

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # a throwaway local cluster
    args = types.SimpleNamespace(dashboard=True, address=None, dashboard_host="127.0.0.1")
    start_ray(args)
    try:
        url = re.search(r"Ray dashboard: http://([\d.]+):(\d+)", capsys.readouterr().out)
        assert url and url.group(1) == "127.0.0.1"
        port = int(url.group(2))
        listening = [c.laddr.ip for c in psutil.net_connections("inet")
                     if c.status == psutil.CONN_LISTEN and c.laddr.port == port]
        assert listening and set(listening) == {"127.0.0.1"}, listening
    finally:
        ray.shutdown()
