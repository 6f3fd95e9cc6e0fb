#include "http/engine_backend.hpp"

#include "engine/log.hpp"

namespace ph::http {

TorrentInfo torrent_info(const engine::Torrent& t) {
  TorrentInfo i;
  i.info_hash = t.info_hash();
  i.name = t.name();
  i.state = engine::state_name(t.state());
  i.progress = t.progress();
  i.downloaded_bytes = t.counters().downloaded;
  i.uploaded_bytes = t.counters().uploaded;
  i.download_rate = static_cast<std::uint64_t>(t.download_rate());
  i.upload_rate = static_cast<std::uint64_t>(t.upload_rate());
  i.peers = t.peer_count();
  i.memory_bytes = t.store() ? t.store()->stats().resident_bytes : 0;
  i.file_count = t.metainfo() ? static_cast<std::uint32_t>(t.metainfo()->files.size()) : 0;
  return i;
}

std::vector<TorrentInfo> EngineBackend::list() {
  std::vector<TorrentInfo> out;
  for (const engine::Torrent* t : session_.torrents()) out.push_back(torrent_info(*t));
  return out;
}

std::optional<TorrentInfo> EngineBackend::find(const InfoHash& hash) {
  const engine::Torrent* t = session_.find(hash);
  if (!t) return std::nullopt;
  return torrent_info(*t);
}

std::optional<TorrentDetail> EngineBackend::detail(const InfoHash& hash) {
  const engine::Torrent* t = session_.find(hash);
  if (!t) return std::nullopt;
  TorrentDetail d;
  d.info = torrent_info(*t);
  for (const auto& p : t->peer_summaries()) {
    d.peer_list.push_back({p.address.to_string(), p.client, static_cast<std::uint64_t>(p.download_rate),
                           static_cast<std::uint64_t>(p.upload_rate)});
  }
  const Metainfo* m = t->metainfo();
  if (!m) return d;
  d.piece_length = m->piece_length;
  d.total_length = m->total_length;
  const auto priorities = t->file_priorities();
  for (FileIndex f = 0; f < m->files.size(); ++f) {
    const auto& fe = m->files[f];
    if (fe.pad) continue;
    d.files.push_back({f, fe.path_string(), fe.length, f < priorities.size() ? priorities[f] : 0, t->file_progress(f)});
  }
  const std::uint32_t n = m->piece_count();
  d.pieces.resize(n, '0');
  for (PieceIndex p = 0; p < n; ++p) {
    if (t->have_piece(p)) d.pieces[p] = '1';
  }
  if (const engine::Picker* picker = t->picker()) {
    for (PieceIndex p = 0; p < n; ++p) {
      if (!picker->in_any_window(p)) continue;
      if (!d.window.empty() && d.window.back().second + 1 == p) {
        d.window.back().second = p;
      } else {
        d.window.emplace_back(p, p);
      }
    }
  }
  for (const auto& [file, offset] : t->playheads()) {
    d.playheads.push_back({file, offset, static_cast<PieceIndex>((m->files[file].offset + offset) / m->piece_length)});
  }
  // Buffered ranges: runs of had pieces, clipped to each file.
  for (FileIndex f = 0; f < m->files.size(); ++f) {
    const auto& fe = m->files[f];
    if (fe.pad || fe.length == 0) continue;
    const auto first = static_cast<PieceIndex>(fe.offset / m->piece_length);
    const auto last = static_cast<PieceIndex>((fe.offset + fe.length - 1) / m->piece_length);
    for (PieceIndex p = first; p <= last; ++p) {
      if (!t->have_piece(p)) continue;
      const std::uint64_t start = std::max(fe.offset, std::uint64_t{p} * m->piece_length) - fe.offset;
      const std::uint64_t end =
          std::min(fe.offset + fe.length, std::uint64_t{p} * m->piece_length + m->piece_size(p)) - fe.offset;
      if (!d.buffered_ranges.empty() && d.buffered_ranges.back().file == f && d.buffered_ranges.back().end == start) {
        d.buffered_ranges.back().end = end;
      } else {
        d.buffered_ranges.push_back({f, start, end});
      }
    }
  }
  return d;
}

namespace {
AddResult to_add_result(const engine::AddedTorrent& a) { return {a.created, torrent_info(*a.torrent)}; }
}  // namespace

Result<AddResult> EngineBackend::add_magnet(std::string_view uri) {
  auto r = session_.add_magnet_uri(uri);
  if (!r) return r.error();
  return to_add_result(r.value());
}

Result<AddResult> EngineBackend::add_torrent_file(std::span<const std::uint8_t> bytes) {
  auto r = session_.add_torrent_bytes(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  if (!r) return r.error();
  return to_add_result(r.value());
}

Result<void> EngineBackend::remove(const InfoHash& hash, bool delete_files) { return session_.remove(hash, delete_files); }

Result<void> EngineBackend::prioritize_file(const InfoHash& hash, FileIndex file) {
  engine::Torrent* t = session_.find(hash);
  if (!t) return make_error("no such torrent");
  return t->prioritize_file(file);
}

Result<void> EngineBackend::play(const InfoHash& hash) {
  engine::Torrent* t = session_.find(hash);
  if (!t) return make_error("no such torrent");
  if (session_.config().pause_on_video_pause) {
    t->resume();
  } else {
    log_info("api", "play event for " + t->name() + " (TORRENT_PAUSE_ON_VIDEO_PAUSE=false: download unaffected)");
  }
  return {};
}

Result<void> EngineBackend::pause(const InfoHash& hash) {
  engine::Torrent* t = session_.find(hash);
  if (!t) return make_error("no such torrent");
  if (session_.config().pause_on_video_pause) {
    t->pause();
  } else {
    log_info("api", "pause event for " + t->name() + " (TORRENT_PAUSE_ON_VIDEO_PAUSE=false: download continues)");
  }
  return {};
}

Result<void> EngineBackend::connect_peer(const InfoHash& hash, const PeerAddress& address) {
  engine::Torrent* t = session_.find(hash);
  if (!t) return make_error("no such torrent");
  t->connect_now(address);
  return {};
}

MetricsSnapshot EngineBackend::metrics() {
  MetricsSnapshot s;
  for (const engine::Torrent* t : session_.torrents()) {
    ++s.torrents;
    s.peers += t->peer_count();
    s.download_rate += static_cast<std::uint64_t>(t->download_rate());
    s.upload_rate += static_cast<std::uint64_t>(t->upload_rate());
    s.downloaded_bytes += t->counters().downloaded;
    s.uploaded_bytes += t->counters().uploaded;
    s.reader_stalls += t->counters().reader_stalls;
    s.hash_failures += t->counters().hash_failures;
  }
  const auto a = session_.arena().stats();
  s.arena_bytes_used = a.used_bytes;
  s.arena_bytes_pinned = a.pinned_bytes;
  s.arena_bytes_limit = a.capacity_bytes;
  s.evictions = a.evictions;
  return s;
}

namespace {

class ReaderSource final : public StreamSource {
 public:
  explicit ReaderSource(std::unique_ptr<engine::FileReader> reader) : reader_(std::move(reader)) {}
  std::uint64_t length() const override { return reader_->length(); }
  std::string_view path() const override { return reader_->path(); }
  void read(std::uint64_t offset, std::size_t max_len, ReadHandler handler) override {
    reader_->read(offset, max_len, [handler = std::move(handler)](Result<std::span<const std::byte>> r) {
      if (!r) {
        handler(r.error());
        return;
      }
      const auto s = r.value();
      handler(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
    });
  }

 private:
  std::unique_ptr<engine::FileReader> reader_;
};

}  // namespace

Result<std::unique_ptr<StreamSource>> EngineBackend::open_stream(const InfoHash& hash, FileIndex file) {
  engine::Torrent* t = session_.find(hash);
  if (!t) return make_error("no such torrent");
  auto reader = t->open_reader(file);
  if (!reader) return reader.error();
  return std::unique_ptr<StreamSource>(std::make_unique<ReaderSource>(std::move(reader.value())));
}

}  // namespace ph::http
