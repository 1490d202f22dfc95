/* SSH connections over libssh2: connect with a time limit, verify the host
 * key against known_hosts, authenticate (agent, key files, password from the
 * environment), run commands, move files with SFTP. Blocking calls, each
 * bounded by the connection's I/O timeout. One connection is used by one
 * thread at a time. Messages name the worker, user, host and port; never a
 * password or passphrase. */
#ifndef RASRUN_SSH_CONN_H
#define RASRUN_SSH_CONN_H

#include <stddef.h>
#include <sys/types.h>
#include <libssh2.h>
#include <libssh2_sftp.h>

typedef struct {
    const char *name;           /* worker name, for messages */
    const char *host;           /* address or name to connect to */
    const char *addr;           /* when set, the address to connect to (host still names the host key) */
    int port;
    const char *user;
    char **identities;          /* private key files to try */
    int nidentities;
    int agent;                  /* try ssh-agent (SSH_AUTH_SOCK) */
    const char *password_env;   /* environment variable holding the password */
    const char *passphrase_env; /* ... holding the key files' passphrase */
    const char *known_hosts;    /* file */
    int accept_new;             /* unknown host keys are recorded, not refused */
    double connect_timeout;     /* seconds: TCP connect, handshake, auth */
    double io_timeout;          /* seconds: any later blocking call */
    const char *macs, *ciphers; /* comma lists in order of preference; NULL: defaults */
} ssh_target;

typedef struct ssh_conn {
    int sock;
    LIBSSH2_SESSION *s;
    LIBSSH2_SFTP *sftp;
    char label[512];            /* "ssh node1 (ras@10.1.0.5:22)" */
    unsigned long long wire_sent, wire_received; /* bytes on the socket */
    unsigned long long file_sent, file_received; /* file payload moved by SFTP */
    double last_rx;             /* monotonic: anything arrived from the server */
    double io_timeout;
    /* Asked between the requests of an SFTP transfer: non-zero stops it,
     * and the transfer fails saying so (a cancelled attempt does not wait
     * for its files); 2 also cuts the connection under a download, which
     * nothing else needs then (ssh_cut). NULL: transfers run to their end. */
    int (*stop)(void *ud);
    void *stop_ud;
    int stopped;                /* the last transfer ended because stop said so */
    /* Called (with stop_ud) after every send or receive on the socket, with
     * the wire counters updated: how far a transfer has got. NULL: none. */
    void (*moved)(void *ud);
} ssh_conn;

/* Connects, checks the host key, authenticates. On failure *refused (when
 * given) says whether the host refused us (host key, authentication):
 * retrying cannot help then, unlike a host that did not answer. */
ssh_conn *ssh_connect(const ssh_target *t, int *refused, char *err, size_t n);
void ssh_close(ssh_conn *c);
/* Shuts the connection's socket: every later call on it fails at once
 * (instead of waiting io_timeout for a peer that no longer answers). */
void ssh_cut(ssh_conn *c);

/* Runs cmd (through the login shell), feeding input (may be NULL); collects
 * stdout/stderr (caller frees) and the exit status. timeout bounds the run.
 * Returns 0 when the command ran (whatever its status), -1 on a session error. */
int ssh_exec(ssh_conn *c, const char *cmd, const char *input, char **out, char **errout,
             int *exit_code, double timeout, char *err, size_t n);

/* Like ssh_exec, with the input pulled from source: it fills buf with up to
 * n bytes and returns the count, 0 at the end, or -1 to abandon the command
 * (ssh_exec_stream then returns -1 and leaves err to the source). */
typedef ssize_t (*ssh_source_fn)(void *ud, char *buf, size_t n);
int ssh_exec_stream(ssh_conn *c, const char *cmd, ssh_source_fn source, void *ud, char **out,
                    char **errout, int *exit_code, double timeout, char *err, size_t n);

/* SFTP. Uploads write to "<remote>.rasrun-part-<random>" and rename into place; both
 * directions keep the modification time. Requests are CHUNK bytes, so that
 * libssh2 keeps many SFTP packets in flight. */
int ssh_sftp(ssh_conn *c, char *err, size_t n);
int ssh_put(ssh_conn *c, const char *local, const char *remote, char *err, size_t n);
/* As ssh_put, but a remote file already there is kept (and the upload
 * dropped): for content-named files, which another run may be sending too. */
int ssh_put_new(ssh_conn *c, const char *local, const char *remote, char *err, size_t n);
int ssh_get(ssh_conn *c, const char *remote, const char *local, char *err, size_t n);
/* Removes a file on the host. */
int ssh_remove(ssh_conn *c, const char *remote, char *err, size_t n);
/* 1 exists (size and mtime filled), 0 absent, -1 error. */
int ssh_stat(ssh_conn *c, const char *remote, unsigned long long *size, double *mtime, char *err,
             size_t n);
int ssh_mkdirs(ssh_conn *c, const char *dir, char *err, size_t n);
/* Calls fn for every regular file in dir (not recursive). */
typedef void (*ssh_list_fn)(void *ud, const char *name, unsigned long long size, double mtime);
int ssh_list(ssh_conn *c, const char *dir, ssh_list_fn fn, void *ud, char *err, size_t n);

/* After a failed call: is the connection itself gone (socket error, time
 * out), rather than one request refused (no such file, permission)? */
int ssh_broken(ssh_conn *c);

/* Sends a keepalive when one is due (interval seconds after the last one);
 * returns -1 when the session failed. */
int ssh_keepalive(ssh_conn *c, unsigned interval);

/* Has the kernel probe an idle connection (TCP keepalives: the first after
 * interval seconds without traffic, then every half interval) and give up
 * on it after two probes unanswered: the socket then reports an error
 * (POLLERR), with no SSH packet to read or write. Returns the seconds a
 * dead link takes to show. */
double ssh_probe_idle(ssh_conn *c, unsigned interval);

/* The last libssh2 error of the session as text. */
const char *ssh_error(ssh_conn *c);

/* Single-quotes a word for the remote POSIX shell into out. */
void ssh_quote(char *out, size_t n, const char *word);

#endif
