// PeerConnection: one TCP peer wire connection on an Asio io_context. It moves bytes and calls the pure codec
// (net/peer_message.hpp): connect with a timeout (outgoing) or adopt an accepted socket (incoming), exchange
// handshakes with a timeout, detect self-connections, decode messages into a handler, batch writes into one
// async_write, send keep-alives, close idle connections, and count bytes and rates. It knows nothing of pieces,
// pickers or storage: that policy lives in engine/.
//
// Threading: every method must be called on the io_context's thread. Lifetime: the connection is owned by
// shared_ptr and keeps itself alive while operations are pending; the handler is a plain pointer that must stay
// valid until on_closed has been delivered, or be cleared with set_handler(nullptr).
#pragma once

#include <asio.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "net/peer_message.hpp"
#include "net/types.hpp"

namespace ph::net {

class PeerConnection;

// Callbacks from a connection. Never called re-entrantly from inside a PeerConnection method the handler called:
// a close() requested by the handler delivers on_closed later, from the io_context.
class PeerConnectionHandler {
 public:
  virtual ~PeerConnectionHandler() = default;
  // Outgoing only: TCP is up and our handshake is queued (useful for tracing; most handlers ignore it).
  virtual void on_connected(PeerConnection& /*c*/) {}
  // The remote handshake arrived and was accepted (right info-hash, not ourselves); ours has been queued.
  virtual void on_handshake(PeerConnection& c, const wire::Handshake& remote) = 0;
  // Every message after the handshake, keep-alives included. Message::payload is valid only during the call.
  virtual void on_message(PeerConnection& c, const wire::Message& m) = 0;
  // Called exactly once, after which the connection sends and delivers nothing more.
  virtual void on_closed(PeerConnection& c, const std::string& reason) = 0;
  // The send queue has fully drained to the socket (a good moment to queue more piece data).
  virtual void on_send_drained(PeerConnection& /*c*/) {}
};

struct PeerConnectionConfig {
  PeerId our_peer_id;
  wire::Reserved reserved = wire::Reserved::ours();
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds handshake_timeout{20'000};
  std::chrono::milliseconds keepalive_interval{120'000};  // send a keep-alive after this long without sending
  std::chrono::milliseconds idle_timeout{180'000};        // close after this long without receiving anything
  std::chrono::milliseconds write_timeout{60'000};        // close when a queued write makes no progress this long
  std::size_t max_send_queue_bytes = 4u << 20;            // send_piece refuses beyond this (backpressure)
  std::size_t read_chunk = 256 * 1024;                    // bytes asked of the socket per read
  wire::DecoderLimits limits;
};

struct ByteCounters {
  std::uint64_t payload_down = 0;   // piece block bytes received
  std::uint64_t protocol_down = 0;  // every other received byte (headers, control messages, handshake)
  std::uint64_t payload_up = 0;     // piece block bytes sent (counted when written to the socket)
  std::uint64_t protocol_up = 0;
};

class PeerConnection : public std::enable_shared_from_this<PeerConnection> {
 public:
  enum class State : std::uint8_t { connecting, handshaking, connected, closed };

  // Incoming connections learn the info-hash from the remote handshake and ask this router which handler serves
  // it; nullptr means "not served" and the connection closes.
  using Router = std::function<PeerConnectionHandler*(const InfoHash&)>;

  // Outgoing: dial `remote`, send our handshake for `info_hash` once connected. Call start().
  static std::shared_ptr<PeerConnection> outgoing(asio::io_context& io, asio::ip::tcp::endpoint remote,
                                                  const InfoHash& info_hash, PeerConnectionConfig config,
                                                  PeerConnectionHandler* handler);
  // Incoming: an accepted socket; our handshake is sent after the router accepts the remote's info-hash.
  static std::shared_ptr<PeerConnection> incoming(asio::ip::tcp::socket socket, PeerConnectionConfig config,
                                                  Router router);

  ~PeerConnection();
  PeerConnection(const PeerConnection&) = delete;
  PeerConnection& operator=(const PeerConnection&) = delete;

  void start();
  // Closes the socket and cancels timers; on_closed(reason) is delivered once, posted to the io_context.
  void close(std::string reason);
  void set_handler(PeerConnectionHandler* handler) { handler_ = handler; }

  // Once metadata is known: bitfields must then match it exactly and piece indices are range-checked.
  void set_piece_count(std::uint32_t piece_count) { decoder_.set_piece_count(piece_count); }

  // ---- sending: each queues one message; false if the connection is closed (send_piece: or the queue is full) ----
  bool send_keep_alive();
  bool send_choke();
  bool send_unchoke();
  bool send_interested();
  bool send_not_interested();
  bool send_have(PieceIndex piece);
  bool send_bitfield(std::span<const std::byte> bits);
  bool send_request(PieceIndex piece, std::uint32_t offset, std::uint32_t length);
  // The block is not copied: `segments` (in order, together the block) are written straight from where they lie,
  // and `hold` keeps that memory valid (a pinned piece) until the write that carries them completes.
  bool send_piece(PieceIndex piece, std::uint32_t offset, std::span<const std::span<const std::byte>> segments,
                  std::shared_ptr<const void> hold);
  bool send_cancel(PieceIndex piece, std::uint32_t offset, std::uint32_t length);
  bool send_port(std::uint16_t port);
  bool send_suggest(PieceIndex piece);
  bool send_have_all();
  bool send_have_none();
  bool send_reject(PieceIndex piece, std::uint32_t offset, std::uint32_t length);
  bool send_allowed_fast(PieceIndex piece);
  bool send_extended(std::uint8_t extended_id, std::string_view payload);

  // ---- state ----
  State state() const { return state_; }
  bool is_open() const { return state_ != State::closed; }
  bool is_outgoing() const { return outgoing_; }
  const InfoHash& info_hash() const { return info_hash_; }
  const std::optional<wire::Handshake>& remote_handshake() const { return remote_handshake_; }
  bool remote_supports_fast() const { return remote_handshake_ && remote_handshake_->reserved.fast(); }
  bool remote_supports_extensions() const {
    return remote_handshake_ && remote_handshake_->reserved.extension_protocol();
  }
  const asio::ip::tcp::endpoint& remote_endpoint() const { return remote_; }
  PeerAddress remote_address() const;
  const std::string& close_reason() const { return close_reason_; }
  // True when the connection closed because the remote broke the wire protocol (undecodable input).
  bool closed_for_protocol_violation() const { return protocol_violation_; }

  // Backpressure: bytes queued or being written.
  std::size_t bytes_queued() const { return pending_.size() + writing_.size(); }
  std::size_t max_send_queue_bytes() const { return config_.max_send_queue_bytes; }

  const ByteCounters& counters() const { return counters_; }
  // Payload rates in bytes/s, averaged over the last few seconds (updated once a second).
  double download_rate() const { return down_rate_; }
  double upload_rate() const { return up_rate_; }
  std::chrono::steady_clock::time_point connected_at() const { return connected_at_; }
  std::chrono::steady_clock::time_point last_received() const { return last_received_; }

 private:
  struct Tag {};

 public:
  PeerConnection(Tag, asio::io_context& io, asio::ip::tcp::socket socket, bool outgoing,
                 asio::ip::tcp::endpoint remote, const InfoHash& info_hash, PeerConnectionConfig config,
                 PeerConnectionHandler* handler, Router router);

 private:
  void do_connect();
  void handle_connected();
  void start_reading();
  void do_read();
  void process_input();
  bool handle_handshake(const wire::Handshake& h);
  bool can_send() const { return state_ == State::connected; }
  void queue_bytes(std::size_t payload_bytes);
  void schedule_flush();
  void flush();
  void arm_tick();
  void on_tick();
  void deliver_closed();

  asio::io_context& io_;
  asio::ip::tcp::socket socket_;
  asio::steady_timer tick_timer_;
  asio::steady_timer connect_timer_;
  bool outgoing_;
  asio::ip::tcp::endpoint remote_;
  InfoHash info_hash_;
  PeerConnectionConfig config_;
  PeerConnectionHandler* handler_;
  Router router_;
  State state_;
  std::string close_reason_;
  bool protocol_violation_ = false;
  std::optional<wire::Handshake> remote_handshake_;
  bool our_handshake_sent_ = false;
  bool started_ = false;

  // Outgoing bytes: the encoded messages, with blocks sent without copying spliced in at their positions.
  struct OutQueue {
    struct Splice {
      std::size_t at;  // position in `bytes` the data goes before
      std::span<const std::byte> data;
    };
    wire::Buffer bytes;
    std::vector<Splice> splices;
    std::vector<std::shared_ptr<const void>> holds;
    std::size_t external_bytes = 0;
    std::size_t size() const { return bytes.size() + external_bytes; }  // encoded and spliced bytes
    bool empty() const { return bytes.empty() && splices.empty(); }
    void clear();
  };
  wire::MessageDecoder decoder_;
  OutQueue pending_;  // queued, not yet handed to the socket
  OutQueue writing_;  // the one async_write in flight
  std::vector<asio::const_buffer> write_buffers_;
  std::size_t pending_payload_ = 0;  // piece payload bytes inside pending_ / writing_ (for counters)
  std::size_t writing_payload_ = 0;
  bool write_in_flight_ = false;
  bool flush_posted_ = false;  // messages queued in one turn of the io_context go out in one async_write

  ByteCounters counters_;
  std::uint64_t rate_last_down_ = 0;
  std::uint64_t rate_last_up_ = 0;
  double down_rate_ = 0;
  double up_rate_ = 0;
  std::chrono::steady_clock::time_point started_at_{};
  std::chrono::steady_clock::time_point connected_at_{};
  std::chrono::steady_clock::time_point last_received_{};
  std::chrono::steady_clock::time_point last_sent_{};
  std::chrono::steady_clock::time_point write_started_{};
};

}  // namespace ph::net
