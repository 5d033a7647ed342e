#include "soak_stats.h"

#include <cstdio>

namespace tcpx::soak {
namespace {

constexpr size_t kKeptDetails = 10;

std::string mib(uint64_t bytes) {
  char b[32];
  std::snprintf(b, sizeof(b), "%.1f MiB", bytes / 1048576.0);
  return b;
}

}  // namespace

void SoakStats::count_transfer(OpKind kind, size_t bytes) {
  transfers_[static_cast<int>(kind)].fetch_add(1, std::memory_order_relaxed);
  bytes_[static_cast<int>(kind)].fetch_add(bytes, std::memory_order_relaxed);
}

void SoakStats::count_expected(const std::string& what) {
  std::lock_guard<std::mutex> l(mu_);
  ++expected_[what];
}

void SoakStats::count_unexpected(const std::string& what, const std::string& detail) {
  std::lock_guard<std::mutex> l(mu_);
  ++unexpected_[what];
  if (first_unexpected_.size() < kKeptDetails) first_unexpected_.push_back(what + ": " + detail);
  std::fprintf(stderr, "soak: UNEXPECTED %s: %s\n", what.c_str(), detail.c_str());
}

void SoakStats::note_dead_declared_ms(int64_t ms) {
  int64_t seen = max_dead_declared_ms.load();
  while (ms > seen && !max_dead_declared_ms.compare_exchange_weak(seen, ms)) {
  }
}

uint64_t SoakStats::transfers() const {
  uint64_t t = 0;
  for (const auto& x : transfers_) t += x.load();
  return t;
}

uint64_t SoakStats::bytes() const {
  uint64_t t = 0;
  for (const auto& x : bytes_) t += x.load();
  return t;
}

uint64_t SoakStats::unexpected() const {
  std::lock_guard<std::mutex> l(mu_);
  uint64_t n = 0;
  for (const auto& [k, v] : unexpected_) n += v;
  return n;
}

std::string SoakStats::report() const {
  std::string r = "transfers " + std::to_string(transfers()) + ", " + mib(bytes()) + "\n";
  for (int k = 0; k < kOpKinds; ++k)
    r += "  " + std::string(op_name(static_cast<OpKind>(k))) + ": " + std::to_string(transfers_[k].load()) + ", " +
         mib(bytes_[k].load()) + "\n";
  r += "peers started " + std::to_string(peers_started.load()) + ", connections served " +
       std::to_string(sessions.load()) + ", killed " + std::to_string(kills.load()) + ", frozen " +
       std::to_string(freezes.load()) + " (" + std::to_string(thaws.load()) + " of them continued after), killed to quiesce " + std::to_string(quiesce_kills.load()) + ", retired cleanly " + std::to_string(retirements.load()) +
       ", slowest frozen-peer detection " + std::to_string(max_dead_declared_ms.load()) + " ms\n";
  std::lock_guard<std::mutex> l(mu_);
  r += "expected errors:";
  if (expected_.empty()) r += " none";
  for (const auto& [k, v] : expected_) r += "\n  " + k + ": " + std::to_string(v);
  r += "\nunexpected errors:";
  if (unexpected_.empty()) r += " none";
  for (const auto& [k, v] : unexpected_) r += "\n  " + k + ": " + std::to_string(v);
  for (const auto& d : first_unexpected_) r += "\n  first: " + d;
  return r + "\n";
}

}  // namespace tcpx::soak
