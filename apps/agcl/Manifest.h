/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_apps_Manifest_h
#define agcl_apps_Manifest_h

// The cohort manifest (agcl/Manifest.h) as the commands read it (errors are InputError, exit
// code 1), and the name a volume's outputs take.

#include "Subcommands.h"

#include "agcl/Manifest.h"

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

namespace agcl::cli {

using agcl::ManifestRow;
using agcl::SplitCsvLine;

/** agcl::ReadManifest with its errors as InputError (exit code 1). */
inline std::vector<ManifestRow>
ReadManifest(const std::string & path, const std::vector<std::string> & required, const std::string & split = "all")
{
  try
  {
    return agcl::ReadManifest(path, required, split);
  }
  catch (const agcl::ManifestError & e)
  {
    throw InputError(e.what());
  }
}

/** The name of a volume's outputs: the file name without its image extension, or the name of
 *  a DICOM series folder. */
inline std::string
VolumeName(const std::filesystem::path & input)
{
  namespace fs = std::filesystem;
  if (fs::is_directory(input))
  {
    const fs::path normal = input.lexically_normal();
    return normal.filename().empty() ? normal.parent_path().filename().string() : normal.filename().string();
  }
  std::string name = input.filename().string();
  for (const std::string e : { ".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".dcm", ".img", ".hdr" })
  {
    if (name.size() > e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0)
    {
      return name.substr(0, name.size() - e.size());
    }
  }
  return name.substr(0, name.find('.'));
}

} // namespace agcl::cli

#endif
