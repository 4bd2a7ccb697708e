// The hosts' common scenario, in C#, against the embedded test server
// (OcsTestServer; the same steps as bindings/c/scenario.c and
// bindings/python/tests/test_scenario.py): every command has an id and
// exactly one outcome.
//
//   1. alice signs in (OnSignin).
//   2. The server refuses publications (403): SetMyStatus returns an id and
//      exactly one OnMyStatusChange with that PublishId says Rejected.
//   3. She watches bob (GetContact; the server sees the subscription), then
//      removes him (the server sees it end).
//   4. Her IM to carol, who is offline, ends in OnInstantMessageFailed with
//      its id and the reason.
//   5. DisableIM is handed out in-band: dave's IM is refused at once with
//      OcsResult.PolicyDenied naming the policy and its source.
//   6. Both sign out (OnSignout).
//   7. A panic inside the library is an error for that call, nothing more.
//
// run.sh builds and runs it. Exits 0 on success, 1 on a failed check.
using System;
using System.Collections.Generic;
using System.Threading;
using Ocs;

static class Scenario
{
    const int TimeoutMs = 10000;

    sealed class Seen
    {
        public readonly object Mu = new object();
        public readonly List<string> Log = new List<string>();
        public readonly List<OcsMyStatusEventArgs> Status = new List<OcsMyStatusEventArgs>();
        public readonly List<OcsMessageOutcomeEventArgs> Failed = new List<OcsMessageOutcomeEventArgs>();
        public readonly List<OcsMessageOutcomeEventArgs> Delivered = new List<OcsMessageOutcomeEventArgs>();
        public bool SignedIn, SignedOut, Policies;

        public void Add(string name, string what, Action a)
        {
            lock (Mu)
            {
                a();
                Log.Add(what);
                Monitor.PulseAll(Mu);
            }
            Console.WriteLine("  [" + name + "] " + what);
        }

        public void WaitFor(Func<bool> done, string what)
        {
            DateTime until = DateTime.UtcNow.AddMilliseconds(TimeoutMs);
            lock (Mu)
            {
                while (!done())
                {
                    int left = (int)(until - DateTime.UtcNow).TotalMilliseconds;
                    if (left <= 0 || !Monitor.Wait(Mu, left) && !done())
                        throw new Exception("timed out waiting for " + what);
                }
            }
            Console.WriteLine("ok: " + what);
        }
    }

    static OcsMessenger Messenger(string name, Seen seen)
    {
        OcsMessenger m = new OcsMessenger(null);
        m.OnSignin += (o, e) => seen.Add(name, "OnSignin " + e.Result, () => seen.SignedIn = e.Result == OcsResult.Ok);
        m.OnSignout += (o, e) => seen.Add(name, "OnSignout", () => seen.SignedOut = true);
        m.OnMyStatusChange += (o, e) =>
            seen.Add(name, "OnMyStatusChange #" + e.PublishId + " " + e.Result + " " + e.Status + " " + e.Message,
                () => seen.Status.Add(e));
        m.OnInstantMessageFailed += (o, e) =>
            seen.Add(name, "OnInstantMessageFailed " + e.MessageId + " " + e.Reason, () => seen.Failed.Add(e));
        m.OnInstantMessageDelivered += (o, e) =>
            seen.Add(name, "OnInstantMessageDelivered " + e.MessageId, () => seen.Delivered.Add(e));
        m.OnPoliciesReceived += (o, e) => seen.Add(name, "OnPoliciesReceived", () => seen.Policies = true);
        return m;
    }

    static OcsSignInSettings Settings(OcsTestServer server, string user)
    {
        return new OcsSignInSettings
        {
            SigninName = "sip:" + user + "@contoso.com",
            User = "CONTOSO\\" + user,
            Password = user + "pw",
            Dialect = OcsDialect.Ocs,
            ServerHost = "127.0.0.1",
            ServerPort = server.Port,
            Transport = OcsTransport.Tcp,
        };
    }

    static void Check(bool ok, string what)
    {
        if (!ok)
            throw new Exception(what);
        Console.WriteLine("ok: " + what);
    }

    static void ServerSees(OcsTestServer server, uint want, string what)
    {
        DateTime until = DateTime.UtcNow.AddMilliseconds(TimeoutMs);
        while (server.WatchedCount("sip:alice@contoso.com") != want)
        {
            if (DateTime.UtcNow > until)
                throw new Exception("timed out waiting for: " + what);
            Thread.Sleep(50);
        }
        Console.WriteLine("ok: server: " + what);
    }

    static int Main()
    {
        try
        {
            Run();
            Console.WriteLine("PASS: C# scenario");
            return 0;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine("FAIL: " + e.Message);
            return 1;
        }
    }

    static void Run()
    {
        using (OcsTestServer server = new OcsTestServer("contoso.com"))
        {
            foreach (string u in new[] { "alice", "bob", "carol", "dave" })
                server.AddUser(u, "CONTOSO", u + "pw");
            Seen a = new Seen(), d = new Seen();
            using (OcsMessenger alice = Messenger("alice", a))
            using (OcsMessenger dave = Messenger("dave", d))
            {
                // 1. Sign in.
                alice.SignIn(Settings(server, "alice"));
                a.WaitFor(() => a.SignedIn, "alice signed in");

                // 2. A publication the server refuses.
                server.RefusePublications(403);
                ulong refused = alice.SetMyStatus(MiStatus.Busy, "refused");
                Check(refused != 0, "SetMyStatus returned id " + refused);
                a.WaitFor(() => a.Status.Exists(s => s.PublishId == refused), "the outcome of publication " + refused);
                OcsMyStatusEventArgs outcome = a.Status.Find(s => s.PublishId == refused);
                Check(outcome.Result == OcsResult.Rejected && outcome.Message.Contains("403"),
                    "publication " + refused + " was rejected: " + outcome.Message);
                server.RefusePublications(0);
                ulong accepted = alice.SetMyStatus(MiStatus.Busy, "accepted");
                a.WaitFor(() => a.Status.Exists(s => s.PublishId == accepted && s.Result == OcsResult.Ok),
                    "publication " + accepted + " accepted");

                // 3. Watch bob, then stop: the server sees both.
                alice.GetContact("sip:bob@contoso.com");
                ServerSees(server, 1, "alice watches bob");
                alice.RemoveContact("sip:bob@contoso.com");
                ServerSees(server, 0, "alice's watch of bob ended");

                // 4. An IM to a user who is offline.
                ulong im = alice.InstantMessage("sip:carol@contoso.com", "are you there?");
                a.WaitFor(() => a.Failed.Exists(f => f.MessageId == im), "the outcome of IM " + im);
                Check(a.Failed.Find(f => f.MessageId == im).Reason.Length > 0 && !a.Delivered.Exists(x => x.MessageId == im),
                    "IM " + im + " to offline carol failed with a reason");

                // 5. DisableIM, handed out in-band.
                server.SetUcPolicy("DisableIM", "true");
                dave.SignIn(Settings(server, "dave"));
                d.WaitFor(() => d.SignedIn && d.Policies, "dave signed in with the server's policies");
                try
                {
                    dave.InstantMessage("sip:alice@contoso.com", "hi");
                    throw new Exception("DisableIM did not stop dave's IM");
                }
                catch (OcsException e)
                {
                    Check(e.Result == OcsResult.PolicyDenied && e.Detail.Contains("DisableIM") && e.Detail.Contains("in-band"),
                        "dave's IM refused: " + e.Detail);
                }

                // 6. Sign out.
                alice.SignOut();
                dave.SignOut();
                a.WaitFor(() => a.SignedOut, "alice signed out");
                d.WaitFor(() => d.SignedOut, "dave signed out");
                lock (a.Mu)
                {
                    Check(a.Status.FindAll(s => s.PublishId == refused).Count == 1
                        && a.Failed.FindAll(f => f.MessageId == im).Count == 1,
                        "each command ended exactly once");
                }
            }

            // 7. A panic below the FFI.
            try
            {
                OcsTestServer.PanicForTest();
                throw new Exception("no error from a panic");
            }
            catch (OcsException e)
            {
                Check(e.Result == OcsResult.Panic && e.Detail.Contains("on purpose"), "a panic is an error: " + e.Detail);
            }
            Check(server.WatchedCount("sip:alice@contoso.com") == 0, "the library carries on after a panic");
        }
    }
}
