#ifndef SWIFTROMA_CTOKYOCABINET_SHIM_H
#define SWIFTROMA_CTOKYOCABINET_SHIM_H
#include <stdbool.h>
#include <stdint.h>
#include <fcntl.h>
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
#endif
