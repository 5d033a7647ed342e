// uccl_p2p: UCCL's p2p Python API of the uccl_engine era (p2p/engine.h,
// p2p/pybind_engine.cc), on tcpx::Endpoint. Names, argument names, defaults
// and result tuples follow UCCL; python/README.md lists where the behaviour
// differs and why.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdlib>

#include "bindings.h"
#include "oob_ip.h"
#include "status_error.h"
#include "uccl_descs.h"
#include "uccl_endpoint.h"
#include "uccl_metadata.h"

namespace py = pybind11;

namespace tcpx_py {

namespace {

using tcpx::ConnId;
using tcpx::Endpoint;
using tcpx::MrId;
using tcpx::XferId;

void* as_ptr(uint64_t p) { return reinterpret_cast<void*>(p); }

// UCCL raises on a wrong-length vector argument; so do we.
void check_lengths(size_t num_iovs, std::initializer_list<size_t> sizes) {
  for (size_t s : sizes) {
    if (s != num_iovs) {
      throw std::runtime_error("All input vectors/lists must have length num_iovs");
    }
  }
}

std::vector<tcpx::FifoItem> fifos_from(const py::list& blobs) {
  std::vector<tcpx::FifoItem> v;
  v.reserve(blobs.size());
  for (py::handle h : blobs) v.push_back(fifo_from_bytes(py::cast<py::bytes>(h)));
  return v;
}

std::vector<tcpx::IoPiece> pieces_from(const std::vector<MrId>& mrs,
                                       const std::vector<uint64_t>& ptrs,
                                       const std::vector<size_t>& sizes,
                                       const py::list& blobs, size_t n) {
  check_lengths(n, {mrs.size(), ptrs.size(), sizes.size(), blobs.size()});
  std::vector<tcpx::FifoItem> fifos = fifos_from(blobs);
  std::vector<tcpx::IoPiece> pieces(n);
  for (size_t i = 0; i < n; ++i) {
    pieces[i] = tcpx::IoPiece{mrs[i], as_ptr(ptrs[i]), sizes[i], fifos[i]};
  }
  return pieces;
}

// UCCL receives min(size, what is left of the registration past ptr): its
// tests pass a size larger than the buffer. The C++ Endpoint refuses that.
size_t clamp_to_region(UcclEndpoint& self, MrId mr, uint64_t ptr, size_t size) {
  auto r = self.ep().region(mr);
  if (r && ptr >= r->ptr && ptr < r->ptr + r->size) {
    return std::min<size_t>(size, r->ptr + r->size - ptr);
  }
  return size;
}

// Posts n transfers as one UCCL transfer id; on a failed post, waits for the
// ones already posted (their buffers stay the caller's) and reports failure.
py::tuple post_group(UcclEndpoint& self, const char* what, size_t n,
                     const PyEndpoint::PostFn& post) {
  std::vector<XferId> ids;
  tcpx::Status s = self.ep().call([&](Endpoint& ep) {
    for (size_t i = 0; i < n; ++i) {
      XferId x = 0;
      TCPX_RETURN_IF_ERROR(post(ep, i, &x));
      ids.push_back(x);
    }
    return tcpx::Status::Ok();
  });
  if (!s.ok()) {
    // Let the pieces already posted end before their buffers go back to the
    // caller; the call reports the post failure, not their outcome.
    for (XferId x : ids) (void)self.ep().wait(x, -1);
    return py::make_tuple(ok_or_log(what, s), uint64_t{0});
  }
  if (ids.size() == 1) return py::make_tuple(true, ids[0]);
  return py::make_tuple(true, self.add_group(std::move(ids)));
}

// The blocking form of the same.
bool run_group(UcclEndpoint& self, const char* what, size_t n,
               const PyEndpoint::PostFn& post) {
  return ok_or_log(what, self.ep().post_and_wait(n, post));
}

py::tuple connect_to(UcclEndpoint& self, const tcpx::PeerInfo& peer) {
  ConnId c = 0;
  tcpx::Status s = self.ep().call([&](Endpoint& ep) { return ep.connect(peer, &c); });
  if (s.ok()) self.on_new_connection(c);
  return py::make_tuple(ok_or_log("connect", s), c);
}

}  // namespace

bool ok_or_log(const char* what, const tcpx::Status& s) {
  if (s.ok()) return true;
  py::module_::import("logging").attr("getLogger")("uccl.p2p").attr("warning")(
      std::string(what) + " failed: " + s.to_string());
  return false;
}

UcclEndpoint::UcclEndpoint(int local_gpu_idx, int /*num_cpus*/)
    : local_gpu_idx_(local_gpu_idx) {
  tcpx::Config config;
  throw_if_error(tcpx::Config::from_env(&config));
  if (config.listen_port != 0) {
    base_port_ = config.listen_port;
    if (base_port_ + local_gpu_idx > 65535) {
      throw StatusError(tcpx::InvalidArgument("TCPX_LISTEN_PORT + GPU index exceeds 65535"));
    }
    config.listen_port = static_cast<uint16_t>(base_port_ + local_gpu_idx);
  }
  throw_if_error(PyEndpoint::create(local_gpu_idx, config, &ep_));
}

uint64_t UcclEndpoint::add_group(std::vector<XferId> ids) {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t id = kGroupBit | next_group_++;
  groups_[id] = Group{std::move(ids), 0, tcpx::Status::Ok()};
  return id;
}

std::pair<bool, bool> UcclEndpoint::poll(uint64_t transfer_id) {
  auto poll_one = [&](XferId x) {
    return ep_->call([&](Endpoint& ep) { return ep.poll_async(x); });
  };
  if (!(transfer_id & kGroupBit)) {
    tcpx::Status s = poll_one(transfer_id);
    if (s.in_progress()) return {true, false};
    return {ok_or_log("transfer", s), true};
  }
  std::unique_lock<std::mutex> lock(mu_);
  auto it = groups_.find(transfer_id);
  if (it == groups_.end()) {
    lock.unlock();
    ok_or_log("poll_async", tcpx::NotFound("unknown transfer id " + std::to_string(transfer_id)));
    return {false, true};
  }
  Group& g = it->second;
  while (g.next < g.ids.size()) {
    tcpx::Status s = poll_one(g.ids[g.next]);
    if (s.in_progress()) return {true, false};
    if (g.first.ok()) g.first = s;
    ++g.next;
  }
  tcpx::Status first = g.first;
  groups_.erase(it);
  lock.unlock();
  return {ok_or_log("transfer", first), true};
}

void bind_uccl(py::module_& m) {
  m.def("get_oob_ip", [] {
    std::string ip;
    throw_if_error(oob_ip(&ip));
    return ip;
  }, "The address an Endpoint advertises (TCPX_LISTEN_ADDR or the first "
     "non-loopback IPv4)");

  auto cls = py::class_<UcclEndpoint>(m, "Endpoint");
  cls.def(py::init<int, int>(), py::arg("local_gpu_idx") = 0, py::arg("num_cpus") = 4,
          "num_cpus is accepted and ignored: the engine owns its threads")
      .def("close", &UcclEndpoint::close, "Not in UCCL: closes the endpoint now")
      .def("connect", [](UcclEndpoint& self, const std::string& ip, int gpu, int port) {
        if (port < 0 && self.base_port() == 0) {
          ok_or_log("connect", tcpx::InvalidArgument(
              "remote_port=-1 needs TCPX_LISTEN_PORT (port of GPU g = base + g); "
              "pass remote_port or connect(metadata)"));
          return py::make_tuple(false, uint64_t{0});
        }
        int p = port >= 0 ? port : self.base_port() + gpu;
        if (p > 65535) {
          ok_or_log("connect", tcpx::InvalidArgument("port out of range: " + std::to_string(p)));
          return py::make_tuple(false, uint64_t{0});
        }
        return connect_to(self, tcpx::PeerInfo{ip, static_cast<uint16_t>(p), gpu});
      }, py::arg("remote_ip_addr"), py::arg("remote_gpu_idx"), py::arg("remote_port") = -1)
      .def("connect", [](UcclEndpoint& self, py::bytes metadata) {
        tcpx::PeerInfo peer;
        tcpx::Status s = decode_any_metadata(metadata, &peer);
        if (!s.ok()) return py::make_tuple(ok_or_log("connect", s), uint64_t{0});
        return connect_to(self, peer);
      }, py::arg("metadata"))
      .def("accept", [](UcclEndpoint& self) {
        ConnId c = 0;
        tcpx::PeerInfo p;
        tcpx::Status s = self.ep().accept(-1, &c, &p);
        if (s.ok()) self.on_new_connection(c);
        return py::make_tuple(ok_or_log("accept", s), p.ip, p.gpu_idx, c);
      })
      .def("get_metadata", [](UcclEndpoint& self) {
        tcpx::PeerInfo info = self.ep().get([](const Endpoint& ep) { return ep.local_info(); });
        std::string blob;
        throw_if_error(encode_uccl_metadata(info, &blob));
        return py::bytes(blob);
      })
      .def_static("parse_metadata", [](py::bytes metadata) {
        tcpx::PeerInfo p;
        tcpx::Status s = decode_uccl_metadata(metadata, &p);
        if (!s.ok()) throw std::runtime_error(s.message());
        return py::make_tuple(p.ip, p.port, p.gpu_idx);
      }, py::arg("metadata"))
      .def("reg", [](UcclEndpoint& self, uint64_t ptr, size_t size) {
        MrId mr = 0;
        bool ok = ok_or_log("reg", self.ep().reg(ptr, size, &mr));
        return py::make_tuple(ok, mr);
      }, py::arg("ptr"), py::arg("size"))
      .def("regv", [](UcclEndpoint& self, const std::vector<uint64_t>& ptrs,
                      const std::vector<size_t>& sizes) {
        if (ptrs.size() != sizes.size()) throw std::runtime_error("ptrs and sizes must match");
        std::vector<MrId> mrs;
        for (size_t i = 0; i < ptrs.size(); ++i) {
          MrId mr = 0;
          if (!ok_or_log("regv", self.ep().reg(ptrs[i], sizes[i], &mr))) {
            for (MrId done : mrs) (void)self.ep().dereg(done);  // unused yet: cannot be busy
            return py::make_tuple(false, std::vector<MrId>{});
          }
          mrs.push_back(mr);
        }
        return py::make_tuple(true, mrs);
      }, py::arg("ptrs"), py::arg("sizes"))
      .def("dereg", [](UcclEndpoint& self, MrId mr) {
        return ok_or_log("dereg", self.ep().dereg(mr));
      }, py::arg("mr_id"))
      .def("send", [](UcclEndpoint& self, ConnId c, MrId mr, uint64_t ptr, size_t size) {
        return run_group(self, "send", 1, [&](Endpoint& ep, size_t, XferId* x) {
          return ep.send_async(c, mr, as_ptr(ptr), size, x);
        });
      }, py::arg("conn_id"), py::arg("mr_id"), py::arg("ptr"), py::arg("size"))
      .def("recv", [](UcclEndpoint& self, ConnId c, MrId mr, uint64_t ptr, size_t size) {
        size = clamp_to_region(self, mr, ptr, size);
        return run_group(self, "recv", 1, [&](Endpoint& ep, size_t, XferId* x) {
          return ep.recv_async(c, mr, as_ptr(ptr), size, x);
        });
      }, py::arg("conn_id"), py::arg("mr_id"), py::arg("ptr"), py::arg("size"))
      .def("send_async", [](UcclEndpoint& self, ConnId c, MrId mr, uint64_t ptr, size_t size) {
        return post_group(self, "send_async", 1, [&](Endpoint& ep, size_t, XferId* x) {
          return ep.send_async(c, mr, as_ptr(ptr), size, x);
        });
      }, py::arg("conn_id"), py::arg("mr_id"), py::arg("ptr"), py::arg("size"))
      .def("recv_async", [](UcclEndpoint& self, ConnId c, MrId mr, uint64_t ptr, size_t size) {
        size = clamp_to_region(self, mr, ptr, size);
        return post_group(self, "recv_async", 1, [&](Endpoint& ep, size_t, XferId* x) {
          return ep.recv_async(c, mr, as_ptr(ptr), size, x);
        });
      }, py::arg("conn_id"), py::arg("mr_id"), py::arg("ptr"), py::arg("size"))
      .def("sendv", [](UcclEndpoint& self, ConnId c, std::vector<MrId> mrs,
                       std::vector<uint64_t> ptrs, std::vector<size_t> sizes, size_t n) {
        check_lengths(n, {mrs.size(), ptrs.size(), sizes.size()});
        return run_group(self, "sendv", n, [&](Endpoint& ep, size_t i, XferId* x) {
          return ep.send_async(c, mrs[i], as_ptr(ptrs[i]), sizes[i], x);
        });
      }, py::arg("conn_id"), py::arg("mr_id_v"), py::arg("data_ptr_v"), py::arg("size_v"),
         py::arg("num_iovs"))
      .def("recvv", [](UcclEndpoint& self, ConnId c, std::vector<MrId> mrs,
                       std::vector<uint64_t> ptrs, std::vector<size_t> sizes, size_t n) {
        check_lengths(n, {mrs.size(), ptrs.size(), sizes.size()});
        for (size_t i = 0; i < n; ++i) sizes[i] = clamp_to_region(self, mrs[i], ptrs[i], sizes[i]);
        return run_group(self, "recvv", n, [&](Endpoint& ep, size_t i, XferId* x) {
          return ep.recv_async(c, mrs[i], as_ptr(ptrs[i]), sizes[i], x);
        });
      }, py::arg("conn_id"), py::arg("mr_id_v"), py::arg("data_ptr_v"), py::arg("size_v"),
         py::arg("num_iovs"))
      .def("sendv_async", [](UcclEndpoint& self, ConnId c, std::vector<MrId> mrs,
                             std::vector<uint64_t> ptrs, std::vector<size_t> sizes, size_t n) {
        check_lengths(n, {mrs.size(), ptrs.size(), sizes.size()});
        return post_group(self, "sendv_async", n, [&](Endpoint& ep, size_t i, XferId* x) {
          return ep.send_async(c, mrs[i], as_ptr(ptrs[i]), sizes[i], x);
        });
      }, py::arg("conn_id"), py::arg("mr_id_v"), py::arg("data_ptr_v"), py::arg("size_v"),
         py::arg("num_iovs"))
      .def("recvv_async", [](UcclEndpoint& self, ConnId c, std::vector<MrId> mrs,
                             std::vector<uint64_t> ptrs, std::vector<size_t> sizes, size_t n) {
        check_lengths(n, {mrs.size(), ptrs.size(), sizes.size()});
        for (size_t i = 0; i < n; ++i) sizes[i] = clamp_to_region(self, mrs[i], ptrs[i], sizes[i]);
        return post_group(self, "recvv_async", n, [&](Endpoint& ep, size_t i, XferId* x) {
          return ep.recv_async(c, mrs[i], as_ptr(ptrs[i]), sizes[i], x);
        });
      }, py::arg("conn_id"), py::arg("mr_id_v"), py::arg("data_ptr_v"), py::arg("size_v"),
         py::arg("num_iovs"))
      .def("read", [](UcclEndpoint& self, ConnId c, MrId mr, uint64_t ptr, size_t size,
                      py::bytes meta) {
        tcpx::FifoItem item = fifo_from_bytes(meta);
        return run_group(self, "read", 1, [&](Endpoint& ep, size_t, XferId* x) {
          return ep.read_async(c, mr, as_ptr(ptr), size, item, x);
        });
      }, py::arg("conn_id"), py::arg("mr_id"), py::arg("ptr"), py::arg("size"), py::arg("meta"))
      .def("write", [](UcclEndpoint& self, ConnId c, MrId mr, uint64_t ptr, size_t size,
                       py::bytes meta) {
        tcpx::FifoItem item = fifo_from_bytes(meta);
        return run_group(self, "write", 1, [&](Endpoint& ep, size_t, XferId* x) {
          return ep.write_async(c, mr, as_ptr(ptr), size, item, x);
        });
      }, py::arg("conn_id"), py::arg("mr_id"), py::arg("ptr"), py::arg("size"), py::arg("meta"))
      .def("read_async", [](UcclEndpoint& self, ConnId c, MrId mr, uint64_t ptr, size_t size,
                            py::bytes meta) {
        tcpx::FifoItem item = fifo_from_bytes(meta);
        return post_group(self, "read_async", 1, [&](Endpoint& ep, size_t, XferId* x) {
          return ep.read_async(c, mr, as_ptr(ptr), size, item, x);
        });
      }, py::arg("conn_id"), py::arg("mr_id"), py::arg("ptr"), py::arg("size"), py::arg("meta"))
      .def("write_async", [](UcclEndpoint& self, ConnId c, MrId mr, uint64_t ptr, size_t size,
                             py::bytes meta) {
        tcpx::FifoItem item = fifo_from_bytes(meta);
        return post_group(self, "write_async", 1, [&](Endpoint& ep, size_t, XferId* x) {
          return ep.write_async(c, mr, as_ptr(ptr), size, item, x);
        });
      }, py::arg("conn_id"), py::arg("mr_id"), py::arg("ptr"), py::arg("size"), py::arg("meta"))
      .def("readv", [](UcclEndpoint& self, ConnId c, std::vector<MrId> mrs,
                       std::vector<uint64_t> ptrs, std::vector<size_t> sizes, py::list metas,
                       size_t n) {
        auto pieces = pieces_from(mrs, ptrs, sizes, metas, n);
        return run_group(self, "readv", 1, [&](Endpoint& ep, size_t, XferId* x) {
          return ep.readv_async(c, pieces, x);
        });
      }, py::arg("conn_id"), py::arg("mr_id_v"), py::arg("ptr_v"), py::arg("size_v"),
         py::arg("meta_blob_v"), py::arg("num_iovs"))
      .def("writev", [](UcclEndpoint& self, ConnId c, std::vector<MrId> mrs,
                        std::vector<uint64_t> ptrs, std::vector<size_t> sizes, py::list metas,
                        size_t n) {
        auto pieces = pieces_from(mrs, ptrs, sizes, metas, n);
        return run_group(self, "writev", 1, [&](Endpoint& ep, size_t, XferId* x) {
          return ep.writev_async(c, pieces, x);
        });
      }, py::arg("conn_id"), py::arg("mr_id_v"), py::arg("ptr_v"), py::arg("size_v"),
         py::arg("meta_blob_v"), py::arg("num_iovs"))
      .def("readv_async", [](UcclEndpoint& self, ConnId c, std::vector<MrId> mrs,
                             std::vector<uint64_t> ptrs, std::vector<size_t> sizes,
                             py::list metas, size_t n) {
        auto pieces = pieces_from(mrs, ptrs, sizes, metas, n);
        return post_group(self, "readv_async", 1, [&](Endpoint& ep, size_t, XferId* x) {
          return ep.readv_async(c, pieces, x);
        });
      }, py::arg("conn_id"), py::arg("mr_id_v"), py::arg("ptr_v"), py::arg("size_v"),
         py::arg("meta_blob_v"), py::arg("num_iovs"))
      .def("writev_async", [](UcclEndpoint& self, ConnId c, std::vector<MrId> mrs,
                              std::vector<uint64_t> ptrs, std::vector<size_t> sizes,
                              py::list metas, size_t n) {
        auto pieces = pieces_from(mrs, ptrs, sizes, metas, n);
        return post_group(self, "writev_async", 1, [&](Endpoint& ep, size_t, XferId* x) {
          return ep.writev_async(c, pieces, x);
        });
      }, py::arg("conn_id"), py::arg("mr_id_v"), py::arg("ptr_v"), py::arg("size_v"),
         py::arg("meta_blob_v"), py::arg("num_iovs"))
      .def("advertise", [](UcclEndpoint& self, ConnId c, MrId mr, uint64_t ptr, size_t size) {
        tcpx::FifoItem item{};
        tcpx::Status s = self.ep().call([&](Endpoint& ep) {
          return ep.advertise(c, mr, as_ptr(ptr), size, &item);
        });
        bool ok = ok_or_log("advertise", s);
        return py::make_tuple(ok, ok ? fifo_to_bytes(item) : py::bytes());
      }, py::arg("conn_id"), py::arg("mr_id"), py::arg("ptr"), py::arg("size"))
      .def("advertisev", [](UcclEndpoint& self, ConnId c, std::vector<MrId> mrs,
                            std::vector<uint64_t> ptrs, std::vector<size_t> sizes, size_t n) {
        check_lengths(n, {mrs.size(), ptrs.size(), sizes.size()});
        std::vector<tcpx::FifoItem> items(n);
        tcpx::Status s = self.ep().call([&](Endpoint& ep) {
          for (size_t i = 0; i < n; ++i) {
            TCPX_RETURN_IF_ERROR(ep.advertise(c, mrs[i], as_ptr(ptrs[i]), sizes[i], &items[i]));
          }
          return tcpx::Status::Ok();
        });
        bool ok = ok_or_log("advertisev", s);
        py::list out;
        for (auto& it : items) out.append(fifo_to_bytes(it));
        return py::make_tuple(ok, out);
      }, py::arg("conn_id"), py::arg("mr_id_v"), py::arg("ptr_v"), py::arg("size_v"),
         py::arg("num_iovs"))
      .def("poll_async", [](UcclEndpoint& self, uint64_t transfer_id) {
        auto [ok, done] = self.poll(transfer_id);
        return py::make_tuple(ok, done);
      }, py::arg("transfer_id"))
      .def("__repr__", [](UcclEndpoint&) { return "<UCCL P2P Endpoint (tcpx-p2p)>"; });
  bind_uccl_descs(m, cls);
}

}  // namespace tcpx_py
