// Server and Connection. A connection alternates between two modes: parsing (llhttp consumes buffered input until a
// request is complete, then pauses) and responding (the handler's Response is written, a streamed body chunk by
// chunk). Input keeps being read while responding, up to max_pipelined_bytes, so a client closing mid-stream is
// noticed at once; parsing resumes only after the response is fully written, which keeps pipelined responses in
// order. One steady_timer per connection enforces whichever deadline applies to the current step.
#include "http/server.hpp"

#include <llhttp.h>

#include <algorithm>
#include <array>
#include <cctype>

namespace ph::http {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

bool is_loopback_host(std::string_view host) {
  if (host == "localhost") return true;
  std::string h(host);
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  asio::error_code ec;
  const auto addr = asio::ip::make_address(h, ec);
  if (ec) return false;
  if (addr.is_v6() && addr.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6()).is_loopback();
  }
  return addr.is_loopback();
}

Result<void> check_listen_security(std::string_view host, std::string_view api_token) {
  if (!is_loopback_host(host) && api_token.empty()) {
    return make_error("refusing to listen on " + std::string(host) +
                      ": HTTP_HOST is not a loopback address and API_TOKEN is empty (set API_TOKEN, or bind 127.0.0.1)");
  }
  return {};
}

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Server* server, asio::ip::tcp::socket socket)
      : server_(server), limits_(server->limits_), stats_(&server->stats_), socket_(std::move(socket)),
        timer_(socket_.get_executor()) {
    llhttp_settings_init(&settings_);
    settings_.on_message_begin = &Connection::on_message_begin;
    settings_.on_url = &Connection::on_url;
    settings_.on_header_field = &Connection::on_header_field;
    settings_.on_header_value = &Connection::on_header_value;
    settings_.on_headers_complete = &Connection::on_headers_complete;
    settings_.on_body = &Connection::on_body;
    settings_.on_message_complete = &Connection::on_message_complete;
    llhttp_init(&parser_, HTTP_REQUEST, &settings_);
    parser_.data = this;
  }

  void start() {
    arm_timer(limits_.idle_timeout);
    do_read();
  }

  // Abandons everything: the socket, the timer, a stream source (destroyed later, never inside its own callback).
  void close() {
    if (closed_) return;
    closed_ = true;
    asio::error_code ec;
    timer_.cancel();
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    socket_.close(ec);
    end_stream();
    if (server_) server_->forget(this);
  }

  void detach() { server_ = nullptr; }

 private:
  enum class Fail { none, bad_request, header_too_large, url_too_long, body_too_large, not_implemented };

  // ---- reading and parsing ------------------------------------------------------------------------------------

  void do_read() {
    if (reading_ || closed_ || peer_eof_) return;
    if (in_.size() >= limits_.max_pipelined_bytes && responding_ && !lingering_) return;  // resumed by finish_response()
    reading_ = true;
    socket_.async_read_some(asio::buffer(read_buf_), [self = shared_from_this()](asio::error_code ec, std::size_t n) {
      self->reading_ = false;
      if (self->lingering_) self->in_.clear();
      self->on_read(ec, n);
    });
  }

  void on_read(asio::error_code ec, std::size_t n) {
    if (closed_) return;
    if (lingering_) {  // after our final response: drain and drop until the client closes or the linger ends
      if (ec) {
        close();
      } else {
        do_read();
      }
      return;
    }
    if (ec) {
      // The client went away (or half-closed). Nothing more can be asked; an in-flight response is abandoned
      // because nobody will read it, which also releases a stream's reader at once instead of at the stall timeout.
      peer_eof_ = true;
      if (!responding_ || ec != asio::error::eof) {
        close();
        return;
      }
      if (source_) close();
      return;
    }
    in_.append(read_buf_.data(), n);
    if (!responding_) parse();
    do_read();
  }

  void parse() {
    while (!responding_ && !closed_ && !in_.empty()) {
      const char* data = in_.data();
      const auto err = llhttp_execute(&parser_, data, in_.size());
      if (err == HPE_OK) {
        in_.clear();  // everything consumed; the parser keeps its own state between calls
        send_continue_if_needed();
        return;
      }
      if (err == HPE_PAUSED) {
        // Paused in on_message_complete: bytes after the pause point belong to the next (pipelined) request.
        const auto used = static_cast<std::size_t>(llhttp_get_error_pos(&parser_) - data);
        in_.erase(0, used);
        llhttp_resume(&parser_);
        dispatch();
        return;
      }
      fail_parse(err);
      return;
    }
  }

  void fail_parse(llhttp_errno_t err) {
    int status = 400;
    std::string why = llhttp_get_error_reason(&parser_) ? llhttp_get_error_reason(&parser_) : "bad request";
    switch (fail_) {
      case Fail::header_too_large: status = 431; why = "request header fields too large"; break;
      case Fail::url_too_long: status = 414; why = "request target too long"; break;
      case Fail::body_too_large: status = 413; why = "request body too large"; break;
      case Fail::not_implemented: status = 501; why = "transfer coding not implemented"; break;
      default:
        if (err == HPE_INVALID_METHOD) {
          status = 501;
          why = "method not implemented";
        } else if (err == HPE_INVALID_VERSION) {
          status = 505;
          why = "HTTP version not supported";
        }
        break;
    }
    send_error_and_close(status, why);
  }

  void send_error_and_close(int status, std::string_view why) {
    Response r = Response::error(status, why);
    close_after_ = true;
    head_request_ = false;
    start_response(std::move(r));
  }

  void send_continue_if_needed() {
    if (!expect_continue_ || continue_sent_ || responding_) return;
    continue_sent_ = true;
    // Written while the body is still being read; no other write can be in flight in the parsing mode.
    writing_continue_ = true;
    asio::async_write(socket_, asio::buffer(kContinue), [self = shared_from_this()](asio::error_code ec, std::size_t) {
      self->writing_continue_ = false;
      if (ec) {
        self->close();
        return;
      }
      if (self->pending_response_) {
        self->pending_response_ = false;
        self->begin_output();
      }
    });
  }

  static Connection* self_of(llhttp_t* p) { return static_cast<Connection*>(p->data); }

  static int on_message_begin(llhttp_t* p) {
    auto* c = self_of(p);
    c->req_ = Request{};
    c->header_bytes_ = 0;
    c->last_was_value_ = false;
    c->expect_continue_ = false;
    c->continue_sent_ = false;
    c->fail_ = Fail::none;
    c->arm_timer(c->limits_.request_timeout);
    return 0;
  }

  static int on_url(llhttp_t* p, const char* at, std::size_t n) {
    auto* c = self_of(p);
    c->req_.target.append(at, n);
    c->header_bytes_ += n;
    if (c->req_.target.size() > c->limits_.max_url_bytes) {
      c->fail_ = Fail::url_too_long;
      return -1;
    }
    return 0;
  }

  bool count_header_bytes(std::size_t n) {
    header_bytes_ += n;
    if (header_bytes_ > limits_.max_header_bytes || req_.headers.size() > limits_.max_headers) {
      fail_ = Fail::header_too_large;
      return false;
    }
    return true;
  }

  static int on_header_field(llhttp_t* p, const char* at, std::size_t n) {
    auto* c = self_of(p);
    if (c->req_.headers.empty() || c->last_was_value_) c->req_.headers.emplace_back();
    c->last_was_value_ = false;
    c->req_.headers.back().first.append(at, n);
    return c->count_header_bytes(n) ? 0 : -1;
  }

  static int on_header_value(llhttp_t* p, const char* at, std::size_t n) {
    auto* c = self_of(p);
    if (c->req_.headers.empty()) c->req_.headers.emplace_back();
    c->last_was_value_ = true;
    c->req_.headers.back().second.append(at, n);
    return c->count_header_bytes(n) ? 0 : -1;
  }

  static int on_headers_complete(llhttp_t* p) {
    auto* c = self_of(p);
    auto& req = c->req_;
    bool has_length = false, has_te = false;
    for (auto& [k, v] : req.headers) {
      k = lower(k);
      v = std::string(trim(v));
      has_length |= k == "content-length";
      has_te |= k == "transfer-encoding";
      if (k == "expect" && lower(v) == "100-continue") c->expect_continue_ = true;
    }
    if (has_length && has_te) {  // request smuggling vector (RFC 9112 6.1): refuse outright
      c->fail_ = Fail::bad_request;
      llhttp_set_error_reason(p, "both Content-Length and Transfer-Encoding");
      return -1;
    }
    if (has_length && p->content_length > c->limits_.max_body_bytes) {
      c->fail_ = Fail::body_too_large;
      return -1;
    }
    req.method = llhttp_method_name(static_cast<llhttp_method_t>(llhttp_get_method(p)));
    req.keep_alive = llhttp_should_keep_alive(p) != 0;
    return 0;
  }

  static int on_body(llhttp_t* p, const char* at, std::size_t n) {
    auto* c = self_of(p);
    if (c->req_.body.size() + n > c->limits_.max_body_bytes) {
      c->fail_ = Fail::body_too_large;
      return -1;
    }
    c->req_.body.append(at, n);
    return 0;
  }

  static int on_message_complete(llhttp_t* p) {
    auto* c = self_of(p);
    c->req_.keep_alive = llhttp_should_keep_alive(p) != 0;
    return HPE_PAUSED;
  }

  // ---- responding ---------------------------------------------------------------------------------------------

  void dispatch() {
    Request& req = req_;
    const auto q = req.target.find('?');
    const std::string_view raw_path = std::string_view(req.target).substr(0, q);
    if (q != std::string::npos) req.query = req.target.substr(q + 1);
    auto decoded = percent_decode(raw_path);
    close_after_ = !req.keep_alive;
    head_request_ = req.method == "HEAD";
    if (!decoded || decoded->find('\0') != std::string::npos || raw_path.empty() || raw_path.front() != '/') {
      start_response(Response::error(400, "bad request target"));
      return;
    }
    req.path = std::move(*decoded);
    Response r;
    if (server_ && server_->handler_) {
      try {
        r = server_->handler_(req);
      } catch (const std::exception& e) {  // never let one request's bug unwind through the io_context
        r = Response::error(500, e.what());
      }
    } else {
      r = Response::error(503, "shutting down");
      close_after_ = true;
    }
    start_response(std::move(r));
  }

  void start_response(Response r) {
    responding_ = true;
    stats_->responses_by_status[r.status]++;
    const bool no_body = r.status == 204 || r.status == 304 || (r.status >= 100 && r.status < 200);
    const std::uint64_t length = r.stream ? r.stream_length : r.body.size();

    head_.clear();
    head_ += "HTTP/1.1 " + std::to_string(r.status) + " " + std::string(status_reason(r.status)) + "\r\n";
    head_ += "Server: playhead\r\n";
    for (const auto& [k, v] : r.headers) head_ += k + ": " + v + "\r\n";
    if (!no_body) head_ += "Content-Length: " + std::to_string(length) + "\r\n";
    if (close_after_) head_ += "Connection: close\r\n";
    head_ += "\r\n";

    body_ = no_body || head_request_ ? std::string{} : std::move(r.body);
    if (r.stream && !head_request_ && !no_body && r.stream_length > 0) {
      source_ = std::move(r.stream);
      stream_pos_ = r.stream_offset;
      stream_end_ = r.stream_offset + r.stream_length;
      stats_->streams_active++;
      head_pending_ = true;
    } else {
      release_source(std::move(r.stream));  // HEAD, 416 or empty: the reader is not needed
    }
    if (writing_continue_) {
      pending_response_ = true;  // begin_output() runs when the interim 100 is out
      return;
    }
    begin_output();
  }

  void begin_output() {
    if (source_) {
      next_chunk();
    } else {
      write_head_and_body();
    }
  }

  void write_head_and_body() {
    std::array<asio::const_buffer, 2> bufs{asio::buffer(head_), asio::buffer(body_)};
    arm_timer(limits_.write_timeout);
    asio::async_write(socket_, bufs, [self = shared_from_this()](asio::error_code ec, std::size_t) {
      if (ec) {
        self->close();
        return;
      }
      self->finish_response();
    });
  }

  void next_chunk() {
    const auto want = static_cast<std::size_t>(
        std::min<std::uint64_t>(stream_end_ - stream_pos_, limits_.stream_chunk_bytes));
    arm_timer(limits_.stall_timeout, TimerKind::stall);
    const auto gen = ++read_gen_;
    std::weak_ptr<Connection> weak = shared_from_this();
    source_->read(stream_pos_, want, [weak, gen](Result<std::span<const std::uint8_t>> r) {
      auto self = weak.lock();
      if (!self || self->closed_ || gen != self->read_gen_ || !self->source_) return;
      self->in_read_callback_ = true;
      if (!r || r->empty() || r->size() > self->stream_end_ - self->stream_pos_) {
        self->close();  // headers (and maybe bytes) already promised: closing is the only honest signal left
      } else {
        self->write_chunk(*r);
      }
      self->in_read_callback_ = false;
    });
  }

  void write_chunk(std::span<const std::uint8_t> data) {
    std::array<asio::const_buffer, 2> bufs{asio::buffer(head_pending_ ? std::string_view(head_) : std::string_view{}),
                                           asio::buffer(data.data(), data.size())};
    head_pending_ = false;
    arm_timer(limits_.write_timeout);
    asio::async_write(socket_, bufs, [self = shared_from_this(), n = data.size()](asio::error_code ec, std::size_t) {
      if (ec) {
        self->close();
        return;
      }
      self->stream_pos_ += n;
      self->stats_->stream_bytes += n;
      if (self->stream_pos_ >= self->stream_end_) {
        self->end_stream();
        self->finish_response();
      } else {
        self->next_chunk();
      }
    });
  }

  void end_stream() {
    if (source_) {
      stats_->streams_active--;
      release_source(std::move(source_));
    }
  }

  // Destroys a source now, or later on the io_context when we are inside its own read callback (the engine's code
  // that called us must not find its object gone when we return).
  void release_source(std::unique_ptr<StreamSource> s) {
    if (!s) return;
    if (!in_read_callback_) return;  // `s` is destroyed here, on return
    std::shared_ptr<StreamSource> holder(std::move(s));
    asio::post(socket_.get_executor(), [holder]() mutable { holder.reset(); });
  }

  void finish_response() {
    responding_ = false;
    if (close_after_ || closed_) {
      // Lingering close (RFC 9112 9.6): send FIN, then keep reading and discarding for a bounded time. Closing at
      // once with unread request bytes (an oversized header, a refused body) would make the kernel send RST, and
      // the client could lose the error response we just wrote.
      asio::error_code ec;
      socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
      if (closed_ || peer_eof_ || ec) {
        close();
        return;
      }
      lingering_ = true;
      in_.clear();
      arm_timer(limits_.linger_timeout, TimerKind::linger);
      do_read();
      return;
    }
    if (peer_eof_ && in_.empty()) {
      close();
      return;
    }
    arm_timer(limits_.idle_timeout);
    parse();  // a pipelined request may already be buffered
    do_read();
  }

  // ---- deadlines ----------------------------------------------------------------------------------------------

  enum class TimerKind { timeout, stall, linger };

  void arm_timer(std::chrono::milliseconds d, TimerKind kind = TimerKind::timeout) {
    const auto gen = ++timer_gen_;
    timer_.expires_after(d);
    timer_.async_wait([self = shared_from_this(), gen, kind](asio::error_code ec) {
      if (ec || gen != self->timer_gen_ || self->closed_) return;
      if (kind == TimerKind::stall) {
        self->stats_->stream_stalls++;
      } else if (kind == TimerKind::timeout) {
        self->stats_->timeouts++;
      }
      self->close();
    });
  }

  static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

  Server* server_;
  const ServerLimits limits_;
  ServerStats* stats_;
  asio::ip::tcp::socket socket_;
  asio::steady_timer timer_;
  std::uint64_t timer_gen_ = 0;
  std::uint64_t read_gen_ = 0;

  llhttp_settings_t settings_{};
  llhttp_t parser_{};
  std::array<char, 16 * 1024> read_buf_{};
  std::string in_;  // received, not yet parsed
  bool reading_ = false;
  bool peer_eof_ = false;
  bool closed_ = false;
  bool lingering_ = false;

  Request req_;
  std::size_t header_bytes_ = 0;
  bool last_was_value_ = false;
  bool expect_continue_ = false;
  bool continue_sent_ = false;
  bool writing_continue_ = false;
  bool pending_response_ = false;
  Fail fail_ = Fail::none;

  bool responding_ = false;
  bool close_after_ = false;
  bool head_request_ = false;
  std::string head_;
  std::string body_;
  std::unique_ptr<StreamSource> source_;
  std::uint64_t stream_pos_ = 0;
  std::uint64_t stream_end_ = 0;
  bool head_pending_ = false;
  bool in_read_callback_ = false;
};

Server::Server(asio::io_context& io, Handler handler, ServerLimits limits)
    : acceptor_(io), handler_(std::move(handler)), limits_(limits) {}

Server::~Server() { stop(); }

Result<void> Server::listen(std::string_view host, std::uint16_t port) {
  asio::error_code ec;
  std::string h(host == "localhost" ? "127.0.0.1" : host);
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  const auto addr = asio::ip::make_address(h, ec);
  if (ec) return make_error("HTTP_HOST '" + std::string(host) + "' is not an IP address");
  const asio::ip::tcp::endpoint ep(addr, port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    asio::error_code ignored;
    acceptor_.close(ignored);
    return make_error("cannot listen on " + std::string(host) + ":" + std::to_string(port) + ": " + ec.message());
  }
  stopped_ = false;
  do_accept();
  return {};
}

std::uint16_t Server::port() const {
  asio::error_code ec;
  const auto ep = acceptor_.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

void Server::do_accept() {
  acceptor_.async_accept([this](asio::error_code ec, asio::ip::tcp::socket socket) {
    if (stopped_) return;
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      do_accept();  // e.g. EMFILE: keep serving the connections we have
      return;
    }
    stats_.connections_accepted++;
    if (connections_.size() >= limits_.max_connections) {
      stats_.connections_rejected++;
      stats_.responses_by_status[503]++;
      // Fire-and-forget refusal; the socket lives in the handler until the write finishes.
      auto s = std::make_shared<asio::ip::tcp::socket>(std::move(socket));
      static const std::string kBusy = [] {
        const std::string body = R"({"error":"too many connections"})";
        return "HTTP/1.1 503 Service Unavailable\r\nServer: playhead\r\nContent-Type: application/json; "
               "charset=utf-8\r\nContent-Length: " + std::to_string(body.size()) +
               "\r\nRetry-After: 1\r\nConnection: close\r\n\r\n" + body;
      }();
      asio::async_write(*s, asio::buffer(kBusy), [s](asio::error_code, std::size_t) {
        asio::error_code ignored;
        s->shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
        s->close(ignored);
      });
    } else {
      asio::error_code ignored;
      socket.set_option(asio::ip::tcp::no_delay(true), ignored);
      auto c = std::make_shared<Connection>(this, std::move(socket));
      connections_.insert(c);
      stats_.connections_active = connections_.size();
      c->start();
    }
    do_accept();
  });
}

void Server::forget(Connection* c) {
  for (auto it = connections_.begin(); it != connections_.end(); ++it) {
    if (it->get() == c) {
      connections_.erase(it);
      break;
    }
  }
  stats_.connections_active = connections_.size();
}

void Server::stop() {
  stopped_ = true;
  asio::error_code ec;
  acceptor_.close(ec);
  auto all = std::move(connections_);
  connections_.clear();
  for (const auto& c : all) {
    c->detach();
    c->close();
  }
  stats_.connections_active = 0;
}

}  // namespace ph::http
