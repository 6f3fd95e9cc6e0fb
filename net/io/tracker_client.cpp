#include "net/io/tracker_client.hpp"

#include <deque>
#include <optional>

namespace ph::net {

using tracker::udp::Machine;

// One UDP tracker address: a resolver, a connected socket (the kernel drops datagrams from anyone else) and the
// sans-I/O machine. Everything the machine asks for — datagrams, a timer — is done here and nothing else.
class TrackerClient::UdpTracker : public std::enable_shared_from_this<UdpTracker> {
 public:
  using Done = std::function<void(Machine::Completion&&)>;

  UdpTracker(asio::io_context& io, tracker::Url url, tracker::udp::MachineConfig config)
      : url_(std::move(url)), config_(config), resolver_(io), socket_(io), timer_(io) {}

  void start() {
    resolver_.async_resolve(url_.host, std::to_string(url_.port),
                            [self = shared_from_this()](const asio::error_code& ec,
                                                        const asio::ip::udp::resolver::results_type& results) {
                              if (self->closed_) return;
                              if (ec || results.empty()) {
                                self->failed_ = true;
                                self->fail_all("cannot resolve " + self->url_.host + ": " +
                                               (ec ? ec.message() : std::string("no address")));
                                return;
                              }
                              self->open(*results.begin());
                            });
  }

  std::uint64_t submit(bool scrape, const tracker::AnnounceRequest& req, std::vector<InfoHash> hashes, Done done) {
    const std::uint64_t id = next_id_++;
    Job job;
    job.scrape = scrape;
    job.announce = req;
    job.hashes = std::move(hashes);
    job.done = std::move(done);
    jobs_.emplace(id, std::move(job));
    if (machine_) submit_to_machine(id);
    sync();
    return id;
  }

  void cancel(std::uint64_t id) {
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return;
    if (machine_ && it->second.machine_id != 0) machine_->cancel(it->second.machine_id);
    jobs_.erase(it);
    sync();
  }

  void close() {
    closed_ = true;
    jobs_.clear();
    resolver_.cancel();
    timer_.cancel();
    asio::error_code ignored;
    socket_.close(ignored);
  }

  bool failed() const { return failed_; }
  bool idle() const { return jobs_.empty(); }

 private:
  struct Job {
    bool scrape = false;
    tracker::AnnounceRequest announce;
    std::vector<InfoHash> hashes;
    Done done;
    Machine::RequestId machine_id = 0;
  };

  void open(const asio::ip::udp::endpoint& endpoint) {
    asio::error_code ec;
    socket_.open(endpoint.protocol(), ec);
    if (!ec) socket_.connect(endpoint, ec);
    if (ec) {
      failed_ = true;
      return fail_all("cannot open a UDP socket to " + url_.host_port() + ": " + ec.message());
    }
    config_.v6 = endpoint.address().is_v6();
    machine_.emplace(config_);
    buffer_.resize(config_.max_datagram + 1);  // one spare byte tells an oversized datagram from a full one
    receive();
    for (auto& [id, job] : jobs_) {
      if (job.machine_id == 0) submit_to_machine(id);
    }
    sync();
  }

  void submit_to_machine(std::uint64_t id) {
    auto& job = jobs_.at(id);
    auto now = tracker::udp::Clock::now();
    job.machine_id = job.scrape ? machine_->scrape(job.hashes, now) : machine_->announce(job.announce, now);
  }

  void receive() {
    socket_.async_receive(asio::buffer(buffer_), [self = shared_from_this()](const asio::error_code& ec,
                                                                              std::size_t n) {
      if (self->closed_ || ec == asio::error::operation_aborted) return;
      // Errors such as ICMP port-unreachable (connection_refused) are not fatal: the retransmission schedule decides.
      if (!ec) self->machine_->on_datagram(std::string_view(self->buffer_.data(), n), tracker::udp::Clock::now());
      self->receive();
      self->sync();
    });
  }

  // Sends what the machine wants sent, re-arms its timer and delivers its completions (last: a handler may
  // close this tracker or destroy the client).
  void sync() {
    if (!machine_ || closed_) return;
    for (auto& d : machine_->take_datagrams()) {
      auto data = std::make_shared<std::string>(std::move(d));
      socket_.async_send(asio::buffer(*data), [data](const asio::error_code&, std::size_t) {});
    }
    if (auto when = machine_->next_timer()) {
      if (!armed_ || *when != armed_at_) {
        armed_ = true;
        armed_at_ = *when;
        timer_.expires_at(*when);
        timer_.async_wait([self = shared_from_this(), when = *when](const asio::error_code& ec) {
          if (ec || self->closed_ || !self->armed_ || self->armed_at_ != when) return;
          self->armed_ = false;
          self->machine_->on_timer(tracker::udp::Clock::now());
          self->sync();
        });
      }
    } else if (armed_) {
      armed_ = false;
      timer_.cancel();
    }
    auto completions = machine_->take_completions();
    auto keep_alive = shared_from_this();
    for (auto& c : completions) {
      if (closed_) return;
      for (auto it = jobs_.begin(); it != jobs_.end(); ++it) {
        if (it->second.machine_id != c.id) continue;
        Done done = std::move(it->second.done);
        jobs_.erase(it);
        done(std::move(c));
        break;
      }
    }
  }

  void fail_all(const std::string& message) {
    auto jobs = std::move(jobs_);
    jobs_.clear();
    for (auto& [id, job] : jobs) {
      if (closed_) return;
      Machine::Completion c;
      c.is_scrape = job.scrape;
      if (job.scrape) {
        c.scrape = make_error(message);
      } else {
        c.announce = make_error(message);
      }
      job.done(std::move(c));
    }
  }

  tracker::Url url_;
  tracker::udp::MachineConfig config_;
  asio::ip::udp::resolver resolver_;
  asio::ip::udp::socket socket_;
  asio::steady_timer timer_;
  std::optional<Machine> machine_;
  std::map<std::uint64_t, Job> jobs_;
  std::uint64_t next_id_ = 1;
  std::vector<char> buffer_;
  bool closed_ = false;
  bool failed_ = false;
  bool armed_ = false;
  tracker::udp::TimePoint armed_at_{};
};

TrackerClient::TrackerClient(asio::io_context& io, TrackerClientOptions options)
    : io_(io), options_(std::move(options)), http_(io, options_.http) {
  options_.udp.limits = options_.limits;
}

TrackerClient::~TrackerClient() {
  *alive_ = false;
  for (auto& [key, t] : udp_) t->close();
}

void TrackerClient::fail_soon(std::function<void()> call) {
  asio::post(io_, [alive = std::weak_ptr<bool>(alive_), call = std::move(call)] {
    if (auto a = alive.lock(); a && *a) call();
  });
}

std::shared_ptr<TrackerClient::UdpTracker> TrackerClient::udp_tracker_for(const tracker::Url& url) {
  const std::string key = url.host_port();
  auto it = udp_.find(key);
  if (it != udp_.end() && !it->second->failed()) return it->second;
  if (it != udp_.end()) {
    it->second->close();
    udp_.erase(it);
  }
  auto t = std::make_shared<UdpTracker>(io_, url, options_.udp);
  udp_.emplace(key, t);
  t->start();
  return t;
}

TrackerClient::RequestId TrackerClient::announce(const std::string& url, const tracker::AnnounceRequest& req,
                                                 AnnounceHandler handler) {
  const RequestId id = next_id_++;
  auto parsed = tracker::parse_url(url);
  if (!parsed) {
    pending_[id] = Pending{};
    fail_soon([this, id, handler, err = parsed.error()] {
      if (pending_.erase(id) != 0) handler(err);
    });
    return id;
  }
  Pending p;
  if (parsed->scheme == "udp") {
    p.udp = true;
    p.udp_key = parsed->host_port();
    auto t = udp_tracker_for(*parsed);
    pending_[id] = p;
    pending_[id].udp_id = t->submit(false, req, {}, [this, id, handler](Machine::Completion&& c) {
      if (pending_.erase(id) == 0) return;
      handler(std::move(c.announce));
    });
    return id;
  }
  pending_[id] = p;
  pending_[id].http_id = http_.get(tracker::build_announce_url(url, req), [this, id, handler](Result<HttpResponse> r) {
    if (pending_.erase(id) == 0) return;
    if (!r) return handler(r.error());
    if (r->status != 200) {
      // opentracker answers some refusals (e.g. compact=0) with a 400 and a bencoded or plain-text body.
      auto body = r->body.substr(0, 200);
      return handler(make_error("HTTP status " + std::to_string(r->status) + (body.empty() ? "" : ": " + body)));
    }
    auto parsed_body = tracker::parse_announce_response(r->body, options_.limits);
    if (!parsed_body) return handler(parsed_body.error());
    if (parsed_body->failure_reason) return handler(make_error("tracker failure: " + *parsed_body->failure_reason));
    handler(std::move(parsed_body));
  });
  return id;
}

TrackerClient::RequestId TrackerClient::scrape(const std::string& url, std::vector<InfoHash> hashes,
                                               ScrapeHandler handler) {
  const RequestId id = next_id_++;
  auto parsed = tracker::parse_url(url);
  Result<std::string> scrape_url = parsed ? (parsed->scheme == "udp" ? Result<std::string>(url)
                                                                     : tracker::build_scrape_url(url, hashes))
                                          : Result<std::string>(parsed.error());
  if (!scrape_url) {
    pending_[id] = Pending{};
    fail_soon([this, id, handler, err = scrape_url.error()] {
      if (pending_.erase(id) != 0) handler(err);
    });
    return id;
  }
  Pending p;
  if (parsed->scheme == "udp") {
    p.udp = true;
    p.udp_key = parsed->host_port();
    auto t = udp_tracker_for(*parsed);
    pending_[id] = p;
    pending_[id].udp_id = t->submit(true, {}, std::move(hashes), [this, id, handler](Machine::Completion&& c) {
      if (pending_.erase(id) == 0) return;
      handler(std::move(c.scrape));
    });
    return id;
  }
  pending_[id] = p;
  pending_[id].http_id = http_.get(*scrape_url, [this, id, handler](Result<HttpResponse> r) {
    if (pending_.erase(id) == 0) return;
    if (!r) return handler(r.error());
    if (r->status != 200) return handler(make_error("HTTP status " + std::to_string(r->status)));
    auto parsed_body = tracker::parse_scrape_response(r->body, options_.limits);
    if (!parsed_body) return handler(parsed_body.error());
    if (parsed_body->failure_reason) return handler(make_error("tracker failure: " + *parsed_body->failure_reason));
    handler(std::move(parsed_body));
  });
  return id;
}

void TrackerClient::cancel(RequestId id) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  Pending p = it->second;
  pending_.erase(it);
  if (!p.udp) {
    if (p.http_id != 0) http_.cancel(p.http_id);
    return;
  }
  if (auto t = udp_.find(p.udp_key); t != udp_.end()) t->second->cancel(p.udp_id);
}

}  // namespace ph::net
