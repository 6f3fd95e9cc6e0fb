// Picker: decides which blocks to request from which peer so that pieces arrive in the order a video player needs
// them. A standalone class fed events (peers' pieces and rates, our pieces, playheads, selection, pause, the memory
// budget); it owns no socket, reads no clock (time is passed in) and touches no storage, so the engine, the unit
// tests, the benchmark and the bt-sim simulator all drive this same class.
//
// Policy (DESIGN.md "The picker"), per playhead:
//   1. urgent zone: the next urgent_seconds of the reader's consumption rate (never fewer than min_urgent_pieces),
//      requested in piece order, only from peers fast enough to deliver soon (queue time = outstanding bytes / rate);
//      end-game: a block already requested can be duplicated to a peer that will deliver it clearly sooner;
//   2. at stream start: head and tail of the playhead's file (max(1 %, 4 MiB) each); the tail from its end
//      backwards; its last min_urgent_pieces, and the file's first urgent-zone's worth of pieces, are urgent too
//      (with end-game), right after the first urgent pieces: a player reads the header, then the index at the end
//      of an mp4 without faststart, then the first frames, wherever the playhead happens to be meanwhile;
//   3. the rest of the readahead window, rarest first (pieces already started first, to free memory sooner).
// Outside every window: nothing in memory mode; rarest-first over the selected files in disk mode.
// Cost: pick() is O(window + blocks returned); availability updates are O(1) per piece.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "engine/availability.hpp"
#include "net/result.hpp"
#include "net/types.hpp"

namespace ph {
struct Metainfo;
}

namespace ph::engine {

using PeerSlot = std::uint32_t;  // the small integer the engine assigns per connected peer (reusable after removal)
using ReaderId = std::uint32_t;  // one per playhead (FileReader)
using PickerClock = std::chrono::steady_clock;
using PickerTime = PickerClock::time_point;

// Which policy pick() follows. The engine uses `window`; the others exist so that bt-sim can compare policies with
// the very same class.
enum class PickPolicy : std::uint8_t {
  window,          // Playhead's policy (above)
  window_no_tail,  // the same without head/tail priority at stream start
  sequential,      // every selected piece in order from the playhead, no urgency, no end-game
  rarest_first,    // ignore playheads: rarest-first over the selection (a classic downloader)
};

struct PickerFile {
  std::uint64_t offset = 0;  // byte offset in the torrent's concatenated data
  std::uint64_t length = 0;
  bool pad = false;          // BEP 47 padding file: never selected
};

struct PickerConfig {
  std::uint32_t piece_count = 0;
  std::uint32_t piece_length = 0;
  std::uint64_t total_length = 0;
  std::uint32_t block_size = kBlockSize;
  std::vector<PickerFile> files;  // empty: one file spanning the torrent
  bool disk_mode = false;         // outside windows: disk mode keeps fetching the selection, memory mode nothing
  PickPolicy policy = PickPolicy::window;

  std::uint64_t readahead_bytes = 32ull << 20;  // TORRENT_READAHEAD: the whole window past each playhead
  double urgent_seconds = 4.0;                  // urgent zone length in seconds of consumption
  std::uint32_t min_urgent_pieces = 2;
  std::uint64_t head_tail_min_bytes = 4ull << 20;  // head and tail at stream start: max(fraction, min)
  double head_tail_fraction = 0.01;
  double slow_peer_fraction = 0.25;  // peers slower than this fraction of the fastest stay out of the urgent zone
  // A peer takes urgent blocks only while its queue (outstanding bytes / rate) is shorter than this, so that urgent
  // pieces are spread over the peers that deliver soonest instead of queuing behind one peer.
  double max_urgent_queue_seconds = 1.0;
  std::uint32_t unknown_rate_urgent_blocks = 6;  // the same bound, in blocks, for a peer not measured yet
  // Window policies keep every peer's queue short so that an urgent request never waits long behind readahead:
  // non-urgent blocks only while the queue is shorter than this (or, unmeasured, holds fewer blocks than that),
  // and nothing non-urgent for a peer while urgent blocks it could fetch wait for room in its queue.
  double max_queue_seconds = 1.0;
  std::uint32_t unknown_rate_queue_blocks = 16;
  std::uint32_t max_requesters_per_block = 2;  // 1 disables end-game duplicates
  std::uint32_t max_scan_pieces = 4096;        // bound on the disk-mode / rarest-first background scan per pick
  std::uint32_t max_peers = 1u << 16;          // peer slots must be below this
  std::uint32_t max_playheads = 256;
};

// Fills piece geometry and files from a parsed torrent (pads flagged); the caller sets the rest.
PickerConfig picker_config_from(const Metainfo& m);

struct BlockRequest {
  PieceIndex piece = 0;
  std::uint32_t offset = 0;  // byte offset within the piece, a multiple of the block size
  std::uint32_t length = 0;
  bool operator==(const BlockRequest&) const = default;
};

struct Cancellation {
  PeerSlot peer = 0;
  BlockRequest block;
};

struct PlayheadSpec {
  std::uint64_t offset = 0;      // absolute byte offset in the torrent of the next byte the reader will read
  double bytes_per_second = 0;   // measured consumption rate (media bitrate); 0 = unknown: urgent = min pieces
  bool stream_start = false;     // a stream of this file just started: fetch its head and tail after the urgent zone
};

enum class BlockOutcome : std::uint8_t {
  accepted,        // new data: keep it
  piece_complete,  // new data and it completes the piece: hash it, then call piece_verified or piece_failed
  duplicate,       // already received (end-game loser, or a cancel that crossed the block): drop it
  unwanted,        // a piece we have, outside the torrent, or a bad block: drop it
};

struct PickerStats {
  std::uint64_t blocks_picked = 0;
  std::uint64_t duplicate_requests = 0;  // end-game duplicates issued
  std::uint64_t cancellations = 0;
  std::uint32_t pieces_in_progress = 0;
  std::uint32_t pieces_had = 0;
  std::uint32_t pieces_wanted = 0;  // selected and not had
};

class Picker {
 public:
  static constexpr std::uint64_t kUnlimited = std::numeric_limits<std::uint64_t>::max();

  // Validates the geometry (piece count vs lengths, file ranges inside the torrent, block size) and limits.
  static Result<Picker> create(PickerConfig config);

  // --- peers -----------------------------------------------------------------------------------------------
  Result<void> add_peer(PeerSlot peer);  // starts choked, with no pieces and an unknown rate
  void remove_peer(PeerSlot peer);       // its availability goes, its outstanding requests become wanted again
  void peer_bitfield(PeerSlot peer, std::span<const std::uint8_t> bitfield);  // BEP 3 layout, high bit first
  void peer_have(PeerSlot peer, PieceIndex p);
  void peer_have_all(PeerSlot peer);
  void peer_have_none(PeerSlot peer);
  void peer_dont_have(PeerSlot peer, PieceIndex p);  // lt_donthave: it lost a piece; requests for it become wanted
  void peer_choked(PeerSlot peer);  // a choke voids its requests: they become wanted again, no cancel is produced
  void peer_unchoked(PeerSlot peer);
  void peer_rate(PeerSlot peer, double bytes_per_second);  // measured download rate from this peer

  // --- our pieces ------------------------------------------------------------------------------------------
  void piece_verified(PieceIndex p);  // had; duplicates still outstanding for it are cancelled
  void piece_failed(PieceIndex p);    // hash failed: every block of it is wanted again
  void piece_evicted(PieceIndex p);   // dropped from memory (or a partial piece abandoned): not had again
  BlockOutcome block_received(PeerSlot peer, BlockRequest block);
  void block_rejected(PeerSlot peer, BlockRequest block);  // BEP 6 reject: wanted again
  void request_timed_out(PeerSlot peer, BlockRequest block);  // wanted again; a cancel is produced for the peer

  // --- selection -------------------------------------------------------------------------------------------
  // priority 0 = not selected. Pieces shared with a selected file are selected; pad files never are.
  void set_file_priority(FileIndex file, std::uint8_t priority);
  void select_only(FileIndex file);  // this file selected, every other one not

  // --- playheads -------------------------------------------------------------------------------------------
  // Adds or moves a playhead. A move cancels the requests that no window needs any more (take_cancellations).
  Result<void> set_playhead(ReaderId reader, PlayheadSpec spec);
  Result<void> set_playhead_in_file(ReaderId reader, FileIndex file, std::uint64_t offset_in_file,
                                    double bytes_per_second, bool stream_start);
  void remove_playhead(ReaderId reader);
  void set_readahead(std::uint64_t bytes);

  // --- flow control ----------------------------------------------------------------------------------------
  void pause();   // picks nothing; every outstanding request is cancelled (take_cancellations)
  void resume();
  bool paused() const { return paused_; }
  // Bytes of new pieces pick() may still start (free arena bytes). Each started piece uses its size.
  void set_budget(std::uint64_t bytes) { budget_ = bytes; }
  std::uint64_t budget() const { return budget_; }

  // --- picking ---------------------------------------------------------------------------------------------
  // Appends to `out` at most free_slots blocks to request from `peer` now; returns how many were appended.
  std::size_t pick(PeerSlot peer, std::uint32_t free_slots, PickerTime now, std::vector<BlockRequest>& out);
  // Requests to cancel (seek, pause, end-game losers, timeouts), drained.
  std::vector<Cancellation> take_cancellations();

  // --- queries ---------------------------------------------------------------------------------------------
  std::uint32_t piece_count() const { return cfg_.piece_count; }
  std::uint32_t piece_size(PieceIndex p) const;
  bool have_piece(PieceIndex p) const { return p < cfg_.piece_count && have_[p] != 0; }
  bool piece_selected(PieceIndex p) const { return p < cfg_.piece_count && selected_[p] > 0; }
  bool in_any_window(PieceIndex p) const;
  std::uint32_t availability(PieceIndex p) const { return avail_.count(p); }
  const Availability& availability_view() const { return avail_; }
  std::uint64_t outstanding_bytes(PeerSlot peer) const;
  std::uint32_t outstanding_requests(PeerSlot peer) const;
  PickerStats stats() const;
  const PickerConfig& config() const { return cfg_; }
  // Whether piece p is being assembled (some block requested or received, not verified yet).
  bool in_progress(PieceIndex p) const { return p < cfg_.piece_count && slot_of_[p] != kNoSlot; }

 private:
  static constexpr std::uint32_t kNoSlot = std::numeric_limits<std::uint32_t>::max();

  enum class BlockState : std::uint8_t { none, requested, received };
  struct Block {
    BlockState state = BlockState::none;
    std::uint8_t requesters = 0;
    PeerSlot peer[2] = {0, 0};
    std::int64_t expected_ns = 0;  // when the first requester is expected to deliver (end-game decisions)
  };
  struct Downloading {
    PieceIndex piece = 0;
    std::uint32_t blocks = 0;
    std::uint32_t requested_or_received = 0;  // blocks with state != none
    std::uint32_t received = 0;
    std::uint32_t first_none = 0;  // no block below this index is in state none (a scan hint)
    bool active = false;
    std::vector<Block> block;
  };
  struct Peer {
    bool connected = false;
    bool choked = true;
    bool seed = false;
    std::uint32_t piece_count = 0;      // pieces it has (when not seed)
    std::vector<std::uint64_t> bits;    // pieces it has, when not seed
    double rate = 0;
    std::uint64_t outstanding_bytes = 0;
    std::uint32_t outstanding = 0;
  };
  struct Range {  // [first, last) pieces
    PieceIndex first = 0;
    PieceIndex last = 0;
  };
  struct Playhead {
    ReaderId reader = 0;
    PlayheadSpec spec;
    std::uint64_t file_begin = 0;  // byte range of the playhead's file
    std::uint64_t file_end = 0;
    Range urgent, window, head, tail;  // window includes urgent; head/tail empty unless stream_start
    Range tail_urgent;                 // stream start: the file's last pieces, as urgent as the first ones
    Range head_urgent;                 // stream start: the file's first pieces (an urgent zone's worth)
  };

  explicit Picker(PickerConfig config);

  bool peer_has(const Peer& peer, PieceIndex p) const {
    return peer.seed || ((peer.bits[p >> 6] >> (p & 63)) & 1u) != 0;
  }
  bool valid_peer(PeerSlot s) const { return s < peers_.size() && peers_[s].connected; }
  std::uint32_t blocks_in(PieceIndex p) const;
  std::uint32_t block_length(PieceIndex p, std::uint32_t b) const;
  Downloading* downloading(PieceIndex p) { return slot_of_[p] == kNoSlot ? nullptr : &pool_[slot_of_[p]]; }
  Downloading* start_piece(PieceIndex p);
  void release_piece(PieceIndex p);
  void update_exclusion(PieceIndex p);
  void recompute_windows(Playhead& ph);
  void cancel_outside_windows();
  void drop_requests_of(PeerSlot peer, bool emit_cancel);
  void forget_requester(Block& b, PeerSlot peer);
  void on_request_lost(PeerSlot peer, BlockRequest block, bool emit_cancel);
  void set_selected_range(const PickerFile& f, int delta);

  // Picking steps; each returns false when `free` reached zero.
  bool take_blocks(Peer& peer, PeerSlot slot, PieceIndex p, std::uint32_t& free, std::int64_t now_ns,
                   bool allow_duplicates, std::vector<BlockRequest>& out);
  bool pick_in_order(Peer& peer, PeerSlot slot, Range r, std::uint32_t& free, std::int64_t now_ns, bool endgame,
                     std::vector<BlockRequest>& out, bool reverse = false, bool* starved = nullptr);
  std::uint32_t urgent_allowance(const Peer& peer) const;
  std::uint32_t queue_room(const Peer& peer) const;
  bool pick_rarest_in(Peer& peer, PeerSlot slot, std::span<const Range> ranges, std::uint32_t& free,
                      std::int64_t now_ns, std::vector<BlockRequest>& out);
  bool pick_background(Peer& peer, PeerSlot slot, std::uint32_t& free, std::int64_t now_ns,
                       std::vector<BlockRequest>& out);
  bool urgent_eligible(const Peer& peer) const;
  void refresh_fast_peers() const;
  bool fast_peer_has(PieceIndex p, PeerSlot except) const;
  void reset_block(Downloading& d, std::uint32_t b);
  bool set_playhead_impl(ReaderId reader, PlayheadSpec spec, std::uint64_t file_begin, std::uint64_t file_end);
  std::int64_t queue_ns(const Peer& peer, std::uint32_t extra_bytes) const;

  PickerConfig cfg_;
  Availability avail_;
  std::vector<std::uint8_t> have_;
  std::vector<std::uint32_t> selected_;  // per piece: selected non-pad files overlapping it
  std::vector<std::uint8_t> file_priority_;
  std::vector<std::uint32_t> slot_of_;  // per piece: index into pool_, or kNoSlot
  std::vector<Downloading> pool_;
  std::vector<std::uint32_t> free_slots_;
  std::vector<Peer> peers_;
  std::vector<Playhead> playheads_;
  std::vector<Cancellation> cancels_;
  std::vector<std::uint32_t> mark_;  // per piece: visit generation, to de-duplicate overlapping windows
  std::uint32_t generation_ = 0;
  struct Candidate {
    std::uint32_t key;
    PieceIndex piece;
  };
  std::vector<Candidate> scratch_;
  std::uint64_t budget_ = kUnlimited;
  std::uint32_t pieces_had_ = 0;
  std::uint32_t pieces_selected_ = 0;
  std::uint32_t pieces_selected_had_ = 0;
  bool paused_ = false;
  mutable bool fastest_dirty_ = true;
  mutable double fastest_ = 0;
  mutable std::vector<PeerSlot> fast_peers_;  // unchoked peers fast enough for the urgent zone
  PickerStats stats_;
};

}  // namespace ph::engine
