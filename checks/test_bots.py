"""Each pool and bot: running, answering, configured as planned, alive, trading, not looping.

One test per subject and check (`HOST|bot USER/BOT|stagnant`), each failing with the reason.
"""


def test_check(finding):
    assert finding.ok, finding.message
