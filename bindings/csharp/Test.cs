// The C# wrapper's test against Kamailio on loopback (run.sh builds and runs
// it): alice and bob sign in, bob watches alice, alice sets MyStatus to Busy
// with a note and bob sees it through OnContactStatusChange, alice sends bob
// an IM that bob receives (and answers from inside his handler), both sign
// out. Exits 0 on success, 1 on a failed check, 3 when the watchdog fires.
//
// Usage: mono OcsTest.exe PORT   (Kamailio's UDP/TCP port on 127.0.0.1)
using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Threading;
using Ocs;

sealed class Failure : Exception
{
    public Failure(string message) : base(message)
    {
    }
}

/// <summary>
/// What one user's handlers saw. Handlers record under the lock; the test
/// thread waits for conditions on it.
/// </summary>
sealed class Peer
{
    public readonly string Name;
    public readonly OcsMessenger Messenger;
    public readonly object Mu = new object();
    public readonly List<OcsSigninEventArgs> Signins = new List<OcsSigninEventArgs>();
    public readonly List<OcsSignoutEventArgs> Signouts = new List<OcsSignoutEventArgs>();
    public readonly List<OcsMyStatusEventArgs> MyStatus = new List<OcsMyStatusEventArgs>();
    public readonly List<OcsContactStatusEventArgs> Contacts = new List<OcsContactStatusEventArgs>();
    public readonly List<OcsInstantMessageEventArgs> Ims = new List<OcsInstantMessageEventArgs>();
    public readonly List<ulong> Delivered = new List<ulong>();
    public readonly List<string> Failed = new List<string>();
    public readonly HashSet<string> HandlerThreads = new HashSet<string>();
    public Exception ReplyError;
    public bool Replied;

    public Peer(string name, SynchronizationContext context)
    {
        Name = name;
        Messenger = new OcsMessenger(context);
        Messenger.OnSignin += (o, e) => Record(() => Signins.Add(e), "OnSignin " + e.Result + " " + e.Message);
        Messenger.OnSignout += (o, e) => Record(() => Signouts.Add(e), "OnSignout byServer=" + e.ByServer + " " + e.Reason);
        Messenger.OnMyStatusChange += (o, e) =>
            Record(() => MyStatus.Add(e), "OnMyStatusChange " + e.Result + " " + e.Status + " " + e.Message);
        Messenger.OnContactStatusChange += (o, e) =>
            Record(() => Contacts.Add(e), "OnContactStatusChange " + e.SigninName + " " + e.Status + " \"" + e.Note + "\"");
        Messenger.OnInstantMessageReceived += (o, e) =>
            Record(() => Ims.Add(e), "OnInstantMessageReceived from " + e.SigninName + ": " + e.Text);
        Messenger.OnInstantMessageDelivered += (o, e) =>
            Record(() => Delivered.Add(e.MessageId), "OnInstantMessageDelivered " + e.MessageId);
        Messenger.OnInstantMessageFailed += (o, e) =>
            Record(() => Failed.Add(e.MessageId + ": " + e.Reason), "OnInstantMessageFailed " + e.MessageId + " " + e.Reason);
    }

    void Record(Action a, string what)
    {
        Console.WriteLine("  [{0}] {1} (thread \"{2}\")", Name, what, Thread.CurrentThread.Name);
        lock (Mu)
        {
            HandlerThreads.Add(Thread.CurrentThread.Name ?? "(unnamed)");
            a();
            Monitor.PulseAll(Mu);
        }
    }

    /// <summary>Waits until cond holds (checked under the lock) or fails.</summary>
    public void WaitFor(Func<bool> cond, string what, int seconds = 20)
    {
        DateTime until = DateTime.UtcNow.AddSeconds(seconds);
        lock (Mu)
        {
            while (!cond())
            {
                if (Failed.Count > 0)
                    throw new Failure(Name + ": an IM failed (" + Failed[0] + ") while waiting for: " + what);
                TimeSpan left = until - DateTime.UtcNow;
                if (left <= TimeSpan.Zero)
                    throw new Failure(Name + ": timed out after " + seconds + " s waiting for: " + what);
                Monitor.Wait(Mu, left);
            }
        }
        Console.WriteLine("ok: {0}: {1}", Name, what);
    }
}

/// <summary>
/// A single-threaded SynchronizationContext, as a UI thread's: posted
/// callbacks run one at a time, in order, on the "bob-ui" thread.
/// </summary>
sealed class LoopContext : SynchronizationContext
{
    readonly BlockingCollection<Action> queue = new BlockingCollection<Action>();
    readonly Thread thread;

    public LoopContext(string name)
    {
        thread = new Thread(() =>
        {
            SetSynchronizationContext(this);
            foreach (Action a in queue.GetConsumingEnumerable())
                a();
        }) { IsBackground = true, Name = name };
        thread.Start();
    }

    public override void Post(SendOrPostCallback d, object state)
    {
        queue.Add(() => d(state));
    }

    public override void Send(SendOrPostCallback d, object state)
    {
        throw new NotSupportedException();
    }

    public void Stop()
    {
        queue.CompleteAdding();
        thread.Join();
    }
}

static class Program
{
    const string AliceUri = "sip:alice@127.0.0.1";
    const string BobUri = "sip:bob@127.0.0.1";
    const string Note = "in a C# meeting — café ☕";
    const string Hello = "grüß dich, Bob ✓ 日本語";

    static void Check(bool ok, string what)
    {
        if (!ok)
            throw new Failure(what);
        Console.WriteLine("ok: " + what);
    }

    static void Throws<T>(Action a, string what, Func<T, bool> check = null) where T : Exception
    {
        try
        {
            a();
        }
        catch (T e)
        {
            if (check != null && !check(e))
                throw new Failure(what + ": wrong details: " + e.Message);
            Console.WriteLine("ok: {0} -> {1}: {2}", what, typeof(T).Name, e.Message);
            return;
        }
        throw new Failure(what + ": no " + typeof(T).Name);
    }

    static OcsSignInSettings Settings(string user, ushort port)
    {
        return new OcsSignInSettings
        {
            SigninName = user + "@127.0.0.1", // sip: is added
            User = user,
            Password = user + "pw",
            Dialect = OcsDialect.Standard,
            ServerHost = "127.0.0.1",
            ServerPort = port,
            Transport = OcsTransport.Tcp,
        };
    }

    static void Collect()
    {
        // The native side holds the callback and the userdata handles; a
        // full collection must not take them away.
        for (int i = 0; i < 3; i++)
        {
            var junk = new List<byte[]>();
            for (int j = 0; j < 1000; j++)
                junk.Add(new byte[1024]);
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
    }

    static void ArgumentChecks()
    {
        using (OcsMessenger m = new OcsMessenger())
        {
            Check(m.MyStatus == MiStatus.Offline && !m.IsSignedIn, "signed out: MyStatus is Offline");
            Throws<InvalidOperationException>(() => m.MyStatus = MiStatus.Busy, "MyStatus = Busy while signed out");
            Throws<ArgumentOutOfRangeException>(() => m.MyStatus = MiStatus.OnThePhone, "MyStatus = OnThePhone");
            Throws<InvalidOperationException>(() => m.InstantMessage(BobUri, "x"), "InstantMessage while signed out");
            OcsSignInSettings bad = Settings("alice", 9);
            bad.Transport = (OcsTransport)42;
            Throws<OcsException>(() => m.SignIn(bad), "SignIn(Transport = 42)",
                e => e.Result == OcsResult.InvalidInput && e.Detail.Contains("transport"));
            bad = Settings("alice", 9);
            bad.User = null;
            Throws<OcsException>(() => m.SignIn(bad), "SignIn(User = null)", e => e.Result == OcsResult.NullPointer);
            bad = Settings("alice", 9);
            bad.Password = "a\0b";
            Throws<ArgumentException>(() => m.SignIn(bad), "SignIn(Password with a NUL)");
            bad = Settings("alice", 9);
            bad.Password = "\ud800";
            Throws<ArgumentException>(() => m.SignIn(bad), "SignIn(Password with a lone surrogate)");
            OcsContact c = m.GetContact("Carol@Example.com");
            Check(c.SigninName == "sip:Carol@Example.com" && c.Status == MiStatus.Unknown,
                "GetContact adds sip: and starts Unknown");
            Check(ReferenceEquals(c, m.GetContact("<sip:carol@example.com>")), "GetContact: one object per address");
        }
    }

    static int Main(string[] args)
    {
        ushort port;
        if (args.Length != 1 || !ushort.TryParse(args[0], out port) || port == 0)
        {
            Console.Error.WriteLine("usage: mono OcsTest.exe KAMAILIO_PORT");
            return 2;
        }
        Thread watchdog = new Thread(() =>
        {
            Thread.Sleep(TimeSpan.FromSeconds(100));
            Console.Error.WriteLine("FAIL: the test took more than 100 s");
            Environment.Exit(3);
        }) { IsBackground = true };
        watchdog.Start();

        Console.WriteLine("ocs {0} C# wrapper test against Kamailio on 127.0.0.1:{1}", OcsMessenger.Version, port);
        LoopContext bobUi = new LoopContext("bob-ui");
        Peer alice = null, bob = null;
        try
        {
            ArgumentChecks();

            // alice's events come on the messenger's own event thread, bob's
            // through a SynchronizationContext (as on Outlook's UI thread).
            alice = new Peer("alice", null);
            bob = new Peer("bob", bobUi);
            Run(alice, bob, port);
            Console.WriteLine("PASS: C# wrapper test");
            return 0;
        }
        catch (Failure f)
        {
            Console.Error.WriteLine("FAIL: " + f.Message);
            return 1;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine("FAIL: unexpected " + e);
            return 1;
        }
        finally
        {
            if (alice != null)
                alice.Messenger.Dispose();
            if (bob != null)
                bob.Messenger.Dispose();
            bobUi.Stop();
        }
    }

    static void Run(Peer alice, Peer bob, ushort port)
    {
        OcsMessenger a = alice.Messenger, b = bob.Messenger;
        // bob answers an IM from inside his handler: a blocking call, fine
        // there because handlers never run on the library's thread.
        b.OnInstantMessageReceived += (o, e) =>
        {
            try
            {
                b.InstantMessage(e.SigninName, "re: " + e.Text);
            }
            catch (Exception x)
            {
                lock (bob.Mu)
                    bob.ReplyError = x;
            }
            lock (bob.Mu)
            {
                bob.Replied = true;
                Monitor.PulseAll(bob.Mu);
            }
        };

        a.SignIn(Settings("alice", port));
        b.SignIn(Settings("bob", port));
        Throws<InvalidOperationException>(() => a.SignIn(Settings("alice", port)), "SignIn twice");
        alice.WaitFor(() => alice.Signins.Count > 0, "OnSignin");
        bob.WaitFor(() => bob.Signins.Count > 0, "OnSignin");
        Check(alice.Signins[0].Result == OcsResult.Ok && bob.Signins[0].Result == OcsResult.Ok,
            "both signed in (OnSignin Result Ok)");
        Check(a.IsSignedIn && a.MySigninName == AliceUri, "alice: IsSignedIn, MySigninName " + a.MySigninName);
        alice.WaitFor(() => alice.MyStatus.Exists(e => e.Status == MiStatus.Online), "OnMyStatusChange Online at sign-in");
        Collect();

        // alice publishes Online; bob watches her.
        int before;
        lock (alice.Mu)
            before = alice.MyStatus.Count;
        a.MyStatus = MiStatus.Online;
        alice.WaitFor(() => alice.MyStatus.Count > before && alice.MyStatus[alice.MyStatus.Count - 1].Status == MiStatus.Online,
            "OnMyStatusChange Online (publication accepted)");
        OcsContact contact = b.GetContact("alice@127.0.0.1");
        bob.WaitFor(() => bob.Contacts.Exists(e => e.SigninName == AliceUri && e.Status == MiStatus.Online),
            "OnContactStatusChange: alice is Online", 30);
        Check(contact.Status == MiStatus.Online, "bob: GetContact(alice).Status is Online");
        Collect();

        // alice turns busy, with a note.
        a.SetMyStatus(MiStatus.Busy, Note);
        bob.WaitFor(() => bob.Contacts.Exists(e => e.SigninName == AliceUri && e.Status == MiStatus.Busy),
            "OnContactStatusChange: alice is Busy");
        OcsContactStatusEventArgs busy;
        lock (bob.Mu)
            busy = bob.Contacts.FindLast(e => e.Status == MiStatus.Busy);
        Check(ReferenceEquals(busy.Contact, contact), "the event's Contact is the GetContact object");
        Check(busy.Note == Note, "bob: alice's note is \"" + busy.Note + "\"");
        Check(contact.Status == MiStatus.Busy && contact.Note == Note, "bob: contact.Status is Busy, Note set");
        alice.WaitFor(() => alice.MyStatus.Exists(e => e.Status == MiStatus.Busy), "OnMyStatusChange Busy");
        Check(a.MyStatus == MiStatus.Busy, "alice: MyStatus reads Busy");

        // An IM from alice to bob; bob answers from his handler.
        ulong id = a.InstantMessage("bob@127.0.0.1", Hello);
        Console.WriteLine("ok: alice: InstantMessage returned id {0}", id);
        bob.WaitFor(() => bob.Ims.Count > 0, "OnInstantMessageReceived");
        OcsInstantMessageEventArgs im;
        lock (bob.Mu)
            im = bob.Ims[0];
        Check(im.Text == Hello && im.SigninName.Contains("alice"),
            "bob: received \"" + im.Text + "\" from " + im.SigninName);
        alice.WaitFor(() => alice.Delivered.Contains(id), "OnInstantMessageDelivered " + id);
        bob.WaitFor(() => bob.Replied, "answered from inside the handler");
        Check(bob.ReplyError == null, "bob: InstantMessage inside a handler worked" +
            (bob.ReplyError == null ? "" : ": " + bob.ReplyError.Message));
        alice.WaitFor(() => alice.Ims.Exists(e => e.Text == "re: " + Hello), "OnInstantMessageReceived (bob's answer)");

        // Handlers ran where the constructor said, never on "ocs-events".
        lock (alice.Mu)
            Check(alice.HandlerThreads.Count == 1 && alice.HandlerThreads.Contains("OcsMessenger events"),
                "alice: every handler ran on \"OcsMessenger events\"");
        lock (bob.Mu)
            Check(bob.HandlerThreads.Count == 1 && bob.HandlerThreads.Contains("bob-ui"),
                "bob: every handler ran on the SynchronizationContext's thread \"bob-ui\"");

        a.SignOut();
        b.SignOut();
        alice.WaitFor(() => alice.Signouts.Count > 0, "OnSignout");
        bob.WaitFor(() => bob.Signouts.Count > 0, "OnSignout");
        alice.WaitFor(() => alice.MyStatus[alice.MyStatus.Count - 1].Status == MiStatus.Offline,
            "OnMyStatusChange Offline at sign-out");
        Check(a.MyStatus == MiStatus.Offline && !a.IsSignedIn, "alice: MyStatus reads Offline after sign-out");
        Check(contact.Status == MiStatus.Unknown, "bob: contact.Status is Unknown after sign-out");

        a.Dispose();
        Throws<ObjectDisposedException>(() => a.GetContact(BobUri), "GetContact after Dispose");
    }
}
