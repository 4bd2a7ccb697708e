/*
 * The hosts' common scenario, in C, against the embedded test server
 * (ocs_sim_*; no set-up): every command returns an id and ends in exactly
 * one event carrying it.
 *
 *   1. alice signs in (REGISTERED).
 *   2. The server refuses publications (403): her status command ends in
 *      PRESENCE_PUBLISH_FAILED with its id and OCS_RESULT_REJECTED.
 *   3. She watches bob twice (WATCHING with each id; the server sees the
 *      subscription), then releases both watches (the server sees it end
 *      after the second).
 *   4. She sends an IM to carol, who is offline: IM_FAILED with its id and
 *      the reason.
 *   5. The administrator sets DisableIM in-band; dave signs in, the policy
 *      arrives (PROVISIONING_RECEIVED) and his IM is refused at once with
 *      OCS_RESULT_POLICY_DENIED naming the policy and where it came from.
 *   6. Both sign out (STOPPED).
 *
 * Exits 0 on success. run.sh builds and runs it.
 */
#define OCS_SIM 1
#include "ocs.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_S 10
#define MAX_EVENTS 256

typedef struct Seen {
    OcsEventKind kind;
    uint64_t id;
    OcsResult error;
    char uri[128];
    char text[256];
} Seen;

typedef struct Peer {
    const char *name;
    OcsClient *client;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    Seen events[MAX_EVENTS];
    int count;
} Peer;

/* Runs on the ocs event thread: keep a copy, signal, return quickly. */
static void on_event(void *userdata, const OcsEvent *e) {
    Peer *p = userdata;
    pthread_mutex_lock(&p->mu);
    if (p->count < MAX_EVENTS) {
        Seen *s = &p->events[p->count++];
        s->kind = e->kind;
        s->id = e->id;
        s->error = e->error;
        snprintf(s->uri, sizeof s->uri, "%s", e->uri);
        snprintf(s->text, sizeof s->text, "%s", e->text);
    }
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* Waits for an event of `kind` (with `id`, unless 0); copies it to *out. */
static int wait_event(Peer *p, OcsEventKind kind, uint64_t id, Seen *out, const char *what) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += TIMEOUT_S;
    int found = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        for (int i = 0; i < p->count && !found; i++) {
            if (p->events[i].kind == kind && (id == 0 || p->events[i].id == id)) {
                *out = p->events[i];
                found = 1;
            }
        }
        if (found || pthread_cond_timedwait(&p->cv, &p->mu, &deadline) == ETIMEDOUT) {
            break;
        }
    }
    pthread_mutex_unlock(&p->mu);
    if (!found) {
        fprintf(stderr, "FAIL: %s: timed out waiting for %s (event kind %d, id %llu)\n", p->name,
                what, (int)kind, (unsigned long long)id);
        return 0;
    }
    printf("ok: %s: %s (id %llu%s%s)\n", p->name, what, (unsigned long long)out->id,
           *out->text ? ": " : "", out->text);
    return 1;
}

/* How many events of `kind` with `id` arrived (each command ends once). */
static int count_events(Peer *p, OcsEventKind kind, uint64_t id) {
    int n = 0;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->count; i++) {
        n += p->events[i].kind == kind && p->events[i].id == id;
    }
    pthread_mutex_unlock(&p->mu);
    return n;
}

static int check(OcsResult r, const char *what) {
    if (r != OCS_RESULT_OK) {
        fprintf(stderr, "FAIL: %s: %s (%s)\n", what, ocs_result_message(r),
                ocs_last_error_message());
        return 0;
    }
    return 1;
}

static int start(Peer *p, const char *name, OcsSim *sim) {
    memset(p, 0, sizeof *p);
    p->name = name;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    char uri[128], account[128], password[64];
    snprintf(uri, sizeof uri, "sip:%s@contoso.com", name);
    snprintf(account, sizeof account, "CONTOSO\\%s", name);
    snprintf(password, sizeof password, "%spw", name);
    OcsConfig *cfg = NULL;
    if (!check(ocs_config_new(uri, account, password, OCS_DIALECT_OCS, &cfg), "ocs_config_new")) {
        return 0;
    }
    int ok = check(ocs_config_set_server(cfg, "127.0.0.1", ocs_sim_port(sim), OCS_TRANSPORT_TCP),
                   "ocs_config_set_server") &&
             check(ocs_client_start(cfg, on_event, p, &p->client), "ocs_client_start");
    ocs_config_free(cfg);
    Seen s;
    return ok && wait_event(p, OCS_EVENT_KIND_REGISTERED, 0, &s, "signed in");
}

/* Polls the server until `watcher` watches `want` users. */
static int server_sees(OcsSim *sim, const char *watcher, uint32_t want, const char *what) {
    uint32_t n = 0;
    for (int i = 0; i < TIMEOUT_S * 20; i++) {
        if (!check(ocs_sim_watched_count(sim, watcher, &n), "ocs_sim_watched_count")) {
            return 0;
        }
        if (n == want) {
            printf("ok: server: %s\n", what);
            return 1;
        }
        usleep(50 * 1000);
    }
    fprintf(stderr, "FAIL: server: %s: it sees %u watches, want %u\n", what, n, want);
    return 0;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("ocs %s C API scenario against the embedded server\n", ocs_version());
    OcsSim *sim = NULL;
    if (!check(ocs_sim_start("contoso.com", &sim), "ocs_sim_start")) {
        return 1;
    }
    const char *users[] = {"alice", "bob", "carol", "dave"};
    for (size_t i = 0; i < sizeof users / sizeof users[0]; i++) {
        char pw[64];
        snprintf(pw, sizeof pw, "%spw", users[i]);
        if (!check(ocs_sim_add_user(sim, users[i], "CONTOSO", pw), "ocs_sim_add_user")) {
            return 1;
        }
    }

    /* 1. Sign in. */
    static Peer alice, dave;
    if (!start(&alice, "alice", sim)) {
        return 1;
    }

    /* 2. A publication the server refuses. */
    Seen s;
    uint64_t publish_id = 0;
    if (!check(ocs_sim_refuse_publications(sim, 403), "ocs_sim_refuse_publications(403)") ||
        !check(ocs_client_set_status(alice.client, OCS_STATE_BUSY, "refused", &publish_id),
               "ocs_client_set_status(busy)") ||
        !wait_event(&alice, OCS_EVENT_KIND_PRESENCE_PUBLISH_FAILED, publish_id, &s,
                    "the refused publication failed")) {
        return 1;
    }
    if (publish_id == 0 || s.error != OCS_RESULT_REJECTED || !strstr(s.text, "403") ||
        count_events(&alice, OCS_EVENT_KIND_PRESENCE_PUBLISHED, publish_id) != 0) {
        fprintf(stderr, "FAIL: publication %llu: error %d, \"%s\"\n",
                (unsigned long long)publish_id, (int)s.error, s.text);
        return 1;
    }
    if (!check(ocs_sim_refuse_publications(sim, 0), "ocs_sim_refuse_publications(0)")) {
        return 1;
    }

    /* 3. Watch, then unwatch: the server sees both. */
    uint64_t watch_id = 0;
    if (!check(ocs_client_watch(alice.client, "sip:bob@contoso.com", &watch_id),
               "ocs_client_watch(bob)") ||
        !wait_event(&alice, OCS_EVENT_KIND_WATCHING, watch_id, &s, "watching bob") ||
        !server_sees(sim, "sip:alice@contoso.com", 1, "alice watches bob")) {
        return 1;
    }
    /* A second watch of bob: releasing the first keeps him watched. */
    uint64_t second = 0;
    if (!check(ocs_client_watch(alice.client, "<SIP:Bob@contoso.com>", &second), "ocs_client_watch(bob again)") ||
        !wait_event(&alice, OCS_EVENT_KIND_WATCHING, second, &s, "the second watch of bob") ||
        !check(ocs_client_release_watch(alice.client, watch_id), "ocs_client_release_watch(first)") ||
        !server_sees(sim, "sip:alice@contoso.com", 1, "bob still watched (the second watch holds him)") ||
        !check(ocs_client_release_watch(alice.client, second), "ocs_client_release_watch(second)") ||
        !server_sees(sim, "sip:alice@contoso.com", 0, "alice's watch of bob ended")) {
        return 1;
    }
    uint64_t bad = 0;
    if (ocs_client_watch(alice.client, "not a uri", &bad) != OCS_RESULT_INVALID_INPUT || bad != 0) {
        fprintf(stderr, "FAIL: a watch of \"not a uri\" was not refused\n");
        return 1;
    }
    printf("ok: alice: a watch of \"not a uri\" is refused (%s)\n", ocs_last_error_message());

    /* 4. An IM to a user who is offline. */
    uint64_t im_id = 0;
    if (!check(ocs_client_send_im(alice.client, "sip:carol@contoso.com", "are you there?", &im_id),
               "ocs_client_send_im(carol)") ||
        !wait_event(&alice, OCS_EVENT_KIND_IM_FAILED, im_id, &s, "the IM to offline carol failed")) {
        return 1;
    }
    if (!*s.text || count_events(&alice, OCS_EVENT_KIND_IM_DELIVERED, im_id) != 0) {
        fprintf(stderr, "FAIL: IM %llu to carol: no reason given\n", (unsigned long long)im_id);
        return 1;
    }

    /* 5. DisableIM, handed out in-band. */
    if (!check(ocs_sim_set_uc_policy(sim, "DisableIM", "true"), "ocs_sim_set_uc_policy") ||
        !start(&dave, "dave", sim) ||
        !wait_event(&dave, OCS_EVENT_KIND_PROVISIONING_RECEIVED, 0, &s, "policies received")) {
        return 1;
    }
    uint64_t refused = 0;
    OcsResult r = ocs_client_send_im(dave.client, "sip:alice@contoso.com", "hi", &refused);
    const char *why = ocs_last_error_message();
    if (r != OCS_RESULT_POLICY_DENIED || refused != 0 || !strstr(why, "DisableIM") ||
        !strstr(why, "in-band")) {
        fprintf(stderr, "FAIL: dave's IM: %s (%s)\n", ocs_result_message(r), why);
        return 1;
    }
    printf("ok: dave: IM refused: %s\n", why);

    /* 6. Sign out. */
    if (!check(ocs_client_sign_out(alice.client), "ocs_client_sign_out(alice)") ||
        !check(ocs_client_sign_out(dave.client), "ocs_client_sign_out(dave)") ||
        !wait_event(&alice, OCS_EVENT_KIND_STOPPED, 0, &s, "signed out") ||
        !wait_event(&dave, OCS_EVENT_KIND_STOPPED, 0, &s, "signed out")) {
        return 1;
    }
    /* Each command ended exactly once. */
    if (count_events(&alice, OCS_EVENT_KIND_PRESENCE_PUBLISH_FAILED, publish_id) != 1 ||
        count_events(&alice, OCS_EVENT_KIND_WATCHING, watch_id) != 1 ||
        count_events(&alice, OCS_EVENT_KIND_IM_FAILED, im_id) != 1) {
        fprintf(stderr, "FAIL: a command ended more than once\n");
        return 1;
    }
    ocs_client_free(alice.client);
    ocs_client_free(dave.client);

    /* A panic below the C API is an error for that call, nothing more. */
    if (ocs_sim_panic_for_test() != OCS_RESULT_PANIC ||
        !strstr(ocs_last_error_message(), "on purpose")) {
        fprintf(stderr, "FAIL: a panic below the FFI: %s\n", ocs_last_error_message());
        return 1;
    }
    printf("ok: a panic below the FFI -> OCS_RESULT_PANIC (%s)\n", ocs_last_error_message());
    uint32_t n = 99;
    if (!check(ocs_sim_watched_count(sim, "sip:alice@contoso.com", &n), "the library after a panic")) {
        return 1;
    }
    ocs_sim_free(sim);
    printf("PASS: C API scenario\n");
    return 0;
}
