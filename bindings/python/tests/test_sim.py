"""The Python API against the embedded OCS 2007 R2-dialect test server
(`ocs.SimServer`, test support): NTLM sign-in with signed messages,
enhanced presence, IM sessions, policies, diagnostics, errors."""

import asyncio
import functools
import http.client
import http.server
import json
import threading
import urllib.parse

import pytest

import ocs
from conftest import LOG, Messages, Presence, Recorder, run

DOMAIN = "contoso.com"


@pytest.fixture(scope="module")
def sim():
    server = ocs.SimServer.start(DOMAIN)
    for user in ("alice", "bob", "carol"):
        server.add_user(user, "CONTOSO", f"{user}pw")
    return server


def config(sim, user, password=None, **extra):
    return ocs.OcsConfig(
        uri=f"sip:{user}@{DOMAIN}",
        auth_user=f"CONTOSO\\{user}",
        password=password or f"{user}pw",
        dialect=ocs.Dialect.OCS,
        server=ocs.ServerAddress(
            host="127.0.0.1", port=sim.tcp_port(), transport=ocs.Transport.TCP
        ),
        **extra,
    )


def test_two_users_publish_watch_and_message(sim):
    async def main():
        alice = ocs.OcsClient(config(sim, "alice"))
        bob = ocs.OcsClient(config(sim, "bob"))
        info = await alice.sign_in()
        assert info.auth_scheme == "NTLM"
        assert info.gruu and info.gruu.startswith("sip:alice@contoso.com;")
        assert info.expires_secs > 0
        await bob.sign_in()
        assert alice.is_running() and bob.is_running()

        # bob watches alice; alice turns busy with a note.
        seen = Presence()
        sub = await bob.subscribe("sip:alice@contoso.com", seen)
        assert sub.uri() == "sip:alice@contoso.com"
        await alice.set_status(ocs.PresenceState.BUSY, "in a Python meeting")
        p = await seen.wait(
            lambda p: p.state == ocs.PresenceState.BUSY
            and p.note == "in a Python meeting",
            "alice busy with her note",
        )
        assert p.availability == 6500
        assert p.uri == "sip:alice@contoso.com"

        # A new note keeps the state.
        await alice.set_note("back at 3")
        await seen.wait(
            lambda p: p.state == ocs.PresenceState.BUSY and p.note == "back at 3",
            "alice's new note, still busy",
        )

        # A custom state shows its text.
        await alice.set_custom_state(
            ocs.CustomAvailability.DO_NOT_DISTURB, 1033, "Writing Python", None
        )
        await seen.wait(
            lambda p: p.custom_text == "Writing Python"
            and p.state == ocs.PresenceState.DO_NOT_DISTURB,
            "alice's custom state",
        )

        # IM: delivered to bob's listener, the call returns the message id.
        inbox = Messages()
        bob.set_im_listener(inbox)
        alice.send_typing("sip:bob@contoso.com", True)
        message_id = await alice.send_im("sip:bob@contoso.com", "Hello from Python")
        assert message_id > 0
        await inbox.rec.wait_for(
            lambda m: m == ("message", "sip:alice@contoso.com", "Hello from Python"),
            "bob receives alice's message",
        )
        reply_id = await bob.send_im("sip:alice@contoso.com", "Hi alice")
        assert reply_id > 0

        # bob stops watching: alice's next change no longer reaches him.
        sub.cancel()
        sub.cancel()  # a second cancel does nothing
        seen.rec.clear()
        await alice.set_status(ocs.PresenceState.AWAY, None)
        await asyncio.sleep(1.0)
        assert [i for i in seen.rec.items() if i[0] == "presence"] == []

        await alice.sign_out()
        await bob.sign_out()
        assert not alice.is_running()
        await alice.sign_out()  # signing out twice is fine

    run(main())
    # The logger saw both sign-ins with their stable ids and severities.
    records = LOG.rec.items()
    assert any(
        r.event_id == 1100 and r.level == ocs.LogLevel.INFO and r.user == "sip:alice@contoso.com"
        for r in records
    )
    # Message texts are not logged.
    assert not any("Hello from Python" in r.message for r in records)


def test_appear_offline_needs_the_policy(sim, out_dir):
    policy = out_dir / "appear-offline.reg"
    policy.write_text(
        "Windows Registry Editor Version 5.00\r\n\r\n"
        "[HKEY_CURRENT_USER\\Software\\Policies\\Microsoft\\Communicator]\r\n"
        '"EnableAppearOffline"=dword:00000001\r\n'
    )

    async def main():
        alice = ocs.OcsClient(config(sim, "alice"))
        carol = ocs.OcsClient(config(sim, "carol", policy_files=[str(policy)]))
        bob = ocs.OcsClient(config(sim, "bob"))
        for c in (alice, carol, bob):
            await c.sign_in()

        # Without the policy the core refuses, naming the policy and its source.
        with pytest.raises(ocs.OcsError.PolicyDenied) as denied:
            await alice.appear_offline()
        assert denied.value.policy == "EnableAppearOffline"
        assert denied.value.source == "default"

        explained = carol.policy_explain("enableappearoffline")
        assert explained.name == "EnableAppearOffline"
        assert explained.value == "1"
        assert explained.source == "HKCU"
        assert explained.location.endswith("appear-offline.reg:4")
        assert explained.explanation
        assert alice.policy_explain("NoSuchPolicy") is None

        # With it, carol appears offline (18500) to bob while signed in.
        seen = Presence()
        sub = await bob.subscribe("sip:carol@contoso.com", seen)
        await carol.set_status(ocs.PresenceState.ONLINE, None)
        await seen.wait(lambda p: p.state == ocs.PresenceState.ONLINE, "carol online")
        await carol.appear_offline("not here")
        p = await seen.wait(lambda p: p.availability == 18500, "carol appearing offline")
        assert p.state == ocs.PresenceState.OFFLINE
        del sub  # dropping a subscription cancels it

        for c in (alice, carol, bob):
            await c.sign_out()

    run(main())


def serve_states(out_dir, text):
    """Writes a custom-states file and serves out_dir on loopback (a
    CustomStateURL must be http(s) for OC 2007 R2); the server and the URL."""
    states = out_dir / "custom-states.xml"
    states.write_text(
        '<?xml version="1.0"?>\n'
        '<customStates xmlns="http://schemas.microsoft.com/09/2009/communicator/customStates">\n'
        '  <customState ID="1" availability="busy">\n'
        f'    <activity LCID="1033">{text}</activity>\n'
        '    <activity LCID="1031">Im Python-Seminar</activity>\n'
        "  </customState>\n"
        "</customStates>\n"
    )
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(out_dir)
    )
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/custom-states.xml"


async def loaded_states(client):
    for _ in range(200):
        if client.custom_states():
            return client.custom_states()
        await asyncio.sleep(0.05)
    raise AssertionError("no custom states within 10 s")


def test_diagnostics_and_custom_states(sim, out_dir):
    httpd, url = serve_states(out_dir, "In a Python seminar")

    async def main():
        alice = ocs.OcsClient(config(sim, "alice", custom_state_url=url))
        assert alice.custom_states() == []
        with pytest.raises(ocs.OcsError.NotSignedIn):
            await alice.diagnostics()
        await alice.sign_in()
        diag = json.loads(await alice.diagnostics())
        assert diag["sip_uri"] == "sip:alice@contoso.com"
        assert diag["dialect"] == "ocs"
        assert diag["registration"]["state"] == "registered"
        [state] = await loaded_states(alice)
        assert state.id == 1
        assert state.availability == ocs.CustomAvailability.BUSY
        assert ocs.LocalizedText(lcid=1031, text="Im Python-Seminar") in state.texts
        await alice.sign_out()

    try:
        run(main())
    finally:
        httpd.shutdown()


class AppHttp(ocs.HttpTransport):
    """The app's own HTTP stack (here Python's http.client), as a mobile
    app hands in OkHttp or URLSession: the library's web requests go
    through it, the body back in small pieces."""

    def __init__(self):
        self.asked = []

    def send(self, request, response):
        self.asked.append(request)
        try:
            u = urllib.parse.urlsplit(request.url)
            conn = http.client.HTTPConnection(
                u.hostname, u.port, timeout=request.timeout_ms / 1000
            )
            conn.request(
                request.method,
                u.path + (f"?{u.query}" if u.query else ""),
                body=bytes(request.body) if request.method == "POST" else None,
                headers={h.name: h.value for h in request.headers},
            )
            r = conn.getresponse()
            headers = [ocs.HttpHeader(name=n, value=v) for n, v in r.getheaders()]
            if not response.head(r.status, headers):
                return
            while piece := r.read(16):
                if not response.body(piece):
                    return
            response.end()
            conn.close()
        except OSError as e:
            response.fail(str(e), isinstance(e, TimeoutError))


def test_custom_states_through_the_apps_http(sim, out_dir):
    httpd, url = serve_states(out_dir, "Fetched by the app")
    app_http = AppHttp()

    async def main():
        bob = ocs.OcsClient.with_http(config(sim, "bob", custom_state_url=url), app_http)
        await bob.sign_in()
        [state] = await loaded_states(bob)
        assert ocs.LocalizedText(lcid=1033, text="Fetched by the app") in state.texts
        assert [(r.method, r.url) for r in app_http.asked] == [("GET", url)]
        await bob.sign_out()

    try:
        run(main())
    finally:
        httpd.shutdown()


def test_errors_a_host_branches_on(sim):
    async def main():
        # A bad URI is refused up front.
        with pytest.raises(ocs.OcsError.InvalidArgument):
            ocs.OcsClient(
                ocs.OcsConfig(
                    uri="not a uri", auth_user="x", password="y", dialect=ocs.Dialect.OCS
                )
            )
        with pytest.raises(ocs.OcsError.InvalidArgument):
            ocs.OcsClient(config(sim, "alice", policy_files=["/nonexistent.reg"]))

        # Nothing works before sign-in.
        alice = ocs.OcsClient(config(sim, "alice"))
        with pytest.raises(ocs.OcsError.NotSignedIn):
            await alice.send_im("sip:bob@contoso.com", "x")
        with pytest.raises(ocs.OcsError.NotSignedIn):
            await alice.set_idle(60)

        # A wrong password is an authentication error, and the client stops.
        wrong = ocs.OcsClient(config(sim, "bob", password="wrong"))
        with pytest.raises(ocs.OcsError.Auth):
            await wrong.sign_in()
        assert not wrong.is_running()

        # No server: a network error.
        nowhere = ocs.OcsClient(
            ocs.OcsConfig(
                uri="sip:alice@contoso.com",
                auth_user="CONTOSO\\alice",
                password="alicepw",
                dialect=ocs.Dialect.OCS,
                server=ocs.ServerAddress(
                    host="127.0.0.1", port=9, transport=ocs.Transport.TCP
                ),
            )
        )
        with pytest.raises(ocs.OcsError.Network):
            await nowhere.sign_in()

        # Signed in: a second sign-in is a caller mistake; an IM to a user
        # who is not signed in is not delivered, with the reason.
        await alice.sign_in()
        with pytest.raises(ocs.OcsError.InvalidArgument):
            await alice.sign_in()
        with pytest.raises(ocs.OcsError.NotDelivered) as failed:
            await alice.send_im("sip:carol@contoso.com", "are you there?")
        assert failed.value.reason == ocs.ImFailureReason.OFFLINE
        with pytest.raises(ocs.OcsError.InvalidArgument):
            await alice.subscribe("not a uri", Presence())
        await alice.sign_out()

        # After a sign-out the same client signs in again.
        await alice.sign_in()
        await alice.sign_out()

    run(main())


def test_a_throwing_listener_does_not_stop_the_client(sim):
    class Broken(ocs.PresenceListener):
        def on_presence(self, presence):
            raise RuntimeError("host bug")

        def on_ended(self, uri, reason):
            raise RuntimeError("host bug")

    async def main():
        alice = ocs.OcsClient(config(sim, "alice"))
        bob = ocs.OcsClient(config(sim, "bob"))
        await alice.sign_in()
        await bob.sign_in()
        broken = await bob.subscribe("sip:alice@contoso.com", Broken())
        seen = Presence()
        sub = await bob.subscribe("sip:alice@contoso.com", seen)
        await alice.set_status(ocs.PresenceState.BE_RIGHT_BACK, None)
        await seen.wait(lambda p: p.state == ocs.PresenceState.BE_RIGHT_BACK, "alice brb")
        await LOG.rec.wait_for(
            lambda r: r.event_id == 0
            and r.level == ocs.LogLevel.ERROR
            and "PresenceListener.on_presence" in r.message,
            "the listener's failure in the log",
        )
        # The client carries on.
        await bob.send_im("sip:alice@contoso.com", "still here")
        broken.cancel()
        sub.cancel()
        await alice.sign_out()
        await bob.sign_out()

    run(main())


def test_contact_list(sim):
    class Lists(ocs.ContactListListener):
        def __init__(self):
            self.rec = Recorder()

        def on_contact_list(self, contact_list):
            self.rec.add(contact_list)

    def group_id(contact_list, name):
        return next(g.id for g in contact_list.groups if g.name == name)

    async def main():
        alice = ocs.OcsClient(config(sim, "alice"))
        lists = Lists()
        alice.set_contact_list_listener(lists)
        with pytest.raises(ocs.OcsError.NotSignedIn):
            await alice.contact_list()
        await alice.sign_in()
        # The server sends the list after sign-in.
        await lists.rec.wait_for(lambda l: True, "the contact list after sign-in")
        first = await alice.contact_list()
        assert first is not None
        assert any(g.name == "~" for g in first.groups)

        friends = await alice.add_group("Friends")
        await alice.add_contact("sip:bob@contoso.com", "Friends")
        await alice.add_contact("sip:carol@contoso.com")
        now = await alice.contact_list()
        assert group_id(now, "Friends") == friends
        bob = next(c for c in now.contacts if c.uri == "sip:bob@contoso.com")
        assert bob.group_ids == [friends]
        carol = next(c for c in now.contacts if c.uri == "sip:carol@contoso.com")
        assert carol.group_ids == [group_id(now, "~")]
        await lists.rec.wait_for(
            lambda l: any(c.uri == "sip:carol@contoso.com" for c in l.contacts),
            "the listener sees carol added",
        )

        await alice.move_contact("sip:carol@contoso.com", "Friends")
        await alice.rename_group("Friends", "Pals")
        now = await alice.contact_list()
        pals = group_id(now, "Pals")
        assert pals == friends
        assert all(pals in c.group_ids for c in now.contacts)

        # Changes the list cannot take are refused with the reason.
        with pytest.raises(ocs.OcsError.InvalidArgument, match="No such group"):
            await alice.rename_group("No such group", "x")
        with pytest.raises(ocs.OcsError.InvalidArgument, match="default group"):
            await alice.remove_group("~")

        await alice.remove_contact("sip:bob@contoso.com")
        await alice.remove_contact("sip:carol@contoso.com")
        await alice.remove_group("Pals")
        now = await alice.contact_list()
        assert now.contacts == []
        assert [g.name for g in now.groups] == ["~"]
        await alice.sign_out()

    run(main())
