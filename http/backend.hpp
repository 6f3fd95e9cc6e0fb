// The seam between the HTTP layer and the engine: everything the server, the JSON API and the metrics page need
// from a Session, as one small abstract class. The engine implements it over Session/Torrent/FileReader; the tests
// implement it with an in-memory fake. Every method is called on the io_context thread and every callback is
// invoked on that same thread, so nothing here needs a lock.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "net/result.hpp"
#include "net/types.hpp"

namespace ph::http {

// One torrent as the list view shows it (DESIGN.md "HTTP API"). Rates are bytes per second.
struct TorrentInfo {
  InfoHash info_hash;
  std::string name;
  std::string state;  // "metadata", "downloading", "paused", "seeding" or "stopped"
  double progress = 0;  // 0..1 of the selected files
  std::uint64_t downloaded_bytes = 0;  // payload received since added
  std::uint64_t uploaded_bytes = 0;    // payload sent since added
  std::uint64_t download_rate = 0;
  std::uint64_t upload_rate = 0;
  std::uint32_t peers = 0;
  std::uint64_t memory_bytes = 0;  // arena bytes held by this torrent
  std::uint32_t file_count = 0;    // 0 while the metadata is not known yet
};

struct FileInfo {
  FileIndex index = 0;
  std::string path;  // '/'-separated, relative to the torrent (the last component is the file name)
  std::uint64_t length = 0;
  int priority = 0;  // 0 = not selected; higher = more wanted
  double progress = 0;  // 0..1
};

// A byte range of one file that is in the store right now, [start, end).
struct BufferedRange {
  FileIndex file = 0;
  std::uint64_t start = 0;
  std::uint64_t end = 0;
};

// A reader's position, for drawing the playhead on the piece map.
struct PlayheadInfo {
  FileIndex file = 0;
  std::uint64_t offset = 0;  // byte within the file
  PieceIndex piece = 0;
};

struct PeerInfo {
  std::string address;  // "ip:port"
  std::string client;   // from the extension handshake, may be empty
  std::uint64_t download_rate = 0;
  std::uint64_t upload_rate = 0;
};

// The detail view: the list fields plus files, the piece map and what is buffered.
struct TorrentDetail {
  TorrentInfo info;
  std::uint32_t piece_length = 0;
  std::uint64_t total_length = 0;
  std::vector<FileInfo> files;
  std::string pieces;  // one char per piece: '1' had, '0' not
  std::vector<std::pair<PieceIndex, PieceIndex>> window;  // [first, last] piece ranges under a readahead window
  std::vector<PlayheadInfo> playheads;
  std::vector<BufferedRange> buffered_ranges;
  std::vector<PeerInfo> peer_list;
};

struct AddResult {
  bool created = false;  // false: the torrent was already there (the API answers 200 instead of 201)
  TorrentInfo torrent;
};

// Engine-wide counters for GET /metrics. The HTTP layer adds its own (requests by status, streams, bytes served).
struct MetricsSnapshot {
  std::uint32_t torrents = 0;
  std::uint32_t peers = 0;
  std::uint64_t download_rate = 0;
  std::uint64_t upload_rate = 0;
  std::uint64_t downloaded_bytes = 0;  // payload, all torrents, since start
  std::uint64_t uploaded_bytes = 0;
  std::uint64_t arena_bytes_used = 0;
  std::uint64_t arena_bytes_pinned = 0;
  std::uint64_t arena_bytes_limit = 0;
  std::uint64_t evictions = 0;       // pieces evicted from the arena
  std::uint64_t reader_stalls = 0;   // reads that had to wait for a piece
  std::uint64_t hash_failures = 0;
};

// A readable file of a torrent: what a /stream request pulls bytes from. Owning one is an open reader (it has a
// playhead the picker follows); destroying it closes the reader and releases its pin.
class StreamSource {
 public:
  // The bytes [offset, offset + data.size()) of the file, or an error (the stream is then abandoned). The span stays
  // valid until the next read() or until the source is destroyed (the piece is pinned meanwhile).
  using ReadHandler = std::function<void(Result<std::span<const std::uint8_t>>)>;

  virtual ~StreamSource() = default;

  virtual std::uint64_t length() const = 0;
  virtual std::string_view path() const = 0;  // as in FileInfo::path; the extension picks the Content-Type

  // Asks for up to max_len bytes at offset (offset < length(), max_len > 0). Completes, on the io_context thread
  // and never inline from inside read(), with at least one byte as soon as some are available: the read moves this
  // reader's playhead to offset, which is what makes the picker fetch those pieces. At most one read is pending at
  // a time. Destroying the source cancels a pending read; the handler may then be dropped or called with an error.
  virtual void read(std::uint64_t offset, std::size_t max_len, ReadHandler handler) = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual std::vector<TorrentInfo> list() = 0;
  virtual std::optional<TorrentInfo> find(const InfoHash& hash) = 0;
  virtual std::optional<TorrentDetail> detail(const InfoHash& hash) = 0;

  // Errors are bad input (an unparsable magnet or .torrent): the API answers 400 with the message.
  virtual Result<AddResult> add_magnet(std::string_view uri) = 0;
  virtual Result<AddResult> add_torrent_file(std::span<const std::uint8_t> bytes) = 0;

  // The API checks find() first (404), so errors from these are about the request itself (400) or the engine (500).
  virtual Result<void> remove(const InfoHash& hash, bool delete_files) = 0;
  // Makes this file the stream target, others deselected; logs "Prioritizing file for streaming".
  virtual Result<void> prioritize_file(const InfoHash& hash, FileIndex file) = 0;
  // Video events from the player. With TORRENT_PAUSE_ON_VIDEO_PAUSE the engine pauses/resumes the download and logs
  // "Paused torrent download" / "Resumed torrent download"; without it they are accepted and change nothing.
  virtual Result<void> play(const InfoHash& hash) = 0;
  virtual Result<void> pause(const InfoHash& hash) = 0;
  virtual Result<void> connect_peer(const InfoHash& hash, const PeerAddress& address) = 0;

  virtual MetricsSnapshot metrics() = 0;

  // Opens a reader over one file. Fails when the metadata is not known yet or the index is out of range (the
  // server checks both first and answers 503 / 404), or when the file is a padding file.
  virtual Result<std::unique_ptr<StreamSource>> open_stream(const InfoHash& hash, FileIndex file) = 0;
};

}  // namespace ph::http
