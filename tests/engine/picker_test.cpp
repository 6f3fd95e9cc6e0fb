// Picker invariants: never a piece we have, never outside the selection, urgent pieces in order, nothing while
// paused, seeks cancel what no window needs, the budget is honoured; plus end-game, slow peers, head/tail, disk mode,
// a randomized run checked against a model of outstanding requests; and the simulator (bt-sim) built on it.
#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "engine/picker.hpp"
#include "engine/sim_swarm.hpp"

using namespace ph::engine;
using ph::PieceIndex;

namespace {

constexpr std::uint32_t kPiece = 64 * 1024;  // four 16 KiB blocks per piece

PickerConfig geometry(std::uint32_t pieces, std::uint64_t total = 0) {
  PickerConfig c;
  c.piece_count = pieces;
  c.piece_length = kPiece;
  c.total_length = total ? total : static_cast<std::uint64_t>(pieces) * kPiece;
  return c;
}

Picker make(PickerConfig c) {
  auto r = Picker::create(std::move(c));
  REQUIRE(r.ok());
  return std::move(r).value();
}

PickerTime at(double seconds) {
  return PickerTime{} + std::chrono::duration_cast<PickerClock::duration>(std::chrono::duration<double>(seconds));
}

std::vector<BlockRequest> pick(Picker& p, PeerSlot peer, std::uint32_t slots, double now = 1.0) {
  std::vector<BlockRequest> out;
  p.pick(peer, slots, at(now), out);
  return out;
}

// A bitfield from a string of '0'/'1', one character per piece.
std::vector<std::uint8_t> bits(const std::string& s) {
  std::vector<std::uint8_t> b((s.size() + 7) / 8, 0);
  for (std::size_t i = 0; i < s.size(); ++i)
    if (s[i] == '1') b[i / 8] |= static_cast<std::uint8_t>(0x80 >> (i % 8));
  return b;
}

// A seed; fast by default, so that queue-length bounds do not limit what a test picks.
void add_seed(Picker& p, PeerSlot peer, double rate = 1e8) {
  REQUIRE(p.add_peer(peer).ok());
  p.peer_have_all(peer);
  p.peer_unchoked(peer);
  if (rate > 0) p.peer_rate(peer, rate);
}

std::set<PieceIndex> pieces_of(const std::vector<BlockRequest>& v) {
  std::set<PieceIndex> s;
  for (const auto& b : v) s.insert(b.piece);
  return s;
}

}  // namespace

TEST_CASE("picker create validates the geometry", "[picker]") {
  CHECK_FALSE(Picker::create(geometry(0, 1)).ok());
  auto c = geometry(4);
  c.total_length = 3 * kPiece;  // fits in three pieces: four is wrong
  CHECK_FALSE(Picker::create(c).ok());
  c = geometry(4);
  c.files = {{0, kPiece}, {kPiece, 4ull * kPiece}};  // second file runs past the end
  CHECK_FALSE(Picker::create(c).ok());
  c = geometry(4);
  c.max_requesters_per_block = 3;
  CHECK_FALSE(Picker::create(c).ok());
  CHECK(Picker::create(geometry(4, 3 * kPiece + 1)).ok());  // short last piece
}

TEST_CASE("picker handles a short last piece and odd block", "[picker]") {
  auto c = geometry(3, 2 * kPiece + 20000);
  c.disk_mode = true;
  Picker p = make(c);
  add_seed(p, 1);
  auto got = pick(p, 1, 100);
  std::uint64_t bytes = 0;
  for (const auto& b : got) bytes += b.length;
  CHECK(bytes == 2 * kPiece + 20000);
  CHECK(p.piece_size(2) == 20000);
  CHECK(p.block_received(1, {2, 16384, 20000 - 16384}) == BlockOutcome::accepted);
  CHECK(p.block_received(1, {2, 0, 16384}) == BlockOutcome::piece_complete);
}

TEST_CASE("urgent pieces are requested in order, then the window", "[picker]") {
  auto c = geometry(100);
  c.readahead_bytes = 16 * kPiece;
  c.urgent_seconds = 4;
  Picker p = make(c);
  add_seed(p, 1);
  REQUIRE(p.set_playhead(7, {0, kPiece, false}).ok());  // 1 piece/s: 4 urgent pieces
  auto got = pick(p, 1, 16);
  REQUIRE(got.size() == 16);
  for (std::size_t i = 0; i < got.size(); ++i) {
    CHECK(got[i].piece == i / 4);
    CHECK(got[i].offset == (i % 4) * 16384);
  }
  got = pick(p, 1, 1000);
  CHECK(got.size() == 12 * 4);  // the rest of the 16-piece window, nothing past it (memory mode)
  for (const auto& b : got) CHECK((b.piece >= 4 && b.piece < 16));
  CHECK(pick(p, 1, 10).empty());
}

TEST_CASE("urgent zone never shrinks below two pieces", "[picker]") {
  auto c = geometry(100);
  c.readahead_bytes = 16 * kPiece;
  Picker p = make(c);
  add_seed(p, 1);
  REQUIRE(p.set_playhead(1, {3 * kPiece + 5, 0, false}).ok());  // rate unknown
  auto got = pick(p, 1, 8);
  REQUIRE(got.size() == 8);
  CHECK(got.front().piece == 3);
  CHECK(got.back().piece == 4);
}

TEST_CASE("never requests a piece we have", "[picker]") {
  auto c = geometry(20);
  c.disk_mode = true;
  Picker p = make(c);
  add_seed(p, 1);
  for (PieceIndex i : {0u, 2u, 3u, 19u}) p.piece_verified(i);
  REQUIRE(p.set_playhead(1, {0, kPiece, false}).ok());
  auto got = pick(p, 1, 1000);
  CHECK(got.size() == 16 * 4);
  for (const auto& b : got) CHECK_FALSE(p.have_piece(b.piece));
  CHECK(p.block_received(1, {0, 0, 16384}) == BlockOutcome::duplicate);
}

TEST_CASE("never requests outside the selection; boundary pieces included; pad files never", "[picker]") {
  // file 0: [0, 100000), pad: [100000, 131072), file 2: [131072, 400000), file 3: [400000, 640000)
  auto c = geometry(10, 640000);
  c.disk_mode = true;
  c.files = {{0, 100000}, {100000, 31072, true}, {131072, 268928}, {400000, 240000}};
  Picker p = make(c);
  add_seed(p, 1);
  p.select_only(2);
  p.set_file_priority(1, 5);  // a pad file is never selected
  auto got = pick(p, 1, 1000);
  // file 2 covers bytes 131072..399999: pieces 2..6 (piece 6 is shared with file 3)
  CHECK(pieces_of(got) == std::set<PieceIndex>{2, 3, 4, 5, 6});
  for (PieceIndex i = 0; i < 10; ++i) CHECK(p.piece_selected(i) == (i >= 2 && i <= 6));
  // Deselecting cancels what was requested for it.
  p.set_file_priority(2, 0);
  auto cancels = p.take_cancellations();
  CHECK(cancels.size() == got.size());
  CHECK(p.outstanding_requests(1) == 0);
  CHECK(pick(p, 1, 1000).empty());
}

TEST_CASE("memory mode fetches nothing outside windows; disk mode goes on rarest first", "[picker]") {
  for (bool disk : {false, true}) {
    auto c = geometry(8);
    c.disk_mode = disk;
    Picker p = make(c);
    for (PeerSlot s = 1; s <= 3; ++s) {
      REQUIRE(p.add_peer(s).ok());
      p.peer_unchoked(s);
    }
    p.peer_bitfield(1, bits("11111111"));
    p.peer_bitfield(2, bits("11110111"));
    p.peer_bitfield(3, bits("11011110"));
    auto got = pick(p, 1, 4);
    if (!disk) {
      CHECK(got.empty());
      continue;
    }
    // availability: 3 3 2 3 1 3 3 2 -> piece 4 is the rarest
    REQUIRE(got.size() == 4);
    CHECK(pieces_of(got) == std::set<PieceIndex>{4});
    got = pick(p, 1, 8);
    CHECK(pieces_of(got) == std::set<PieceIndex>{2, 7});
  }
}

TEST_CASE("the rest of the window is rarest first, started pieces first", "[picker]") {
  auto c = geometry(40);
  c.readahead_bytes = 10 * kPiece;
  c.min_urgent_pieces = 2;
  Picker p = make(c);
  for (PeerSlot s = 1; s <= 3; ++s) {
    REQUIRE(p.add_peer(s).ok());
    p.peer_unchoked(s);
    p.peer_rate(s, 1e8);
  }
  p.peer_bitfield(1, bits("1111111111111111111111111111111111111111"));
  p.peer_bitfield(2, bits("1111111011111111111111111111111111111111"));
  p.peer_bitfield(3, bits("1111011011111111111111111111111111111111"));
  REQUIRE(p.set_playhead(1, {0, 0, false}).ok());
  auto got = pick(p, 1, 8 + 2);  // the 2 urgent pieces, then two blocks of the rarest window piece
  REQUIRE(got.size() == 10);
  CHECK(got[8].piece == 7);  // availability 1
  got = pick(p, 1, 4);
  CHECK(got[0].piece == 7);  // its last two blocks before anything new
  CHECK(got[1].piece == 7);
  CHECK(got[2].piece == 4);  // then availability 2
}

TEST_CASE("nothing is requested while paused; pause cancels everything outstanding", "[picker]") {
  Picker p = make(geometry(50));
  add_seed(p, 1);
  REQUIRE(p.set_playhead(1, {0, kPiece, false}).ok());
  auto got = pick(p, 1, 12);
  REQUIRE(got.size() == 12);
  p.pause();
  CHECK(p.paused());
  CHECK(pick(p, 1, 100).empty());
  auto cancels = p.take_cancellations();
  CHECK(cancels.size() == 12);
  CHECK(p.outstanding_requests(1) == 0);
  p.resume();
  auto again = pick(p, 1, 12);
  CHECK(again == got);  // resumes at once from the same playhead
}

TEST_CASE("a seek cancels the requests outside every window and starts the new window", "[picker]") {
  auto c = geometry(100);
  c.readahead_bytes = 8 * kPiece;
  c.max_requesters_per_block = 1;  // no end-game twins: each block has exactly one requester here
  Picker p = make(c);
  add_seed(p, 1);
  add_seed(p, 2);
  REQUIRE(p.set_playhead(1, {0, kPiece, false}).ok());
  auto got = pick(p, 1, 1000);
  CHECK(pieces_of(got).size() == 8);  // the whole 8-piece window
  REQUIRE(p.set_playhead(2, {90 * kPiece, kPiece, false}).ok());  // a second viewer
  CHECK(pieces_of(pick(p, 2, 1000)).size() == 8);
  REQUIRE(p.take_cancellations().empty());

  // A small move forward: only what the playhead passed is dropped (memory mode).
  REQUIRE(p.set_playhead(1, {2 * kPiece, kPiece, false}).ok());
  auto cancels = p.take_cancellations();
  for (const auto& x : cancels) CHECK(x.block.piece < 2);
  CHECK(cancels.size() == 8);

  // A seek: pieces 2..7 are in no window any more; the other viewer's window stays.
  REQUIRE(p.set_playhead(1, {50 * kPiece, kPiece, false}).ok());
  cancels = p.take_cancellations();
  CHECK(cancels.size() == 6 * 4);
  for (const auto& x : cancels) {
    CHECK((x.block.piece >= 2 && x.block.piece < 8));
    CHECK(x.peer == 1);
    CHECK_FALSE(p.in_any_window(x.block.piece));
  }
  for (PieceIndex i = 90; i < 98; ++i) CHECK(p.in_any_window(i));
  CHECK(p.outstanding_requests(1) == 0);
  CHECK(p.outstanding_requests(2) == 32);
  got = pick(p, 1, 4);
  REQUIRE(got.size() == 4);
  CHECK(got[0].piece == 50);
}

TEST_CASE("the budget bounds the pieces started, not the ones already started", "[picker]") {
  Picker p = make(geometry(100));
  add_seed(p, 1);
  REQUIRE(p.set_playhead(1, {0, kPiece, false}).ok());
  p.set_budget(2 * kPiece + 100);
  auto got = pick(p, 1, 100);
  CHECK(got.size() == 8);
  CHECK(pieces_of(got) == std::set<PieceIndex>{0, 1});
  CHECK(p.budget() == 100);
  CHECK(pick(p, 1, 100).empty());
  // A rejected block of a started piece can still be requested: backpressure never drops anything.
  p.block_rejected(1, got[5]);
  auto again = pick(p, 1, 100);
  REQUIRE(again.size() == 1);
  CHECK(again[0] == got[5]);
  p.set_budget(Picker::kUnlimited);
  CHECK(pick(p, 1, 4).size() == 4);
}

TEST_CASE("choked peers get nothing and a choke frees their requests", "[picker]") {
  Picker p = make(geometry(50));
  add_seed(p, 1);
  add_seed(p, 2);
  REQUIRE(p.set_playhead(1, {0, kPiece, false}).ok());
  auto a = pick(p, 1, 8);
  p.peer_choked(1);
  CHECK(pick(p, 1, 8).empty());
  CHECK(p.outstanding_requests(1) == 0);
  CHECK(p.take_cancellations().empty());  // a choke voids requests: nothing to cancel
  auto b = pick(p, 2, 8);
  CHECK(a == b);
  p.remove_peer(2);
  CHECK(p.availability(0) == 1);
  add_seed(p, 3);
  CHECK(pick(p, 3, 8) == a);
}

TEST_CASE("peer events keep availability exact", "[picker]") {
  Picker p = make(geometry(10));
  REQUIRE(p.add_peer(4).ok());
  CHECK_FALSE(p.add_peer(4).ok());
  auto c = geometry(10);
  c.max_peers = 8;
  Picker q = make(c);
  CHECK_FALSE(q.add_peer(8).ok());
  p.peer_bitfield(4, bits("1010000001"));
  CHECK(p.availability(0) == 1);
  CHECK(p.availability(1) == 0);
  p.peer_have(4, 1);
  p.peer_have(4, 1);  // twice counts once
  CHECK(p.availability(1) == 1);
  p.peer_bitfield(4, bits("0100000000"));  // a new bitfield replaces the old one
  CHECK(p.availability(0) == 0);
  CHECK(p.availability(1) == 1);
  for (PieceIndex i = 0; i < 10; ++i) p.peer_have(4, i);  // becomes a seed
  for (PieceIndex i = 0; i < 10; ++i) CHECK(p.availability(i) == 1);
  p.peer_have_none(4);
  for (PieceIndex i = 0; i < 10; ++i) CHECK(p.availability(i) == 0);
  p.peer_have_all(4);
  p.remove_peer(4);
  CHECK(p.availability(3) == 0);
  CHECK(p.availability_view().check_invariants());
}

TEST_CASE("lt_donthave: a peer that lost a piece is asked for it no more", "[picker]") {
  Picker p = make(geometry(10));
  add_seed(p, 1);
  add_seed(p, 2);
  REQUIRE(p.set_playhead(1, {0, 0, false}).ok());
  auto got = pick(p, 1, 4);
  REQUIRE(pieces_of(got) == std::set<PieceIndex>{0});
  p.peer_dont_have(1, 0);  // a seed that evicted piece 0
  CHECK(p.availability(0) == 1);
  CHECK(p.availability(1) == 2);
  CHECK(p.take_cancellations().size() == 4);
  CHECK(p.outstanding_requests(1) == 0);
  for (const auto& b : pick(p, 1, 100)) CHECK(b.piece != 0);
  CHECK(pick(p, 2, 4) == got);
  p.peer_have(1, 0);
  CHECK(p.availability(0) == 2);
  CHECK(p.availability_view().check_invariants());
}

TEST_CASE("end-game: a faster peer duplicates urgent blocks and the loser is cancelled", "[picker]") {
  Picker p = make(geometry(50));
  add_seed(p, 1, 100'000);  // slow, but the only rate known yet
  add_seed(p, 2, 0);
  REQUIRE(p.set_playhead(1, {0, 2.0 * kPiece, false}).ok());
  auto slow = pick(p, 1, 4, 1.0);
  REQUIRE(pieces_of(slow) == std::set<PieceIndex>{0});
  p.peer_rate(2, 1'000'000);
  auto fast = pick(p, 2, 8, 1.5);
  REQUIRE(fast.size() == 8);
  for (int i = 0; i < 4; ++i) CHECK(fast[i] == slow[i]);  // the most urgent piece, duplicated first
  CHECK(p.stats().duplicate_requests == 4);
  CHECK(p.block_received(2, fast[0]) == BlockOutcome::accepted);
  auto cancels = p.take_cancellations();
  REQUIRE(cancels.size() == 1);
  CHECK(cancels[0].peer == 1);
  CHECK(cancels[0].block == slow[0]);
  CHECK(p.outstanding_requests(1) == 3);
  CHECK(p.block_received(1, slow[0]) == BlockOutcome::duplicate);
  // Outside the urgent zone nothing is duplicated.
  auto more = pick(p, 2, 100, 1.6);
  std::set<std::tuple<PieceIndex, std::uint32_t>> seen;
  for (const auto& b : fast) seen.insert({b.piece, b.offset});
  for (const auto& b : more) CHECK(seen.insert({b.piece, b.offset}).second);
}

TEST_CASE("slow peers stay out of the urgent zone unless only they have the piece", "[picker]") {
  auto c = geometry(60);
  c.readahead_bytes = 20 * kPiece;
  Picker p = make(c);
  add_seed(p, 1, 1'000'000);
  REQUIRE(p.add_peer(2).ok());
  p.peer_unchoked(2);
  p.peer_rate(2, 100'000);
  p.peer_bitfield(2, bits(std::string(60, '1')));
  REQUIRE(p.set_playhead(1, {kPiece, 2.0 * kPiece, false}).ok());  // urgent: pieces 1..8
  auto got = pick(p, 2, 4);
  REQUIRE(got.size() == 4);
  CHECK(got[0].piece >= 9);  // not in the urgent zone

  Picker q = make(c);
  REQUIRE(q.add_peer(1).ok());
  q.peer_unchoked(1);
  q.peer_rate(1, 1'000'000);
  q.peer_bitfield(1, bits("0" + std::string(59, '1')));  // the fast peer lacks piece 0
  REQUIRE(q.add_peer(2).ok());
  q.peer_unchoked(2);
  q.peer_rate(2, 100'000);
  q.peer_have_all(2);
  REQUIRE(q.set_playhead(1, {0, 2.0 * kPiece, false}).ok());
  got = pick(q, 2, 4);
  REQUIRE(got.size() == 4);
  CHECK(pieces_of(got) == std::set<PieceIndex>{0});
}

TEST_CASE("stream start fetches head and tail right after the urgent zone", "[picker]") {
  for (auto policy : {PickPolicy::window, PickPolicy::window_no_tail}) {
    auto c = geometry(1000);  // 62.5 MiB: head/tail = max(1 %, 4 MiB) = 64 pieces each
    c.readahead_bytes = 8 * kPiece;
    c.policy = policy;
    Picker p = make(c);
    add_seed(p, 1);
    REQUIRE(p.set_playhead(1, {500 * kPiece, 0, true}).ok());
    auto got = pick(p, 1, 10000);
    auto s = pieces_of(got);
    if (policy == PickPolicy::window) {
      CHECK(s.size() == 8 + 64 + 64);
      CHECK(got[0].piece == 500);   // the first urgent pieces
      CHECK(got[8].piece == 999);   // the file's last pieces, from the end (the index)
      CHECK(got[12].piece == 998);
      CHECK(got[16].piece == 0);    // the file's first pieces (the header)
      CHECK(got[20].piece == 1);
      CHECK(got[24].piece == 2);    // then the rest of the head in order
      CHECK(got[24 + 62 * 4].piece == 997);  // then the rest of the tail, backwards
      CHECK(got[24 + 62 * 4 + 61 * 4].piece == 936);
      CHECK(got[24 + 62 * 4 + 62 * 4].piece == 502);  // then the rest of the window
    } else {
      CHECK(s.size() == 8);
      CHECK(*s.begin() == 500);
    }
  }
}

TEST_CASE("peer queues stay short and urgent work never waits behind readahead", "[picker]") {
  auto c = geometry(100);
  c.readahead_bytes = 40 * kPiece;
  Picker p = make(c);
  add_seed(p, 1, 10 * 16384.0);  // ten blocks a second: one second of queue is ten blocks
  REQUIRE(p.set_playhead(1, {20 * kPiece, kPiece, false}).ok());  // urgent: pieces 20..23
  auto got = pick(p, 1, 100);
  CHECK(got.size() == 10);  // bounded by one second of this peer's rate, not by the 100 free slots
  for (const auto& b : got) CHECK((b.piece >= 20 && b.piece < 23));
  // Urgent blocks remain that this peer could fetch: it gets no readahead while its queue has no room.
  CHECK(pick(p, 1, 100).empty());
  for (int i = 0; i < 3; ++i) (void)p.block_received(1, got[static_cast<std::size_t>(i)]);
  auto more = pick(p, 1, 100);
  CHECK(more.size() == 3);
  for (const auto& b : more) CHECK(b.piece < 24);
  // A peer not measured yet gets a few urgent blocks only, and nothing else while more urgent work waits.
  Picker q = make(c);
  add_seed(q, 2, 0);
  REQUIRE(q.set_playhead(1, {20 * kPiece, kPiece, false}).ok());
  CHECK(pick(q, 2, 100).size() == c.unknown_rate_urgent_blocks);
  CHECK(pick(q, 2, 100).empty());
}

TEST_CASE("failed and evicted pieces are wanted again", "[picker]") {
  Picker p = make(geometry(10));
  add_seed(p, 1);
  REQUIRE(p.set_playhead(1, {0, 0, false}).ok());
  auto got = pick(p, 1, 4);
  REQUIRE(got.size() == 4);
  for (int i = 0; i < 3; ++i) CHECK(p.block_received(1, got[i]) == BlockOutcome::accepted);
  CHECK(p.block_received(1, got[3]) == BlockOutcome::piece_complete);
  CHECK(p.block_received(1, {0, 1, 16384}) == BlockOutcome::unwanted);
  CHECK(p.block_received(1, {0, 0, 100}) == BlockOutcome::unwanted);
  CHECK(p.block_received(1, {77, 0, 16384}) == BlockOutcome::unwanted);
  p.piece_failed(0);
  CHECK(pick(p, 1, 4) == got);
  for (const auto& b : got) (void)p.block_received(1, b);
  p.piece_verified(0);
  CHECK(p.have_piece(0));
  CHECK(p.stats().pieces_had == 1);
  auto next = pick(p, 1, 4);
  CHECK(next[0].piece == 1);
  p.piece_evicted(0);
  CHECK_FALSE(p.have_piece(0));
  auto back = pick(p, 1, 4);
  CHECK(back == got);
}

TEST_CASE("a timed-out request is cancelled and requested again", "[picker]") {
  Picker p = make(geometry(10));
  add_seed(p, 1);
  add_seed(p, 2);
  REQUIRE(p.set_playhead(1, {0, 0, false}).ok());
  auto got = pick(p, 1, 1);
  p.request_timed_out(1, got[0]);
  auto cancels = p.take_cancellations();
  REQUIRE(cancels.size() == 1);
  CHECK(cancels[0].peer == 1);
  CHECK(pick(p, 2, 1) == got);
}

TEST_CASE("playhead validation and several playheads", "[picker]") {
  auto c = geometry(10);
  c.max_playheads = 2;
  c.files = {{0, 5 * kPiece}, {5 * kPiece, 5 * kPiece}};
  Picker p = make(c);
  CHECK_FALSE(p.set_playhead(1, {11 * kPiece, 0, false}).ok());
  CHECK_FALSE(p.set_playhead_in_file(1, 2, 0, 0, false).ok());
  CHECK_FALSE(p.set_playhead_in_file(1, 0, 5 * kPiece + 1, 0, false).ok());
  REQUIRE(p.set_playhead_in_file(1, 1, 0, 0, false).ok());
  REQUIRE(p.set_playhead(2, {0, 0, false}).ok());
  CHECK_FALSE(p.set_playhead(3, {0, 0, false}).ok());
  // The window of a playhead stays inside its file.
  CHECK(p.in_any_window(4));
  p.remove_playhead(2);
  CHECK_FALSE(p.in_any_window(4));
  CHECK(p.in_any_window(9));
}

TEST_CASE("randomized events keep every invariant", "[picker]") {
  std::mt19937 rng(12345);
  std::uint64_t total_picked = 0, total_cancelled = 0;
  for (int round = 0; round < 30; ++round) {
    const std::uint32_t pieces = 20 + rng() % 200;
    auto c = geometry(pieces, static_cast<std::uint64_t>(pieces - 1) * kPiece + 1 + rng() % kPiece);
    c.disk_mode = rng() % 2;
    c.readahead_bytes = (1 + rng() % 30) * kPiece;
    const std::uint64_t total = c.total_length;
    c.files = {{0, total / 3}, {total / 3, total / 3, true}, {2 * (total / 3), total - 2 * (total / 3)}};
    Picker p = make(c);
    // model: outstanding (peer, piece, offset)
    std::set<std::tuple<PeerSlot, PieceIndex, std::uint32_t>> out;
    std::map<PeerSlot, bool> connected;
    std::uint64_t t_ns = 1'000'000'000;
    auto drain = [&] {
      for (const auto& x : p.take_cancellations()) {
        ++total_cancelled;
        INFO("cancel for " << x.peer << " piece " << x.block.piece << " offset " << x.block.offset);
        REQUIRE(out.erase({x.peer, x.block.piece, x.block.offset}) == 1);
      }
    };
    auto drop_peer = [&](PeerSlot s) {
      for (auto it = out.begin(); it != out.end();) it = std::get<0>(*it) == s ? out.erase(it) : std::next(it);
    };
    for (int step = 0; step < 3000; ++step) {
      const PeerSlot s = rng() % 6;
      const auto piece = static_cast<PieceIndex>(rng() % pieces);
      t_ns += rng() % 50'000'000;
      switch (rng() % 16) {
        case 0:
          if (!connected[s]) {
            REQUIRE(p.add_peer(s).ok());
            connected[s] = true;
            if (rng() % 3 == 0) p.peer_have_all(s);
          } else {
            p.remove_peer(s);
            drop_peer(s);
            connected[s] = false;
          }
          break;
        case 1: if (rng() % 4 == 0) p.peer_dont_have(s, piece); else p.peer_have(s, piece); break;
        case 2: if (rng() % 2) p.peer_unchoked(s); else { p.peer_choked(s); drop_peer(s); } break;
        case 3: p.peer_rate(s, static_cast<double>(rng() % 2'000'000)); break;
        case 4: p.set_budget(rng() % 4 == 0 ? Picker::kUnlimited : (rng() % 5) * kPiece); break;
        case 5: {
          const std::uint64_t off = rng() % total;
          REQUIRE(p.set_playhead(rng() % 2, {off, static_cast<double>(rng() % 200'000), rng() % 3 == 0}).ok());
          break;
        }
        case 6: if (rng() % 5 == 0) { p.pause(); } else { p.resume(); } break;
        case 7: p.set_file_priority(rng() % 3, static_cast<std::uint8_t>(rng() % 2)); break;
        case 8: if (rng() % 4 == 0) p.piece_evicted(piece); else p.piece_failed(piece); break;
        case 9: {  // a block arrives (requested or not)
          if (out.empty() || !connected[s]) break;
          auto it = out.begin();
          std::advance(it, rng() % out.size());
          auto [peer, pc, offset] = *it;
          const std::uint32_t len = std::min<std::uint32_t>(16384, p.piece_size(pc) - offset);
          const auto r = p.block_received(peer, {pc, offset, len});
          out.erase(it);
          if (r == BlockOutcome::piece_complete) {
            drain();
            if (rng() % 8 == 0) p.piece_failed(pc); else p.piece_verified(pc);
          }
          break;
        }
        case 10: case 11: {
          if (out.empty()) break;
          auto it = out.begin();
          std::advance(it, rng() % out.size());
          auto [peer, pc, offset] = *it;
          const std::uint32_t len = std::min<std::uint32_t>(16384, p.piece_size(pc) - offset);
          if (rng() % 2) {
            p.block_rejected(peer, {pc, offset, len});
            out.erase(it);
          } else {
            p.request_timed_out(peer, {pc, offset, len});  // its cancel erases it from the model in drain()
          }
          break;
        }
        default: {  // pick
          if (!connected[s]) break;
          drain();
          const std::uint64_t budget = p.budget();
          std::vector<BlockRequest> got;
          p.pick(s, rng() % 40, PickerTime{} + std::chrono::nanoseconds(t_ns), got);
          total_picked += got.size();
          std::set<PieceIndex> started;
          for (const auto& b : got) {
            REQUIRE(b.piece < pieces);
            REQUIRE_FALSE(p.have_piece(b.piece));
            REQUIRE(p.piece_selected(b.piece));
            REQUIRE_FALSE(p.paused());
            if (!c.disk_mode) REQUIRE(p.in_any_window(b.piece));
            REQUIRE(b.length == std::min<std::uint32_t>(16384, p.piece_size(b.piece) - b.offset));
            INFO("peer " << s << " piece " << b.piece << " offset " << b.offset);
            REQUIRE(out.insert({s, b.piece, b.offset}).second);  // never the same block twice to one peer
          }
          REQUIRE(p.budget() <= budget);
          break;
        }
      }
      drain();
      for (PeerSlot q = 0; q < 6; ++q) {
        const auto n = std::count_if(out.begin(), out.end(), [&](const auto& x) { return std::get<0>(x) == q; });
        INFO("round " << round << " step " << step << " peer " << q);
        REQUIRE(p.outstanding_requests(q) == static_cast<std::uint32_t>(n));
      }
    }
    REQUIRE(p.availability_view().check_invariants());
  }
  CHECK(total_picked > 3000);  // the run really exercised picking and cancelling
  CHECK(total_cancelled > 500);
}

// --- the simulator that drives this same Picker (engine/sim_swarm) --------------------------------------------

TEST_CASE("scenario files are parsed strictly", "[picker][sim]") {
  auto ok = ph::sim::parse_scenario(
      "# comment\nname = t\nfile_size = 8MiB\npiece_length = 256KiB\nbitrate = 4Mbit\nduration = 30s\n"
      "peers = 3 rate=500KiB latency=20ms have=1\nseek = 10s 0.5\npause = 12s 2s\n");
  REQUIRE(ok.ok());
  CHECK(ok->file_size == 8u << 20);
  CHECK(ok->bitrate == Approx(500'000));
  CHECK(ok->groups.size() == 1);
  CHECK(ok->groups[0].latency == Approx(0.02));
  CHECK(ok->script.size() == 2);
  for (const char* bad : {"nonsense\n", "colour = red\npeers = 1\n", "file_size = 8 parsecs\npeers = 1\n",
                          "piece_length = 1000\npeers = 1\n", "name = x\n", "peers = 0\n", "peers = 2 speed=1\n",
                          "seek = 5s 1.5\npeers = 1\n", "duration = -3\npeers = 1\n"}) {
    INFO(bad);
    CHECK_FALSE(ph::sim::parse_scenario(bad).ok());
  }
}

TEST_CASE("the simulator is deterministic, honours the memory budget and ranks the policies", "[picker][sim]") {
  auto sc = ph::sim::parse_scenario(
      "name = small\nseed = 9\nfile_size = 24MiB\npiece_length = 256KiB\nbitrate = 4Mbit\nduration = 60s\n"
      "memory_limit = 8MiB\nreadahead = 4MiB\nindex_at_end = true\nindex_bytes = 256KiB\n"
      "peers = 4 rate=1MiB latency=30ms have=1\npeers = 8 rate=100KiB latency=120ms have=0.5\n"
      "seek = 20s 0.7\n");
  REQUIRE(sc.ok());
  const auto a = ph::sim::run_simulation(*sc, PickPolicy::window);
  const auto b = ph::sim::run_simulation(*sc, PickPolicy::window);
  CHECK(a.startup_delay == b.startup_delay);
  CHECK(a.downloaded_bytes == b.downloaded_bytes);
  CHECK(a.duplicate_bytes == b.duplicate_bytes);
  CHECK(a.started);
  CHECK(a.seeks == 1);
  CHECK(a.peak_memory <= 8u << 20);
  CHECK(a.budget_violations == 0);
  const auto rarest = ph::sim::run_simulation(*sc, PickPolicy::rarest_first);
  CHECK(rarest.budget_violations == 0);
  CHECK(rarest.peak_memory <= 8u << 20);
  CHECK(a.startup_delay < rarest.startup_delay);
}

TEST_CASE("the shipped scenarios parse", "[picker][sim]") {
  for (const char* name : {"fast_swarm", "slow_swarm", "one_fast_seeder", "churn", "seek_heavy", "disk_slow_seeders"}) {
    std::ifstream in(std::string(PLAYHEAD_SOURCE_DIR) + "/bench/scenarios/" + name + ".scn");
    REQUIRE(in.good());
    std::stringstream text;
    text << in.rdbuf();
    auto sc = ph::sim::parse_scenario(text.str());
    INFO(name);
    REQUIRE(sc.ok());
  }
}
