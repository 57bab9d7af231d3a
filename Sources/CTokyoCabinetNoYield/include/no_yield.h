#ifndef SWIFTROMA_NO_YIELD_H
#define SWIFTROMA_NO_YIELD_H
/* See no_yield.c: romad defines sched_yield() as a no-op for TokyoCabinet's hashing loop. */
int sched_yield(void);
#endif
