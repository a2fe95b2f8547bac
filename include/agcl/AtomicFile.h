/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_AtomicFile_h
#define agcl_AtomicFile_h

// Text files written whole or not at all (settings, CSVs, label descriptions). Header-only, no
// LibTorch; POSIX.

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace agcl {

/** Writes `text` to `path` whole or not at all: a temporary name unique to this process in the
 *  same folder, every write and the final close checked (a full disk often shows only there),
 *  fsync'ed, then renamed over `path`; on any failure the temporary file is removed and a
 *  std::runtime_error names the file. */
inline void
WriteTextAtomically(const std::filesystem::path & path, const std::string & text)
{
  const std::filesystem::path temporary = path.string() + ".partial." + std::to_string(::getpid());
  auto                        fail = [&](const std::string & what) {
    const int       code = errno;
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    throw std::runtime_error("cannot write '" + path.string() + "': " + what + " (" + std::strerror(code) + ")");
  };
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    fail("cannot create its temporary file");
  for (size_t done = 0; done < text.size();)
  {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
    {
      ::close(fd);
      fail("write failed");
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0)
  {
    ::close(fd);
    fail("fsync failed");
  }
  if (::close(fd) != 0)
    fail("close failed");
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error)
  {
    errno = error.value();
    fail("cannot move the finished file into place");
  }
}

} // namespace agcl

#endif
