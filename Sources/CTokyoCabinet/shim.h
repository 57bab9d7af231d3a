#ifndef SWIFTROMA_CTOKYOCABINET_SHIM_H
#define SWIFTROMA_CTOKYOCABINET_SHIM_H
#include <stdbool.h>
#include <stdint.h>
#include <tcutil.h>
#include <tchdb.h>
#endif
