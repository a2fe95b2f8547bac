/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_JsonInput_h
#define agcl_JsonInput_h

// Reading files and JSON we did not write ourselves (model files, their headers, configuration
// files, settings.json, options from Python) with limits, so that a hostile or broken file gives
// a clear error instead of a crash or a hang. Header-only, no LibTorch.

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

/** The whole content of the regular file at `path`, read in one piece of its size: a folder,
 *  FIFO (reading would block) or device (/dev/zero would never end) is refused without reading,
 *  and so is a file over `maxBytes`. std::invalid_argument with the reason (without the file's
 *  name: the caller adds it). */
inline std::string
ReadRegularFile(const std::string & path, std::uintmax_t maxBytes)
{
  namespace fs = std::filesystem;
  std::error_code error;
  const auto      status = fs::status(path, error);
  if (error || !fs::exists(status))
    throw std::invalid_argument("cannot open the file (it does not exist)");
  if (!fs::is_regular_file(status))
    throw std::invalid_argument("not a regular file (a folder, FIFO or device is not read)");
  const std::uintmax_t size = fs::file_size(path, error);
  if (error)
    throw std::invalid_argument("cannot get the file's size");
  if (size > maxBytes)
    throw std::invalid_argument("the file has " + std::to_string(size) + " bytes; at most " + std::to_string(maxBytes) +
                                " are read");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw std::invalid_argument("cannot open the file");
  std::string bytes(static_cast<size_t>(size), '\0');
  if (!in.read(bytes.data(), static_cast<std::streamsize>(size)) || in.peek() != std::char_traits<char>::eof())
    throw std::invalid_argument("the file changed while it was read");
  return bytes;
}

/** The JSON file at `path`: ReadRegularFile (at most kMaxJsonFileBytes), then ParseJson;
 *  std::invalid_argument naming the file otherwise. */
inline nlohmann::json
ReadJsonFile(const std::string & path)
{
  const std::string where = "'" + path + "'";
  std::string       text;
  try
  {
    text = ReadRegularFile(path, kMaxJsonFileBytes);
  }
  catch (const std::invalid_argument & e)
  {
    throw std::invalid_argument(where + ": " + e.what());
  }
  return ParseJson(text, where);
}

} // namespace agcl

#endif
