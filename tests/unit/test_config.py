"""Settings from the environment, checked at cold start."""

from __future__ import annotations

from datetime import timedelta

import pytest
from nudge.config import ConfigError, ReadSettings, Settings
from nudge.delivery_config import DeliverySettings, webhook_secrets
from nudge.domain.intake import Limits


def test_defaults_apply_when_only_the_table_is_set() -> None:
    """With only the table name, retention is 90 days and limits are Segment's defaults."""
    # given
    env = {"NUDGE_TABLE_NAME": "nudge-events"}

    # when
    settings = Settings.from_env(env)

    # then
    assert settings.table_name == "nudge-events"
    assert settings.write_keys == frozenset()
    assert settings.retention == timedelta(days=90)
    assert settings.limits == Limits()


def test_a_missing_table_name_refuses_to_start() -> None:
    """Without NUDGE_TABLE_NAME the settings raise ConfigError."""
    # given
    env: dict[str, str] = {}

    # when
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)

    # then
    assert str(caught.value) == "NUDGE_TABLE_NAME is not set"


def test_an_empty_table_name_refuses_to_start() -> None:
    """An empty NUDGE_TABLE_NAME counts as not set."""
    # given
    env = {"NUDGE_TABLE_NAME": ""}

    # when
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)

    # then
    assert "NUDGE_TABLE_NAME" in str(caught.value)


def test_write_keys_are_split_on_commas_and_trimmed() -> None:
    """NUDGE_WRITE_KEY holds several comma-separated keys; blanks and spaces are dropped."""
    # given
    env = {"NUDGE_TABLE_NAME": "t", "NUDGE_WRITE_KEY": " wk_live_1, wk_live_2 ,,  "}

    # when
    settings = Settings.from_env(env)

    # then
    assert settings.write_keys == frozenset({"wk_live_1", "wk_live_2"})


def test_retention_is_read_in_days() -> None:
    """NUDGE_RETENTION_DAYS sets the event retention."""
    # given
    env = {"NUDGE_TABLE_NAME": "t", "NUDGE_RETENTION_DAYS": "14"}

    # when
    settings = Settings.from_env(env)

    # then
    assert settings.retention == timedelta(days=14)


def test_skew_bounds_are_read_as_durations() -> None:
    """NUDGE_MAX_PAST and NUDGE_MAX_FUTURE set the limits, other limits keep their defaults."""
    # given
    env = {"NUDGE_TABLE_NAME": "t", "NUDGE_MAX_PAST": "7d", "NUDGE_MAX_FUTURE": "300"}

    # when
    settings = Settings.from_env(env)

    # then
    assert settings.limits.max_past == timedelta(days=7)
    assert settings.limits.max_future == timedelta(minutes=5)
    assert settings.limits.max_batch_items == Limits().max_batch_items


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("NUDGE_RETENTION_DAYS", "ninety"),
        ("NUDGE_MAX_PAST", "30 days"),
        ("NUDGE_MAX_FUTURE", "1.5h"),
    ],
)
def test_an_unreadable_number_or_duration_refuses_to_start(name: str, value: str) -> None:
    """A malformed retention or skew bound is a ConfigError, not a ValueError at request time."""
    # given
    env = {"NUDGE_TABLE_NAME": "t", name: value}

    # when
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)

    # then
    assert value in str(caught.value)


def test_a_non_positive_retention_is_refused() -> None:
    """Zero or negative retention would expire events at once, so the function refuses to start."""
    # given
    env = {"NUDGE_TABLE_NAME": "t", "NUDGE_RETENTION_DAYS": "-1"}

    # when / then
    with pytest.raises(ConfigError, match="NUDGE_RETENTION_DAYS"):
        Settings.from_env(env)


def _delivery_env(**extra: str) -> dict[str, str]:
    return {
        "NUDGE_FROM_EMAIL": "nudge@example.com",
        "NUDGE_PUBLIC_URL": "https://links.example.com",
        "NUDGE_TRACKING_SECRET_PARAMETER": "/nudge/tracking-secret",
        "NUDGE_WEBHOOK_SECRET_PARAMETER": "/nudge/webhook-secret",
        "NUDGE_SEND_QUEUE_ARN": "arn:aws:sqs:us-east-1:123456789012:q",
        "NUDGE_SEND_DLQ_URL": "https://sqs.example/dlq",
        "NUDGE_RECEIPT_FAILURES_URL": "https://sqs.example/feedback-failures",
        **extra,
    }


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://crm.example.com/hook", "must be https"),
        ("https://10.0.0.5/hook", "not a public address"),
        ("https://169.254.169.254/latest", "not a public address"),
        ("https://[::1]/hook", "not a public address"),
    ],
)
def test_a_webhook_url_that_is_not_public_https_refuses_to_start(url: str, reason: str) -> None:
    """A plain-http or private webhook URL is a deploy mistake, refused before any fire."""
    # given
    env = _delivery_env(NUDGE_CRM_WEBHOOK_URL=url)

    # when / then
    with pytest.raises(ConfigError, match=reason):
        DeliverySettings.from_env(env)


def test_an_allow_listed_host_may_use_http() -> None:
    """The local stack's loopback receivers are allowed by name, and only those."""
    # given
    env = _delivery_env(
        NUDGE_CRM_WEBHOOK_URL="http://127.0.0.1:8123/hook", NUDGE_WEBHOOK_ALLOW_HOSTS="127.0.0.1"
    )

    # when
    settings = DeliverySettings.from_env(env)

    # then
    assert settings.crm_webhook_url == "http://127.0.0.1:8123/hook"


def test_the_webhook_timeout_is_five_seconds_unless_set() -> None:
    """A receiver has 5 s to answer by default; NUDGE_WEBHOOK_TIMEOUT changes it."""
    # given
    default, set_to_two = _delivery_env(), _delivery_env(NUDGE_WEBHOOK_TIMEOUT="2.5")

    # when
    settings = [DeliverySettings.from_env(env) for env in (default, set_to_two)]

    # then
    assert [s.webhook_timeout for s in settings] == [5.0, 2.5]


@pytest.mark.parametrize("value", ["0", "-1", "21", "soon"])
def test_a_webhook_timeout_out_of_range_refuses_to_start(value: str) -> None:
    """A timeout of nothing, or longer than Send can wait, or not a number, is refused."""
    # given
    env = _delivery_env(NUDGE_WEBHOOK_TIMEOUT=value)

    # when / then
    with pytest.raises(ConfigError, match="NUDGE_WEBHOOK_TIMEOUT"):
        DeliverySettings.from_env(env)


@pytest.mark.parametrize("value", ["0", "33", "two", "-1"])
def test_a_sweep_shard_count_out_of_range_refuses_to_start(value: str) -> None:
    """NUDGE_SWEEP_SHARDS is a whole number from 1 to 32."""
    # given
    env = {"NUDGE_TABLE_NAME": "t", "NUDGE_SWEEP_SHARDS": value}

    # when / then
    with pytest.raises(ConfigError, match="NUDGE_SWEEP_SHARDS"):
        Settings.from_env(env)


def test_the_read_side_keeps_decisions_as_long_as_the_functions_do() -> None:
    """ReadSettings takes NUDGE_DECISION_TTL_DAYS, 30 days unless set, and needs nothing else."""
    # given
    envs: list[dict[str, str]] = [{}, {"NUDGE_DECISION_TTL_DAYS": "7"}]

    # when
    ttls = [ReadSettings.from_env(env).decision_ttl for env in envs]

    # then
    assert ttls == [timedelta(days=30), timedelta(days=7)]


def test_an_unreadable_decision_ttl_refuses_the_read_side() -> None:
    """A decision TTL that is not a whole number of days is a ConfigError naming it."""
    # given
    env = {"NUDGE_DECISION_TTL_DAYS": "a month"}

    # when / then
    with pytest.raises(ConfigError, match="NUDGE_DECISION_TTL_DAYS"):
        ReadSettings.from_env(env)


def test_a_webhook_url_without_a_secret_parameter_refuses_to_start() -> None:
    """A webhook nobody could verify is never sent: a URL needs its secret's parameter."""
    # given
    env = _delivery_env(NUDGE_CRM_WEBHOOK_URL="https://crm.example.com/hook")
    del env["NUDGE_WEBHOOK_SECRET_PARAMETER"]

    # when / then
    with pytest.raises(ConfigError, match="NUDGE_WEBHOOK_SECRET_PARAMETER"):
        DeliverySettings.from_env(env)


def test_without_a_webhook_url_no_webhook_secret_is_read() -> None:
    """No URL, no webhooks: Send does not read (or need) the webhook secret."""
    # given
    env = _delivery_env()

    # when
    settings = DeliverySettings.from_env(env)

    # then
    assert settings.webhook_secret_parameter is None


def test_every_webhook_secret_of_a_rotation_is_kept_in_order() -> None:
    """ "new,old" gives both secrets, the new one first."""
    # when
    secrets = webhook_secrets("whsec_bmV3, whsec_b2xk")

    # then
    assert secrets == ("whsec_bmV3", "whsec_b2xk")


@pytest.mark.parametrize("value", ["", " , ", "whsec_bmV3,not-a-secret"])
def test_a_webhook_secret_that_is_not_whsec_refuses_to_start(value: str) -> None:
    """An empty value, or one that is not whsec_<base64>, stops Send at cold start."""
    # when / then
    with pytest.raises(ConfigError):
        webhook_secrets(value)
