// Ocs.cs: a C# wrapper over the ocs C API (bindings/c/ocs.h), shaped like
// the Office Communicator Automation API (IMessenger / DMessengerEvents) so
// an Outlook add-in written against that API moves over with few changes.
//
// Build: mcs -d:TRACE -target:library -out:Ocs.dll Ocs.cs (C# 6, .NET
// Framework 4.5 or Mono; TRACE keeps the Trace.TraceError reports). At run
// time the native library ocs_ffi (libocs_ffi.so, ocs_ffi.dll or
// libocs_ffi.dylib from `cargo build -p ocs-ffi`) must be where the loader
// finds it.
//
// Threads: the C API reports events on its own thread ("ocs-events", one
// per signed-in client). This wrapper never runs your handlers there: the
// native callback only copies the event, updates the cached state
// (MyStatus, contacts' Status) and queues the handler call. Handlers run on
// the SynchronizationContext given to (or current at) the OcsMessenger
// constructor, e.g. Outlook's UI thread, or, without one, on a single
// event thread per messenger ("OcsMessenger events"), one at a time and in
// the order the events happened. So a handler may call every method here,
// including the blocking ones (MyStatus, InstantMessage), which the C API
// refuses on its own thread. On that thread the wrapper itself calls only
// what ocs.h allows there: ocs_client_sign_out, and ocs_client_free once the
// client reported that it stopped.
//
// Lifetime: the native callback is one static delegate, alive for the whole
// process; each sign-in passes a GCHandle to its session as userdata and
// frees it only after ocs_client_free returned (no callback can run then).
// The OcsClient* sits in a SafeHandle, so Dispose never frees it under a
// call still running on another thread.
using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace Ocs
{
    /// <summary>
    /// A presence status. The names and values are those of the Communicator
    /// Automation API's MISTATUS, so existing code can cast between them.
    /// </summary>
    /// <remarks>
    /// The library reports Unknown, Offline, Online, MayBeAvailable
    /// (inactive: online but idle), Busy, BeRightBack, Away and
    /// DoNotDisturb. Busy-and-idle is reported as Busy (MISTATUS has no
    /// such value). The other members exist for source compatibility only.
    /// </remarks>
    public enum MiStatus
    {
        /// <summary>Not known (not watched yet, or the watch failed).</summary>
        Unknown = 0x0000,
        /// <summary>Offline, or appearing offline.</summary>
        Offline = 0x0001,
        /// <summary>Online (available).</summary>
        Online = 0x0002,
        /// <summary>Appear offline; setting it is the same as Offline.</summary>
        Invisible = 0x0006,
        /// <summary>Busy.</summary>
        Busy = 0x000A,
        /// <summary>Be right back.</summary>
        BeRightBack = 0x000E,
        /// <summary>Idle; setting it is the same as MayBeAvailable.</summary>
        Idle = 0x0012,
        /// <summary>Away.</summary>
        Away = 0x0022,
        /// <summary>Not reported or settable here.</summary>
        OnThePhone = 0x0032,
        /// <summary>Not reported or settable here.</summary>
        OutToLunch = 0x0042,
        /// <summary>Not reported or settable here.</summary>
        InAMeeting = 0x0052,
        /// <summary>Not reported or settable here.</summary>
        OutOfOffice = 0x0062,
        /// <summary>Do not disturb.</summary>
        DoNotDisturb = 0x0072,
        /// <summary>Not reported or settable here.</summary>
        InAConference = 0x0082,
        /// <summary>Not reported or settable here.</summary>
        AllowUrgentInterruptions = 0x0092,
        /// <summary>Inactive: online, but idle for a while.</summary>
        MayBeAvailable = 0x00A2,
        /// <summary>Not reported or settable here.</summary>
        Custom = 0x00B2,
        /// <summary>Not reported or settable here.</summary>
        LocalFindingServer = 0x0100,
        /// <summary>Not reported or settable here.</summary>
        LocalConnectingToServer = 0x0200,
        /// <summary>Not reported or settable here.</summary>
        LocalSynchronizingWithServer = 0x0300,
        /// <summary>Not reported or settable here.</summary>
        LocalDisconnectingFromServer = 0x0400,
    }

    /// <summary>Which protocol rules the client follows.</summary>
    public enum OcsDialect
    {
        /// <summary>Office Communicator 2007 R2 against OCS (NTLM).</summary>
        Ocs = 0,
        /// <summary>Standard SIP/SIMPLE (Digest, PIDF), e.g. Kamailio.</summary>
        Standard = 1,
    }

    /// <summary>A SIP transport.</summary>
    public enum OcsTransport
    {
        /// <summary>UDP (never used by OCS 2007 R2).</summary>
        Udp = 0,
        /// <summary>TCP.</summary>
        Tcp = 1,
        /// <summary>TLS over TCP.</summary>
        Tls = 2,
    }

    /// <summary>The C API's result codes (OcsResult in ocs.h).</summary>
    public enum OcsResult
    {
        /// <summary>Success.</summary>
        Ok = 0,
        /// <summary>Bad input or a caller mistake.</summary>
        InvalidInput = 1,
        /// <summary>The server or the peer refused.</summary>
        Rejected = 2,
        /// <summary>A policy forbids the action.</summary>
        PolicyDenied = 3,
        /// <summary>Network or transport trouble.</summary>
        Network = 4,
        /// <summary>Authentication failed.</summary>
        Authentication = 5,
        /// <summary>Anything else.</summary>
        Internal = 6,
        /// <summary>A required argument was null.</summary>
        NullPointer = 7,
        /// <summary>The library panicked.</summary>
        Panic = 8,
        /// <summary>A string was not valid UTF-8.</summary>
        Utf8 = 9,
        /// <summary>A blocking call was made on an ocs thread.</summary>
        WrongThread = 10,
        /// <summary>The client has stopped (or is signing out).</summary>
        Stopped = 11,
        /// <summary>The command was cancelled before it completed.</summary>
        Cancelled = 12,
    }

    /// <summary>A failed call into the library.</summary>
    public sealed class OcsException : Exception
    {
        /// <summary>The result code.</summary>
        public OcsResult Result { get; private set; }

        /// <summary>The library's details (may be empty).</summary>
        public string Detail { get; private set; }

        internal OcsException(OcsResult result, string detail)
            : base(Describe(result, detail))
        {
            Result = result;
            Detail = detail;
        }

        static string Describe(OcsResult result, string detail)
        {
            string name = Native.ResultMessage(result);
            return string.IsNullOrEmpty(detail) ? name : name + ": " + detail;
        }
    }

    /// <summary>Where and how to sign in.</summary>
    public sealed class OcsSignInSettings
    {
        /// <summary>The user's SIP address, e.g. sip:alice@contoso.com.</summary>
        public string SigninName { get; set; }
        /// <summary>The account: CONTOSO\alice for NTLM, alice for Digest.</summary>
        public string User { get; set; }
        /// <summary>The password.</summary>
        public string Password { get; set; }
        /// <summary>The dialect (default: Ocs).</summary>
        public OcsDialect Dialect { get; set; }
        /// <summary>A server host name or address; null to find it through DNS.</summary>
        public string ServerHost { get; set; }
        /// <summary>The server's port; 0 for the transport's default.</summary>
        public ushort ServerPort { get; set; }
        /// <summary>The transport to ServerHost (default: Tls).</summary>
        public OcsTransport Transport { get; set; }
        /// <summary>The endpoint id (10 hex digits, one per install); null for a default.</summary>
        public string Epid { get; set; }
        /// <summary>A file for a SIP trace (credentials redacted); null for none.</summary>
        public string TracePath { get; set; }
        /// <summary>Write the trace as pcap instead of text.</summary>
        public bool TracePcap { get; set; }
        /// <summary>A folder for TLS-DSK certificates (Lync/SfB): set, the
        /// client provisions one when the pool asks and renews it; null for
        /// none.</summary>
        public string CertificateStore { get; set; }
        /// <summary>Find the server by Lync/SfB autodiscover from this URL
        /// (when ServerHost is null); null for DNS only.</summary>
        public string AutodiscoverUrl { get; set; }

        /// <summary>Settings with the OCS dialect and TLS.</summary>
        public OcsSignInSettings()
        {
            Dialect = OcsDialect.Ocs;
            Transport = OcsTransport.Tls;
        }
    }

    /// <summary>OnSignin: the sign-in finished, well or not.</summary>
    public sealed class OcsSigninEventArgs : EventArgs
    {
        /// <summary>Ok when signed in; otherwise why not.</summary>
        public OcsResult Result { get; private set; }
        /// <summary>Details of a failure (empty on success).</summary>
        public string Message { get; private set; }

        internal OcsSigninEventArgs(OcsResult result, string message)
        {
            Result = result;
            Message = message ?? "";
        }
    }

    /// <summary>OnSignout: the client has signed out and stopped.</summary>
    public sealed class OcsSignoutEventArgs : EventArgs
    {
        /// <summary>True when the server ended the session.</summary>
        public bool ByServer { get; private set; }
        /// <summary>The server's reason or the failure (may be empty).</summary>
        public string Reason { get; private set; }

        internal OcsSignoutEventArgs(bool byServer, string reason)
        {
            ByServer = byServer;
            Reason = reason ?? "";
        }
    }

    /// <summary>OnContactStatusChange: a contact's status or note changed.</summary>
    public sealed class OcsContactStatusEventArgs : EventArgs
    {
        /// <summary>The contact (its Status may have moved on since).</summary>
        public OcsContact Contact { get; private set; }
        /// <summary>The contact's SIP address.</summary>
        public string SigninName { get; private set; }
        /// <summary>The new status.</summary>
        public MiStatus Status { get; private set; }
        /// <summary>The contact's note (empty when none).</summary>
        public string Note { get; private set; }

        internal OcsContactStatusEventArgs(OcsContact contact, MiStatus status, string note)
        {
            Contact = contact;
            SigninName = contact.SigninName;
            Status = status;
            Note = note ?? "";
        }
    }

    /// <summary>OnMyStatusChange: our status changed, or a change was tried.</summary>
    public sealed class OcsMyStatusEventArgs : EventArgs
    {
        /// <summary>Ok, or why the last change failed.</summary>
        public OcsResult Result { get; private set; }
        /// <summary>Our status now.</summary>
        public MiStatus Status { get; private set; }
        /// <summary>Details of a failure (empty on success).</summary>
        public string Message { get; private set; }
        /// <summary>
        /// The id SetMyStatus returned for the change this reports; 0 for a
        /// change the library made by itself (a refresh, a reconnect).
        /// </summary>
        public ulong PublishId { get; private set; }

        internal OcsMyStatusEventArgs(OcsResult result, MiStatus status, string message, ulong publishId)
        {
            Result = result;
            Status = status;
            Message = message ?? "";
            PublishId = publishId;
        }
    }

    /// <summary>OnInstantMessageReceived: an IM arrived.</summary>
    public sealed class OcsInstantMessageEventArgs : EventArgs
    {
        /// <summary>The sender's SIP address.</summary>
        public string SigninName { get; private set; }
        /// <summary>The message as plain text.</summary>
        public string Text { get; private set; }

        internal OcsInstantMessageEventArgs(string signinName, string text)
        {
            SigninName = signinName;
            Text = text;
        }
    }

    /// <summary>OnInstantMessageDelivered / OnInstantMessageFailed.</summary>
    public sealed class OcsMessageOutcomeEventArgs : EventArgs
    {
        /// <summary>The id InstantMessage returned.</summary>
        public ulong MessageId { get; private set; }
        /// <summary>Why it failed (empty when delivered).</summary>
        public string Reason { get; private set; }

        internal OcsMessageOutcomeEventArgs(ulong messageId, string reason)
        {
            MessageId = messageId;
            Reason = reason ?? "";
        }
    }

    /// <summary>
    /// A contact, as IMessengerContact: its address and its presence status,
    /// kept current while the messenger is signed in. Made by
    /// <see cref="OcsMessenger.GetContact"/>.
    /// </summary>
    public sealed class OcsContact
    {
        readonly OcsMessenger messenger;
        // Guarded by the messenger's lock.
        internal MiStatus status;
        internal string note = "";
        internal int watchRetries;

        internal OcsContact(OcsMessenger messenger, string signinName)
        {
            this.messenger = messenger;
            SigninName = signinName;
        }

        /// <summary>The contact's SIP address (sip:user@domain).</summary>
        public string SigninName { get; private set; }

        /// <summary>
        /// The last status the server reported; Unknown until the first
        /// report and while signed out.
        /// </summary>
        public MiStatus Status
        {
            get { lock (messenger.Gate) return status; }
        }

        /// <summary>The contact's note (empty when none).</summary>
        public string Note
        {
            get { lock (messenger.Gate) return note; }
        }

        /// <summary>The messenger this contact belongs to.</summary>
        public OcsMessenger Messenger
        {
            get { return messenger; }
        }

        /// <summary>The contact's address.</summary>
        public override string ToString()
        {
            return SigninName;
        }
    }

    /// <summary>
    /// A signed-in user, as the Communicator Automation API's Messenger
    /// object: SignIn / SignOut, MyStatus, GetContact, InstantMessage and the
    /// DMessengerEvents-style events. Dispose it when done.
    /// </summary>
    /// <remarks>
    /// Every member may be called from any thread. Events are raised on the
    /// SynchronizationContext captured by the constructor or, without one,
    /// on this messenger's own event thread; never on the library's thread.
    /// </remarks>
    public sealed class OcsMessenger : IDisposable
    {
        /// <summary>How often a failed watch is tried again (1 s, 2 s, 4 s apart).</summary>
        const int MaxWatchRetries = 3;

        internal readonly object Gate = new object();
        readonly EventQueue events;
        readonly Dictionary<string, OcsContact> contacts = new Dictionary<string, OcsContact>();
        // Guarded by Gate.
        Session session;
        MiStatus myStatus = MiStatus.Offline;
        string signinName = "";
        bool disposed;

        /// <summary>
        /// A messenger whose events are raised on <paramref name="context"/>,
        /// or on SynchronizationContext.Current when null. Without either,
        /// events are raised on a private event thread.
        /// </summary>
        public OcsMessenger(SynchronizationContext context = null)
        {
            events = new EventQueue(context ?? SynchronizationContext.Current);
        }

        /// <summary>The library's version, e.g. "0.1.0".</summary>
        public static string Version
        {
            get { return Native.Utf8String(Native.ocs_version()); }
        }

        /// <summary>Sign-in finished: Result is Ok, or says why not.</summary>
        public event EventHandler<OcsSigninEventArgs> OnSignin;

        /// <summary>Signed out (by SignOut, by the server or after a failure).</summary>
        public event EventHandler<OcsSignoutEventArgs> OnSignout;

        /// <summary>A contact's status (or note) changed.</summary>
        public event EventHandler<OcsContactStatusEventArgs> OnContactStatusChange;

        /// <summary>
        /// Our status changed (sign-in, sign-out, a publication the server
        /// accepted), or setting it failed (Result is not Ok). Raised once
        /// for every accepted MyStatus change, even when it is the same.
        /// </summary>
        public event EventHandler<OcsMyStatusEventArgs> OnMyStatusChange;

        /// <summary>An instant message arrived.</summary>
        public event EventHandler<OcsInstantMessageEventArgs> OnInstantMessageReceived;

        /// <summary>A message sent by InstantMessage was delivered.</summary>
        public event EventHandler<OcsMessageOutcomeEventArgs> OnInstantMessageDelivered;

        /// <summary>A message sent by InstantMessage was not delivered.</summary>
        public event EventHandler<OcsMessageOutcomeEventArgs> OnInstantMessageFailed;

        /// <summary>
        /// The server's in-band policies arrived after sign-in (DisableIM and
        /// the others now apply).
        /// </summary>
        public event EventHandler<EventArgs> OnPoliciesReceived;

        /// <summary>Our SIP address (empty before the first SignIn).</summary>
        public string MySigninName
        {
            get { lock (Gate) return signinName; }
        }

        /// <summary>True between a successful OnSignin and the end of the session.</summary>
        public bool IsSignedIn
        {
            get { lock (Gate) return session != null && session.SignedIn; }
        }

        /// <summary>
        /// Our status. Reading gives the last status the server accepted
        /// (Online right after sign-in, Offline when signed out). Setting
        /// publishes it and returns once the library took it;
        /// OnMyStatusChange follows when the server accepted it (or failed).
        /// Settable: Online, Busy, BeRightBack, Away, DoNotDisturb,
        /// MayBeAvailable/Idle, Offline/Invisible (appear offline, only
        /// where the EnableAppearOffline policy allows it).
        /// </summary>
        /// <exception cref="ArgumentOutOfRangeException">a status that cannot be published.</exception>
        /// <exception cref="InvalidOperationException">not signed in.</exception>
        /// <exception cref="OcsException">the library refused it.</exception>
        public MiStatus MyStatus
        {
            get { lock (Gate) return myStatus; }
            set { SetMyStatus(value, null); }
        }

        /// <summary>Signs in with the OCS dialect, finding the server through DNS.</summary>
        public void SignIn(string signinName, string user, string password)
        {
            SignIn(new OcsSignInSettings { SigninName = signinName, User = user, Password = password });
        }

        /// <summary>
        /// Starts signing in and returns at once; OnSignin follows with the
        /// outcome (and, on success, OnMyStatusChange with Online). Contacts
        /// already made by GetContact are watched again.
        /// </summary>
        /// <exception cref="InvalidOperationException">already signed in or signing in.</exception>
        /// <exception cref="OcsException">the settings were refused.</exception>
        public void SignIn(OcsSignInSettings settings)
        {
            if (settings == null)
                throw new ArgumentNullException("settings");
            string uri = NormalizeUri(settings.SigninName);
            Session s;
            lock (Gate)
            {
                ThrowIfDisposed();
                if (session != null)
                    throw new InvalidOperationException("already signed in or signing in; SignOut first");
                s = new Session(this);
                session = s;
                signinName = uri;
            }
            bool started = false;
            try
            {
                StartClient(s, settings, uri);
                started = true;
            }
            finally
            {
                if (!started)
                {
                    lock (Gate)
                    {
                        if (session == s)
                            session = null;
                    }
                }
            }
            List<string> watch = new List<string>();
            bool ended, signOut;
            lock (Gate)
            {
                ended = s.Ended;
                signOut = s.SignOutRequested;
                if (!ended)
                {
                    foreach (KeyValuePair<string, OcsContact> c in contacts)
                    {
                        c.Value.watchRetries = 0;
                        if (s.Watched.Add(c.Key))
                            watch.Add(c.Value.SigninName);
                    }
                }
            }
            if (ended)
            {
                // Stopped before the handle was stored: free it here.
                s.Handle.Dispose();
                return;
            }
            string ignored;
            if (signOut)
                Call(() => Native.ocs_client_sign_out(s.Handle), out ignored);
            foreach (string w in watch)
                Watch(s, w);
        }

        void StartClient(Session s, OcsSignInSettings settings, string uri)
        {
            IntPtr config;
            Check(Native.ocs_config_new(
                Native.Utf8(uri, "SigninName"),
                Native.Utf8(settings.User, "User"),
                Native.Utf8(settings.Password, "Password"),
                (uint)settings.Dialect,
                out config));
            try
            {
                if (settings.ServerHost != null)
                    Check(Native.ocs_config_set_server(config, Native.Utf8(settings.ServerHost, "ServerHost"),
                        settings.ServerPort, (uint)settings.Transport));
                if (settings.Epid != null)
                    Check(Native.ocs_config_set_epid(config, Native.Utf8(settings.Epid, "Epid")));
                if (settings.TracePath != null)
                    Check(Native.ocs_config_set_trace(config, Native.Utf8(settings.TracePath, "TracePath"),
                        settings.TracePcap ? 1 : 0));
                if (settings.CertificateStore != null)
                    Check(Native.ocs_config_set_certificate_store(config,
                        Native.Utf8(settings.CertificateStore, "CertificateStore")));
                if (settings.AutodiscoverUrl != null)
                    Check(Native.ocs_config_set_autodiscover(config,
                        Native.Utf8(settings.AutodiscoverUrl, "AutodiscoverUrl")));
                // The GCHandle is the callback's userdata; the ClientHandle
                // frees it after ocs_client_free, when no callback can run.
                GCHandle self = GCHandle.Alloc(s);
                IntPtr raw = IntPtr.Zero;
                OcsResult r;
                try
                {
                    r = (OcsResult)Native.ocs_client_start(config, Native.Callback, GCHandle.ToIntPtr(self), out raw);
                }
                catch
                {
                    self.Free();
                    throw;
                }
                if (r != OcsResult.Ok)
                {
                    string detail = Native.LastError();
                    self.Free();
                    throw new OcsException(r, detail);
                }
                lock (Gate)
                {
                    s.Handle = new ClientHandle(raw, self);
                }
            }
            finally
            {
                Native.ocs_config_free(config);
            }
        }

        /// <summary>
        /// Signs out and returns at once; OnSignout follows once the client
        /// has stopped. Nothing happens when not signed in.
        /// </summary>
        public void SignOut()
        {
            ClientHandle h;
            lock (Gate)
            {
                if (session == null)
                    return;
                if (session.Handle == null)
                {
                    session.SignOutRequested = true;
                    return;
                }
                h = session.Handle;
            }
            string detail;
            OcsResult r = Call(() => Native.ocs_client_sign_out(h), out detail);
            if (r != OcsResult.Ok && r != OcsResult.Stopped)
                throw new OcsException(r, detail);
        }

        /// <summary>
        /// The contact with this SIP address (sip: is added when missing),
        /// the same object for the same address. It is watched while signed
        /// in (now, and again at every SignIn), so its Status follows and
        /// OnContactStatusChange reports its changes. A watch the server
        /// refuses or ends is tried again three times (1, 2 and 4 s later);
        /// meanwhile Status is Unknown.
        /// </summary>
        public OcsContact GetContact(string signinName)
        {
            string uri = NormalizeUri(signinName);
            string key = Key(uri);
            OcsContact c;
            Session s = null;
            lock (Gate)
            {
                ThrowIfDisposed();
                if (!contacts.TryGetValue(key, out c))
                {
                    c = new OcsContact(this, uri);
                    contacts.Add(key, c);
                }
                if (session != null && session.Handle != null && session.Watched.Add(key))
                    s = session;
            }
            if (s != null)
                Watch(s, c.SigninName);
            return c;
        }

        /// <summary>
        /// Publishes our status with a note (null for none); see MyStatus.
        /// Returns the change's id: exactly one OnMyStatusChange with that
        /// PublishId follows, with Result Ok or why the server refused it.
        /// </summary>
        public ulong SetMyStatus(MiStatus status, string note)
        {
            uint state = ToNative(status);
            byte[] noteBytes = note == null ? null : Native.Utf8(note, "note");
            Session s = Current();
            string detail;
            ulong publishId = 0;
            OcsResult r = Call(() => Native.ocs_client_set_status(s.Handle, state, noteBytes, out publishId),
                out detail);
            if (r != OcsResult.Ok)
                throw new OcsException(r, detail);
            return publishId;
        }

        /// <summary>
        /// Stops watching a contact and forgets it (GetContact makes a new
        /// one). Nothing happens for an address that is not a contact.
        /// </summary>
        public void RemoveContact(string signinName)
        {
            string key = Key(NormalizeUri(signinName));
            Session s = null;
            lock (Gate)
            {
                ThrowIfDisposed();
                contacts.Remove(key);
                if (session != null && session.Handle != null && session.Watched.Remove(key))
                    s = session;
            }
            if (s == null)
                return;
            byte[] u = Native.Utf8(NormalizeUri(signinName), "signinName");
            string detail;
            OcsResult r = Call(() => Native.ocs_client_unwatch(s.Handle, u), out detail);
            if (r != OcsResult.Ok && r != OcsResult.Stopped)
                throw new OcsException(r, detail);
        }

        /// <summary>
        /// Sends an instant message (plain text) and returns its id once the
        /// library took it; OnInstantMessageDelivered or
        /// OnInstantMessageFailed follows with that id.
        /// </summary>
        /// <exception cref="InvalidOperationException">not signed in.</exception>
        /// <exception cref="OcsException">refused at once (e.g. DisableIM).</exception>
        public ulong InstantMessage(string signinName, string text)
        {
            byte[] uri = Native.Utf8(NormalizeUri(signinName), "signinName");
            byte[] body = Native.Utf8(text, "text");
            Session s = Current();
            ulong id = 0;
            string detail;
            OcsResult r = Call(() => Native.ocs_client_send_im(s.Handle, uri, body, out id), out detail);
            if (r != OcsResult.Ok)
                throw new OcsException(r, detail);
            return id;
        }

        /// <summary>
        /// Signs out (waiting up to three seconds for the server) and frees
        /// the native client. Events already queued, such as the OnSignout of
        /// this sign-out, are still raised: before Dispose returns on the
        /// private event thread (after the handler returns when Dispose is
        /// called from one), whenever it runs them on a SynchronizationContext.
        /// No others follow.
        /// </summary>
        public void Dispose()
        {
            Session s;
            lock (Gate)
            {
                if (disposed)
                    return;
                disposed = true;
                s = session;
            }
            if (s != null && s.Handle != null)
            {
                string ignored;
                Call(() => Native.ocs_client_sign_out(s.Handle), out ignored);
                lock (Gate)
                {
                    DateTime until = DateTime.UtcNow.AddSeconds(3);
                    while (!s.Ended)
                    {
                        TimeSpan left = until - DateTime.UtcNow;
                        if (left <= TimeSpan.Zero || !Monitor.Wait(Gate, left))
                            break;
                    }
                    if (session == s)
                    {
                        // No answer in time: stop without the last events.
                        session = null;
                        myStatus = MiStatus.Offline;
                    }
                }
                // ocs_client_free: once it returns no callback runs.
                s.Handle.Dispose();
            }
            events.Dispose();
        }

        // ---- the native callback (on the library's thread) ----

        internal void OnNativeEvent(Session s, ref Native.Event e)
        {
            Native.EventKind kind = (Native.EventKind)e.Kind;
            switch (kind)
            {
                case Native.EventKind.Registered:
                    OnRegistered(s);
                    break;
                case Native.EventKind.CredentialsNeeded:
                    FailSignin(s, OcsResult.Authentication,
                        "the server wants other credentials (realm " + Native.Utf8String(e.Text) + ")", true);
                    break;
                case Native.EventKind.RegistrationFailed:
                    FailSignin(s, (OcsResult)e.Error, Native.Utf8String(e.Text), false);
                    lock (Gate)
                        s.EndReason = Native.Utf8String(e.Text);
                    break;
                case Native.EventKind.SignedOut:
                    lock (Gate)
                    {
                        s.ByServer = e.Flag != 0;
                        s.EndReason = Native.Utf8String(e.Text);
                    }
                    break;
                case Native.EventKind.Stopped:
                    OnStopped(s);
                    break;
                case Native.EventKind.PresencePublished:
                    OnPublished(s, e.Id, FromNative(e.State, 1), OcsResult.Ok, "");
                    break;
                case Native.EventKind.PresencePublishFailed:
                    OnPublished(s, e.Id, null, (OcsResult)e.Error, Native.Utf8String(e.Text));
                    break;
                case Native.EventKind.ProvisioningReceived:
                    Raise(() => Fire(OnPoliciesReceived, EventArgs.Empty));
                    break;
                case Native.EventKind.PresenceChanged:
                    OnPresence(s, Native.Utf8String(e.Uri), FromNative(e.State, e.Number), Native.Utf8String(e.Text));
                    break;
                case Native.EventKind.WatchEnded:
                    OnWatchEnded(s, Native.Utf8String(e.Uri));
                    break;
                case Native.EventKind.ImReceived:
                    {
                        OcsInstantMessageEventArgs a = new OcsInstantMessageEventArgs(
                            Native.Utf8String(e.Uri), Native.Utf8String(e.Text));
                        Raise(() => Fire(OnInstantMessageReceived, a));
                        break;
                    }
                case Native.EventKind.ImDelivered:
                    {
                        OcsMessageOutcomeEventArgs a = new OcsMessageOutcomeEventArgs(e.Id, "");
                        Raise(() => Fire(OnInstantMessageDelivered, a));
                        break;
                    }
                case Native.EventKind.ImFailed:
                    {
                        OcsMessageOutcomeEventArgs a = new OcsMessageOutcomeEventArgs(
                            e.Id, Native.Utf8String(e.Text));
                        Raise(() => Fire(OnInstantMessageFailed, a));
                        break;
                    }
                default:
                    break;
            }
        }

        void OnRegistered(Session s)
        {
            lock (Gate)
            {
                if (s.SignedIn || s.Reported || session != s)
                    return;
                s.SignedIn = true;
                s.Reported = true;
                myStatus = MiStatus.Online;
            }
            OcsSigninEventArgs a = new OcsSigninEventArgs(OcsResult.Ok, "");
            OcsMyStatusEventArgs m = new OcsMyStatusEventArgs(OcsResult.Ok, MiStatus.Online, "", 0);
            Raise(() => Fire(OnSignin, a));
            Raise(() => Fire(OnMyStatusChange, m));
        }

        void FailSignin(Session s, OcsResult result, string why, bool signOut)
        {
            bool report;
            ClientHandle h = null;
            lock (Gate)
            {
                report = !s.SignedIn && !s.Reported;
                if (report)
                    s.Reported = true;
                if (signOut)
                {
                    // Nobody can answer with other credentials here: give up.
                    s.EndReason = why;
                    h = s.Handle;
                    if (h == null)
                        s.SignOutRequested = true;
                }
            }
            if (report)
            {
                OcsSigninEventArgs a = new OcsSigninEventArgs(result == OcsResult.Ok ? OcsResult.Internal : result, why);
                Raise(() => Fire(OnSignin, a));
            }
            // Non-blocking: allowed on the library's thread.
            string ignored;
            if (h != null)
                Call(() => Native.ocs_client_sign_out(h), out ignored);
        }

        void OnStopped(Session s)
        {
            bool signedIn, report, statusChanged;
            string reason;
            bool byServer;
            ClientHandle h;
            lock (Gate)
            {
                s.Ended = true;
                Monitor.PulseAll(Gate);
                signedIn = s.SignedIn;
                report = !s.Reported;
                s.Reported = true;
                reason = s.EndReason;
                byServer = s.ByServer;
                statusChanged = false;
                if (session == s)
                {
                    session = null;
                    statusChanged = myStatus != MiStatus.Offline;
                    myStatus = MiStatus.Offline;
                    foreach (OcsContact c in contacts.Values)
                    {
                        c.status = MiStatus.Unknown;
                        c.note = "";
                    }
                }
                h = s.Handle;
            }
            if (report)
            {
                OcsSigninEventArgs a = new OcsSigninEventArgs(OcsResult.Stopped,
                    string.IsNullOrEmpty(reason) ? "stopped before sign-in completed" : reason);
                Raise(() => Fire(OnSignin, a));
            }
            if (statusChanged)
            {
                OcsMyStatusEventArgs m = new OcsMyStatusEventArgs(OcsResult.Ok, MiStatus.Offline, "", 0);
                Raise(() => Fire(OnMyStatusChange, m));
            }
            if (signedIn)
            {
                OcsSignoutEventArgs o = new OcsSignoutEventArgs(byServer, reason);
                Raise(() => Fire(OnSignout, o));
            }
            // The client is done. Freeing it from its own callback is allowed
            // (this callback is then its last); when SignIn has not stored
            // the handle yet, SignIn frees it.
            if (h != null)
                h.Dispose();
        }

        void OnPublished(Session s, ulong id, MiStatus? status, OcsResult result, string why)
        {
            OcsMyStatusEventArgs m = null;
            lock (Gate)
            {
                if (session != s)
                    return;
                // A change the host asked for carries its id: always reported.
                bool asked = id != 0;
                if (status.HasValue)
                {
                    if (asked || status.Value != myStatus)
                        m = new OcsMyStatusEventArgs(result, status.Value, why, id);
                    myStatus = status.Value;
                }
                else
                {
                    m = new OcsMyStatusEventArgs(result, myStatus, why, id);
                }
            }
            if (m != null)
                Raise(() => Fire(OnMyStatusChange, m));
        }

        void OnPresence(Session s, string uri, MiStatus status, string note)
        {
            OcsContactStatusEventArgs a = null;
            lock (Gate)
            {
                if (session != s)
                    return;
                string key = Key(uri);
                OcsContact c;
                if (!contacts.TryGetValue(key, out c))
                {
                    c = new OcsContact(this, NormalizeUri(uri));
                    contacts.Add(key, c);
                    s.Watched.Add(key);
                }
                c.watchRetries = 0;
                if (c.status != status || c.note != note)
                {
                    c.status = status;
                    c.note = note;
                    a = new OcsContactStatusEventArgs(c, status, note);
                }
            }
            if (a != null)
                Raise(() => Fire(OnContactStatusChange, a));
        }

        void OnWatchEnded(Session s, string uri)
        {
            OcsContactStatusEventArgs a = null;
            int delayMs = 0;
            OcsContact c;
            lock (Gate)
            {
                if (session != s)
                    return;
                string key = Key(uri);
                s.Watched.Remove(key);
                if (!contacts.TryGetValue(key, out c))
                    return;
                if (c.status != MiStatus.Unknown || c.note != "")
                {
                    c.status = MiStatus.Unknown;
                    c.note = "";
                    a = new OcsContactStatusEventArgs(c, MiStatus.Unknown, "");
                }
                if (c.watchRetries < MaxWatchRetries)
                {
                    delayMs = 1000 << c.watchRetries;
                    c.watchRetries++;
                }
            }
            if (a != null)
                Raise(() => Fire(OnContactStatusChange, a));
            if (delayMs > 0)
            {
                string key = Key(c.SigninName);
                Task.Delay(delayMs).ContinueWith(_ =>
                {
                    bool again;
                    lock (Gate)
                        again = session == s && !s.Ended && s.Handle != null && s.Watched.Add(key);
                    if (!again)
                        return;
                    try
                    {
                        Watch(s, c.SigninName);
                    }
                    catch (Exception e)
                    {
                        Trace.TraceError("ocs: watching {0} again failed: {1}", c.SigninName, e.Message);
                    }
                });
            }
        }

        // ---- helpers ----

        void Watch(Session s, string uri)
        {
            byte[] u = Native.Utf8(uri, "signinName");
            string detail;
            ulong watchId;
            OcsResult r = Call(() => Native.ocs_client_watch(s.Handle, u, out watchId), out detail);
            // A stopped client watches nothing; the next SignIn watches again.
            if (r != OcsResult.Ok && r != OcsResult.Stopped)
                throw new OcsException(r, detail);
        }

        Session Current()
        {
            lock (Gate)
            {
                ThrowIfDisposed();
                if (session == null || session.Handle == null)
                    throw new InvalidOperationException("not signed in");
                return session;
            }
        }

        /// <summary>
        /// Runs a native call on a client handle and reads the failure's
        /// details on the same thread, right after it. A handle disposed in
        /// the meantime (the session ended) counts as Stopped.
        /// </summary>
        static OcsResult Call(Func<int> f, out string detail)
        {
            OcsResult r;
            try
            {
                r = (OcsResult)f();
            }
            catch (ObjectDisposedException)
            {
                detail = "the client has stopped";
                return OcsResult.Stopped;
            }
            detail = r == OcsResult.Ok ? "" : Native.LastError();
            return r;
        }

        static void Check(int result)
        {
            OcsResult r = (OcsResult)result;
            if (r != OcsResult.Ok)
                throw new OcsException(r, Native.LastError());
        }

        void Raise(Action a)
        {
            events.Post(a);
        }

        void Fire<T>(EventHandler<T> handler, T args) where T : EventArgs
        {
            if (handler != null)
                handler(this, args);
        }

        void ThrowIfDisposed()
        {
            if (disposed)
                throw new ObjectDisposedException("OcsMessenger");
        }

        static uint ToNative(MiStatus s)
        {
            switch (s)
            {
                case MiStatus.Online: return 0;
                case MiStatus.MayBeAvailable:
                case MiStatus.Idle: return 1;
                case MiStatus.Busy: return 2;
                case MiStatus.DoNotDisturb: return 4;
                case MiStatus.BeRightBack: return 5;
                case MiStatus.Away: return 6;
                case MiStatus.Offline:
                case MiStatus.Invisible: return 7;
                default:
                    throw new ArgumentOutOfRangeException("status", s, "this status cannot be published");
            }
        }

        /// <summary>
        /// An OcsState value as MiStatus; Offline with no availability at
        /// all (rawAvailability 0) means nothing is known.
        /// </summary>
        static MiStatus FromNative(int state, uint rawAvailability)
        {
            switch (state)
            {
                case 0: return MiStatus.Online;
                case 1: return MiStatus.MayBeAvailable;
                case 2:
                case 3: return MiStatus.Busy;
                case 4: return MiStatus.DoNotDisturb;
                case 5: return MiStatus.BeRightBack;
                case 6: return MiStatus.Away;
                case 7: return rawAvailability == 0 ? MiStatus.Unknown : MiStatus.Offline;
                default: return MiStatus.Unknown;
            }
        }

        static string NormalizeUri(string signinName)
        {
            if (signinName == null)
                throw new ArgumentNullException("signinName");
            string u = signinName.Trim().TrimStart('<').TrimEnd('>');
            if (u.Length == 0)
                throw new ArgumentException("empty SIP address", "signinName");
            return u.IndexOf(':') < 0 ? "sip:" + u : u;
        }

        /// <summary>The library compares addresses this way too.</summary>
        static string Key(string uri)
        {
            return uri.Trim().TrimStart('<').TrimEnd('>').ToLowerInvariant();
        }

        /// <summary>One run of the native client, from SignIn to its end.</summary>
        internal sealed class Session
        {
            internal readonly OcsMessenger Owner;
            // All guarded by Owner.Gate.
            internal ClientHandle Handle;
            internal readonly HashSet<string> Watched = new HashSet<string>();
            internal bool SignedIn;
            internal bool Reported;
            internal bool Ended;
            internal bool SignOutRequested;
            internal bool ByServer;
            internal string EndReason = "";

            internal Session(OcsMessenger owner)
            {
                Owner = owner;
            }
        }
    }

    /// <summary>
    /// <b>Test support, not for production.</b> The embedded OCS 2007
    /// R2-dialect server (NTLM, signed messages, presence, IM relay) on
    /// 127.0.0.1, so tests sign in without an OCS installation. Dispose stops
    /// it.
    /// </summary>
    public sealed class OcsTestServer : IDisposable
    {
        IntPtr sim;

        /// <summary>Starts a server for SIP domain <paramref name="domain"/>.</summary>
        public OcsTestServer(string domain)
        {
            IntPtr raw;
            Check(Native.ocs_sim_start(Native.Utf8(domain, "domain"), out raw));
            sim = raw;
        }

        /// <summary>Its TCP port on 127.0.0.1.</summary>
        public ushort Port
        {
            get { return Native.ocs_sim_port(Live()); }
        }

        /// <summary>A user who signs in as sip:user@domain with the NTLM account ntlmDomain\user.</summary>
        public void AddUser(string user, string ntlmDomain, string password)
        {
            Check(Native.ocs_sim_add_user(Live(), Native.Utf8(user, "user"),
                Native.Utf8(ntlmDomain, "ntlmDomain"), Native.Utf8(password, "password")));
        }

        /// <summary>Answers every presence publication with SIP status <paramref name="status"/> (0: accept them).</summary>
        public void RefusePublications(uint status)
        {
            Check(Native.ocs_sim_refuse_publications(Live(), status));
        }

        /// <summary>Hands out the ucPolicy property name = value to the clients that sign in from now on.</summary>
        public void SetUcPolicy(string name, string value)
        {
            Check(Native.ocs_sim_set_uc_policy(Live(), Native.Utf8(name, "name"), Native.Utf8(value, "value")));
        }

        /// <summary>How many users <paramref name="watcher"/> has a live presence subscription to.</summary>
        public uint WatchedCount(string watcher)
        {
            uint n;
            Check(Native.ocs_sim_watched_count(Live(), Native.Utf8(watcher, "watcher"), out n));
            return n;
        }

        /// <summary>Panics inside the library: the call fails with OcsResult.Panic, nothing more.</summary>
        public static void PanicForTest()
        {
            Check(Native.ocs_sim_panic_for_test());
        }

        /// <summary>Stops the server.</summary>
        public void Dispose()
        {
            IntPtr p = Interlocked.Exchange(ref sim, IntPtr.Zero);
            if (p != IntPtr.Zero)
                Native.ocs_sim_free(p);
        }

        IntPtr Live()
        {
            if (sim == IntPtr.Zero)
                throw new ObjectDisposedException("OcsTestServer");
            return sim;
        }

        static void Check(int result)
        {
            OcsResult r = (OcsResult)result;
            if (r != OcsResult.Ok)
                throw new OcsException(r, Native.LastError());
        }
    }

    /// <summary>
    /// Owns an OcsClient*. SafeHandle counts the calls in progress, so the
    /// client is freed only after the last one returned, never under it
    /// (ocs.h: a handle must not be freed while another thread uses it).
    /// </summary>
    sealed class ClientHandle : SafeHandle
    {
        GCHandle userdata;

        internal ClientHandle(IntPtr client, GCHandle userdata)
            : base(IntPtr.Zero, true)
        {
            this.userdata = userdata;
            SetHandle(client);
        }

        public override bool IsInvalid
        {
            get { return handle == IntPtr.Zero; }
        }

        protected override bool ReleaseHandle()
        {
            Native.ocs_client_free(handle);
            // No callback runs any more: the userdata can go.
            if (userdata.IsAllocated)
                userdata.Free();
            return true;
        }
    }

    /// <summary>
    /// Runs handler calls in order on a SynchronizationContext or, without
    /// one, on a private thread.
    /// </summary>
    sealed class EventQueue : IDisposable
    {
        internal const string ThreadName = "OcsMessenger events";
        readonly SynchronizationContext context;
        readonly BlockingCollection<Action> queue;
        readonly Thread thread;

        internal EventQueue(SynchronizationContext context)
        {
            this.context = context;
            if (context != null)
                return;
            queue = new BlockingCollection<Action>();
            thread = new Thread(Run) { IsBackground = true, Name = ThreadName };
            thread.Start();
        }

        internal void Post(Action a)
        {
            if (context != null)
            {
                context.Post(_ => Invoke(a), null);
                return;
            }
            try
            {
                queue.Add(a);
            }
            catch (InvalidOperationException)
            {
                // Disposed: nobody listens any more.
            }
        }

        void Run()
        {
            foreach (Action a in queue.GetConsumingEnumerable())
                Invoke(a);
        }

        static void Invoke(Action a)
        {
            try
            {
                a();
            }
            catch (Exception e)
            {
                // A handler's exception must not stop the events that follow.
                Trace.TraceError("ocs: an event handler threw: {0}", e);
            }
        }

        public void Dispose()
        {
            if (queue == null)
                return;
            queue.CompleteAdding();
            // Queued events still run; from a handler, do not wait for ourselves.
            if (Thread.CurrentThread != thread)
                thread.Join();
        }
    }

    /// <summary>The C API (ocs.h), declared for P/Invoke.</summary>
    static class Native
    {
        const string Lib = "ocs_ffi";

        /// <summary>OcsEventKind.</summary>
        internal enum EventKind
        {
            Connected = 0,
            ConnectFailed = 1,
            Disconnected = 2,
            Registered = 3,
            CredentialsNeeded = 4,
            RegistrationRetry = 5,
            RegistrationFailed = 6,
            SignedOut = 7,
            SecurityViolation = 8,
            ImDelivered = 9,
            ImFailed = 10,
            ImReceived = 11,
            Typing = 12,
            ImRefusedByPolicy = 13,
            ContactCannotReceiveIm = 14,
            ImSessionEnded = 15,
            PresenceChanged = 16,
            PresencePublished = 17,
            PresencePublishFailed = 18,
            WatchEnded = 19,
            CustomStatesLoaded = 20,
            CustomStatesFailed = 21,
            Stopped = 22,
            Other = 23,
            Watching = 24,
            WatchFailed = 25,
            ProvisioningReceived = 26,
            Reconnected = 27,
            CertificateNeeded = 28,
        }

        /// <summary>struct OcsEvent, field for field (C enums are ints, bool is one byte).</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct Event
        {
            internal int Kind;
            internal IntPtr Uri;
            internal IntPtr Text;
            internal int State;
            internal int Error;
            internal ulong Id;
            internal uint Number;
            internal byte Flag;
        }

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate void EventCallback(IntPtr userdata, IntPtr ev);

        /// <summary>
        /// The one callback every client gets. A static field keeps the
        /// delegate (and the native thunk made for it) alive for the life of
        /// the process, so the GC can never pull it from under the library.
        /// </summary>
        internal static readonly EventCallback Callback = OnEvent;

        static void OnEvent(IntPtr userdata, IntPtr ev)
        {
            // Runs on the library's "ocs-events" thread. No exception may
            // unwind into native code.
            try
            {
                OcsMessenger.Session s = GCHandle.FromIntPtr(userdata).Target as OcsMessenger.Session;
                if (s == null || ev == IntPtr.Zero)
                    return;
                Event e = (Event)Marshal.PtrToStructure(ev, typeof(Event));
                s.Owner.OnNativeEvent(s, ref e);
            }
            catch (Exception e)
            {
                try
                {
                    Trace.TraceError("ocs: event callback failed: {0}", e);
                }
                catch
                {
                }
            }
        }

        static readonly UTF8Encoding StrictUtf8 = new UTF8Encoding(false, true);

        /// <summary>A NUL-terminated UTF-8 copy of s (null stays null).</summary>
        internal static byte[] Utf8(string s, string name)
        {
            if (s == null)
                return null;
            if (s.IndexOf('\0') >= 0)
                throw new ArgumentException("contains a NUL character", name);
            byte[] b;
            try
            {
                b = StrictUtf8.GetBytes(s);
            }
            catch (EncoderFallbackException e)
            {
                throw new ArgumentException("is not valid Unicode (a lone surrogate)", name, e);
            }
            Array.Resize(ref b, b.Length + 1);
            return b;
        }

        /// <summary>Decodes a NUL-terminated UTF-8 string owned by the library.</summary>
        internal static string Utf8String(IntPtr p)
        {
            if (p == IntPtr.Zero)
                return "";
            int n = 0;
            while (Marshal.ReadByte(p, n) != 0)
                n++;
            byte[] b = new byte[n];
            Marshal.Copy(p, b, 0, n);
            return Encoding.UTF8.GetString(b);
        }

        internal static string ResultMessage(OcsResult r)
        {
            return Utf8String(ocs_result_message((uint)r));
        }

        /// <summary>ocs_last_error_message, read right after the failed call on the same thread.</summary>
        internal static string LastError()
        {
            return Utf8String(ocs_last_error_message());
        }

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr ocs_result_message(uint result);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr ocs_last_error_message();

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr ocs_version();

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int ocs_config_new(byte[] uri, byte[] user, byte[] password, uint dialect,
            out IntPtr config);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int ocs_config_set_server(IntPtr config, byte[] host, ushort port, uint transport);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int ocs_config_set_epid(IntPtr config, byte[] epid);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int ocs_config_set_trace(IntPtr config, byte[] path, int pcap);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int ocs_config_set_certificate_store(IntPtr config, byte[] dir);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int ocs_config_set_autodiscover(IntPtr config, byte[] url);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void ocs_config_free(IntPtr config);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int ocs_client_start(IntPtr config, EventCallback callback, IntPtr userdata,
            out IntPtr client);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int ocs_client_sign_out(ClientHandle client);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int ocs_client_watch(ClientHandle client, byte[] uri, out ulong watchId);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int ocs_client_send_im(ClientHandle client, byte[] uri, byte[] text,
            out ulong messageId);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int ocs_client_set_status(ClientHandle client, uint state, byte[] note,
            out ulong publishId);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int ocs_client_unwatch(ClientHandle client, byte[] uri);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void ocs_client_free(IntPtr client);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int ocs_sim_start(byte[] domain, out IntPtr sim);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int ocs_sim_add_user(IntPtr sim, byte[] user, byte[] ntlmDomain, byte[] password);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern ushort ocs_sim_port(IntPtr sim);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int ocs_sim_refuse_publications(IntPtr sim, uint status);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int ocs_sim_set_uc_policy(IntPtr sim, byte[] name, byte[] value);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int ocs_sim_watched_count(IntPtr sim, byte[] watcher, out uint count);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int ocs_sim_panic_for_test();

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void ocs_sim_free(IntPtr sim);
    }
}
