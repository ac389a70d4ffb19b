# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turn source descriptions into Windows.

Sources (``type`` selects):

* ``ics``: ``path`` or ``url`` of an RFC 5545 calendar; ``kind``, ``scope``,
  ``timezone`` (for floating and all-day events), ``dtend`` (exact or wall_clock),
  ``timeout`` (seconds, URLs only), ``validate_certs``.
* ``yaml``: ``path`` of a file holding ``windows:`` (and optional ``timezone``,
  ``kind``, ``scope`` defaults), or a bare list of windows.
* ``windows``: the same windows inline, under ``windows``.
* ``servicenow``: ``schedule``, the name of a ServiceNow blackout or
  maintenance schedule read through the ITSM backend.
"""

from __future__ import annotations

import datetime
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence

import yaml

from .cache import ics_spans
from .model import CalendarError, Window
from .windows import build_window, normalize_kind, normalize_scope
from .zones import resolve_zone

SOURCE_KEYS = {
    "ics": ("type", "name", "path", "url", "kind", "scope", "timezone", "dtend", "timeout", "validate_certs"),
    "yaml": ("type", "name", "path", "kind", "scope", "timezone"),
    "windows": ("type", "name", "windows", "kind", "scope", "timezone"),
    "servicenow": ("type", "name", "schedule", "scope", "timezone", "dtend"),
}
DEFAULT_TIMEOUT = 10.0


class CalendarUnavailable(CalendarError):
    """A calendar could not be fetched (URL unreachable, ITSM down): callers fail closed."""


def load_windows(
    sources: Sequence[Mapping[str, Any]],
    default_tz: str = "UTC",
    base_dir: Optional[str] = None,
    itsm: Any = None,
    session: Any = None,
) -> List[Window]:
    """Read every source; raise CalendarError naming the first bad one and the fix."""
    resolve_zone(default_tz, "default time zone")
    if not isinstance(sources, (list, tuple)):
        raise CalendarError("calendar sources must be a list of mappings, each with a type")
    windows: List[Window] = []
    for index, source in enumerate(sources):
        windows.extend(_load_source(source, index, default_tz, base_dir, itsm, session))
    return windows


def _load_source(
    source: Any, index: int, default_tz: str, base_dir: Optional[str], itsm: Any, session: Any
) -> List[Window]:
    if not isinstance(source, Mapping):
        raise CalendarError("calendar source %d is not a mapping; give type and its options" % (index + 1))
    kind_of = source.get("type")
    if kind_of not in SOURCE_KEYS:
        raise CalendarError(
            "calendar source %d: type %r is not one of %s" % (index + 1, kind_of, ", ".join(SOURCE_KEYS))
        )
    label = _label(source, index)
    unknown = sorted(set(source) - set(SOURCE_KEYS[kind_of]))
    if unknown:
        raise CalendarError(
            "%s: unknown options %s; allowed: %s" % (label, ", ".join(unknown), ", ".join(SOURCE_KEYS[kind_of]))
        )
    zone_name = source.get("timezone") or default_tz
    zone = resolve_zone(zone_name, label)
    scope = normalize_scope(source.get("scope"), label)
    if kind_of == "ics":
        kind = normalize_kind(source.get("kind", "blackout"), label)
        data = _read_ics(source, label, base_dir, session)
        spans = ics_spans(data, label, zone, str(source.get("dtend", "exact")))
        return [Window(name=label, kind=kind, source=label, scope=scope, spans=spans)]
    if kind_of == "servicenow":
        return [_servicenow_window(source, label, zone, scope, itsm)]
    if kind_of == "yaml":
        document = _read_yaml(_path(source, label, base_dir), label)
    else:
        document = {"windows": source.get("windows")}
    return _yaml_windows(document, source, label, str(zone_name), scope)


def _label(source: Mapping[str, Any], index: int) -> str:
    for key in ("name", "path", "url", "schedule"):
        if source.get(key):
            return "calendar %s" % source[key]
    return "calendar source %d (%s)" % (index + 1, source.get("type"))


def _path(source: Mapping[str, Any], label: str, base_dir: Optional[str]) -> str:
    path = source.get("path")
    if not isinstance(path, str) or not path:
        raise CalendarError("%s: give path (a file) for this source type" % label)
    path = os.path.expanduser(path)
    if not os.path.isabs(path) and base_dir:
        path = os.path.join(base_dir, path)
    return path


def _read_ics(source: Mapping[str, Any], label: str, base_dir: Optional[str], session: Any) -> bytes:
    if bool(source.get("path")) == bool(source.get("url")):
        raise CalendarError("%s: give exactly one of path or url" % label)
    if source.get("path"):
        path = _path(source, label, base_dir)
        try:
            with open(path, "rb") as handle:
                return handle.read()
        except OSError as exc:
            raise CalendarError("%s: cannot read %s (%s); fix path" % (label, path, exc.strerror)) from None
    return _fetch(str(source["url"]), label, source, session)


def _fetch(url: str, label: str, source: Mapping[str, Any], session: Any) -> bytes:
    """GET a calendar with a timeout; any failure is CalendarUnavailable so callers can fail closed."""
    # Imported here, not at the top: requests (with urllib3 and ssl) takes tens of milliseconds to load and only
    # calendar URLs need it; file and ServiceNow sources never do.
    try:
        import requests  # noqa: PLC0415
    except ImportError:  # pragma: no cover - requests is in requirements.txt
        raise CalendarError("calendar URLs need the requests library on the controller; pip install requests") from None
    timeout = float(source.get("timeout") or DEFAULT_TIMEOUT)
    getter = session or requests
    try:
        response = getter.get(url, timeout=timeout, verify=bool(source.get("validate_certs", True)))
    except requests.RequestException as exc:
        raise CalendarUnavailable(
            "%s: calendar URL %s is unreachable (%s)" % (label, url, type(exc).__name__)
        ) from None
    if response.status_code != 200:
        raise CalendarUnavailable("%s: calendar URL %s answered HTTP %d" % (label, url, response.status_code))
    return bytes(response.content)


def _read_yaml(path: str, label: str) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except OSError as exc:
        raise CalendarError("%s: cannot read %s (%s); fix path" % (label, path, exc.strerror)) from None
    except yaml.YAMLError as exc:
        raise CalendarError("%s: %s is not valid YAML (%s)" % (label, path, str(exc).splitlines()[0])) from None


def _yaml_windows(
    document: Any, source: Mapping[str, Any], label: str, zone_name: str, scope: Dict[str, List[str]]
) -> List[Window]:
    if isinstance(document, list):
        document = {"windows": document}
    if not isinstance(document, Mapping) or not isinstance(document.get("windows"), list):
        raise CalendarError("%s: expected a list of windows (under 'windows:')" % label)
    zone_name = str(document.get("timezone") or zone_name)
    resolve_zone(zone_name, label)
    kind = normalize_kind(document.get("kind", source.get("kind", "blackout")), label)
    if "scope" in document:
        scope = normalize_scope(document["scope"], label)
    return [
        build_window(entry, index, label, zone_name, kind, scope) for index, entry in enumerate(document["windows"])
    ]


def _servicenow_window(
    source: Mapping[str, Any], label: str, zone: datetime.tzinfo, scope: Dict[str, List[str]], itsm: Any
) -> Window:
    name = source.get("schedule")
    if not isinstance(name, str) or not name:
        raise CalendarError("%s: give schedule, the name of a ServiceNow blackout or maintenance schedule" % label)
    if itsm is None:
        raise CalendarError("%s: ServiceNow schedules need an ITSM backend (set itsm options)" % label)
    try:
        schedule = itsm.change_schedule(name)
    except CalendarError:
        raise
    except Exception as exc:  # the ITSM client's errors: unreachable instance, HTTP failures
        raise CalendarUnavailable("%s: cannot read schedule %r from ITSM (%s)" % (label, name, exc)) from None
    if schedule is None:
        backend = getattr(itsm, "name", "?")
        hint = "; the local backend keeps no schedules, use ics or yaml sources" if backend == "local" else ""
        raise CalendarError(
            "%s: the %s ITSM backend has no blackout or maintenance schedule named %r%s" % (label, backend, name, hint)
        )
    # Imported here: only ServiceNow schedules need the converter, and every collection module is compiled
    # from source on import (Ansible's collection loader keeps no byte-code).
    from .servicenow import schedule_to_ics  # noqa: PLC0415

    spans = ics_spans(schedule_to_ics(schedule, label), label, zone, str(source.get("dtend", "exact")))
    return Window(name=name, kind=str(schedule["kind"]), source=label, scope=scope, spans=spans)
