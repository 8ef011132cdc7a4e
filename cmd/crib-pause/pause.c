/*
 * crib-pause: the infra process of a crib pod.
 *
 * It holds the pod's namespaces open by doing nothing: it sleeps in pause(2)
 * until SIGINT or SIGTERM, then exits 0. When the pod shares one PID
 * namespace it is that namespace's PID 1, so orphans are reparented to it;
 * it reaps them on SIGCHLD. "-v" prints the version and exits.
 *
 * "-hold" makes it the holder cribd starts in a pod's new namespaces while
 * it pins them: it waits for end of file on its stdin, a pipe from cribd,
 * and exits, so that it also ends when cribd dies.
 *
 * Build: cc -static -Os -Wall -o bin/crib-pause cmd/crib-pause/pause.c
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef VERSION
#define VERSION "0.1.0"
#endif

static void on_term(int sig)
{
	(void)sig;
	_exit(0);
}

static void on_chld(int sig)
{
	int saved = errno;

	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	errno = saved;
}

static void say(int fd, const char *s)
{
	/* write(2) rather than stdio keeps the static binary small. */
	ssize_t n = write(fd, s, strlen(s));

	(void)n;
}

static int install(int sig, void (*fn)(int), int flags)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	return sigaction(sig, &sa, NULL);
}

int main(int argc, char **argv)
{
	if (argc > 1) {
		if (strcmp(argv[1], "-v") == 0) {
			say(1, "crib-pause " VERSION "\n");
			return 0;
		}
		if (strcmp(argv[1], "-hold") == 0) {
			char buf[64];
			ssize_t n;

			do
				n = read(0, buf, sizeof(buf));
			while (n > 0 || (n < 0 && errno == EINTR));
			return 0;
		}
		say(2, "usage: crib-pause [-v | -hold]\n");
		return 2;
	}
	if (getpid() != 1)
		say(2, "crib-pause: warning: not PID 1\n");

	if (install(SIGINT, on_term, 0) < 0 || install(SIGTERM, on_term, 0) < 0 ||
	    install(SIGCHLD, on_chld, SA_NOCLDSTOP | SA_RESTART) < 0) {
		say(2, "crib-pause: sigaction failed\n");
		return 1;
	}

	for (;;)
		pause();
	/* not reached */
	return 42;
}
