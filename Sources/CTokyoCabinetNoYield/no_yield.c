/*
 * romad's replacement for sched_yield(2): returns at once.
 *
 * Debian's libtokyocabinet yields the CPU from inside its key-hashing loop (once every 256
 * key bytes hashed, whatever the database's threading mode), i.e. on roughly every tenth to
 * twentieth get or set of romad's request path. When another thread is runnable on that core -
 * a snapshot copy, a `cp`, a load generator - the kernel then runs it for a whole time slice,
 * and the request waits 1-3 ms for nothing: strace of romad during `cpdb` showed exactly those
 * sched_yield calls as its only slow system calls. romad never needs a voluntary yield (its
 * locks are pthread mutexes that sleep in the kernel), so the executable defines the symbol
 * itself; the dynamic linker resolves TokyoCabinet's call to this definition first.
 */
#include "no_yield.h"

int sched_yield(void) { return 0; }
