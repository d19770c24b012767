"""The API reference as one HTML page rendered from the OpenAPI document, on the server.

No JavaScript and nothing fetched from elsewhere, so it works on a host without internet
access: each operation with its parameters, body and answers, and every schema they
refer to, printed as JSON Schema.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from html import escape
from typing import Any

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 70rem; margin: 2rem auto; padding: 0 1rem; }
section { border-top: 1px solid #ccc; padding: 0.5rem 0; }
code, pre { background: #f4f4f4; } pre { padding: 0.5rem; overflow-x: auto; }
.method { font-weight: bold; text-transform: uppercase; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 0.2rem 0.5rem; }
"""


def render(document: Mapping[str, Any]) -> str:
    """The whole page for ``document``."""
    info = document["info"]
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(info['title'])} API {escape(info['version'])}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{escape(info['title'])} API <small>{escape(info['version'])}</small></h1>",
        f"<p>{_text(info['description'])}</p>",
        '<p>The machine-readable document: <a href="/openapi.json">/openapi.json</a> '
        "(OpenAPI 3.1).</p>",
        "<h2>Operations</h2>",
    ]
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            parts.append(_operation(method, path, operation))
    parts.append("<h2>Schemas</h2>")
    for name, schema in document["components"]["schemas"].items():
        parts.append(f'<section id="schema-{escape(name)}"><h3>{escape(name)}</h3>')
        parts.append(f"<pre>{escape(json.dumps(schema, indent=2))}</pre></section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _operation(method: str, path: str, operation: Mapping[str, Any]) -> str:
    parts = [
        f'<section id="{escape(operation["operationId"])}">',
        f'<h3><span class="method">{escape(method)}</span> <code>{escape(path)}</code></h3>',
        f"<p><strong>{escape(operation['summary'])}</strong></p>",
        f"<p>{_text(operation['description'])}</p>",
    ]
    parameters = operation.get("parameters", [])
    if parameters:
        parts.append("<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>required</th>")
        parts.append("<th>schema</th><th>meaning</th></tr>")
        for parameter in parameters:
            required = "yes" if parameter["required"] else "no"
            parts.append(
                f"<tr><td><code>{escape(parameter['name'])}</code></td>"
                f"<td>{escape(parameter['in'])}</td><td>{required}</td>"
                f"<td><code>{escape(json.dumps(parameter['schema']))}</code></td>"
                f"<td>{_text(parameter['description'])}</td></tr>"
            )
        parts.append("</table>")
    body = operation.get("requestBody")
    if body is not None:
        parts.append(f"<h4>Body</h4><p>{_text(body['description'])}</p>")
        parts.append(_content(body["content"]))
    parts.append("<h4>Answers</h4><table><tr><th>status</th><th>meaning</th><th>body</th></tr>")
    for status, answer in operation["responses"].items():
        parts.append(
            f"<tr><td>{escape(status)}</td><td>{_text(answer['description'])}</td>"
            f"<td>{_content(answer.get('content', {}))}</td></tr>"
        )
    parts.append("</table></section>")
    return "\n".join(parts)


def _content(content: Mapping[str, Any]) -> str:
    shown = []
    for media_type, described in content.items():
        schema = described.get("schema", {})
        shown.append(f"<code>{escape(media_type)}</code>: {_schema(schema)}")
    return "<br>".join(shown)


def _schema(schema: Mapping[str, Any]) -> str:
    """A link to a referenced component (an error envelope with its codes), else the schema."""
    ref = schema.get("$ref")
    if ref is not None:
        return _link(ref)
    parts = schema.get("allOf")
    if parts and "$ref" in parts[0]:
        codes = _error_codes(parts[1:])
        shown = ", ".join(f"<code>{escape(str(code))}</code>" for code in codes)
        return _link(parts[0]["$ref"]) + (f" with code {shown}" if codes else "")
    return f"<code>{escape(json.dumps(schema))}</code>"


def _error_codes(parts: list[Mapping[str, Any]]) -> list[Any]:
    for part in parts:
        code = part.get("properties", {}).get("error", {}).get("properties", {}).get("code", {})
        if "enum" in code:
            return list(code["enum"])
    return []


def _link(ref: str) -> str:
    name = ref.rsplit("/", 1)[-1]
    return f'<a href="#schema-{escape(name)}">{escape(name)}</a>'


def _text(text: str) -> str:
    """Plain text with its paragraphs kept."""
    return "</p><p>".join(escape(paragraph) for paragraph in text.split("\n\n"))
