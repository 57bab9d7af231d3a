#ifndef SWIFTROMA_CTOKYOCABINET_SHIM_H
#define SWIFTROMA_CTOKYOCABINET_SHIM_H
#include <stdbool.h>
#include <stdint.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#include <tcutil.h>
#include <tchdb.h>

/* glibc's sync_file_range(2) is only declared with _GNU_SOURCE, which Swift's Glibc module is not
   built with; declare it here (same signature as glibc's) for the snapshot copy. */
extern int sync_file_range(int fd, long offset, long nbytes, unsigned int flags);

/* Starts writeback of [offset, offset + nbytes) of fd without waiting (SYNC_FILE_RANGE_WRITE). */
static inline int roma_start_writeback(int fd, long offset, long nbytes) {
    return sync_file_range(fd, offset, nbytes, 2u);
}
/* Turns on O_DIRECT for fd (glibc only names it O_DIRECT under _GNU_SOURCE; __O_DIRECT is the
   architecture's value). Returns 0, or -1 with errno (EINVAL: the filesystem has no direct I/O). */
static inline int roma_enable_direct_io(int fd) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return -1;
    return fcntl(fd, F_SETFL, flags | __O_DIRECT);
}
/* Sets the calling thread's disk I/O priority (ioprio_set(2), IOPRIO_WHO_PROCESS with id 0 =
   this thread; value = class << IOPRIO_CLASS_SHIFT (13) | level). Class 3 (IOPRIO_CLASS_IDLE):
   the block layer serves the thread's I/O only when no other I/O waits; class 2 (best effort)
   with level 7: the lowest ordinary priority. glibc has no wrapper. Returns 0 or -1 (errno). */
static inline int roma_set_io_priority(int ioclass, int level) {
    return (int)syscall(SYS_ioprio_set, 1, 0, (ioclass << 13) | level);
}
/* sched_yield(2) by system call: romad replaces libc's sched_yield with a no-op for
   TokyoCabinet's sake (Sources/CTokyoCabinetNoYield), and background work that really wants to
   hand the CPU to a waiting request thread calls this instead. */
static inline int roma_yield_cpu(void) {
    return (int)syscall(SYS_sched_yield);
}
/* Names the calling thread (what top, ps -L and ftrace show; at most 15 bytes are kept).
   prctl(2) is variadic, which Swift cannot call. */
static inline int roma_set_thread_name(const char *name) {
    return prctl(PR_SET_NAME, name, 0, 0, 0);
}
/* Swaps two existing paths atomically (renameat2(2) with RENAME_EXCHANGE; glibc declares the
   call only with _GNU_SOURCE). Returns 0, or -1 with errno (EINVAL or ENOSYS where the file
   system or kernel lacks it). */
static inline int roma_rename_exchange(const char *from, const char *to) {
    return (int)syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, 2u);
}
/* The calling thread's I/O priority value (ioprio_get(2)), or -1. */
static inline int roma_io_priority(void) {
    return (int)syscall(SYS_ioprio_get, 1, 0);
}
#endif
