/*
 * jobrunner-spawner: the native spawner helper. It starts job processes for
 * the worker with vfork + execve, which costs the same whatever the caller's
 * size; Node's spawn() forks, copying the page tables of a whole V8 heap,
 * which made starting a job several times slower than running /bin/true. src/engine/spawnerProcess.ts
 * speaks the same protocol in Node, for hosts where this was not built.
 *
 * Usage: jobrunner-spawner SOCKET_PATH
 *
 * Requests on stdin, one frame each: a 4-byte little-endian payload length,
 * then NUL-terminated strings: id, file, cwd, make-cwd ("1" or "0"), argc,
 * argc arguments, then "NAME=value" environment entries to the end.
 *
 * Events on stdout, one line each:
 *   s ID PID OUT_ID ERR_ID   started; its stdout/stderr are connections OUT_ID, ERR_ID
 *   e ID CODE                could not start (CODE is an errno name: ENOENT, EACCES, ...)
 *   x ID CODE SIGNAL GONE    exited; CODE or SIGNAL is "-"; GONE is 1 when nothing of
 *                            its process group was left, 0 when leftovers were sent SIGKILL
 *
 * Output never passes through here: a job's stdout and stderr are unix-socket
 * connections to the worker, opened ahead of time and announced by a 39-byte
 * header "<36-char id> p\n", so backpressure goes from the worker to the job.
 * The helper exits when stdin closes (the worker is gone).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define POOL_TARGET 16          /* spare connections: two per job, enough for a burst of starts */
#define MAX_FRAME (64u << 20)   /* far above what the API accepts for a command and environment */
#define ID_MAX 63

struct conn { int fd; char id[37]; };
struct child { pid_t pid; char id[ID_MAX + 1]; };

static const char *sock_path;
static struct conn pool[POOL_TARGET];
static int npool;
static unsigned long long next_conn;
static struct child *children;
static size_t nchildren, capchildren;

static void die(const char *what) {
  fprintf(stderr, "jobrunner-spawner: %s: %s\n", what, strerror(errno));
  exit(1);
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* The worker reads events as lines; a failed write means it is gone. */
static void emit(const char *line) {
  if (write_all(STDOUT_FILENO, line, strlen(line)) < 0) exit(0);
}

static const char *errno_name(int e) {
  const char *name = strerrorname_np(e);
  return name ? name : "EIO";
}

static int open_conn(struct conn *c) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  strncpy(addr.sun_path, sock_path, sizeof addr.sun_path - 1);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  snprintf(c->id, sizeof c->id, "%08x-0000-4000-9000-%012llx", (unsigned)getpid(), next_conn++);
  char header[40];
  snprintf(header, sizeof header, "%s p\n", c->id);
  if (write_all(fd, header, 39) < 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  c->fd = fd;
  return 0;
}

static void refill(void) {
  /* The worker is going away or overloaded: take_conn() connects on demand meanwhile. */
  while (npool < POOL_TARGET && open_conn(&pool[npool]) == 0) npool++;
}

static int take_conn(struct conn *c) {
  if (npool > 0) {
    *c = pool[0];
    memmove(pool, pool + 1, sizeof pool[0] * (size_t)--npool);
    return 0;
  }
  return open_conn(c);
}

static int mkdir_p(const char *path, mode_t mode) {
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
static int resolve_program(const char *file, char *const envp[], const char *cwd, char *out, size_t outlen) {
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
static pid_t spawn_child(const char *program, char *const argv[], char *const envp[], const char *cwd, int out, int err, int *error) {
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

static void remember(pid_t pid, const char *id) {
  if (nchildren == capchildren) {
    capchildren = capchildren ? capchildren * 2 : 64;
    children = realloc(children, capchildren * sizeof *children);
    if (!children) die("realloc");
  }
  children[nchildren].pid = pid;
  snprintf(children[nchildren].id, sizeof children[nchildren].id, "%s", id);
  nchildren++;
}

static void fail(const char *id, int e) {
  char line[128];
  snprintf(line, sizeof line, "e %s %s\n", id, errno_name(e));
  emit(line);
}

static void start(char *payload, size_t len) {
  /* Split the payload into its NUL-terminated fields. */
  size_t nfields = 0;
  for (size_t i = 0; i < len; i++) nfields += payload[i] == '\0';
  char **f = malloc((nfields + 1) * sizeof *f);
  if (!f) die("malloc");
  for (size_t i = 0, k = 0, at = 0; i < len; i++)
    if (payload[i] == '\0') f[k++] = payload + at, at = i + 1;

  if (nfields < 5 || strlen(f[0]) > ID_MAX || strchr(f[0], ' ') || strchr(f[0], '\n')) {
    fprintf(stderr, "jobrunner-spawner: malformed request\n");
    exit(1);
  }
  const char *id = f[0], *file = f[1], *cwd = f[2];
  int make_cwd = strcmp(f[3], "1") == 0;
  size_t argc = strtoul(f[4], NULL, 10);
  if (5 + argc > nfields) {
    fprintf(stderr, "jobrunner-spawner: malformed request\n");
    exit(1);
  }
  /* argv[0] is the program as given, like Node's spawn(file, args). */
  char **argv = malloc((argc + 2) * sizeof *argv);
  if (!argv) die("malloc");
  argv[0] = (char *)file;
  for (size_t i = 0; i < argc; i++) argv[i + 1] = f[5 + i];
  argv[argc + 1] = NULL;
  char **envp = f + 5 + argc; /* the rest, NULL-terminated below */
  f[nfields] = NULL;

  struct conn out = { -1, "" }, err = { -1, "" };
  char program[PATH_MAX];
  int rc = 0;
  if (make_cwd && mkdir_p(cwd, 0750) < 0) rc = errno;
  if (!rc) rc = resolve_program(file, envp, cwd, program, sizeof program);
  if (!rc && (take_conn(&out) < 0 || take_conn(&err) < 0)) rc = errno;

  pid_t pid = rc ? -1 : spawn_child(program, argv, envp, cwd, out.fd, err.fd, &rc);
  /* The child holds its own copies; ours would keep the streams open. */
  if (out.fd >= 0) close(out.fd);
  if (err.fd >= 0) close(err.fd);

  if (rc) {
    fail(id, rc);
  } else {
    remember(pid, id);
    char line[256];
    snprintf(line, sizeof line, "s %s %d %s %s\n", id, (int)pid, out.id, err.id);
    emit(line);
  }
  free(argv);
  free(f);
}

/* Our jobs, and orphans of their groups (we are their subreaper). */
static void reap(void) {
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    for (size_t i = 0; i < nchildren; i++) {
      if (children[i].pid != pid) continue;
      char code[16] = "-", sig[16] = "-", line[128];
      if (WIFEXITED(status)) snprintf(code, sizeof code, "%d", WEXITSTATUS(status));
      else if (WIFSIGNALED(status)) snprintf(sig, sizeof sig, "%d", WTERMSIG(status));
      /* Leftover background children would keep the job's output open and
         outlive it; the worker goes on killing the group until it is gone. */
      int gone = kill(-pid, SIGKILL) < 0 && errno == ESRCH;
      snprintf(line, sizeof line, "x %s %s %s %d\n", children[i].id, code, sig, gone);
      emit(line);
      children[i] = children[--nchildren];
      break;
    }
  }
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: jobrunner-spawner SOCKET_PATH\n");
    return 2;
  }
  sock_path = argv[1];
  if (strlen(sock_path) >= sizeof ((struct sockaddr_un *)0)->sun_path) {
    fprintf(stderr, "jobrunner-spawner: socket path too long\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  /* Orphaned members of a job's group are ours to reap, at once: init may
     reap on a timer (seen: ~2 s), and until then the worker sees the group
     alive and waits before finishing the job. */
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  if (sigprocmask(SIG_BLOCK, &chld, NULL) < 0) die("sigprocmask");
  int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) die("signalfd");
  refill();

  size_t cap = 1 << 16, have = 0;
  char *buf = malloc(cap);
  if (!buf) die("malloc");
  struct pollfd fds[2] = { { .fd = STDIN_FILENO, .events = POLLIN }, { .fd = sfd, .events = POLLIN } };
  for (;;) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    if (fds[1].revents) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) == sizeof si) {}
      reap();
    }
    if (fds[0].revents) {
      if (have == cap) {
        cap *= 2;
        if (!(buf = realloc(buf, cap))) die("realloc");
      }
      ssize_t n = read(STDIN_FILENO, buf + have, cap - have);
      if (n < 0 && errno != EINTR && errno != EAGAIN) die("read");
      if (n == 0) return 0; /* the worker is gone: nothing more will be asked */
      if (n > 0) have += (size_t)n;
      size_t at = 0;
      while (have - at >= 4) {
        uint32_t len;
        memcpy(&len, buf + at, 4); /* little-endian: the only byte order we build for */
        if (len > MAX_FRAME) {
          fprintf(stderr, "jobrunner-spawner: request of %u bytes refused\n", len);
          return 1;
        }
        if (have - at - 4 < len) {
          if (cap < (size_t)len + 4) {
            cap = (size_t)len + 4;
            if (!(buf = realloc(buf, cap))) die("realloc");
          }
          break;
        }
        start(buf + at + 4, len);
        at += 4 + len;
      }
      memmove(buf, buf + at, have - at);
      have -= at;
      refill();
    }
  }
}
