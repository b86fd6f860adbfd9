"""InAppService on the in-memory fakes: a decided message is kept and pushed to every open
page, a page that is gone is forgotten, sync brings what waits for both identities, the
first ack wins the message and the person's other pages drop it; and page_identity, who a
page opening a WebSocket is (docs/delivery.md, "In-app messages")."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from nudge.domain.errors import InvalidRequest, Unauthorized
from nudge.domain.in_app import InAppMessage, SocketIdentity, drop_frame, show_frame
from nudge.domain.messages import InAppDisplay
from nudge.domain.person import PersonId
from nudge.service.in_app import CONNECTION_LIFETIME, InAppService, page_identity

from tests.fakes import InMemoryInAppInbox, RecordingSockets

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
ADA = PersonId.user("ada")
VISITOR = PersonId.anonymous("anon-7")
ADA_PAGE = SocketIdentity(user_id="ada", anonymous_id="anon-7")
WRITE_KEYS = ["dev-write-key", "second-key"]


@dataclass
class World:
    """InAppService and what it talks to, held in memory."""

    inbox: InMemoryInAppInbox = field(default_factory=InMemoryInAppInbox)
    sockets: RecordingSockets = field(default_factory=RecordingSockets)

    @property
    def service(self) -> InAppService:
        return InAppService(inbox=self.inbox, sockets=self.sockets)

    def given_open(self, *connections: str, identity: SocketIdentity = ADA_PAGE) -> None:
        for connection in connections:
            self.service.connect(connection, identity, NOW)


@pytest.fixture
def world() -> World:
    return World()


def offer(fire_id: str = "fire-1", expires_at: datetime = NOW + timedelta(days=1)) -> InAppMessage:
    return InAppMessage(
        fire_id=fire_id,
        trigger="product_offer",
        html="<p>Still thinking about the Espresso Cup?</p>",
        display=InAppDisplay(delay=5.0, scroll=50.0, exclude=("/checkout*",)),
        expires_at=expires_at,
    )


# ---- deliver: from Send --------------------------------------------------------------------


def test_a_delivered_message_is_kept_and_pushed_to_every_open_page(world: World) -> None:
    """With two pages open, the message is kept for the person and each page gets its
    message frame; the reason counts the pages."""
    # given
    world.given_open("tab-1", "tab-2")

    # when
    reason = world.service.deliver(ADA, offer(), NOW)

    # then
    assert world.inbox.pending([ADA], NOW) == [offer()]
    assert world.sockets.posts == [("tab-1", offer().frame()), ("tab-2", offer().frame())]
    assert reason == (
        "pushed to 2 open page(s); kept until one shows it or 2026-11-29T10:00:00.000Z"
    )


def test_a_message_frame_carries_what_the_page_needs(world: World) -> None:
    """The message frame names its type, fire, trigger, HTML, display rules and expiry."""
    # given
    world.given_open("tab-1")

    # when
    world.service.deliver(ADA, offer(), NOW)

    # then
    assert world.sockets.frames("tab-1") == [
        {
            "type": "message",
            "fireId": "fire-1",
            "trigger": "product_offer",
            "html": "<p>Still thinking about the Espresso Cup?</p>",
            "display": {"delay": 5.0, "scroll": 50.0, "match": "any", "exclude": ["/checkout*"]},
            "expiresAt": "2026-11-29T10:00:00.000Z",
        }
    ]


def test_a_gone_connection_is_forgotten_on_delivery(world: World) -> None:
    """A page closed without $disconnect answers gone: it is forgotten, the open one gets
    the message, and the reason counts only that one."""
    # given
    world.given_open("tab-closed", "tab-open")
    world.sockets.gone.add("tab-closed")

    # when
    reason = world.service.deliver(ADA, offer(), NOW)

    # then
    assert world.inbox.connections(ADA, NOW) == ["tab-open"]
    assert [to for to, _ in world.sockets.posts] == ["tab-open"]
    assert reason.startswith("pushed to 1 open page(s)")


def test_with_no_page_open_the_reason_says_kept_until(world: World) -> None:
    """Nobody has a page open: the message is kept, nothing posted, and the reason says
    until when it waits."""
    # given: no open page

    # when
    reason = world.service.deliver(ADA, offer(), NOW)

    # then
    assert reason == "no page open: kept for the next page until 2026-11-29T10:00:00.000Z"
    assert world.sockets.posts == []
    assert world.inbox.pending([ADA], NOW) == [offer()]


def test_a_connection_is_kept_for_api_gateways_two_hours(world: World) -> None:
    """connect records the page under the person until API Gateway's two-hour limit."""
    # given: no open page

    # when
    world.service.connect("tab-1", ADA_PAGE, NOW)

    # then
    assert world.inbox.open_pages == {ADA: {"tab-1": NOW + CONNECTION_LIFETIME}}


def test_a_disconnected_page_is_forgotten(world: World) -> None:
    """disconnect forgets the page, and the next delivery posts nothing."""
    # given
    world.given_open("tab-1")

    # when
    world.service.disconnect("tab-1", ADA_PAGE)

    # then
    world.service.deliver(ADA, offer(), NOW)
    assert world.sockets.posts == []


# ---- sync: a page just opened --------------------------------------------------------------


def test_sync_posts_what_waits_for_both_identities(world: World) -> None:
    """A page that is the user and the visitor they were gets the messages kept for each,
    soonest expiry first, and sync says how many."""
    # given
    world.inbox.keep(ADA, offer("fire-user", NOW + timedelta(hours=2)))
    world.inbox.keep(VISITOR, offer("fire-visitor", NOW + timedelta(hours=1)))

    # when
    posted = world.service.sync("tab-1", ADA_PAGE, NOW)

    # then
    assert posted == 2
    assert [frame["fireId"] for frame in world.sockets.frames("tab-1")] == [
        "fire-visitor",
        "fire-user",
    ]


def test_sync_skips_expired_messages(world: World) -> None:
    """A message past its expiry is not posted to a page that syncs."""
    # given
    world.inbox.keep(ADA, offer(expires_at=NOW + timedelta(minutes=5)))

    # when
    posted = world.service.sync("tab-1", ADA_PAGE, NOW + timedelta(minutes=5))

    # then
    assert posted == 0
    assert world.sockets.posts == []


def test_a_page_gone_while_syncing_gets_nothing_more(world: World) -> None:
    """A page that answers gone to its first message is forgotten and sync stops there."""
    # given
    world.given_open("tab-1")
    world.inbox.keep(ADA, offer("fire-1"))
    world.inbox.keep(ADA, offer("fire-2", NOW + timedelta(days=2)))
    world.sockets.gone.add("tab-1")

    # when
    posted = world.service.sync("tab-1", ADA_PAGE, NOW)

    # then
    assert posted == 0
    assert world.sockets.refused == ["tab-1"]
    assert world.inbox.connections(ADA, NOW) == []


# ---- ack: a page ready to show a message ---------------------------------------------------


def test_the_first_page_to_ack_shows_the_message_and_the_others_drop_it(world: World) -> None:
    """The page that acks first wins: it hears show, the person's other page hears drop,
    and the message is no longer waiting."""
    # given
    world.given_open("tab-1", "tab-2")
    world.inbox.keep(ADA, offer())

    # when
    won = world.service.ack("tab-1", ADA_PAGE, "fire-1", NOW)

    # then
    assert won is True
    assert world.sockets.posts == [("tab-1", show_frame("fire-1")), ("tab-2", drop_frame("fire-1"))]
    assert world.inbox.pending([ADA, VISITOR], NOW) == []


def test_a_second_ack_hears_drop(world: World) -> None:
    """A page that acks a message another page already won hears drop, and only it."""
    # given
    world.given_open("tab-1", "tab-2")
    world.inbox.keep(ADA, offer())
    world.service.ack("tab-1", ADA_PAGE, "fire-1", NOW)
    world.sockets.posts.clear()

    # when
    won = world.service.ack("tab-2", ADA_PAGE, "fire-1", NOW)

    # then
    assert won is False
    assert world.sockets.posts == [("tab-2", drop_frame("fire-1"))]


def test_an_ack_after_the_expiry_hears_drop(world: World) -> None:
    """A message past its expiry cannot be won: the acking page hears drop."""
    # given
    world.given_open("tab-1")
    world.inbox.keep(ADA, offer(expires_at=NOW + timedelta(minutes=5)))

    # when
    won = world.service.ack("tab-1", ADA_PAGE, "fire-1", NOW + timedelta(minutes=6))

    # then
    assert won is False
    assert world.sockets.posts == [("tab-1", drop_frame("fire-1"))]


def test_a_message_kept_for_the_visitor_is_won_by_their_signed_in_page(world: World) -> None:
    """A message kept for the anonymous visitor is won by the page that is both them and
    the user they became."""
    # given
    world.given_open("tab-1")
    world.inbox.keep(VISITOR, offer())

    # when
    won = world.service.ack("tab-1", ADA_PAGE, "fire-1", NOW)

    # then
    assert won is True
    assert world.sockets.posts == [("tab-1", show_frame("fire-1"))]


# ---- page_identity: who opens a WebSocket --------------------------------------------------


def test_a_page_with_a_known_key_is_who_it_says() -> None:
    """A known write key (any of them) and both ids: the identity, the user its person."""
    # given
    query = {"writeKey": "second-key", "userId": "ada", "anonymousId": "anon-7"}

    # when
    identity = page_identity(query, WRITE_KEYS)

    # then
    assert identity == ADA_PAGE
    assert identity.person == ADA
    assert identity.persons == [ADA, VISITOR]


def test_an_anonymous_page_is_its_visitor() -> None:
    """Only an anonymousId: the person is the anonymous visitor, empty userId ignored."""
    # given
    query = {"writeKey": "dev-write-key", "userId": "", "anonymousId": "anon-7"}

    # when
    identity = page_identity(query, WRITE_KEYS)

    # then
    assert identity == SocketIdentity(user_id=None, anonymous_id="anon-7")
    assert identity.persons == [VISITOR]


def test_a_page_without_a_write_key_is_unauthorized() -> None:
    """No writeKey in the query: Unauthorized, naming the parameter."""
    # given
    query = {"userId": "ada"}

    # when
    with pytest.raises(Unauthorized) as refused:
        page_identity(query, WRITE_KEYS)

    # then
    assert (refused.value.field, refused.value.reason) == (
        "writeKey",
        "missing write key: ?writeKey=<write key>",
    )


def test_a_page_with_an_unknown_write_key_is_unauthorized() -> None:
    """A write key that is not one of the stack's: Unauthorized."""
    # given
    query = {"writeKey": "dev-write-key-not", "userId": "ada"}

    # when
    with pytest.raises(Unauthorized) as refused:
        page_identity(query, WRITE_KEYS)

    # then
    assert refused.value.reason == "write key not recognised"


def test_a_page_with_no_identity_is_an_invalid_request() -> None:
    """A good key but neither userId nor anonymousId: InvalidRequest."""
    # given
    query = {"writeKey": "dev-write-key", "userId": "", "anonymousId": ""}

    # when
    with pytest.raises(InvalidRequest) as refused:
        page_identity(query, WRITE_KEYS)

    # then
    assert type(refused.value) is InvalidRequest  # not Unauthorized: the key was good
    assert refused.value.reason == "a page connects as a userId or an anonymousId"


@pytest.mark.parametrize("name", ["userId", "anonymousId"])
def test_an_id_longer_than_512_characters_is_an_invalid_request(name: str) -> None:
    """An id of 513 characters is refused, naming the parameter; 512 is fine."""
    # given
    query = {"writeKey": "dev-write-key", name: "x" * 513}

    # when
    with pytest.raises(InvalidRequest) as refused:
        page_identity(query, WRITE_KEYS)

    # then
    assert type(refused.value) is InvalidRequest
    assert (refused.value.field, refused.value.reason) == (name, "longer than 512 characters")
    assert page_identity({**query, name: "x" * 512}, WRITE_KEYS)


def test_a_redelivered_fire_after_a_page_showed_it_is_not_pushed_again(world: World) -> None:
    """Send delivering the same fire again (a redelivery after a crash) finds the message
    kept and shown: nothing is posted, and no page is asked to show it again."""
    # given
    world.given_open("tab-1")
    world.service.deliver(ADA, offer(), NOW)
    world.service.ack("tab-1", ADA_PAGE, "fire-1", NOW)
    posted = list(world.sockets.posts)

    # when
    reason = world.service.deliver(ADA, offer(), NOW + timedelta(minutes=3))

    # then
    assert world.sockets.posts == posted
    assert "not pushed again" in reason
    assert world.inbox.pending([ADA], NOW + timedelta(minutes=3)) == []
