/*
 * Smoke test of the C API against Kamailio on loopback (run.sh builds and
 * runs it): alice and bob sign in, bob watches alice, alice publishes
 * busy and bob sees it, alice sends bob an IM and bob receives it, both
 * sign out. Exits 0 on success.
 *
 * Usage: smoke PORT   (Kamailio's UDP/TCP port on 127.0.0.1)
 */
#include "ocs.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TIMEOUT_S 10

typedef struct Peer {
    const char *name;
    OcsClient *client;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int registered;
    int stopped;
    int published;     /* alice: a publication she asked for was accepted */
    uint64_t published_id; /* alice: its id */
    int saw_alice;     /* bob: alice's presence arrived */
    int watch_ended;   /* bob: the watch failed or ended */
    int saw_busy;      /* bob: alice's presence became busy */
    char note[256];    /* bob: alice's note */
    int got_im;        /* bob: an IM arrived */
    char im[256];      /* bob: its text */
    char im_from[256]; /* bob: its sender */
    uint64_t delivered; /* alice: the last delivered message id */
    int failed;
    OcsResult wrong_thread; /* result of a blocking call made in a callback */
} Peer;

static const char *kind_name(OcsEventKind k) {
    static const char *names[] = {
        "CONNECTED", "CONNECT_FAILED", "DISCONNECTED", "REGISTERED",
        "CREDENTIALS_NEEDED", "REGISTRATION_RETRY", "REGISTRATION_FAILED",
        "SIGNED_OUT", "SECURITY_VIOLATION", "IM_DELIVERED", "IM_FAILED",
        "IM_RECEIVED", "TYPING", "IM_REFUSED_BY_POLICY",
        "CONTACT_CANNOT_RECEIVE_IM", "IM_SESSION_ENDED", "PRESENCE_CHANGED",
        "PRESENCE_PUBLISHED", "PRESENCE_PUBLISH_FAILED", "WATCH_ENDED",
        "CUSTOM_STATES_LOADED", "CUSTOM_STATES_FAILED", "STOPPED", "OTHER",
        "WATCHING", "WATCH_FAILED",
    };
    unsigned i = (unsigned)k;
    return i < sizeof names / sizeof names[0] ? names[i] : "?";
}

static void copy(char *dst, size_t n, const char *src) {
    snprintf(dst, n, "%s", src);
}

/* Runs on the ocs event thread: copy what we keep, signal, return quickly. */
static void on_event(void *userdata, const OcsEvent *e) {
    Peer *p = userdata;
    printf("  [%s] %-20s uri=%s text=%s state=%d number=%u id=%llu flag=%d\n",
           p->name, kind_name(e->kind), e->uri, e->text, (int)e->state,
           e->number, (unsigned long long)e->id, (int)e->flag);
    fflush(stdout);
    pthread_mutex_lock(&p->mu);
    switch (e->kind) {
    case OCS_EVENT_KIND_REGISTERED:
        p->registered = 1;
        break;
    case OCS_EVENT_KIND_REGISTRATION_FAILED:
    case OCS_EVENT_KIND_IM_FAILED:
    case OCS_EVENT_KIND_PRESENCE_PUBLISH_FAILED:
        p->failed = 1;
        break;
    case OCS_EVENT_KIND_STOPPED:
        p->stopped = 1;
        break;
    case OCS_EVENT_KIND_PRESENCE_PUBLISHED:
        if (e->id != 0) {
            p->published = 1;
            p->published_id = e->id;
        }
        break;
    case OCS_EVENT_KIND_WATCH_FAILED:
    case OCS_EVENT_KIND_WATCH_ENDED:
        p->watch_ended = 1;
        break;
    case OCS_EVENT_KIND_PRESENCE_CHANGED:
        if (strcmp(e->uri, "sip:alice@127.0.0.1") != 0) {
            break;
        }
        p->saw_alice = 1;
        if (e->state == OCS_STATE_BUSY) {
            p->saw_busy = 1;
            copy(p->note, sizeof p->note, e->text);
        }
        break;
    case OCS_EVENT_KIND_IM_RECEIVED:
        p->got_im = 1;
        copy(p->im, sizeof p->im, e->text);
        copy(p->im_from, sizeof p->im_from, e->uri);
        /* Blocking calls are refused on the event thread (they would deadlock). */
        p->wrong_thread = ocs_client_send_im(p->client, e->uri, "reply", NULL);
        break;
    case OCS_EVENT_KIND_IM_DELIVERED:
        p->delivered = e->id;
        break;
    default:
        break;
    }
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* Waits until *flag is set (or a failure, or *stop, or the timeout). */
static int wait_or(Peer *p, const int *flag, const int *stop, const char *what) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += TIMEOUT_S;
    int ok = 0;
    pthread_mutex_lock(&p->mu);
    while (!*flag && !p->failed && !(stop && *stop)) {
        if (pthread_cond_timedwait(&p->cv, &p->mu, &deadline) == ETIMEDOUT) {
            break;
        }
    }
    ok = *flag && !p->failed;
    pthread_mutex_unlock(&p->mu);
    if (!ok) {
        fprintf(stderr, "FAIL: %s: %s\n", p->name,
                p->failed ? "a failure event arrived"
                : (stop && *stop) ? "stopped early" : "timed out");
        fprintf(stderr, "      waiting for: %s\n", what);
    } else {
        printf("ok: %s: %s\n", p->name, what);
    }
    return ok;
}

static int wait_for(Peer *p, const int *flag, const char *what) {
    return wait_or(p, flag, NULL, what);
}

static int check(OcsResult r, const char *what) {
    if (r != OCS_RESULT_OK) {
        fprintf(stderr, "FAIL: %s: %s (%s)\n", what, ocs_result_message(r),
                ocs_last_error_message());
        return 0;
    }
    return 1;
}

static int expect(OcsResult got, OcsResult want, const char *what) {
    if (got != want) {
        fprintf(stderr, "FAIL: %s: got %d (%s), want %d (%s)\n", what, (int)got,
                ocs_result_message(got), (int)want, ocs_result_message(want));
        return 0;
    }
    const char *detail = ocs_last_error_message();
    printf("ok: %s -> %s%s%s%s\n", what, ocs_result_message(got), *detail ? " (" : "", detail,
           *detail ? ")" : "");
    return 1;
}

static int start(Peer *p, const char *user, const char *password, uint16_t port) {
    char uri[128];
    snprintf(uri, sizeof uri, "sip:%s@127.0.0.1", user);
    OcsConfig *cfg = NULL;
    if (!check(ocs_config_new(uri, user, password, OCS_DIALECT_STANDARD, &cfg), "ocs_config_new")) {
        return 0;
    }
    char trace[160];
    snprintf(trace, sizeof trace, "target/c-smoke/%s.trace", user);
    remove(trace);
    int ok = check(ocs_config_set_server(cfg, "127.0.0.1", port, OCS_TRANSPORT_TCP),
                   "ocs_config_set_server") &&
             check(ocs_config_set_trace(cfg, trace, 0), "ocs_config_set_trace") &&
             check(ocs_client_start(cfg, on_event, p, &p->client), "ocs_client_start");
    ocs_config_free(cfg);
    return ok;
}

static void init(Peer *p, const char *name) {
    memset(p, 0, sizeof *p);
    p->name = name;
    p->wrong_thread = OCS_RESULT_OK;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
}

int main(int argc, char **argv) {
    if (argc != 2 || atoi(argv[1]) <= 0 || atoi(argv[1]) > 65535) {
        fprintf(stderr, "usage: %s KAMAILIO_PORT\n", argv[0]);
        return 2;
    }
    uint16_t port = (uint16_t)atoi(argv[1]);
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("ocs %s C API smoke test against Kamailio on 127.0.0.1:%u\n", ocs_version(), port);

    /* The boundary's own checks. */
    OcsConfig *none = NULL;
    if (!expect(ocs_config_new(NULL, "alice", "pw", OCS_DIALECT_STANDARD, &none),
                OCS_RESULT_NULL_POINTER, "ocs_config_new(uri = NULL)") ||
        !expect(ocs_config_new("sip:a@b", "a", "pw", 42, &none), OCS_RESULT_INVALID_INPUT,
                "ocs_config_new(dialect = 42)") ||
        !expect(ocs_config_new("sip:\xff@b", "a", "pw", OCS_DIALECT_STANDARD, &none),
                OCS_RESULT_UTF8, "ocs_config_new(uri = invalid UTF-8)") ||
        !expect(ocs_client_watch(NULL, "sip:x@y", NULL), OCS_RESULT_NULL_POINTER,
                "ocs_client_watch(client = NULL)")) {
        return 1;
    }
    ocs_config_free(NULL);
    ocs_client_free(NULL);
    if (strcmp(ocs_result_message(9999), "unknown result code") != 0) {
        fprintf(stderr, "FAIL: ocs_result_message(9999)\n");
        return 1;
    }

    static Peer alice, bob;
    init(&alice, "alice");
    init(&bob, "bob");
    if (!start(&alice, "alice", "alicepw", port) || !start(&bob, "bob", "bobpw", port)) {
        return 1;
    }
    if (!wait_for(&alice, &alice.registered, "signed in") ||
        !wait_for(&bob, &bob.registered, "signed in")) {
        return 1;
    }

    if (!expect(ocs_client_set_status(alice.client, 99, NULL, NULL), OCS_RESULT_INVALID_INPUT,
                "ocs_client_set_status(state = 99)")) {
        return 1;
    }
    /* alice is online, bob watches her, then she turns busy: a change. */
    uint64_t publish_id = 0;
    if (!check(ocs_client_set_status(alice.client, OCS_STATE_ONLINE, NULL, &publish_id),
               "ocs_client_set_status(online)") ||
        !wait_for(&alice, &alice.published, "publication accepted (online)")) {
        return 1;
    }
    if (publish_id == 0 || alice.published_id != publish_id) {
        fprintf(stderr, "FAIL: alice: publication %llu ended as %llu\n",
                (unsigned long long)publish_id, (unsigned long long)alice.published_id);
        return 1;
    }
    /* Kamailio's SQLite store sometimes answers a SUBSCRIBE with 500
       ("database is locked"); a watcher would try again, and so do we. */
    for (int attempt = 1;; attempt++) {
        if (!check(ocs_client_watch(bob.client, "sip:alice@127.0.0.1", NULL), "ocs_client_watch")) {
            return 1;
        }
        if (wait_or(&bob, &bob.saw_alice, &bob.watch_ended, "watching alice")) {
            break;
        }
        if (!bob.watch_ended || attempt == 3) {
            return 1;
        }
        printf("  (the watch ended; trying again)\n");
        pthread_mutex_lock(&bob.mu);
        bob.watch_ended = 0;
        pthread_mutex_unlock(&bob.mu);
    }
    pthread_mutex_lock(&alice.mu);
    alice.published = 0;
    pthread_mutex_unlock(&alice.mu);
    if (!check(ocs_client_set_status(alice.client, OCS_STATE_BUSY, "in a C meeting", NULL),
               "ocs_client_set_status(busy)")) {
        return 1;
    }
    if (!wait_for(&bob, &bob.saw_busy, "alice's presence changed to busy")) {
        return 1;
    }
    if (strcmp(bob.note, "in a C meeting") != 0) {
        fprintf(stderr, "FAIL: bob saw note \"%s\", want \"in a C meeting\"\n", bob.note);
        return 1;
    }
    printf("ok: bob: alice's note is \"%s\"\n", bob.note);
    if (!check(ocs_client_set_idle(alice.client, 25 * 60, NULL), "ocs_client_set_idle(25 min)") ||
        !check(ocs_client_set_idle(alice.client, 0, NULL), "ocs_client_set_idle(0)") ||
        !check(ocs_client_set_in_call(alice.client, 1, NULL), "ocs_client_set_in_call(1)") ||
        !check(ocs_client_set_in_call(alice.client, 0, NULL), "ocs_client_set_in_call(0)")) {
        return 1;
    }

    uint64_t id = 0;
    if (!check(ocs_client_send_im(alice.client, "sip:bob@127.0.0.1", "hello from C", &id),
               "ocs_client_send_im")) {
        return 1;
    }
    printf("ok: alice: sent an IM, message id %llu\n", (unsigned long long)id);
    if (!wait_for(&bob, &bob.got_im, "an IM from alice")) {
        return 1;
    }
    if (strcmp(bob.im, "hello from C") != 0 || strstr(bob.im_from, "alice") == NULL) {
        fprintf(stderr, "FAIL: bob got \"%s\" from %s\n", bob.im, bob.im_from);
        return 1;
    }
    printf("ok: bob: received \"%s\" from %s\n", bob.im, bob.im_from);
    if (!expect(bob.wrong_thread, OCS_RESULT_WRONG_THREAD,
                "ocs_client_send_im from inside a callback")) {
        return 1;
    }
    pthread_mutex_lock(&alice.mu);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += TIMEOUT_S;
    while (alice.delivered != id && !alice.failed &&
           pthread_cond_timedwait(&alice.cv, &alice.mu, &deadline) != ETIMEDOUT) {
    }
    int delivered = alice.delivered == id;
    pthread_mutex_unlock(&alice.mu);
    if (!delivered) {
        fprintf(stderr, "FAIL: alice: no delivery report for message %llu\n",
                (unsigned long long)id);
        return 1;
    }
    printf("ok: alice: message %llu delivered\n", (unsigned long long)id);

    if (!check(ocs_client_sign_out(alice.client), "ocs_client_sign_out(alice)") ||
        !check(ocs_client_sign_out(bob.client), "ocs_client_sign_out(bob)") ||
        !wait_for(&alice, &alice.stopped, "signed out and stopped") ||
        !wait_for(&bob, &bob.stopped, "signed out and stopped")) {
        return 1;
    }
    ocs_client_free(alice.client);
    ocs_client_free(bob.client);

    /* alice's trace holds her REGISTER and MESSAGE, with the Digest
       response redacted. */
    FILE *f = fopen("target/c-smoke/alice.trace", "rb");
    static char buf[1 << 20];
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) {
        fclose(f);
    }
    buf[n] = 0;
    if (!strstr(buf, "REGISTER sip:") || !strstr(buf, "MESSAGE sip:bob@127.0.0.1") ||
        strstr(buf, "response=\"")) {
        fprintf(stderr, "FAIL: alice's trace (%zu bytes) lacks REGISTER/MESSAGE or leaks a Digest response\n", n);
        return 1;
    }
    printf("ok: alice's SIP trace: %zu bytes, credentials redacted\n", n);
    printf("PASS: C API smoke test\n");
    return 0;
}
