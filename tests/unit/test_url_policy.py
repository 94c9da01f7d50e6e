"""The URL policy, redaction, path joining and checksum pins: pure functions, no I/O."""

from __future__ import annotations

import logging
import pickle
import socket
import time
from email.utils import formatdate

import pytest

from recipes_core.errors import RecipeError, UnsafeRecipeError
from recipes_core.redact import RedactingFilter, redact_recipe, redact_text, redact_url
from recipes_core.storage import AccessPolicy, Pins, check_url, safe_join
from recipes_core.storage.http import is_retryable_status, retry_after_seconds
from recipes_core.storage.pins import check_manifest_location, parse_manifest
from recipes_core.storage.policy import check_peer, ip_literal, is_forbidden_address

STRICT = AccessPolicy(allow_http=False)


@pytest.mark.parametrize("host", [
    "127.0.0.1", "2130706433", "0x7f.1", "0177.0.0.1", "127.1", "0", "0.0.0.0", "10.1.2.3",
    "172.16.0.1", "172.31.255.255", "192.168.0.1", "169.254.169.254", "100.64.0.1",
    "[::1]", "[::]", "[fd00::1]", "[fc00::5]", "[fe80::1]", "[fe80::1%25eth0]",
    "[::ffff:127.0.0.1]", "[::ffff:10.0.0.1]", "[64:ff9b::7f00:1]", "[2002:7f00:1::]",
    "[fec0::1]", "224.0.0.1", "localhost", "LOCALHOST", "localhost.", "a.b.localhost",
])
def test_private_and_disguised_hosts_are_refused(host):
    with pytest.raises(UnsafeRecipeError, match="loopback, link-local or private"):
        check_url(f"https://{host}/data/file.nc", STRICT, resolve=False)


@pytest.mark.parametrize("url", [
    "https://example.org/a.nc", "https://8.8.8.8/a.nc", "https://[2606:4700::1111]/a.nc",
    "s3://bucket/key.nc", "gs://bucket/key.nc", "az://container/key.nc",
    "https://example.org/a.nc?version=2", "https://xn--bcher-kva.example/a.nc",
])
def test_public_remote_urls_pass(url):
    check_url(url, STRICT, resolve=False)


@pytest.mark.parametrize(("url", "words"), [
    ("simplecache::https://example.org/a.nc", "chained"),
    ("zip://a.nc::https://example.org/a.zip", "chained"),
    ("https://example.org/a::b.nc", "chained"),
    ("file:///etc/passwd", "local paths"),
    ("../../etc/passwd", "local paths"),
    ("/etc/passwd", "local paths"),
    ("ftp://example.org/a.nc", "scheme 'ftp'"),
    ("http://example.org/a.nc", "plain http"),
    ("https://user:pw@example.org/a.nc", "credentials"),
    ("https://example.org@127.0.0.1/a.nc", "credentials"),
    ("https://example.org\\@127.0.0.1/a.nc", "backslash"),
    ("https://example.org/a b.nc", "space"),
    ("https://example.org/a\r\nHost: evil/", "control character"),
    ("https://%31%32%37.0.0.1/a.nc", "not a valid host name"),
    ("https://example.org:99999/a.nc", "cannot be parsed"),
    ("https://[::1/a.nc", "chained|cannot be parsed"),  # an unclosed bracket: refused anyway
    ("https:///a.nc", "no host"),
])
def test_other_refusals(url, words):
    with pytest.raises(UnsafeRecipeError, match=words):
        check_url(url, STRICT, resolve=False)


def test_inet_aton_forms():
    assert str(ip_literal("2130706433")) == "127.0.0.1"
    assert str(ip_literal("0x7f.0.0.1")) == "127.0.0.1"
    assert str(ip_literal("0177.1")) == "127.0.0.1"
    assert str(ip_literal("10.1")) == "10.0.0.1"
    assert ip_literal("999.1.1.1") is None and ip_literal("example.org") is None
    assert ip_literal("08.1.1.1") is None  # not octal: a DNS name to the C library too
    assert is_forbidden_address("not an address")


def test_allowed_hosts_exempt_exactly_host_and_port(monkeypatch):
    policy = AccessPolicy(allowed_hosts=("127.0.0.1:8080", "mirror.internal"))
    check_url("https://127.0.0.1:8080/a.nc", policy)
    with pytest.raises(UnsafeRecipeError):
        check_url("https://127.0.0.1:8081/a.nc", policy)
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: pytest.fail("no DNS needed"))
    check_url("https://mirror.internal:9000/a.nc", policy)  # a bare host: any port
    check_peer("mirror.internal", 9000, "10.0.0.2", policy)
    with pytest.raises(UnsafeRecipeError, match=r"was reached at 10\.0\.0\.2"):
        check_peer("example.org", 443, "10.0.0.2", AccessPolicy())
    assert pickle.loads(pickle.dumps(policy)) == policy


def test_resolved_hosts_are_checked(monkeypatch):
    def resolve(host, port, *args, **kwargs):
        addresses = {"evil.example": "127.0.0.1", "good.example": "93.184.216.34"}
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (addresses[host], port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    check_url("https://good.example/a.nc", STRICT)
    with pytest.raises(UnsafeRecipeError, match=r"resolves to 127\.0\.0\.1"):
        check_url("https://evil.example/a.nc", STRICT)


def test_redact_url_and_text():
    assert redact_url("https://u:p@[::1]:8/a/b.nc?token=S&x=1&flag#frag") == (
        "https://***@[::1]:8/a/b.nc?token=***&x=***&flag")
    assert redact_url("zip://a::https://h/x.zip?k=v") == "zip://a::https://h/x.zip?k=***"
    assert redact_url("https://h:99999/a?k=v") == "https://h:99999/a?k=***"  # never raises
    assert redact_url("/local/path?x=1") == "/local/path?x=1"
    text = redact_text("failed: GET https://h/a.nc?sig=S (s3://k:s@b/o)", "https://h/a.nc?sig=S")
    assert "S)" not in text and "sig=***" in text and "k:s" not in text
    recipe = {"source": {"pattern": "https://h/{t}.nc?token=S", "sha256": {"https://h/a?t=S": "0"}}}
    assert "S" not in str(redact_recipe(recipe)["source"]).replace("sha256", "")


def test_a_staged_sources_record_has_every_field_and_a_redacted_url():
    from dataclasses import asdict

    from recipes_core.storage.stage import StagedSource

    staged = StagedSource("https://u:p@h/a.nc?token=S", "/cache/a.nc", 10, "ab" * 32,
                          etag='"e"', last_modified="Tue", fetched_at="2026", cached=True,
                          cache_key="k")
    assert staged.record() == {**asdict(staged), "url": "https://***@h/a.nc?token=***"}


def test_log_records_are_redacted():
    record = logging.LogRecord("urllib3.connectionpool", logging.DEBUG, __file__, 1,
                               '%s "%s %s"', ("http://h:80", "GET", "/a.nc?token=S"), None)
    assert RedactingFilter().filter(record)
    assert record.getMessage() == 'http://h:80 "GET /a.nc?token=***"'


@pytest.mark.parametrize("part", ["..", "a/../b", "/abs", "a\\b", "%2e%2e", "a%2Fb", "a\x00b",
                                  "", "a//b", "./a", "C:x"])
def test_safe_join_refuses_escapes(tmp_path, part):
    with pytest.raises(UnsafeRecipeError):
        safe_join(tmp_path, part)


def test_safe_join_joins(tmp_path):
    assert safe_join(tmp_path, "ds", "v1", "ds.zarr") == str(tmp_path / "ds" / "v1" / "ds.zarr")
    assert safe_join("gs://bucket/root", "ds", "v2") == "gs://bucket/root/ds/v2"


def test_manifest_parsing_and_lookup():
    a, b, c = "a" * 64, "b" * 64, "c" * 64
    text = f"# checksums\n{a}  2020/sst_01.nc\n{b} *sst_02.nc\n\n{c}  ./other/sst_01.nc\n"
    pins = Pins.combine({"https://h/x/sst_03.nc": "d" * 64}, parse_manifest(text, "SUMS"))
    assert pins.lookup("https://h/data/2020/sst_01.nc") == a
    assert pins.lookup("https://h/data/other/sst_01.nc") == c
    assert pins.lookup("https://h/data/sst_02.nc") == b
    assert pins.lookup("https://h/x/sst_03.nc") == "d" * 64
    assert pins.lookup("https://h/data/sst_04.nc") is None
    with pytest.raises(RecipeError, match="SUMS, line 2"):
        parse_manifest(f"{a}  x.nc\nnot a checksum line\n", "SUMS")
    with pytest.raises(RecipeError, match="listed twice"):
        parse_manifest(f"{a}  x.nc\n{b}  x.nc\n", "SUMS")
    with pytest.raises(RecipeError, match="pinned twice"):
        Pins.combine({"sst_02.nc": a}, parse_manifest(text, "SUMS"))


def test_manifest_locations():
    check_manifest_location("SHA256SUMS")
    check_manifest_location("sums/SHA256SUMS")
    check_manifest_location("https://example.org/SHA256SUMS", untrusted=True)
    for bad in ("../SUMS", "/etc/passwd", "file:///etc/passwd", "s3://b/SUMS", "%2e%2e/x"):
        with pytest.raises(UnsafeRecipeError):
            check_manifest_location(bad)
    with pytest.raises(UnsafeRecipeError):
        check_manifest_location("http://example.org/SUMS", untrusted=True)


def test_retry_classification_and_retry_after():
    assert all(is_retryable_status(s) for s in (408, 425, 429, 500, 502, 503, 504, 599))
    assert not any(is_retryable_status(s) for s in (200, 301, 400, 401, 403, 404, 410, 501, 505))
    assert retry_after_seconds("7") == 7.0
    now = time.time()
    assert 29 <= retry_after_seconds(formatdate(now + 30, usegmt=True), now=now) <= 31
    assert retry_after_seconds(formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None
