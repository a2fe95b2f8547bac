/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_apps_OutputFiles_h
#define agcl_apps_OutputFiles_h

// Output files of the agcl commands: images and texts written atomically (temporary name +
// rename, so that no half-written file is ever left), and the label description files for
// ITK-SNAP and 3D Slicer.

#include "itkAbdominalPhantomImageSource.h"
#include "itkImageFileWriter.h"

#include "agcl/AtomicFile.h"

#include <array>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <string>
#include <vector>

namespace agcl::cli {

template <typename TImage>
void
WriteAtomically(const TImage * image, const std::filesystem::path & path)
{
  namespace fs = std::filesystem;
  // ITK writes the temporary file itself, so it keeps the target's extension (which chooses the
  // format): <stem>.partial.<pid>.<n><extensions>, unique to this process and call.
  const std::string name = path.filename().string();
  const auto        dot = name.find('.');
  const std::string unique = agcl::TemporaryNameFor(name.substr(0, dot)).string();
  const fs::path    temporary = path.parent_path() / (unique + (dot == std::string::npos ? "" : name.substr(dot)));
  try
  {
    auto writer = itk::ImageFileWriter<TImage>::New();
    writer->SetInput(image);
    writer->SetFileName(temporary.string());
    writer->SetUseCompression(true);
    writer->Update();
    // On disk before it takes the target's name, and the rename on disk too.
    if (!agcl::SyncFile(temporary))
      throw std::runtime_error("cannot write '" + path.string() + "': fsync failed (" + std::strerror(errno) + ")");
    fs::rename(temporary, path);
    if (!agcl::SyncFolder(path.parent_path())) // as WriteFileAtomically: the rename may not be on disk
      throw std::runtime_error("cannot write '" + path.string() + "': fsync of its folder failed (" +
                               std::strerror(errno) + ")");
  }
  catch (...)
  {
    std::error_code ignored;
    fs::remove(temporary, ignored);
    throw;
  }
}

// WriteTextAtomically: agcl/AtomicFile.h (the core's, also used by the trainer).
using agcl::WriteTextAtomically;

/** `value` with `digits` decimals. */
inline std::string
Fixed(double value, int digits)
{
  std::ostringstream os;
  os << std::fixed << std::setprecision(digits) << value;
  return os.str();
}

/** The display colour of a label value: the phantom's (BTCV) organ colours, a generated colour
 *  for other labels. */
inline std::array<int, 3>
LabelColor(int label)
{
  for (const auto & organ : itk::AbdominalPhantomImageSource::GetOrgans())
    if (organ.label == label)
      return organ.color;
  return { (label * 67) % 256, 255 - (label * 67) % 256, 200 };
}

struct LabelDescription
{
  int                label;
  std::string        name;
  std::array<int, 3> color;
};

/** Writes `labels.itksnap.txt` (ITK-SNAP) and `labels.ctbl` (3D Slicer colour table) into `dir`. */
inline void
WriteLabelDescriptions(const std::filesystem::path &         dir,
                       const std::vector<LabelDescription> & labels,
                       const std::string &                   what)
{
  std::ostringstream snap, slicer;
  snap << "################################################\n"
       << "# ITK-SnAP Label Description File (" << what << ")\n"
       << "#    IDX   -R-  -G-  -B-  -A--  VIS MSH  LABEL\n"
       << "################################################\n"
       << "    0     0    0    0        0  0  0    \"Clear Label\"\n";
  slicer << "# 3D Slicer color table (" << what << ")\n# index name R G B A\n0 background 0 0 0 0\n";
  for (const auto & label : labels)
  {
    snap << std::setw(5) << label.label << std::setw(6) << label.color[0] << std::setw(5) << label.color[1]
         << std::setw(5) << label.color[2] << "        1  1  1    \"" << label.name << "\"\n";
    slicer << label.label << " " << label.name << " " << label.color[0] << " " << label.color[1] << " "
           << label.color[2] << " 255\n";
  }
  WriteTextAtomically(dir / "labels.itksnap.txt", snap.str());
  WriteTextAtomically(dir / "labels.ctbl", slicer.str());
}

} // namespace agcl::cli

#endif
