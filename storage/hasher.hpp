// Hasher: the worker pools that keep SHA-1 verification and disk I/O off the network thread.
// Two pools with their own queues: hash workers (CPU-bound, one less than the cores) and disk workers (which mostly
// wait for the device). A piece written on the thread that hashed it would leave the CPU idle for the whole write;
// with separate pools the next piece hashes while the last one is written. Jobs post their results back to the
// io_context, so every completion handler runs on the network thread. Each store is a client: closing a client
// drops its queued jobs and waits for its running ones, so a store can be destroyed while pieces are being hashed.
#pragma once

#include <asio/io_context.hpp>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "net/sha1.hpp"
#include "storage/arena.hpp"

namespace ph::storage {

class Hasher {
 public:
  using ClientId = std::uint32_t;

  // workers == 0 means default_workers(): one less than the cores, at least one. disk_workers == 0 means 2.
  explicit Hasher(asio::io_context& io, unsigned workers = 0, unsigned disk_workers = 0);
  ~Hasher();  // drops queued jobs and joins the workers; destroy it before the io_context
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;

  static unsigned default_workers();
  unsigned workers() const { return hash_workers_; }
  asio::io_context& io() { return io_; }

  ClientId open_client();
  // Drops the client's queued jobs and blocks until none of its jobs is running. Call from the io thread only.
  void close_client(ClientId client);

  // Runs work() on a hash worker (CPU-bound work). work must post its own result to io() if it has one.
  void run(ClientId client, std::function<void()> work);
  // Runs work() on a disk worker (reads and writes that wait for the device). Same contract as run().
  void run_io(ClientId client, std::function<void()> work);
  // Hashes the (pinned) piece on a worker and posts done(ok) to the io_context. The caller keeps the piece pinned
  // and unchanged until done runs.
  void verify(ClientId client, PieceBytes bytes, Sha1Digest expected, std::function<void(bool ok)> done);

  // SHA-1 of a piece, on the calling thread (one EVP context per thread, reused).
  static Sha1Digest digest(const PieceBytes& bytes);

  std::size_t queued() const;  // both pools

 private:
  static constexpr ClientId kIdle = 0xffffffffu;
  struct Job {
    ClientId client;
    std::function<void()> work;
  };
  enum Pool : std::size_t { kHashPool = 0, kDiskPool = 1 };
  void enqueue(Pool pool, ClientId client, std::function<void()> work);
  void worker_main(Pool pool, std::size_t index);

  asio::io_context& io_;
  unsigned hash_workers_;
  mutable std::mutex mutex_;
  std::condition_variable work_cv_[2];
  std::condition_variable idle_cv_;
  std::deque<Job> queue_[2];
  std::vector<ClientId> running_;  // per worker (hash workers first): the client whose job it runs, or kIdle
  ClientId next_client_ = 0;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace ph::storage
