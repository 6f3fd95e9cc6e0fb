#include "net/io/http_client.hpp"

#include <llhttp.h>

#include <array>
#include <asio/ssl.hpp>
#include <cctype>

#include "net/text.hpp"
#include "net/tracker_http.hpp"

namespace ph::net {

const std::string* HttpResponse::header(std::string_view lowercase_name) const {
  for (const auto& [k, v] : headers) {
    if (k == lowercase_name) return &v;
  }
  return nullptr;
}

namespace {

// Resolves a Location header against the URL that sent it: absolute, scheme-relative and absolute-path forms
// (the ones trackers use); a bare relative path replaces the last path segment.
std::string resolve_location(const tracker::Url& base, const std::string& location) {
  if (location.find("://") != std::string::npos) return location;
  std::string origin = base.scheme + "://" + (base.host_is_v6_literal ? "[" + base.host + "]" : base.host) + ":" +
                       std::to_string(base.port);
  if (location.rfind("//", 0) == 0) return base.scheme + ":" + location;
  if (!location.empty() && location.front() == '/') return origin + location;
  std::string path = base.target.substr(0, base.target.find('?'));
  return origin + path.substr(0, path.rfind('/') + 1) + location;
}

}  // namespace

class HttpClient::Request : public std::enable_shared_from_this<Request> {
 public:
  Request(asio::io_context& io, const HttpClientOptions& options, std::shared_ptr<asio::ssl::context> tls_ctx,
          Handler handler)
      : io_(io), opt_(options), tls_ctx_(std::move(tls_ctx)), handler_(std::move(handler)), resolver_(io),
        deadline_(io) {
    llhttp_settings_init(&settings_);
    settings_.on_header_field = &Request::on_header_field;
    settings_.on_header_value = &Request::on_header_value;
    settings_.on_headers_complete = &Request::on_headers_complete;
    settings_.on_body = &Request::on_body;
    settings_.on_message_complete = &Request::on_message_complete;
  }

  void start(const std::string& url) {
    if (done_) return;  // cancelled before it began
    deadline_.expires_after(opt_.timeout);
    deadline_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
      if (ec || self->done_) return;
      self->fail("timed out after " + std::to_string(self->opt_.timeout.count()) + " ms");
    });
    hop(url);
  }

  void cancel() {
    handler_ = nullptr;
    if (done_) return;
    done_ = true;
    close_transport();
    deadline_.cancel();
  }

 private:
  // One request/response exchange; redirects start a new hop on a fresh connection.
  void hop(const std::string& url) {
    ++generation_;
    close_transport();
    auto parsed = tracker::parse_url(url);
    if (!parsed) return fail(parsed.error().message);
    if (parsed->scheme != "http" && parsed->scheme != "https") return fail("cannot fetch a " + parsed->scheme + " url");
    url_ = std::move(parsed.value());
    resp_ = HttpResponse{};
    resp_.url = url;
    resp_.redirects = redirects_;
    cur_field_.clear();
    cur_value_.clear();
    in_value_ = false;
    header_bytes_ = 0;
    complete_ = false;
    error_reason_.clear();
    llhttp_init(&parser_, HTTP_RESPONSE, &settings_);
    parser_.data = this;

    if (url_.scheme == "https") {
      tls_ = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket>>(io_, *tls_ctx_);
      // SNI: virtual-hosted trackers need the name to pick their certificate.
      if (!url_.host_is_v6_literal) SSL_set_tlsext_host_name(tls_->native_handle(), url_.host.c_str());
      if (opt_.verify_tls) tls_->set_verify_callback(asio::ssl::host_name_verification(url_.host));
    } else {
      socket_ = std::make_unique<asio::ip::tcp::socket>(io_);
    }
    resolver_.async_resolve(url_.host, std::to_string(url_.port),
                            [self = shared_from_this(), gen = generation_](
                                const asio::error_code& ec, const asio::ip::tcp::resolver::results_type& results) {
                              if (self->stale(gen)) return;
                              if (ec) return self->fail("cannot resolve " + self->url_.host + ": " + ec.message());
                              self->connect(results);
                            });
  }

  void connect(const asio::ip::tcp::resolver::results_type& results) {
    asio::async_connect(raw_socket(), results,
                        [self = shared_from_this(), gen = generation_](const asio::error_code& ec,
                                                                       const asio::ip::tcp::endpoint&) {
                          if (self->stale(gen)) return;
                          if (ec) return self->fail("cannot connect to " + self->url_.host_port() + ": " + ec.message());
                          if (self->tls_) {
                            self->tls_->async_handshake(asio::ssl::stream_base::client,
                                                        [self, gen](const asio::error_code& hec) {
                                                          if (self->stale(gen)) return;
                                                          if (hec) return self->fail("TLS handshake: " + hec.message());
                                                          self->send();
                                                        });
                          } else {
                            self->send();
                          }
                        });
  }

  void send() {
    const bool default_port = (url_.scheme == "http" && url_.port == 80) || (url_.scheme == "https" && url_.port == 443);
    std::string host = url_.host_is_v6_literal ? "[" + url_.host + "]" : url_.host;
    if (!default_port) host += ":" + std::to_string(url_.port);
    request_text_ = "GET " + url_.target + " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: " + opt_.user_agent +
                    "\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n";
    auto on_written = [self = shared_from_this(), gen = generation_](const asio::error_code& ec, std::size_t) {
      if (self->stale(gen)) return;
      if (ec) return self->fail("sending the request: " + ec.message());
      self->read();
    };
    if (tls_) {
      asio::async_write(*tls_, asio::buffer(request_text_), on_written);
    } else {
      asio::async_write(*socket_, asio::buffer(request_text_), on_written);
    }
  }

  void read() {
    auto on_read = [self = shared_from_this(), gen = generation_](const asio::error_code& ec, std::size_t n) {
      if (self->stale(gen)) return;
      self->on_read(ec, n);
    };
    if (tls_) {
      tls_->async_read_some(asio::buffer(buf_), on_read);
    } else {
      socket_->async_read_some(asio::buffer(buf_), on_read);
    }
  }

  void on_read(const asio::error_code& ec, std::size_t n) {
    if (n > 0) {
      auto err = llhttp_execute(&parser_, buf_.data(), n);
      if (err == HPE_PAUSED && complete_) return on_complete();
      if (err != HPE_OK) {
        if (!error_reason_.empty()) return fail(error_reason_);
        return fail(std::string("bad HTTP response: ") + llhttp_errno_name(err) + " (" +
                    llhttp_get_error_reason(&parser_) + ")");
      }
    }
    if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
      llhttp_finish(&parser_);
      if (complete_) return on_complete();
      return fail("connection closed before the response was complete");
    }
    if (ec) return fail("reading the response: " + ec.message());
    read();
  }

  void on_complete() {
    const int s = resp_.status;
    const auto* location = resp_.header("location");
    if ((s == 301 || s == 302 || s == 303 || s == 307 || s == 308) && location != nullptr) {
      if (redirects_ >= opt_.max_redirects) {
        return fail("too many redirects (more than " + std::to_string(opt_.max_redirects) + ")");
      }
      ++redirects_;
      return hop(resolve_location(url_, *location));
    }
    Result<HttpResponse> r(std::move(resp_));
    finish(std::move(r));
  }

  // ---- llhttp callbacks ----
  static Request& of(llhttp_t* p) { return *static_cast<Request*>(p->data); }

  bool charge_header(std::size_t len) {
    header_bytes_ += len;
    if (header_bytes_ <= opt_.max_header_bytes) return true;
    error_reason_ = "response headers larger than " + std::to_string(opt_.max_header_bytes) + " bytes";
    return false;
  }

  void commit_header() {
    if (!cur_field_.empty()) resp_.headers.emplace_back(text::ascii_lower(cur_field_), cur_value_);
    cur_field_.clear();
    cur_value_.clear();
  }

  static int on_header_field(llhttp_t* p, const char* at, std::size_t len) {
    auto& r = of(p);
    if (!r.charge_header(len)) return -1;
    if (r.in_value_) r.commit_header();
    r.in_value_ = false;
    r.cur_field_.append(at, len);
    return 0;
  }
  static int on_header_value(llhttp_t* p, const char* at, std::size_t len) {
    auto& r = of(p);
    if (!r.charge_header(len)) return -1;
    r.in_value_ = true;
    r.cur_value_.append(at, len);
    return 0;
  }
  static int on_headers_complete(llhttp_t* p) {
    auto& r = of(p);
    r.commit_header();
    r.resp_.status = llhttp_get_status_code(p);
    if ((p->flags & F_CONTENT_LENGTH) != 0 && p->content_length > r.opt_.max_body_bytes) {
      r.error_reason_ = "response body of " + std::to_string(p->content_length) + " bytes exceeds the cap of " +
                        std::to_string(r.opt_.max_body_bytes);
      return -1;
    }
    return 0;
  }
  static int on_body(llhttp_t* p, const char* at, std::size_t len) {
    auto& r = of(p);
    if (r.resp_.body.size() + len > r.opt_.max_body_bytes) {
      r.error_reason_ = "response body exceeds the cap of " + std::to_string(r.opt_.max_body_bytes) + " bytes";
      return -1;
    }
    r.resp_.body.append(at, len);
    return 0;
  }
  static int on_message_complete(llhttp_t* p) {
    of(p).complete_ = true;
    return HPE_PAUSED;  // one response is all we want; ignore whatever follows
  }

  // ---- plumbing ----
  bool stale(unsigned gen) const { return done_ || gen != generation_; }

  asio::ip::tcp::socket& raw_socket() { return tls_ ? tls_->next_layer() : *socket_; }

  void close_transport() {
    resolver_.cancel();
    asio::error_code ignored;
    if (tls_) tls_->next_layer().close(ignored);
    if (socket_) socket_->close(ignored);
  }

  void fail(std::string message) { finish(make_error(std::move(message))); }

  void finish(Result<HttpResponse> result) {
    if (done_) return;
    done_ = true;
    close_transport();
    deadline_.cancel();
    auto handler = std::move(handler_);
    handler_ = nullptr;
    if (handler) handler(std::move(result));
  }

  asio::io_context& io_;
  HttpClientOptions opt_;
  std::shared_ptr<asio::ssl::context> tls_ctx_;
  Handler handler_;
  asio::ip::tcp::resolver resolver_;
  asio::steady_timer deadline_;
  std::unique_ptr<asio::ip::tcp::socket> socket_;
  std::unique_ptr<asio::ssl::stream<asio::ip::tcp::socket>> tls_;
  unsigned generation_ = 0;  // bumped per hop: completions from an abandoned connection are ignored
  bool done_ = false;
  int redirects_ = 0;
  tracker::Url url_;
  llhttp_t parser_{};
  llhttp_settings_t settings_{};
  HttpResponse resp_;
  std::string cur_field_;
  std::string cur_value_;
  bool in_value_ = false;
  std::size_t header_bytes_ = 0;
  bool complete_ = false;
  std::string error_reason_;
  std::array<char, 4096> buf_{};
  std::string request_text_;
};

HttpClient::HttpClient(asio::io_context& io, HttpClientOptions options) : io_(io), options_(std::move(options)) {
  // Made up front because any http tracker may redirect to an https one.
  tls_ = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  asio::error_code ignored;
  tls_->set_default_verify_paths(ignored);
  // A CA file that cannot be loaded makes every https request fail verification, which is the safe outcome.
  if (!options_.ca_file.empty()) tls_->load_verify_file(options_.ca_file, ignored);
  tls_->set_verify_mode(options_.verify_tls ? asio::ssl::verify_peer : asio::ssl::verify_none);
}

HttpClient::~HttpClient() {
  for (auto& [id, weak] : requests_) {
    if (auto r = weak.lock()) r->cancel();
  }
}

HttpClient::RequestId HttpClient::get(std::string url, Handler handler) {
  std::erase_if(requests_, [](const auto& kv) { return kv.second.expired(); });
  auto req = std::make_shared<Request>(io_, options_, tls_, std::move(handler));
  const RequestId id = next_id_++;
  requests_[id] = req;
  // Started from the io_context so that the handler never runs inside get(), even for an unparsable url.
  asio::post(io_, [req, url = std::move(url)] { req->start(url); });
  return id;
}

void HttpClient::cancel(RequestId id) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  if (auto r = it->second.lock()) r->cancel();
  requests_.erase(it);
}

}  // namespace ph::net
