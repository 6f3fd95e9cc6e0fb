// EngineBackend: the http::Backend the real server uses, over engine::Session / Torrent / FileReader. The HTTP layer
// sees only the Backend seam; this file translates between the two vocabularies and adds nothing of its own.
#pragma once

#include "engine/session.hpp"
#include "http/backend.hpp"

namespace ph::http {

class EngineBackend final : public Backend {
 public:
  explicit EngineBackend(engine::Session& session) : session_(session) {}

  std::vector<TorrentInfo> list() override;
  std::optional<TorrentInfo> find(const InfoHash& hash) override;
  std::optional<TorrentDetail> detail(const InfoHash& hash) override;
  Result<AddResult> add_magnet(std::string_view uri) override;
  Result<AddResult> add_torrent_file(std::span<const std::uint8_t> bytes) override;
  Result<void> remove(const InfoHash& hash, bool delete_files) override;
  Result<void> prioritize_file(const InfoHash& hash, FileIndex file) override;
  Result<void> play(const InfoHash& hash) override;
  Result<void> pause(const InfoHash& hash) override;
  Result<void> connect_peer(const InfoHash& hash, const PeerAddress& address) override;
  MetricsSnapshot metrics() override;
  Result<std::unique_ptr<StreamSource>> open_stream(const InfoHash& hash, FileIndex file) override;

 private:
  engine::Session& session_;
};

TorrentInfo torrent_info(const engine::Torrent& t);

}  // namespace ph::http
