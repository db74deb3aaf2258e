/* Job isolation for jobrunner-spawner: see isolate.c. */
#ifndef JOBRUNNER_ISOLATE_H
#define JOBRUNNER_ISOLATE_H
#include <stddef.h>
#include <sys/types.h>

/* One job's isolation, from its spawn command. -1 is "none" for numbers. */
struct iso_spec {
  const char *root;        /* cwd is opened beneath this directory */
  const char *cwd;
  int make_cwd;
  const char *cgroup;      /* the job's cgroup name */
  long long uid, gid;      /* -1: keep ours */
  long long mem, fsize;    /* bytes */
  long long pids, cpu, nofile;
};

struct iso_job;

/* Reads our options (argv after the program name) and probes the kernel. 0, or -1 on a bad option. */
int iso_setup(int argc, char **argv);
/* Whether --isolate was given. */
int iso_enabled(void);
/* The ready event: "r LEVEL FEATURES MISSING CGROUP\n" (CGROUP: where job cgroups with cgroup.kill are, or "-"). */
void iso_ready_line(char *buf, size_t len);
/*
 * Starts a job in its namespaces and cgroup: returns the outer pid of its
 * init (the process group to signal), or -1 with *error set when it could
 * not be set out (nothing is left of it then). Whether the job itself
 * started is known later: see iso_started.
 */
pid_t iso_spawn(const struct iso_spec *sp, const char *file, char *const argv[], char *const envp[], int out, int err,
                int *error, struct iso_job **job);
/* While its start is not known: an fd that becomes readable once it is; -1 after. */
int iso_start_fd(const struct iso_job *job);
/*
 * Whether the job has started (execed): 1 yes, 0 not known yet, -1 it could
 * not (*error set; its init is killed and reaped, and nothing more is to be
 * done with it). init_reaped: its init has exited and was reaped already.
 */
int iso_started(struct iso_job *job, int init_reaped, int *error);
/*
 * Its init exited with init_status: the job's own wait status and the limit
 * it ran into ("memory", "pids", "cpu", or NULL). Frees nothing yet: the
 * cgroup is removed once empty (iso_sweep).
 */
int iso_finished(struct iso_job *job, int init_status, const char **limit);
/* How long poll may sleep before iso_sweep has work (CPU limits, cgroups to remove): ms, or -1. */
int iso_timeout(void);
/* Ends jobs past their CPU limit and removes emptied cgroups. */
void iso_sweep(void);
/* Kills one job now, every process of it (its init and, where there is cgroup.kill, its cgroup); its init is reaped as usual. */
void iso_kill(struct iso_job *job);
/* Kills every isolated job that still runs (we are going away). */
void iso_kill_all(void);
/* A job cgroup left by a helper that died (the worker names those it knew of):
   whatever it still holds is killed, and it is removed once empty, like ours. */
void iso_forget(const char *cgroup);

/* From spawner.c: execvp's search over the job's PATH (0 with the path in out, or an errno), and mkdir -p. */
int resolve_program(const char *file, char *const envp[], const char *cwd, char *out, size_t outlen);
int mkdir_p(const char *path, mode_t mode);

#endif
