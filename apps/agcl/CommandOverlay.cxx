/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// agcl overlay CT LABELS --out DIR: PNG pictures of a segmentation over its CT for quality
// control: N axial slices evenly spread over the labelled slices, CT in a soft-tissue window,
// each organ outlined in its colour with a light tint inside.

#include "OutputFiles.h"
#include "ReadImage.h"
#include "Subcommands.h"

#include "itkLabelBoundingBoxes.h"
#include "itkRGBPixel.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>

namespace agcl::cli {

namespace {
namespace fs = std::filesystem;
using CTImage = itk::Image<float, 3>;
using LabelImage = itk::Image<unsigned char, 3>;
using RGBImage = itk::Image<itk::RGBPixel<unsigned char>, 2>;

struct OverlayOptions
{
  std::string ct, labels, out;
  int         slices = 5;
  double      level = 40, width = 400;
};

int
RunOverlay(const OverlayOptions & options)
{
  if (options.slices < 1 || !(options.width > 0))
    throw InputError("--slices and --window-width: expected positive values");
  const auto ct = ReadImage<CTImage>(options.ct, "CT");
  const auto labels = ReadImage<LabelImage>(options.labels, "label map");
  const auto region = ct->GetLargestPossibleRegion();
  if (labels->GetLargestPossibleRegion() != region ||
      !labels->GetSpacing().GetVnlVector().is_equal(ct->GetSpacing().GetVnlVector(), 1e-4))
  {
    std::ostringstream os;
    os << "'" << options.labels << "' (size " << labels->GetLargestPossibleRegion().GetSize()
       << ") does not have the geometry of '" << options.ct << "' (size " << region.GetSize() << ")";
    throw InputError(os.str());
  }

  // Slices: evenly spread over the labelled range of the z index (all slices without labels).
  const auto    size = region.GetSize();
  const int64_t nx = size[0], ny = size[1], nz = size[2];
  const auto    boxes = itk::LabelBoundingBoxes(labels.GetPointer(), region, true);
  int64_t       first = 0, last = nz - 1;
  if (!boxes.empty())
  {
    first = boxes.begin()->second.GetIndex(2) - region.GetIndex(2);
    last = first + static_cast<int64_t>(boxes.begin()->second.GetSize(2)) - 1;
  }
  const int       count = static_cast<int>(std::min<int64_t>(options.slices, last - first + 1));
  std::error_code error;
  fs::create_directories(options.out, error);
  if (error || !fs::is_directory(options.out))
    throw InputError("--out '" + options.out + "': cannot create the folder");

  const float *         h = ct->GetBufferPointer();
  const unsigned char * l = labels->GetBufferPointer();
  const std::string     stem =
    fs::path(options.labels).filename().string().substr(0, fs::path(options.labels).filename().string().find('.'));
  for (int s = 0; s < count; ++s)
  {
    const int64_t k = count == 1 ? (first + last) / 2 : first + (last - first) * s / (count - 1);
    auto          picture = RGBImage::New();
    picture->SetRegions(
      RGBImage::SizeType{ { static_cast<itk::SizeValueType>(nx), static_cast<itk::SizeValueType>(ny) } });
    picture->Allocate();
    auto * out = reinterpret_cast<unsigned char *>(picture->GetBufferPointer());
    for (int64_t j = 0; j < ny; ++j)
      for (int64_t i = 0; i < nx; ++i)
      {
        const int64_t v = (k * ny + j) * nx + i;
        const double  gray = std::clamp((h[v] - (options.level - options.width / 2)) / options.width, 0.0, 1.0) * 255.0;
        const int     label = l[v];
        const auto    differs = [&](int64_t w) { return l[w] != label; };
        const bool    edge = label != 0 && ((i > 0 && differs(v - 1)) || (i + 1 < nx && differs(v + 1)) ||
                                         (j > 0 && differs(v - nx)) || (j + 1 < ny && differs(v + nx)));
        const auto    color = itk::LabelColor(label);
        for (int c = 0; c < 3; ++c)
        {
          const double value = label == 0 ? gray : edge ? color[c] : 0.85 * gray + 0.15 * color[c];
          out[3 * (j * nx + i) + c] = static_cast<unsigned char>(std::lround(value));
        }
      }
    std::ostringstream name;
    name << stem << "_z" << k << ".png";
    itk::WriteImageAtomically(picture.GetPointer(), fs::path(options.out) / name.str());
    std::cout << "wrote " << (fs::path(options.out) / name.str()).string() << std::endl;
  }
  return kSuccess;
}
} // namespace

void
RegisterOverlay(CLI::App & app, Runner & runner)
{
  auto       options = std::make_shared<OverlayOptions>();
  CLI::App * sub = app.add_subcommand(
    "overlay",
    "PNG pictures of a segmentation over its CT for quality control: axial slices (the z index) evenly spread "
    "over the labelled slices, soft-tissue window, organ outlines in their colours");
  sub->add_option("ct", options->ct, "the CT volume")->required();
  sub->add_option("labels", options->labels, "its label map (same grid)")->required();
  sub->add_option("--out", options->out, "output folder")->required();
  sub->add_option("--slices", options->slices, "number of axial slices (default 5)");
  sub->add_option("--window-level", options->level, "window level in HU (default 40)");
  sub->add_option("--window-width", options->width, "window width in HU (default 400)");
  sub->callback([options, &runner] { runner = [options] { return RunOverlay(*options); }; });
}

} // namespace agcl::cli
