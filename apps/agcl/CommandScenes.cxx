/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// agcl scenes: a small synthetic set of photograph-like RGB scenes in PASCAL VOC 2012's layout
// (JPEGImages/*.jpg, SegmentationClass/*.png palette label maps with a void band around every
// object, ImageSets/Segmentation/{train,val,trainval}.txt), so that the VOC reader, the 2D
// trainer and the mean-IoU evaluation are tested on the files a VOC user gives them. With --aug
// also the augmented set's layout (SegmentationClassAug/*.png greyscale labels, train_aug.txt).

#include "OutputFiles.h"
#include "Subcommands.h"

#include "itkImage.h"
#include "itkJPEGImageIO.h"
#include "itkPNGImageIO.h"
#include "itkRGBPixel.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <random>
#include <sstream>

namespace agcl::cli {

namespace {
namespace fs = std::filesystem;
using RGBImage = itk::Image<itk::RGBPixel<unsigned char>, 2>;
using IndexImage = itk::Image<unsigned char, 2>;

constexpr unsigned char kVoid = 255;
constexpr double        kPi = 3.14159265358979323846;

struct ScenesOptions
{
  std::string           out;
  unsigned              train = 24;
  unsigned              val = 8;
  std::vector<unsigned> size{ 160, 120 };
  unsigned              classes = 5;
  unsigned              maxObjects = 3;
  unsigned              voidWidth = 2;
  uint64_t              seed = 1;
  bool                  aug = false;
};

/** One object class of the scenes: its name, shape, base colour and texture. */
struct SceneClass
{
  const char *          name;
  std::array<double, 3> colour;
  bool (*inside)(double u, double v);    // unit shape, radius 1
  double (*texture)(double u, double v); // -1..1 shading across the object
};

const std::array<SceneClass, 8> &
SceneClasses()
{
  static const std::array<SceneClass, 8> classes = { {
    { "disc",
      { 200, 40, 40 },
      [](double u, double v) { return u * u + v * v <= 1.0; },
      [](double u, double v) { return 0.8 * std::cos(3.0 * std::hypot(u, v)) - 0.4; } },
    { "box",
      { 40, 70, 190 },
      [](double u, double v) { return std::abs(u) <= 0.95 && std::abs(v) <= 0.65; },
      [](double u, double) { return std::sin(14.0 * u); } },
    { "triangle",
      { 50, 160, 60 },
      [](double u, double v) { return v >= -0.5 && 1.7320508 * std::abs(u) <= 1.0 - v; },
      [](double u, double v) { return std::sin(9.0 * u) * std::sin(9.0 * v) > 0 ? 0.8 : -0.8; } },
    { "ring",
      { 220, 200, 50 },
      [](double u, double v) {
        const double                     r = std::hypot(u, v);
        return r <= 1.0 && r >= 0.55;
      },
      [](double u, double v) { return std::sin(6.0 * std::atan2(v, u)); } },
    { "cross",
      { 150, 60, 170 },
      [](double u, double v) {
        return (std::abs(u) <= 0.3 && std::abs(v) <= 1.0) || (std::abs(v) <= 0.3 && std::abs(u) <= 1.0);
      },
      [](double u, double v) { return std::sin(10.0 * u) * std::sin(10.0 * v) > 0.3 ? 1.0 : -0.3; } },
    { "star",
      { 60, 190, 200 },
      [](double u, double v) { return std::hypot(u, v) <= 0.5 + 0.5 * std::cos(5.0 * std::atan2(v, u)); },
      [](double, double v) { return v; } },
    { "diamond",
      { 230, 130, 40 },
      [](double u, double v) { return std::abs(u) + std::abs(v) <= 1.0; },
      [](double, double v) { return std::sin(20.0 * v); } },
    { "crescent",
      { 230, 230, 220 },
      [](double u, double v) { return u * u + v * v <= 1.0 && (u - 0.45) * (u - 0.45) + v * v > 0.5625; },
      [](double u, double v) { return 0.5 * std::sin(5.0 * (u + v)); } },
  } };
  return classes;
}

struct Scene
{
  RGBImage::Pointer   image;
  IndexImage::Pointer labels;
};

Scene
Render(unsigned width, unsigned height, const ScenesOptions & o, std::mt19937_64 & rng)
{
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::normal_distribution<double>       gauss(0.0, 1.0);
  const size_t                           n = static_cast<size_t>(width) * height;
  std::vector<double>                    rgb(3 * n);
  std::vector<unsigned char>             label(n, 0);

  // Background: a tinted, textured field (low-frequency waves and a vertical gradient, as in
  // a landscape or a room), different in every scene.
  std::array<double, 3> base{}, second{};
  for (int c = 0; c < 3; ++c)
  {
    base[c] = 60 + 120 * unit(rng);
    second[c] = 40 + 150 * unit(rng);
  }
  const double fx = 2 + 10 * unit(rng), fy = 2 + 10 * unit(rng), phase = 2 * kPi * unit(rng);
  const double horizon = 0.3 + 0.4 * unit(rng), waves = 0.1 + 0.25 * unit(rng);
  for (unsigned y = 0; y < height; ++y)
    for (unsigned x = 0; x < width; ++x)
    {
      const double u = static_cast<double>(x) / width, v = static_cast<double>(y) / height;
      const double mix = std::clamp(0.5 + (v - horizon) * 3.0, 0.0, 1.0);
      const double wave = waves * std::sin(2 * kPi * (fx * u + 0.3 * fy * v) + phase) * std::cos(2 * kPi * fy * v);
      for (int c = 0; c < 3; ++c)
        rgb[3 * (y * width + x) + c] = ((1 - mix) * base[c] + mix * second[c]) * (1.0 + wave);
    }

  // Objects, drawn in order: a later one occludes the earlier ones where they overlap.
  std::uniform_int_distribution<unsigned> pickClass(1, o.classes), pickCount(1, o.maxObjects);
  const unsigned                          objects = pickCount(rng);
  const double                            shortSide = std::min(width, height);
  for (unsigned k = 0; k < objects; ++k)
  {
    const unsigned        cls = pickClass(rng);
    const SceneClass &    sc = SceneClasses()[cls - 1];
    const double          radius = shortSide * (0.12 + 0.28 * unit(rng));
    const double          aspect = 0.75 + 0.5 * unit(rng);
    const double          angle = 2 * kPi * unit(rng);
    const double          cx = width * (0.1 + 0.8 * unit(rng)), cy = height * (0.1 + 0.8 * unit(rng));
    const double          brightness = 0.75 + 0.5 * unit(rng), contrast = 20 + 25 * unit(rng);
    std::array<double, 3> colour{};
    for (int c = 0; c < 3; ++c)
      colour[c] = std::clamp(sc.colour[c] * brightness + 15 * gauss(rng), 0.0, 255.0);
    const double ca = std::cos(angle), sa = std::sin(angle);
    for (unsigned y = 0; y < height; ++y)
      for (unsigned x = 0; x < width; ++x)
      {
        const double dx = (x + 0.5 - cx) / radius, dy = (y + 0.5 - cy) / radius;
        const double u = (ca * dx + sa * dy) / aspect, v = (-sa * dx + ca * dy) * aspect;
        if (!sc.inside(u, v))
          continue;
        const size_t p = static_cast<size_t>(y) * width + x;
        label[p] = static_cast<unsigned char>(cls);
        const double shade = contrast * sc.texture(u, v);
        for (int c = 0; c < 3; ++c)
          rgb[3 * p + c] = colour[c] + shade;
      }
  }

  // Sensor noise, then 8 bits.
  auto image = RGBImage::New();
  image->SetRegions(RGBImage::SizeType{ { width, height } });
  image->Allocate();
  auto * out = reinterpret_cast<unsigned char *>(image->GetBufferPointer());
  for (size_t i = 0; i < 3 * n; ++i)
    out[i] = static_cast<unsigned char>(std::lround(std::clamp(rgb[i] + 6.0 * gauss(rng), 0.0, 255.0)));

  // VOC marks a band around every object outline as void (255): pixels within voidWidth
  // (Chebyshev distance) of a pixel with another label.
  auto labels = IndexImage::New();
  labels->SetRegions(IndexImage::SizeType{ { width, height } });
  labels->Allocate();
  unsigned char * l = labels->GetBufferPointer();
  const int       w = static_cast<int>(o.voidWidth);
  for (int y = 0; y < static_cast<int>(height); ++y)
    for (int x = 0; x < static_cast<int>(width); ++x)
    {
      const unsigned char own = label[static_cast<size_t>(y) * width + x];
      bool                edge = false;
      for (int dy = -w; dy <= w && !edge; ++dy)
        for (int dx = -w; dx <= w && !edge; ++dx)
        {
          const int xx = x + dx, yy = y + dy;
          if (xx >= 0 && yy >= 0 && xx < static_cast<int>(width) && yy < static_cast<int>(height))
            edge = label[static_cast<size_t>(yy) * width + xx] != own;
        }
      l[static_cast<size_t>(y) * width + x] = edge ? kVoid : own;
    }
  return { image, labels };
}

void
WriteList(const fs::path & file, const std::vector<std::string> & lines)
{
  std::ostringstream text;
  for (const auto & line : lines)
    text << line << "\n";
  WriteTextAtomically(file, text.str());
}

int
RunScenes(const ScenesOptions & o)
{
  if (o.size.size() != 2 || o.size[0] < 16 || o.size[1] < 16 || o.size[0] > 4096 || o.size[1] > 4096)
    throw InputError("--size: expected two pixel counts WIDTH HEIGHT in 16..4096");
  if (o.classes < 1 || o.classes > SceneClasses().size())
    throw InputError("--classes " + std::to_string(o.classes) + ": expected 1.." +
                     std::to_string(SceneClasses().size()));
  if (o.train + o.val == 0)
    throw InputError("--train and --val: at least one scene");
  const fs::path  root(o.out);
  std::error_code error;
  for (const char * folder : { "JPEGImages", "SegmentationClass", "ImageSets/Segmentation" })
    fs::create_directories(root / folder, error);
  if (o.aug && !error)
    fs::create_directories(root / "SegmentationClassAug", error);
  if (error)
    throw InputError("--out '" + o.out + "': cannot create the output folders (" + error.message() + ")");

  const auto               palette = VocPalette();
  std::mt19937_64          rng(o.seed * 6364136223846793005ULL + 1442695040888963407ULL);
  std::vector<std::string> train, val, trainAug;
  for (unsigned s = 0; s < o.train + o.val; ++s)
  {
    std::ostringstream id;
    id << "scene_" << std::setw(6) << std::setfill('0') << s;
    const Scene scene = Render(o.size[0], o.size[1], o, rng);
    try
    {
      auto jpeg = itk::JPEGImageIO::New();
      jpeg->SetQuality(92);
      itk::WriteImageAtomically(scene.image.GetPointer(), root / "JPEGImages" / (id.str() + ".jpg"), jpeg);
      auto png = itk::PNGImageIO::New();
      png->SetWritePalette(true);
      png->SetColorPalette(palette);
      itk::WriteImageAtomically(scene.labels.GetPointer(), root / "SegmentationClass" / (id.str() + ".png"), png);
      if (o.aug && s < o.train)
        itk::WriteImageAtomically(
          scene.labels.GetPointer(), root / "SegmentationClassAug" / (id.str() + ".png"), itk::PNGImageIO::New());
    }
    catch (const itk::ExceptionObject & e)
    {
      throw InputError(std::string("--out '") + o.out + "': " + e.GetDescription());
    }
    (s < o.train ? train : val).push_back(id.str());
    if (s < o.train)
      trainAug.push_back("/JPEGImages/" + id.str() + ".jpg /SegmentationClassAug/" + id.str() + ".png");
  }
  const fs::path sets = root / "ImageSets" / "Segmentation";
  WriteList(sets / "train.txt", train);
  WriteList(sets / "val.txt", val);
  std::vector<std::string> trainval = train;
  trainval.insert(trainval.end(), val.begin(), val.end());
  WriteList(sets / "trainval.txt", trainval);
  if (o.aug)
    WriteList(sets / "train_aug.txt", trainAug);
  std::ostringstream classes;
  classes << "label,name\n0,background\n";
  for (unsigned c = 1; c <= o.classes; ++c)
    classes << c << "," << SceneClasses()[c - 1].name << "\n";
  WriteTextAtomically(root / "classes.csv", classes.str());
  std::cout << "wrote " << o.train << " training and " << o.val << " validation scenes of " << o.size[0] << " x "
            << o.size[1] << " pixels (" << o.classes << " object classes, void " << +kVoid << " within " << o.voidWidth
            << " px of every outline) to " << root.string() << std::endl;
  return kSuccess;
}
} // namespace

void
RegisterScenes(CLI::App & app, Runner & runner)
{
  auto       options = std::make_shared<ScenesOptions>();
  CLI::App * sub = app.add_subcommand(
    "scenes",
    "Writes synthetic photograph-like RGB scenes in PASCAL VOC 2012's layout (JPEGImages/*.jpg, "
    "SegmentationClass/*.png "
    "palette label maps with void 255 around the outlines, ImageSets/Segmentation/{train,val,trainval}.txt, "
    "classes.csv): textured backgrounds, objects of distinct shapes, colours and textures at varied scale, "
    "position and rotation, occluding each other. For tests and demos of the 2D path; not photographs.");
  sub->add_option("--out", options->out, "the VOC2012-like folder to write")->required();
  sub->add_option("--train", options->train, "training scenes")->check(CLI::Range(0, 100000));
  sub->add_option("--val", options->val, "validation scenes")->check(CLI::Range(0, 100000));
  sub->add_option("--size", options->size, "WIDTH HEIGHT in pixels")->expected(2);
  sub->add_option("--classes", options->classes, "object classes (1..8; labels 1..N, background 0)");
  sub->add_option("--max-objects", options->maxObjects, "at most this many objects per scene (at least 1)")
    ->check(CLI::Range(1, 64));
  sub->add_option("--void-width", options->voidWidth, "width of the void band around each outline, in pixels")
    ->check(CLI::Range(0, 16));
  sub->add_option("--seed", options->seed, "random seed");
  sub->add_flag("--aug",
                options->aug,
                "also write the augmented set's layout: SegmentationClassAug/*.png (greyscale labels) and "
                "ImageSets/Segmentation/train_aug.txt for the training scenes");
  sub->callback([options, &runner] { runner = [options] { return RunScenes(*options); }; });
}

} // namespace agcl::cli
