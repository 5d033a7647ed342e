#include "options.h"

#include <cstdlib>
#include <sstream>

namespace tcpx::bench {

const char* const kUsage =
    "usage: tcpx-bench --server [--port P] [--channels C] [--gpu G] [--mem host|cuda]\n"
    "       tcpx-bench --client HOST:PORT [--mode send|read|write | --latency]\n"
    "                  [--sizes LIST] [--window N (32)] [--channels C]\n"
    "                  [--seconds S (1)] [--warmup S (0.2)] [--gpu G] [--remote-gpu G]\n"
    "                  [--mem host|cuda]\n"
    "  --sizes: bandwidth default 4K,64K,1M,16M,64M; --latency default 8\n"
    "  --mem: where this side's buffer lives (host memory, or device memory on\n"
    "         GPU --gpu; each side chooses its own)\n"
    "  Each figure: a --warmup run, then transfers until --seconds have passed.\n";

const char* mode_name(Mode m) {
  switch (m) {
    case Mode::kSend: return "send";
    case Mode::kRead: return "read";
    case Mode::kWrite: return "write";
  }
  return "?";
}

bool parse_options(int argc, char** argv, Options* o, std::string* why) {
  auto need = [&](int& i) -> const char* {
    if (i + 1 >= argc) return nullptr;
    return argv[++i];
  };
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    const char* v = nullptr;
    if (a == "--server") {
      o->server = true;
    } else if (a == "--latency") {
      o->latency = true;
    } else if (a == "--client" && (v = need(i))) {
      o->connect = v;
    } else if (a == "--port" && (v = need(i))) {
      long p = std::atol(v);
      if (p <= 0 || p > 65535) return *why = std::string("bad --port\n") + kUsage, false;
      o->port = static_cast<uint16_t>(p);
    } else if (a == "--mode" && (v = need(i))) {
      std::string m = v;
      if (m == "send") o->mode = Mode::kSend;
      else if (m == "read") o->mode = Mode::kRead;
      else if (m == "write") o->mode = Mode::kWrite;
      else return *why = "bad --mode '" + m + "'\n" + kUsage, false;
    } else if (a == "--sizes" && (v = need(i))) {
      o->sizes.clear();
      std::stringstream ss(v);
      std::string item;
      while (std::getline(ss, item, ',')) {
        size_t s = parse_size(item);
        if (s == 0) return *why = "bad size '" + item + "'\n" + kUsage, false;
        o->sizes.push_back(s);
      }
    } else if (a == "--window" && (v = need(i))) {
      o->window = std::atoi(v);
      if (o->window < 1 || o->window > 1024) return *why = std::string("bad --window\n") + kUsage, false;
    } else if (a == "--channels" && (v = need(i))) {
      o->channels = std::atoi(v);
      if (o->channels < 1) return *why = std::string("bad --channels\n") + kUsage, false;
    } else if (a == "--warmup" && (v = need(i))) {
      o->warmup = std::atof(v);
      if (!(o->warmup >= 0)) return *why = std::string("bad --warmup\n") + kUsage, false;
    } else if (a == "--seconds" && (v = need(i))) {
      o->seconds = std::atof(v);
      if (!(o->seconds > 0)) return *why = std::string("bad --seconds\n") + kUsage, false;
    } else if (a == "--gpu" && (v = need(i))) {
      o->gpu = std::atoi(v);
    } else if (a == "--remote-gpu" && (v = need(i))) {
      o->remote_gpu = std::atoi(v);
    } else if (a == "--mem" && (v = need(i))) {
      std::string m = v;
      if (m != "host" && m != "cuda") return *why = "bad --mem '" + m + "'\n" + kUsage, false;
      o->cuda_mem = m == "cuda";
    } else {
      *why = "unknown or incomplete argument '" + a + "'\n" + kUsage;
      return false;
    }
  }
  if (o->server == !o->connect.empty()) {
    *why = std::string("give exactly one of --server and --client\n") + kUsage;
    return false;
  }
  if (o->sizes.empty()) o->sizes = o->latency ? kLatencySizes : kBandwidthSizes;
  return true;
}

}  // namespace tcpx::bench
