"""The Python API against Kamailio on loopback (standard dialect: Digest,
PUBLISH/SUBSCRIBE with PIDF, page-mode MESSAGE). Kamailio's port comes
from OCS_KAMAILIO_PORT or target/kamailio.env (scripts/kamailio.sh start);
without it these tests are skipped."""

import pytest

import ocs
from conftest import LOG, Messages, Presence, kamailio_port, run

PORT = kamailio_port()
pytestmark = pytest.mark.skipif(
    PORT is None, reason="Kamailio is not running (scripts/kamailio.sh start)"
)


def config(user, **extra):
    return ocs.OcsConfig(
        uri=f"sip:{user}@127.0.0.1",
        auth_user=user,
        password=f"{user}pw",
        dialect=ocs.Dialect.STANDARD,
        server=ocs.ServerAddress(host="127.0.0.1", port=PORT, transport=ocs.Transport.TCP),
        **extra,
    )


# Kamailio's SQLite store sometimes answers 500 ("database is locked") to a
# PUBLISH or SUBSCRIBE; a client tries again, and so do these helpers.


async def publish(client, state, note):
    """Publishes and waits for Kamailio's answer (log events 1401/1402)."""
    for attempt in range(3):
        since = len(LOG.rec.items())
        await client.set_status(state, note)
        answer = await LOG.rec.wait_for(
            lambda r: r.user == client.uri() and r.event_id in (1401, 1402),
            f"Kamailio's answer to {client.uri()}'s PUBLISH",
            since=since,
        )
        if answer.event_id == 1401:
            return
    raise AssertionError(f"Kamailio refused the PUBLISH three times: {answer.message}")


async def watch(client, uri, pred, what):
    """Subscribes until a presence that `pred` accepts arrives."""
    for attempt in range(3):
        seen = Presence()
        sub = await client.subscribe(uri, seen)
        try:
            item = await seen.rec.wait_for(
                lambda i: i[0] == "ended" or pred(i[1]), what
            )
        except AssertionError:
            item = ("timeout",)
        if item[0] == "presence":
            return sub, seen
        sub.cancel()
    raise AssertionError(f"no {what} in three watches: {item}")


def test_digest_sign_in_presence_and_im(out_dir):
    trace = out_dir / "alice-kamailio.trace"
    trace.unlink(missing_ok=True)

    async def main():
        alice = ocs.OcsClient(config("alice", trace_path=str(trace)))
        bob = ocs.OcsClient(config("bob"))
        info = await alice.sign_in()
        assert info.auth_scheme == "Digest"
        await bob.sign_in()

        await publish(alice, ocs.PresenceState.ONLINE, None)
        sub, seen = await watch(
            bob,
            "sip:alice@127.0.0.1",
            lambda p: p.state == ocs.PresenceState.ONLINE,
            "alice online",
        )

        await publish(alice, ocs.PresenceState.BUSY, "in a Python meeting")
        p = await seen.wait(
            lambda p: p.state == ocs.PresenceState.BUSY and p.note == "in a Python meeting",
            "alice busy with her note",
        )
        assert p.uri == "sip:alice@127.0.0.1"

        inbox = Messages()
        bob.set_im_listener(inbox)
        message_id = await alice.send_im("sip:bob@127.0.0.1", "hello from Python")
        assert message_id > 0
        _, sender, _ = await inbox.rec.wait_for(
            lambda m: m[0] == "message" and m[2] == "hello from Python",
            "bob receives alice's message",
        )
        assert "alice" in sender

        sub.cancel()
        await alice.sign_out()
        await bob.sign_out()

    run(main())
    # The trace has the REGISTER and the MESSAGE, without the Digest response.
    text = trace.read_text(errors="replace")
    assert "REGISTER sip:" in text
    assert "MESSAGE sip:bob@127.0.0.1" in text
    assert 'response="' not in text


def test_wrong_password_is_an_auth_error():
    async def main():
        c = ocs.OcsClient(
            ocs.OcsConfig(
                uri="sip:alice@127.0.0.1",
                auth_user="alice",
                password="wrong",
                dialect=ocs.Dialect.STANDARD,
                server=ocs.ServerAddress(
                    host="127.0.0.1", port=PORT, transport=ocs.Transport.UDP
                ),
            )
        )
        with pytest.raises(ocs.OcsError.Auth):
            await c.sign_in()

    run(main())
