"""`nudge preview`: a trigger's message rendered to files, with nothing sent.

The context is the one Send builds (``render_context``), from a fire shaped like the one
the engine hands to delivery: the triggering event, and for triggers with ``collect`` the
lists the engine's own ``collected()`` builds from the given events.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nudge.domain.messages import FireMessage
from nudge.domain.person import PersonId
from nudge.domain.profile import Profile
from nudge.domain.render import Renderer, RenderError, render_context
from nudge.domain.segment import parse_iso_timestamp
from nudge.domain.timefmt import iso
from nudge.domain.triggers.conditions import event_name
from nudge.domain.triggers.engine import collected
from nudge.domain.triggers.loader import load_triggers
from nudge.domain.triggers.model import EventMatch, Send, Trigger, in_app_fields

__all__ = ["PREVIEW_KEY", "PREVIEW_URL", "preview", "run_preview"]

# Links in a preview are real-looking but lead nowhere: a reserved host, a throwaway key.
PREVIEW_URL = "https://nudge.preview.invalid"
PREVIEW_KEY = b"nudge-preview-signing-key (not a secret, never deployed)"
_PREVIEW_WEBHOOK = "https://crm.preview.invalid/webhook"


class _InputError(Exception):
    """A profile or event file that cannot be used."""


def run_preview(
    trigger_id: str,
    profile_path: Path,
    event_path: Path | None,
    out: Path,
    triggers_dir: Path,
) -> int:
    """Renders to files and prints their paths; 1 for a render error, 2 for bad input."""
    loaded = load_triggers(triggers_dir)
    if loaded.problems:
        for problem in loaded.problems:
            sys.stderr.write(f"{problem}\n")
        return 1
    found = {trigger.id: trigger for trigger in loaded.triggers}
    if trigger_id not in found:
        known = ", ".join(sorted(found)) or "none"
        sys.stderr.write(f"no trigger {trigger_id!r} in {triggers_dir} (known: {known})\n")
        return 2
    try:
        profile = _profile(_read_json(profile_path))
        events = _events(_read_json(event_path)) if event_path else []
    except _InputError as error:
        sys.stderr.write(f"{error}\n")
        return 2
    templates = triggers_dir / "templates"
    try:
        written = preview(found[trigger_id], templates, profile, events, out)
    except RenderError as error:
        sys.stderr.write(f"{_where(templates, error)}\n")
        return 1
    sys.stdout.write(
        f"links use the placeholder base URL {PREVIEW_URL} and a preview signing key;"
        " they are not live and nothing was sent\n"
    )
    for path in written:
        sys.stdout.write(f"{path}\n")
    return 0


def preview(
    trigger: Trigger,
    templates: Path,
    profile: Profile,
    events: Sequence[Mapping[str, Any]],
    out: Path,
) -> list[Path]:
    """Renders the trigger's message for this person and these events; the files written.

    The triggering event is the first of ``events`` the trigger's ``when`` names (else the
    last one); the rest are the history ``collect`` draws on. The fire is as of the latest
    event, so sample events from long ago still fall inside ``collect.within``.
    """
    renderer = Renderer(templates)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for step, send in trigger.sends:
        fire = _fire(trigger, send, step, profile, events)
        # A journey's messages, one set of files per send step: cart.step1.html, ...
        prefix = trigger.id if step is None else f"{trigger.id}.step{step}"
        for file, text in _rendered(renderer, fire, profile, prefix).items():
            path = out / file
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def _rendered(
    renderer: Renderer, fire: FireMessage, profile: Profile, prefix: str
) -> dict[str, str]:
    """The files one message renders to, by name."""
    channel, name = fire.channel, fire.template
    address = _PREVIEW_WEBHOOK
    if channel == "email":
        email = profile.traits.get("email")
        address = email if isinstance(email, str) else "preview@example.invalid"
    context = render_context(fire, profile, address, PREVIEW_URL, PREVIEW_KEY)
    if channel == "email":
        content = renderer.email(name, context)
        return {
            f"{prefix}.subject.txt": content.subject + "\n",
            f"{prefix}.html": content.html,
            f"{prefix}.txt": content.text,
        }
    if channel == "in_app":
        return {f"{prefix}.in_app.html": renderer.in_app(name, context) + "\n"}
    document = renderer.webhook(name, context)
    return {f"{prefix}.json": json.dumps(document, indent=2, ensure_ascii=False) + "\n"}


def _fire(
    trigger: Trigger,
    send: Send,
    step: str | None,
    profile: Profile,
    events: Sequence[Mapping[str, Any]],
) -> FireMessage:
    """A fire as the engine records it (service/evaluate.py), for one preview person."""
    events = [_with_canonical_time(event) for event in events]
    wanted = trigger.when.event if isinstance(trigger.when, EventMatch) else None
    matching = [event for event in events if wanted and event_name(event) == wanted]
    entry = matching[0] if matching else (events[-1] if events else {})
    history = [event for event in events if event is not entry]
    times = [parse_iso_timestamp(event["timestamp"]) for event in events if "timestamp" in event]
    now = max(times, default=datetime.now(UTC))
    user_id = profile.user_id or entry.get("userId")
    anonymous_id = entry.get("anonymousId") or (
        profile.anonymous_ids[0] if profile.anonymous_ids else None
    )
    person = PersonId.user(str(user_id)) if user_id else _person(anonymous_id)
    return FireMessage(
        fire_id="preview",
        trigger=trigger.id,
        person=person,
        user_id=person.user_id,
        anonymous_id=anonymous_id,
        occurrence="preview" if step is None else f"preview/{step}",
        fired_at=iso(now),
        channel=send.channel,
        template=send.template,
        event=dict(entry),
        context=collected(trigger, entry, history, now),
        **in_app_fields(send, send.channel),
    )


def _person(anonymous_id: str | None) -> PersonId:
    return PersonId.anonymous(anonymous_id) if anonymous_id else PersonId.user("preview")


def _with_canonical_time(event: Mapping[str, Any]) -> dict[str, Any]:
    """The timestamp as stored events carry it (UTC, with an offset), as the engine expects."""
    copy = dict(event)
    moment = copy.get("timestamp") or copy.get("originalTimestamp")
    if moment is not None:
        try:
            copy["timestamp"] = iso(parse_iso_timestamp(moment))
        except ValueError:
            copy.pop("timestamp", None)
    return copy


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise _InputError(f"{path}: {error.strerror or error}") from None
    except json.JSONDecodeError as error:
        raise _InputError(f"{path}:{error.lineno}: not JSON: {error.msg}") from None


def _profile(document: Any) -> Profile:
    """{"userId", "traits"} and, optionally, aggregates as Profile.to_json() spells them."""
    if not isinstance(document, dict):
        raise _InputError('the profile must be a JSON object: {"userId": ..., "traits": {...}}')
    traits = document.get("traits") or {}
    if not isinstance(traits, dict):
        raise _InputError("the profile's traits must be a JSON object")
    user_id = document.get("userId")
    anonymous_ids = [str(anon) for anon in document.get("anonymousIds") or []]
    if document.get("anonymousId"):
        anonymous_ids.insert(0, str(document["anonymousId"]))
    first_anonymous = anonymous_ids[0] if anonymous_ids else None
    session = document.get("session")
    if not isinstance(session, dict):
        session = {}
    try:
        return Profile(
            person=PersonId.user(str(user_id)) if user_id else _person(first_anonymous),
            user_id=str(user_id) if user_id else None,
            anonymous_ids=tuple(dict.fromkeys(anonymous_ids)),
            traits=traits,
            first_seen=document.get("firstSeen"),
            last_seen=document.get("lastSeen"),
            session_pages=int(session.get("pages", 0)),
            session_events=int(session.get("events", 0)),
            last_session_pages=document.get("lastSessionPages"),
            sessions=int(document.get("sessions", 0)),
            events=int(document.get("events", 0)),
            pages=int(document.get("pages", 0)),
            event_counts=dict(document.get("eventCounts") or {}),
        )
    except (TypeError, ValueError) as error:
        raise _InputError(f"the profile's aggregates are not numbers: {error}") from None


def _events(document: Any) -> list[dict[str, Any]]:
    events = document if isinstance(document, list) else [document]
    if not all(isinstance(event, dict) for event in events):
        raise _InputError("the event file must hold a Segment message or a list of them")
    return list(events)


def _where(templates: Path, error: RenderError) -> str:
    """`file: reason`, with the template's path when the error names one."""
    if error.file is None:
        return error.reason
    reason = error.reason.removeprefix(f"{error.file}: ")
    return f"{templates / error.file}: {reason}"
