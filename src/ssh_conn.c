/* SSH connections over libssh2 (see ssh_conn.h). */
#include "ssh_conn.h"
#include "loop.h"
#include "fsutil.h"

#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define CHUNK (4u << 20) /* SFTP calls of this size let libssh2 pipeline packets */

static int say(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int say(char *err, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return -1;
}

const char *ssh_error(ssh_conn *c)
{
    char *msg = NULL;
    if (!c || !c->s)
        return "no session";
    libssh2_session_last_error(c->s, &msg, NULL, 0);
    return msg && *msg ? msg : "unknown SSH error";
}

/* ---- the socket, with byte counting ------------------------------------------ */

static ssize_t recv_cb(libssh2_socket_t sock, void *buf, size_t len, int flags, void **abstract)
{
    ssh_conn *c = *abstract;
    ssize_t r = recv(sock, buf, len, flags);
    if (r < 0)
        return -errno;
    c->wire_received += (unsigned long long)r;
    c->last_rx = loop_now();
    if (c->moved)
        c->moved(c->stop_ud);
    return r;
}

static ssize_t send_cb(libssh2_socket_t sock, const void *buf, size_t len, int flags, void **abstract)
{
    ssh_conn *c = *abstract;
    ssize_t r = send(sock, buf, len, flags | MSG_NOSIGNAL);
    if (r < 0)
        return -errno;
    c->wire_sent += (unsigned long long)r;
    if (c->moved)
        c->moved(c->stop_ud);
    return r;
}

static int tcp_connect(const ssh_target *t, const char *label, char *err, size_t n)
{
    char port[16];
    snprintf(port, sizeof port, "%d", t->port);
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
    const char *where = t->addr ? t->addr : t->host;
    int rc = getaddrinfo(where, port, &hints, &res);
    if (rc != 0)
        return say(err, n, "%s: cannot resolve %s: %s", label, where, gai_strerror(rc));
    int fd = -1, last = 0;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
            last = errno;
            close(fd);
            fd = -1;
            continue;
        }
        struct pollfd p = { fd, POLLOUT, 0 };
        int ready = poll(&p, 1, (int)(t->connect_timeout * 1000));
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (ready <= 0)
            last = ETIMEDOUT;
        else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr)
            last = soerr ? soerr : errno;
        if (ready <= 0 || soerr) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        if (last == ETIMEDOUT)
            return say(err, n, "%s: cannot connect: no answer within %.0f s", label, t->connect_timeout);
        return say(err, n, "%s: cannot connect: %s", label, strerror(last));
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    /* Requests and answers go out at once; ssh_put turns this off while it
     * streams a large file (full segments, as OpenSSH does for bulk data). */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* ---- host keys ----------------------------------------------------------------- */

static const struct {
    int hostkey_type;
    int knownhost_key;
    const char *name;
    const char *methods;
} KEYS[] = {
    { LIBSSH2_HOSTKEY_TYPE_ED25519, LIBSSH2_KNOWNHOST_KEY_ED25519, "ssh-ed25519", "ssh-ed25519" },
    { LIBSSH2_HOSTKEY_TYPE_ECDSA_256, LIBSSH2_KNOWNHOST_KEY_ECDSA_256, "ecdsa-sha2-nistp256",
      "ecdsa-sha2-nistp256" },
    { LIBSSH2_HOSTKEY_TYPE_ECDSA_384, LIBSSH2_KNOWNHOST_KEY_ECDSA_384, "ecdsa-sha2-nistp384",
      "ecdsa-sha2-nistp384" },
    { LIBSSH2_HOSTKEY_TYPE_ECDSA_521, LIBSSH2_KNOWNHOST_KEY_ECDSA_521, "ecdsa-sha2-nistp521",
      "ecdsa-sha2-nistp521" },
    { LIBSSH2_HOSTKEY_TYPE_RSA, LIBSSH2_KNOWNHOST_KEY_SSHRSA, "ssh-rsa",
      "rsa-sha2-512,rsa-sha2-256,ssh-rsa" },
};
#define NKEYS (sizeof KEYS / sizeof KEYS[0])

static const char *key_name(int hostkey_type)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (KEYS[i].hostkey_type == hostkey_type)
            return KEYS[i].name;
    return "unknown key type";
}

/* The host's key against known_hosts, which names a host on port 22 by its
 * name and on another port as "[name]:port", as OpenSSH does: libssh2 would
 * also take the port-22 line for another port (a second sshd, a container),
 * and call its different key a mismatch. */
static int check_known(LIBSSH2_KNOWNHOSTS *kh, const ssh_target *t, const char *key, size_t len,
                       int keybit)
{
    struct libssh2_knownhost *h;
    int mask = LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | keybit;
    if (t->port == 22)
        return libssh2_knownhost_checkp(kh, t->host, 22, key, len, mask, &h);
    char spec[600];
    snprintf(spec, sizeof spec, "[%s]:%d", t->host, t->port);
    return libssh2_knownhost_checkp(kh, spec, -1, key, len, mask, &h);
}

/* Does known_hosts hold a key of this type for the host? A check with a
 * dummy key says MISMATCH exactly then (this works for hashed entries too). */
static int known_type(LIBSSH2_KNOWNHOSTS *kh, const ssh_target *t, int knownhost_key)
{
    static const char dummy[64];
    return check_known(kh, t, dummy, sizeof dummy, knownhost_key) == LIBSSH2_KNOWNHOST_CHECK_MISMATCH;
}

/* Appends the methods of a comma list that this libssh2 supports. */
static void add_supported(char *pref, size_t n, const char *methods, const char **algs, int nalgs)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", methods);
    for (char *save = NULL, *m = strtok_r(buf, ",", &save); m; m = strtok_r(NULL, ",", &save))
        for (int i = 0; i < nalgs; i++)
            if (strcmp(algs[i], m) == 0) {
                size_t len = strlen(pref);
                snprintf(pref + len, n - len, "%s%s", len ? "," : "", m);
                break;
            }
}

/* Like OpenSSH: offer the key types known_hosts has for this host first, so
 * that a host with several keys is checked against the one we know. Only
 * methods this libssh2 supports are named (libssh2 1.10 strips unknown ones
 * with an overlapping memcpy). */
static void prefer_known_types(LIBSSH2_SESSION *s, LIBSSH2_KNOWNHOSTS *kh, const ssh_target *t)
{
    const char **algs = NULL;
    int nalgs = libssh2_session_supported_algs(s, LIBSSH2_METHOD_HOSTKEY, &algs);
    if (nalgs <= 0)
        return;
    char pref[512] = "";
    int used[NKEYS] = { 0 };
    for (size_t i = 0; i < NKEYS; i++)
        if (known_type(kh, t, KEYS[i].knownhost_key)) {
            used[i] = 1;
            add_supported(pref, sizeof pref, KEYS[i].methods, algs, nalgs);
        }
    if (*pref) { /* nothing known: libssh2's own order */
        for (size_t i = 0; i < NKEYS; i++)
            if (!used[i])
                add_supported(pref, sizeof pref, KEYS[i].methods, algs, nalgs);
        libssh2_session_method_pref(s, LIBSSH2_METHOD_HOSTKEY, pref);
    }
    libssh2_free(s, algs);
}

/* The MACs to offer when the worker names none. libssh2 1.10 offers
 * hmac-sha2-256 first. On a processor without SHA instructions that MAC
 * costs more than all the rest of a bulk transfer's work, at both ends
 * (OpenSSL: 390 MB/s, against 850 for hmac-sha1, on the benchmark VM; a
 * 1 GiB upload took 1.45x scp's time with it, 1.13x with hmac-sha1).
 * hmac-sha1 is still a sound MAC and OpenSSH offers it; a server that
 * refuses it gets SHA-2. NULL: libssh2's order. */
static const char *default_macs(void)
{
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 29))) /* SHA extensions */
        return NULL;
    return "hmac-sha1,hmac-sha2-256,hmac-sha2-512";
#else
    return NULL;
#endif
}

/* The worker's macs and ciphers (comma lists, in order of preference), or
 * the defaults above, for both directions. */
static int choose_methods(ssh_conn *c, const ssh_target *t, char *err, size_t n)
{
    const struct {
        int cs, sc;
        const char *list, *what;
    } m[] = {
        { LIBSSH2_METHOD_MAC_CS, LIBSSH2_METHOD_MAC_SC, t->macs ? t->macs : default_macs(), "macs" },
        { LIBSSH2_METHOD_CRYPT_CS, LIBSSH2_METHOD_CRYPT_SC, t->ciphers, "ciphers" },
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        if (!m[i].list)
            continue;
        const char **algs = NULL;
        int nalgs = libssh2_session_supported_algs(c->s, m[i].cs, &algs);
        char pref[512] = "";
        if (nalgs > 0)
            add_supported(pref, sizeof pref, m[i].list, algs, nalgs);
        /* only supported names go to libssh2 (see prefer_known_types) */
        int ok = *pref && libssh2_session_method_pref(c->s, m[i].cs, pref) == 0 &&
                 libssh2_session_method_pref(c->s, m[i].sc, pref) == 0;
        char have[1024] = ""; /* for the message: what this libssh2 has */
        for (int k = 0; !ok && k < nalgs; k++)
            snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s", k ? ", " : "", algs[k]);
        if (nalgs > 0)
            libssh2_free(c->s, algs);
        if (!ok)
            return say(err, n, "%s: %s = \"%s\": this libssh2 supports none of them (it has: %s)",
                       c->label, m[i].what, m[i].list, have);
    }
    return 0;
}

/* Base64 of len bytes into out (room for 4 * ((len + 2) / 3) + 1), with
 * '=' padding or without. */
static void b64_encode(const unsigned char *in, size_t len, char *out, int pad)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t k = 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < len ? (unsigned)in[i + 1] << 8 : 0) |
                     (i + 2 < len ? in[i + 2] : 0);
        int chars = i + 2 < len ? 4 : (i + 1 < len ? 3 : 2);
        for (int c = 0; c < 4; c++)
            if (c < chars)
                out[k++] = b64[(v >> (18 - 6 * c)) & 63];
            else if (pad)
                out[k++] = '=';
    }
    out[k] = 0;
}

static void fingerprint(LIBSSH2_SESSION *s, char *out, size_t n)
{
    const unsigned char *h = (const unsigned char *)libssh2_hostkey_hash(s, LIBSSH2_HOSTKEY_HASH_SHA256);
    if (!h) {
        snprintf(out, n, "?");
        return;
    }
    char enc[64];
    b64_encode(h, 32, enc, 0);
    snprintf(out, n, "SHA256:%s", enc);
}

/* Reads known_hosts line by line, as OpenSSH does: a line libssh2 cannot
 * parse (garbage, a truncated line, a marker it does not know) is passed
 * over, not the end of the file (libssh2_knownhost_readfile stops there,
 * and the keys after it would go unseen: accept-new would take a changed
 * key). Windows line ends are taken off. */
static void read_known_hosts(LIBSSH2_KNOWNHOSTS *kh, const char *file)
{
    FILE *f = fopen(file, "re");
    if (!f)
        return;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        if (len > 0)
            libssh2_knownhost_readline(kh, line, (size_t)len, LIBSSH2_KNOWNHOST_FILE_OPENSSH);
    }
    free(line);
    fclose(f);
}

/* Is the key marked "@revoked" in known_hosts? libssh2 reads past such
 * lines; OpenSSH never accepts the key they hold, and neither does rasrun,
 * whatever host the line names. */
static int revoked(const ssh_target *t, const char *key, size_t len)
{
    FILE *f = fopen(t->known_hosts, "re");
    char *enc = malloc(4 * ((len + 2) / 3) + 1);
    if (!f || !enc) {
        if (f)
            fclose(f);
        free(enc);
        return 0;
    }
    b64_encode((const unsigned char *)key, len, enc, 1);
    char *line = NULL;
    size_t cap = 0;
    int found = 0;
    while (!found && getline(&line, &cap, f) > 0) {
        char *save = NULL;
        const char *mark = strtok_r(line, " \t\r\n", &save);
        if (!mark || strcmp(mark, "@revoked") != 0)
            continue;
        strtok_r(NULL, " \t\r\n", &save); /* the hosts */
        strtok_r(NULL, " \t\r\n", &save); /* the key type */
        const char *b = strtok_r(NULL, " \t\r\n", &save);
        found = b && strcmp(b, enc) == 0;
    }
    free(line);
    free(enc);
    fclose(f);
    return found;
}

/* Appends the host's key to known_hosts (accept-new) without rewriting the
 * file: lines libssh2 does not understand stay as they are. */
static int record_key(LIBSSH2_KNOWNHOSTS *kh, const ssh_target *t, const char *key, size_t len,
                      int keybit, char *err, size_t n, const char *label)
{
    char spec[600];
    if (t->port == 22)
        snprintf(spec, sizeof spec, "%s", t->host);
    else
        snprintf(spec, sizeof spec, "[%s]:%d", t->host, t->port);
    struct libssh2_knownhost *added = NULL;
    if (libssh2_knownhost_addc(kh, spec, NULL, key, len, NULL, 0,
                               LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | keybit,
                               &added) != 0)
        return say(err, n, "%s: cannot record the host key", label);
    char line[8192];
    size_t outlen = 0;
    if (libssh2_knownhost_writeline(kh, added, line, sizeof line, &outlen,
                                    LIBSSH2_KNOWNHOST_FILE_OPENSSH) != 0)
        return say(err, n, "%s: cannot format the host key line", label);
    int fd = open(t->known_hosts, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, line, outlen) != (ssize_t)outlen) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return say(err, n, "%s: cannot write %s: %s", label, t->known_hosts, strerror(e));
    }
    close(fd);
    return 0;
}

static int verify_host(ssh_conn *c, LIBSSH2_KNOWNHOSTS *kh, const ssh_target *t, char *err, size_t n)
{
    size_t len = 0;
    int type = 0;
    const char *key = libssh2_session_hostkey(c->s, &len, &type);
    if (!key)
        return say(err, n, "%s: the host sent no host key", c->label);
    int keybit = 0;
    for (size_t i = 0; i < NKEYS; i++)
        if (KEYS[i].hostkey_type == type)
            keybit = KEYS[i].knownhost_key;
    if (!keybit)
        return say(err, n, "%s: host key of an unsupported type", c->label);
    int r = check_known(kh, t, key, len, keybit);
    char fp[80], who[600];
    fingerprint(c->s, fp, sizeof fp);
    if (t->port == 22)
        snprintf(who, sizeof who, "%s", t->host);
    else
        snprintf(who, sizeof who, "[%s]:%d", t->host, t->port);
    if (revoked(t, key, len))
        return say(err, n, "%s: the host key of %s (%s, offered %s) is marked @revoked in %s; "
                   "refusing to connect", c->label, who, key_name(type), fp, t->known_hosts);
    switch (r) {
    case LIBSSH2_KNOWNHOST_CHECK_MATCH:
        return 0;
    case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
        return say(err, n, "%s: host key mismatch for %s (%s, offered %s): it differs from the key in "
                   "%s; refusing to connect (if the host was reinstalled, remove its old line)",
                   c->label, who, key_name(type), fp, t->known_hosts);
    case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
        if (t->accept_new)
            return record_key(kh, t, key, len, keybit, err, n, c->label);
        return say(err, n, "%s: %s is not in %s (%s %s); add it (ssh-keyscan) or use "
                   "host_key = \"accept-new\"", c->label, who, t->known_hosts, key_name(type), fp);
    default:
        return say(err, n, "%s: cannot check the host key of %s", c->label, who);
    }
}

/* ---- authentication ----------------------------------------------------------- */

static void append(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t n, const char *fmt, ...)
{
    size_t len = strlen(buf);
    if (len >= n - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, n - len, fmt, ap);
    va_end(ap);
}

static int try_agent(ssh_conn *c, const ssh_target *t, char *tried, size_t n)
{
    if (!getenv("SSH_AUTH_SOCK")) {
        append(tried, n, "%sssh-agent (SSH_AUTH_SOCK is not set)", *tried ? "; " : "");
        return -1;
    }
    LIBSSH2_AGENT *ag = libssh2_agent_init(c->s);
    if (!ag || libssh2_agent_connect(ag) != 0 || libssh2_agent_list_identities(ag) != 0) {
        append(tried, n, "%sssh-agent (cannot reach it)", *tried ? "; " : "");
        if (ag)
            libssh2_agent_free(ag);
        return -1;
    }
    struct libssh2_agent_publickey *id = NULL, *prev = NULL;
    int ok = -1, count = 0;
    while (libssh2_agent_get_identity(ag, &id, prev) == 0) {
        count++;
        if (libssh2_agent_userauth(ag, t->user, id) == 0) {
            ok = 0;
            break;
        }
        prev = id;
    }
    if (ok != 0)
        append(tried, n, "%sssh-agent (%d key%s refused)", *tried ? "; " : "", count,
               count == 1 ? "" : "s");
    libssh2_agent_disconnect(ag);
    libssh2_agent_free(ag);
    return ok;
}

static int try_key(ssh_conn *c, const ssh_target *t, const char *file, char *tried, size_t n)
{
    if (access(file, R_OK) != 0) {
        append(tried, n, "%skey %s (%s)", *tried ? "; " : "", file, strerror(errno));
        return -1;
    }
    const char *pass = t->passphrase_env ? getenv(t->passphrase_env) : NULL;
    int rc = libssh2_userauth_publickey_fromfile_ex(c->s, t->user, (unsigned)strlen(t->user), NULL,
                                                    file, pass);
    if (rc == 0)
        return 0;
    if (rc == LIBSSH2_ERROR_FILE)
        append(tried, n, "%skey %s (cannot be read%s)", *tried ? "; " : "", file,
               pass ? ": wrong passphrase?" : t->passphrase_env ? "" : ": passphrase needed? set passphrase_env");
    else if (rc == LIBSSH2_ERROR_AUTHENTICATION_FAILED || rc == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED)
        append(tried, n, "%skey %s (refused)", *tried ? "; " : "", file);
    else
        append(tried, n, "%skey %s (%s)", *tried ? "; " : "", file, ssh_error(c));
    return -1;
}

static int try_password(ssh_conn *c, const ssh_target *t, char *tried, size_t n)
{
    const char *pw = getenv(t->password_env);
    if (!pw) {
        append(tried, n, "%spassword (%s is not set)", *tried ? "; " : "", t->password_env);
        return -1;
    }
    if (libssh2_userauth_password(c->s, t->user, pw) == 0)
        return 0;
    append(tried, n, "%spassword from %s (refused)", *tried ? "; " : "", t->password_env);
    return -1;
}

static int authenticate(ssh_conn *c, const ssh_target *t, char *err, size_t n)
{
    char tried[2048] = "";
    /* Asking for the methods also tells us when no authentication is needed. */
    libssh2_userauth_list(c->s, t->user, (unsigned)strlen(t->user));
    if (libssh2_userauth_authenticated(c->s))
        return 0;
    if (t->agent && try_agent(c, t, tried, sizeof tried) == 0)
        return 0;
    for (int i = 0; i < t->nidentities; i++)
        if (try_key(c, t, t->identities[i], tried, sizeof tried) == 0)
            return 0;
    if (t->password_env && try_password(c, t, tried, sizeof tried) == 0)
        return 0;
    if (!*tried)
        snprintf(tried, sizeof tried, "no agent, key or password given");
    return say(err, n, "%s: authentication failed: %s", c->label, tried);
}

/* ---- connect / close ---------------------------------------------------------- */

ssh_conn *ssh_connect(const ssh_target *t, int *refused, char *err, size_t n)
{
    int dummy;
    if (!refused)
        refused = &dummy;
    *refused = 0;
    ssh_conn *c = calloc(1, sizeof *c);
    if (!c) {
        say(err, n, "out of memory");
        return NULL;
    }
    c->sock = -1;
    c->io_timeout = t->io_timeout > 0 ? t->io_timeout : 30;
    if (t->port == 22)
        snprintf(c->label, sizeof c->label, "ssh %s (%s@%s)", t->name, t->user, t->host);
    else
        snprintf(c->label, sizeof c->label, "ssh %s (%s@%s:%d)", t->name, t->user, t->host, t->port);
    c->sock = tcp_connect(t, c->label, err, n);
    if (c->sock < 0) {
        free(c);
        return NULL;
    }
    c->s = libssh2_session_init_ex(NULL, NULL, NULL, c);
    if (!c->s) {
        say(err, n, "%s: cannot start an SSH session", c->label);
        ssh_close(c);
        return NULL;
    }
    libssh2_session_callback_set(c->s, LIBSSH2_CALLBACK_RECV, (void *)recv_cb);
    libssh2_session_callback_set(c->s, LIBSSH2_CALLBACK_SEND, (void *)send_cb);
    libssh2_session_set_blocking(c->s, 1);
    libssh2_session_set_timeout(c->s, (long)(t->connect_timeout * 1000));
    LIBSSH2_KNOWNHOSTS *kh = libssh2_knownhost_init(c->s);
    if (kh && t->known_hosts)
        read_known_hosts(kh, t->known_hosts);
    if (kh)
        prefer_known_types(c->s, kh, t);
    if (choose_methods(c, t, err, n) != 0) {
        if (kh)
            libssh2_knownhost_free(kh);
        ssh_close(c);
        return NULL;
    }
    int rc = libssh2_session_handshake(c->s, c->sock);
    if (rc != 0) {
        say(err, n, "%s: SSH handshake failed: %s", c->label,
            rc == LIBSSH2_ERROR_TIMEOUT ? "no answer in time" : ssh_error(c));
        if (kh)
            libssh2_knownhost_free(kh);
        ssh_close(c);
        return NULL;
    }
    int bad = !kh || verify_host(c, kh, t, err, n) != 0;
    if (!kh)
        say(err, n, "%s: cannot read known hosts", c->label);
    if (kh)
        libssh2_knownhost_free(kh);
    if (bad || authenticate(c, t, err, n) != 0) {
        *refused = 1;
        ssh_close(c);
        return NULL;
    }
    libssh2_session_set_timeout(c->s, (long)(c->io_timeout * 1000));
    c->last_rx = loop_now();
    return c;
}

/* Shuts the connection's socket (it stays open until ssh_close closes it):
 * every libssh2 call that waits for the peer then fails at once. */
void ssh_cut(ssh_conn *c)
{
    if (c && c->sock >= 0)
        shutdown(c->sock, SHUT_RDWR);
}

/* Closes politely while the peer answers. When it does not (a cut link),
 * libssh2 gives up after the timeout having freed nothing, and would leave
 * the SFTP session or the whole session allocated: the socket is then shut
 * and the call made again, which frees it at once. */
void ssh_close(ssh_conn *c)
{
    if (!c)
        return;
    int dead = 0;
    if (c->s) {
        /* In non-blocking mode these calls return EAGAIN and free nothing. */
        libssh2_session_set_blocking(c->s, 1);
        libssh2_session_set_timeout(c->s, 2000);
    }
    if (c->sftp && libssh2_sftp_shutdown(c->sftp) != 0) {
        ssh_cut(c);
        dead = 1;
        libssh2_sftp_shutdown(c->sftp);
    }
    if (c->s) {
        if (!dead)
            libssh2_session_disconnect(c->s, "rasrun done");
        if (libssh2_session_free(c->s) != 0) {
            ssh_cut(c);
            libssh2_session_free(c->s);
        }
    }
    if (c->sock >= 0)
        close(c->sock);
    free(c);
}

int ssh_broken(ssh_conn *c)
{
    switch (libssh2_session_last_errno(c->s)) {
    case LIBSSH2_ERROR_SOCKET_SEND:
    case LIBSSH2_ERROR_SOCKET_RECV:
    case LIBSSH2_ERROR_SOCKET_DISCONNECT:
    case LIBSSH2_ERROR_SOCKET_TIMEOUT:
    case LIBSSH2_ERROR_TIMEOUT:
    case LIBSSH2_ERROR_DECRYPT:
    case LIBSSH2_ERROR_INVALID_MAC:
        return 1; /* not a refused channel (CHANNEL_FAILURE): the peer answered */
    default:
        return 0;
    }
}

/* libssh2 sends keepalives only while an interval is set, and then also
 * from inside every blocking wait, where one that meets a packet half sent
 * (an upload slower than the interval) fails the whole transfer ("Unable
 * to send keepalive message"). So the interval is set only for this call. */
int ssh_keepalive(ssh_conn *c, unsigned interval)
{
    int next = 0;
    libssh2_keepalive_config(c->s, 1, interval);
    int rc = libssh2_keepalive_send(c->s, &next);
    libssh2_keepalive_config(c->s, 1, 0);
    return rc == 0 ? 0 : -1;
}

double ssh_probe_idle(ssh_conn *c, unsigned interval)
{
    int idle = interval > 0 ? (int)interval : 1, every = idle / 2 > 0 ? idle / 2 : 1, probes = 2;
    setsockopt(c->sock, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    setsockopt(c->sock, IPPROTO_TCP, TCP_KEEPINTVL, &every, sizeof every);
    setsockopt(c->sock, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof probes);
    return idle + probes * every;
}

/* ---- commands ------------------------------------------------------------------- */

/* Waits until the socket can move in the direction libssh2 waits for. */
static int wait_socket(ssh_conn *c, double deadline)
{
    int dir = libssh2_session_block_directions(c->s);
    struct pollfd p = { c->sock, 0, 0 };
    if (dir & LIBSSH2_SESSION_BLOCK_INBOUND)
        p.events |= POLLIN;
    if (dir & LIBSSH2_SESSION_BLOCK_OUTBOUND)
        p.events |= POLLOUT;
    if (!p.events)
        p.events = POLLIN;
    int ms = (int)((deadline - loop_now()) * 1000);
    if (ms <= 0)
        return -1;
    return poll(&p, 1, ms > 200 ? 200 : ms) >= 0 ? 0 : -1;
}

struct grow {
    char *p;
    size_t n, cap;
};

static int grow_add(struct grow *g, const char *data, size_t len)
{
    if (g->n + len + 1 > g->cap) {
        size_t cap = (g->cap ? g->cap * 2 : 4096) + len;
        char *p = realloc(g->p, cap);
        if (!p)
            return -1;
        g->p = p;
        g->cap = cap;
    }
    memcpy(g->p + g->n, data, len);
    g->n += len;
    g->p[g->n] = 0;
    return 0;
}

/* Appends what one stream of the channel has; returns the bytes read, 0 for
 * nothing now (EAGAIN), or <0 on an error. */
static ssize_t read_stream(LIBSSH2_CHANNEL *ch, int stream, struct grow *g, char *buf, size_t n,
                           int *progress)
{
    ssize_t r = libssh2_channel_read_ex(ch, stream, buf, n);
    if (r == LIBSSH2_ERROR_EAGAIN)
        return 0;
    if (r > 0) {
        grow_add(g, buf, (size_t)r);
        *progress = 1;
    }
    return r;
}

/* Feeds a string as a command's input. */
struct string_source {
    const char *p;
    size_t left;
};

static ssize_t from_string(void *ud, char *buf, size_t n)
{
    struct string_source *src = ud;
    if (n > src->left)
        n = src->left;
    memcpy(buf, src->p, n);
    src->p += n;
    src->left -= n;
    return (ssize_t)n;
}

int ssh_exec(ssh_conn *c, const char *cmd, const char *input, char **out, char **errout,
             int *exit_code, double timeout, char *err, size_t n)
{
    struct string_source src = { input ? input : "", input ? strlen(input) : 0 };
    return ssh_exec_stream(c, cmd, from_string, &src, out, errout, exit_code, timeout, err, n);
}

int ssh_exec_stream(ssh_conn *c, const char *cmd, ssh_source_fn source, void *ud, char **out,
                    char **errout, int *exit_code, double timeout, char *err, size_t n)
{
    struct grow o = { 0 }, e = { 0 };
    double deadline = loop_now() + timeout;
    enum { INBUF = 256 * 1024 };
    char *inbuf = malloc(INBUF);
    if (!inbuf)
        return say(err, n, "out of memory");
    LIBSSH2_CHANNEL *ch = libssh2_channel_open_session(c->s);
    if (!ch) {
        free(inbuf);
        return say(err, n, "%s: cannot open a channel: %s", c->label, ssh_error(c));
    }
    if (libssh2_channel_exec(ch, cmd) != 0) {
        libssh2_channel_free(ch);
        free(inbuf);
        return say(err, n, "%s: cannot run a command: %s", c->label, ssh_error(c));
    }
    libssh2_session_set_blocking(c->s, 0);
    size_t inlen = 0, fed = 0;
    int eof_sent = 0, src_done = 0, rc = 0;
    char buf[16384];
    for (;;) {
        int progress = 0;
        if (!eof_sent) {
            if (fed == inlen && !src_done) {
                ssize_t got = source(ud, inbuf, INBUF);
                if (got < 0) {
                    rc = -3;
                    break;
                }
                inlen = (size_t)got;
                fed = 0;
                src_done = got == 0;
            }
            if (fed < inlen) {
                ssize_t w = libssh2_channel_write(ch, inbuf + fed, inlen - fed);
                if (w > 0) {
                    fed += (size_t)w;
                    progress = 1;
                } else if (w != LIBSSH2_ERROR_EAGAIN) {
                    rc = -1;
                    break;
                }
            }
            if (src_done && libssh2_channel_send_eof(ch) != LIBSSH2_ERROR_EAGAIN)
                eof_sent = 1;
        }
        ssize_t r = read_stream(ch, 0, &o, buf, sizeof buf, &progress);
        ssize_t r2 = r < 0 ? r : read_stream(ch, SSH_EXTENDED_DATA_STDERR, &e, buf, sizeof buf, &progress);
        if (r < 0 || r2 < 0) {
            rc = -1;
            break;
        }
        if (libssh2_channel_eof(ch) && r == 0 && r2 == 0)
            break;
        if (loop_now() > deadline) {
            rc = -2;
            break;
        }
        if (!progress && wait_socket(c, deadline) != 0) {
            rc = -2;
            break;
        }
    }
    if (rc == 0) {
        while (libssh2_channel_close(ch) == LIBSSH2_ERROR_EAGAIN && loop_now() < deadline)
            wait_socket(c, deadline);
        while (libssh2_channel_wait_closed(ch) == LIBSSH2_ERROR_EAGAIN && loop_now() < deadline)
            wait_socket(c, deadline);
        *exit_code = libssh2_channel_get_exit_status(ch);
    }
    libssh2_session_set_blocking(c->s, 1);
    libssh2_channel_free(ch);
    free(inbuf);
    if (out)
        *out = o.p ? o.p : strdup("");
    else
        free(o.p);
    if (errout)
        *errout = e.p ? e.p : strdup("");
    else
        free(e.p);
    if (rc == -3)
        return -1; /* the source said why */
    if (rc == -2)
        return say(err, n, "%s: the command did not finish within %.0f s", c->label, timeout);
    if (rc != 0)
        return say(err, n, "%s: the connection failed during a command: %s", c->label, ssh_error(c));
    return 0;
}

/* ---- SFTP ---------------------------------------------------------------------- */

int ssh_sftp(ssh_conn *c, char *err, size_t n)
{
    if (c->sftp)
        return 0;
    c->sftp = libssh2_sftp_init(c->s);
    if (!c->sftp)
        return say(err, n, "%s: cannot start SFTP: %s", c->label, ssh_error(c));
    return 0;
}

static const char *sftp_reason(ssh_conn *c)
{
    unsigned long code = c->sftp ? libssh2_sftp_last_error(c->sftp) : 0;
    if (libssh2_session_last_errno(c->s) != LIBSSH2_ERROR_SFTP_PROTOCOL)
        return ssh_error(c);
    switch (code) {
    case LIBSSH2_FX_NO_SUCH_FILE: return "no such file";
    case LIBSSH2_FX_PERMISSION_DENIED: return "permission denied";
    case LIBSSH2_FX_FAILURE: return "failure (disk full, or the file exists?)";
    case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM: return "no space left";
    case LIBSSH2_FX_FILE_ALREADY_EXISTS: return "the file exists";
    case LIBSSH2_FX_OP_UNSUPPORTED: return "the server does not support this";
    default: return "SFTP error";
    }
}

/* A transfer that failed: its reason, read before anything else is asked of
 * the host (which would replace it). When the link itself failed, it is cut
 * at once: closing the file and removing its part would each wait the I/O
 * timeout again on a dead link. */
static void transfer_failed(ssh_conn *c, char *why, size_t n)
{
    snprintf(why, n, "%s", sftp_reason(c));
    if (!c->stopped && ssh_broken(c))
        ssh_cut(c);
}

/* Before each request of a transfer: has its owner asked it to stop? A
 * download that nothing else needs the connection for (stop returned 2)
 * cuts it: a graceful end would wait for all that libssh2 asked of the host
 * ahead of the reads to arrive (seconds to minutes over a slow link). An
 * upload ends within one request, and removes its part on the host. */
static int stop_asked(ssh_conn *c, int reading)
{
    int why = c->stop ? c->stop(c->stop_ud) : 0;
    if (why && !c->stopped) {
        c->stopped = 1;
        if (why == 2 && reading)
            ssh_cut(c);
    }
    return c->stopped;
}

/* Writes bytes [off, off + len) of the local file fd into the open handle. */
static int write_range(ssh_conn *c, LIBSSH2_SFTP_HANDLE *h, int fd, off_t off, off_t len)
{
    char *buf = malloc(CHUNK);
    if (!buf)
        return -1;
    libssh2_sftp_seek64(h, (libssh2_uint64_t)off);
    int rc = 0;
    while (rc == 0 && len > 0) {
        ssize_t got = pread(fd, buf, (size_t)(len < (off_t)CHUNK ? len : (off_t)CHUNK), off);
        if (got <= 0) {
            rc = -1;
            break;
        }
        for (ssize_t done = 0; done < got;) {
            ssize_t w = stop_asked(c, 0) ? -1 : libssh2_sftp_write(h, buf + done, (size_t)(got - done));
            if (w < 0) {
                rc = -1;
                break;
            }
            done += w;
            c->file_sent += (unsigned long long)w;
        }
        off += got;
        len -= got;
    }
    free(buf);
    return rc;
}

/* Uploads local as remote through a temporary name of its own (two uploads
 * of one file at once, from two runs, never write into one file). replace:
 * an existing remote is replaced; else it is kept and the upload dropped
 * (content-named cache files: the one there is the same). */
static int put_file(ssh_conn *c, const char *local, const char *remote, int replace, char *err,
                    size_t n)
{
    if (ssh_sftp(c, err, n) != 0)
        return -1;
    c->stopped = 0;
    int fd = open(local, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return say(err, n, "cannot read %s: %s", local, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return say(err, n, "cannot send %s: not a regular file", local);
    }
    char part[4200];
    snprintf(part, sizeof part, "%s.rasrun-part-%016llx", remote,
             fs_random_tag((unsigned long long)st.st_ino));
    LIBSSH2_SFTP_HANDLE *h = libssh2_sftp_open(c->sftp, part,
                                               LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_TRUNC,
                                               (long)(st.st_mode & 0777));
    if (!h) {
        close(fd);
        return say(err, n, "%s: cannot write %s: %s", c->label, part, sftp_reason(c));
    }
    int bulk = st.st_size >= (off_t)CHUNK, off = 0, on = 1;
    if (bulk)
        setsockopt(c->sock, IPPROTO_TCP, TCP_NODELAY, &off, sizeof off);
    int rc = write_range(c, h, fd, 0, st.st_size);
    if (bulk)
        setsockopt(c->sock, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    close(fd);
    LIBSSH2_SFTP_ATTRIBUTES a = { .flags = LIBSSH2_SFTP_ATTR_ACMODTIME,
                                  .atime = (unsigned long)st.st_atime,
                                  .mtime = (unsigned long)st.st_mtime };
    if (rc == 0 && libssh2_sftp_fsetstat(h, &a) != 0)
        rc = -1;
    char why[256] = "";
    if (rc != 0)
        transfer_failed(c, why, sizeof why);
    if (libssh2_sftp_close(h) != 0 && rc == 0) {
        rc = -1;
        transfer_failed(c, why, sizeof why);
    }
    if (rc != 0) {
        libssh2_sftp_unlink(c->sftp, part);
        if (c->stopped)
            return say(err, n, "%s: upload of %s stopped before its end", c->label, local);
        return say(err, n, "%s: upload of %s failed: %s", c->label, local, why);
    }
    if (libssh2_sftp_rename(c->sftp, part, remote) == 0)
        return 0;
    /* SFTP v3 rename refuses an existing target */
    LIBSSH2_SFTP_ATTRIBUTES there;
    if (!replace && libssh2_sftp_stat(c->sftp, remote, &there) == 0) {
        libssh2_sftp_unlink(c->sftp, part);
        return 0;
    }
    libssh2_sftp_unlink(c->sftp, remote);
    if (libssh2_sftp_rename(c->sftp, part, remote) != 0) {
        say(err, n, "%s: cannot rename %s: %s", c->label, part, sftp_reason(c));
        libssh2_sftp_unlink(c->sftp, part);
        return -1;
    }
    return 0;
}

int ssh_remove(ssh_conn *c, const char *remote, char *err, size_t n)
{
    if (ssh_sftp(c, err, n) != 0)
        return -1;
    if (libssh2_sftp_unlink(c->sftp, remote) != 0)
        return say(err, n, "%s: cannot remove %s: %s", c->label, remote, sftp_reason(c));
    return 0;
}

int ssh_put(ssh_conn *c, const char *local, const char *remote, char *err, size_t n)
{
    return put_file(c, local, remote, 1, err, n);
}

int ssh_put_new(ssh_conn *c, const char *local, const char *remote, char *err, size_t n)
{
    return put_file(c, local, remote, 0, err, n);
}

int ssh_get(ssh_conn *c, const char *remote, const char *local, char *err, size_t n)
{
    if (ssh_sftp(c, err, n) != 0)
        return -1;
    LIBSSH2_SFTP_HANDLE *h = libssh2_sftp_open(c->sftp, remote, LIBSSH2_FXF_READ, 0);
    if (!h)
        return say(err, n, "%s: cannot read %s: %s", c->label, remote, sftp_reason(c));
    LIBSSH2_SFTP_ATTRIBUTES a;
    memset(&a, 0, sizeof a);
    libssh2_sftp_fstat(h, &a);
    int fd = open(local, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        libssh2_sftp_close(h);
        return say(err, n, "cannot write %s: %s", local, strerror(e));
    }
    char *buf = malloc(CHUNK);
    int rc = buf ? 0 : -1;
    unsigned long long got = 0;
    int local_errno = 0;
    c->stopped = 0;
    for (;;) {
        if (!buf)
            break;
        if (stop_asked(c, 1)) {
            rc = -1;
            break;
        }
        ssize_t r = libssh2_sftp_read(h, buf, CHUNK);
        if (r == 0)
            break;
        if (r < 0) {
            rc = -1;
            break;
        }
        if (write(fd, buf, (size_t)r) != r) {
            rc = -1;
            local_errno = errno ? errno : ENOSPC;
            break;
        }
        c->file_received += (unsigned long long)r;
        got += (unsigned long long)r;
    }
    free(buf);
    char why[256] = "";
    if (local_errno)
        snprintf(why, sizeof why, "cannot write %s: %s", local, strerror(local_errno));
    else if (rc != 0)
        transfer_failed(c, why, sizeof why);
    libssh2_sftp_close(h);
    if (rc == 0 && (a.flags & LIBSSH2_SFTP_ATTR_ACMODTIME)) {
        struct timespec ts[2] = { { (time_t)a.atime, 0 }, { (time_t)a.mtime, 0 } };
        futimens(fd, ts);
    }
    if (close(fd) != 0)
        rc = -1;
    /* A file cut short on the host while it was read ends early, as a
     * whole one does: only its size at the open tells them apart. */
    int short_read = rc == 0 && (a.flags & LIBSSH2_SFTP_ATTR_SIZE) && got < a.filesize;
    if (rc != 0 || short_read) {
        unlink(local);
        if (short_read)
            return say(err, n,
                       "%s: download of %s ended after %llu of its %llu bytes (the file was cut "
                       "short on the host while it was read)",
                       c->label, remote, got, (unsigned long long)a.filesize);
        if (c->stopped)
            return say(err, n, "%s: download of %s stopped before its end", c->label, remote);
        return say(err, n, "%s: download of %s failed: %s", c->label, remote,
                   why[0] ? why : strerror(errno));
    }
    return 0;
}

int ssh_stat(ssh_conn *c, const char *remote, unsigned long long *size, double *mtime, char *err,
             size_t n)
{
    if (ssh_sftp(c, err, n) != 0)
        return -1;
    LIBSSH2_SFTP_ATTRIBUTES a;
    if (libssh2_sftp_stat(c->sftp, remote, &a) != 0) {
        if (libssh2_sftp_last_error(c->sftp) == LIBSSH2_FX_NO_SUCH_FILE)
            return 0;
        return say(err, n, "%s: cannot stat %s: %s", c->label, remote, sftp_reason(c));
    }
    if (size)
        *size = a.filesize;
    if (mtime)
        *mtime = (double)a.mtime;
    return 1;
}

int ssh_mkdirs(ssh_conn *c, const char *dir, char *err, size_t n)
{
    if (ssh_sftp(c, err, n) != 0)
        return -1;
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != 0)
            continue;
        char ch = *p;
        *p = 0;
        LIBSSH2_SFTP_ATTRIBUTES a;
        if (libssh2_sftp_stat(c->sftp, buf, &a) != 0 && libssh2_sftp_mkdir(c->sftp, buf, 0755) != 0)
            return say(err, n, "%s: cannot create folder %s: %s", c->label, buf, sftp_reason(c));
        *p = ch;
        if (!ch)
            break;
    }
    return 0;
}

int ssh_list(ssh_conn *c, const char *dir, ssh_list_fn fn, void *ud, char *err, size_t n)
{
    if (ssh_sftp(c, err, n) != 0)
        return -1;
    LIBSSH2_SFTP_HANDLE *h = libssh2_sftp_opendir(c->sftp, dir);
    if (!h)
        return say(err, n, "%s: cannot list %s: %s", c->label, dir, sftp_reason(c));
    char name[1024];
    LIBSSH2_SFTP_ATTRIBUTES a;
    int r;
    while ((r = libssh2_sftp_readdir(h, name, sizeof name, &a)) > 0) {
        if ((a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) && !LIBSSH2_SFTP_S_ISREG(a.permissions))
            continue;
        fn(ud, name, a.filesize, (double)a.mtime);
    }
    libssh2_sftp_closedir(h);
    if (r < 0)
        return say(err, n, "%s: listing %s failed: %s", c->label, dir, sftp_reason(c));
    return 0;
}

void ssh_quote(char *out, size_t n, const char *word)
{
    size_t k = 0;
    if (k + 1 < n)
        out[k++] = '\'';
    for (const char *p = word; *p && k + 5 < n; p++) {
        if (*p == '\'') {
            memcpy(out + k, "'\\''", 4);
            k += 4;
        } else {
            out[k++] = *p;
        }
    }
    if (k + 1 < n)
        out[k++] = '\'';
    out[k] = 0;
}
