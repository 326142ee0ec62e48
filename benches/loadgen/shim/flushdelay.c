/* An SD card's flush, on any disk: LD_PRELOAD this to make every fsync and
 * fdatasync of the process take FLUSH_DELAY_MS longer (default 0) and count
 * them. FLUSH_COUNT_FILE, when set, names a file that holds the count so far
 * (rewritten after each flush), so a benchmark can read flushes per message.
 * FLUSH_SNAPSHOT_DIR, when set, names a directory that receives a copy of each
 * database file (`*.db`) and WAL (`*-wal`) as it is when a flush of it returns:
 * what would survive a power cut at that moment (tests/power_cut.rs).
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

static int ends_with(const char *s, const char *end)
{
	size_t n = strlen(s), m = strlen(end);
	return n >= m && strcmp(s + n - m, end) == 0;
}

/* Copies the file behind `fd` (a database or WAL just flushed) into
 * FLUSH_SNAPSHOT_DIR under its own name, replacing the last copy atomically. */
static void snapshot(int fd)
{
	const char *dir = getenv("FLUSH_SNAPSHOT_DIR");
	if (!dir)
		return;
	char link[64], path[4096];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t len = readlink(link, path, sizeof path - 1);
	if (len <= 0)
		return;
	path[len] = 0;
	if (!ends_with(path, ".db") && !ends_with(path, "-wal"))
		return;
	const char *name = strrchr(path, '/');
	name = name ? name + 1 : path;
	char tmp[4096], dst[4096];
	snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name);
	snprintf(dst, sizeof dst, "%s/%s", dir, name);
	int in = open(path, O_RDONLY | O_CLOEXEC);
	int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (in >= 0 && out >= 0) {
		char buf[65536];
		ssize_t n;
		off_t at = 0;
		while ((n = pread(in, buf, sizeof buf, at)) > 0) {
			if (write(out, buf, n) != n)
				break;
			at += n;
		}
		rename(tmp, dst);
	}
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
}

int fsync(int fd)
{
	static int (*real)(int);
	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	delay_and_count();
	int r = real(fd);
	if (r == 0)
		snapshot(fd);
	return r;
}

int fdatasync(int fd)
{
	static int (*real)(int);
	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	delay_and_count();
	int r = real(fd);
	if (r == 0)
		snapshot(fd);
	return r;
}
