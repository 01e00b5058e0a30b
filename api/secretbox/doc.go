// Package secretbox seals secrets for storage at rest with AES-256-GCM under
// a key kept in a file outside the database (for example
// <data>/secret.key, mode 0600). A sealed value is a version byte, a random
// 12-byte nonce and the ciphertext with its tag; the additional data given to
// Seal (such as the certificate's name) must be given again to Open, so a
// sealed value cannot be moved to another row unnoticed.
//
// Errors never contain the secret or the key.
package secretbox
