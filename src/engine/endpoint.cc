// Endpoint lifecycle, metadata, connections, registration, notifications and
// messages. Transfer calls live in endpoint_transfers.cc.
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "common/log.h"
#include "cuda/cuda_ops.h"
#include "engine/endpoint_impl.h"
#include "engine/metadata.h"

namespace tcpx {
namespace {

// First non-loopback IPv4 address that is up, else 127.0.0.1.
std::string default_listen_addr() {
  ifaddrs* ifs = nullptr;
  std::string found = "127.0.0.1";
  if (getifaddrs(&ifs) != 0) return found;
  for (ifaddrs* i = ifs; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    if ((i->ifa_flags & IFF_UP) == 0 || (i->ifa_flags & IFF_LOOPBACK) != 0) continue;
    char text[INET_ADDRSTRLEN];
    if (inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, text, sizeof text)) {
      found = text;
      break;
    }
  }
  freeifaddrs(ifs);
  return found;
}

bool is_loopback_address(const std::string& a) {
  return a.rfind("127.", 0) == 0 || a == "::1" || a == "localhost";
}

// The plugin device (NIC) for this endpoint: TCPX_NET_DEV when set; the
// loopback device when the control listener is on loopback, so a single-host
// run never sends data to a routable address; otherwise GPUs are spread over
// NICs in blocks (GPU g -> device g * ndev / gpu_count: on A3, 8 GPUs and 4
// NICs listed in PCI order, GPUs 0-1 share NIC 0, as they share a PCIe
// switch), or g % ndev when the GPU count is unknown.
int choose_net_dev(const net::Transport& t, int ndev, const Config& cfg, int gpu, int gpu_count) {
  if (cfg.net_dev >= 0) return cfg.net_dev;
  if (is_loopback_address(cfg.listen_addr)) {
    for (int d = 0; d < ndev; ++d) {
      ncclNetProperties_v7_t p{};
      if (t.properties(d, &p).ok() && p.name != nullptr && std::string(p.name) == "lo") return d;
    }
  }
  if (gpu < 0) return 0;
  if (gpu_count > ndev && gpu < gpu_count) return static_cast<int>(static_cast<long>(gpu) * ndev / gpu_count);
  return gpu % ndev;
}

}  // namespace

Endpoint::Impl::~Impl() {
  closing = true;
  listener.stop();      // no new connections; running handshakes cancelled
  if (progress) progress->stop();  // fails every transfer, closes every conn
  progress.reset();
  std::lock_guard<std::mutex> lock(mu);
  for (auto& [id, shared] : conns) shared->fail(Closed("endpoint destroyed"));
  accept_cv.notify_all();
}

Status Endpoint::Impl::init(int gpu_idx, const Config& config) {
  TCPX_RETURN_IF_ERROR(config.validate());
  cfg = config;
  spin.reset(cfg.spin_us, 0, false, engine::SpinPolicy::kWaitWindow);
  gpu = gpu_idx;
  int gpu_count = 0;
  if (const tcpxCudaOps_v1* ops = cuda::ops(); ops != nullptr && gpu >= 0) {
    int count = 0;
    if (ops->device_count(&count) == 0) gpu_count = count;
    if (count > 0 && gpu >= count)
      return InvalidArgument("GPU index " + std::to_string(gpu) + " but this host has " + std::to_string(count) +
                             " GPU(s)");
  }
  // Shared with every other endpoint of the process (one init per plugin).
  TCPX_RETURN_IF_ERROR(net::Transport::load(cfg.plugin_path, &transport));
  if (cfg.sockets_per_channel != 1 && !transport->takes_socket_count())
    TCPX_WARN("TCPX_SOCKETS_PER_CHANNEL=%d is ignored: plugin %s takes no socket count from the engine "
              "(it reads its own configuration; for Google's TCPX plugin see docs/a3.md)",
              cfg.sockets_per_channel, transport->name().c_str());
  int ndev = 0;
  TCPX_RETURN_IF_ERROR(transport->devices(&ndev));
  if (ndev <= 0) return Unsupported("network plugin " + transport->name() + " reports no devices");
  net_dev = choose_net_dev(*transport, ndev, cfg, gpu, gpu_count);
  if (net_dev >= ndev)
    return InvalidArgument("TCPX_NET_DEV=" + std::to_string(net_dev) + " but the plugin has " + std::to_string(ndev) +
                           " device(s)");
  ncclNetProperties_v7_t props{};
  TCPX_RETURN_IF_ERROR(transport->properties(net_dev, &props));
  unpack_device = props.netDeviceType == NCCL_NET_DEVICE_UNPACK;

  cpu_unpacker = unpack::make_cpu_unpacker();
  if (cuda::ops() != nullptr && gpu >= 0) {
    Status s = unpack::make_cuda_unpacker(gpu, &cuda_unpacker);
    if (!s.ok()) TCPX_INFO("no CUDA unpacker: %s", s.to_string().c_str());
  }
  engine::ProgressDeps deps;
  deps.transport = transport;
  deps.mrs = &mrs;
  deps.transfers = &xfers;
  deps.cpu_unpacker = cpu_unpacker.get();
  deps.cuda_unpacker = cuda_unpacker.get();
  deps.recv_stats = &recv_stats;
  deps.chunk_bytes = cfg.chunk_bytes;
  deps.spin_us = cfg.spin_us;
  deps.eager_bytes = cfg.eager_bytes;
  deps.peer_timeout_ms = cfg.peer_timeout_ms;
  deps.max_unmatched_bytes = cfg.max_unmatched_bytes;
  deps.max_undelivered_bytes = cfg.max_undelivered_bytes;
  deps.queued_notification_bytes = &notification_bytes;
  deps.deliver_notification = [this](Notification&& n) {
    std::lock_guard<std::mutex> lock(mu);
    notification_bytes += engine::notification_cost(n);
    notifications.push_back(std::move(n));
  };
  progress = std::make_unique<engine::Progress>(std::move(deps));
  TCPX_RETURN_IF_ERROR(progress->start());

  local.ip = cfg.listen_addr.empty() ? default_listen_addr() : cfg.listen_addr;
  local.gpu_idx = gpu;
  hs_params.transport = transport.get();
  hs_params.net_dev = net_dev;
  hs_params.protocol_version = engine::announced_protocol_version();
  hs_params.channels = cfg.channels_per_peer;
  hs_params.sockets_per_channel = cfg.sockets_per_channel;
  hs_params.peer_timeout_ms = cfg.peer_timeout_ms;
  hs_params.max_control_backlog = cfg.max_control_backlog_bytes;
  hs_params.auth_key = cfg.auth_key;
  hs_params.cancel = &closing;
  hs_params.self = local;
  TCPX_RETURN_IF_ERROR(listener.bind(local.ip, cfg.listen_port));
  local.port = listener.port();
  hs_params.self = local;
  engine::ListenerLimits limits;
  limits.max_pending = cfg.max_handshakes;
  limits.timeout_ms = cfg.connect_timeout_ms;
  listener.run(hs_params, limits, [this](engine::HandshakeResult&& hs) {
    PeerInfo peer = hs.peer;
    ConnId id = adopt(std::move(hs));
    std::lock_guard<std::mutex> lock(mu);
    accepted.emplace_back(id, peer);
    accept_cv.notify_all();
  });
  TCPX_INFO("endpoint gpu %d listening on %s:%u; %s", gpu, local.ip.c_str(), local.port,
            cfg.describe().c_str());
  return Status::Ok();
}

ConnId Endpoint::Impl::adopt(engine::HandshakeResult&& hs) {
  auto shared = std::make_shared<engine::ConnShared>(cfg.max_undelivered_bytes);
  ConnId id;
  {
    std::lock_guard<std::mutex> lock(mu);
    id = next_conn++;
    conns[id] = shared;
  }
  // std::function needs a copyable closure: carry the move-only result in a
  // shared_ptr.
  auto box = std::make_shared<engine::HandshakeResult>(std::move(hs));
  progress->post([this, id, shared, box] { progress->adopt(id, shared, std::move(*box)); });
  return id;
}

void Endpoint::Impl::send_frame(ConnId conn, engine::FrameType type, std::vector<uint8_t> payload) {
  // A message service answering on the loop: the frame joins this pass's
  // flush, so a request read in a pass is answered in the same pass.
  if (progress->on_loop()) return progress->send_frame(conn, type, std::move(payload));
  progress->send_now(conn, type, std::move(payload));
}

Status Endpoint::Impl::find_locked(ConnId conn, std::shared_ptr<engine::ConnShared>* out) const {
  auto it = conns.find(conn);
  if (it != conns.end()) {
    *out = it->second;
    return Status::Ok();
  }
  if (conn != 0 && conn < next_conn) return Closed("connection " + std::to_string(conn) + " was closed locally");
  return NotFound("unknown connection " + std::to_string(conn));
}

Status Endpoint::Impl::usable(ConnId conn) const {
  std::lock_guard<std::mutex> lock(mu);
  // Every post asks: look the connection up without copying its shared_ptr
  // (two atomic increments) and read its error without a lock while it has
  // none.
  if (auto it = conns.find(conn); it != conns.end()) return it->second->error();
  std::shared_ptr<engine::ConnShared> shared;
  return find_locked(conn, &shared);
}

Endpoint::Endpoint(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Endpoint::~Endpoint() = default;

Status Endpoint::create(int local_gpu_idx, const Config& config, std::unique_ptr<Endpoint>* out) {
  if (out == nullptr) return InvalidArgument("Endpoint::create: out is null");
  auto impl = std::make_unique<Impl>();
  TCPX_RETURN_IF_ERROR(impl->init(local_gpu_idx, config));
  out->reset(new Endpoint(std::move(impl)));
  return Status::Ok();
}

std::vector<uint8_t> Endpoint::get_metadata() const {
  std::vector<uint8_t> blob;
  (void)engine::encode_metadata(impl_->local, &blob);
  return blob;
}

Status Endpoint::parse_metadata(const std::vector<uint8_t>& blob, PeerInfo* out) {
  return engine::decode_metadata(blob, out);
}

const PeerInfo& Endpoint::local_info() const { return impl_->local; }

std::string Endpoint::metadata_string() const { return engine::format_metadata_string(impl_->local); }

Status Endpoint::parse_metadata_string(const std::string& s, PeerInfo* out) {
  return engine::parse_metadata_string(s, out);
}

Status Endpoint::connect(const std::string& ip, int remote_gpu_idx, uint16_t port, ConnId* out) {
  if (out == nullptr) return InvalidArgument("connect: out is null");
  engine::HandshakeResult hs;
  auto deadline = engine::Clock::now() + std::chrono::milliseconds(impl_->cfg.connect_timeout_ms);
  Status s = engine::handshake_connect(impl_->hs_params, ip, port, remote_gpu_idx, deadline, &hs);
  if (!s.ok()) return Status(s.code(), "connect to " + ip + ":" + std::to_string(port) + " (GPU " +
                                           std::to_string(remote_gpu_idx) + "): " + s.message());
  *out = impl_->adopt(std::move(hs));
  return Status::Ok();
}

Status Endpoint::connect(const PeerInfo& peer, ConnId* out) {
  return connect(peer.ip, peer.gpu_idx, peer.port, out);
}

Status Endpoint::accept(ConnId* out, PeerInfo* peer, int timeout_ms) {
  if (out == nullptr) return InvalidArgument("accept: out is null");
  std::unique_lock<std::mutex> lock(impl_->mu);
  auto ready = [&] { return !impl_->accepted.empty() || impl_->closing.load(); };
  if (timeout_ms < 0) {
    impl_->accept_cv.wait(lock, ready);
  } else if (!impl_->accept_cv.wait_for(lock, std::chrono::milliseconds(timeout_ms), ready)) {
    return TimedOut("no incoming connection within " + std::to_string(timeout_ms) + " ms");
  }
  if (impl_->accepted.empty()) return Closed("endpoint closing");
  *out = impl_->accepted.front().first;
  if (peer != nullptr) *peer = impl_->accepted.front().second;
  impl_->accepted.pop_front();
  return Status::Ok();
}

Status Endpoint::close_connection(ConnId conn) {
  std::shared_ptr<engine::ConnShared> shared;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    Status s = impl_->find_locked(conn, &shared);
    if (s.code() == StatusCode::kClosed) return Status::Ok();  // closed before
    TCPX_RETURN_IF_ERROR(s);
  }
  Status why = Closed("connection " + std::to_string(conn) + " closed locally");
  if (impl_->progress->on_loop()) {
    // From a message service, inside the pass that is reading this very
    // connection perhaps: close it at the start of the next pass instead.
    impl_->progress->post([this, conn, why] { impl_->progress->close_connection(conn, why); });
  } else {
    TCPX_RETURN_IF_ERROR(impl_->progress->run_sync([&] { impl_->progress->close_connection(conn, why); }));
  }
  shared->fail(why);
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->conns.erase(conn);  // the id now reads as closed (find_locked)
  return Status::Ok();
}

Status Endpoint::reg(const void* data, size_t size, MrId* out) { return impl_->mrs.reg(data, size, out); }

Status Endpoint::dereg(MrId mr) {
  // Its plugin handles must be dropped under the token, which a message
  // service already holds.
  if (impl_->progress->on_loop()) return Busy("dereg is not allowed on the progress path (from a message service)");
  Status s = impl_->mrs.dereg(mr);
  // A peer that read this region may already hold every byte while our
  // plugin send request has not been tested yet, so the region still counts
  // as in use. Drive progress for a moment so finished requests release it;
  // BUSY only when a transfer really still uses it.
  constexpr auto kSettle = std::chrono::milliseconds(5);
  const auto until = std::chrono::steady_clock::now() + kSettle;
  while (s.code() == StatusCode::kBusy && std::chrono::steady_clock::now() < until) {
    if (!impl_->progress->try_pass()) std::this_thread::yield();
    s = impl_->mrs.dereg(mr);
  }
  TCPX_RETURN_IF_ERROR(s);
  // Plugin handles go before dereg returns: the caller may free the memory.
  return impl_->progress->run_sync([&] { impl_->progress->drop_mr(mr); });
}

Status Endpoint::dereg(MrId mr, int wait_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max(wait_ms, 0));
  Status s = dereg(mr);
  if (impl_->progress->on_loop()) return s;  // never block the progress path
  // Woken by the release of the region's last user; a transfer posted on it
  // meanwhile makes it BUSY again, and we wait again.
  while (s.code() == StatusCode::kBusy && impl_->mrs.wait_unused(mr, deadline)) s = dereg(mr);
  return s;
}

Status Endpoint::find_mr(const void* data, size_t size, MrId* out) const {
  if (out == nullptr) return InvalidArgument("find_mr: out is null");
  return impl_->mrs.find(data, size, out);
}

Status Endpoint::send_notification(ConnId conn, const std::string& name, const std::string& msg) {
  if (name.size() > engine::kMaxNotifyField || msg.size() > engine::kMaxNotifyField)
    return InvalidArgument("notification name/msg longer than 4096 bytes");
  TCPX_RETURN_IF_ERROR(impl_->usable(conn));
  impl_->send_frame(conn, engine::FrameType::kNotify, engine::encode_notify({name, msg}));
  return Status::Ok();
}

std::vector<Notification> Endpoint::get_notifications() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<Notification> out(std::make_move_iterator(impl_->notifications.begin()),
                                std::make_move_iterator(impl_->notifications.end()));
  impl_->notifications.clear();
  impl_->notification_bytes = 0;
  return out;
}

Status Endpoint::send_message(ConnId conn, const void* data, size_t size) {
  if (size > engine::kMaxMessageBytes) return InvalidArgument("message larger than 1 MiB");
  if (data == nullptr && size > 0) return InvalidArgument("send_message: data is null");
  TCPX_RETURN_IF_ERROR(impl_->usable(conn));
  const auto* p = static_cast<const uint8_t*>(data);
  impl_->send_frame(conn, engine::FrameType::kMessage, std::vector<uint8_t>(p, p + size));
  return Status::Ok();
}

Status Endpoint::serve_messages(ConnId conn, MessageService service) {
  if (!service.on_message) return InvalidArgument("serve_messages: on_message is empty");
  if (impl_->progress->on_loop()) return impl_->progress->serve_messages(conn, std::move(service));
  Status result;
  TCPX_RETURN_IF_ERROR(
      impl_->progress->run_sync([&] { result = impl_->progress->serve_messages(conn, std::move(service)); }));
  return result;
}

Status Endpoint::recv_message(ConnId conn, std::vector<uint8_t>* out, int timeout_ms) {
  if (out == nullptr) return InvalidArgument("recv_message: out is null");
  std::shared_ptr<engine::ConnShared> shared;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    TCPX_RETURN_IF_ERROR(impl_->find_locked(conn, &shared));
  }
  return shared->pop_message(out, timeout_ms);
}

std::string Endpoint::describe_path() const {
  const Impl& i = *impl_;
  // What the plugin declares, then what receives really did: a TCPX-style
  // (UNPACK) plugin decides per receive, reporting 0 fragments when the bytes
  // already landed in place (host memory on TCPX and on the built-in plugin
  // unless TCPX_P2P_TCP_BOUNCE_HOST=1).
  std::string unpackers = std::string(i.cpu_unpacker ? i.cpu_unpacker->name() : "no CPU unpacker") +
                          (i.cuda_unpacker ? std::string(" / ") + i.cuda_unpacker->name() : "");
  std::string declared = i.unpack_device
                             ? "in place when the plugin reports no fragments, else bounce buffer + " + unpackers
                             : "direct (the plugin's device type is HOST: receives land in place, no unpack)";
  uint64_t in_place = i.recv_stats.in_place.load(std::memory_order_relaxed);
  uint64_t unpacked = i.recv_stats.unpacked.load(std::memory_order_relaxed);
  std::string seen = "; receives so far: " + std::to_string(in_place) + " in place, " + std::to_string(unpacked) +
                     " through bounce + unpack";
  std::string sockets = i.transport->takes_socket_count()
                            ? std::to_string(i.cfg.sockets_per_channel) + " socket(s)"
                            : "plugin-chosen sockets";
  return "plugin " + i.transport->name() + " (" + i.transport->path() + "), net dev " + std::to_string(i.net_dev) +
         ", " + std::to_string(i.cfg.channels_per_peer) + " channel(s) x " + sockets + ", chunk " +
         std::to_string(i.cfg.chunk_bytes) + " B, receive path: " + declared + seen;
}

int Endpoint::local_gpu_idx() const { return impl_->gpu; }

size_t Endpoint::connection_count() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->conns.size();
}

Status Endpoint::last_handshake_error() const { return impl_->listener.last_error(); }

}  // namespace tcpx
