#include "engine/announcer.hpp"

#include <algorithm>
#include <cstdio>

namespace ph::engine {

namespace {

std::string seconds_text(std::chrono::steady_clock::duration d) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ms) / 1000.0);
  return buf;
}

}  // namespace

Announcer::Announcer(asio::io_context& io, std::vector<std::vector<std::string>> tiers, InfoHash info_hash,
                     PeerId peer_id, std::uint16_t listen_port, StatsFn stats, PeersFn peers, AnnouncerOptions options)
    : io_(io), info_hash_(info_hash), peer_id_(peer_id), port_(listen_port), stats_(std::move(stats)),
      peers_(std::move(peers)), options_(std::move(options)),
      rng_(options_.seed != 0 ? options_.seed : std::random_device{}()), key_(static_cast<std::uint32_t>(rng_())),
      client_(io, options_.client), stop_timer_(io) {
  for (auto& urls : tiers) {
    auto tier = std::make_unique<Tier>(io);
    for (auto& url : urls) {
      bool duplicate = false;
      for (const auto& other : tiers_) {
        for (const auto& t : other->trackers) duplicate = duplicate || t.url == url;
      }
      for (const auto& t : tier->trackers) duplicate = duplicate || t.url == url;
      if (duplicate || url.empty()) continue;
      Tracker t;
      t.url = url;
      tier->trackers.push_back(std::move(t));
    }
    if (tier->trackers.empty()) continue;
    if (options_.shuffle) std::shuffle(tier->trackers.begin(), tier->trackers.end(), rng_);
    tiers_.push_back(std::move(tier));
  }
}

Announcer::~Announcer() {
  alive_.reset();
  for (auto& tier : tiers_) tier->timer.cancel();
  stop_timer_.cancel();
}

std::vector<std::vector<std::string>> Announcer::tiers_from_list(const std::vector<std::string>& urls) {
  std::vector<std::vector<std::string>> tiers;
  for (const auto& u : urls) tiers.push_back({u});
  return tiers;
}

void Announcer::log(const std::string& line) const {
  if (options_.log) {
    options_.log(line);
  } else {
    std::fprintf(stderr, "[tracker] %s\n", line.c_str());
  }
}

Announcer::Clock::duration Announcer::backoff(unsigned rounds) {
  auto d = options_.backoff_base;
  for (unsigned i = 1; i < rounds && d < options_.backoff_max; ++i) d *= 2;
  return std::min<Clock::duration>(d, options_.backoff_max);
}

void Announcer::start() {
  if (stopping_ && stop_done_) return;  // a stop is still saying goodbye
  stopping_ = false;
  running_ = true;
  for (std::size_t t = 0; t < tiers_.size(); ++t) announce_tier(t);
}

void Announcer::completed() {
  for (std::size_t t = 0; t < tiers_.size(); ++t) {
    auto& tier = *tiers_[t];
    tier.completed_pending = true;
    bool heard = std::any_of(tier.trackers.begin(), tier.trackers.end(), [](const Tracker& tr) { return tr.started_acked; });
    // Otherwise `started` has not got through yet; the completion is sent right after it does.
    if (running_ && !tier.in_flight && heard && tier.failed_rounds == 0) schedule(t, Clock::now());
  }
}

void Announcer::announce_now() {
  if (!running_) return;
  const auto now = Clock::now();
  for (std::size_t t = 0; t < tiers_.size(); ++t) {
    auto& tier = *tiers_[t];
    if (tier.in_flight || tier.failed_rounds > 0) continue;  // failing tiers keep their backoff
    const auto& tr = tier.trackers[tier.current];
    auto when = now;
    if (tr.last_success) {
      auto gap = tr.min_interval > Clock::duration::zero() ? tr.min_interval : Clock::duration(options_.interval_floor);
      when = std::max(now, *tr.last_success + gap);
    }
    if (!tier.next || when < *tier.next) schedule(t, when);
  }
}

void Announcer::schedule(std::size_t t, Clock::time_point when) {
  auto& tier = *tiers_[t];
  tier.next = when;
  tier.timer.expires_at(when);
  tier.timer.async_wait([this, t, when, alive = std::weak_ptr<char>(alive_)](const asio::error_code& ec) {
    if (ec || alive.expired()) return;
    auto& tr = *tiers_[t];
    if (!tr.next || *tr.next != when) return;  // re-scheduled after this wait was queued
    announce_tier(t);
  });
}

void Announcer::announce_tier(std::size_t t) {
  auto& tier = *tiers_[t];
  if (!running_ || stopping_ || tier.in_flight || tier.trackers.empty()) return;
  tier.next.reset();
  tier.timer.cancel();
  auto& tr = tier.trackers[tier.current];
  tracker::Event event = tracker::Event::none;
  if (!tr.started_acked) {
    event = tracker::Event::started;
  } else if (tier.completed_pending) {
    event = tracker::Event::completed;
  }
  AnnounceStats s = stats_ ? stats_() : AnnounceStats{};
  tracker::AnnounceRequest req;
  req.info_hash = info_hash_;
  req.peer_id = peer_id_;
  req.port = port_;
  req.uploaded = s.uploaded;
  req.downloaded = s.downloaded;
  req.left = s.left;
  req.event = event;
  req.numwant = options_.numwant;
  req.key = key_;
  req.tracker_id = tr.tracker_id;
  tr.last_result = "announcing";
  tier.in_flight = true;
  tier.in_flight_event = event;
  tier.request = client_.announce(tr.url, req, [this, t, event, alive = std::weak_ptr<char>(alive_)](auto r) {
    if (alive.expired()) return;
    on_reply(t, event, std::move(r));
  });
}

void Announcer::on_reply(std::size_t t, tracker::Event event, Result<tracker::AnnounceResponse> r) {
  auto& tier = *tiers_[t];
  tier.in_flight = false;
  const auto now = Clock::now();
  auto& tr = tier.trackers[tier.current];
  if (!r) {
    ++tr.failures;
    tr.last_result = "error: " + r.error().message;
    ++tier.tried;
    std::string what = "announce to " + tr.url + " failed: " + r.error().message + " (failure " +
                       std::to_string(tr.failures) + ")";
    if (tier.tried < tier.trackers.size()) {
      tier.current = (tier.current + 1) % tier.trackers.size();
      log(what + "; trying " + tier.trackers[tier.current].url + " next");
      schedule(t, now);
    } else {
      tier.tried = 0;
      tier.current = 0;
      ++tier.failed_rounds;
      auto delay = backoff(tier.failed_rounds);
      log(what + "; " + (tier.trackers.size() > 1 ? "every tracker of its tier failed; " : "") + "retrying in " +
          seconds_text(delay));
      schedule(t, now + delay);
    }
    return;
  }

  const auto& resp = *r;
  tr.failures = 0;
  tr.last_result = "ok: " + std::to_string(resp.peers.size()) + " peers";
  tr.warning = resp.warning_message;
  if (!resp.warning_message.empty()) log("tracker " + tr.url + " warns: " + resp.warning_message);
  tr.seeders = resp.complete;
  tr.leechers = resp.incomplete;
  if (!resp.tracker_id.empty()) tr.tracker_id = resp.tracker_id;
  if (event == tracker::Event::started) tr.started_acked = true;
  if (event == tracker::Event::completed) tier.completed_pending = false;
  tr.min_interval = std::chrono::seconds(resp.min_interval.value_or(0));
  tr.last_success = now;
  Clock::duration interval = std::chrono::seconds(resp.interval);
  interval = std::max({interval, tr.min_interval, Clock::duration(options_.interval_floor)});

  // BEP 12: the tracker that answered moves to the front of its tier.
  std::rotate(tier.trackers.begin(), tier.trackers.begin() + static_cast<std::ptrdiff_t>(tier.current),
              tier.trackers.begin() + static_cast<std::ptrdiff_t>(tier.current) + 1);
  tier.current = 0;
  tier.tried = 0;
  tier.failed_rounds = 0;
  schedule(t, tier.completed_pending ? now : now + interval);
  if (!resp.peers.empty() && peers_) peers_(resp.peers);  // last: the engine may call back into us
}

void Announcer::stop(std::chrono::milliseconds deadline, std::function<void()> done) {
  if (stopping_ && stop_done_) {
    // A stop is already under way: run both completions when it ends.
    stop_done_ = [first = std::move(stop_done_), second = std::move(done)] {
      first();
      if (second) second();
    };
    return;
  }
  running_ = false;
  stopping_ = true;
  stop_done_ = done ? std::move(done) : [] {};
  stop_requests_.clear();
  stops_outstanding_ = 0;
  AnnounceStats s = stats_ ? stats_() : AnnounceStats{};
  for (auto& tier : tiers_) {
    tier->next.reset();
    tier->timer.cancel();
    if (tier->in_flight) client_.cancel(tier->request);
    tier->in_flight = false;
    for (auto& tr : tier->trackers) {
      if (!tr.started_acked) continue;
      tr.started_acked = false;
      tracker::AnnounceRequest req;
      req.info_hash = info_hash_;
      req.peer_id = peer_id_;
      req.port = port_;
      req.uploaded = s.uploaded;
      req.downloaded = s.downloaded;
      req.left = s.left;
      req.event = tracker::Event::stopped;
      req.numwant = 0;
      req.key = key_;
      req.tracker_id = tr.tracker_id;
      ++stops_outstanding_;
      tr.last_result = "stopping";
      Tracker* trp = &tr;
      stop_requests_.push_back(client_.announce(
          tr.url, req, [this, trp, alive = std::weak_ptr<char>(alive_)](Result<tracker::AnnounceResponse> r) {
            if (alive.expired()) return;
            trp->last_result = r ? "stopped" : "error: " + r.error().message;
            if (!r) log("stopped announce to " + trp->url + " failed: " + r.error().message);
            if (stops_outstanding_ > 0 && --stops_outstanding_ == 0) finish_stop();
          }));
    }
  }
  if (stops_outstanding_ == 0) {
    asio::post(io_, [this, alive = std::weak_ptr<char>(alive_)] {
      if (!alive.expired()) finish_stop();
    });
    return;
  }
  stop_timer_.expires_after(deadline);
  stop_timer_.async_wait([this, deadline, alive = std::weak_ptr<char>(alive_)](const asio::error_code& ec) {
    if (ec || alive.expired() || stops_outstanding_ == 0) return;
    log(std::to_string(stops_outstanding_) + " tracker(s) did not answer `stopped` within " + seconds_text(deadline) +
        "; giving up on them");
    for (auto id : stop_requests_) client_.cancel(id);
    for (auto& tier : tiers_) {
      for (auto& tr : tier->trackers) {
        if (tr.last_result == "stopping") tr.last_result = "error: no answer to stopped";
      }
    }
    stops_outstanding_ = 0;
    finish_stop();
  });
}

void Announcer::finish_stop() {
  stop_timer_.cancel();
  stop_requests_.clear();
  if (!stop_done_) return;
  auto done = std::move(stop_done_);
  stop_done_ = nullptr;
  done();
}

std::vector<TrackerStatus> Announcer::status() const {
  std::vector<TrackerStatus> out;
  for (std::size_t t = 0; t < tiers_.size(); ++t) {
    const auto& tier = *tiers_[t];
    for (std::size_t i = 0; i < tier.trackers.size(); ++i) {
      const auto& tr = tier.trackers[i];
      TrackerStatus s;
      s.url = tr.url;
      s.tier = t;
      s.position = i;
      s.last_result = tr.last_result;
      s.failures = tr.failures;
      if (i == tier.current) s.next_announce = tier.next;
      s.seeders = tr.seeders;
      s.leechers = tr.leechers;
      s.warning = tr.warning;
      out.push_back(std::move(s));
    }
  }
  return out;
}

}  // namespace ph::engine
