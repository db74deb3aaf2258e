/*
 * Job isolation for jobrunner-spawner, set up between clone and exec.
 *
 * Each job gets an init of ours: cloned into new PID and mount namespaces
 * (and a user namespace when we are not root, a network namespace with
 * --network none), it joins the job's cgroup, hides the data directories and
 * /tmp behind empty tmpfs mounts (bringing the job's cwd back at its real
 * path), mounts a /proc of the namespace, then vforks the job: new identity,
 * limits, no new privileges, no inherited fds. Init stays PID 1 of the
 * namespace, reaping orphans and passing signals on to every process in it;
 * when the job exits it reports the job's status and exits, and the kernel
 * kills whatever is left in the namespace. It dies with us (PDEATHSIG).
 *
 * The cgroup (v2 for tracking and cgroup.kill, with the v2 controllers or,
 * on hybrid hosts, the v1 memory, pids and cpuacct hierarchies) holds every
 * descendant and carries the memory and process limits; CPU time is read from
 * it and enforced here.
 */
#define _GNU_SOURCE
#include "isolate.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <grp.h>
#include <time.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

enum level { OFF, FULL, REDUCED, NONE };
static const char *level_names[] = { "off", "full", "reduced", "none" };
static enum level level = OFF;
static int net_none;
static long long job_group = -1;
#define MAX_HIDE 16
static const char *hide[MAX_HIDE];
static size_t nhide;
static char features[512], missing[512];

/* The cgroup hierarchies we use, each a "<mount>/jobrunner" directory. */
enum { CG2, CG_MEM, CG_PIDS, CG_CPU, NCG };
static char cg_base[NCG][PATH_MAX];
/* Where each resource lives: which hierarchy, or -1. */
static int cg_memory = -1, cg_pids = -1, cg_cpu = -1;
static int cg_kill; /* cgroup v2 has cgroup.kill */

struct iso_job {
  pid_t init;
  int start_fd;           /* until the job has execed: closes empty then, or carries the errno */
  int status_fd;          /* init writes the job's wait status here before it exits */
  int running;
  long long cpu_ns;       /* CPU limit, 0: none */
  const char *limit;      /* set when we ended it for its CPU limit */
  char name[96];
  int removing;           /* its cgroup is to be removed once empty */
  struct iso_job *next;
};
static struct iso_job *all;

static void add_word(char *list, const char *word) {
  size_t n = strlen(list);
  snprintf(list + n, 512 - n, "%s%s", n ? "," : "", word);
}

static int write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t w = write(fd, text, strlen(text));
  int e = errno;
  close(fd);
  errno = e;
  return w == (ssize_t)strlen(text) ? 0 : -1;
}

static long long read_key(const char *path, const char *key) {
  char buf[4096];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  if (!key) return atoll(buf);
  size_t klen = strlen(key);
  for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
    if (strncmp(line, key, klen) == 0 && line[klen] == ' ') return atoll(line + klen + 1);
  return -1;
}

static void cg_path(char *out, int h, const char *name, const char *file) {
  snprintf(out, PATH_MAX, "%s/%s%s%s", cg_base[h], name, file ? "/" : "", file ? file : "");
}

/* Finds the cgroup mounts and makes our "jobrunner" directory in each we may use. */
static void probe_cgroups(void) {
  FILE *f = fopen("/proc/self/mountinfo", "re");
  char line[4096];
  while (f && fgets(line, sizeof line, f)) {
    char mnt[PATH_MAX], type[64], opts[1024];
    char *sep = strstr(line, " - ");
    if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 || sscanf(sep + 3, "%63s %*s %1023s", type, opts) != 2) continue;
    int h = -1;
    if (strcmp(type, "cgroup2") == 0) h = CG2;
    else if (strcmp(type, "cgroup") == 0) {
      for (char *o = strtok(opts, ","); o; o = strtok(NULL, ","))
        if (strcmp(o, "memory") == 0) h = CG_MEM;
        else if (strcmp(o, "pids") == 0) h = CG_PIDS;
        else if (strcmp(o, "cpuacct") == 0) h = CG_CPU;
    }
    if (h < 0 || cg_base[h][0]) continue;
    snprintf(cg_base[h], PATH_MAX, "%s/jobrunner", mnt);
    /* Another server (root) may have made it: ours only if we may make job cgroups in it. */
    if ((mkdir(cg_base[h], 0755) < 0 && errno != EEXIST) || access(cg_base[h], W_OK) < 0) cg_base[h][0] = '\0';
  }
  if (f) fclose(f);
  char p[PATH_MAX];
  if (cg_base[CG2][0]) {
    snprintf(p, sizeof p, "%s/cgroup.kill", cg_base[CG2]);
    cg_kill = access(p, W_OK) == 0;
    add_word(features, cg_kill ? "cgroup2-kill" : "cgroup2");
    /* Controllers on the unified hierarchy, where the host gives them to us. */
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", cg_base[CG2]);
    *strrchr(parent, '/') = '\0';
    snprintf(p, sizeof p, "%s/cgroup.subtree_control", parent);
    write_file(p, "+memory");
    write_file(p, "+pids");
    write_file(p, "+cpu");
    snprintf(p, sizeof p, "%s/cgroup.subtree_control", cg_base[CG2]);
    if (write_file(p, "+memory") == 0) cg_memory = CG2;
    if (write_file(p, "+pids") == 0) cg_pids = CG2;
    cg_cpu = CG2; /* cpu.stat's usage_usec is there with or without the cpu controller */
  }
  if (cg_memory < 0 && cg_base[CG_MEM][0]) cg_memory = CG_MEM;
  if (cg_pids < 0 && cg_base[CG_PIDS][0]) cg_pids = CG_PIDS;
  if (cg_cpu < 0 && cg_base[CG_CPU][0]) cg_cpu = CG_CPU;
  add_word(cg_memory < 0 ? missing : features, cg_memory == CG2 ? "memory" : cg_memory >= 0 ? "memory-v1" : "memory-cgroup");
  add_word(cg_pids < 0 ? missing : features, cg_pids == CG2 ? "pids" : cg_pids >= 0 ? "pids-v1" : "pids-cgroup");
  add_word(cg_cpu < 0 ? missing : features, cg_cpu == CG2 ? "cpu-usage" : cg_cpu >= 0 ? "cpuacct-v1" : "cpu-cgroup");
  if (!cg_base[CG2][0] && !cg_base[CG_PIDS][0]) add_word(missing, "cgroup-tracking");
}

/* Whether a child can be cloned with these namespaces here (and, in a user namespace, map itself). */
static int can_clone(int flags) {
  pid_t pid = (pid_t)syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
  if (pid < 0) return 0;
  if (pid == 0) {
    if (flags & CLONE_NEWUSER) {
      char map[64];
      snprintf(map, sizeof map, "%u %u 1\n", (unsigned)geteuid(), (unsigned)geteuid());
      if (write_file("/proc/self/uid_map", map) < 0) _exit(1);
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) _exit(1);
    _exit(mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0 ? 1 : 0);
  }
  int status;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int iso_setup(int argc, char **argv) {
  int isolate = 0;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--isolate") == 0) isolate = 1;
    else if (strcmp(argv[i], "--hide") == 0 && i + 1 < argc && nhide < MAX_HIDE) hide[nhide++] = argv[++i];
    else if (strcmp(argv[i], "--network") == 0 && i + 1 < argc && strcmp(argv[i + 1], "none") == 0) net_none = 1, i++;
    else if (strcmp(argv[i], "--group") == 0 && i + 1 < argc) job_group = atoll(argv[++i]);
    else return -1;
  }
  if (!isolate) return 0;
  int ns = CLONE_NEWPID | CLONE_NEWNS | (net_none ? CLONE_NEWNET : 0);
  if (geteuid() == 0 && can_clone(ns)) {
    level = FULL;
    add_word(features, "own-uids");
  } else if (can_clone(ns | CLONE_NEWUSER)) {
    level = REDUCED;
    add_word(features, "user-namespace");
    add_word(missing, "own-uids");
  } else {
    level = NONE;
    add_word(missing, "namespaces");
    return 0;
  }
  add_word(features, "pid-namespace");
  add_word(features, "mount-namespace");
  if (net_none) add_word(features, "network-namespace");
  probe_cgroups();
  return 0;
}

int iso_enabled(void) { return level != OFF; }

void iso_ready_line(char *buf, size_t len) {
  snprintf(buf, len, "r %s %s %s %s\n", level_names[level], features[0] ? features : "-", missing[0] ? missing : "-",
           cg_kill ? cg_base[CG2] : "-");
}

/* Creates the job's cgroups with its limits; opens their cgroup.procs for its init to join. */
static int make_cgroups(const struct iso_spec *sp, int procs[NCG]) {
  char p[PATH_MAX], v[32];
  for (int h = 0; h < NCG; h++) {
    procs[h] = -1;
    if (!cg_base[h][0] || (h != CG2 && h != cg_memory && h != cg_pids && h != cg_cpu)) continue;
    cg_path(p, h, sp->cgroup, NULL);
    if (mkdir(p, 0755) < 0) return -1;
    cg_path(p, h, sp->cgroup, "cgroup.procs");
    if ((procs[h] = open(p, O_WRONLY | O_CLOEXEC)) < 0) return -1;
  }
  if (sp->mem > 0 && cg_memory >= 0) {
    snprintf(v, sizeof v, "%lld", sp->mem);
    cg_path(p, cg_memory, sp->cgroup, cg_memory == CG2 ? "memory.max" : "memory.limit_in_bytes");
    if (write_file(p, v) < 0) return -1;
    /* Swap is no way around the limit. */
    if (cg_memory == CG2) cg_path(p, CG2, sp->cgroup, "memory.swap.max"), write_file(p, "0");
    else cg_path(p, CG_MEM, sp->cgroup, "memory.memsw.limit_in_bytes"), write_file(p, v);
  }
  if (sp->pids > 0 && cg_pids >= 0) {
    snprintf(v, sizeof v, "%lld", sp->pids);
    cg_path(p, cg_pids, sp->cgroup, "pids.max");
    if (write_file(p, v) < 0) return -1;
  }
  return 0;
}

static void remove_cgroups(const char *name) {
  char p[PATH_MAX];
  for (int h = 0; h < NCG; h++)
    if (cg_base[h][0]) cg_path(p, h, name, NULL), rmdir(p);
}

static int cgroups_gone(const char *name) {
  char p[PATH_MAX];
  for (int h = 0; h < NCG; h++) {
    if (!cg_base[h][0]) continue;
    cg_path(p, h, name, NULL);
    if (access(p, F_OK) == 0) return 0;
  }
  return 1;
}

static void kill_job(struct iso_job *j) {
  char p[PATH_MAX];
  if (j->running) kill(j->init, SIGKILL); /* the namespace dies with its init */
  if (cg_kill) cg_path(p, CG2, j->name, "cgroup.kill"), write_file(p, "1");
}

static long long cpu_used_ns(const char *name) {
  char p[PATH_MAX];
  if (cg_cpu == CG2) {
    cg_path(p, CG2, name, "cpu.stat");
    long long us = read_key(p, "usage_usec");
    return us < 0 ? -1 : us * 1000;
  }
  if (cg_cpu < 0) return -1;
  cg_path(p, cg_cpu, name, "cpuacct.usage");
  return read_key(p, NULL);
}

/* ---- the job's init, in its namespaces ------------------------------------ */

struct setup {
  const struct iso_spec *sp;
  const char *file;
  char *const *argv, *const *envp;
  int out, err, status_w, error_w;
  int procs[NCG];
  uid_t outer_uid;
  gid_t outer_gid;
};

/* Failed setup or exec: the errno goes to the helper on the error pipe. */
static __attribute__((noreturn)) void fail_with(int error_w, int e) {
  ssize_t w = write(error_w, &e, sizeof e);
  (void)w;
  _exit(127);
}

static int under(const char *path, const char *dir) {
  size_t n = strlen(dir);
  while (n > 1 && dir[n - 1] == '/') n--;
  return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* Runs the program as execvp would, over the job's own PATH (from its cwd, as its uid); returns only on failure. */
static void exec_program(const char *file, char *const argv[], char *const envp[]) {
  char program[PATH_MAX];
  if ((errno = resolve_program(file, envp, ".", program, sizeof program))) return;
  execve(program, argv, envp);
  if (errno != ENOEXEC) return;
  /* A script without a #! line: run it with the shell, as execvp does. */
  size_t argc = 0;
  while (argv[argc]) argc++;
  char *sh_argv[argc + 2];
  sh_argv[0] = "/bin/sh";
  sh_argv[1] = program;
  memcpy(sh_argv + 2, argv + 1, argc * sizeof *argv);
  execve("/bin/sh", sh_argv, envp);
}

static __attribute__((noreturn)) void run_job(struct setup *s) {
  const struct iso_spec *sp = s->sp;
  sigset_t none;
  sigemptyset(&none);
  /* Default disposition for every signal (raw: glibc refuses its own two), nothing blocked. */
  unsigned long dfl[4] = { 0, 0, 0, 0 };
  for (int sig = 1; sig <= 64; sig++)
    if (sig != SIGKILL && sig != SIGSTOP) syscall(SYS_rt_sigaction, sig, dfl, NULL, 8);
  sigprocmask(SIG_SETMASK, &none, NULL);
  int null = open("/dev/null", O_RDONLY);
  if (null < 0 || dup2(null, 0) < 0 || dup2(s->out, 1) < 0 || dup2(s->err, 2) < 0) fail_with(s->error_w, errno);
  struct rlimit zero = { 0, 0 };
  setrlimit(RLIMIT_CORE, &zero);
  if (sp->nofile > 0) {
    struct rlimit r = { (rlim_t)sp->nofile, (rlim_t)sp->nofile };
    if (setrlimit(RLIMIT_NOFILE, &r) < 0) fail_with(s->error_w, errno);
  }
  if (sp->fsize > 0) {
    struct rlimit r = { (rlim_t)sp->fsize, (rlim_t)sp->fsize };
    if (setrlimit(RLIMIT_FSIZE, &r) < 0) fail_with(s->error_w, errno);
  }
  if (sp->cpu > 0 && cg_cpu < 0) {
    /* No cgroup to measure the whole job: at least each process is held to it. */
    struct rlimit r = { (rlim_t)sp->cpu, (rlim_t)sp->cpu + 1 };
    setrlimit(RLIMIT_CPU, &r);
  }
  if (level == FULL && sp->uid >= 0) {
    gid_t groups[1] = { (gid_t)job_group };
    if (setgroups(job_group >= 0 ? 1 : 0, groups) < 0 || setresgid((gid_t)sp->gid, (gid_t)sp->gid, (gid_t)sp->gid) < 0 ||
        setresuid((uid_t)sp->uid, (uid_t)sp->uid, (uid_t)sp->uid) < 0)
      fail_with(s->error_w, errno);
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) fail_with(s->error_w, errno);
  /* Nothing of ours reaches the job: every fd past stdio closes at exec (the error pipe only then). */
  syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
  exec_program(s->file, (char *const *)s->argv, (char *const *)s->envp);
  fail_with(s->error_w, errno);
}

/* Hides what the job must not see and brings its cwd back; leaves us in it. */
static int setup_mounts(const struct iso_spec *sp) {
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) return -1;
  int root = open(sp->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return -1;
  const char *rel = sp->cwd + strlen(sp->root);
  while (*rel == '/') rel++;
  struct open_how how = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC, .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
  int cwd = *rel ? (int)syscall(SYS_openat2, root, rel, &how, sizeof how) : dup(root);
  close(root);
  if (cwd < 0) return -1;
  int hidden = under(sp->cwd, "/tmp");
  for (size_t i = 0; i < nhide; i++) {
    /* A cwd holding a hidden directory would bring it back whole (the API refuses such a working_dir). */
    if (under(hide[i], sp->cwd)) return errno = EACCES, -1;
    hidden |= under(sp->cwd, hide[i]);
  }
  /* A detached copy of the cwd, to put back at its path once what holds it is hidden. */
  int tree = hidden ? open_tree(cwd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE) : -1;
  if (hidden && tree < 0) return -1;
  const unsigned long quiet = MS_NOSUID | MS_NODEV;
  if (mount("tmpfs", "/tmp", "tmpfs", quiet, "mode=1777") < 0) return -1;
  for (size_t i = 0; i < nhide; i++) {
    struct stat st;
    /* Gone from view already when it lies under another hidden path. */
    if (stat(hide[i], &st) < 0 || !S_ISDIR(st.st_mode)) continue;
    if (mount("tmpfs", hide[i], "tmpfs", quiet | MS_NOEXEC, "mode=0755,size=64k") < 0) return -1;
  }
  if (mount("proc", "/proc", "proc", quiet | MS_NOEXEC, NULL) < 0) return -1;
  if (hidden) {
    if (mkdir_p(sp->cwd, 0755) < 0 || move_mount(tree, "", AT_FDCWD, sp->cwd, MOVE_MOUNT_F_EMPTY_PATH) < 0) return -1;
    close(tree);
    if (chdir(sp->cwd) < 0) return -1;
  } else if (fchdir(cwd) < 0) return -1;
  close(cwd);
  for (size_t i = 0; i < nhide; i++) mount(NULL, hide[i], NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | quiet | MS_NOEXEC, NULL);
  return 0;
}

static void loopback_up(void) {
  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr = { 0 };
  snprintf(ifr.ifr_name, IFNAMSIZ, "lo");
  if (sock >= 0 && ioctl(sock, SIOCGIFFLAGS, &ifr) == 0) {
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    ioctl(sock, SIOCSIFFLAGS, &ifr);
  }
  if (sock >= 0) close(sock);
}

/* Closes every fd but the ones given: init holds nothing of the helper's (its pipes, other jobs' outputs). */
static void close_all_but(int *keep, int n) {
  for (int i = 1; i < n; i++)
    for (int k = i; k > 0 && keep[k - 1] > keep[k]; k--) {
      int t = keep[k];
      keep[k] = keep[k - 1];
      keep[k - 1] = t;
    }
  unsigned from = 0;
  for (int i = 0; i < n; i++) {
    if (keep[i] < 0) continue;
    if ((unsigned)keep[i] > from) syscall(SYS_close_range, from, (unsigned)keep[i] - 1, 0U);
    from = (unsigned)keep[i] + 1;
  }
  syscall(SYS_close_range, from, ~0U, 0U);
}

static __attribute__((noreturn)) void job_init(struct setup *s) {
  /* Dies with the helper (no way to tell here whether it already has: our parent is outside this namespace). */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) _exit(127);
  int keep[4 + NCG] = { s->out, s->err, s->status_w, s->error_w };
  for (int h = 0; h < NCG; h++) keep[4 + h] = s->procs[h];
  close_all_but(keep, 4 + NCG);
  if (level == REDUCED) {
    char map[64];
    snprintf(map, sizeof map, "%u %u 1\n", (unsigned)s->outer_uid, (unsigned)s->outer_uid);
    if (write_file("/proc/self/uid_map", map) < 0) fail_with(s->error_w, errno);
    if (write_file("/proc/self/setgroups", "deny") < 0) fail_with(s->error_w, errno);
    snprintf(map, sizeof map, "%u %u 1\n", (unsigned)s->outer_gid, (unsigned)s->outer_gid);
    if (write_file("/proc/self/gid_map", map) < 0) fail_with(s->error_w, errno);
  }
  for (int h = 0; h < NCG; h++)
    if (s->procs[h] >= 0 && (write(s->procs[h], "0", 1) != 1 || close(s->procs[h]) < 0)) fail_with(s->error_w, errno);
  setsid();
  if (setup_mounts(s->sp) < 0) fail_with(s->error_w, errno);
  if (net_none) loopback_up();

  /* Signals sent to us (the group or init alone) are passed on to every process of the namespace. */
  sigset_t mask;
  sigfillset(&mask);
  sigdelset(&mask, SIGKILL);
  sigdelset(&mask, SIGSTOP);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
  if (sfd < 0) fail_with(s->error_w, errno);
  /* vfork: the job borrows our memory until it execs (run_job makes only system calls, allocates nothing). */
  pid_t job = vfork();
  if (job < 0) fail_with(s->error_w, errno);
  if (job == 0) run_job(s);
  /* Ours to keep: the status pipe and the signalfd. The job's error pipe closes when it execs. */
  close(s->error_w);
  close(s->out);
  close(s->err);
  for (;;) {
    struct signalfd_siginfo si;
    if (read(sfd, &si, sizeof si) != sizeof si) continue;
    if (si.ssi_signo != SIGCHLD) {
      kill(-1, (int)si.ssi_signo);
      continue;
    }
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
      if (pid != job) continue;
      ssize_t w = write(s->status_w, &status, sizeof status);
      (void)w;
      _exit(0); /* the kernel kills the rest of the namespace */
    }
  }
}

pid_t iso_spawn(const struct iso_spec *sp, const char *file, char *const argv[], char *const envp[], int out, int err, int *error,
                struct iso_job **jobp) {
  if (level == NONE) return *error = EPERM, -1;
  struct setup s = { .sp = sp, .file = file, .argv = argv, .envp = envp, .out = out, .err = err, .outer_uid = geteuid(), .outer_gid = getegid() };
  int status_pipe[2] = { -1, -1 }, error_pipe[2] = { -1, -1 };
  for (int h = 0; h < NCG; h++) s.procs[h] = -1;
  pid_t init = -1;
  if (sp->make_cwd && (mkdir_p(sp->cwd, 0700) < 0 || (level == FULL && sp->uid >= 0 && chown(sp->cwd, (uid_t)sp->uid, (gid_t)sp->gid) < 0))) goto failed;
  if (make_cgroups(sp, s.procs) < 0 || pipe2(status_pipe, O_CLOEXEC) < 0 || pipe2(error_pipe, O_CLOEXEC) < 0) goto failed;
  s.status_w = status_pipe[1];
  s.error_w = error_pipe[1];
  int flags = CLONE_NEWPID | CLONE_NEWNS | (net_none ? CLONE_NEWNET : 0) | (level == REDUCED ? CLONE_NEWUSER : 0);
  init = (pid_t)syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
  if (init == 0) {
    job_init(&s);
  }
  if (init < 0) goto failed;
  close(status_pipe[1]), status_pipe[1] = -1;
  close(error_pipe[1]), error_pipe[1] = -1;
  for (int h = 0; h < NCG; h++)
    if (s.procs[h] >= 0) close(s.procs[h]), s.procs[h] = -1;
  fcntl(error_pipe[0], F_SETFL, O_NONBLOCK);
  struct iso_job *j = calloc(1, sizeof *j);
  if (!j) abort();
  j->init = init;
  j->start_fd = error_pipe[0];
  j->status_fd = status_pipe[0];
  j->running = 1;
  j->cpu_ns = sp->cpu > 0 && cg_cpu >= 0 ? sp->cpu * 1000000000LL : 0;
  snprintf(j->name, sizeof j->name, "%s", sp->cgroup);
  j->next = all;
  all = j;
  *jobp = j;
  return init;

failed:
  *error = errno;
  for (int i = 0; i < 2; i++) {
    if (status_pipe[i] >= 0) close(status_pipe[i]);
    if (error_pipe[i] >= 0) close(error_pipe[i]);
  }
  for (int h = 0; h < NCG; h++)
    if (s.procs[h] >= 0) close(s.procs[h]);
  remove_cgroups(sp->cgroup);
  return -1;
}

int iso_start_fd(const struct iso_job *j) { return j->start_fd; }

int iso_started(struct iso_job *j, int init_reaped, int *error) {
  if (j->start_fd < 0) return 1;
  int e = 0;
  ssize_t n;
  for (;;) {
    n = read(j->start_fd, &e, sizeof e);
    if (n >= 0 || errno != EINTR) break;
  }
  if (n < 0 && errno == EAGAIN) {
    if (!init_reaped) return 0;
    /* Init is gone, so its job has execed or exited: the pipe answers at once. */
    fcntl(j->start_fd, F_SETFL, 0);
    return iso_started(j, init_reaped, error);
  }
  close(j->start_fd);
  j->start_fd = -1;
  if (n == 0) return 1;
  *error = n > 0 && e ? e : EIO;
  if (!init_reaped) {
    kill(j->init, SIGKILL);
    waitpid(j->init, NULL, 0);
  }
  close(j->status_fd);
  j->running = 0;
  j->removing = 1;
  remove_cgroups(j->name);
  return -1;
}

int iso_finished(struct iso_job *j, int init_status, const char **limit) {
  int status = init_status;
  if (read(j->status_fd, &status, sizeof status) != sizeof status) status = init_status;
  close(j->status_fd);
  j->running = 0;
  /* Orphans of the namespace are dead or dying; the cgroup catches any that are not. */
  kill_job(j);
  char p[PATH_MAX];
  *limit = j->limit;
  if (!*limit && cg_memory >= 0) {
    cg_path(p, cg_memory, j->name, cg_memory == CG2 ? "memory.events" : "memory.oom_control");
    if (read_key(p, "oom_kill") > 0) *limit = "memory";
  }
  if (!*limit && cg_pids >= 0) {
    cg_path(p, cg_pids, j->name, "pids.events");
    if (read_key(p, "max") > 0) *limit = "pids";
  }
  j->removing = 1;
  remove_cgroups(j->name);
  return status;
}

int iso_timeout(void) {
  for (struct iso_job *j = all; j; j = j->next)
    if (j->removing || (j->running && j->cpu_ns)) return j->removing ? 20 : 100;
  return -1;
}

void iso_sweep(void) {
  /* Called on every wake-up of the helper's loop: the work is done at most every 20 ms. */
  static struct timespec last;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  if ((now.tv_sec - last.tv_sec) * 1000 + (now.tv_nsec - last.tv_nsec) / 1000000 < 20) return;
  last = now;
  for (struct iso_job **jp = &all; *jp;) {
    struct iso_job *j = *jp;
    if (j->running && j->cpu_ns && !j->limit && cpu_used_ns(j->name) >= j->cpu_ns) {
      j->limit = "cpu";
      kill_job(j);
    }
    if (j->removing) {
      remove_cgroups(j->name);
      if (cgroups_gone(j->name)) {
        *jp = j->next;
        free(j);
        continue;
      }
    }
    jp = &j->next;
  }
}

void iso_kill(struct iso_job *j) { kill_job(j); }

void iso_kill_all(void) {
  for (struct iso_job *j = all; j; j = j->next)
    if (j->running) {
      kill_job(j);
      j->running = 0;
      j->removing = 1;
    }
  /* Their cgroups empty as the kernel finishes them off: remove them if that is quick. */
  for (int tries = 0; all && tries < 50; tries++) {
    while (waitpid(-1, NULL, WNOHANG) > 0) {}
    usleep(20000);
    iso_sweep();
  }
}

void iso_forget(const char *name) {
  /* A name, not a path: nothing outside our directory of job cgroups. */
  if (level == OFF || !*name || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strlen(name) >= sizeof all->name) return;
  struct iso_job *j = calloc(1, sizeof *j);
  if (!j) abort();
  j->start_fd = j->status_fd = -1;
  snprintf(j->name, sizeof j->name, "%s", name);
  j->removing = 1;
  j->next = all;
  all = j;
  kill_job(j);
  remove_cgroups(name);
}
