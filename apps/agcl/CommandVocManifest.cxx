/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// agcl voc-manifest: the manifest of a PASCAL VOC 2012 folder (or of agcl scenes' output), for
// agcl train and agcl evaluate. Reads the standard layout (JPEGImages/*.jpg,
// SegmentationClass/*.png palette label maps, ImageSets/Segmentation/{train,val}.txt) and the
// augmented training set the paper's 10 582 images come from (SegmentationClassAug/*.png
// single-channel labels, train_aug.txt). Every listed pair is checked before anything is
// written: both files exist, the photograph has 1 or 3 channels, the label map is an 8-bit
// palette or greyscale PNG (not an RGB picture of the labels), and the two have the same size.

#include "Manifest.h"
#include "OutputFiles.h"
#include "Subcommands.h"

#include "itkImageIOBase.h"
#include "itkImageIOFactory.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>

namespace agcl::cli {

namespace {
namespace fs = std::filesystem;

struct VocManifestOptions
{
  std::string root;
  std::string out;
  std::string trainSet = "auto";
  std::string modality = "voc";
};

/** The image ids of a VOC list file. A line is an id ("2007_000032") or, as the augmented set's
 *  train_aug.txt has it, two paths ("/JPEGImages/2007_000032.jpg /SegmentationClassAug/2007_000032.png"). */
std::vector<std::string>
ReadIdList(const fs::path & file)
{
  std::ifstream in(file);
  if (!in)
    throw InputError("'" + file.string() + "': cannot read the list");
  std::vector<std::string> ids;
  std::set<std::string>    seen;
  std::string              line;
  int                      number = 0;
  while (std::getline(in, line))
  {
    ++number;
    std::istringstream words(line);
    std::string        first, second, extra;
    if (!(words >> first))
      continue; // blank line
    words >> second >> extra;
    if (!extra.empty())
    {
      throw InputError("'" + file.string() + "' line " + std::to_string(number) +
                       ": expected an image id or two paths (image, label), got more words");
    }
    const std::string id = second.empty() ? first : fs::path(first).stem().string();
    if (id.empty() || id.find('/') != std::string::npos || id == "." || id == "..")
      throw InputError("'" + file.string() + "' line " + std::to_string(number) + ": '" + line +
                       "' is not an image id");
    if (!seen.insert(id).second)
      throw InputError("'" + file.string() + "' line " + std::to_string(number) + ": the id '" + id +
                       "' is listed twice");
    ids.push_back(id);
  }
  if (ids.empty())
    throw InputError("'" + file.string() + "': the list is empty");
  return ids;
}

/** Size and channels of an image file from its header (no pixels read). */
struct Header
{
  std::vector<size_t> size;
  unsigned            components = 0;
  bool                palette = false;
  std::string         componentType, pixelType;
};

Header
ReadHeader(const fs::path & file, const std::string & what)
{
  std::error_code error;
  if (!fs::is_regular_file(file, error))
    throw InputError(what + " '" + file.string() + "': no such file");
  itk::ImageIOBase::Pointer io =
    itk::ImageIOFactory::CreateImageIO(file.c_str(), itk::ImageIOFactory::IOFileModeEnum::ReadMode);
  if (!io)
    throw InputError(what + " '" + file.string() + "': not an image ITK can read");
  io->SetExpandRGBPalette(false);
  io->SetFileName(file.string());
  try
  {
    io->ReadImageInformation();
  }
  catch (const itk::ExceptionObject & e)
  {
    throw InputError(what + " '" + file.string() + "': " + e.GetDescription());
  }
  Header header;
  for (unsigned d = 0; d < io->GetNumberOfDimensions(); ++d)
    header.size.push_back(io->GetDimensions(d));
  while (header.size.size() > 2 && header.size.back() == 1)
    header.size.pop_back();
  header.components = io->GetNumberOfComponents();
  header.palette = io->GetIsReadAsScalarPlusPalette();
  header.componentType = itk::ImageIOBase::GetComponentTypeAsString(io->GetComponentType());
  header.pixelType = itk::ImageIOBase::GetPixelTypeAsString(io->GetPixelType());
  return header;
}

std::string
SizeText(const std::vector<size_t> & size)
{
  std::string text;
  for (size_t d = 0; d < size.size(); ++d)
    text += (d ? " x " : "") + std::to_string(size[d]);
  return text;
}

/** The problem of one image/label pair, or "" when it is fine. */
std::string
CheckPair(const fs::path & image, const fs::path & label, bool paletteExpected)
{
  try
  {
    const Header photo = ReadHeader(image, "image");
    const Header labels = ReadHeader(label, "label map");
    if (photo.size.size() != 2)
      return "image '" + image.string() + "': " + SizeText(photo.size) + " is not a 2D picture";
    if (photo.components != 1 && photo.components != 3)
      return "image '" + image.string() + "': " + std::to_string(photo.components) +
             " channels; expected an RGB (3) or greyscale (1) picture";
    if (labels.components != 1)
    {
      return "label map '" + label.string() + "': " + std::to_string(labels.components) + " channels (" +
             labels.pixelType + "); expected " +
             (paletteExpected ? "a palette (indexed) PNG, as VOC's SegmentationClass ships"
                              : "a single-channel PNG of class indices, as SegmentationClassAug ships") +
             ", not a colour picture of the labels";
    }
    if (labels.componentType != "unsigned_char")
      return "label map '" + label.string() + "': " + labels.componentType + " pixels; expected 8-bit class indices";
    if (labels.size != photo.size)
      return "label map '" + label.string() + "' is " + SizeText(labels.size) + " pixels but its image '" +
             image.string() + "' is " + SizeText(photo.size);
  }
  catch (const InputError & e)
  {
    return e.what();
  }
  return "";
}

/** A path as the manifest writes it: relative to the manifest's folder when it can be. */
std::string
ManifestPath(const fs::path & file, const fs::path & manifestFolder)
{
  std::error_code error;
  const fs::path  relative = fs::relative(fs::absolute(file), fs::absolute(manifestFolder), error);
  return error || relative.empty() ? fs::absolute(file).lexically_normal().string() : relative.string();
}

int
RunVocManifest(const VocManifestOptions & o)
{
  const fs::path root(o.root);
  if (!fs::is_directory(root))
    throw InputError("'" + o.root + "': not a folder (expected a VOC2012 folder, e.g. VOCdevkit/VOC2012)");
  if (!fs::is_directory(root / "JPEGImages") || !fs::is_directory(root / "ImageSets" / "Segmentation"))
  {
    std::string hint;
    if (fs::is_directory(root / "VOC2012"))
      hint = "; did you mean '" + (root / "VOC2012").string() + "'?";
    throw InputError("'" + o.root + "': no JPEGImages/ and ImageSets/Segmentation/ folders: not a VOC2012 folder" +
                     hint);
  }
  if (o.modality.empty() || o.modality.find(',') != std::string::npos)
    throw InputError("--modality '" + o.modality + "': expected a non-empty name without commas");
  const fs::path sets = root / "ImageSets" / "Segmentation";
  // The training list: the augmented set when asked for (or, with auto, when it is there).
  fs::path augList = sets / "train_aug.txt";
  if (!fs::exists(augList) && fs::exists(root / "train_aug.txt"))
    augList = root / "train_aug.txt";
  const bool augPresent = fs::exists(augList) && fs::is_directory(root / "SegmentationClassAug");
  bool       useAug = o.trainSet == "train_aug" || (o.trainSet == "auto" && augPresent);
  if (o.trainSet == "train_aug" && !augPresent)
  {
    throw InputError("--train-set train_aug: '" + o.root +
                     "' has no ImageSets/Segmentation/train_aug.txt (or train_aug.txt) with a SegmentationClassAug/ "
                     "folder");
  }
  if (!fs::exists(sets / "val.txt"))
    throw InputError("'" + (sets / "val.txt").string() + "': no such file (the validation list)");
  if (!useAug && !fs::exists(sets / "train.txt"))
    throw InputError("'" + (sets / "train.txt").string() + "': no such file (the training list)");
  const auto val = ReadIdList(sets / "val.txt");
  auto       train = ReadIdList(useAug ? augList : sets / "train.txt");
  // The augmented set must not hold validation images: they are dropped from it (and counted).
  const std::set<std::string> valIds(val.begin(), val.end());
  const size_t                listed = train.size();
  train.erase(std::remove_if(train.begin(), train.end(), [&](const std::string & id) { return valIds.count(id) > 0; }),
              train.end());
  const size_t dropped = listed - train.size();
  if (!useAug && dropped > 0)
    throw InputError("'" + (sets / "train.txt").string() + "': " + std::to_string(dropped) +
                     " id(s) are in val.txt too; the two lists must not overlap");

  const fs::path             out(o.out);
  const fs::path             folder = out.parent_path().empty() ? fs::path(".") : out.parent_path();
  std::ostringstream         csv;
  std::vector<std::string>   problems;
  std::map<std::string, int> counts;
  csv << "subject,image,label,modality,split\n";
  auto add = [&](const std::string & id, const std::string & split, const fs::path & labelFolder, bool palette) {
    const fs::path    image = root / "JPEGImages" / (id + ".jpg");
    const fs::path    label = labelFolder / (id + ".png");
    const std::string problem = CheckPair(image, label, palette);
    if (!problem.empty())
    {
      problems.push_back(problem);
      return;
    }
    csv << id << "," << ManifestPath(image, folder) << "," << ManifestPath(label, folder) << "," << o.modality << ","
        << split << "\n";
    ++counts[split];
  };
  for (const auto & id : train)
    add(id, "train", useAug ? root / "SegmentationClassAug" : root / "SegmentationClass", !useAug);
  for (const auto & id : val)
    add(id, "val", root / "SegmentationClass", true);
  if (!problems.empty())
  {
    std::ostringstream message;
    message << problems.size() << " of " << train.size() + val.size()
            << " listed image(s) cannot be used; nothing written. First:";
    for (size_t i = 0; i < std::min<size_t>(problems.size(), 5); ++i)
      message << "\n  " << problems[i];
    throw InputError(message.str());
  }
  std::error_code error;
  if (!folder.empty())
    fs::create_directories(folder, error);
  WriteTextAtomically(out, csv.str());
  std::cout << "wrote " << out.string() << ": " << counts["train"] << " training images ("
            << (useAug ? "augmented set, " + augList.filename().string() + ", SegmentationClassAug"
                       : std::string("train.txt, SegmentationClass"))
            << (dropped ? ", " + std::to_string(dropped) + " validation id(s) left out of it" : std::string()) << "), "
            << counts["val"] << " validation images (val.txt, SegmentationClass); modality '" << o.modality << "'"
            << std::endl;
  return kSuccess;
}
} // namespace

void
RegisterVocManifest(CLI::App & app, Runner & runner)
{
  auto       options = std::make_shared<VocManifestOptions>();
  CLI::App * sub = app.add_subcommand(
    "voc-manifest",
    "Writes the manifest (subject,image,label,modality,split) of a PASCAL VOC 2012 folder for agcl train and agcl "
    "evaluate: the training list as split 'train', val.txt as split 'val'. Reads JPEGImages/, SegmentationClass/ "
    "(palette PNGs read as class indices; 255 is void) and ImageSets/Segmentation/, and the augmented training set "
    "(SegmentationClassAug/, train_aug.txt) when present. Every pair is checked first; nothing is written if one "
    "fails.");
  sub->add_option("root", options->root, "the VOC2012 folder (e.g. VOCdevkit/VOC2012)")->required();
  sub->add_option("--out", options->out, "manifest CSV to write (paths relative to its folder)")->required();
  sub
    ->add_option("--train-set",
                 options->trainSet,
                 "training list: train (train.txt, SegmentationClass), train_aug (train_aug.txt, SegmentationClassAug, "
                 "without the val images), auto (train_aug when it is there)")
    ->check(CLI::IsMember({ "auto", "train", "train_aug" }));
  sub->add_option("--modality",
                  options->modality,
                  "the value of the modality column (one source: Eq. 3 then conditions on the class alone)");
  sub->callback([options, &runner] { runner = [options] { return RunVocManifest(*options); }; });
}

} // namespace agcl::cli
