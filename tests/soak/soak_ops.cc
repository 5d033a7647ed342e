#include "soak_ops.h"

#include <cmath>
#include <sstream>

#include "support/hex.h"
#include "support/pattern.h"

namespace tcpx::soak {
namespace {

const char* const kNames[kOpKinds] = {"send", "recv", "write", "read", "writev", "readv", "notify"};

}  // namespace

const char* op_name(OpKind k) { return kNames[static_cast<int>(k)]; }

size_t Op::total() const {
  size_t t = 0;
  for (size_t s : sizes) t += s;
  return t;
}

std::string Op::encode() const {
  std::string s = std::string(op_name(kind)) + " " + std::to_string(seed);
  for (size_t n : sizes) s += " " + std::to_string(n);
  return s;
}

Status Op::decode(const std::string& line, Op* out) {
  std::istringstream in(line);
  std::string name;
  in >> name >> out->seed;
  int k = 0;
  while (k < kOpKinds && name != kNames[k]) ++k;
  if (k == kOpKinds || !in) return ProtocolError("not an op: '" + line + "'");
  out->kind = static_cast<OpKind>(k);
  out->sizes.clear();
  size_t n = 0;
  while (in >> n) out->sizes.push_back(n);
  bool vector = out->kind == OpKind::kWritev || out->kind == OpKind::kReadv;
  if (out->sizes.empty() || (!vector && out->sizes.size() != 1) || out->total() > kRegionBytes ||
      (out->kind == OpKind::kNotify && out->total() > kMaxNotificationBytes))
    return ProtocolError("bad op sizes: '" + line + "'");
  return Status::Ok();
}

size_t log_uniform_size(std::mt19937_64& rng, size_t max) {
  std::uniform_real_distribution<double> u(0.0, std::log(static_cast<double>(max) + 1.0));
  size_t n = static_cast<size_t>(std::exp(u(rng)));
  return n < 1 ? 1 : (n > max ? max : n);
}

Op random_op(std::mt19937_64& rng) {
  Op op;
  op.kind = static_cast<OpKind>(std::uniform_int_distribution<int>(0, kOpKinds - 1)(rng));
  op.seed = rng();
  switch (op.kind) {
    case OpKind::kWritev:
    case OpKind::kReadv: {
      int pieces = std::uniform_int_distribution<int>(2, 4)(rng);
      for (int i = 0; i < pieces; ++i) op.sizes.push_back(log_uniform_size(rng, kRegionBytes / 4));
      break;
    }
    case OpKind::kNotify:
      op.sizes.push_back(log_uniform_size(rng, kMaxNotificationBytes));
      break;
    default:
      op.sizes.push_back(log_uniform_size(rng, kRegionBytes));
  }
  return op;
}

std::string notification_text(uint64_t seed, size_t len) {
  std::string bytes(len, '\0');
  test::fill_pattern(bytes.data(), len, seed);
  return test::to_hex(bytes.data(), len);
}

}  // namespace tcpx::soak
