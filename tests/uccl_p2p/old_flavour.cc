#include "old_flavour.h"

#include <cstring>
#include <vector>

#include "engine_pair.h"     // tests/capi
#include "nixl_sequence.h"   // tests/capi
#include "uccl_engine.h"     // the Oct-2025 header (include/)

namespace uccl_p2p_test {

std::string old_flavour_write_roundtrip() {
  uccl_engine_t* a = uccl_engine_create(0, 4, false);
  uccl_engine_t* b = uccl_engine_create(0, 4, false);
  if (a == nullptr || b == nullptr) return "uccl_engine_create (old flavour) failed";
  std::string err;
  auto [ab, ba] = capi_test::connect_pair(a, b);
  std::vector<uint8_t> src(256 * 1024), dst(256 * 1024, 0);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint8_t>(i * 13);
  uccl_mr_t* ma = uccl_engine_reg(a, reinterpret_cast<uintptr_t>(src.data()), src.size());
  uccl_mr_t* mb = uccl_engine_reg(b, reinterpret_cast<uintptr_t>(dst.data()), dst.size());
  if (ab == nullptr || ba == nullptr || ma == nullptr || mb == nullptr) {
    err = "old flavour connect/reg failed";
  } else {
    auto r = capi_test::run_nixl_sequence(ab, false, {{ma, src.data(), reinterpret_cast<uint64_t>(dst.data()), src.size()}},
                                          "old", "", 20000);
    if (!r.ok) err = "old flavour WRITE: " + r.error;
    else if (src != dst) err = "old flavour WRITE: data differs";
  }
  if (ab) uccl_engine_conn_destroy(ab);
  if (ba) uccl_engine_conn_destroy(ba);
  if (ma) uccl_engine_mr_destroy(ma);
  if (mb) uccl_engine_mr_destroy(mb);
  uccl_engine_destroy(a);
  uccl_engine_destroy(b);
  return err;
}

}  // namespace uccl_p2p_test
