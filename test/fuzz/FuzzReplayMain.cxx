/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// main() of a fuzz target built without libFuzzer (gcc): runs LLVMFuzzerTestOneInput on every
// file given, or on every file of every folder given (the seed corpus and the regression inputs,
// replayed by CTest). A finding aborts, as under libFuzzer.

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int
LLVMFuzzerTestOneInput(const uint8_t * data, size_t size);

int
main(int argc, char ** argv)
{
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i)
  {
    if (fs::is_directory(argv[i]))
    {
      for (const auto & entry : fs::directory_iterator(argv[i]))
        if (entry.is_regular_file())
          files.push_back(entry.path());
    }
    else
      files.push_back(argv[i]);
  }
  if (files.empty())
  {
    std::fprintf(stderr, "usage: %s FILE|FOLDER...: no input found\n", argv[0]);
    return 2;
  }
  for (const auto & file : files)
  {
    std::ifstream                in(file, std::ios::binary);
    const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.eof() && in.fail())
    {
      std::fprintf(stderr, "cannot read '%s'\n", file.c_str());
      return 2;
    }
    LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
  }
  std::printf("replayed %zu input(s) without a finding\n", files.size());
  return 0;
}
