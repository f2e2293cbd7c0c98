"""`privacy-guard catalog --format nginx|envoy|haproxy|caddy|apache`: drop-lists for a proxy.

Every snippet must list every identifying catalog name, be accepted by the proxy's own config
check, and — served by the real proxy in front of an echo backend without a guard — delete those
headers in any letter case while passing everything else on. What each proxy does with the
underscore and dot spellings (`X_MSISDN`, `x.msisdn`) is asserted too, as the snippets' comments
and the README state it.
"""

from __future__ import annotations

import http.server
import json
import subprocess
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml
from support import free_port, require_tool, serve

from guard.catalog import CATALOG, CATALOG_VERSION
from guard.cli import main
from guard.droplists import SNIPPETS, identifying_names

NAMES = sorted({entry.name for entry in CATALOG.values()} | set(CATALOG))

# (format, the directive each name becomes)
DIRECTIVES: list[tuple[str, Callable[[str], str]]] = [
    ("nginx", lambda name: f'proxy_set_header {name} "";'),
    ("haproxy", lambda name: f"http-request del-header {name}"),
    ("caddy", lambda name: f"request_header -{name}"),
    ("apache", lambda name: f"RequestHeader unset {name}"),
]


def catalog_output(capsys: pytest.CaptureFixture[str], fmt: str) -> str:
    assert main(["catalog", "--format", fmt]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return out


def test_identifying_names_are_the_catalog() -> None:
    assert identifying_names() == NAMES
    assert "x-up-calling-line-id" in NAMES
    assert len(NAMES) == len(set(NAMES))


@pytest.mark.parametrize(("fmt", "directive"), DIRECTIVES, ids=[f for f, _ in DIRECTIVES])
def test_snippet_lists_every_identifying_name(
    capsys: pytest.CaptureFixture[str], fmt: str, directive: Callable[[str], str]
) -> None:
    out = catalog_output(capsys, fmt)
    assert out == SNIPPETS[fmt]()
    lines = out.splitlines()
    headers = len({entry.name for entry in CATALOG.values()})
    assert lines[:2] == [
        f"# privacy-guard catalog {CATALOG_VERSION}: {len(NAMES)} names, {headers} identifying",
        "# request headers and their aliases.",
    ]
    assert len(NAMES) > headers  # the count says names, not headers, since aliases are listed
    directives = [line for line in lines if line and not line.startswith("#")]
    assert directives == [directive(name) for name in NAMES]


def test_envoy_snippet_is_a_yaml_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert yaml.safe_load(catalog_output(capsys, "envoy")) == {"request_headers_to_remove": NAMES}


def test_haproxy_optional_rule_is_commented_out() -> None:
    """Deleting every underscore/dot name is the operator's choice: offered, not on."""
    assert SNIPPETS["haproxy"]().endswith("\n# http-request del-header [_.] -m reg\n")


# --- each proxy, live ----------------------------------------------------------------------------


class _Echo(http.server.BaseHTTPRequestHandler):
    """The backend: answers with the header names it received, lower-cased. No guard here."""

    def do_GET(self) -> None:
        body = json.dumps([name.lower() for name in self.headers]).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def backend() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


class Proxy(NamedTuple):
    tool: str
    config: str  # {dir}, {port}, {backend}, {snippet}
    check: tuple[str, ...]  # argv after the tool; {conf}, {dir}
    run: tuple[str, ...]
    passes_underscores: bool  # X_MSISDN and x.msisdn reach the backend
    pasted: bool = False  # the snippet goes into the config's text, not a file it includes


NGINX = Proxy(
    "nginx",
    """\
worker_processes 1;
pid {dir}/nginx.pid;
error_log stderr;
events {{ worker_connections 32; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            include {dir}/snippet;
            proxy_pass http://127.0.0.1:{backend};
        }}
    }}
}}
""",
    ("-t", "-e", "stderr", "-p", "{dir}", "-c", "{conf}"),
    ("-e", "stderr", "-p", "{dir}", "-c", "{conf}", "-g", "daemon off;"),
    passes_underscores=False,  # underscores_in_headers off, ignore_invalid_headers on
)
HAPROXY = Proxy(
    "haproxy",
    """\
global
    maxconn 64
defaults
    mode http
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend web
    bind 127.0.0.1:{port}
    default_backend app
backend app
{snippet}
    server app 127.0.0.1:{backend}
""",
    ("-c", "-f", "{conf}"),
    ("-db", "-f", "{conf}"),
    passes_underscores=True,
    pasted=True,
)
CADDY = Proxy(
    "caddy",
    """\
{{
    admin off
    auto_https off
    storage file_system {dir}/data
}}
http://127.0.0.1:{port} {{
    import {dir}/snippet
    reverse_proxy 127.0.0.1:{backend}
}}
""",
    ("validate", "--adapter", "caddyfile", "--config", "{conf}"),
    ("run", "--adapter", "caddyfile", "--config", "{conf}"),
    passes_underscores=True,
)
APACHE = Proxy(
    "apache2",
    """\
ServerRoot {dir}
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule headers_module /usr/lib/apache2/modules/mod_headers.so
LoadModule proxy_module /usr/lib/apache2/modules/mod_proxy.so
LoadModule proxy_http_module /usr/lib/apache2/modules/mod_proxy_http.so
PidFile {dir}/httpd.pid
ErrorLog /dev/stderr
User nobody
Group nogroup
<VirtualHost 127.0.0.1:{port}>
    Include {dir}/snippet
    ProxyPass "/" "http://127.0.0.1:{backend}/"
</VirtualHost>
""",
    ("-t", "-f", "{conf}"),
    ("-X", "-f", "{conf}"),
    passes_underscores=True,
)
PROXIES = {"nginx": NGINX, "haproxy": HAPROXY, "caddy": CADDY, "apache": APACHE}

# Fictional numbers (UK drama range) in catalog headers, in the letter cases clients send.
CATALOG_HEADERS = {
    "X-Up-Calling-Line-Id": "447700900123",
    "X-NOKIA-MSISDN": "447700900124",
    "x-uidh": "T0RBd01EQXdNREF3",
    "-RAPMDN": "447700900126",  # a catalog name that starts with a hyphen
}
SPELLINGS = {"X_MSISDN": "447700900125", "x.msisdn": "447700900127"}
KEPT = {"X-Request-Id": "kept", "Accept-Language": "en-GB"}


def configure(proxy: Proxy, snippet: str, directory: Path, port: int, backend: int) -> Path:
    if proxy.pasted:  # into the section, as the snippet says
        snippet = "".join(f"    {line}\n" for line in snippet.splitlines())
    (directory / "snippet").write_text(snippet)
    conf = directory / "proxy.conf"
    conf.write_text(proxy.config.format(dir=directory, port=port, backend=backend, snippet=snippet))
    return conf


def argv(tool: str, args: tuple[str, ...], directory: Path, conf: Path) -> list[str]:
    return [tool, *(arg.format(dir=directory, conf=conf) for arg in args)]


def names_through(url: str, headers: dict[str, str]) -> set[str]:
    """The header names the backend received for one request sent to the proxy at `url`."""
    request = urllib.request.Request(f"{url}/", headers=headers)
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with direct.open(request, timeout=20) as response:
        return set(json.loads(response.read()))


def proxy_env(directory: Path) -> dict[str, str]:
    """Caddy keeps state under $HOME/$XDG_*: keep it in the test's directory."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "HOME": str(directory),
        "XDG_DATA_HOME": str(directory),
        "XDG_CONFIG_HOME": str(directory),
    }


@pytest.mark.parametrize("fmt", list(PROXIES))
def test_proxy_accepts_the_snippet(tmp_path: Path, fmt: str) -> None:
    proxy = PROXIES[fmt]
    tool = require_tool(proxy.tool)
    conf = configure(proxy, SNIPPETS[fmt](), tmp_path, free_port(), free_port())
    result = subprocess.run(
        argv(tool, proxy.check, tmp_path, conf),
        capture_output=True,
        text=True,
        env=proxy_env(tmp_path),
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("fmt", list(PROXIES))
def test_proxy_deletes_the_catalog_headers(tmp_path: Path, backend: int, fmt: str) -> None:
    proxy = PROXIES[fmt]
    tool = require_tool(proxy.tool)
    port = free_port()
    conf = configure(proxy, SNIPPETS[fmt](), tmp_path, port, backend)
    command = argv(tool, proxy.run, tmp_path, conf)
    with serve(command, port=port, env=proxy_env(tmp_path), timeout=60) as server:
        seen = names_through(server.url, {**CATALOG_HEADERS, **SPELLINGS, **KEPT})
    assert {name.lower() for name in KEPT} <= seen
    assert not seen & {name.lower() for name in CATALOG_HEADERS}
    spellings = {name.lower() for name in SPELLINGS}
    if proxy.passes_underscores:
        assert spellings <= seen  # left to the guard, which folds them to x-msisdn
    else:
        assert not seen & spellings


@pytest.mark.slow
def test_haproxy_optional_rule_deletes_underscore_and_dot_names(
    tmp_path: Path, backend: int
) -> None:
    tool = require_tool("haproxy")
    port = free_port()
    snippet = SNIPPETS["haproxy"]().replace("# http-request del-header", "http-request del-header")
    conf = configure(HAPROXY, snippet, tmp_path, port, backend)
    with serve(argv(tool, HAPROXY.run, tmp_path, conf), port=port, timeout=60) as server:
        seen = names_through(server.url, {**SPELLINGS, **KEPT})
    assert {name.lower() for name in KEPT} <= seen
    assert not seen & {name.lower() for name in SPELLINGS}
