"""The hosts' common scenario, in Python, against the embedded test server
(the same steps as bindings/c/scenario.c): every command returns an id and
ends in exactly one outcome, here the awaited call's result or exception
and the logger's event with the same id."""

import asyncio

import pytest

import ocs
from conftest import LOG, Presence, run

DOMAIN = "contoso.com"


def config(server, user):
    return ocs.OcsConfig(
        uri=f"sip:{user}@{DOMAIN}",
        auth_user=f"CONTOSO\\{user}",
        password=f"{user}pw",
        dialect=ocs.Dialect.OCS,
        server=ocs.ServerAddress(
            host="127.0.0.1", port=server.tcp_port(), transport=ocs.Transport.TCP
        ),
    )


def test_ids_and_outcomes_of_every_command():
    server = ocs.SimServer.start(DOMAIN)
    for user in ("alice", "bob", "carol", "dave"):
        server.add_user(user, "CONTOSO", f"{user}pw")

    async def main():
        # 1. Sign in.
        alice = ocs.OcsClient(config(server, "alice"))
        await alice.sign_in()

        # 2. A publication the server refuses: the call raises the refusal.
        server.refuse_publications(403)
        with pytest.raises(ocs.OcsError.Server) as refused:
            await alice.set_status(ocs.PresenceState.BUSY, "refused")
        assert refused.value.status == 403
        server.refuse_publications(0)
        since = len(LOG.rec.items())
        published = await alice.set_status(ocs.PresenceState.BUSY, "accepted")
        assert published > 0
        # The logger sees the same outcome, with the id.
        await LOG.rec.wait_for(
            lambda r: r.event_id == 1401
            and r.user == "sip:alice@contoso.com"
            and f"published #{published}: busy" in r.message,
            "the publication's outcome event",
            since=since,
        )

        # 3. Watch, then close the handle: the server sees both.
        since = len(LOG.rec.items())
        sub = await alice.subscribe("sip:bob@contoso.com", Presence())
        assert sub.id() > 0
        await LOG.rec.wait_for(
            lambda r: r.event_id == 1407
            and r.user == "sip:alice@contoso.com"
            and f"watch {sub.id()} of" in r.message,
            "the watch's outcome",
            since=since,
        )
        assert server.watched_count("sip:alice@contoso.com") == 1
        sub.cancel()
        for _ in range(100):
            if server.watched_count("sip:alice@contoso.com") == 0:
                break
            await asyncio.sleep(0.05)
        assert server.watched_count("sip:alice@contoso.com") == 0
        with pytest.raises(ocs.OcsError.InvalidArgument):
            await alice.subscribe("not a uri", Presence())

        # 4. An IM to a user who is offline: not delivered, with the reason.
        with pytest.raises(ocs.OcsError.NotDelivered) as failed:
            await alice.send_im("sip:carol@contoso.com", "are you there?")
        assert failed.value.reason == ocs.ImFailureReason.OFFLINE

        # 5. DisableIM handed out in-band: refused at once, naming the
        # policy and where it came from.
        server.set_uc_policy("DisableIM", "true")
        dave = ocs.OcsClient(config(server, "dave"))
        await dave.sign_in()
        await LOG.rec.wait_for(
            lambda r: r.event_id == 1500 and r.user == "sip:dave@contoso.com",
            "dave's policies",
            since=since,
        )
        with pytest.raises(ocs.OcsError.PolicyDenied) as denied:
            await dave.send_im("sip:alice@contoso.com", "hi")
        assert denied.value.policy == "DisableIM"
        assert denied.value.source == "in-band"

        # 6. Sign out: the call returns once the client has stopped.
        await alice.sign_out()
        await dave.sign_out()
        assert not alice.is_running() and not dave.is_running()
        with pytest.raises(ocs.OcsError.NotSignedIn):
            await alice.set_status(ocs.PresenceState.ONLINE, None)

    run(main())


def test_a_panic_below_the_ffi_is_an_error_for_that_call():
    server = ocs.SimServer.start(DOMAIN)
    with pytest.raises(Exception, match="on purpose"):
        server.panic_for_test()
    # The library carries on.
    server.add_user("erin", "CONTOSO", "erinpw")
    assert server.tcp_port() > 0
    assert ocs.version()
