#ifndef ROMA_CSPLICE_H
#define ROMA_CSPLICE_H

#include <stddef.h>
#include <sys/types.h>

/* splice(2) and F_SETPIPE_SZ, which Swift's Glibc module does not export (they need
 * _GNU_SOURCE). Used to move a received file from a socket to disk without a copy through
 * user space. */

/* splice(2) with no offsets: from `fd_in` (a socket or a pipe) to `fd_out` (a pipe or a file,
 * written at its current offset). */
ssize_t cs_splice(int fd_in, int fd_out, size_t len, unsigned int flags);

/* fcntl(fd, F_SETPIPE_SZ, size): the pipe's new capacity in bytes, or -1 with errno set. */
int cs_set_pipe_size(int fd, int size);

#define CS_SPLICE_F_MOVE 1u
#define CS_SPLICE_F_NONBLOCK 2u

#endif
