/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkLabelDescriptions_h
#define itkLabelDescriptions_h

#include "itkAbdominalPhantomImageSource.h"
#include "itkWriteImageAtomically.h"

#include <array>
#include <filesystem>
#include <iomanip>
#include <sstream>
#include <string>
#include <vector>

namespace itk {

/** One label value of a label map, as viewers show it.
 *  \ingroup AGCLSegmentation */
struct LabelDescription
{
  int                label;
  std::string        name;
  std::array<int, 3> color; // RGB, 0..255
};

/** The display colour of a label value: the phantom's organ colours (those of the BTCV label
 *  values), and for any other label a colour made from its value.
 *  \ingroup AGCLSegmentation */
inline std::array<int, 3>
LabelColor(int label)
{
  for (const auto & organ : AbdominalPhantomImageSource::GetOrgans())
    if (organ.label == label)
      return organ.color;
  return { (label * 67) % 256, 255 - (label * 67) % 256, 200 };
}

/** The text of an ITK-SNAP label description file (label 0 "Clear Label", then one line per
 *  label: value, R G B, alpha 1, visible, mesh, "name"). `what` goes into its header comment. */
inline std::string
ITKSnapLabelDescriptionText(const std::vector<LabelDescription> & labels, const std::string & what)
{
  std::ostringstream snap;
  snap << "################################################\n"
       << "# ITK-SnAP Label Description File (" << what << ")\n"
       << "#    IDX   -R-  -G-  -B-  -A--  VIS MSH  LABEL\n"
       << "################################################\n"
       << "    0     0    0    0        0  0  0    \"Clear Label\"\n";
  for (const auto & label : labels)
  {
    snap << std::setw(5) << label.label << std::setw(6) << label.color[0] << std::setw(5) << label.color[1]
         << std::setw(5) << label.color[2] << "        1  1  1    \"" << label.name << "\"\n";
  }
  return snap.str();
}

/** The text of a 3D Slicer colour table (.ctbl: "index name R G B A" lines, 0 = background). */
inline std::string
SlicerColorTableText(const std::vector<LabelDescription> & labels, const std::string & what)
{
  std::ostringstream slicer;
  slicer << "# 3D Slicer color table (" << what << ")\n# index name R G B A\n0 background 0 0 0 0\n";
  for (const auto & label : labels)
  {
    slicer << label.label << " " << label.name << " " << label.color[0] << " " << label.color[1] << " "
           << label.color[2] << " 255\n";
  }
  return slicer.str();
}

/** Writes `labels.itksnap.txt` (ITK-SNAP) and `labels.ctbl` (3D Slicer) into `folder`, each
 *  atomically; itk::ExceptionObject naming the file when it cannot.
 *  \ingroup AGCLSegmentation */
inline void
WriteLabelDescriptions(const std::filesystem::path &         folder,
                       const std::vector<LabelDescription> & labels,
                       const std::string &                   what)
{
  WriteTextFileAtomically(folder / "labels.itksnap.txt", ITKSnapLabelDescriptionText(labels, what));
  WriteTextFileAtomically(folder / "labels.ctbl", SlicerColorTableText(labels, what));
}

} // namespace itk

#endif
