#ifndef SWIFTROMA_CCRYPTO_SHIM_H
#define SWIFTROMA_CCRYPTO_SHIM_H
/* OpenSSL's libcrypto (Debian: libssl-dev), used for SHA-256 of snapshot files: it uses the
   CPU's SHA extensions, several times faster than portable code. */
#include <openssl/evp.h>
#endif
