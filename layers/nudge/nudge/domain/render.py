"""Messages rendered from templates in a sandbox, whole or not at all.

Templates live in ``triggers/templates``: ``<name>.subject.j2``, ``<name>.html.j2`` and
``<name>.txt.j2`` for email, ``<name>.json.j2`` for a webhook body, ``<name>.in_app.html.j2``
for an in-app message (autoescaped, as email's HTML is). Rendering runs in
Jinja2's SandboxedEnvironment with StrictUndefined, so a missing variable or a reach for
Python internals (``{{ ''.__class__ }}``) is an error, never a half-rendered message.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, TemplateNotFound, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from nudge.domain.messages import FireMessage
from nudge.domain.profile import Profile

if TYPE_CHECKING:
    from nudge.domain.tokens import OpenClaims

__all__ = ["EmailContent", "RenderError", "Renderer", "render_context", "template_problems"]


class RenderError(Exception):
    """The message cannot be rendered; ``reason`` says why, for the DLQ and explain.

    ``file`` names the template file at fault when there is one (``abandoned_cart.html.j2``).
    """

    def __init__(self, reason: str, file: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.file = file


@dataclass(frozen=True)
class EmailContent:
    """A rendered email: subject, HTML and text."""

    subject: str
    html: str
    text: str


class Renderer:
    def __init__(self, templates: Path) -> None:
        self._templates = templates
        self._html = _environment(templates, autoescape=True)
        self._plain = _environment(templates, autoescape=False)

    def email(self, name: str, context: Mapping[str, Any]) -> EmailContent:
        subject = " ".join(self._render(self._plain, f"{name}.subject.j2", context).split())
        if not subject:
            raise RenderError(
                f"{name}.subject.j2 rendered an empty subject", file=f"{name}.subject.j2"
            )
        return EmailContent(
            subject=subject,
            html=self._render(self._html, f"{name}.html.j2", context),
            text=self._render(self._plain, f"{name}.txt.j2", context),
        )

    def webhook(self, name: str, context: Mapping[str, Any]) -> dict[str, Any]:
        body = self._render(self._plain, f"{name}.json.j2", context)
        try:
            document = json.loads(body)
        except json.JSONDecodeError as error:
            raise RenderError(
                f"{name}.json.j2 did not render JSON: {error.msg} at line {error.lineno}",
                file=f"{name}.json.j2",
            ) from None
        if not isinstance(document, dict):
            raise RenderError(f"{name}.json.j2 must render a JSON object", file=f"{name}.json.j2")
        return document

    def in_app(self, name: str, context: Mapping[str, Any]) -> str:
        """The HTML fragment the page shows (the SDK puts it in a shadow root)."""
        file = f"{name}.in_app.html.j2"
        html = self._render(self._html, file, context).strip()
        if not html:
            raise RenderError(f"{file} rendered nothing", file=file)
        return html

    def _render(
        self, environment: SandboxedEnvironment, file: str, context: Mapping[str, Any]
    ) -> str:
        try:
            return environment.get_template(file).render(**context)
        except TemplateNotFound:
            raise RenderError(f"no template {file} in {self._templates}", file=file) from None
        except SecurityError as error:
            raise RenderError(f"{file}: refused by the sandbox: {error}", file=file) from None
        except TemplateError as error:
            raise RenderError(f"{file}: {type(error).__name__}: {error}", file=file) from None
        except (TypeError, ValueError, ArithmeticError, LookupError) as error:
            # A filter given what it cannot take (undefined | tojson, say): the template's
            # fault, so the whole message is refused with the reason, as for any other.
            raise RenderError(f"{file}: {type(error).__name__}: {error}", file=file) from None


def render_context(
    fire: FireMessage,
    profile: Profile,
    address: str,
    public_url: str,
    key: bytes,
    sent_at: datetime | None = None,
) -> dict[str, Any]:
    """What a template sees: the fire's collected lists (``items``), ``traits``, ``profile``,
    ``event``, ``user_id``, ``trigger``, signed ``links`` and ``click(url)``.

    ``address`` is the one the message goes to (the unsubscribe link names it); the links
    point at ``public_url`` and are signed with ``key``; the open pixel carries ``sent_at``
    (so an open seconds later can be told for a mail proxy's prefetch). Send and ``nudge
    preview`` both build their context here, so a preview shows what would be sent.
    """
    # Only sending signs links: Evaluate and Reports import this module to check templates.
    from nudge.domain.tokens import OpenClaims, UnsubscribeClaims, sign_link

    stamp = str(int(sent_at.timestamp())) if sent_at is not None else ""
    opened = OpenClaims(fire.fire_id, fire.person, fire.trigger, sent_at=stamp)
    unsubscribe = UnsubscribeClaims(opened.fire_id, opened.person, opened.trigger, email=address)
    base = public_url.rstrip("/")
    return {
        **fire.context,
        "traits": profile.traits,
        "profile": profile.facts(),
        "event": fire.event,
        "user_id": fire.user_id or str(fire.person),
        "trigger": fire.trigger,
        "links": {
            "unsubscribe": f"{base}/u/{sign_link(unsubscribe, key)}",
            "open_pixel": f"{base}/o/{sign_link(opened, key)}",
        },
        # {{ click(item.url) }}: a signed link that records the click, then redirects.
        "click": _click(base, opened, key),
    }


def _click(base: str, opened: OpenClaims, key: bytes) -> Callable[[object], str]:
    from nudge.domain.tokens import ClickClaims, sign_link  # loaded: render_context calls this

    def click(url: object) -> str:
        if isinstance(url, str) and url.startswith(("https://", "http://")):
            clicked = ClickClaims(opened.fire_id, opened.person, opened.trigger, url=url)
            return f"{base}/c/{sign_link(clicked, key)}"
        return "#"

    return click


def _environment(templates: Path, *, autoescape: bool) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=FileSystemLoader(str(templates)),
        autoescape=autoescape,
        undefined=StrictUndefined,
        keep_trailing_newline=False,
    )


_PARTS = {"email": ["subject", "html", "txt"], "webhook": ["json"], "in_app": ["in_app.html"]}


def template_files(name: str, channel: str) -> list[str]:
    """The files a channel's template is made of: ``abandoned_cart.subject.j2`` ..."""
    return [f"{name}.{part}.j2" for part in _PARTS[channel]]


def template_problems(templates: Path, name: str, channel: str) -> list[str]:
    """What `nudge validate` can tell before anything is sent: missing parts, syntax
    errors, and attribute access the sandbox would refuse (names starting with _)."""
    parts = _PARTS[channel]
    problems = []
    environment = _environment(templates, autoescape=False)
    for part in parts:
        file = f"{name}.{part}.j2"
        path = templates / file
        if not path.is_file():
            problems.append(f"template {file} is missing")
            continue
        try:
            tree = environment.parse(path.read_text(encoding="utf-8"))
        except TemplateError as error:
            problems.append(f"{file}: {error}")
            continue
        for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
            if isinstance(node, nodes.Getattr):
                attribute: object = node.attr
            else:
                argument = getattr(node, "arg", None)
                attribute = argument.value if isinstance(argument, nodes.Const) else None
            if isinstance(attribute, str) and attribute.startswith("_"):
                problems.append(f"{file}:{node.lineno}: {attribute!r} is refused by the sandbox")
    return problems
