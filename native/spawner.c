/*
 * jobrunner-spawner: the native spawner helper. It starts job processes for
 * the worker with vfork + execve, which costs the same whatever the caller's
 * size; Node's spawn() forks, copying the page tables of a whole V8 heap,
 * which made starting a job several times slower than running /bin/true.
 * It also carries every job's output to the worker over its own stdout, so
 * the worker handles one stream for all jobs instead of two connections per
 * job. src/engine/spawnerProcess.ts speaks the same protocol in Node, for
 * hosts where this was not built.
 *
 * Usage: jobrunner-spawner [--isolate [--hide DIR]... [--network none] [--group GID]]
 *        (stdin: commands; stdout: events; JOBRUNNER_WORKER_PID in the environment:
 *        the worker's pid, which must be our parent)
 *
 * With --isolate each job runs isolated (native/isolate.c): its own
 * PID and mount namespaces, a per-job cgroup holding every descendant, a uid
 * of its own when we are root (a user namespace when we are not), the DIRs
 * hidden, a private /tmp, resource limits, no new privileges, no inherited fds.
 *
 * Commands, one frame each: a 4-byte little-endian payload length, then
 * NUL-terminated strings:
 *   spawn ID FILE CWD MAKE_CWD ROOT CGROUP UID GID MEM PIDS CPU NOFILE FSIZE ARGC ARG... NAME=value...
 *                            CWD lies in ROOT (an absolute directory): it is opened beneath
 *                            ROOT at start, so a symlink swapped in cannot lead elsewhere;
 *                            MAKE_CWD is "1" to create CWD first (owned by UID:GID).
 *                            CGROUP names the job's cgroup; UID and GID are "-" to keep ours;
 *                            limits are "-" for none: MEM and FSIZE in bytes, CPU in seconds.
 *                            Without --isolate, ROOT to FSIZE are ignored.
 *   pause ID o|e             stop reading that output (the job blocks once its pipe is full)
 *   resume ID o|e
 *   close ID                 stop reading and close both outputs (a process that escaped
 *                            the job's group still holds them)
 *   lease MS                 the worker holds its lease for MS more milliseconds (sent after
 *                            each renewal in the database; MS a non-negative integer). The
 *                            first one arms a watchdog on CLOCK_MONOTONIC: when MS pass
 *                            without another, the lease has lapsed and the helper kills every
 *                            job it runs at once (their x events say LIMIT lease) and refuses
 *                            every spawn (e ID ELEASE) until the next lease command re-arms
 *                            it. Commands are taken in order, so a renewal that waited in the
 *                            pipe while the helper was stopped still counts. Without any
 *                            lease command there is no watchdog.
 *   forget CGROUP            a job cgroup of a helper that died (sent by the worker before
 *                            any spawn): what it still holds is killed, and it is removed
 *                            once empty. Ignored without --isolate.
 *
 * Events, each a line, a data event followed by its bytes:
 *   r LEVEL FEATURES MISSING CGROUP  ready: sent once, before any other event (the worker
 *                            holds its commands until then, so a helper that cannot run takes none).
 *                            LEVEL is off, full (own uids), reduced (user namespace) or none
 *                            (isolation asked for but impossible: every spawn fails with EPERM);
 *                            FEATURES and MISSING are comma-separated words, "-" for none;
 *                            CGROUP is the directory of job cgroups (each has cgroup.kill), or "-"
 *   s ID PID                 started
 *   e ID CODE                could not start (CODE is an errno name: ENOENT, EACCES, ...;
 *                            or ELEASE: refused, the lease has lapsed)
 *   d ID o|e LENGTH\n<bytes>  output
 *   c ID o|e                 that output reached its end
 *   x ID CODE SIGNAL GONE LIMIT  exited; CODE or SIGNAL is "-"; GONE is 1 when nothing of its
 *                            process group was left, 0 when leftovers were sent SIGKILL;
 *                            LIMIT is the limit it ran into (memory, pids, cpu), lease when
 *                            it was killed because the lease lapsed, or "-"
 * A job's events come in this order: s, then d and c in the order its
 * outputs were read, with x anywhere after s; after a close command nothing
 * more of its output.
 *
 * The helper never runs a job its worker no longer supervises. It exits,
 * killing every job first, when stdin closes or when its parent (the worker:
 * the pid in JOBRUNNER_WORKER_PID when set, else our parent at start) is gone;
 * the parent's death wakes it (PR_SET_PDEATHSIG, SIGHUP). Before each spawn
 * it checks both again, so a spawn read from the pipe after the helper was
 * itself stopped never starts once the worker has died. If the helper dies,
 * isolated jobs' inits die with it (their own PR_SET_PDEATHSIG) and take their
 * namespaces down.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "isolate.h"

#define MAX_FRAME (64u << 20)   /* far above what the API accepts for a command and environment */
#define ID_MAX 63
#define READ_MAX (64 * 1024)    /* one read of a job's output, one data event */
#define OUT_HIGH (1024 * 1024)  /* events buffered for the worker before we stop reading outputs */
#define LEASE_MAX_MS (1LL << 40) /* decades: keeps the deadline in range */

struct job {
  pid_t pid;
  char id[ID_MAX + 1];
  int fd[2];      /* read ends of its stdout and stderr pipes; -1 once closed */
  int paused[2];
  int exited;
  struct iso_job *iso; /* isolated: its init is pid */
  int starting;        /* isolated, not known to have execed yet: not announced, outputs not read */
  int fenced;          /* killed because the lease lapsed: its x event says so */
};

static struct job **jobs;
static size_t njobs, capjobs;

/* Events not yet taken by the worker (stdout is non-blocking). */
static char *out;
static size_t out_len, out_cap;

/* The worker's lease (lease command), on CLOCK_MONOTONIC: a paused worker renews nothing. */
static int lease_armed;              /* a lease command came: the watchdog runs */
static int lease_lapsed;             /* its deadline passed: jobs killed, spawns refused until renewed */
static long long lease_deadline_ns;

/* Our parent at start, the worker: once it is gone, nothing of ours may run on. */
static pid_t worker_pid;

static __attribute__((noreturn)) void die(const char *what) {
  fprintf(stderr, "jobrunner-spawner: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void put(const void *p, size_t n) {
  if (out_len + n > out_cap) {
    while (out_len + n > out_cap) out_cap = out_cap ? out_cap * 2 : 1 << 16;
    if (!(out = realloc(out, out_cap))) die("realloc");
  }
  memcpy(out + out_len, p, n);
  out_len += n;
}

static void putf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void putf(const char *fmt, ...) {
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  put(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static __attribute__((noreturn)) void leave(void);

/* Writes what the worker will take now; a failed write means it is gone. */
static void flush_out(void) {
  size_t at = 0;
  while (at < out_len) {
    ssize_t w = write(STDOUT_FILENO, out + at, out_len - at);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      leave();
    }
    at += (size_t)w;
  }
  memmove(out, out + at, out_len - at);
  out_len -= at;
}

static long long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* Kills a job now with everything it started: through its cgroup and init when isolated, else its process group. */
static void kill_job_now(struct job *j) {
  if (j->exited) return;
  if (j->iso) iso_kill(j->iso);
  else kill(-j->pid, SIGKILL);
}

/* Their x events follow as they are reaped. */
static void kill_every_job(int fenced) {
  for (size_t i = 0; i < njobs; i++) {
    if (jobs[i]->exited) continue;
    jobs[i]->fenced |= fenced;
    kill_job_now(jobs[i]);
  }
}

/* The worker is gone: nothing more will be asked, and no job may run unsupervised. */
static __attribute__((noreturn)) void leave(void) {
  kill_every_job(0);
  iso_kill_all();
  exit(0);
}

/*
 * Whether the worker is gone: it closed our stdin (a pipe or, from Node, a
 * socket; its data may still be unread), or our parent is no longer it.
 */
static int worker_gone(void) {
  struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN | POLLRDHUP };
  if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL))) return 1;
  return getppid() != worker_pid;
}

/*
 * Knows who the worker is and dies with it: SIGHUP (blocked, read from our
 * signalfd) when it exits. A worker that died before the prctl would send
 * nothing: then our parent is already no longer the pid it passed us.
 */
static void watch_worker(void) {
  const char *passed = getenv("JOBRUNNER_WORKER_PID");
  worker_pid = passed ? (pid_t)atoll(passed) : getppid();
  if (prctl(PR_SET_PDEATHSIG, SIGHUP) < 0) die("prctl");
  if (getppid() != worker_pid) exit(0);
}

static void renew_lease(long long ms) {
  lease_armed = 1;
  lease_lapsed = 0;
  lease_deadline_ns = now_ns() + ms * 1000000LL;
}

/* Whether the lease has lapsed; the moment it is first seen lapsed, every job is killed. */
static int lease_lapsed_now(void) {
  if (!lease_armed || lease_lapsed) return lease_lapsed;
  if (now_ns() < lease_deadline_ns) return 0;
  lease_lapsed = 1;
  kill_every_job(1);
  return 1;
}

/* How long poll may sleep: until the lease's deadline or iso_sweep's next work, whichever is first (ms, or -1). */
static int poll_timeout(void) {
  int t = iso_timeout();
  if (!lease_armed || lease_lapsed) return t;
  long long left = lease_deadline_ns - now_ns();
  long long ms = left <= 0 ? 0 : (left + 999999) / 1000000; /* rounded up: never wake before it */
  return t >= 0 && t < ms ? t : ms > INT_MAX ? INT_MAX : (int)ms;
}

static const char *errno_name(int e) {
  const char *name = strerrorname_np(e);
  return name ? name : "EIO";
}

static struct job *find(const char *id) {
  for (size_t i = 0; i < njobs; i++)
    if (strcmp(jobs[i]->id, id) == 0) return jobs[i];
  return NULL;
}

static void forget_if_done(struct job *j) {
  if (!j->exited || j->fd[0] >= 0 || j->fd[1] >= 0) return;
  for (size_t i = 0; i < njobs; i++) {
    if (jobs[i] != j) continue;
    jobs[i] = jobs[--njobs];
    free(j);
    return;
  }
}

static void close_output(struct job *j, int s, int announce) {
  if (j->fd[s] < 0) return;
  close(j->fd[s]);
  j->fd[s] = -1;
  if (announce) putf("c %s %c\n", j->id, s ? 'e' : 'o');
}

int mkdir_p(const char *path, mode_t mode) {
  if (mkdir(path, mode) == 0 || errno == EEXIST) return 0;
  if (errno != ENOENT) return -1;
  char buf[PATH_MAX];
  if (strlen(path) >= sizeof buf) return errno = ENAMETOOLONG, -1;
  strcpy(buf, path);
  char *slash = strrchr(buf, '/');
  if (!slash || slash == buf) return errno = ENOENT, -1;
  *slash = '\0';
  if (mkdir_p(buf, mode) < 0) return -1;
  return mkdir(path, mode) == 0 || errno == EEXIST ? 0 : -1;
}

/*
 * execvp's search, but over the job's own PATH (posix_spawnp would use ours),
 * and relative entries resolved against the job's cwd.
 */
int resolve_program(const char *file, char *const envp[], const char *cwd, char *out, size_t outlen) {
  if (strchr(file, '/')) {
    if (strlen(file) >= outlen) return ENAMETOOLONG;
    strcpy(out, file);
    return 0;
  }
  if (!*file) return ENOENT;
  const char *path = "/usr/bin:/bin";
  for (char *const *e = envp; *e; e++)
    if (strncmp(*e, "PATH=", 5) == 0) path = *e + 5;
  int seen_eacces = 0;
  for (const char *p = path;; p++) {
    const char *end = strchrnul(p, ':');
    int n;
    if (end == p) n = snprintf(out, outlen, "%s/%s", cwd, file);
    else if (*p == '/') n = snprintf(out, outlen, "%.*s/%s", (int)(end - p), p, file);
    else n = snprintf(out, outlen, "%s/%.*s/%s", cwd, (int)(end - p), p, file);
    struct stat st;
    if (n > 0 && (size_t)n < outlen && stat(out, &st) == 0 && S_ISREG(st.st_mode)) {
      if (access(out, X_OK) == 0) return 0;
      seen_eacces = 1;
    }
    if (!*end) break;
    p = end;
  }
  return seen_eacces ? EACCES : ENOENT;
}

/*
 * vfork + execve: the child borrows our memory until it execs, so starting a
 * job costs the same whatever our size, without copying page tables the way
 * fork() does. Not posix_spawn: glibc's leaves its two internal real-time
 * signals ignored in the child, and ignored signals survive exec, so every
 * job would inherit them. We install no signal handlers, so nothing of ours
 * can run in the child while it shares our memory. Returns the pid, or -1
 * with *error set when the program could not be started.
 */
static pid_t spawn_child(const char *program, char *const argv[], char *const sh_argv[], char *const envp[], const char *cwd, int out, int err, int *error) {
  static volatile int child_errno;
  child_errno = 0;
  pid_t pid = vfork();
  if (pid == 0) {
    /* Own session and process group: the worker signals the whole group. */
    if (setsid() < 0) goto failed;
    int null = open("/dev/null", O_RDONLY);
    if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 || dup2(err, STDERR_FILENO) < 0) goto failed;
    if (null > STDERR_FILENO) close(null);
    if (chdir(cwd) < 0) goto failed;
    /* Default disposition for every signal (raw: glibc's sigaction() refuses
       its own two; an all-zero kernel sigaction is SIG_DFL on every layout),
       and nothing blocked (we block SIGCHLD for the signalfd). */
    unsigned long dfl[4] = { 0, 0, 0, 0 }, none = 0;
    for (int sig = 1; sig <= 64; sig++)
      if (sig != SIGKILL && sig != SIGSTOP) syscall(SYS_rt_sigaction, sig, dfl, NULL, 8);
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, 8);
    execve(program, argv, envp);
    /* A script without a #! line: run it with the shell, as execvp (and so Node's spawn) does. */
    if (errno == ENOEXEC) execve("/bin/sh", sh_argv, envp);
  failed:
    child_errno = errno;
    _exit(127);
  }
  if (pid < 0) {
    *error = errno;
    return -1;
  }
  if (child_errno) {
    /* The child has exited: reap it here, it was never announced. */
    *error = child_errno;
    waitpid(pid, NULL, 0);
    return -1;
  }
  return pid;
}

/* One read of a job's output, passed on as a data event; the end as a c event. */
static void read_output(struct job *j, int s) {
  static char buf[READ_MAX];
  ssize_t n = read(j->fd[s], buf, sizeof buf);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    close_output(j, s, 1);
    forget_if_done(j);
    return;
  }
  putf("d %s %c %zd\n", j->id, s ? 'e' : 'o', n);
  put(buf, (size_t)n);
}

static void fail(const char *id, int e) {
  putf("e %s %s\n", id, errno_name(e));
}

/* "-" or a number (the spawn command's limits and ids). */
static long long num(const char *field) {
  return strcmp(field, "-") == 0 ? -1 : strtoll(field, NULL, 10);
}

static __attribute__((noreturn)) void malformed(void) {
  fprintf(stderr, "jobrunner-spawner: malformed command\n");
  exit(1);
}

enum { F_ID = 1, F_FILE, F_CWD, F_MAKE_CWD, F_ROOT, F_CGROUP, F_UID, F_GID, F_MEM, F_PIDS, F_CPU, F_NOFILE, F_FSIZE, F_ARGC, F_ARGS };

static void spawn_job(char **f, size_t nfields) {
  if (nfields < F_ARGS || strlen(f[F_ID]) > ID_MAX || strpbrk(f[F_ID], " \n") || strchr(f[F_CGROUP], '/') || f[F_CGROUP][0] == '.') malformed();
  const char *id = f[F_ID], *file = f[F_FILE], *cwd = f[F_CWD];
  /* The spawn may have waited in the pipe while we were stopped: its worker may be gone since. */
  if (worker_gone()) leave();
  if (lease_lapsed_now()) {
    putf("e %s ELEASE\n", id);
    return;
  }
  struct iso_spec sp = {
    .root = f[F_ROOT], .cwd = cwd, .make_cwd = strcmp(f[F_MAKE_CWD], "1") == 0, .cgroup = f[F_CGROUP],
    .uid = num(f[F_UID]), .gid = num(f[F_GID]), .mem = num(f[F_MEM]), .pids = num(f[F_PIDS]), .cpu = num(f[F_CPU]),
    .nofile = num(f[F_NOFILE]), .fsize = num(f[F_FSIZE]),
  };
  size_t argc = strtoul(f[F_ARGC], NULL, 10);
  if (F_ARGS + argc > nfields) malformed();
  /* argv[0] is the program as given, like Node's spawn(file, args). The
     shell's argv is made here too: the vfork child must not allocate. */
  char **argv = malloc((argc + 2) * sizeof *argv);
  char **sh_argv = malloc((argc + 3) * sizeof *sh_argv);
  if (!argv || !sh_argv) die("malloc");
  argv[0] = (char *)file;
  for (size_t i = 0; i < argc; i++) argv[i + 1] = f[F_ARGS + i];
  argv[argc + 1] = NULL;
  char program[PATH_MAX];
  sh_argv[0] = "/bin/sh";
  sh_argv[1] = program;
  memcpy(sh_argv + 2, argv + 1, (argc + 1) * sizeof *argv);
  char **envp = f + F_ARGS + argc; /* the rest; f is NULL-terminated */

  int rc = 0, po[2] = { -1, -1 }, pe[2] = { -1, -1 };
  struct iso_job *iso = NULL;
  pid_t pid = -1;
  if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) rc = errno;
  else if (iso_enabled()) pid = iso_spawn(&sp, file, argv, envp, po[1], pe[1], &rc, &iso);
  else {
    if (sp.make_cwd && mkdir_p(cwd, 0750) < 0) rc = errno;
    if (!rc) rc = resolve_program(file, envp, cwd, program, sizeof program);
    if (!rc) pid = spawn_child(program, argv, sh_argv, envp, cwd, po[1], pe[1], &rc);
  }
  /* The child holds its own copies of the write ends. */
  if (po[1] >= 0) close(po[1]);
  if (pe[1] >= 0) close(pe[1]);
  free(argv);
  free(sh_argv);
  if (rc) {
    if (po[0] >= 0) close(po[0]);
    if (pe[0] >= 0) close(pe[0]);
    fail(id, rc);
    return;
  }
  struct job *j = calloc(1, sizeof *j);
  if (!j) die("calloc");
  j->pid = pid;
  j->iso = iso;
  /* An isolated job sets itself up while we go on; it is announced once it has execed. */
  j->starting = iso != NULL;
  snprintf(j->id, sizeof j->id, "%s", id);
  j->fd[0] = po[0];
  j->fd[1] = pe[0];
  fcntl(po[0], F_SETFL, O_NONBLOCK);
  fcntl(pe[0], F_SETFL, O_NONBLOCK);
  if (njobs == capjobs) {
    capjobs = capjobs ? capjobs * 2 : 64;
    if (!(jobs = realloc(jobs, capjobs * sizeof *jobs))) die("realloc");
  }
  jobs[njobs++] = j;
  if (!j->starting) putf("s %s %d\n", id, (int)pid);
}

/* An isolated job whose start was pending: announces it, or its failure (it is gone then). 0: still pending. */
static int settle_start(struct job *j, int init_reaped) {
  int e = 0, r = iso_started(j->iso, init_reaped, &e);
  if (r == 0) return 0;
  j->starting = 0;
  if (r > 0) {
    putf("s %s %d\n", j->id, (int)j->pid);
    return 1;
  }
  fail(j->id, e);
  j->iso = NULL;
  j->exited = 1;
  close_output(j, 0, 0);
  close_output(j, 1, 0);
  forget_if_done(j);
  return -1;
}

static void command(char *payload, size_t len) {
  /* Split the payload into its NUL-terminated fields. */
  size_t nfields = 0;
  for (size_t i = 0; i < len; i++) nfields += payload[i] == '\0';
  char **f = malloc((nfields + 1) * sizeof *f);
  if (!f) die("malloc");
  for (size_t i = 0, k = 0, at = 0; i < len; i++)
    if (payload[i] == '\0') f[k++] = payload + at, at = i + 1;
  f[nfields] = NULL;
  if (nfields >= 1 && strcmp(f[0], "spawn") == 0) {
    spawn_job(f, nfields);
  } else if (nfields == 2 && strcmp(f[0], "lease") == 0) {
    char *end;
    long long ms = strtoll(f[1], &end, 10);
    if (end == f[1] || *end || ms < 0) malformed();
    renew_lease(ms < LEASE_MAX_MS ? ms : LEASE_MAX_MS);
  } else if (nfields == 2 && strcmp(f[0], "forget") == 0) {
    iso_forget(f[1]);
  } else if (nfields >= 2) {
    struct job *j = find(f[1]);
    int s = nfields >= 3 && strcmp(f[2], "e") == 0;
    /* An unknown id is a job already gone: nothing to do. */
    if (j && strcmp(f[0], "pause") == 0) j->paused[s] = 1;
    else if (j && strcmp(f[0], "resume") == 0) j->paused[s] = 0;
    else if (j && strcmp(f[0], "close") == 0) {
      close_output(j, 0, 0);
      close_output(j, 1, 0);
      forget_if_done(j);
    }
  }
  free(f);
}

/* Our jobs, and orphans of their groups (we are their subreaper). */
static void reap(void) {
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    for (size_t i = 0; i < njobs; i++) {
      struct job *j = jobs[i];
      if (j->pid != pid || j->exited) continue;
      if (j->starting && settle_start(j, 1) < 0) break;
      char code[16] = "-", sig[16] = "-";
      const char *limit = NULL;
      int gone;
      if (j->iso) {
        /* Its init: the namespace died with it, and the cgroup is killed. */
        status = iso_finished(j->iso, status, &limit);
        j->iso = NULL;
        gone = 1;
      } else {
        /* Leftover background children would keep the job's output open and
           outlive it; the worker goes on killing the group until it is gone. */
        gone = kill(-pid, SIGKILL) < 0 && errno == ESRCH;
      }
      if (WIFEXITED(status)) snprintf(code, sizeof code, "%d", WEXITSTATUS(status));
      else if (WIFSIGNALED(status)) snprintf(sig, sizeof sig, "%d", WTERMSIG(status));
      if (j->fenced) limit = "lease";
      putf("x %s %s %s %d %s\n", j->id, code, sig, gone, limit ? limit : "-");
      j->exited = 1;
      forget_if_done(j);
      break;
    }
  }
}

int main(int argc, char **argv) {
  if (iso_setup(argc - 1, argv + 1) < 0) {
    fprintf(stderr, "usage: jobrunner-spawner [--isolate [--hide DIR]... [--network none] [--group GID]] (commands on stdin, events on stdout)\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  /* Orphaned members of a job's group are ours to reap, at once: init may
     reap on a timer (seen: ~2 s), and until then the worker sees the group
     alive and waits before finishing the job. */
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  sigset_t wake;
  sigemptyset(&wake);
  sigaddset(&wake, SIGCHLD);
  sigaddset(&wake, SIGHUP);
  if (sigprocmask(SIG_BLOCK, &wake, NULL) < 0) die("sigprocmask");
  int sfd = signalfd(-1, &wake, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) die("signalfd");
  watch_worker();
  fcntl(STDOUT_FILENO, F_SETFL, fcntl(STDOUT_FILENO, F_GETFL) | O_NONBLOCK);
  char ready[1200];
  iso_ready_line(ready, sizeof ready);
  put(ready, strlen(ready));

  size_t cap = 1 << 16, have = 0;
  char *buf = malloc(cap);
  if (!buf) die("malloc");
  struct pollfd *fds = NULL;
  struct polled { struct job *job; int s; } *who = NULL;
  size_t capfds = 0;
  for (;;) {
    size_t n = 0, need = 3 + 3 * njobs;
    if (need > capfds) {
      capfds = need * 2;
      free(fds);
      free(who);
      fds = malloc(capfds * sizeof *fds);
      who = malloc(capfds * sizeof *who);
      if (!fds || !who) die("malloc");
    }
    fds[n++] = (struct pollfd){ .fd = STDIN_FILENO, .events = POLLIN };
    fds[n++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
    fds[n++] = (struct pollfd){ .fd = out_len ? STDOUT_FILENO : -1, .events = POLLOUT };
    for (size_t i = 0; i < njobs; i++)
      if (jobs[i]->starting) {
        who[n].job = jobs[i];
        who[n].s = 2;
        fds[n++] = (struct pollfd){ .fd = iso_start_fd(jobs[i]->iso), .events = POLLIN };
      }
    /* While the worker is behind, outputs wait in their pipes, and jobs block on a full one. */
    if (out_len < OUT_HIGH) {
      for (size_t i = 0; i < njobs; i++)
        for (int s = 0; s < 2; s++)
          if (jobs[i]->fd[s] >= 0 && !jobs[i]->paused[s] && !jobs[i]->starting) {
            who[n].job = jobs[i];
            who[n].s = s;
            fds[n++] = (struct pollfd){ .fd = jobs[i]->fd[s], .events = POLLIN };
          }
    }
    if (poll(fds, n, poll_timeout()) < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    /* Starts first: a job is announced before its exit and its output. */
    for (size_t i = 3; i < n && who[i].s == 2; i++)
      if (fds[i].revents) settle_start(who[i].job, 0);
    if (fds[1].revents) {
      struct signalfd_siginfo si;
      int hup = 0;
      while (read(sfd, &si, sizeof si) == sizeof si) hup |= si.ssi_signo == SIGHUP;
      if (hup && worker_gone()) leave();
      reap();
    }
    iso_sweep();
    /* Outputs before commands: a close command may free a job polled here. */
    for (size_t i = 3; i < n; i++)
      if (who[i].s < 2 && fds[i].revents && who[i].job->fd[who[i].s] == fds[i].fd) read_output(who[i].job, who[i].s);
    if (fds[0].revents) {
      if (have == cap) {
        cap *= 2;
        if (!(buf = realloc(buf, cap))) die("realloc");
      }
      ssize_t r = read(STDIN_FILENO, buf + have, cap - have);
      if (r < 0 && errno != EINTR && errno != EAGAIN) die("read");
      if (r == 0) leave();
      if (r > 0) have += (size_t)r;
      size_t at = 0;
      while (have - at >= 4) {
        uint32_t len;
        memcpy(&len, buf + at, 4); /* little-endian: the only byte order we build for */
        if (len > MAX_FRAME) {
          fprintf(stderr, "jobrunner-spawner: command of %u bytes refused\n", len);
          return 1;
        }
        if (have - at - 4 < len) {
          if (cap < (size_t)len + 4) {
            cap = (size_t)len + 4;
            if (!(buf = realloc(buf, cap))) die("realloc");
          }
          break;
        }
        command(buf + at + 4, len);
        at += 4 + len;
      }
      memmove(buf, buf + at, have - at);
      have -= at;
    }
    /* After the commands: a renewal read late (we were stopped) still counts. */
    lease_lapsed_now();
    if (out_len) flush_out();
  }
}
