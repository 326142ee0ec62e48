/* An SD card's flush, on any disk: LD_PRELOAD this to make every fsync and
 * fdatasync of the process take FLUSH_DELAY_MS longer (default 0) and count
 * them. FLUSH_COUNT_FILE, when set, names a file that holds the count so far
 * (rewritten after each flush), so a benchmark can read flushes per message.
 *
 * Build: gcc -O2 -shared -fPIC -o flushdelay.so flushdelay.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_long flushes;

static void delay_and_count(void)
{
	const char *ms = getenv("FLUSH_DELAY_MS");
	long delay = ms ? atol(ms) : 0;
	if (delay > 0) {
		struct timespec ts = {delay / 1000, (delay % 1000) * 1000000L};
		while (nanosleep(&ts, &ts) != 0)
			;
	}
	long n = atomic_fetch_add(&flushes, 1) + 1;
	const char *path = getenv("FLUSH_COUNT_FILE");
	if (path) {
		char buf[32];
		int len = snprintf(buf, sizeof buf, "%20ld\n", n);
		int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (fd >= 0) {
			if (pwrite(fd, buf, len, 0) < 0) {
				/* A count that cannot be written is only a count. */
			}
			close(fd);
		}
	}
}

int fsync(int fd)
{
	static int (*real)(int);
	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	delay_and_count();
	return real(fd);
}

int fdatasync(int fd)
{
	static int (*real)(int);
	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	delay_and_count();
	return real(fd);
}
