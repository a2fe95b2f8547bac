/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_JsonInput_h
#define agcl_JsonInput_h

// Reading JSON we did not write ourselves (model headers, configuration files, settings.json,
// options from Python) with limits, so that a hostile or broken file gives a clear error instead
// of a crash. Header-only, no LibTorch.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace agcl {

/** The deepest nesting of arrays and objects accepted. Our files nest fewer than 8 levels;
 *  nlohmann::json parses any depth, but copying, printing and comparing a value recurse once
 *  per level, so a document nested 100 000 deep (a few hundred kB) overflows the stack. */
inline constexpr int kMaxJsonDepth = 64;

/** The largest JSON file ReadJsonFile reads (configurations and settings are a few kB). */
inline constexpr std::uintmax_t kMaxJsonFileBytes = 64u << 20;

/** The deepest nesting of arrays and objects in `text` (brackets inside strings not counted);
 *  stops counting at limit + 1. */
inline int
JsonNestingDepth(std::string_view text, int limit = kMaxJsonDepth)
{
  int  depth = 0, deepest = 0;
  bool inString = false, escaped = false;
  for (const char c : text)
  {
    if (inString)
    {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        inString = false;
      continue;
    }
    if (c == '"')
      inString = true;
    else if (c == '[' || c == '{')
    {
      if (++depth > deepest && (deepest = depth) > limit)
        return deepest;
    }
    else if (c == ']' || c == '}')
      --depth;
  }
  return deepest;
}

/** `text` parsed as JSON; std::invalid_argument naming `what` when it is not JSON or nests
 *  deeper than kMaxJsonDepth. */
inline nlohmann::json
ParseJson(std::string_view text, const std::string & what)
{
  if (JsonNestingDepth(text) > kMaxJsonDepth)
    throw std::invalid_argument(what + ": JSON nested deeper than " + std::to_string(kMaxJsonDepth) +
                                " levels (not a file this tool writes)");
  try
  {
    return nlohmann::json::parse(text.begin(), text.end());
  }
  catch (const nlohmann::json::exception & e)
  {
    throw std::invalid_argument(what + ": not valid JSON (" + e.what() + ")");
  }
}

/** The JSON file at `path`: a regular file (not a folder, FIFO or device) of at most
 *  kMaxJsonFileBytes, parsed by ParseJson; std::invalid_argument naming the file otherwise. */
inline nlohmann::json
ReadJsonFile(const std::string & path)
{
  namespace fs = std::filesystem;
  const std::string where = "'" + path + "'";
  std::error_code   error;
  const auto        status = fs::status(path, error);
  if (error || !fs::exists(status))
    throw std::invalid_argument(where + ": no such file");
  if (!fs::is_regular_file(status))
    throw std::invalid_argument(where + ": not a regular file (expected a JSON file)");
  const std::uintmax_t size = fs::file_size(path, error);
  if (error || size > kMaxJsonFileBytes)
    throw std::invalid_argument(where + ": " + (error ? std::string("cannot get its size") : std::to_string(size) +
                                " bytes; a JSON file here is at most " + std::to_string(kMaxJsonFileBytes) + " bytes"));
  std::ifstream in(path, std::ios::binary);
  std::string   text(static_cast<size_t>(size), '\0');
  if (!in || !in.read(text.data(), static_cast<std::streamsize>(size)))
    throw std::invalid_argument(where + ": cannot read the file");
  return ParseJson(text, where);
}

} // namespace agcl

#endif
