/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// agcl phantom: a synthetic abdominal CT cohort (images, label maps, manifest, label
// descriptions, pictures) from itk::AbdominalPhantomImageSource.

#include "OutputFiles.h"
#include "Subcommands.h"

#include "itkAbdominalPhantomImageSource.h"
#include "itkImageFileWriter.h"
#include "itkRGBPixel.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <numeric>
#include <random>
#include <sstream>

namespace agcl::cli {

namespace {
namespace fs = std::filesystem;
using Source = itk::AbdominalPhantomImageSource;

struct PhantomOptions
{
  int                   subjects = 4;
  std::string           modality = "both";
  std::vector<unsigned> size{ 512, 512, 100 };
  std::vector<double>   fov{ 350, 350, 250 };
  uint64_t              seed = 1;
  std::string           split = "0.6:0.2:0.2";
  std::string           out;
};

// "a:b:c" -> three non-negative fractions summing to 1 (within 1e-6).
std::array<double, 3>
ParseSplit(const std::string & text)
{
  std::array<double, 3> f{};
  char                  c1 = 0, c2 = 0;
  std::istringstream    in(text);
  if (!(in >> f[0] >> c1 >> f[1] >> c2 >> f[2]) || c1 != ':' || c2 != ':' || !(in >> std::ws).eof() || f[0] < 0 ||
      f[1] < 0 || f[2] < 0 || std::abs(f[0] + f[1] + f[2] - 1.0) > 1e-6)
  {
    throw InputError("--split '" + text + "': expected three non-negative fractions TRAIN:VAL:TEST summing to 1");
  }
  return f;
}

uint64_t
SubjectSeed(uint64_t seed, int subject)
{
  return seed * 1000003ULL + static_cast<uint64_t>(subject) * 7919ULL + 17ULL;
}

// Mid-axial and coronal slices, soft-tissue window (W400 L40), label overlay.
using RGBImage = itk::Image<itk::RGBPixel<unsigned char>, 2>;
RGBImage::Pointer
Picture(const Source::CTImageType * ct, const Source::LabelImageType * labels)
{
  const auto                         size = ct->GetLargestPossibleRegion().GetSize();
  const auto                         spacing = ct->GetSpacing();
  const int64_t                      nx = size[0], ny = size[1], nz = size[2];
  const short *                      h = ct->GetBufferPointer();
  const auto *                       l = labels->GetBufferPointer();
  std::array<std::array<int, 3>, 13> colors{};
  for (const auto & organ : Source::GetOrgans())
    colors[organ.label] = organ.color;
  // The CT in gray; each organ's outline in its colour (so the CT itself stays visible), with a light tint inside.
  auto shade = [&](int64_t v, bool boundary, unsigned char * rgb) {
    const double gray = std::clamp((h[v] + 160.0) / 400.0, 0.0, 1.0) * 255.0;
    const int    label = l[v];
    for (int c = 0; c < 3; ++c)
    {
      const double value = label == 0 ? gray : boundary ? colors[label][c] : 0.85 * gray + 0.15 * colors[label][c];
      rgb[c] = static_cast<unsigned char>(std::lround(value));
    }
  };
  auto differs = [&](int64_t v, int64_t w) { return l[v] != l[w]; };
  // Coronal plane through the kidneys (y = +35 mm), head up, resampled to square pixels.
  const auto    origin = ct->GetOrigin();
  const int64_t jc = std::clamp<int64_t>(std::lround((35.0 - origin[1]) / spacing[1]), 0, ny - 1);
  const int64_t coronalRows = std::max<int64_t>(1, std::lround(nz * spacing[2] / spacing[0]));
  const int64_t gap = 8, width = 2 * nx + gap, height = std::max<int64_t>(ny, coronalRows);
  auto          picture = RGBImage::New();
  picture->SetRegions(
    RGBImage::SizeType{ { static_cast<itk::SizeValueType>(width), static_cast<itk::SizeValueType>(height) } });
  picture->Allocate();
  picture->FillBuffer(itk::RGBPixel<unsigned char>(static_cast<unsigned char>(0)));
  auto *        out = reinterpret_cast<unsigned char *>(picture->GetBufferPointer());
  const int64_t kMid = nz / 2;
  for (int64_t j = 0; j < ny; ++j)
    for (int64_t i = 0; i < nx; ++i)
    {
      const int64_t v = (kMid * ny + j) * nx + i;
      const bool    boundary = l[v] != 0 && ((i > 0 && differs(v, v - 1)) || (i + 1 < nx && differs(v, v + 1)) ||
                                          (j > 0 && differs(v, v - nx)) || (j + 1 < ny && differs(v, v + nx)));
      shade(v, boundary, out + 3 * (j * width + i));
    }
  for (int64_t r = 0; r < coronalRows; ++r)
  {
    const int64_t k = std::clamp<int64_t>(nz - 1 - static_cast<int64_t>((r + 0.5) * nz / coronalRows), 0, nz - 1);
    const int64_t kUp = std::clamp<int64_t>(nz - 1 - static_cast<int64_t>((r - 0.5) * nz / coronalRows), 0, nz - 1);
    const int64_t kDown = std::clamp<int64_t>(nz - 1 - static_cast<int64_t>((r + 1.5) * nz / coronalRows), 0, nz - 1);
    for (int64_t i = 0; i < nx; ++i)
    {
      const int64_t v = (k * ny + jc) * nx + i;
      const bool    boundary =
        l[v] != 0 && ((i > 0 && differs(v, v - 1)) || (i + 1 < nx && differs(v, v + 1)) ||
                      differs(v, (kUp * ny + jc) * nx + i) || differs(v, (kDown * ny + jc) * nx + i));
      shade(v, boundary, out + 3 * (r * width + nx + gap + i));
    }
  }
  return picture;
}

int
RunPhantom(const PhantomOptions & o)
{
  if (o.subjects < 1)
    throw InputError("--subjects " + std::to_string(o.subjects) + ": expected at least 1");
  std::vector<Source::ModalityEnum> modalities;
  if (o.modality == "both")
    modalities = { Source::ModalityEnum::NonContrast, Source::ModalityEnum::PortalVenous };
  else if (o.modality == "contrast" || o.modality == "noncontrast")
    modalities = { Source::ParseModality(o.modality) };
  else
    throw InputError("--modality '" + o.modality + "': expected contrast, noncontrast or both");
  if (o.size.size() != 3 || std::any_of(o.size.begin(), o.size.end(), [](unsigned s) { return s == 0 || s > 4096; }))
    throw InputError("--size: expected three voxel counts X Y Z in 1..4096");
  if (o.fov.size() != 3 ||
      std::any_of(o.fov.begin(), o.fov.end(), [](double f) { return !(f > 0) || !std::isfinite(f); }))
    throw InputError("--fov: expected three positive extents X Y Z in mm");
  const auto fractions = ParseSplit(o.split);

  const fs::path  root(o.out);
  std::error_code error;
  fs::create_directories(root / "images", error);
  if (!error)
    fs::create_directories(root / "labels", error);
  if (!error)
    fs::create_directories(root / "pictures", error);
  if (error)
    throw InputError("--out '" + o.out + "': cannot create the output folder (" + error.message() + ")");
  {
    const fs::path probe = root / ".agcl-write-test";
    std::ofstream  test(probe);
    if (!test)
      throw InputError("--out '" + o.out + "': the folder is not writable");
    test.close();
    fs::remove(probe, error);
  }

  // Seeded assignment of subjects to splits; both modalities of a subject share it.
  std::vector<int> order(o.subjects);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 shuffle(o.seed ^ 0x5eedULL);
  for (int i = o.subjects - 1; i > 0; --i)
    std::swap(order[i], order[static_cast<int>(shuffle() % static_cast<uint64_t>(i + 1))]);
  const int nTrain = static_cast<int>(std::lround(o.subjects * fractions[0]));
  const int nVal = std::min(o.subjects - nTrain, static_cast<int>(std::lround(o.subjects * fractions[1])));
  std::vector<std::string> split(o.subjects, "test");
  for (int r = 0; r < o.subjects; ++r)
    split[order[r]] = r < nTrain ? "train" : (r < nTrain + nVal ? "val" : "test");

  std::ostringstream manifest;
  manifest << "subject,image,label,modality,split\n";
  for (int s = 0; s < o.subjects; ++s)
  {
    char id[32];
    std::snprintf(id, sizeof(id), "subject_%03d", s);
    for (Source::ModalityEnum modality : modalities)
    {
      auto                    source = Source::New();
      Source::SizeType        size;
      Source::FieldOfViewType fov;
      for (unsigned d = 0; d < 3; ++d)
      {
        size[d] = o.size[d];
        fov[d] = o.fov[d];
      }
      source->SetSize(size);
      source->SetFieldOfView(fov);
      source->SetSeed(SubjectSeed(o.seed, s));
      source->SetModality(modality);
      source->Update();
      const std::string name = std::string(id) + "_" + Source::GetModalityName(modality);
      const fs::path    image = fs::path("images") / (name + ".nii.gz");
      const fs::path    label = fs::path("labels") / (name + "_label.nii.gz");
      itk::WriteImageAtomically(source->GetOutput(), root / image);
      itk::WriteImageAtomically(source->GetLabelOutput(), root / label);
      auto picture = Picture(source->GetOutput(), source->GetLabelOutput());
      itk::WriteImageAtomically(picture.GetPointer(), root / "pictures" / (name + ".png"));
      manifest << id << "," << image.string() << "," << label.string() << "," << Source::GetModalityName(modality)
               << "," << split[s] << "\n";
      std::cout << "wrote " << name << " (" << split[s] << ", noise sigma " << std::setprecision(3)
                << source->GetNoiseSigma() << " HU)" << std::endl;
    }
  }

  // Label descriptions: ITK-SNAP's format and a 3D Slicer colour table.
  std::vector<itk::LabelDescription> descriptions;
  for (const auto & organ : Source::GetOrgans())
  {
    descriptions.push_back({ int(organ.label), organ.name, { organ.color[0], organ.color[1], organ.color[2] } });
  }
  itk::WriteLabelDescriptions(root, descriptions, "AGCL phantom, BTCV label values");
  WriteTextAtomically(root / "manifest.csv", manifest.str());
  std::cout << "wrote " << (root / "manifest.csv").string() << std::endl;
  return kSuccess;
}
} // namespace

void
RegisterPhantom(CLI::App & app, Runner & runner)
{
  auto       o = std::make_shared<PhantomOptions>();
  CLI::App * sub = app.add_subcommand("phantom", "Generate a synthetic abdominal CT cohort with 12-organ label maps");
  sub->add_option("--subjects", o->subjects, "Number of subjects")->capture_default_str();
  sub->add_option("--modality", o->modality, "contrast (portal venous), noncontrast or both")->capture_default_str();
  sub->add_option("--size", o->size, "Voxels X Y Z (the field of view stays fixed; this sets the spacing)")
    ->expected(3)
    ->capture_default_str();
  sub->add_option("--fov", o->fov, "Field of view X Y Z in mm")->expected(3)->capture_default_str();
  sub->add_option("--seed", o->seed, "Seed: same seed and parameters give bit-identical files")->capture_default_str();
  sub->add_option("--split", o->split, "TRAIN:VAL:TEST fractions of the subjects")->capture_default_str();
  sub->add_option("--out", o->out, "Output folder")->required();
  sub->callback([&runner, o]() { runner = [o]() { return RunPhantom(*o); }; });
}

} // namespace agcl::cli
