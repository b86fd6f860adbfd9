"""Experiment counts as the services make them, on the in-memory fakes: Evaluate assigns a
person once per goal window in their arm (the holdout too), converts them when they reach
the goal inside the window (under any identity they had), counts opens in the arm the fire
was sent in, and counts nothing twice when the stream redelivers a batch; Send counts a
delivered fire ``sent`` once, in its trigger, experiment and arm."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from nudge.domain.experiments.counts import NO_EXPERIMENT, CountedUnder, Measure, Tally, totals
from nudge.domain.intake import Event, StoredEvent
from nudge.domain.messages import FIRE_HEADER, FIRE_TAG, FireMessage
from nudge.domain.person import PersonId
from nudge.domain.policy import ContactState
from nudge.domain.triggers.engine import TriggerIndex
from nudge.domain.triggers.experiment import HOLDOUT, assign
from nudge.domain.triggers.loader import parse_trigger
from nudge.service.evaluate import BatchWork, Conversion, EvaluateService, TimerPayload
from nudge.service.feedback import FeedbackService

from tests.arms import user_in
from tests.conftest import REPO
from tests.fakes import (
    FakeQueue,
    FakeScheduler,
    InMemoryEngineStore,
    InMemoryExperiments,
    InMemoryPeople,
    InMemoryReceipts,
    InMemorySuppressionList,
)
from tests.unit.builders import parse
from tests.unit.test_send_service import ADA_EMAIL, cart_fire
from tests.unit.test_send_service import World as SendWorld

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)
ARN = "arn:aws:lambda:us-east-1:123456789012:function:nudge-Evaluate"
RETENTION = timedelta(days=90)
TRIGGER = "abandoned_cart"
CART_EXPERIMENT = """\
id: abandoned_cart
when: {event: Product Added}
key: properties.cart_id
unless: {event: Order Completed, within: 24h, same: properties.cart_id}
audience: {path: traits.email, exists: true}
reentry: every_time
send: {channel: email, template: abandoned_cart}
experiment:
  variants:
    - {id: h24, weight: 45, unless: {within: 24h}}
    - {id: h48, weight: 45, unless: {within: 48h}}
  holdout: 10%
  goal: {event: Order Completed, within: 7d, value: properties.revenue}
"""

Record = tuple[int, StoredEvent]  # a stream record: its sequence number and the event


@pytest.fixture(scope="module")
def index() -> TriggerIndex:
    trigger, problems = parse_trigger(
        CART_EXPERIMENT, "abandoned_cart.yaml", REPO / "triggers" / "templates"
    )
    assert problems == []
    assert trigger is not None
    return TriggerIndex.of([trigger])


def someone_in(index: TriggerIndex, arm: str) -> PersonId:
    """The first user-<n> the stable hash puts in ``arm``."""
    return user_in(index.triggers[TRIGGER], arm)


class Evaluate:
    """EvaluateService on fakes; events reach it as Ingest and the stream bring them."""

    def __init__(self, index: TriggerIndex) -> None:
        self.people, self.engine = InMemoryPeople(), InMemoryEngineStore()
        self.scheduler, self.queue = FakeScheduler(), FakeQueue()
        self.experiments = InMemoryExperiments()
        self.service = EvaluateService(
            self.people, self.engine, self.scheduler, self.queue, index, self.experiments
        )
        experiment = index.triggers[TRIGGER].experiment
        assert experiment is not None
        self.version = experiment.version
        self._sequence = itertools.count(1)

    def ingest(self, *messages: dict[str, Any], at: datetime = NOW) -> list[Record]:
        """Stores the messages under the partitions Ingest would choose, with the links
        they declare; returns the stream records their writes make."""
        intake = parse({"batch": list(messages)}, route="batch", received_at=at)
        links = _links_declared(intake.events)
        stored = [
            StoredEvent(person=_partition(event, links), event=event) for event in intake.events
        ]
        self.people.put_events(stored, links, RETENTION)
        return [(next(self._sequence), each) for each in stored]

    def deliver(self, records: list[Record], at: datetime = NOW) -> BatchWork:
        """One stream batch handled at ``at``, not finished (its profiles not saved yet)."""
        work = self.service.batch([stored for _, stored in records], ARN, at)
        for sequence, stored in records:
            work.handle(sequence, stored, at)
        return work

    def stream(self, *messages: dict[str, Any], at: datetime = NOW) -> BatchWork:
        work = self.deliver(self.ingest(*messages, at=at), at)
        assert work.finish() == set()
        return work

    def due(self) -> Iterator[None]:
        """Every armed reminder, run at its due time."""
        for armed in list(self.scheduler.schedules.values()):
            payload = {**armed.payload, "scheduledTime": armed.due.isoformat()}
            self.service.on_timer(TimerPayload.parse(payload), ARN)
            yield None

    def tallies(self, version: str | None = None) -> list[Tally]:
        return self.experiments.tallies(TRIGGER, version or self.version)

    def totals(self) -> dict[str, dict[Measure, float]]:
        """Each arm's counts of the experiment, over all days."""
        return totals(self.tallies())


def _links_declared(events: list[Event]) -> dict[str, str]:
    links = {event.anonymous_id: event.user_id for event in events if event.anonymous_id}
    links |= {event.previous_id: event.user_id for event in events if event.previous_id}
    return {anon: user for anon, user in links.items() if user}


def _partition(event: Event, links: dict[str, str]) -> PersonId:
    return PersonId.of(event.user_id or links.get(event.anonymous_id or ""), event.anonymous_id)


# ---- messages as a browser (and Track) would send them -------------------------------------


def _who(person: PersonId) -> dict[str, str]:
    return {"userId": person.value} if person.is_user else {"anonymousId": person.value}


def identify(person: PersonId, at: datetime = NOW, **ids: str) -> dict[str, Any]:
    return {
        "type": "identify",
        **_who(person),
        **ids,
        "messageId": f"id-{person.value}-{at.isoformat()}",
        "timestamp": at.isoformat(),
        "traits": {"email": f"{person.value}@example.com"},
    }


def cart(person: PersonId, cart_id: str, at: datetime = NOW) -> dict[str, Any]:
    return {
        "type": "track",
        **_who(person),
        "event": "Product Added",
        "messageId": f"add-{person.value}-{cart_id}",
        "timestamp": at.isoformat(),
        "properties": {"cart_id": cart_id, "name": "Teapot", "price": 9.5},
    }


def order(person: PersonId, order_id: str, revenue: float, at: datetime) -> dict[str, Any]:
    return {
        "type": "track",
        **_who(person),
        "event": "Order Completed",
        "messageId": f"order-{order_id}",
        "timestamp": at.isoformat(),
        "properties": {"order_id": order_id, "revenue": revenue, "total": 1000},
    }


def opened(person: PersonId, fire_id: str, at: datetime, message_id: str = "") -> dict[str, Any]:
    """The event Track records when the email's open pixel loads."""
    return {
        "type": "track",
        **_who(person),
        "event": "Email Opened",
        "messageId": message_id or f"open-{fire_id}",
        "timestamp": at.isoformat(),
        "properties": {"channel": "email", "fireId": fire_id, "trigger": TRIGGER},
    }


# ---- assignment ----------------------------------------------------------------------------


def test_a_cart_assigns_the_person_once_in_their_arm(index: TriggerIndex) -> None:
    """A cart enters the experiment's trigger: one assignment, counted in the person's arm,
    open for the goal's seven days."""
    # given
    evaluate, person = Evaluate(index), someone_in(index, "h24")

    # when
    evaluate.stream(identify(person), cart(person, "c1"))

    # then
    assert evaluate.totals() == {"h24": {"assigned": 1}}
    ((partition, assignment),) = evaluate.experiments.assignments([person])
    assert (partition, assignment.since, assignment.until) == (person, NOW, NOW + 7 * DAY)


def test_a_second_cart_within_the_window_assigns_nothing_new(index: TriggerIndex) -> None:
    """Another cart three days later is the same exposure: still one assignment, the first."""
    # given
    evaluate, person = Evaluate(index), someone_in(index, "h48")
    evaluate.stream(identify(person), cart(person, "c1"))

    # when
    evaluate.stream(cart(person, "c2", NOW + 3 * DAY), at=NOW + 3 * DAY)

    # then
    assert evaluate.totals() == {"h48": {"assigned": 1}}
    ((_, assignment),) = evaluate.experiments.assignments([person])
    assert assignment.since == NOW


def test_a_cart_after_the_window_closed_is_assigned_again(index: TriggerIndex) -> None:
    """A cart eight days on, after the first window closed, opens and counts a new one in
    the same arm."""
    # given
    evaluate, person = Evaluate(index), someone_in(index, "h24")
    evaluate.stream(identify(person), cart(person, "c1"))

    # when
    evaluate.stream(cart(person, "c2", NOW + 8 * DAY), at=NOW + 8 * DAY)

    # then
    assert evaluate.totals() == {"h24": {"assigned": 2}}


def test_the_holdout_is_assigned_and_counted_but_nothing_is_queued(index: TriggerIndex) -> None:
    """A holdout cart is assigned and counted like the others; at its due time nothing is
    queued for sending."""
    # given
    evaluate, person = Evaluate(index), someone_in(index, HOLDOUT)
    evaluate.stream(identify(person), cart(person, "c1"))

    # when
    list(evaluate.due())

    # then
    assert evaluate.queue.messages == []
    assert evaluate.totals() == {HOLDOUT: {"assigned": 1}}


def test_a_variants_fire_names_the_experiment_version(index: TriggerIndex) -> None:
    """The queued fire carries the experiment's version with its arm, so Send can count it
    in the right place."""
    # given
    evaluate, person = Evaluate(index), someone_in(index, "h24")
    evaluate.stream(identify(person), cart(person, "c1"))

    # when
    list(evaluate.due())

    # then
    (queued,) = evaluate.queue.messages
    assert (queued.fire.experiment, queued.fire.variant) == (evaluate.version, "h24")


# ---- conversion ----------------------------------------------------------------------------


def test_a_purchase_within_the_window_converts(index: TriggerIndex) -> None:
    """Order Completed three days after the cart converts the person, worth its revenue."""
    # given
    evaluate, person = Evaluate(index), someone_in(index, "h24")
    evaluate.stream(identify(person), cart(person, "c1"))

    # when
    later = NOW + 3 * DAY
    evaluate.stream(order(person, "o1", 30.0, later), at=later)

    # then
    assert evaluate.totals() == {"h24": {"assigned": 1, "converted": 1, "revenue": 30}}


def test_every_purchase_in_the_window_adds_its_revenue(index: TriggerIndex) -> None:
    """Two orders in the window: converted once, revenue the sum of both."""
    # given
    evaluate, person = Evaluate(index), someone_in(index, "h48")
    evaluate.stream(identify(person), cart(person, "c1"))
    evaluate.stream(order(person, "o1", 30.0, NOW + DAY), at=NOW + DAY)

    # when
    evaluate.stream(order(person, "o2", 12.5, NOW + 5 * DAY), at=NOW + 5 * DAY)

    # then
    assert evaluate.totals() == {"h48": {"assigned": 1, "converted": 1, "revenue": 42.5}}


def test_a_purchase_after_the_window_does_not_convert(index: TriggerIndex) -> None:
    """Order Completed eight days after the cart (the goal's window is seven) counts nothing."""
    # given
    evaluate, person = Evaluate(index), someone_in(index, "h24")
    evaluate.stream(identify(person), cart(person, "c1"))

    # when
    later = NOW + 8 * DAY
    evaluate.stream(order(person, "o1", 30.0, later), at=later)

    # then
    assert evaluate.totals() == {"h24": {"assigned": 1}}


def test_a_purchase_by_someone_never_assigned_converts_nothing(index: TriggerIndex) -> None:
    """An order from a person who never entered the experiment counts nowhere."""
    # given
    evaluate, person = Evaluate(index), someone_in(index, "h24")

    # when
    work = evaluate.stream(identify(person), order(person, "o1", 30.0, NOW))

    # then
    assert (work.conversions, evaluate.tallies()) == ([], [])


def test_the_batch_reports_the_conversions_it_counted(index: TriggerIndex) -> None:
    """A batch with two orders reports both: the first converting, each with its value."""
    # given
    evaluate, person = Evaluate(index), someone_in(index, "h24")
    evaluate.stream(identify(person), cart(person, "c1"))

    # when
    work = evaluate.stream(
        order(person, "o1", 30.0, NOW + DAY), order(person, "o2", 5.0, NOW + DAY), at=NOW + DAY
    )

    # then
    assert work.conversions == [
        Conversion(TRIGGER, "h24", first=True, value=30.0),
        Conversion(TRIGGER, "h24", first=False, value=5.0),
    ]


@pytest.mark.parametrize(
    "link",
    [
        pytest.param({"type": "identify", "anonymousId": "anon-1"}, id="identify"),
        pytest.param({"type": "alias", "previousId": "anon-1"}, id="alias"),
    ],
)
def test_a_visitor_converts_when_the_user_they_became_buys(
    index: TriggerIndex, link: dict[str, Any]
) -> None:
    """An anonymous visitor's cart assigns the visitor; after an identify (or alias) makes
    them ada, ada's order converts the visitor's assignment, in the visitor's arm."""
    # given
    evaluate = Evaluate(index)
    visitor, ada = PersonId.anonymous("anon-1"), PersonId.user("ada")
    trigger = index.triggers[TRIGGER]
    assert trigger.experiment is not None
    arm = assign(TRIGGER, trigger.experiment, visitor)
    evaluate.stream(cart(visitor, "c1"))
    became = {
        **link,
        "userId": "ada",
        "messageId": "link-1",
        "timestamp": (NOW + timedelta(hours=1)).isoformat(),
    }
    evaluate.stream(became, at=NOW + timedelta(hours=1))

    # when
    later = NOW + 2 * DAY
    evaluate.stream(order(ada, "o1", 30.0, later), at=later)

    # then
    assert evaluate.totals() == {arm: {"assigned": 1, "converted": 1, "revenue": 30}}


def _visitor_who_became_ada_and_came_back(evaluate: Evaluate) -> PersonId:
    """anon-1 leaves a cart, logs in as ada an hour later, and leaves another cart as ada
    the next day, all inside the first cart's goal window."""
    visitor, ada = PersonId.anonymous("anon-1"), PersonId.user("ada")
    evaluate.stream(cart(visitor, "c1"))
    evaluate.stream(
        identify(ada, NOW + timedelta(hours=1), anonymousId="anon-1"), at=NOW + timedelta(hours=1)
    )
    evaluate.stream(cart(ada, "c2", NOW + DAY), at=NOW + DAY)
    return ada


def test_a_visitor_who_became_a_user_and_comes_back_is_assigned_once(
    index: TriggerIndex,
) -> None:
    """A re-entry while an assignment is open is the same exposure, whichever of the
    person's identities it came under: one assignment, not one per identity."""
    # given
    evaluate = Evaluate(index)

    # when
    _visitor_who_became_ada_and_came_back(evaluate)

    # then
    assert sum(arm.get("assigned", 0) for arm in evaluate.totals().values()) == 1


def test_one_order_of_a_merged_person_counts_its_revenue_once(index: TriggerIndex) -> None:
    """ada (once anon-1, entered under both identities) buys once: one conversion, the
    order's revenue once."""
    # given
    evaluate = Evaluate(index)
    ada = _visitor_who_became_ada_and_came_back(evaluate)

    # when
    evaluate.stream(order(ada, "o1", 30.0, NOW + 2 * DAY), at=NOW + 2 * DAY)

    # then
    counted = totals(evaluate.tallies())
    assert sum(arm.get("converted", 0) for arm in counted.values()) == 1
    assert sum(arm.get("revenue", 0) for arm in counted.values()) == 30


def test_a_redelivered_batch_counts_nothing_twice(index: TriggerIndex) -> None:
    """A batch whose profiles were never saved (the function failed at the end) comes
    again with the same sequence numbers: its assignment and conversion count once."""
    # given: the batch was handled, but its profile not saved
    evaluate, person = Evaluate(index), someone_in(index, "h24")
    records = evaluate.ingest(identify(person), cart(person, "c1"), order(person, "o1", 30.0, NOW))
    evaluate.deliver(records)
    assert person not in evaluate.people.profiles

    # when
    work = evaluate.deliver(records, NOW + timedelta(minutes=1))
    assert work.finish() == set()

    # then
    assert evaluate.totals() == {"h24": {"assigned": 1, "converted": 1, "revenue": 30}}
    assert work.conversions == []


# ---- reactions to a fire: opens ------------------------------------------------------------


def test_an_open_counts_in_the_arm_the_fire_was_sent_in(index: TriggerIndex) -> None:
    """A fire queued in h48 and counted sent by Send, then opened: ``opened`` counts once
    in h48, beside the send."""
    # given: the fire was queued and Send counted it sent, as it does
    evaluate, person = Evaluate(index), someone_in(index, "h48")
    evaluate.stream(identify(person), cart(person, "c1"))
    list(evaluate.due())
    (queued,) = evaluate.queue.messages
    fire = queued.fire
    sent_at = NOW + 2 * DAY
    assert fire.experiment is not None
    assert fire.variant is not None
    under = CountedUnder(fire.trigger, fire.experiment, fire.variant)
    evaluate.experiments.count_fire(fire.fire_id, "sent", under, sent_at)

    # when
    evaluate.stream(opened(person, fire.fire_id, sent_at), at=sent_at)

    # then
    assert evaluate.totals() == {"h48": {"assigned": 1, "sent": 1, "opened": 1}}


def test_a_second_open_of_the_same_fire_counts_nothing(index: TriggerIndex) -> None:
    """The email opened again the next day (another event, the same fire): still one open."""
    # given
    evaluate, person = Evaluate(index), someone_in(index, "h24")
    under = CountedUnder(TRIGGER, evaluate.version, "h24")
    evaluate.experiments.count_fire("fire-1", "sent", under, NOW)
    evaluate.stream(opened(person, "fire-1", NOW, "open-1"))

    # when
    evaluate.stream(opened(person, "fire-1", NOW + DAY, "open-2"), at=NOW + DAY)

    # then
    assert evaluate.totals() == {"h24": {"sent": 1, "opened": 1}}


def test_an_open_of_a_fire_never_counted_sent_counts_nowhere(index: TriggerIndex) -> None:
    """An "Email Opened" for a fire Send never counted (a made-up id sent to the public
    beacon, or a fire sent before counting began) counts in no report."""
    # given
    evaluate, person = Evaluate(index), someone_in(index, "h24")

    # when
    evaluate.stream(opened(person, "fire-old", NOW))

    # then
    assert evaluate.tallies(NO_EXPERIMENT) == []
    assert evaluate.tallies() == []


def test_an_open_naming_another_trigger_than_its_fire_counts_nowhere(index: TriggerIndex) -> None:
    """The event's trigger must be the fire's: a forged pair counts in no report."""
    # given
    evaluate, person = Evaluate(index), someone_in(index, "h24")
    evaluate.experiments.count_fire("fire-1", "sent", CountedUnder("other", "v", "a"), NOW)

    # when
    evaluate.stream(opened(person, "fire-1", NOW))

    # then
    assert evaluate.totals() == {}


# ---- Send: a delivered fire counts sent once -----------------------------------------------


@pytest.fixture
def send_world() -> SendWorld:
    world = SendWorld()
    world.given_person(email=ADA_EMAIL, first_name="Ada", name="Ada Lovelace", tier="vip")
    return world


IN_H24 = CountedUnder(TRIGGER, "0123456789ab", "h24")


def _h24_fire() -> FireMessage:
    return cart_fire(variant="h24", experiment="0123456789ab")


def test_a_delivered_fire_counts_sent_in_its_experiment_and_arm(send_world: SendWorld) -> None:
    """A variant's fire, emailed: ``sent`` counts once under its trigger, version and arm,
    and the count remembers where (for its opens)."""
    # given
    fire = _h24_fire()

    # when
    delivery = send_world.deliver(fire)

    # then
    assert delivery.outcome == "sent"
    assert send_world.experiments.tallies(TRIGGER, IN_H24.version) == [
        Tally(IN_H24.version, "h24", NOW.date(), {"sent": 1})
    ]
    assert send_world.experiments.sent_as(fire.fire_id) == IN_H24


def test_a_fire_without_an_experiment_counts_sent_under_none(send_world: SendWorld) -> None:
    """A fire of a trigger without an experiment counts under version and arm ``-``."""
    # given
    fire = cart_fire()

    # when
    send_world.deliver(fire)

    # then
    assert send_world.experiments.sent_as(fire.fire_id) == CountedUnder(TRIGGER)
    assert send_world.experiments.tallies(TRIGGER, NO_EXPERIMENT) == [
        Tally(NO_EXPERIMENT, NO_EXPERIMENT, NOW.date(), {"sent": 1})
    ]


def test_a_fire_delivered_twice_counts_sent_once(send_world: SendWorld) -> None:
    """The queue hands the same fire out again after it was sent: one email, one ``sent``."""
    # given
    fire = _h24_fire()
    send_world.deliver(fire)

    # when
    send_world.deliver(fire, NOW + timedelta(minutes=1), redelivered=True)

    # then
    assert len(send_world.mailer.sent) == 1
    assert send_world.experiments.tallies(TRIGGER, IN_H24.version) == [
        Tally(IN_H24.version, "h24", NOW.date(), {"sent": 1})
    ]


def test_a_fire_redelivered_after_a_crash_before_marking_counts_sent_once(
    send_world: SendWorld,
) -> None:
    """Send counted the fire and SES accepted it, then the function died before marking the
    contact record: the redelivered fire is a duplicate and its ``sent`` is not counted again."""
    # given
    fire = _h24_fire()
    send_world.experiments.count_fire(fire.fire_id, "sent", IN_H24, NOW)
    claimed = ContactState(fires={fire.fire_id: f"claimed@{NOW.isoformat()}"})
    send_world.contacts.save(PersonId.user("ada"), claimed)
    send_world.receipts.record(fire.fire_id, "ses-accepted", NOW)

    # when
    delivery = send_world.deliver(fire, NOW + timedelta(minutes=3), redelivered=True)

    # then
    assert delivery.outcome == "duplicate"
    assert send_world.experiments.tallies(TRIGGER, IN_H24.version) == [
        Tally(IN_H24.version, "h24", NOW.date(), {"sent": 1})
    ]


def test_a_send_ses_put_off_counts_nothing_until_it_is_sent(send_world: SendWorld) -> None:
    """SES said later: nothing is counted; the retry that is sent counts ``sent`` once."""
    # given
    send_world.mailer.answer_unavailable()
    send_world.deliver(_h24_fire())
    assert send_world.experiments.tallies(TRIGGER, IN_H24.version) == []
    (queued,) = send_world.queue.messages

    # when
    send_world.deliver(queued.fire, NOW + timedelta(minutes=1))

    # then
    assert send_world.experiments.tallies(TRIGGER, IN_H24.version) == [
        Tally(IN_H24.version, "h24", NOW.date(), {"sent": 1})
    ]


# ---- Feedback: a complaint counts once where the send was counted --------------------------


def _complaint(fire_id: str) -> dict[str, Any]:
    """SES's Complaint event for an email Send sent (the fire in its tag and header)."""
    return {
        "eventType": "Complaint",
        "mail": {
            "messageId": "ses-1",
            "tags": {FIRE_TAG: [fire_id]},
            "headers": [{"name": FIRE_HEADER, "value": fire_id}],
        },
        "complaint": {"complainedRecipients": [{"emailAddress": ADA_EMAIL}]},
    }


def _feedback(experiments: InMemoryExperiments) -> FeedbackService:
    return FeedbackService(InMemorySuppressionList(), InMemoryReceipts(), experiments)


def test_a_complaint_counts_once_in_the_arm_the_fire_was_sent_in() -> None:
    """A complaint about a fire sent in h24, published twice by SES: ``complained`` is 1 in
    h24."""
    # given
    experiments = InMemoryExperiments()
    experiments.count_fire("fire-1", "sent", IN_H24, NOW)
    feedback = _feedback(experiments)
    feedback.on_ses_event(_complaint("fire-1"), NOW + DAY)

    # when
    feedback.on_ses_event(_complaint("fire-1"), NOW + DAY)

    # then
    assert totals(experiments.tallies(TRIGGER, IN_H24.version)) == {
        "h24": {"sent": 1, "complained": 1}
    }


def test_a_complaint_about_a_fire_never_counted_sent_counts_nowhere() -> None:
    """A complaint about a fire whose send was never counted suppresses the address and
    counts nothing."""
    # given
    experiments = InMemoryExperiments()
    feedback = _feedback(experiments)

    # when
    suppressed = feedback.on_ses_event(_complaint("fire-old"), NOW)

    # then
    assert suppressed == [ADA_EMAIL]
    assert experiments.counters == {}


# ---- the functions' roles may make the writes counting takes -------------------------------


class _CfnLoader(yaml.SafeLoader):
    """template.yaml with its intrinsic functions read as {name: argument}."""


def _intrinsic(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node, deep=True)}
    assert isinstance(node, yaml.MappingNode)
    return {suffix: loader.construct_mapping(node, deep=True)}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def _table_actions(function: str) -> set[str]:
    """The DynamoDB actions a function's role is allowed on the table itself."""
    template = yaml.load((REPO / "template.yaml").read_text(), Loader=_CfnLoader)
    allowed: set[str] = set()
    for policy in template["Resources"][function]["Properties"].get("Policies", []):
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            if statement.get("Resource") != {"GetAtt": "Table.Arn"}:
                continue
            actions = statement["Action"]
            allowed |= {actions} if isinstance(actions, str) else set(actions)
    return allowed


# A transaction's Put and Update need the role's PutItem and UpdateItem (IAM has no action of
# its own for TransactWriteItems); sent_as is a GetItem, assignments a Query.
_COUNTING_NEEDS = {
    "Evaluate": {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem", "dynamodb:Query"},
    "Send": {"dynamodb:PutItem", "dynamodb:UpdateItem"},
    "Feedback": {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem"},
    "Reports": {"dynamodb:Query"},
}


@pytest.mark.parametrize("function", ["Evaluate", "Send", "Feedback", "Reports"])
def test_each_counting_function_may_write_the_counters(function: str) -> None:
    """Evaluate, Send and Feedback count through ExperimentStore, Reports reads it: their
    roles allow the item actions its transactions and reads are made of (moto does not
    check IAM, so the service and integration tests cannot see a missing one)."""
    # given
    needs = _COUNTING_NEEDS[function]

    # when
    allowed = _table_actions(function)

    # then
    assert needs - allowed == set()
