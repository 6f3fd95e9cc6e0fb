// FileReader and the torrent side of streaming reads: playheads, waiting for pieces, pinned views.
#include "engine/torrent_peer.hpp"

#include <algorithm>

#include "engine/log.hpp"

namespace ph::engine {

using Clock = std::chrono::steady_clock;

// ---- readers -------------------------------------------------------------------------------------------------

Result<std::unique_ptr<FileReader>> Torrent::open_reader(FileIndex file) {
  if (!metainfo_ || !store_) return make_error("metadata not known yet");
  if (file >= metainfo_->files.size()) return make_error("no such file");
  const FileEntry& f = metainfo_->files[file];
  if (f.pad) return make_error("padding files cannot be streamed");
  // Streaming a file selects it (without deselecting others: several viewers may watch several files).
  if (file_priority_[file] == 0) {
    file_priority_[file] = 1;
    picker_->set_file_priority(file, 1);
  }
  log_info("torrent", "Prioritizing file for streaming: " + f.path_string());
  auto r = std::unique_ptr<FileReader>(new FileReader(*this, next_reader_id_++, file, f.offset, f.length, f.path_string()));
  readers_.push_back(r.get());
  return r;
}

void Torrent::reader_closed(FileReader& r) {
  readers_.erase(std::remove(readers_.begin(), readers_.end(), &r), readers_.end());
  if (picker_) picker_->remove_playhead(r.id_);
  send_cancellations();
}

void Torrent::move_playhead(FileReader& r, std::uint64_t offset_in_file) {
  if (!picker_) return;
  const bool start = !r.started_;
  r.started_ = true;
  const std::uint64_t before = r.position_;
  r.position_ = offset_in_file;
  (void)picker_->set_playhead_in_file(r.id_, r.file_, offset_in_file, r.rate_, start);
  // Pieces wholly behind this reader are the first to go when memory is needed (unless another reader needs them).
  if (offset_in_file > before && store_) {
    const std::uint32_t pl = metainfo_->piece_length;
    const PieceIndex from = static_cast<PieceIndex>((r.file_offset_ + before) / pl);
    const PieceIndex to = static_cast<PieceIndex>((r.file_offset_ + offset_in_file) / pl);
    for (PieceIndex p = from; p < to; ++p) {
      if (!picker_->in_any_window(p)) store_->hint_behind(p, true);
    }
  }
  send_cancellations();
  fill_all_requests();
}

void Torrent::wake_readers(PieceIndex piece) {
  // Copy: completing a read may close readers.
  auto readers = readers_;
  for (FileReader* r : readers) {
    if (!r->pending_) continue;
    const PieceIndex want = static_cast<PieceIndex>((r->file_offset_ + r->want_offset_) / metainfo_->piece_length);
    if (want == piece) reader_read(*r);
  }
}

void Torrent::reader_read(FileReader& r) {
  if (!r.pending_ || !store_) return;
  const std::uint64_t abs = r.file_offset_ + r.want_offset_;
  const auto piece = static_cast<PieceIndex>(abs / metainfo_->piece_length);
  const auto in_piece = static_cast<std::uint32_t>(abs - std::uint64_t{piece} * metainfo_->piece_length);
  auto complete = [this, &r, in_piece](storage::PieceView view) {
    const std::uint64_t left_in_file = r.length_ - r.want_offset_;
    const std::uint32_t avail = view.size() - in_piece;
    std::uint32_t len = static_cast<std::uint32_t>(std::min<std::uint64_t>({r.want_len_, left_in_file, avail}));
    // The longest contiguous run from the start: a piece's 16 KiB blocks are usually adjacent in the arena (it
    // hands out and recycles them in order), so one read usually covers the whole request, not one block.
    std::span<const std::byte> span;
    bool contiguous = true;
    view.for_each_segment(in_piece, len, [&](std::span<const std::byte> s) {
      if (span.empty()) {
        span = s;
      } else if (contiguous && s.data() == span.data() + span.size()) {
        span = {span.data(), span.size() + s.size()};
      } else {
        contiguous = false;
      }
    });
    r.view_ = std::move(view);
    r.pending_ = false;
    r.counted_stall_ = false;
    r.rate_bytes_ += span.size();
    auto handler = std::move(r.handler_);
    std::weak_ptr<char> alive = r.alive_;
    asio::post(ctx_.io, [handler = std::move(handler), span, alive] {
      if (!alive.expired()) handler(span);
    });
  };
  if (auto view = store_->try_view(piece)) {
    complete(std::move(*view));
    return;
  }
  if (store_->has(piece)) {
    // Disk mode: on disk, not cached.
    std::weak_ptr<char> alive = r.alive_;
    FileReader* rp = &r;
    store_->read_piece(piece, [this, alive, rp, complete](Result<storage::PieceView> v) {
      if (alive.expired() || !rp->pending_) return;
      if (v) complete(std::move(v.value()));
      else reader_read(*rp);  // evicted meanwhile: wait for it again
    });
    return;
  }
  if (!r.counted_stall_) {
    r.counted_stall_ = true;
    ++counters_.reader_stalls;
  }
  // Not here yet: the playhead move already asked the picker for it; wake_readers completes the read.
  fill_all_requests();
}

FileReader::FileReader(Torrent& torrent, ReaderId id, FileIndex file, std::uint64_t file_offset,
                       std::uint64_t length, std::string path)
    : torrent_(&torrent), id_(id), file_(file), file_offset_(file_offset), length_(length), path_(std::move(path)) {
  rate_since_ = Clock::now();
}

FileReader::~FileReader() {
  view_.reset();
  if (torrent_) torrent_->reader_closed(*this);
}

void FileReader::read(std::uint64_t offset, std::size_t max_len, ReadHandler handler) {
  view_.reset();
  if (!torrent_ || offset >= length_ || max_len == 0) {
    std::weak_ptr<char> alive = alive_;
    auto io = torrent_ ? &torrent_->ctx_.io : nullptr;
    if (!io) return;
    asio::post(*io, [handler = std::move(handler), alive] {
      if (!alive.expired()) handler(make_error("read outside the file"));
    });
    return;
  }
  // Consumption rate: bytes handed out over the last few seconds.
  const auto now = Clock::now();
  const double secs = std::chrono::duration<double>(now - rate_since_).count();
  if (secs >= 2.0) {
    rate_ = rate_bytes_ / secs;
    rate_bytes_ = 0;
    rate_since_ = now;
  }
  pending_ = true;
  want_offset_ = offset;
  want_len_ = max_len;
  handler_ = std::move(handler);
  torrent_->move_playhead(*this, offset);
  torrent_->reader_read(*this);
}


}  // namespace ph::engine
