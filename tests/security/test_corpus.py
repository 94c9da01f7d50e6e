"""The security corpus: every malicious recipe is refused, with its message, before any I/O.

Each file in ``recipes/`` goes through the real entry points, `lint_file(untrusted=True)` and
load + compile + `bake` under the untrusted policy, while sockets, DNS, HTTP, staging and file
opens are booby-trapped: touching any of them fails the test. The only files that may be read
are the recipe under test and the Python installation (``sys.prefix``, site-packages); every
way to open a file is trapped (``open``/``io.open``, ``os.open``, ``pathlib.Path.open``,
``read_text``, ``read_bytes``), and nothing may be opened for writing.
"""

from __future__ import annotations

import builtins
import io
import os
import pathlib
import site
import socket
import sys
import sysconfig
from pathlib import Path

import pytest
import requests
import yaml

# Imported up front so the lazy imports inside bake() open no file while the traps are set.
import recipes_core.pipeline
import recipes_core.runners.engines  # noqa: F401
from recipes_core.bake import bake
from recipes_core.lint import UNTRUSTED_POLICY, lint_file
from recipes_core.plan import compile_recipe
from recipes_core.recipe_io import load_recipe
from recipes_core.storage import AccessPolicy, StagingCache
from recipes_core.storage.stage import Stager
from recipes_core.testing import make_daily_archive
from recipes_core.testing.faults import FaultServer, Redirect

RECIPES = Path(__file__).parent / "recipes"
CASES: dict[str, dict[str, str]] = yaml.safe_load((RECIPES / "cases.yaml").read_text())
PLAIN = sorted(name for name, case in CASES.items() if "needs" not in case)
# The Python installation: lazy imports and libraries' data files (timezones, certificates).
_ALLOWED_READS = tuple(sorted({
    os.path.realpath(p)
    for p in (sys.prefix, sys.base_prefix, sysconfig.get_paths()["purelib"],
              sysconfig.get_paths()["platlib"], *site.getsitepackages())
}))
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def test_the_corpus_is_complete():
    files = {p.name for p in RECIPES.glob("*.yaml")} - {"cases.yaml"}
    assert files == set(CASES), "every corpus file needs an expected refusal, and vice versa"
    assert len(files) >= 30


class Traps:
    """Replace every way out of the process with a recorder that fails the call."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, resolver=None,
                 readable: tuple[str, ...] = ()) -> None:
        self.calls: list[str] = []
        real_open, real_os_open = io.open, os.open
        files = {os.path.realpath(p) for p in readable}  # the recipe under test, exactly

        def may_read(file) -> bool:
            if isinstance(file, int):
                return False  # a descriptor: something was opened already
            path = os.path.realpath(os.fspath(file))
            return path in files or any(path.startswith(root + os.sep) or path == root
                                        for root in _ALLOWED_READS)

        def refuse(call: str, file) -> None:
            self.calls.append(call)
            raise AssertionError(f"file access before the refusal: {call} of {file!r}")

        def trap(what):
            def fail(*args, **kwargs):
                self.calls.append(f"{what}{args[:2]!r}")
                raise AssertionError(f"I/O before the refusal: {what}")

            return fail

        def guarded_open(file, mode="r", *args, **kwargs):
            if "r" in mode and "+" not in mode and may_read(file):
                return real_open(file, mode, *args, **kwargs)
            refuse(f"open({file!r}, {mode!r})", file)

        def guarded_os_open(path, flags, *args, **kwargs):
            if not flags & _WRITE_FLAGS and kwargs.get("dir_fd") is None and may_read(path):
                return real_os_open(path, flags, *args, **kwargs)
            refuse(f"os.open({path!r}, {flags:#o})", path)

        def guarded_path(name):
            real = getattr(pathlib.Path, name)

            def method(self, *args, **kwargs):
                mode = (args[0] if args else kwargs.get("mode", "r")) if name == "open" else "r"
                if "r" in mode and "+" not in mode and may_read(self):
                    return real(self, *args, **kwargs)
                refuse(f"Path.{name}({str(self)!r})", self)

            return method

        monkeypatch.setattr(socket.socket, "connect", trap("socket.connect"))
        monkeypatch.setattr(socket, "create_connection", trap("socket.create_connection"))
        monkeypatch.setattr(socket, "getaddrinfo", resolver or trap("socket.getaddrinfo"))
        monkeypatch.setattr(socket, "gethostbyname", trap("socket.gethostbyname"))
        monkeypatch.setattr(requests.Session, "request", trap("requests.Session.request"))
        monkeypatch.setattr(Stager, "stage", trap("Stager.stage"))
        monkeypatch.setattr(builtins, "open", guarded_open)
        monkeypatch.setattr(io, "open", guarded_open)
        monkeypatch.setattr(os, "open", guarded_os_open)
        for name in ("open", "read_text", "read_bytes"):
            monkeypatch.setattr(pathlib.Path, name, guarded_path(name))


def test_the_traps_catch_every_way_to_open_a_file(tmp_path, monkeypatch):
    secret = tmp_path / "secret.txt"
    secret.write_text("not for recipes")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("id: x\n")
    traps = Traps(monkeypatch, readable=(str(recipe),))
    attempts = {
        "open": lambda: open(secret),  # noqa: SIM115
        "io.open": lambda: io.open(secret, "rb"),  # noqa: SIM115, UP020
        "os.open": lambda: os.open(secret, os.O_RDONLY),
        "Path.open": lambda: secret.open(),
        "Path.read_text": secret.read_text,
        "Path.read_bytes": secret.read_bytes,
        "a write beside the recipe": lambda: open(recipe, "a"),  # noqa: SIM115
        "os.open for writing": lambda: os.open(tmp_path / "new", os.O_WRONLY | os.O_CREAT),
    }
    for what, attempt in attempts.items():
        with pytest.raises(AssertionError, match="file access before the refusal"):
            attempt()
        assert len(traps.calls) == list(attempts).index(what) + 1, what
    assert recipe.read_text() == "id: x\n"  # the recipe under test stays readable
    assert Path(yaml.__file__).read_bytes()  # and so does the Python installation


def _bake(path: Path, tmp_path: Path, policy: AccessPolicy) -> None:
    recipe, _ = load_recipe(path)
    plan = compile_recipe(recipe, path)
    bake(plan, str(tmp_path / "target"), cache_dir=str(tmp_path / "cache"), policy=policy)


def _lint_problems(path: Path) -> str:
    result = lint_file(path, untrusted=True)
    assert not result.ok, f"lint --untrusted accepted {path.name}"
    return "\n".join(result.problems)


@pytest.mark.parametrize("name", PLAIN)
def test_refused_before_any_io(name, tmp_path, monkeypatch):
    case = CASES[name]
    path = RECIPES / name
    traps = Traps(monkeypatch, readable=(str(path),))

    problems = _lint_problems(path)
    assert case.get("lint_message", case["message"]) in problems

    with pytest.raises(Exception) as info:
        _bake(path, tmp_path, UNTRUSTED_POLICY)
    assert type(info.value).__name__ == case["error"], info.value
    assert case["message"] in str(info.value)
    assert traps.calls == []
    assert not (tmp_path / "target").exists() and not (tmp_path / "cache").exists()


def test_name_resolving_to_loopback_is_refused_before_connecting(tmp_path, monkeypatch):
    """Lint does no DNS; the bake resolves each host once, up front, and refuses it."""
    name = "resolves-to-loopback.yaml"
    case = CASES[name]
    asked: list[str] = []

    def fake_resolver(host, port, *args, **kwargs):
        asked.append(host)
        if host != "evil.example":
            raise AssertionError(f"unexpected lookup of {host}")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port or 443))]

    traps = Traps(monkeypatch, resolver=fake_resolver, readable=(str(RECIPES / name),))
    assert lint_file(RECIPES / name, untrusted=True).ok  # nothing lint can see without DNS
    with pytest.raises(Exception) as info:
        _bake(RECIPES / name, tmp_path, UNTRUSTED_POLICY)
    assert type(info.value).__name__ == case["error"]
    assert case["message"] in str(info.value) and "https://evil.example/data/a.nc" in str(
        info.value)
    assert asked == ["evil.example"] and traps.calls == []
    assert not (tmp_path / "target").exists()


def test_redirect_to_a_private_address_is_refused_before_connecting(tmp_path, monkeypatch,
                                                                    bake_file):
    """The operator allows one loopback test server (allowed_hosts host:port); it redirects to
    10.0.0.1, which must be refused when the redirect is followed, before any connection."""
    name = "redirect-to-private.yaml"
    case = CASES[name]
    make_daily_archive(tmp_path / "archive", days=1, ny=4, nx=8)
    connected: list[tuple] = []
    real_connect = socket.socket.connect

    def recording_connect(sock, address):
        connected.append(address)
        if address[0] == "10.0.0.1":
            raise AssertionError("connected to the private redirect target")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", recording_connect)
    with FaultServer(tmp_path / "archive") as server:
        server.add(".nc", Redirect("http://10.0.0.1/latest/secrets.nc"), times=None)
        hostport = server.url.removeprefix("http://")
        recipe = tmp_path / "recipe" / name
        recipe.parent.mkdir()
        recipe.write_text((RECIPES / name).read_text().replace("__SERVER__", hostport))
        assert case["lint_message"] in _lint_problems(recipe)  # untrusted: loopback refused
        with pytest.raises(Exception) as info:
            bake_file(recipe, allow_local=False, allowed_hosts=(hostport,), backoff_base=0.01)
    message = str(info.value)
    assert type(info.value).__name__ == case["error"]
    assert case["message"] in message and f"http://{hostport}/data/" in message
    assert connected and all(address[0] == "127.0.0.1" for address in connected)
    assert not any(name for name, _ in StagingCache(tmp_path / "cache").object_files())
    store = tmp_path / "target" / "evil-recipe" / "v1" / "evil-recipe.zarr"
    assert not store.exists() or not [p for p in store.rglob("*") if "/c/" in str(p)]


def test_a_100k_entry_rename_is_refused_before_any_io(tmp_path, monkeypatch):
    """Generated here (a 100,000-entry file is too big to keep in the corpus folder)."""
    text = (RECIPES / "rename-oversized.yaml").read_text().split("transforms:")[0]
    text += "transforms:\n  - rename: {" + ", ".join(f"v{i}: w{i}" for i in range(100_000))
    path = tmp_path / "rename-100k.yaml"
    path.write_text(text + "}\n")
    problems = _lint_problems(path)
    traps = Traps(monkeypatch, readable=(str(path),))
    with pytest.raises(Exception) as info:
        _bake(path, tmp_path, UNTRUSTED_POLICY)
    assert type(info.value).__name__ == "UnsafeRecipeError"
    assert "larger than the limit" in str(info.value) and "larger than the limit" in problems
    assert traps.calls == []
