#!/usr/bin/env python3
"""The Python half of scripts/real_ha.sh: prepares a Home Assistant config, and talks to the
running Home Assistant over its REST API (the one its frontend and `hass-cli` use).

Two kinds of verbs:
- run by Home Assistant's own python (they import `homeassistant`):
      prepare CONFIG_DIR PORT     a fresh, minimal config that serves on 127.0.0.1:PORT only
      requirements                what the integrations we load need from PyPI
      constraints                 the path of Home Assistant's own version pins
- run by this project's python (standard library, and psutil for the socket check):
      --config DIR --state DIR up --port P [--pid PID] [--broker-port B] [--expect IDS]
                                  [--expect-timeout S] [--out FILE] [--timeout S]
      --config DIR --state DIR snapshot --port P [--out FILE] [--json]
      --config DIR --state DIR call --port P DOMAIN SERVICE JSON

`up` exits 3 when expected entities did not show up, and 5 when Home Assistant has a socket open
outside 127.0.0.1 (real_ha.sh then stops it).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

# The throwaway owner account of a Home Assistant that only ever listens on 127.0.0.1.
OWNER = {"name": "frame-daemon tests", "username": "frame", "password": "frame-daemon-tests",
         "language": "en"}
# Integrations that real_ha.sh's Home Assistant loads: the bootstrap's own, the API we use, MQTT
# and every entity platform MQTT discovery can create.
LOADED = {"http", "api", "auth", "config", "onboarding", "websocket_api", "person", "mqtt", "image"}
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\S* (DEBUG|INFO|WARNING|ERROR|CRITICAL) "
                      r"\([^)]*\) \[([^\]]+)\] ?(.*)$")
CONFIGURATION_YAML = """\
# Written by scripts/real_ha.sh: the least that serves the API and MQTT (no default_config, so
# no recorder, zeroconf, cloud or anything else that reaches out).
homeassistant:
  name: frame-daemon tests
  latitude: 52.37
  longitude: 4.90
  elevation: 0
  unit_system: metric
  time_zone: UTC
  currency: EUR
  country: NL
  language: en
api:
config:
onboarding:
logger:
  default: warning
"""


# --- verbs run by Home Assistant's python ---------------------------------------------------------

def prepare(config_dir: Path, port: int) -> None:
    """A fresh config in `config_dir` whose HTTP server binds 127.0.0.1:port only."""
    storage = config_dir / ".storage"
    storage.mkdir(parents=True, exist_ok=True)
    yaml = CONFIGURATION_YAML
    try:
        from homeassistant.components.http import config as http_config
    except ImportError:  # before 2026: the http settings are YAML
        http_config = None
    if http_config is not None and hasattr(http_config, "HTTPConfigStore"):
        # Since 2026 the HTTP settings live in .storage/http. YAML is only migrated there as a
        # "pending" change that Home Assistant reverts (to 0.0.0.0:8123) unless confirmed, so the
        # store is written directly, with the settings in its confirmed slot.
        from homeassistant.util import dt as dt_util

        settings = dict(http_config.HTTP_STORAGE_SCHEMA({"server_host": ["127.0.0.1"],
                                                         "server_port": port}))
        settings = {k: (str(v) if k == "ssl_profile" else v) for k, v in settings.items()}
        settings |= {"created_at": dt_util.utcnow().isoformat(), "error": None, "error_message": None}
        write_store(storage, http_config.STORAGE_KEY, http_config.STORAGE_VERSION,
                    http_config.STORAGE_MINOR_VERSION,
                    {http_config.KEY_STABLE: settings, http_config.KEY_PENDING: None,
                     http_config.KEY_YAML_MIGRATION_DONE: True})
    else:
        yaml += f"http:\n  server_host: 127.0.0.1\n  server_port: {port}\n"
    (config_dir / "configuration.yaml").write_text(yaml)
    disable_system_entries(storage)


def write_store(storage: Path, key: str, version: int, minor: int, data: dict) -> None:
    path = storage / key
    path.write_text(json.dumps({"version": version, "minor_version": minor, "key": key, "data": data},
                               indent=2))
    path.chmod(0o600)


def disable_system_entries(storage: Path) -> None:
    """Home Assistant creates `analytics` and `marketplace` entries of its own at start; setting
    either up opens a web session whose resolver starts mDNS on every interface. A disabled entry
    of each, made beforehand, keeps them off (and every socket on 127.0.0.1)."""
    import homeassistant.components as components
    import homeassistant.config_entries as config_entries
    from homeassistant.util import dt as dt_util
    from homeassistant.util.ulid import ulid_now

    now = dt_util.utcnow().isoformat()
    entries = [{"created_at": now, "modified_at": now, "data": {}, "options": {}, "subentries": [],
                "disabled_by": "user", "discovery_keys": {}, "domain": domain, "entry_id": ulid_now(),
                "version": 1, "minor_version": 1, "pref_disable_new_entities": False,
                "pref_disable_polling": False, "source": "system", "title": domain, "unique_id": None}
               for domain in ("analytics", "marketplace")
               if (Path(components.__file__).parent / domain).is_dir()]
    write_store(storage, config_entries.STORAGE_KEY, config_entries.STORAGE_VERSION,
                config_entries.STORAGE_VERSION_MINOR, {"entries": entries})


def requirements() -> list[str]:
    """The PyPI requirements of every integration in LOADED and what they depend on."""
    import homeassistant.components as components
    from homeassistant import bootstrap
    from homeassistant.const import Platform

    todo = set(LOADED) | {str(p) for p in Platform}
    for name in ("CORE_INTEGRATIONS", "LOGGING_AND_HTTP_DEPS_INTEGRATIONS", "DEFAULT_INTEGRATIONS"):
        todo |= set(getattr(bootstrap, name, ()))
    seen: set[str] = set()
    found: set[str] = set()
    while todo:
        domain = todo.pop()
        seen.add(domain)
        manifest = Path(components.__file__).parent / domain / "manifest.json"
        if manifest.is_file():
            meta = json.loads(manifest.read_text())
            found.update(meta.get("requirements", []))
            todo |= set(meta.get("dependencies", [])) - seen
    return sorted(found)


def constraints() -> str:
    import homeassistant

    return str(Path(homeassistant.__file__).parent / "package_constraints.txt")


# --- verbs run by this project's python: the REST API -----------------------------------------------

class HomeAssistant:
    """Home Assistant's REST API on 127.0.0.1:port, as the owner account."""

    def __init__(self, port: int, state: Path) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.client_id = self.base + "/"
        self.tokens = state / "token.json"
        self.token = ""

    def request(self, method: str, path: str, body: dict | None = None, *, form: bool = False,
                auth: bool = True, ok: tuple[int, ...] = (200, 201)) -> tuple[int, object]:
        data = headers = None
        headers = {"Authorization": f"Bearer {self.token}"} if auth and self.token else {}
        if body is not None and form:
            data = urllib.parse.urlencode(body).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw.decode(errors="replace")
        if ok and status not in ok:
            raise RuntimeError(f"{method} {path}: HTTP {status}: {str(payload)[:500]}")
        return status, payload

    def wait_http(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.request("GET", "/api/onboarding", auth=False, ok=())[0] == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"Home Assistant did not answer on {self.base} within {timeout:.0f} s")
            time.sleep(0.25)

    def login(self) -> None:
        """An access token: refreshed from the stored one, else by creating the owner account
        (onboarding), else by logging in as the owner."""
        if self.tokens.exists():
            stored = json.loads(self.tokens.read_text())
            status, got = self.request("POST", "/auth/token", form=True, auth=False, ok=(), body={
                "grant_type": "refresh_token", "refresh_token": stored["refresh_token"],
                "client_id": self.client_id})
            if status == 200:
                self.token = got["access_token"]
                return
        _, steps = self.request("GET", "/api/onboarding", auth=False)
        if not next((s["done"] for s in steps if s["step"] == "user"), True):
            # Only the account step: finishing onboarding makes Home Assistant offer integrations
            # that reach the internet.
            _, made = self.request("POST", "/api/onboarding/users", auth=False,
                                   body={**OWNER, "client_id": self.client_id})
            code = made["auth_code"]
        else:
            _, flow = self.request("POST", "/auth/login_flow", auth=False, body={
                "client_id": self.client_id, "handler": ["homeassistant", None],
                "redirect_uri": self.client_id})
            _, done = self.request("POST", f"/auth/login_flow/{flow['flow_id']}", auth=False, body={
                "client_id": self.client_id, "username": OWNER["username"],
                "password": OWNER["password"]})
            if done.get("type") != "create_entry":
                raise SystemExit(f"cannot log in to Home Assistant: {done}")
            code = done["result"]
        _, got = self.request("POST", "/auth/token", form=True, auth=False, body={
            "grant_type": "authorization_code", "code": code, "client_id": self.client_id})
        self.token = got["access_token"]
        self.tokens.write_text(json.dumps({"refresh_token": got["refresh_token"]}))
        self.tokens.chmod(0o600)

    def wait_running(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            _, config = self.request("GET", "/api/config")
            if config.get("state") == "RUNNING":
                return config
            if time.monotonic() > deadline:
                raise SystemExit(f"Home Assistant is still {config.get('state')} after {timeout:.0f} s")
            time.sleep(0.5)

    def states(self) -> dict[str, dict]:
        return {s["entity_id"]: s for s in self.request("GET", "/api/states")[1]}

    def template(self, text: str) -> str:
        return self.request("POST", "/api/template", {"template": text})[1]

    def add_mqtt(self, broker_port: int, timeout: float) -> None:
        """The MQTT integration for the broker on 127.0.0.1:broker_port, through its config flow
        (as a person adds it in the UI), loaded."""
        _, step = self.request("POST", "/api/config/config_entries/flow",
                               {"handler": "mqtt", "show_advanced_options": True})
        for _ in range(5):
            if step.get("type") == "menu":  # a supervised install asks: add-on or broker?
                answer = {"next_step_id": "broker"}
            elif step.get("type") == "form":
                answer = fill_form(step.get("data_schema", []),
                                   {"broker": "127.0.0.1", "port": broker_port})
            else:
                break
            _, step = self.request("POST", f"/api/config/config_entries/flow/{step['flow_id']}", answer)
        if step.get("type") != "create_entry":
            raise SystemExit(f"the MQTT config flow ended with {json.dumps(step)[:600]}")
        deadline = time.monotonic() + timeout
        while True:
            _, entries = self.request("GET", "/api/config/config_entries/entry?domain=mqtt")
            if entries and entries[0].get("state") == "loaded":
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"the MQTT integration did not load: {entries}")
            time.sleep(0.25)

    def snapshot(self, log: Path) -> dict:
        """Every MQTT entity (state, attributes, device; an image entity's picture fetched), the
        devices, and the MQTT integration's warnings and errors in Home Assistant's log."""
        rows = self.template(
            "{% for e in integration_entities('mqtt') %}{% set d = device_id(e) %}"
            "{{ [e, d, device_attr(d, 'name'), device_attr(d, 'manufacturer'), device_attr(d, 'model'),"
            " device_attr(d, 'sw_version')] | tojson }}\n{% endfor %}")
        states = self.states()
        entities, devices = [], {}
        # One JSON row per entity (Home Assistant strips the last newline of a rendered template).
        for row in filter(None, rows.splitlines()):
            entity_id, device, name, maker, model, version = json.loads(row)
            state = states.get(entity_id)
            entity = {"entity_id": entity_id, "domain": entity_id.split(".")[0],
                      "state": state["state"] if state else None,
                      "attributes": state["attributes"] if state else None, "device_name": name}
            picture = (state or {}).get("attributes", {}).get("entity_picture")
            if picture and entity_id.startswith("image."):
                entity["entity_picture_fetch"] = self.fetch(picture)
            entities.append(entity)
            if device:
                devices.setdefault(device, {"id": device, "name": name, "manufacturer": maker,
                                            "model": model, "sw_version": version, "entities": []})
                devices[device]["entities"].append(entity_id)
        _, config = self.request("GET", "/api/config")
        warnings = log_warnings(log)
        return {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "ha_version": config.get("version"), "devices": list(devices.values()),
                "entities": entities,
                "mqtt_log": [w for w in warnings if w["logger"].startswith("homeassistant.components.mqtt")],
                "other_warnings": [w for w in warnings
                                   if not w["logger"].startswith("homeassistant.components.mqtt")]}

    def fetch(self, path: str) -> dict:
        req = urllib.request.Request(self.base + path, headers={"Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status, kind, blob = resp.status, resp.headers.get("Content-Type"), resp.read()
        except urllib.error.HTTPError as exc:
            status, kind, blob = exc.code, exc.headers.get("Content-Type"), b""
        return {"status": status, "content_type": kind, "bytes": len(blob),
                "is_jpeg": blob[:3] == b"\xff\xd8\xff"}


def fill_form(schema: list[dict], given: dict) -> dict:
    """Answer a config-flow form: the given values, else each field's default (sections too)."""
    answer = {}
    for field in schema:
        name = field["name"]
        if field.get("type") == "expandable":
            answer[name] = fill_form(field.get("schema", []), given.get(name, {}))
        elif name in given:
            answer[name] = given[name]
        elif "default" in field:
            answer[name] = field["default"]
        elif field.get("required"):  # e.g. MQTT's "use a client certificate": no, say the defaults
            selector = field.get("selector", {})
            if "boolean" in selector or field.get("type") == "boolean":
                answer[name] = False
            elif options := selector.get("select", {}).get("options"):
                answer[name] = options[0]["value"] if isinstance(options[0], dict) else options[0]
    return answer


def log_warnings(log: Path) -> list[dict]:
    """WARNING and worse from Home Assistant's log, with their continuation lines."""
    found: list[dict] = []
    current = None
    for line in log.read_text(errors="replace").splitlines() if log.exists() else []:
        match = LOG_LINE.match(line)
        if match:
            current = None
            if match.group(1) in ("WARNING", "ERROR", "CRITICAL"):
                current = {"level": match.group(1), "logger": match.group(2), "message": match.group(3)}
                found.append(current)
        elif current is not None:
            current["message"] += "\n" + line
    return found


def outside_loopback(pid: int) -> list[str]:
    """The sockets Home Assistant listens on (or can receive on) outside 127.0.0.1."""
    import ipaddress

    import psutil

    bad = []
    for conn in psutil.Process(pid).net_connections(kind="inet"):
        if conn.raddr or (conn.status not in (psutil.CONN_LISTEN, psutil.CONN_NONE)):
            continue  # connected: to the broker, or a client of ours
        address = ipaddress.ip_address(conn.laddr.ip)
        mapped = getattr(address, "ipv4_mapped", None)
        if not (address.is_loopback or (mapped and mapped.is_loopback)):
            bad.append(f"{conn.laddr.ip}:{conn.laddr.port}")
    return bad


def up(args: argparse.Namespace, ha: HomeAssistant) -> int:
    ha.wait_http(args.timeout)
    ha.login()
    config = ha.wait_running(args.timeout)
    print(f"real_ha: Home Assistant {config.get('version')} is running on {ha.base}", file=sys.stderr)
    if args.pid and (bad := outside_loopback(args.pid)):
        print(f"real_ha: Home Assistant listens outside 127.0.0.1: {bad}", file=sys.stderr)
        return 5
    if args.broker_port:
        ha.add_mqtt(args.broker_port, args.timeout)
    missing: list[str] = []
    if args.expect:
        wanted = [e for e in args.expect.split(",") if e]
        deadline = time.monotonic() + args.expect_timeout
        while True:
            states = ha.states()
            missing = [e for e in wanted if e not in states or states[e]["state"] == "unavailable"
                       or states[e]["attributes"].get("restored")]
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    if args.out:
        write_snapshot(ha, args, Path(args.out))
    if missing:
        print(f"real_ha: missing or unavailable after {args.expect_timeout:.0f} s: {missing}",
              file=sys.stderr)
        return 3
    return 0


def write_snapshot(ha: HomeAssistant, args: argparse.Namespace, out: Path | None) -> dict:
    snap = ha.snapshot(Path(args.config) / "home-assistant.log")
    if out:
        out.write_text(json.dumps(snap, indent=2))
    return snap


def call(args: argparse.Namespace, ha: HomeAssistant) -> int:
    data = json.loads(args.data)
    ids = data.get("entity_id", [])
    unknown = sorted(set([ids] if isinstance(ids, str) else ids) - set(ha.states()))
    if unknown:  # Home Assistant answers 200 for an entity it does not have: say so instead
        print(f"real_ha: no such entity: {unknown}", file=sys.stderr)
        return 2
    _, changed = ha.request("POST", f"/api/services/{args.domain}/{args.service}", data)
    print(json.dumps({"changed_states": changed}, indent=2))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", help="Home Assistant's config folder, as seen from here")
    ap.add_argument("--state", help="where the login token is kept")
    verbs = ap.add_subparsers(dest="verb", required=True)
    prep = verbs.add_parser("prepare")
    prep.add_argument("config_dir", type=Path)
    prep.add_argument("port", type=int)
    verbs.add_parser("requirements")
    verbs.add_parser("constraints")
    for name in ("up", "snapshot", "call"):
        verb = verbs.add_parser(name)
        verb.add_argument("--port", type=int, required=True)
    verbs.choices["up"].add_argument("--pid", type=int)
    verbs.choices["up"].add_argument("--broker-port", type=int)
    verbs.choices["up"].add_argument("--expect", default="")
    verbs.choices["up"].add_argument("--expect-timeout", type=float, default=60)
    verbs.choices["up"].add_argument("--timeout", type=float, default=300)
    verbs.choices["up"].add_argument("--out")
    verbs.choices["snapshot"].add_argument("--out")
    verbs.choices["snapshot"].add_argument("--json", action="store_true")
    for name in ("domain", "service", "data"):
        verbs.choices["call"].add_argument(name)
    args = ap.parse_args()
    if args.verb == "prepare":
        prepare(args.config_dir, args.port)
        return 0
    if args.verb in ("requirements", "constraints"):
        print("\n".join(requirements()) if args.verb == "requirements" else constraints())
        return 0
    if not (args.config and args.state):
        ap.error(f"{args.verb} needs --config and --state")
    ha = HomeAssistant(args.port, Path(args.state))
    if args.verb == "up":
        return up(args, ha)
    ha.login()
    if args.verb == "call":
        return call(args, ha)
    snap = write_snapshot(ha, args, Path(args.out) if args.out else None)
    if args.json:
        print(json.dumps(snap, indent=2))
    else:
        for e in snap["entities"]:
            print(f"{e['entity_id']:<45} {e['state']!s:<16} {e['device_name']}")
        for w in snap["mqtt_log"]:
            print(f"{w['level']} [{w['logger']}] {w['message'][:300]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
