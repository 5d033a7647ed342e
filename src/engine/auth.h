// Shared-secret authentication of the handshake (Config::auth_key,
// TCPX_AUTH_KEY): challenge-response with HMAC-SHA256 from libcrypto.
//
//   connector: HELLO(..., offers auth, connector nonce Nc)       ->
//                                <- AUTH_CHALLENGE(acceptor nonce Na)
//   connector: AUTH_PROOF(HMAC(key, "connector" | Na | Nc | HELLO)) ->
//   acceptor checks it before it allocates anything for the peer, then
//                                <- AUTH_PROOF(HMAC(key, "acceptor" | Na | Nc | HELLO))
//                                <- HELLO_REPLY ...
//
// Both nonces are fresh per handshake, so a recorded proof is worthless for
// another handshake; the role label keeps one side's proof from serving as
// the other's; the HELLO bytes bind the proof to the handles it carries.
// This authenticates the peer; it does not encrypt or integrity-protect
// anything after the handshake.
#ifndef TCPX_ENGINE_AUTH_H_
#define TCPX_ENGINE_AUTH_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "tcpx/status.h"

namespace tcpx::engine::auth {

inline constexpr size_t kNonceBytes = 32;
inline constexpr size_t kProofBytes = 32;  // SHA-256
using Nonce = std::array<uint8_t, kNonceBytes>;
using Proof = std::array<uint8_t, kProofBytes>;

enum class Role { kConnector, kAcceptor };

// A fresh nonce from the OpenSSL CSPRNG.
Status make_nonce(Nonce* out);

// HMAC-SHA256 over (role label, acceptor nonce, connector nonce, HELLO
// payload) under `key`.
Status prove(const std::string& key, Role who, const Nonce& acceptor_nonce, const Nonce& connector_nonce,
             const std::vector<uint8_t>& hello, Proof* out);

// Constant-time comparison (CRYPTO_memcmp): the time taken says nothing
// about how many leading bytes matched.
bool same_proof(const Proof& a, const Proof& b);

}  // namespace tcpx::engine::auth

#endif  // TCPX_ENGINE_AUTH_H_
