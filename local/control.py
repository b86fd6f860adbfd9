"""The /_local control API that tests and demos drive: health, drain, the virtual clock and
its advance, reset, fault injection, and read-only views of people, decisions, fires and
the outbox.

The views read the table through the package's read side (``bootstrap.person_views``),
the same code ``nudge explain`` runs: local/ knows the template, not the package's
insides.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from nudge.bootstrap import InvalidRequest, person_views, report_page, reporting
from werkzeug.wrappers import Request, Response

from local.faults import FAULT_KINDS
from local.responses import json_response
from local.stack import LocalStack

__all__ = ["PREFIX", "ControlApi", "delivery_state"]

PREFIX = "/_local/"
MAX_ADVANCE_SECONDS = 400 * 86_400  # far past any retention or schedule the template uses


class ControlApi:
    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        table = next(iter(stack.template.tables))
        # The stack's own client: its requests are marked as the pump's, so reading a view
        # never wakes an idle pump.
        name, triggers = stack.template.names.physical(table), stack.config.triggers_dir
        self.views = person_views(stack.dynamodb, name, triggers_dir=triggers)
        self.reports = reporting(stack.dynamodb, name, triggers_dir=triggers)
        self.routes: dict[tuple[str, str], Callable[[Request], Response]] = {
            ("GET", "/_local/health"): self._health,
            ("POST", "/_local/drain"): self._drain,
            ("GET", "/_local/clock"): self._clock,
            ("POST", "/_local/clock/advance"): self._advance,
            ("GET", "/_local/outbox"): self._outbox,
            ("POST", "/_local/reset"): self._reset,
            ("POST", "/_local/faults"): self._set_faults,
            ("GET", "/_local/faults"): self._pending_faults,
            ("GET", "/_local/fires"): self._fires,
            ("GET", "/_local/report"): self._report,
            ("GET", "/_local/meter"): self._meter,
        }
        # GET <prefix><rest>: the handler gets the rest of the path.
        self.prefixed: dict[str, Callable[[str], Response]] = {
            "/_local/users/": self._user,
            "/_local/explain/": self._explain,
            "/_local/outbox/": self._outbox_page,
        }

    def answer(self, request: Request) -> Response | None:
        """The answer to a /_local/ request (404 for one it does not know); None otherwise."""
        path, method = request.path, request.method
        if not path.startswith(PREFIX):
            return None
        if (method, path) in self.routes:
            return self.routes[(method, path)](request)
        for prefix, handler in self.prefixed.items():
            if method == "GET" and path.startswith(prefix):
                return handler(path.removeprefix(prefix))
        return json_response(404, {"message": f"no control route {method} {path}"})

    # ---- the stack: health, drain, clock, reset --------------------------------------

    def _health(self, _: Request) -> Response:
        return json_response(
            200,
            {
                "status": "ok",
                "now": self.stack.clock.now().isoformat(),
                "functions": sorted(self.stack.functions),
                "awsEndpoint": self.stack.endpoint,
                "websocketUrl": self.stack.websocket_url,
            },
        )

    def _drain(self, _: Request) -> Response:
        work = self.stack.drain()
        return json_response(
            200, {"drained": True, "processed": work, "now": self.stack.clock.now().isoformat()}
        )

    def _clock(self, _: Request) -> Response:
        clock = self.stack.clock
        return json_response(
            200, {"now": clock.now().isoformat(), "offsetSeconds": clock.offset_seconds}
        )

    def _advance(self, request: Request) -> Response:
        body = _json_body(request)
        if not isinstance(body, dict):
            return _invalid("body", "body must be a JSON object")
        seconds = body.get("seconds")
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not math.isfinite(seconds)
            or not 0 <= seconds <= MAX_ADVANCE_SECONDS
        ):
            limit = f"{MAX_ADVANCE_SECONDS} (400 days)"
            return _invalid("seconds", f"seconds: a number from 0 to {limit} is required")
        advanced = self.stack.advance(float(seconds))
        body = {
            "now": advanced.now.isoformat(),
            "offsetSeconds": self.stack.clock.offset_seconds,
            "target": advanced.target.isoformat(),
            "complete": advanced.complete,
            "moments": advanced.moments,
        }
        if not advanced.complete:
            body["message"] = (
                f"stopped at {body['now']} after {self.stack.config.advance_budget:g} s of work,"
                f" short of {body['target']}: every moment up to it is done; advance again to go on"
            )
        return json_response(200, body)

    def _reset(self, _: Request) -> Response:
        self.stack.reset()
        return json_response(200, {"reset": True})

    # ---- faults: one entry per service in the stack's faults mapping ------------------

    def _set_faults(self, request: Request) -> Response:
        """{"ses": {"throttle": N, "serverError": N, "acceptThenCrash": N},
        "sqs": {"duplicate": N}, "dynamodb": {"throttle": N}}: each count given replaces that
        fault's pending count; a service given {} has all of its counts cleared."""
        parsed = _fault_counts(_json_body(request))
        if isinstance(parsed, Response):
            return parsed
        for (service, kind), count in parsed.items():
            self.stack.faults[service].set(kind, count)
        return self._pending_faults(request)

    def _pending_faults(self, _: Request) -> Response:
        """The faults still to be injected, every kind of each service."""
        pending = {service: faults.pending() for service, faults in self.stack.faults.items()}
        return json_response(200, pending)

    # ---- views of the table, through the package's read side ----------------------------

    def _user(self, user_id: str) -> Response:
        view = self.views.person(user_id)
        if view.profile is None and not view.events:
            return json_response(
                404,
                {
                    "code": "not_found",
                    "message": f"no events or profile for {user_id!r}",
                    "field": "userId",
                },
            )
        return json_response(
            200,
            {
                "userId": user_id,
                "profile": view.profile.to_json() if view.profile else None,
                "linkedProfiles": [profile.to_json() for profile in view.linked_profiles],
                "events": view.events,
            },
        )

    def _explain(self, user_id: str) -> Response:
        decisions = self.views.explain(user_id, self.stack.clock.now())
        journeys = self.views.journeys(user_id)
        body = {"userId": user_id, "decisions": decisions, "journeys": journeys}
        scores = self.views.scores(user_id)
        return json_response(200, {**body, "scores": scores} if scores else body)

    def _fires(self, request: Request) -> Response:
        user_id = request.args.get("userId")
        if user_id:
            return json_response(200, self.views.fires(user_id))
        return json_response(200, self.views.all_fires())

    def _meter(self, _: Request) -> Response:
        """What the traffic since the start (or the last reset) would cost on AWS, counted:
        requests by caller, service and call, DynamoDB's billed units, Lambda invocations and
        their billed time, API Gateway requests, Scheduler runs (local/meter.py)."""
        return json_response(200, self.stack.meter.snapshot())

    def _report(self, request: Request) -> Response:
        """Experiment reports as one HTML page (``?trigger=`` for one, ``?format=json``
        for the reports API's JSON), as of the virtual clock's day."""
        today = self.stack.clock.now().date()
        trigger, version = request.args.get("trigger"), request.args.get("version")
        try:
            reports = (
                [self.reports.trigger(trigger, today, version)]
                if trigger
                else self.reports.triggers(today)
            )
        except InvalidRequest as error:
            status = 404 if error.field == "id" else 400
            return json_response(
                status,
                {
                    "code": "not_found" if status == 404 else "invalid_request",
                    "message": error.message,
                    "field": error.field,
                },
            )
        if request.args.get("format") == "json":
            return json_response(200, reports[0] if trigger else {"triggers": reports})
        return Response(report_page(reports), content_type="text/html; charset=utf-8")

    # ---- the outbox: what was delivered, and what is still on its way -----------------

    def _outbox(self, _: Request) -> Response:
        """Every email SES accepted, then every fire not (yet) delivered, with its state."""
        return json_response(200, [*self.stack.outbox(), *self._undelivered()])

    def _undelivered(self) -> list[dict[str, Any]]:
        """Every fire but the emails marked sent (those are in SES's list already)."""
        waiting = []
        for fire in self.views.all_fires():
            mark = self.views.delivery_mark(fire)
            if fire.get("channel") == "email" and mark.startswith("sent@"):
                continue
            waiting.append(
                {
                    "channel": fire.get("channel"),
                    "trigger": fire.get("trigger"),
                    "to": fire.get("userId") or fire.get("person"),
                    "time": fire.get("firedAt"),
                    "delivered": mark.startswith("sent@"),
                    "state": delivery_state(fire, mark),
                    "fire": fire,
                }
            )
        return waiting

    def _outbox_page(self, number: str) -> Response:
        """The n-th email as the recipient would see it (HTML part), 0-based."""
        emails = self.stack.outbox()
        if not number.isdigit() or int(number) >= len(emails):
            return json_response(
                404, {"code": "not_found", "message": f"no email {number!r}", "field": "n"}
            )
        html = emails[int(number)].get("html") or "<pre>(no HTML part)</pre>"
        return Response(html, content_type="text/html; charset=utf-8")


def _fault_counts(body: Any) -> dict[tuple[str, str], int] | Response:
    """The (service, kind) -> count pairs a faults request asks for, or a 400 naming the field."""
    if not isinstance(body, dict) or not body:
        return _invalid("body", 'name a fault: {"ses": {"throttle": N}}, {"sqs": {...}}, ...')
    counts: dict[tuple[str, str], int] = {}
    for service, kinds in body.items():
        if service not in FAULT_KINDS:
            return _invalid(service, f"{service}: not a service with faults ({_services()})")
        if not isinstance(kinds, dict):
            return _invalid(service, f"{service}: an object of fault counts is required")
        if not kinds:  # {} asks for nothing pending: the way to clear one service's faults
            counts.update({(service, kind): 0 for kind in FAULT_KINDS[service]})
        for kind, count in kinds.items():
            field = f"{service}.{kind}"
            if kind not in FAULT_KINDS[service]:
                known = ", ".join(FAULT_KINDS[service])
                return _invalid(field, f"{field}: not a fault of {service} ({known})")
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                return _invalid(field, f"{field}: a count >= 0 is required")
            counts[(service, kind)] = count
    return counts


def _services() -> str:
    return ", ".join(FAULT_KINDS)


def _invalid(field: str, message: str) -> Response:
    return json_response(400, {"code": "invalid_request", "message": message, "field": field})


def _json_body(request: Request) -> Any:
    """The body's JSON (an empty body is ``{}``), or None when it is not JSON at all: not
    UTF-8, malformed, or nested past the parser's depth."""
    try:
        return json.loads(request.get_data() or b"{}")
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None


def delivery_state(fire: dict[str, Any], mark: str) -> str:
    """The contact record's mark for the fire; a holdout's fire is never queued at all."""
    if fire.get("variant") == "holdout":  # the fire message's wire form (domain/messages.py)
        return "held_out"
    return mark.split("@", 1)[0] or "queued"
