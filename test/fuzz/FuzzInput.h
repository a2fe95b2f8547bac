/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_FuzzInput_h
#define agcl_FuzzInput_h

// Helpers of the fuzz targets (test/fuzz/Fuzz*.cxx): the parsers that take a path get the
// fuzzer's bytes through a file of this process's own.

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace agcl::fuzz {

/** Writes `data` to a file unique to this process (in $TMPDIR or /tmp) and returns its path. */
inline std::string
AsFile(const uint8_t * data, size_t size, const char * extension)
{
  static const std::string path = (std::filesystem::temp_directory_path() /
                                   ("agcl-fuzz-" + std::to_string(::getpid()) + extension))
                                    .string();
  static const struct RemovedAtExit // the input file goes when the program ends normally
  {
    std::string file;
    ~RemovedAtExit() { std::remove(file.c_str()); }
  } cleanup{ path };
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char *>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out)
  {
    std::fprintf(stderr, "fuzz: cannot write '%s'\n", path.c_str());
    std::abort();
  }
  return path;
}

} // namespace agcl::fuzz

#endif
