// Torrent: one torrent's state machine and peer policy. It owns the peers (PeerConnection handlers), the picker, the
// piece store, the announcer and the readers (playheads), and moves data between them:
//
//   metadata ──(info dict verified, BEP 9)──► downloading ⇄ paused
//        │                                        │ every selected piece had (disk mode)
//        └──────────────► stopped ◄─── seeding ◄──┘
//
// Everything runs on the session's io_context thread; only hashing and disk I/O leave it (storage::Hasher).
#pragma once

#include <asio.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/announcer.hpp"
#include "engine/choker.hpp"
#include "engine/config.hpp"
#include "engine/picker.hpp"
#include "net/extension_messages.hpp"
#include "net/io/peer_connection.hpp"
#include "net/metainfo.hpp"
#include "storage/hasher.hpp"
#include "storage/piece_store.hpp"

namespace ph::engine {

enum class TorrentState : std::uint8_t { metadata, downloading, paused, seeding, stopped };
const char* state_name(TorrentState s);

class FileReader;
class Session;

// What a torrent needs from its session.
struct TorrentContext {
  asio::io_context& io;
  storage::Arena& arena;
  storage::Hasher& hasher;
  const Config& config;
  PeerId peer_id;
  std::uint16_t listen_port = 0;
  net::PeerConnectionConfig connection;
  std::function<bool()> may_open_connection;  // the session's global connection limit
  std::function<void(const PeerAddress&)> dht_node_seen;  // a peer told us its DHT port (BEP 5 PORT message)
  // DHT (absent when the session runs none): find peers (streamed as they arrive), keep announcing us, stop.
  std::function<void(const InfoHash&, std::function<void(std::vector<PeerAddress>)>)> dht_get_peers;
  std::function<void(const InfoHash&, bool announce)> dht_announce;
};

struct TorrentOptions {
  std::uint32_t max_peers = 50;            // connections per torrent
  std::uint32_t max_upload_queue = 500;    // pending requests a peer may have with us
  std::uint32_t max_pool = 2000;           // known peer addresses
  std::chrono::seconds request_timeout{20};
  std::uint32_t max_request_queue = 500;   // requests in flight to one peer
  bool seed_only = false;                  // playhead seed: never download
};

struct TorrentCounters {
  std::uint64_t downloaded = 0;  // payload bytes received
  std::uint64_t uploaded = 0;    // payload bytes sent
  std::uint64_t wasted = 0;      // duplicate or unwanted block bytes
  std::uint64_t hash_failures = 0;
  std::uint64_t reader_stalls = 0;
};

struct PeerSummary {
  PeerAddress address;
  std::string client;
  double download_rate = 0;
  double upload_rate = 0;
  bool seed = false;
};

class Torrent : public net::PeerConnectionHandler {
 public:
  // A torrent whose metadata is known (from a .torrent, or a magnet once BEP 9 delivered it).
  Torrent(TorrentContext ctx, Metainfo metainfo, TorrentOptions options = {});
  // A torrent from a magnet link: metadata comes from peers.
  Torrent(TorrentContext ctx, InfoHash info_hash, std::string display_name, std::vector<std::vector<std::string>> trackers,
          TorrentOptions options = {});
  ~Torrent() override;
  Torrent(const Torrent&) = delete;
  Torrent& operator=(const Torrent&) = delete;

  // Starts trackers, connects to known peers, and (disk mode) rechecks data already on disk.
  void start();
  // Closes every peer and sends `stopped` to trackers (bounded), then calls done.
  void stop(std::chrono::milliseconds deadline, std::function<void()> done);

  // ---- peers ----
  void add_peers(const std::vector<PeerAddress>& addresses, const char* source);
  void connect_now(const PeerAddress& address);
  // An incoming connection whose handshake named this torrent (the session's router returns us as its handler).
  void adopt_incoming(std::shared_ptr<net::PeerConnection> connection);

  // ---- streaming control ----
  void pause();   // stop picking, cancel outstanding requests, not-interested; keep peers and pieces
  void resume();
  Result<void> prioritize_file(FileIndex file);
  // Opens a reader (a playhead) over one file. Requires metadata.
  Result<std::unique_ptr<FileReader>> open_reader(FileIndex file);

  // ---- state for the API ----
  const InfoHash& info_hash() const { return info_hash_; }
  const std::string& name() const { return name_; }
  TorrentState state() const { return state_; }
  bool has_metadata() const { return metainfo_.has_value(); }
  const Metainfo* metainfo() const { return metainfo_ ? &*metainfo_ : nullptr; }
  const storage::PieceStore* store() const { return store_.get(); }
  const Picker* picker() const { return picker_ ? &*picker_ : nullptr; }
  const TorrentCounters& counters() const { return counters_; }
  double download_rate() const;
  double upload_rate() const;
  std::uint32_t peer_count() const;
  std::vector<PeerSummary> peer_summaries() const;
  double progress() const;  // of the selected files
  std::vector<std::uint8_t> file_priorities() const { return file_priority_; }
  double file_progress(FileIndex f) const;
  bool have_piece(PieceIndex p) const;
  std::vector<std::pair<FileIndex, std::uint64_t>> playheads() const;
  std::vector<TrackerStatus> tracker_status() const;
  // Called when the metadata arrives (BEP 9) or immediately if known.
  void on_metadata(std::function<void()> f);

 private:
  friend class FileReader;
  struct Peer;
  struct PoolEntry {
    unsigned failures = 0;       // consecutive failed connection attempts
    unsigned hash_failures = 0;  // pieces it contributed to that failed the hash check
    std::chrono::steady_clock::time_point next_attempt{};
    bool connected = false;
    bool banned = false;
  };
  struct Waiter {
    FileReader* reader;
  };

  // net::PeerConnectionHandler
  void on_handshake(net::PeerConnection& c, const wire::Handshake& remote) override;
  void on_message(net::PeerConnection& c, const wire::Message& m) override;
  void on_closed(net::PeerConnection& c, const std::string& reason) override;
  void on_send_drained(net::PeerConnection& c) override;

  Peer* peer_of(net::PeerConnection& c);
  void init_with_metadata();
  void start_store();
  void send_extension_handshake(Peer& p);
  void send_our_pieces(Peer& p);
  void handle_extended(Peer& p, const wire::Message& m);
  void handle_metadata_message(Peer& p, std::string_view payload);
  void request_metadata(Peer& p);
  void handle_pex(Peer& p, std::string_view payload);
  void handle_block(Peer& p, const wire::Message& m);
  void handle_request(Peer& p, const wire::Message& m);
  void on_piece_verified(const storage::VerifyResult& r);
  void on_piece_evicted(PieceIndex piece);
  void feed_picker_with_peer(Peer& p);
  void update_interest(Peer& p);
  void fill_requests(Peer& p);
  void fill_all_requests();
  void send_cancellations();
  void serve_uploads(Peer& p);
  void prefetch_uploads(Peer& p, PieceIndex sending);
  void drop_peer_requests(Peer& p);
  void close_peer(Peer& p, const std::string& reason);
  // Closes a peer that broke the protocol; an address that does so twice is banned.
  void close_violator(Peer& p, const std::string& reason);
  void strike(const PeerAddress& address, const std::string& reason);
  void ban(Peer& p, const std::string& reason);
  bool is_banned(const PeerAddress& a) const;
  // Gives a new connection a Peer in the lowest free slot.
  void register_peer(std::shared_ptr<net::PeerConnection> connection, const PeerAddress& address);
  void connect_more();
  void rechoke();
  void send_pex();
  void dht_lookup();
  void tick();
  void arm_tick();
  void update_budget();
  void wake_readers(PieceIndex piece);
  void set_state(TorrentState s);
  bool wants_pieces() const;
  bool is_private() const { return metainfo_ && metainfo_->is_private; }
  std::uint32_t target_queue(const Peer& p) const;
  void reader_read(FileReader& r);   // tries to complete the reader's pending read
  void reader_closed(FileReader& r);
  void move_playhead(FileReader& r, std::uint64_t offset_in_file);

  TorrentContext ctx_;
  TorrentOptions options_;
  InfoHash info_hash_;
  std::string name_;
  TorrentState state_ = TorrentState::metadata;
  bool started_ = false;
  bool stopping_ = false;
  bool user_paused_ = false;
  std::optional<Metainfo> metainfo_;
  std::vector<std::vector<std::string>> trackers_;
  std::unique_ptr<storage::PieceStore> store_;
  std::optional<Picker> picker_;
  std::unique_ptr<Announcer> announcer_;
  Choker choker_;
  std::chrono::steady_clock::time_point last_rechoke_{};
  std::chrono::steady_clock::time_point last_pex_{};
  std::chrono::steady_clock::time_point last_dht_lookup_{};
  std::vector<std::uint8_t> file_priority_;
  std::vector<std::uint8_t> advertised_;  // pieces we told peers we have (HAVE/bitfield sent)

  // Peers: slots index peers_; a connection maps to its slot.
  std::vector<std::unique_ptr<Peer>> peers_;
  std::unordered_map<const net::PeerConnection*, std::uint32_t> slot_of_;
  std::map<PeerAddress, PoolEntry> pool_;
  std::set<PeerAddress> banned_;  // see ban_key(): IP addresses (port 0), or ip:port on loopback
  std::map<PeerAddress, unsigned> strikes_;  // protocol violations per ban_key(); bounded, see strike()
  std::uint64_t connect_counter_ = 0;

  // Metadata exchange (magnet links).
  wire::MetadataAssembler metadata_;
  std::vector<std::function<void()>> metadata_waiters_;

  // Readers (playheads) and the pieces they wait for.
  std::vector<FileReader*> readers_;
  ReaderId next_reader_id_ = 1;

  TorrentCounters counters_;
  asio::steady_timer tick_timer_;
  std::shared_ptr<char> alive_ = std::make_shared<char>(0);
  std::vector<BlockRequest> pick_scratch_;
};

// The streaming read API: async reads of a byte range of one file. Its position is a playhead that the picker
// follows; reads complete when the bytes are verified and in the store. Used on the io_context thread only.
class FileReader {
 public:
  using ReadHandler = std::function<void(Result<std::span<const std::byte>>)>;
  ~FileReader();
  FileReader(const FileReader&) = delete;
  FileReader& operator=(const FileReader&) = delete;

  std::uint64_t length() const { return length_; }
  FileIndex file() const { return file_; }
  const std::string& path() const { return path_; }
  std::uint64_t position() const { return position_; }
  // Up to max_len bytes at offset; completes (never inline) with at least one byte once available. The span is
  // valid until the next read() or the reader's destruction. One read at a time.
  void read(std::uint64_t offset, std::size_t max_len, ReadHandler handler);

 private:
  friend class Torrent;
  FileReader(Torrent& torrent, ReaderId id, FileIndex file, std::uint64_t file_offset, std::uint64_t length,
             std::string path);
  Torrent* torrent_;
  ReaderId id_;
  FileIndex file_;
  std::uint64_t file_offset_;  // where the file starts in the torrent
  std::uint64_t length_;
  std::string path_;
  std::uint64_t position_ = 0;
  bool started_ = false;
  // The pending read.
  bool pending_ = false;
  std::uint64_t want_offset_ = 0;
  std::size_t want_len_ = 0;
  ReadHandler handler_;
  bool counted_stall_ = false;
  storage::PieceView view_;  // pins the piece the last span points into
  std::shared_ptr<char> alive_ = std::make_shared<char>(0);
  // Consumption rate, measured from the reads.
  std::chrono::steady_clock::time_point rate_since_{};
  std::uint64_t rate_bytes_ = 0;
  double rate_ = 0;
};

}  // namespace ph::engine
