"""A few seconds of Segment clients' load on the local stack, then, after draining and the
clock run past every timer: every accepted event stored once, every due trigger fired once
(against the backtest of the same events) and every send delivered once (against SES's
mail, the CRM's requests and the in-app inbox). ``python -m bench load`` runs the same
checks on a minute of load."""

from __future__ import annotations

import pytest

from bench.load import Check, Settings, load_and_check

pytestmark = pytest.mark.e2e

LOAD = Settings(seconds=3.0, threads=4)


def _explained(check: Check) -> str:
    return (
        f"{check.name}: expected {check.expected}, found {check.found};"
        f" missing {check.missing[:5]}, duplicated {check.duplicated[:5]},"
        f" unexpected {check.unexpected[:5]}"
    )


@pytest.mark.timeout(900)  # the clock's 8 days are run hour by hour (every sweep)
def test_after_a_burst_of_load_everything_is_stored_fired_and_delivered_exactly_once() -> None:
    """Every event the stack accepted under load is stored once, every trigger the backtest
    says is due has fired once, and every fire to deliver reached its channel once."""
    # given / when
    result, checks, _ = load_and_check(LOAD)

    # then
    assert result.accepted, "the load sent nothing the stack accepted"
    assert checks.fired.expected > 0, "no trigger was due"
    assert checks.delivered.expected > 0, "no fire was to be delivered"
    for check in checks.rows():
        assert check.ok, _explained(check)
