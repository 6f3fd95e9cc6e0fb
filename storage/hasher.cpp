// Hasher: one mutex, a condition-variable job queue per pool, a fixed set of worker threads (see hasher.hpp).
#include "storage/hasher.hpp"

#include <asio/post.hpp>

#include <pthread.h>

#include <algorithm>

namespace ph::storage {

unsigned Hasher::default_workers() {
  const unsigned cores = std::thread::hardware_concurrency();
  return cores > 1 ? cores - 1 : 1;
}

Hasher::Hasher(asio::io_context& io, unsigned workers, unsigned disk_workers)
    : io_(io), hash_workers_(workers ? workers : default_workers()) {
  if (disk_workers == 0) disk_workers = 2;
  running_.assign(hash_workers_ + disk_workers, kIdle);
  threads_.reserve(running_.size());
  for (std::size_t i = 0; i < running_.size(); ++i) {
    threads_.emplace_back([this, i] { worker_main(i < hash_workers_ ? kHashPool : kDiskPool, i); });
  }
}

Hasher::~Hasher() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
    for (auto& q : queue_) q.clear();
  }
  for (auto& cv : work_cv_) cv.notify_all();
  for (auto& t : threads_) t.join();
}

Hasher::ClientId Hasher::open_client() {
  std::lock_guard lock(mutex_);
  return next_client_++;
}

void Hasher::close_client(ClientId client) {
  std::unique_lock lock(mutex_);
  for (auto& q : queue_) std::erase_if(q, [client](const Job& j) { return j.client == client; });
  idle_cv_.wait(lock, [&] { return std::find(running_.begin(), running_.end(), client) == running_.end(); });
}

void Hasher::run(ClientId client, std::function<void()> work) { enqueue(kHashPool, client, std::move(work)); }

void Hasher::run_io(ClientId client, std::function<void()> work) { enqueue(kDiskPool, client, std::move(work)); }

void Hasher::enqueue(Pool pool, ClientId client, std::function<void()> work) {
  {
    std::lock_guard lock(mutex_);
    if (stop_) return;
    queue_[pool].push_back(Job{client, std::move(work)});
  }
  work_cv_[pool].notify_one();
}

void Hasher::verify(ClientId client, PieceBytes bytes, Sha1Digest expected, std::function<void(bool ok)> done) {
  run(client, [this, bytes, expected, done = std::move(done)]() mutable {
    const bool ok = digest(bytes) == expected;
    asio::post(io_, [done = std::move(done), ok] { done(ok); });
  });
}

Sha1Digest Hasher::digest(const PieceBytes& bytes) {
  thread_local Sha1 sha;
  for (BlockIndex b = 0; b < bytes.block_count(); ++b) sha.update(bytes.block(b));
  return sha.finish();
}

std::size_t Hasher::queued() const {
  std::lock_guard lock(mutex_);
  return queue_[kHashPool].size() + queue_[kDiskPool].size();
}

void Hasher::worker_main(Pool pool, std::size_t index) {
  // Named so that top -H and perf show which pool is busy.
  pthread_setname_np(pthread_self(), pool == kHashPool ? "ph-hash" : "ph-disk");
  std::unique_lock lock(mutex_);
  auto& queue = queue_[pool];
  for (;;) {
    work_cv_[pool].wait(lock, [&] { return stop_ || !queue.empty(); });
    if (stop_) return;
    Job job = std::move(queue.front());
    queue.pop_front();
    running_[index] = job.client;
    lock.unlock();
    job.work();
    job.work = nullptr;  // destroy captures outside the lock, before reporting idle
    lock.lock();
    running_[index] = kIdle;
    idle_cv_.notify_all();
  }
}

}  // namespace ph::storage
