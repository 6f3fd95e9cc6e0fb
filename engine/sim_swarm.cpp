// Swarm simulator: scenario parsing and the discrete-event loop (see sim_swarm.hpp). Everything random comes from
// splitmix64 streams derived from the scenario seed and the peer slot, so every policy meets the very same swarm and
// a run is reproducible bit for bit on any compiler.
#include "engine/sim_swarm.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <deque>
#include <functional>
#include <limits>
#include <queue>
#include <string>

namespace ph::sim {

using engine::BlockOutcome;
using engine::BlockRequest;
using engine::PeerSlot;
using engine::PickPolicy;

const char* policy_name(PickPolicy policy) {
  switch (policy) {
    case PickPolicy::window: return "playhead-window";
    case PickPolicy::window_no_tail: return "window-no-tail";
    case PickPolicy::sequential: return "sequential";
    case PickPolicy::rarest_first: return "rarest-first";
  }
  return "?";
}

namespace {

// --- deterministic randomness -----------------------------------------------------------------------------------

struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double exponential(double mean) { return -mean * std::log(1.0 - uniform()); }
};

Rng stream(std::uint64_t seed, std::uint64_t a, std::uint64_t b) {
  Rng r{seed ^ (a * 0x9e3779b97f4a7c15ull) ^ (b * 0xc2b2ae3d27d4eb4full)};
  r.next();
  return r;
}

// --- scenario parsing -------------------------------------------------------------------------------------------

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// A number followed by an optional unit; returns the number and leaves the unit in `unit`.
Result<double> number_with_unit(std::string_view s, std::string_view& unit) {
  s = trim(s);
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || !std::isfinite(v) || v < 0) return make_error("not a non-negative number: '" + std::string(s) + "'");
  unit = trim(std::string_view(end, static_cast<std::size_t>(s.data() + s.size() - end)));
  return v;
}

Result<double> size_factor(std::string_view unit) {
  if (unit.empty() || unit == "B") return 1.0;
  if (unit == "KiB" || unit == "K") return 1024.0;
  if (unit == "MiB" || unit == "M") return 1024.0 * 1024;
  if (unit == "GiB" || unit == "G") return 1024.0 * 1024 * 1024;
  if (unit == "KB" || unit == "kB") return 1e3;
  if (unit == "MB") return 1e6;
  if (unit == "GB") return 1e9;
  return make_error("unknown size unit '" + std::string(unit) + "'");
}

Result<std::uint64_t> parse_size(std::string_view s) {
  std::string_view unit;
  auto v = number_with_unit(s, unit);
  if (!v) return v.error();
  auto f = size_factor(unit);
  if (!f) return f.error();
  const double bytes = *v * *f;
  if (bytes > 1e15) return make_error("size too large: '" + std::string(s) + "'");
  return static_cast<std::uint64_t>(bytes);
}

Result<double> parse_rate(std::string_view s) {
  std::string_view unit;
  auto v = number_with_unit(s, unit);
  if (!v) return v.error();
  if (unit.size() >= 2 && unit.substr(unit.size() - 2) == "/s") unit = trim(unit.substr(0, unit.size() - 2));
  double bytes = 0;
  if (unit == "bit") bytes = *v / 8;
  else if (unit == "kbit") bytes = *v * 1e3 / 8;
  else if (unit == "Mbit") bytes = *v * 1e6 / 8;
  else if (unit == "Gbit") bytes = *v * 1e9 / 8;
  else {
    auto f = size_factor(unit);
    if (!f) return f.error();
    bytes = *v * *f;
  }
  if (bytes > 1e12) return make_error("rate too large: '" + std::string(s) + "'");
  return bytes;
}

Result<double> parse_time(std::string_view s) {
  std::string_view unit;
  auto v = number_with_unit(s, unit);
  if (!v) return v.error();
  if (unit.empty() || unit == "s") return *v;
  if (unit == "ms") return *v / 1000;
  if (unit == "m" || unit == "min") return *v * 60;
  return make_error("unknown time unit '" + std::string(unit) + "'");
}

Result<double> parse_plain(std::string_view s) {
  std::string_view unit;
  auto v = number_with_unit(s, unit);
  if (!v) return v.error();
  if (!unit.empty()) return make_error("unexpected unit '" + std::string(unit) + "'");
  return *v;
}

Result<bool> parse_bool(std::string_view s) {
  s = trim(s);
  if (s == "true" || s == "yes" || s == "1") return true;
  if (s == "false" || s == "no" || s == "0") return false;
  return make_error("not a boolean: '" + std::string(s) + "'");
}

std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    std::size_t j = i;
    while (j < s.size() && s[j] != ' ' && s[j] != '\t') ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

Result<PeerGroup> parse_group(std::string_view value) {
  PeerGroup g;
  auto w = words(value);
  if (w.empty()) return make_error("peers: missing count");
  auto n = parse_plain(w[0]);
  if (!n || *n < 1 || *n > 2000 || std::floor(*n) != *n) return make_error("peers: count must be 1..2000");
  g.count = static_cast<std::uint32_t>(*n);
  for (std::size_t i = 1; i < w.size(); ++i) {
    const auto eq = w[i].find('=');
    if (eq == std::string_view::npos) return make_error("peers: expected key=value, got '" + std::string(w[i]) + "'");
    const auto k = w[i].substr(0, eq);
    const auto v = w[i].substr(eq + 1);
    if (k == "rate") {
      auto r = parse_rate(v);
      if (!r || *r <= 0) return make_error("peers: bad rate '" + std::string(v) + "'");
      g.rate = *r;
    } else if (k == "latency") {
      auto r = parse_time(v);
      if (!r || *r > 10) return make_error("peers: bad latency '" + std::string(v) + "'");
      g.latency = *r;
    } else if (k == "have") {
      auto r = parse_plain(v);
      if (!r || *r > 1) return make_error("peers: have must be 0..1");
      g.have = *r;
    } else if (k == "unchoke") {
      auto r = parse_time(v);
      if (!r || *r > 3600) return make_error("peers: bad unchoke delay '" + std::string(v) + "'");
      g.unchoke_delay = *r;
    } else {
      return make_error("peers: unknown key '" + std::string(k) + "'");
    }
  }
  return g;
}

}  // namespace

Result<Scenario> parse_scenario(std::string_view text) {
  Scenario sc;
  std::size_t line_no = 0;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++line_no;
    if (const auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    line = trim(line);
    if (line.empty()) continue;
    const auto eq = line.find('=');
    auto fail = [&](const std::string& why) { return make_error("line " + std::to_string(line_no) + ": " + why); };
    if (eq == std::string_view::npos) return fail("expected key = value");
    const auto key = trim(line.substr(0, eq));
    const auto value = trim(line.substr(eq + 1));
    auto set_size = [&](std::uint64_t& out) -> Result<void> {
      auto r = parse_size(value);
      if (!r) return r.error();
      out = *r;
      return {};
    };
    auto set_time = [&](double& out) -> Result<void> {
      auto r = parse_time(value);
      if (!r) return r.error();
      out = *r;
      return {};
    };
    Result<void> ok;
    if (key == "name") sc.name = std::string(value);
    else if (key == "description") sc.description = std::string(value);
    else if (key == "seed") {
      std::uint64_t v = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
      if (ec != std::errc() || p != value.data() + value.size()) return fail("bad seed");
      sc.seed = v;
    } else if (key == "file_size") ok = set_size(sc.file_size);
    else if (key == "piece_length") {
      std::uint64_t v = 0;
      ok = set_size(v);
      if (ok && (v == 0 || v % kBlockSize != 0 || v > (64u << 20))) return fail("piece_length: a multiple of 16 KiB up to 64 MiB");
      sc.piece_length = static_cast<std::uint32_t>(v);
    } else if (key == "bitrate") {
      auto r = parse_rate(value);
      if (!r || *r <= 0) return fail("bad bitrate");
      sc.bitrate = *r;
    } else if (key == "duration") ok = set_time(sc.duration);
    else if (key == "memory_limit") ok = set_size(sc.memory_limit);
    else if (key == "mode") {
      if (value == "memory") sc.disk_mode = false;
      else if (value == "disk") sc.disk_mode = true;
      else return fail("mode: memory or disk");
    } else if (key == "readahead") ok = set_size(sc.readahead);
    else if (key == "index_at_end") {
      auto r = parse_bool(value);
      if (!r) return fail(r.error().message);
      sc.index_at_end = *r;
    } else if (key == "index_bytes") ok = set_size(sc.index_bytes);
    else if (key == "startup_buffer") ok = set_time(sc.startup_buffer);
    else if (key == "request_queue") {
      auto r = parse_plain(value);
      if (!r || *r < 1 || *r > 1024) return fail("request_queue: 1..1024");
      sc.request_queue = static_cast<std::uint32_t>(*r);
    } else if (key == "churn") ok = set_time(sc.churn_mean);
    else if (key == "rejoin_delay") ok = set_time(sc.rejoin_delay);
    else if (key == "peers") {
      auto g = parse_group(value);
      if (!g) return fail(g.error().message);
      sc.groups.push_back(*g);
    } else if (key == "seek" || key == "pause") {
      auto w = words(value);
      if (w.size() != 2) return fail(std::string(key) + " = AT VALUE");
      auto at = parse_time(w[0]);
      if (!at) return fail(at.error().message);
      ScriptEvent ev;
      ev.at = *at;
      if (key == "seek") {
        auto f = parse_plain(w[1]);
        if (!f || *f >= 1) return fail("seek: the target is a fraction of the file, 0 <= f < 1");
        ev.kind = ScriptEvent::Kind::seek;
        ev.value = *f;
      } else {
        auto d = parse_time(w[1]);
        if (!d) return fail(d.error().message);
        ev.kind = ScriptEvent::Kind::pause;
        ev.value = *d;
      }
      sc.script.push_back(ev);
    } else {
      return fail("unknown key '" + std::string(key) + "'");
    }
    if (!ok) return fail(ok.error().message);
  }
  // Whole-scenario checks: bounded work and memory whatever the file says.
  if (sc.file_size == 0) return make_error("file_size must be positive");
  if (sc.file_size / sc.piece_length > 1'000'000) return make_error("more than a million pieces");
  if (sc.duration <= 0 || sc.duration > 100'000) return make_error("duration: 0 < d <= 100000 s");
  if (sc.groups.empty()) return make_error("no peers: add a `peers = N rate=...` line");
  std::uint32_t total = 0;
  for (const auto& g : sc.groups) total += g.count;
  if (total > 2000) return make_error("at most 2000 peers");
  if (!sc.disk_mode && sc.memory_limit < 4ull * sc.piece_length) return make_error("memory_limit below four pieces");
  if (sc.index_bytes > sc.file_size) sc.index_bytes = sc.file_size;
  std::stable_sort(sc.script.begin(), sc.script.end(), [](const auto& a, const auto& b) { return a.at < b.at; });
  return sc;
}

// --- the simulation ---------------------------------------------------------------------------------------------

namespace {

constexpr double kTick = 0.25;            // seconds between rate updates and picker refreshes
constexpr engine::ReaderId kReader = 0;   // the one viewer

// One life of a peer in a slot: churn replaces it by a fresh peer (new pieces) after rejoin_delay.
struct Incarnation {
  double join = 0;
  double leave = 0;  // infinity without churn
  std::uint32_t index = 0;
};

struct PeerSim {
  const PeerGroup* group = nullptr;
  std::vector<Incarnation> lives;
  std::uint32_t life = 0;  // index into lives
  std::uint32_t gen = 0;   // bumps on every join/leave: stale events are ignored
  bool online = false;
  bool unchoked = false;
  std::deque<BlockRequest> queue;  // requests that reached the peer, not yet served
  bool busy = false;
  // measurement (what an engine sees): bytes received per tick while requests were outstanding
  std::uint64_t bytes_since_tick = 0;
  bool was_loaded = false;
  double est_rate = 0;
};

enum class Ev : std::uint8_t { join, leave, unchoke, request_at_peer, cancel_at_peer, served, arrive, tick, script,
                               pause_end };

struct Event {
  double t = 0;
  std::uint64_t seq = 0;
  Ev type = Ev::tick;
  std::uint32_t slot = 0;
  std::uint32_t gen = 0;
  BlockRequest block;
  std::uint32_t index = 0;
  bool operator>(const Event& o) const { return t != o.t ? t > o.t : seq > o.seq; }
};

enum class Phase : std::uint8_t { probe, index, buffering, playing, stalled, paused, done };

class Simulation {
 public:
  Simulation(const Scenario& sc, PickPolicy policy, bool trace, engine::Picker picker)
      : sc_(sc), trace_(trace), picker_(std::move(picker)) {
    pieces_ = picker_.piece_count();
    had_.assign(pieces_, 0);
    inprog_.assign(pieces_, 0);
    played_.assign(pieces_, 0);
    last_use_.assign(pieces_, 0);
    result_.policy = policy;
  }

  SimResult run();

 private:
  std::uint32_t size_of(std::uint32_t p) const { return picker_.piece_size(p); }
  std::uint32_t piece_at(std::uint64_t byte) const { return static_cast<std::uint32_t>(byte / sc_.piece_length); }
  void push(Event e) {
    e.seq = seq_++;
    events_.push(e);
  }
  void schedule_peers();
  void join(std::uint32_t slot, double t);
  void leave(std::uint32_t slot, double t);
  void pick_for(std::uint32_t slot, double t);
  void pick_all(double t);
  void drain_cancels(double t);
  void start_service(std::uint32_t slot, double t);
  void on_arrive(const Event& e);
  void allocate(std::uint32_t p);
  void free_inprog(std::uint32_t p);
  bool evict_one();
  void update_budget();
  void reconcile_inprog();
  void push_playhead(double t);
  bool have_range(std::uint64_t from, std::uint64_t to) const;
  std::uint64_t contiguous_end(std::uint64_t from) const;
  void mark_played(std::uint64_t from, std::uint64_t to);
  void advance(double t);
  void check_player(double t);
  void on_tick(double t);
  void on_script(const ScriptEvent& ev, double t);
  engine::PickerTime when(double t) const {
    return engine::PickerTime{} + std::chrono::duration_cast<engine::PickerClock::duration>(
                                      std::chrono::duration<double>(t + 1.0));
  }

  const Scenario& sc_;
  bool trace_;
  engine::Picker picker_;
  std::uint32_t pieces_ = 0;
  std::vector<PeerSim> peers_;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> events_;
  std::uint64_t seq_ = 0;

  // pieces and memory
  std::vector<std::uint8_t> had_, inprog_, played_;
  std::vector<double> last_use_;
  std::vector<std::uint32_t> inprog_list_;
  std::uint64_t held_bytes_ = 0;    // verified pieces kept in memory (memory mode)
  std::uint64_t inprog_bytes_ = 0;  // pieces being assembled

  // the viewer
  Phase phase_ = Phase::probe;
  Phase before_pause_ = Phase::probe;
  std::uint64_t pos_ = 0;
  double last_t_ = 0;
  double stall_start_ = 0;
  bool seeking_ = false;
  double seek_t_ = 0;
  double seek_wait_total_ = 0;
  std::uint32_t seeks_done_ = 0;
  bool stream_start_ = true;
  double now_ = 0;

  SimResult result_;
};

void Simulation::schedule_peers() {
  std::uint32_t slot = 0;
  for (const auto& g : sc_.groups) {
    for (std::uint32_t i = 0; i < g.count; ++i, ++slot) {
      PeerSim ps;
      ps.group = &g;
      Rng r = stream(sc_.seed, slot, 0xc4);
      double t = r.uniform() * 0.5;  // peers connect over the first half second
      for (std::uint32_t life = 0; t < sc_.duration && life < 100'000; ++life) {
        Incarnation inc;
        inc.index = life;
        inc.join = t;
        inc.leave = sc_.churn_mean > 0 ? t + r.exponential(sc_.churn_mean) : std::numeric_limits<double>::infinity();
        ps.lives.push_back(inc);
        t = inc.leave + sc_.rejoin_delay;
      }
      peers_.push_back(std::move(ps));
      if (!peers_.back().lives.empty()) {
        Event e;
        e.type = Ev::join;
        e.t = peers_.back().lives[0].join;
        e.slot = slot;
        push(e);
      }
    }
  }
}

void Simulation::join(std::uint32_t slot, double t) {
  PeerSim& ps = peers_[slot];
  const Incarnation& inc = ps.lives[ps.life];
  ps.online = true;
  ps.unchoked = false;
  ps.busy = false;
  ps.queue.clear();
  ps.est_rate = 0;
  ps.bytes_since_tick = 0;
  ps.was_loaded = false;
  ++ps.gen;
  (void)picker_.add_peer(slot);
  if (ps.group->have >= 1.0) {
    picker_.peer_have_all(slot);
  } else {
    Rng r = stream(sc_.seed, slot, 0x1000 + inc.index);
    std::vector<std::uint8_t> bits((pieces_ + 7) / 8, 0);
    for (std::uint32_t p = 0; p < pieces_; ++p)
      if (r.uniform() < ps.group->have) bits[p / 8] |= static_cast<std::uint8_t>(0x80 >> (p % 8));
    picker_.peer_bitfield(slot, bits);
  }
  Event u;
  u.type = Ev::unchoke;
  u.t = t + ps.group->latency * 2 + ps.group->unchoke_delay;
  u.slot = slot;
  u.gen = ps.gen;
  push(u);
  if (std::isfinite(inc.leave)) {
    Event l;
    l.type = Ev::leave;
    l.t = inc.leave;
    l.slot = slot;
    l.gen = ps.gen;
    push(l);
  }
}

void Simulation::leave(std::uint32_t slot, double t) {
  PeerSim& ps = peers_[slot];
  ps.online = false;
  ps.unchoked = false;
  ps.queue.clear();
  ++ps.gen;
  picker_.remove_peer(slot);
  if (++ps.life < ps.lives.size()) {
    Event e;
    e.type = Ev::join;
    e.t = std::max(t, ps.lives[ps.life].join);
    e.slot = slot;
    push(e);
  }
}

void Simulation::pick_for(std::uint32_t slot, double t) {
  PeerSim& ps = peers_[slot];
  if (!ps.online || !ps.unchoked) return;
  const std::uint32_t outstanding = picker_.outstanding_requests(slot);
  if (outstanding >= sc_.request_queue) return;
  std::vector<BlockRequest> out;
  picker_.pick(slot, sc_.request_queue - outstanding, when(t), out);
  for (const auto& b : out) {
    if (!inprog_[b.piece] && !had_[b.piece]) allocate(b.piece);
    Event e;
    e.type = Ev::request_at_peer;
    e.t = t + ps.group->latency;
    e.slot = slot;
    e.gen = ps.gen;
    e.block = b;
    push(e);
  }
}

void Simulation::pick_all(double t) {
  for (std::uint32_t s = 0; s < peers_.size(); ++s) pick_for(s, t);
}

void Simulation::drain_cancels(double t) {
  for (const auto& c : picker_.take_cancellations()) {
    if (c.peer >= peers_.size() || !peers_[c.peer].online) continue;
    Event e;
    e.type = Ev::cancel_at_peer;
    e.t = t + peers_[c.peer].group->latency;
    e.slot = c.peer;
    e.gen = peers_[c.peer].gen;
    e.block = c.block;
    push(e);
  }
}

void Simulation::start_service(std::uint32_t slot, double t) {
  PeerSim& ps = peers_[slot];
  if (ps.busy || ps.queue.empty()) return;
  ps.busy = true;
  Event e;
  e.type = Ev::served;
  e.block = ps.queue.front();
  ps.queue.pop_front();
  e.t = t + e.block.length / ps.group->rate;
  e.slot = slot;
  e.gen = ps.gen;
  push(e);
}

// Memory: a started piece takes its full size at once (the arena allocates whole pieces).
void Simulation::allocate(std::uint32_t p) {
  inprog_[p] = 1;
  inprog_list_.push_back(p);
  inprog_bytes_ += size_of(p);
  if (!sc_.disk_mode) {
    while (held_bytes_ + inprog_bytes_ > sc_.memory_limit) {
      if (!evict_one()) {
        ++result_.budget_violations;
        break;
      }
    }
  }
  result_.peak_memory = std::max(result_.peak_memory, held_bytes_ + inprog_bytes_);
}

void Simulation::free_inprog(std::uint32_t p) {
  if (!inprog_[p]) return;
  inprog_[p] = 0;
  inprog_bytes_ -= size_of(p);
}

// Least recently used unpinned piece, those behind the playhead before those ahead (DESIGN.md "Memory budget").
bool Simulation::evict_one() {
  const std::uint32_t here = piece_at(pos_);
  std::int64_t best = -1;
  bool best_behind = false;
  for (std::uint32_t p = 0; p < pieces_; ++p) {
    if (!had_[p] || picker_.in_any_window(p)) continue;
    const bool behind = p < here;
    if (best < 0 || (behind && !best_behind) ||
        (behind == best_behind && last_use_[p] < last_use_[static_cast<std::uint32_t>(best)])) {
      best = p;
      best_behind = behind;
    }
  }
  if (best < 0) return false;
  const auto v = static_cast<std::uint32_t>(best);
  had_[v] = 0;
  held_bytes_ -= size_of(v);
  picker_.piece_evicted(v);
  return true;
}

void Simulation::update_budget() {
  if (sc_.disk_mode) {
    picker_.set_budget(sc_.memory_limit > inprog_bytes_ ? sc_.memory_limit - inprog_bytes_ : 0);
    return;
  }
  std::uint64_t pinned = 0;
  for (std::uint32_t p = 0; p < pieces_; ++p)
    if (had_[p] && picker_.in_any_window(p)) pinned += size_of(p);
  const std::uint64_t used = pinned + inprog_bytes_;
  picker_.set_budget(sc_.memory_limit > used ? sc_.memory_limit - used : 0);
}

void Simulation::reconcile_inprog() {
  // Pieces the picker abandoned (seek, pause) with nothing received give their memory back.
  std::size_t w = 0;
  for (std::uint32_t p : inprog_list_) {
    if (!inprog_[p]) continue;
    if (!picker_.in_progress(p) && !had_[p]) {
      free_inprog(p);
      continue;
    }
    inprog_list_[w++] = p;
  }
  inprog_list_.resize(w);
}

void Simulation::push_playhead(double t) {
  std::uint64_t at = pos_;
  if (phase_ == Phase::probe) at = 0;
  if (phase_ == Phase::index) at = sc_.file_size - sc_.index_bytes;
  (void)picker_.set_playhead(kReader, {std::min<std::uint64_t>(at, sc_.file_size - 1), sc_.bitrate, stream_start_});
  drain_cancels(t);
  reconcile_inprog();
  update_budget();
}

bool Simulation::have_range(std::uint64_t from, std::uint64_t to) const {
  to = std::min(to, sc_.file_size);
  if (from >= to) return true;
  for (std::uint32_t p = piece_at(from); p <= piece_at(to - 1); ++p)
    if (!had_[p]) return false;
  return true;
}

std::uint64_t Simulation::contiguous_end(std::uint64_t from) const {
  std::uint32_t p = piece_at(from);
  while (p < pieces_ && had_[p]) ++p;
  return std::min<std::uint64_t>(static_cast<std::uint64_t>(p) * sc_.piece_length, sc_.file_size);
}

void Simulation::mark_played(std::uint64_t from, std::uint64_t to) {
  to = std::min(to, sc_.file_size);
  if (from >= to) return;
  for (std::uint32_t p = piece_at(from); p <= piece_at(to - 1); ++p) {
    played_[p] = 1;
    last_use_[p] = now_;
  }
}

void Simulation::advance(double t) {
  if (phase_ == Phase::playing && t > last_t_) {
    const double want = static_cast<double>(pos_) + (t - last_t_) * sc_.bitrate;
    const std::uint64_t avail = contiguous_end(pos_);
    if (static_cast<double>(avail) <= want) {
      mark_played(pos_, avail);
      result_.played_bytes += avail - pos_;
      const double reached = last_t_ + static_cast<double>(avail - pos_) / sc_.bitrate;
      pos_ = avail;
      if (pos_ >= sc_.file_size) {
        phase_ = Phase::done;
        result_.end_time = reached;
      } else {
        phase_ = Phase::stalled;  // ran dry
        seeking_ = false;
        stall_start_ = reached;
        ++result_.stalls;
      }
    } else {
      const auto np = static_cast<std::uint64_t>(want);
      mark_played(pos_, np + 1);
      result_.played_bytes += np - pos_;
      pos_ = np;
    }
  }
  last_t_ = t;
  if (trace_ && (result_.playhead.empty() || t - result_.playhead.back().t >= kTick))
    result_.playhead.push_back(Sample{t, pos_});
}

void Simulation::check_player(double t) {
  const auto buffer = static_cast<std::uint64_t>(sc_.startup_buffer * sc_.bitrate);
  for (;;) {
    switch (phase_) {
      case Phase::probe:  // the container header
        if (!have_range(0, std::min<std::uint64_t>(64 * 1024, sc_.file_size))) return;
        mark_played(0, 1);
        phase_ = sc_.index_at_end ? Phase::index : Phase::buffering;
        push_playhead(t);
        continue;
      case Phase::index:  // the index at the end (mp4 moov without faststart): the player seeks there first
        if (!have_range(sc_.file_size - sc_.index_bytes, sc_.file_size)) return;
        mark_played(sc_.file_size - sc_.index_bytes, sc_.file_size);
        phase_ = Phase::buffering;
        push_playhead(t);
        continue;
      case Phase::buffering:
        if (!have_range(pos_, pos_ + buffer)) return;
        phase_ = Phase::playing;
        last_t_ = t;
        result_.started = true;
        result_.startup_delay = t;
        stream_start_ = false;
        push_playhead(t);
        return;
      case Phase::stalled:
        if (!have_range(pos_, pos_ + buffer)) return;
        phase_ = Phase::playing;
        last_t_ = t;
        if (seeking_) {
          seek_wait_total_ += t - seek_t_;
          ++seeks_done_;
          if (trace_ && t > seek_t_) result_.stall_intervals.push_back({seek_t_, t});
          seeking_ = false;
        } else {
          result_.stall_seconds += t - stall_start_;
          if (trace_) result_.stall_intervals.push_back({stall_start_, t});
        }
        return;
      default:
        return;
    }
  }
}

void Simulation::on_arrive(const Event& e) {
  PeerSim& ps = peers_[e.slot];
  ps.bytes_since_tick += e.block.length;
  const BlockOutcome r = picker_.block_received(e.slot, e.block);
  if (r == BlockOutcome::duplicate || r == BlockOutcome::unwanted) {
    result_.duplicate_bytes += e.block.length;
  } else {
    const std::uint32_t p = e.block.piece;
    if (!inprog_[p] && !had_[p]) allocate(p);  // data for a piece the picker had dropped (a crossed cancel)
    if (r == BlockOutcome::piece_complete) {
      picker_.piece_verified(p);
      free_inprog(p);
      had_[p] = 1;
      last_use_[p] = e.t;
      if (!sc_.disk_mode) held_bytes_ += size_of(p);
      result_.downloaded_bytes += size_of(p);
      result_.peak_memory = std::max(result_.peak_memory, held_bytes_ + inprog_bytes_);
      if (trace_) result_.arrivals.push_back({e.t, p});
      check_player(e.t);
    }
  }
  drain_cancels(e.t);
  pick_for(e.slot, e.t);
}

void Simulation::on_tick(double t) {
  for (std::uint32_t s = 0; s < peers_.size(); ++s) {
    PeerSim& ps = peers_[s];
    if (!ps.online) continue;
    const bool loaded = picker_.outstanding_requests(s) > 0;
    if (ps.was_loaded && loaded) {  // busy the whole tick: bytes/tick is its rate
      const double sample = static_cast<double>(ps.bytes_since_tick) / kTick;
      ps.est_rate = ps.est_rate > 0 ? 0.6 * ps.est_rate + 0.4 * sample : sample;
      picker_.peer_rate(s, ps.est_rate);
    }
    ps.was_loaded = loaded;
    ps.bytes_since_tick = 0;
  }
  if (phase_ != Phase::paused) push_playhead(t);
  if (phase_ != Phase::paused) pick_all(t);
}

void Simulation::on_script(const ScriptEvent& ev, double t) {
  if (ev.kind == ScriptEvent::Kind::seek) {
    if (phase_ != Phase::playing && phase_ != Phase::stalled) return;  // only a started player seeks
    pos_ = std::min<std::uint64_t>(static_cast<std::uint64_t>(ev.value * static_cast<double>(sc_.file_size)),
                                   sc_.file_size - 1);
    phase_ = Phase::stalled;
    seeking_ = true;
    seek_t_ = t;
    push_playhead(t);
    pick_all(t);
    check_player(t);
  } else {
    if (phase_ == Phase::paused || phase_ == Phase::done) return;
    before_pause_ = phase_;
    phase_ = Phase::paused;
    picker_.pause();  // TORRENT_PAUSE_ON_VIDEO_PAUSE: cancel everything outstanding
    drain_cancels(t);
    reconcile_inprog();
    Event e;
    e.type = Ev::pause_end;
    e.t = t + ev.value;
    push(e);
  }
}

SimResult Simulation::run() {
  schedule_peers();
  push_playhead(0);
  {
    Event tick;
    tick.type = Ev::tick;
    tick.t = kTick;
    push(tick);
  }
  for (std::uint32_t i = 0; i < sc_.script.size(); ++i) {
    Event e;
    e.type = Ev::script;
    e.t = sc_.script[i].at;
    e.index = i;
    push(e);
  }
  while (!events_.empty()) {
    const Event e = events_.top();
    events_.pop();
    if (e.t > sc_.duration || phase_ == Phase::done) break;
    now_ = e.t;
    advance(e.t);
    if (phase_ == Phase::done) break;
    PeerSim* ps = e.slot < peers_.size() ? &peers_[e.slot] : nullptr;
    const bool live = ps && ps->online && e.gen == ps->gen;
    switch (e.type) {
      case Ev::join: join(e.slot, e.t); break;
      case Ev::leave: if (live) leave(e.slot, e.t); break;
      case Ev::unchoke:
        if (live) {
          ps->unchoked = true;
          picker_.peer_unchoked(e.slot);
          pick_for(e.slot, e.t);
        }
        break;
      case Ev::request_at_peer:
        if (live) {
          ps->queue.push_back(e.block);
          start_service(e.slot, e.t);
        }
        break;
      case Ev::cancel_at_peer:
        if (live) {
          auto it = std::find(ps->queue.begin(), ps->queue.end(), e.block);
          if (it != ps->queue.end()) ps->queue.erase(it);  // not served yet: dropped; else it is on the wire
        }
        break;
      case Ev::served:
        if (live) {
          Event a = e;
          a.type = Ev::arrive;
          a.t = e.t + ps->group->latency;
          push(a);
          ps->busy = false;
          start_service(e.slot, e.t);
        }
        break;
      case Ev::arrive: if (live) on_arrive(e); break;
      case Ev::tick: {
        on_tick(e.t);
        Event next;
        next.type = Ev::tick;
        next.t = e.t + kTick;
        push(next);
        break;
      }
      case Ev::script: on_script(sc_.script[e.index], e.t); break;
      case Ev::pause_end:
        if (phase_ == Phase::paused) {
          picker_.resume();
          phase_ = before_pause_;
          last_t_ = e.t;
          if (phase_ == Phase::stalled && !seeking_) stall_start_ = e.t;
          push_playhead(e.t);
          pick_all(e.t);
          check_player(e.t);
        }
        break;
    }
  }
  const double end = phase_ == Phase::done ? result_.end_time : sc_.duration;
  if (phase_ != Phase::done) {
    advance(std::min(end, sc_.duration));
    result_.end_time = sc_.duration;
  }
  if (!result_.started) result_.startup_delay = end;
  if (phase_ == Phase::stalled) {  // still waiting when the run ends
    const double from = seeking_ ? seek_t_ : stall_start_;
    if (seeking_) {
      seek_wait_total_ += end - from;
      ++seeks_done_;
    } else {
      result_.stall_seconds += end - from;
    }
    if (trace_) result_.stall_intervals.push_back({from, end});
  }
  std::uint64_t played_pieces = 0;
  for (std::uint32_t p = 0; p < pieces_; ++p)
    if (played_[p]) played_pieces += size_of(p);
  result_.unplayed_bytes = result_.downloaded_bytes > played_pieces ? result_.downloaded_bytes - played_pieces : 0;
  result_.seeks = seeks_done_;
  result_.seek_wait_seconds = seek_wait_total_;
  result_.mean_seek_wait = seeks_done_ ? seek_wait_total_ / seeks_done_ : 0;
  return std::move(result_);
}

}  // namespace

SimResult run_simulation(const Scenario& sc, PickPolicy policy, bool keep_trace) {
  engine::PickerConfig c;
  c.piece_length = sc.piece_length;
  c.total_length = sc.file_size;
  c.piece_count = static_cast<std::uint32_t>((sc.file_size + sc.piece_length - 1) / sc.piece_length);
  c.disk_mode = sc.disk_mode;
  c.policy = policy;
  c.readahead_bytes = sc.readahead;
  c.max_peers = 4096;
  auto picker = engine::Picker::create(c);
  if (!picker.ok()) {
    SimResult r;
    r.policy = policy;
    return r;
  }
  Simulation sim(sc, policy, keep_trace, std::move(picker).value());
  return sim.run();
}

}  // namespace ph::sim
