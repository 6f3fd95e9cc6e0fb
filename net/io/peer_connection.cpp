// PeerConnection implementation: Asio reads into the decoder's buffer, handshake and timeout state machine, batched
// writes, a once-a-second tick for keep-alives, idle and stalled-write detection and the rate estimate.
#include "net/io/peer_connection.hpp"

#include <cmath>
#include <cstring>

namespace ph::net {

namespace {

using Clock = std::chrono::steady_clock;

std::string seconds_text(std::chrono::milliseconds d) {
  return std::to_string(d.count() / 1000) + (d.count() % 1000 ? "." + std::to_string(d.count() % 1000 / 100) : "") +
         " s";
}

}  // namespace

std::shared_ptr<PeerConnection> PeerConnection::outgoing(asio::io_context& io, asio::ip::tcp::endpoint remote,
                                                         const InfoHash& info_hash, PeerConnectionConfig config,
                                                         PeerConnectionHandler* handler) {
  return std::make_shared<PeerConnection>(Tag{}, io, asio::ip::tcp::socket(io), true, remote, info_hash,
                                          std::move(config), handler, Router{});
}

std::shared_ptr<PeerConnection> PeerConnection::incoming(asio::ip::tcp::socket socket, PeerConnectionConfig config,
                                                         Router router) {
  std::error_code ec;
  auto remote = socket.remote_endpoint(ec);
  auto& io = static_cast<asio::io_context&>(socket.get_executor().context());
  return std::make_shared<PeerConnection>(Tag{}, io, std::move(socket), false, remote, InfoHash{},
                                          std::move(config), nullptr, std::move(router));
}

PeerConnection::PeerConnection(Tag, asio::io_context& io, asio::ip::tcp::socket socket, bool outgoing,
                               asio::ip::tcp::endpoint remote, const InfoHash& info_hash,
                               PeerConnectionConfig config, PeerConnectionHandler* handler, Router router)
    : io_(io),
      socket_(std::move(socket)),
      tick_timer_(io),
      connect_timer_(io),
      outgoing_(outgoing),
      remote_(remote),
      info_hash_(info_hash),
      config_(std::move(config)),
      handler_(handler),
      router_(std::move(router)),
      state_(outgoing ? State::connecting : State::handshaking),
      decoder_(config_.limits, true) {}

PeerConnection::~PeerConnection() {
  std::error_code ec;
  socket_.close(ec);
}

PeerAddress PeerConnection::remote_address() const {
  PeerAddress a;
  a.port = remote_.port();
  const auto addr = remote_.address();
  if (addr.is_v4()) {
    auto b = addr.to_v4().to_bytes();
    std::memcpy(a.ip.data(), b.data(), 4);
  } else {
    auto b = addr.to_v6().to_bytes();
    if (addr.to_v6().is_v4_mapped()) {
      std::memcpy(a.ip.data(), b.data() + 12, 4);
    } else {
      a.v6 = true;
      std::memcpy(a.ip.data(), b.data(), 16);
    }
  }
  return a;
}

void PeerConnection::start() {
  if (started_ || state_ == State::closed) return;
  started_ = true;
  started_at_ = last_received_ = last_sent_ = Clock::now();
  arm_tick();
  if (outgoing_) {
    do_connect();
  } else {
    connect_timer_.expires_after(config_.handshake_timeout);
    connect_timer_.async_wait([self = shared_from_this()](std::error_code ec) {
      if (!ec && self->state_ == State::handshaking) {
        self->close("handshake timeout after " + seconds_text(self->config_.handshake_timeout));
      }
    });
    std::error_code ec;
    socket_.set_option(asio::ip::tcp::no_delay(true), ec);
    start_reading();
  }
}

void PeerConnection::do_connect() {
  connect_timer_.expires_after(config_.connect_timeout);
  connect_timer_.async_wait([self = shared_from_this()](std::error_code ec) {
    if (!ec && self->state_ == State::connecting) {
      self->close("connect timeout after " + seconds_text(self->config_.connect_timeout));
    }
  });
  socket_.async_connect(remote_, [self = shared_from_this()](std::error_code ec) {
    if (self->state_ != State::connecting) return;
    if (ec) {
      self->close("connect failed: " + ec.message());
      return;
    }
    self->handle_connected();
  });
}

void PeerConnection::handle_connected() {
  state_ = State::handshaking;
  std::error_code ec;
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  last_received_ = Clock::now();
  connect_timer_.expires_after(config_.handshake_timeout);
  connect_timer_.async_wait([self = shared_from_this()](std::error_code e) {
    if (!e && self->state_ == State::handshaking) {
      self->close("handshake timeout after " + seconds_text(self->config_.handshake_timeout));
    }
  });
  wire::encode_handshake(pending_.bytes, wire::Handshake{config_.reserved, info_hash_, config_.our_peer_id});
  our_handshake_sent_ = true;
  queue_bytes(0);
  start_reading();
  if (handler_) handler_->on_connected(*this);
}

void PeerConnection::start_reading() { do_read(); }

void PeerConnection::do_read() {
  auto buf = decoder_.prepare(config_.read_chunk);
  socket_.async_read_some(asio::buffer(buf.data(), std::min(buf.size(), config_.read_chunk)),
                          [self = shared_from_this()](std::error_code ec, std::size_t n) {
                            if (self->state_ == State::closed) return;
                            if (ec) {
                              if (ec == asio::error::eof) {
                                self->close(self->state_ == State::handshaking
                                                ? "remote closed the connection during the handshake"
                                                : "remote closed the connection");
                              } else {
                                self->close("read error: " + ec.message());
                              }
                              return;
                            }
                            self->decoder_.commit(n);
                            self->last_received_ = Clock::now();
                            self->process_input();
                            if (self->state_ != State::closed) self->do_read();
                          });
}

void PeerConnection::process_input() {
  // Keep ourselves alive through handler callbacks that may drop the last outside reference.
  auto self = shared_from_this();
  while (state_ != State::closed) {
    wire::DecodeStep s = decoder_.next();
    if (s.status == wire::DecodeStatus::need_more) break;
    if (s.status == wire::DecodeStatus::error) {
      protocol_violation_ = true;
      close("protocol error: " + s.error);
      return;
    }
    const std::size_t payload = s.message.kind == wire::MessageKind::piece ? s.message.length : 0;
    counters_.payload_down += payload;
    counters_.protocol_down += s.consumed - payload;
    if (s.message.kind == wire::MessageKind::handshake) {
      if (!handle_handshake(s.message.handshake)) return;
      continue;
    }
    if (handler_) handler_->on_message(*this, s.message);
  }
}

bool PeerConnection::handle_handshake(const wire::Handshake& h) {
  if (h.peer_id == config_.our_peer_id) {
    close("connected to ourselves (remote peer id is ours)");
    return false;
  }
  if (outgoing_) {
    if (h.info_hash != info_hash_) {
      close("remote answered with info-hash " + h.info_hash.hex() + ", expected " + info_hash_.hex());
      return false;
    }
  } else {
    PeerConnectionHandler* routed = router_ ? router_(h.info_hash) : nullptr;
    if (state_ == State::closed) return false;  // the router may have closed us
    if (!routed) {
      close("info-hash " + h.info_hash.hex() + " is not served here");
      return false;
    }
    handler_ = routed;
    info_hash_ = h.info_hash;
    wire::encode_handshake(pending_.bytes, wire::Handshake{config_.reserved, info_hash_, config_.our_peer_id});
    our_handshake_sent_ = true;
    queue_bytes(0);
  }
  remote_handshake_ = h;
  state_ = State::connected;
  connected_at_ = Clock::now();
  connect_timer_.cancel();
  if (handler_) handler_->on_handshake(*this, h);
  return state_ != State::closed;
}

void PeerConnection::queue_bytes(std::size_t payload_bytes) {
  pending_payload_ += payload_bytes;
  schedule_flush();
}

void PeerConnection::schedule_flush() {
  if (flush_posted_ || write_in_flight_) return;  // a completing write picks up whatever is pending
  flush_posted_ = true;
  asio::post(io_, [self = shared_from_this()] {
    self->flush_posted_ = false;
    self->flush();
  });
}

void PeerConnection::OutQueue::clear() {
  bytes.clear();
  splices.clear();
  holds.clear();
  external_bytes = 0;
}

void PeerConnection::flush() {
  if (write_in_flight_ || pending_.empty() || state_ == State::closed || state_ == State::connecting) return;
  std::swap(writing_, pending_);
  pending_.clear();
  write_buffers_.clear();
  std::size_t from = 0;
  for (const auto& sp : writing_.splices) {
    if (sp.at > from) write_buffers_.emplace_back(writing_.bytes.data() + from, sp.at - from);
    write_buffers_.emplace_back(sp.data.data(), sp.data.size());
    from = sp.at;
  }
  if (writing_.bytes.size() > from) write_buffers_.emplace_back(writing_.bytes.data() + from, writing_.bytes.size() - from);
  writing_payload_ = pending_payload_;
  pending_payload_ = 0;
  write_in_flight_ = true;
  write_started_ = Clock::now();
  asio::async_write(socket_, write_buffers_, [self = shared_from_this()](std::error_code ec, std::size_t n) {
    self->write_in_flight_ = false;
    if (self->state_ == State::closed) return;
    if (ec) {
      self->close("write error: " + ec.message());
      return;
    }
    self->counters_.payload_up += self->writing_payload_;
    self->counters_.protocol_up += n - self->writing_payload_;
    self->writing_.clear();
    self->writing_payload_ = 0;
    self->last_sent_ = Clock::now();
    if (!self->pending_.empty()) {
      self->flush();
    } else if (self->handler_ && self->state_ == State::connected) {
      self->handler_->on_send_drained(*self);
      if (!self->pending_.empty()) self->flush();
    }
  });
}

void PeerConnection::arm_tick() {
  tick_timer_.expires_after(std::chrono::seconds(1));
  tick_timer_.async_wait([self = shared_from_this()](std::error_code ec) {
    if (ec || self->state_ == State::closed) return;
    self->on_tick();
    if (self->state_ != State::closed) self->arm_tick();
  });
}

void PeerConnection::on_tick() {
  const auto now = Clock::now();
  // Rates: exponential average with a ~5 s time constant over the counters' deltas.
  static constexpr double kTau = 5.0;
  const double down = static_cast<double>(counters_.payload_down - rate_last_down_);
  const double up = static_cast<double>(counters_.payload_up - rate_last_up_);
  rate_last_down_ = counters_.payload_down;
  rate_last_up_ = counters_.payload_up;
  const double alpha = 1.0 - std::exp(-1.0 / kTau);
  down_rate_ += alpha * (down - down_rate_);
  up_rate_ += alpha * (up - up_rate_);

  if (state_ == State::connected) {
    if (now - last_received_ >= config_.idle_timeout) {
      close("idle: nothing received for " + seconds_text(config_.idle_timeout));
      return;
    }
    if (write_in_flight_ && now - write_started_ >= config_.write_timeout) {
      close("stalled: a write made no progress for " + seconds_text(config_.write_timeout));
      return;
    }
    if (!write_in_flight_ && pending_.empty() && now - last_sent_ >= config_.keepalive_interval) send_keep_alive();
  }
}

void PeerConnection::close(std::string reason) {
  if (state_ == State::closed) return;
  state_ = State::closed;
  close_reason_ = std::move(reason);
  std::error_code ec;
  tick_timer_.cancel();
  connect_timer_.cancel();
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  pending_.clear();
  asio::post(io_, [self = shared_from_this()] { self->deliver_closed(); });
}

void PeerConnection::deliver_closed() {
  if (handler_) handler_->on_closed(*this, close_reason_);
}

// ---- sending ------------------------------------------------------------------------------------------------------

bool PeerConnection::send_keep_alive() {
  if (!can_send()) return false;
  wire::encode_keep_alive(pending_.bytes);
  queue_bytes(0);
  return true;
}

#define PH_SIMPLE_SEND(name, encoder)   \
  bool PeerConnection::name() {         \
    if (!can_send()) return false;      \
    wire::encoder(pending_.bytes);      \
    queue_bytes(0);                     \
    return true;                        \
  }
PH_SIMPLE_SEND(send_choke, encode_choke)
PH_SIMPLE_SEND(send_unchoke, encode_unchoke)
PH_SIMPLE_SEND(send_interested, encode_interested)
PH_SIMPLE_SEND(send_not_interested, encode_not_interested)
PH_SIMPLE_SEND(send_have_all, encode_have_all)
PH_SIMPLE_SEND(send_have_none, encode_have_none)
#undef PH_SIMPLE_SEND

bool PeerConnection::send_have(PieceIndex piece) {
  if (!can_send()) return false;
  wire::encode_have(pending_.bytes, piece);
  queue_bytes(0);
  return true;
}

bool PeerConnection::send_suggest(PieceIndex piece) {
  if (!can_send()) return false;
  wire::encode_suggest(pending_.bytes, piece);
  queue_bytes(0);
  return true;
}

bool PeerConnection::send_allowed_fast(PieceIndex piece) {
  if (!can_send()) return false;
  wire::encode_allowed_fast(pending_.bytes, piece);
  queue_bytes(0);
  return true;
}

bool PeerConnection::send_bitfield(std::span<const std::byte> bits) {
  if (!can_send()) return false;
  wire::encode_bitfield(pending_.bytes, bits);
  queue_bytes(0);
  return true;
}

bool PeerConnection::send_request(PieceIndex piece, std::uint32_t offset, std::uint32_t length) {
  if (!can_send()) return false;
  wire::encode_request(pending_.bytes, piece, offset, length);
  queue_bytes(0);
  return true;
}

bool PeerConnection::send_cancel(PieceIndex piece, std::uint32_t offset, std::uint32_t length) {
  if (!can_send()) return false;
  wire::encode_cancel(pending_.bytes, piece, offset, length);
  queue_bytes(0);
  return true;
}

bool PeerConnection::send_reject(PieceIndex piece, std::uint32_t offset, std::uint32_t length) {
  if (!can_send()) return false;
  wire::encode_reject(pending_.bytes, piece, offset, length);
  queue_bytes(0);
  return true;
}

bool PeerConnection::send_piece(PieceIndex piece, std::uint32_t offset,
                                std::span<const std::span<const std::byte>> segments, std::shared_ptr<const void> hold) {
  if (!can_send()) return false;
  std::size_t length = 0;
  for (const auto& seg : segments) length += seg.size();
  // Backpressure: the engine reads bytes_queued() and waits for on_send_drained instead of piling up blocks.
  if (bytes_queued() + length + 13 > config_.max_send_queue_bytes) return false;
  wire::encode_piece_header(pending_.bytes, piece, offset, static_cast<std::uint32_t>(length));
  for (const auto& seg : segments) pending_.splices.push_back({pending_.bytes.size(), seg});
  pending_.external_bytes += length;
  pending_.holds.push_back(std::move(hold));
  queue_bytes(length);
  return true;
}

bool PeerConnection::send_port(std::uint16_t port) {
  if (!can_send()) return false;
  wire::encode_port(pending_.bytes, port);
  queue_bytes(0);
  return true;
}

bool PeerConnection::send_extended(std::uint8_t extended_id, std::string_view payload) {
  if (!can_send()) return false;
  wire::encode_extended(pending_.bytes, extended_id, payload);
  queue_bytes(0);
  return true;
}

}  // namespace ph::net
