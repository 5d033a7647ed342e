#include "engine/auth.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

namespace tcpx::engine::auth {
namespace {

// Labels end in a NUL so no label is a prefix of another's input.
constexpr char kConnectorLabel[] = "tcpx-p2p auth v1 connector";
constexpr char kAcceptorLabel[] = "tcpx-p2p auth v1 acceptor";

std::string openssl_error(const char* what) {
  char text[256];
  ERR_error_string_n(ERR_get_error(), text, sizeof text);
  return std::string(what) + ": " + text;
}

}  // namespace

Status make_nonce(Nonce* out) {
  if (RAND_bytes(out->data(), static_cast<int>(out->size())) != 1)
    return Internal(openssl_error("RAND_bytes (no random nonce for the authentication challenge)"));
  return Status::Ok();
}

Status prove(const std::string& key, Role who, const Nonce& acceptor_nonce, const Nonce& connector_nonce,
             const std::vector<uint8_t>& hello, Proof* out) {
  const char* label = who == Role::kConnector ? kConnectorLabel : kAcceptorLabel;
  std::vector<uint8_t> msg(reinterpret_cast<const uint8_t*>(label),
                           reinterpret_cast<const uint8_t*>(label) + std::char_traits<char>::length(label) + 1);
  msg.insert(msg.end(), acceptor_nonce.begin(), acceptor_nonce.end());
  msg.insert(msg.end(), connector_nonce.begin(), connector_nonce.end());
  msg.insert(msg.end(), hello.begin(), hello.end());
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), msg.data(), msg.size(), out->data(), &len) ==
          nullptr ||
      len != out->size())
    return Internal(openssl_error("HMAC-SHA256"));
  return Status::Ok();
}

bool same_proof(const Proof& a, const Proof& b) { return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0; }

}  // namespace tcpx::engine::auth
