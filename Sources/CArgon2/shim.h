// The reference implementation of Argon2 (Debian: libargon2-dev), for Mosquitto 2.1's
// `$argon2id$` password hashes (MidgeBroker/Security/PasswordFile.swift).
#include <argon2.h>
