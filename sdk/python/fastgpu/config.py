"""Where the client finds the server, the token and the CA file: the same places as the ``fastgpu`` CLI.

In order, the first that is set wins:

- server URL: ``url=`` argument; ``FASTGPU_SERVER`` (or ``FASTGPU_URL``); ``$FASTGPU_HOME/credentials.json``
  (written by ``fastgpu login``); ``$FASTGPU_HOME/url`` (written by ``fastgpu up``); ``http://127.0.0.1:8400``.
- token: ``token=``; ``FASTGPU_TOKEN``; ``credentials.json`` when it is for that server;
  ``$FASTGPU_HOME/admin.token`` (written by ``fastgpu up``). A service account instead gives ``client_id=`` and
  ``client_secret=`` (or ``FASTGPU_CLIENT_ID`` and ``FASTGPU_CLIENT_SECRET``): its access tokens come from
  ``POST /oauth/token`` and are renewed before they expire.
- CA file (HTTPS with a private CA): ``ca_file=``; ``FASTGPU_CA``; ``credentials.json`` when it is for that server.
- project for submits: ``project=``; ``FASTGPU_PROJECT``; ``project`` in ``$FASTGPU_HOME/config.json``
  (``fastgpu config set project P``); else the server picks (``default``, or the caller's only project).

``FASTGPU_HOME`` defaults to ``~/.fastgpu`` (``home=`` overrides it).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Mapping, Optional

from .errors import InvalidRequest

DEFAULT_SERVER_URL = "http://127.0.0.1:8400"


@dataclass(frozen=True)
class ClientConfig:
    url: str
    token: str
    ca_file: str
    project: str
    home: str
    url_from: str
    token_from: str
    ca_from: str
    client_id: str = ""
    client_secret: str = ""


def resolve_home(env: Mapping[str, str]) -> str:
    home = env.get("FASTGPU_HOME", "").strip()
    if home:
        return home
    user_home = env.get("HOME", "").strip()
    return os.path.join(user_home, ".fastgpu") if user_home else ".fastgpu"


def normalize_url(text: str) -> str:
    """``host:port`` -> ``http://host:port``; no trailing slash; only http:// and https://."""
    s = text.strip()
    if not s:
        raise InvalidRequest("server URL is empty (example: http://127.0.0.1:8400)")
    if "://" not in s:
        s = "http://" + s
    if not (s.startswith("http://") or s.startswith("https://")):
        raise InvalidRequest(f"server URL {s!r} must start with http:// or https://")
    host = s.index("://") + 3
    s = s.rstrip("/") if len(s) > host else s
    if len(s) <= host or s[host] == "/":
        raise InvalidRequest(f"server URL {text!r} has no host")
    return s


def _read(path: str) -> Optional[str]:
    try:
        with open(path, "r", encoding="utf-8") as f:
            return f.read(1 << 20)
    except OSError:
        return None


def resolve(
    url: Optional[str] = None,
    token: Optional[str] = None,
    ca_file: Optional[str] = None,
    project: Optional[str] = None,
    home: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
    client_id: Optional[str] = None,
    client_secret: Optional[str] = None,
) -> ClientConfig:
    env = os.environ if env is None else env
    home_dir = home.strip() if home and home.strip() else resolve_home(env)
    creds_path = os.path.join(home_dir, "credentials.json")
    creds: Optional[dict] = None
    creds_text = _read(creds_path)
    creds_error = ""
    if creds_text is not None:
        try:
            parsed = json.loads(creds_text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("server"), str) and isinstance(parsed.get("token"), str):
            creds = parsed
        else:
            creds_error = f"{creds_path}: credentials file is damaged; run `fastgpu login` again"

    def envv(name: str) -> str:
        return env.get(name, "").strip()

    if url and url.strip():
        raw, url_from = url, "url argument"
    elif envv("FASTGPU_SERVER"):
        raw, url_from = envv("FASTGPU_SERVER"), "FASTGPU_SERVER"
    elif envv("FASTGPU_URL"):
        raw, url_from = envv("FASTGPU_URL"), "FASTGPU_URL"
    elif creds_error:
        raise InvalidRequest(creds_error)
    elif creds is not None:
        raw, url_from = creds["server"], creds_path
    elif (_read(os.path.join(home_dir, "url")) or "").strip():
        raw, url_from = (_read(os.path.join(home_dir, "url")) or "").strip(), os.path.join(home_dir, "url")
    else:
        raw, url_from = DEFAULT_SERVER_URL, "default"
    try:
        server = normalize_url(raw)
    except InvalidRequest as e:
        raise InvalidRequest(f"{e} (from {url_from})") from None
    stored = None
    if creds is not None:
        try:
            if normalize_url(creds["server"]) == server:
                stored = creds
        except InvalidRequest:
            stored = None

    cid = (client_id or "").strip() or envv("FASTGPU_CLIENT_ID")
    csecret = (client_secret or "").strip() or envv("FASTGPU_CLIENT_SECRET")
    if bool(cid) != bool(csecret):
        raise InvalidRequest("a service account needs both client_id and client_secret "
                             "(or FASTGPU_CLIENT_ID and FASTGPU_CLIENT_SECRET)")

    tok, token_from = "", ""
    if cid:
        token_from = "client credentials (POST /oauth/token)"
    elif token and token.strip():
        tok, token_from = token.strip(), "token argument"
    elif envv("FASTGPU_TOKEN"):
        tok, token_from = envv("FASTGPU_TOKEN"), "FASTGPU_TOKEN"
    elif stored is not None and stored.get("token", "").strip():
        tok, token_from = stored["token"].strip(), creds_path
    else:
        admin = (_read(os.path.join(home_dir, "admin.token")) or "").strip()
        if admin:
            tok, token_from = admin, os.path.join(home_dir, "admin.token")

    ca, ca_from = "", ""
    if ca_file and ca_file.strip():
        ca, ca_from = ca_file.strip(), "ca_file argument"
    elif envv("FASTGPU_CA"):
        ca, ca_from = envv("FASTGPU_CA"), "FASTGPU_CA"
    elif stored is not None and isinstance(stored.get("ca"), str) and stored["ca"].strip():
        ca, ca_from = stored["ca"].strip(), creds_path

    proj = ""
    if project and project.strip():
        proj = project.strip()
    elif envv("FASTGPU_PROJECT"):
        proj = envv("FASTGPU_PROJECT")
    else:
        text = _read(os.path.join(home_dir, "config.json"))
        if text:
            try:
                cfg = json.loads(text)
            except ValueError:
                cfg = None
            if isinstance(cfg, dict) and isinstance(cfg.get("project"), str):
                proj = cfg["project"].strip()
    return ClientConfig(url=server, token=tok, ca_file=ca, project=proj, home=home_dir,
                        url_from=url_from, token_from=token_from, ca_from=ca_from,
                        client_id=cid, client_secret=csecret)
