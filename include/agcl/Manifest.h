/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_Manifest_h
#define agcl_Manifest_h

// The cohort manifest read by the trainer and the agcl commands: a CSV with the header
// subject,image,label,modality,split (columns in any order; no quoting; image and label paths
// relative to the manifest's folder). Header-only, no LibTorch.

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace agcl {

/** A manifest that cannot be read or lacks a required column or value; the message names the
 *  file and the line. */
class ManifestError : public std::runtime_error
{
public:
  using std::runtime_error::runtime_error;
};

struct ManifestRow
{
  std::string subject, image, label, modality, split;
};

/** The comma-separated fields of one CSV line (no quoting; a trailing CR is dropped). */
inline std::vector<std::string>
SplitCsvLine(const std::string & line)
{
  std::vector<std::string> cells;
  std::stringstream        stream(line);
  std::string              cell;
  while (std::getline(stream, cell, ','))
  {
    if (!cell.empty() && cell.back() == '\r')
      cell.pop_back();
    cells.push_back(cell);
  }
  return cells;
}

/** Reads `path`; `required` names the columns that must exist with a value in every row,
 *  `present` those that must exist but may be empty (ManifestError naming the file, the line or
 *  the column otherwise). Relative image and label paths become relative to the manifest's
 *  folder. Rows of other splits are dropped unless `split` is "all". */
inline std::vector<ManifestRow>
ReadManifest(const std::string &              path,
             const std::vector<std::string> & required,
             const std::string &              split = "all",
             const std::vector<std::string> & present = {})
{
  std::ifstream in(path);
  if (!in)
  {
    throw ManifestError("manifest '" + path + "': cannot read the file");
  }
  std::string line;
  std::getline(in, line);
  const auto columns = SplitCsvLine(line);
  auto       column = [&](const std::string & name) {
    const auto it = std::find(columns.begin(), columns.end(), name);
    return it == columns.end() ? -1 : static_cast<int>(it - columns.begin());
  };
  std::vector<std::string> needed = required;
  if (split != "all")
    needed.push_back("split");
  std::vector<std::string> columnsNeeded = needed;
  columnsNeeded.insert(columnsNeeded.end(), present.begin(), present.end());
  for (const auto & name : columnsNeeded)
  {
    if (column(name) < 0)
    {
      throw ManifestError("manifest '" + path + "': no '" + name +
                          "' column; expected the header subject,image,label,modality,split");
    }
  }
  const std::filesystem::path base = std::filesystem::path(path).parent_path();
  auto                        resolve = [&](const std::string & file) {
    if (file.empty())
      return file;
    const std::filesystem::path p = file;
    return (p.is_absolute() ? p : base / p).string();
  };
  std::vector<ManifestRow> rows;
  for (int number = 2; std::getline(in, line); ++number)
  {
    if (line.empty() || line == "\r")
      continue;
    const auto cells = SplitCsvLine(line);
    auto       get = [&](const char * name) {
      const int at = column(name);
      return at >= 0 && at < static_cast<int>(cells.size()) ? cells[at] : std::string();
    };
    for (const auto & name : needed)
    {
      if (get(name.c_str()).empty())
      {
        throw ManifestError("manifest '" + path + "', line " + std::to_string(number) + ": empty or missing '" + name +
                            "'");
      }
    }
    ManifestRow row{ get("subject"), resolve(get("image")), resolve(get("label")), get("modality"), get("split") };
    if (split == "all" || row.split == split)
      rows.push_back(row);
  }
  return rows;
}

} // namespace agcl

#endif
