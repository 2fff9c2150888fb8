"""Scrub what a run wrote to disk: every registered secret out of every file, zip archives (Playwright traces) included.

Reports are redacted where they are made (`redact`); this is the last line: after a run, and on each
Playwright trace before it is attached, the files themselves are searched for every secret value this
process knows and rewritten without them. Inside a Playwright trace, the value of every password input of
every DOM snapshot is blanked too, whatever the order of its attributes, and Authorization headers and secret fields of recorded requests are
replaced, whatever their value.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any

from polycheck.core.redact import REDACTED, redact_bytes, redact_fields, redact_secrets

# A DOM snapshot's node is [name, {attributes}, ...children]; Playwright writes an input's value first,
# ["INPUT",{"__playwright_value_":"…","type":"password",…}], and the page's own attributes in the page's order.
VALUE_ATTRIBUTE = "__playwright_value_"
PASSWORD_VALUES = (VALUE_ATTRIBUTE, "value")  # what a password input's node may hold of what was typed (or preset)
# the same by shape, for a line that is not JSON: an attribute object naming type password, in any order
_ATTRIBUTES = re.compile(r'\{[^{}]*\}')
_TYPE_PASSWORD = re.compile(r'"type"\s*:\s*"password"', re.IGNORECASE)
_VALUE = re.compile(r'("(?:__playwright_value_|value)"\s*:\s*")((?:[^"\\]|\\.)*)(")')
# a recorded request header: {"name":"Authorization","value":"…"}
SECRET_HEADER_VALUE = re.compile(
    r'(\{\s*"name"\s*:\s*"(?:authorization|proxy-authorization|cookie|set-cookie|x-api-key|x-auth-token)"\s*,\s*"value"\s*:\s*")'
    r'((?:[^"\\]|\\.)*)(")', re.IGNORECASE)


def scrub_trace_text(text: str) -> str:
    """A Playwright trace member (JSON lines) without password input values, secret headers or known secrets."""
    if VALUE_ATTRIBUTE in text:
        text = "\n".join(_blank_password_line(line) for line in text.split("\n"))
    text = SECRET_HEADER_VALUE.sub(lambda m: f"{m.group(1)}{REDACTED}{m.group(3)}", text)
    return redact_fields(redact_secrets(text))


def _blank_password_line(line: str) -> str:
    """One JSON line of a trace with the value of every password input of its DOM snapshots blanked."""
    if VALUE_ATTRIBUTE not in line or not _TYPE_PASSWORD.search(line):
        return line
    try:
        event = json.loads(line)
    except ValueError:  # not JSON: by shape, each attribute object that names type password
        return _ATTRIBUTES.sub(lambda m: _VALUE.sub(r"\1\3", m.group(0)) if _TYPE_PASSWORD.search(m.group(0)) else m.group(0), line)
    if not _blank_password_inputs(event):
        return line
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


def _blank_password_inputs(node: Any) -> bool:
    """Blank, in place, the values of every `["INPUT", {"type": "password", …}, …]` node under `node`; True if any was."""
    changed = False
    if isinstance(node, list):
        if (len(node) >= 2 and isinstance(node[0], str) and node[0].upper() == "INPUT" and isinstance(node[1], dict)
                and str(node[1].get("type", "")).lower() == "password"):
            for key in PASSWORD_VALUES:
                if node[1].get(key):
                    node[1][key] = ""
                    changed = True
        for child in node:
            changed = _blank_password_inputs(child) or changed
    elif isinstance(node, dict):
        for child in node.values():
            changed = _blank_password_inputs(child) or changed
    return changed


def scrub_zip_bytes(data: bytes) -> bytes:
    """A zip archive with every member scrubbed (text members also by shape); members keep their names."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            member = source.read(info)
            if member[:4] == b"PK\x03\x04":
                member = scrub_zip_bytes(member)
            else:
                try:
                    member = scrub_trace_text(member.decode("utf-8")).encode("utf-8")
                except UnicodeDecodeError:
                    member = redact_bytes(member)
            target.writestr(info, member)
    return out.getvalue()


def scrub_file(path: Path) -> bool:
    """Rewrite `path` without any registered secret (a zip: member by member). True when it changed."""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    if data[:4] == b"PK\x03\x04":
        try:
            scrubbed = scrub_zip_bytes(data)
        except zipfile.BadZipFile:
            scrubbed = redact_bytes(data)
        changed = scrubbed != data and _zip_changed(data, scrubbed)
    else:
        scrubbed = redact_bytes(data)
        changed = scrubbed != data
    if changed:
        temporary = path.with_name(f".{path.name}.scrub")
        temporary.write_bytes(scrubbed)
        os.replace(temporary, path)
    return changed


def _zip_changed(before: bytes, after: bytes) -> bool:
    """Re-zipping changes the bytes even when no member changed: compare the members."""
    with zipfile.ZipFile(io.BytesIO(before)) as a, zipfile.ZipFile(io.BytesIO(after)) as b:
        return any(a.read(info) != b.read(info.filename) for info in a.infolist())


def scrub_tree(root: Path) -> list[Path]:
    """Scrub every file under `root`; the files that carried a secret."""
    if not root.is_dir():
        return []
    return [path for path in sorted(root.rglob("*")) if path.is_file() and not path.is_symlink() and scrub_file(path)]
