#include "uccl_descs.h"

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <optional>

#include "bindings.h"
#include "buffers.h"
#include "status_error.h"
#include "uccl_endpoint.h"
#include "uccl_metadata.h"

namespace py = pybind11;

namespace tcpx_py {

namespace {

using tcpx::ConnId;
using tcpx::Endpoint;
using tcpx::MrId;

// Messages of this layer: 4-byte tag, u64 request id, then the body. Integers
// big-endian. Request body: u32 n, n x (u64 addr, u64 size). Reply body:
// i32 status code, u32 n, n x 64-byte FIFO item, then the error text.
constexpr char kRequestTag[4] = {'T', 'X', 'D', 'Q'};
constexpr char kReplyTag[4] = {'T', 'X', 'D', 'P'};
constexpr char kDescsTag[4] = {'T', 'X', 'D', '1'};  // get_serialized_descs
constexpr uint32_t kMaxDescs = 1u << 16;
constexpr uint64_t kNoMr = UINT64_MAX;

struct Writer {
  std::vector<uint8_t> out;
  void tag(const char t[4]) { out.insert(out.end(), t, t + 4); }
  void u64(uint64_t v) { for (int s = 56; s >= 0; s -= 8) out.push_back(uint8_t(v >> s)); }
  void u32(uint32_t v) { for (int s = 24; s >= 0; s -= 8) out.push_back(uint8_t(v >> s)); }
  void raw(const void* p, size_t n) { auto b = static_cast<const uint8_t*>(p); out.insert(out.end(), b, b + n); }
};

// Bounds-checked reader: every getter fails (returns false) past the end.
struct Reader {
  const uint8_t* p;
  size_t left;
  bool tag(const char t[4]) { if (left < 4 || std::memcmp(p, t, 4) != 0) return false; p += 4; left -= 4; return true; }
  bool u64(uint64_t* v) { if (left < 8) return false; *v = 0; for (int i = 0; i < 8; ++i) *v = (*v << 8) | p[i]; p += 8; left -= 8; return true; }
  bool u32(uint32_t* v) { uint64_t w = 0; if (left < 4) return false; for (int i = 0; i < 4; ++i) w = (w << 8) | p[i]; *v = uint32_t(w); p += 4; left -= 4; return true; }
  bool raw(void* dst, size_t n) { if (left < n) return false; std::memcpy(dst, p, n); p += n; left -= n; return true; }
};

bool read_regions(Reader& r, std::vector<Region>* out) {
  uint32_t n = 0;
  if (!r.u32(&n) || n > kMaxDescs) return false;
  out->resize(n);
  for (auto& reg : *out) {
    uint64_t a, s;
    if (!r.u64(&a) || !r.u64(&s)) return false;
    reg = Region{uintptr_t(a), size_t(s)};
  }
  return true;
}

void write_regions(Writer& w, const std::vector<Region>& regions) {
  w.u32(uint32_t(regions.size()));
  for (auto& reg : regions) { w.u64(reg.ptr); w.u64(reg.size); }
}

// Answers one descriptor request (on the progress path: nothing here blocks).
// A malformed request is answered with PROTOCOL_ERROR, which fails only the
// peer's transfer() call.
tcpx::Status answer(Endpoint& ep, ConnId conn, const std::vector<uint8_t>& request) {
  Reader r{request.data(), request.size()};
  uint64_t id = 0;
  std::vector<Region> regions;
  tcpx::Status s;
  if (!r.tag(kRequestTag) || !r.u64(&id) || !read_regions(r, &regions)) {
    s = tcpx::ProtocolError("malformed descriptor request");
  }
  std::vector<tcpx::FifoItem> items(regions.size());
  for (size_t i = 0; i < regions.size() && s.ok(); ++i) {
    const void* addr = reinterpret_cast<const void*>(regions[i].ptr);
    MrId mr = 0;
    s = ep.find_mr(addr, regions[i].size, &mr);
    if (s.ok()) s = ep.advertise(conn, mr, addr, regions[i].size, &items[i]);
  }
  Writer w;
  w.tag(kReplyTag);
  w.u64(id);
  w.u32(uint32_t(static_cast<int32_t>(s.code())));
  w.u32(s.ok() ? uint32_t(items.size()) : 0);
  if (s.ok()) for (auto& it : items) w.raw(it.bytes, sizeof(it.bytes));
  w.raw(s.message().data(), s.message().size());
  return ep.send_message(conn, w.out.data(), w.out.size());
}

}  // namespace

struct DescService::Pending {
  struct Reply {
    ConnId conn = 0;
    bool done = false;
    tcpx::Status status;
    std::vector<tcpx::FifoItem> items;
  };
  std::mutex mu;
  std::condition_variable cv;
  uint64_t next_request = 1;
  std::map<uint64_t, Reply> replies;

  // Files the peer's reply for the transfer() call waiting on it. A reply
  // nobody waits for (given up, or malformed) is dropped.
  void deliver(const std::vector<uint8_t>& reply) {
    Reader r{reply.data(), reply.size()};
    uint64_t id = 0;
    uint32_t code = 0, n = 0;
    if (!r.tag(kReplyTag) || !r.u64(&id) || !r.u32(&code) || !r.u32(&n) || n > kMaxDescs) return;
    std::vector<tcpx::FifoItem> items(n);
    for (auto& it : items) if (!r.raw(it.bytes, sizeof(it.bytes))) return;
    std::string text(reinterpret_cast<const char*>(r.p), r.left);
    std::lock_guard<std::mutex> lock(mu);
    auto found = replies.find(id);
    if (found == replies.end()) return;
    found->second.done = true;
    found->second.status = code == 0 ? tcpx::Status::Ok()
                                     : tcpx::Status(static_cast<tcpx::StatusCode>(code),
                                                    "peer: " + text);
    found->second.items = std::move(items);
    cv.notify_all();
  }

  // Every pending request, or those on one connection.
  void fail(std::optional<ConnId> conn, const tcpx::Status& why) {
    std::lock_guard<std::mutex> lock(mu);
    for (auto& [id, reply] : replies) {
      if (!reply.done && (!conn || reply.conn == *conn)) {
        reply.done = true;
        reply.status = why;
      }
    }
    cv.notify_all();
  }
};

DescService::DescService(std::shared_ptr<tcpx::Endpoint> ep)
    : ep_(std::move(ep)), pending_(std::make_shared<Pending>()) {}

DescService::~DescService() { stop(); }

void DescService::stop() {
  stop_ = true;
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    threads.swap(threads_);
  }
  for (auto& t : threads) t.join();
  pending_->fail(std::nullopt, tcpx::NotFound("endpoint is closed"));
}

void DescService::serve(ConnId conn) {
  if (stop_) return;
  // The callbacks run on the progress path of ep_'s engine, which owns them:
  // they hold the engine by a plain pointer (a shared_ptr would keep it alive
  // forever) and the pending requests by a shared_ptr.
  Endpoint* ep = ep_.get();
  std::shared_ptr<Pending> pending = pending_;
  Endpoint::MessageService service;
  service.on_message = [ep, pending, conn](std::vector<uint8_t>&& msg) {
    if (msg.size() >= 4 && std::memcmp(msg.data(), kRequestTag, 4) == 0) return answer(*ep, conn, msg);
    pending->deliver(msg);
    return tcpx::Status::Ok();
  };
  service.on_closed = [pending, conn](const tcpx::Status& why) { pending->fail(conn, why); };
  // Only BUSY (served already) or NOT_FOUND (no such connection) can come
  // back; a transfer() over such a connection fails on its own.
  (void)ep_->serve_messages(conn, std::move(service));
}

void DescService::start_passive_accept(std::function<void(ConnId)> on_conn) {
  std::lock_guard<std::mutex> lock(mu_);
  threads_.emplace_back([this, on_conn] {
    while (!stop_) {
      ConnId c = 0;
      tcpx::PeerInfo peer;
      if (!ep_->accept(&c, &peer, kSliceMs).ok()) continue;
      on_conn(c);
    }
  });
}

tcpx::Status DescService::request_fifos(ConnId conn, const std::vector<Region>& remote,
                                        int timeout_ms, std::vector<tcpx::FifoItem>* out) {
  Pending& p = *pending_;
  uint64_t id;
  {
    std::lock_guard<std::mutex> lock(p.mu);
    id = p.next_request++;
    p.replies[id].conn = conn;
  }
  Writer w;
  w.tag(kRequestTag);
  w.u64(id);
  write_regions(w, remote);
  tcpx::Status s;
  {
    py::gil_scoped_release release;
    s = ep_->send_message(conn, w.out.data(), w.out.size());
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (s.ok()) {
    bool done;
    {
      py::gil_scoped_release release;
      std::unique_lock<std::mutex> lock(p.mu);
      done = p.cv.wait_for(lock, std::chrono::milliseconds(kSliceMs),
                           [&] { return p.replies[id].done; });
    }
    if (done) break;
    if (PyErr_CheckSignals() != 0) {
      std::lock_guard<std::mutex> lock(p.mu);
      p.replies.erase(id);
      throw py::error_already_set();
    }
    if (std::chrono::steady_clock::now() > deadline) s = tcpx::TimedOut("no descriptor reply from the peer");
  }
  std::lock_guard<std::mutex> lock(p.mu);
  Pending::Reply reply = std::move(p.replies[id]);
  p.replies.erase(id);
  if (!s.ok()) return s;
  if (!reply.status.ok()) return reply.status;
  if (reply.items.size() != remote.size()) return tcpx::ProtocolError("descriptor reply count mismatch");
  *out = std::move(reply.items);
  return tcpx::Status::Ok();
}

// ---- UcclEndpoint's parts that need DescService ---------------------------

UcclEndpoint::~UcclEndpoint() { close(); }

void UcclEndpoint::close() {
  std::unique_ptr<DescService> descs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    descs = std::move(descs_);
  }
  if (descs) {
    py::gil_scoped_release release;
    descs.reset();  // joins its accept thread before the endpoint goes
  }
  if (ep_) ep_->close();
}

DescService& UcclEndpoint::descs() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!descs_) {
    auto shared = ep_->shared();
    if (!shared) throw StatusError(tcpx::NotFound("endpoint is closed"));
    descs_ = std::make_unique<DescService>(shared);
    for (ConnId c : conns_) descs_->serve(c);
  }
  return *descs_;
}

std::optional<ConnId> UcclEndpoint::remote_conn(const std::string& metadata) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = remotes_.find(metadata);
  if (it == remotes_.end()) return std::nullopt;
  return it->second;
}

void UcclEndpoint::remember_remote(const std::string& metadata, ConnId conn) {
  std::lock_guard<std::mutex> lock(mu_);
  remotes_[metadata] = conn;
}

void UcclEndpoint::on_new_connection(ConnId conn) {
  std::lock_guard<std::mutex> lock(mu_);
  conns_.push_back(conn);
  if (descs_) descs_->serve(conn);
}

// ---- Python: XferDesc and the newer calls ----------------------------------

namespace {

struct XferDesc {
  uint64_t addr = 0;
  size_t size = 0;
  uint64_t mr_id = kNoMr;
  std::vector<uint32_t> lkeys, rkeys;  // RDMA keys in UCCL; always empty here
};

// (ptr, size) of a tensor (data_ptr/numel/element_size) or a buffer.
Region region_of(py::handle obj) {
  if (py::hasattr(obj, "data_ptr")) {
    auto ptr = py::cast<uint64_t>(obj.attr("data_ptr")());
    auto n = py::cast<int64_t>(obj.attr("numel")()) *
             py::cast<int64_t>(obj.attr("element_size")());
    return Region{uintptr_t(ptr), size_t(n)};
  }
  py::tuple t = buffer_address(obj, /*writable=*/false);
  return Region{py::cast<uintptr_t>(t[0]), py::cast<size_t>(t[1])};
}

}  // namespace

void bind_uccl_descs(py::module_& m, py::object endpoint_class) {
  py::class_<XferDesc>(m, "XferDesc")
      .def(py::init<>())
      .def_readwrite("addr", &XferDesc::addr)
      .def_readwrite("size", &XferDesc::size)
      .def_readwrite("mr_id", &XferDesc::mr_id)
      .def_readwrite("lkeys", &XferDesc::lkeys)
      .def_readwrite("rkeys", &XferDesc::rkeys)
      .def("__repr__", [](const XferDesc& d) {
        return "<XferDesc addr=" + std::to_string(d.addr) + " size=" + std::to_string(d.size) +
               " mr_id=" + std::to_string(d.mr_id) + ">";
      });

  auto cls = py::reinterpret_borrow<py::class_<UcclEndpoint>>(endpoint_class);
  cls.def("register_memory", [](UcclEndpoint& self, py::list objs) {
        std::vector<XferDesc> out;
        for (py::handle h : objs) {
          Region r = region_of(h);
          XferDesc d{r.ptr, r.size, kNoMr, {}, {}};
          MrId mr = 0;
          if (ok_or_log("register_memory", self.ep().reg(r.ptr, r.size, &mr))) d.mr_id = mr;
          out.push_back(d);
        }
        return out;
      }, py::arg("tensor_list"))
      .def("deregister_memory", [](UcclEndpoint& self, std::vector<XferDesc> descs) {
        for (auto& d : descs) if (d.mr_id != kNoMr) ok_or_log("deregister_memory", self.ep().dereg(d.mr_id));
      }, py::arg("desc_list"))
      .def("get_serialized_descs", [](UcclEndpoint&, std::vector<XferDesc> descs) {
        Writer w;
        w.tag(kDescsTag);
        std::vector<Region> regions;
        for (auto& d : descs) regions.push_back(Region{uintptr_t(d.addr), d.size});
        write_regions(w, regions);
        return py::bytes(reinterpret_cast<const char*>(w.out.data()), w.out.size());
      }, py::arg("desc_list"))
      .def("deserialize_descs", [](UcclEndpoint&, py::bytes blob) {
        std::string_view v = blob;
        Reader r{reinterpret_cast<const uint8_t*>(v.data()), v.size()};
        std::vector<Region> regions;
        if (!r.tag(kDescsTag) || !read_regions(r, &regions) || r.left != 0) {
          throw std::runtime_error("Invalid serialized XferDesc data");
        }
        std::vector<XferDesc> out;
        for (auto& reg : regions) out.push_back(XferDesc{reg.ptr, reg.size, kNoMr, {}, {}});
        return out;
      }, py::arg("serialized_bytes"))
      .def("transfer", [](UcclEndpoint& self, ConnId conn, const std::string& op,
                          std::vector<XferDesc> local, std::vector<XferDesc> remote) {
        if (local.size() != remote.size()) {
          throw std::runtime_error("Local and remote descriptors must have the same size");
        }
        if (op != "read" && op != "write") throw std::runtime_error("Invalid op_name: " + op);
        std::vector<Region> regions;
        for (auto& d : remote) regions.push_back(Region{uintptr_t(d.addr), d.size});
        std::vector<tcpx::FifoItem> fifos;
        tcpx::Status s = self.descs().request_fifos(conn, regions, 10000, &fifos);
        if (!s.ok()) return py::make_tuple(ok_or_log("transfer", s), uint64_t{0});
        std::vector<tcpx::IoPiece> pieces(local.size());
        for (size_t i = 0; i < local.size(); ++i) {
          pieces[i] = tcpx::IoPiece{local[i].mr_id, reinterpret_cast<void*>(local[i].addr),
                                    local[i].size, fifos[i]};
        }
        tcpx::XferId x = 0;
        s = self.ep().call([&](Endpoint& ep) {
          return op == "read" ? ep.readv_async(conn, pieces, &x) : ep.writev_async(conn, pieces, &x);
        });
        return py::make_tuple(ok_or_log("transfer", s), x);
      }, py::arg("conn_id"), py::arg("op_name"), py::arg("local_desc_list"),
         py::arg("remote_desc_list"))
      .def("add_remote_endpoint", [](UcclEndpoint& self, py::bytes metadata) {
        std::string key = metadata;
        if (auto known = self.remote_conn(key)) return py::make_tuple(true, *known);
        tcpx::PeerInfo peer;
        tcpx::Status s = decode_any_metadata(key, &peer);
        ConnId c = 0;
        if (s.ok()) s = self.ep().call([&](Endpoint& ep) { return ep.connect(peer, &c); });
        if (s.ok()) {
          self.on_new_connection(c);
          self.remember_remote(key, c);
        }
        return py::make_tuple(ok_or_log("add_remote_endpoint", s), c);
      }, py::arg("metadata_bytes"))
      .def("start_passive_accept", [](UcclEndpoint& self) {
        self.descs().start_passive_accept([&self](ConnId c) { self.on_new_connection(c); });
        return true;
      });
}

}  // namespace tcpx_py
