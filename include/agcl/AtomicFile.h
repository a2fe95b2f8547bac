/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_AtomicFile_h
#define agcl_AtomicFile_h

// Files written whole or not at all (model bundles, checkpoints, settings, CSVs, label
// descriptions). Header-only, no LibTorch; POSIX.

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>

namespace agcl {

/** The moments of an atomic write, in order, at which a WritePointHook is called (fault
 *  injection in tests: a hook that kills the process or throws simulates a crash there). */
enum class WritePoint
{
  Written,      ///< every byte written to the temporary file, not yet fsync'ed
  Flushed,      ///< the temporary file fsync'ed
  BeforeRename, ///< the temporary file closed, about to be renamed over the target
  Renamed       ///< renamed into place, the folder not yet fsync'ed
};
using WritePointHook = std::function<void(WritePoint, const std::filesystem::path & temporary)>;

/** "written", "flushed", "before-rename", "renamed". */
inline const char *
WritePointName(WritePoint point)
{
  switch (point)
  {
    case WritePoint::Written:
      return "written";
    case WritePoint::Flushed:
      return "flushed";
    case WritePoint::BeforeRename:
      return "before-rename";
    case WritePoint::Renamed:
      return "renamed";
  }
  return "?";
}

/** A temporary name beside `path`, unique to this process and call: `path`.partial.<pid>.<n>.
 *  Two processes (shards, a second run) or two threads writing one target never share one. */
inline std::filesystem::path
TemporaryNameFor(const std::filesystem::path & path)
{
  static std::atomic<unsigned long> counter{ 0 };
  return path.string() + ".partial." + std::to_string(::getpid()) + "." + std::to_string(counter++);
}

namespace detail {
// open(path, flags), fsync, close; false on any failure, errno from the first one that failed.
inline bool
SyncPath(const char * path, int flags)
{
  const int fd = ::open(path, flags | O_CLOEXEC);
  if (fd < 0)
    return false;
  const bool ok = ::fsync(fd) == 0;
  const int  code = errno;
  const bool closed = ::close(fd) == 0;
  if (!ok)
    errno = code;
  return ok && closed;
}
} // namespace detail

/** fsync of a file already written and closed (or still open elsewhere), by its path. Returns
 *  false on failure, with errno set. */
inline bool
SyncFile(const std::filesystem::path & path)
{
  return detail::SyncPath(path.c_str(), O_RDONLY);
}

/** fsync of a folder, so that a rename in it survives a power loss. Returns false on failure,
 *  with errno set. */
inline bool
SyncFolder(const std::filesystem::path & folder)
{
  return detail::SyncPath(folder.empty() ? "." : folder.c_str(), O_RDONLY | O_DIRECTORY);
}

/** Writes a file whole or not at all: `produce(write)` hands its bytes to `write(data, n)`, which
 *  writes them to a temporary name unique to this process in the same folder; every write, the
 *  fsync and the close are checked (a full disk often shows only there); then the file is renamed
 *  over `path` and the folder fsync'ed. On any failure the temporary file is removed and a
 *  std::runtime_error names `path`; an exception from `produce` removes it too and propagates.
 *  `hook` sees each WritePoint; an exception from it propagates and leaves the temporary file as
 *  it is at that point (a simulated crash). */
inline void
WriteFileAtomically(const std::filesystem::path &                                                     path,
                    const std::function<void(const std::function<void(const void *, size_t)> &)> & produce,
                    const WritePointHook &                                                           hook = {})
{
  const std::filesystem::path temporary = TemporaryNameFor(path);
  int                         fd = -1;
  auto                        fail = [&](const std::string & what) {
    const int code = errno;
    if (fd >= 0)
      ::close(fd);
    fd = -1;
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    throw std::runtime_error("cannot write '" + path.string() + "': " + what + " (" + std::strerror(code) + ")");
  };
  fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    fail("cannot create its temporary file");
  auto at = [&](WritePoint point) {
    if (!hook)
      return;
    try
    {
      hook(point, temporary);
    }
    catch (...)
    {
      if (fd >= 0)
        ::close(fd);
      throw;
    }
  };
  try
  {
    produce([&](const void * data, size_t size) {
    const char * bytes = static_cast<const char *>(data);
    for (size_t done = 0; done < size;)
    {
      const ssize_t n = ::write(fd, bytes + done, size - done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
      {
        if (n == 0)
          errno = ENOSPC;
        fail("write failed");
      }
      done += static_cast<size_t>(n);
    }
    });
  }
  catch (...)
  {
    if (fd >= 0) // not already cleaned up by fail()
    {
      ::close(fd);
      std::error_code ignored;
      std::filesystem::remove(temporary, ignored);
    }
    throw;
  }
  at(WritePoint::Written);
  if (::fsync(fd) != 0)
    fail("fsync failed");
  at(WritePoint::Flushed);
  const int closing = fd;
  fd = -1;
  if (::close(closing) != 0)
    fail("close failed");
  at(WritePoint::BeforeRename);
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error)
  {
    errno = error.value();
    fail("cannot move the finished file into place");
  }
  at(WritePoint::Renamed);
  if (!SyncFolder(path.parent_path()))
    throw std::runtime_error("cannot write '" + path.string() + "': fsync of its folder failed (" +
                             std::strerror(errno) + ")");
}

/** WriteFileAtomically of a text. */
inline void
WriteTextAtomically(const std::filesystem::path & path, const std::string & text)
{
  WriteFileAtomically(path, [&](const auto & write) { write(text.data(), text.size()); });
}

/** Removes the temporary files that killed writers left beside `path` (`path`.partial.*). Call
 *  only while no other process can be writing `path` (e.g. under the run folder's lock). */
inline void
RemoveStaleTemporaries(const std::filesystem::path & path)
{
  const std::string prefix = path.filename().string() + ".partial.";
  std::error_code   error;
  for (std::filesystem::directory_iterator it(path.parent_path().empty() ? "." : path.parent_path(), error), end;
       !error && it != end;
       it.increment(error))
    if (it->path().filename().string().rfind(prefix, 0) == 0)
    {
      std::error_code ignored;
      std::filesystem::remove(it->path(), ignored);
    }
}

} // namespace agcl

#endif
