/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// agcl segment: segments one or many CT volumes (files ITK reads, DICOM series directories, or
// the images of a manifest) with a model bundle, through itk::AGCLSegmentationFilter.

#include "Manifest.h"
#include "OutputFiles.h"
#include "ReadImage.h"
#include "Subcommands.h"

#include "itkAGCLSegmentationFilter.h"
#include "itkReadPicture.h"
#include "itkAbdominalPhantomImageSource.h"
#include "itkVerifyFiniteImage.h"
#include "itkVerifyImageGeometry.h"

#include "agcl/AGCLModel.h"
#include "agcl/BuildInfo.h"
#include "agcl/Device.h"
#include "agcl/TorchCompat.h"
#include "agcl/JsonInput.h"
#include "agcl/PictureStages.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

namespace agcl::cli {

namespace {
namespace fs = std::filesystem;
using CTImage = itk::Image<float, 3>;
using LabelImage = itk::Image<unsigned char, 3>;

struct SegmentOptions
{
  std::string              model;
  std::vector<std::string> inputs;
  std::string              manifest;
  std::string              split = "all";
  std::string              out;
  std::string              device = "cpu";
  std::string              precision = "float32";
  unsigned                 batchSize = 32;
  unsigned                 slab = 16;
  std::string              shard = "0/1";
  bool                     noPostProcessing = false;
  bool                     skipExisting = false;
  bool                     saveCoarse = false;
  bool                     saveAttention = false;
  bool                     oracleAttention = false;
};

using AttentionImage = itk::Image<uint32_t, 3>;

/** The organs' attention maps in one image: bit o (value 2^o) set where organ o of the model's
 *  config (in its order) has attention. */
AttentionImage::Pointer
AttentionBits(const itk::AGCLSegmentationFilter<CTImage, LabelImage> & segment, const agcl::ModelConfig & config)
{
  auto bits = AttentionImage::New();
  bits->CopyInformation(segment.GetOutput());
  bits->SetRegions(segment.GetOutput()->GetLargestPossibleRegion());
  bits->Allocate();
  bits->FillBuffer(0);
  uint32_t *   out = bits->GetBufferPointer();
  const size_t n = bits->GetLargestPossibleRegion().GetNumberOfPixels();
  for (size_t o = 0; o < config.organs.size(); ++o)
  {
    const unsigned char * in =
      segment.GetAttentionMap(static_cast<unsigned char>(config.organs[o].label))->GetBufferPointer();
    for (size_t v = 0; v < n; ++v)
      if (in[v] != 0)
        out[v] |= uint32_t{ 1 } << o;
  }
  return bits;
}

/** "i/n" with 0 <= i < n. */
std::pair<unsigned, unsigned>
ParseShard(const std::string & text)
{
  unsigned           i = 0, n = 0;
  char               slash = 0;
  std::istringstream in(text);
  if (!(in >> i >> slash >> n) || slash != '/' || !(in >> std::ws).eof() || n == 0 || i >= n)
  {
    throw InputError("--shard '" + text + "': expected i/n with 0 <= i < n (this machine's share of n)");
  }
  return { i, n };
}

std::vector<itk::LabelDescription>
Descriptions(const agcl::ModelConfig & config)
{
  std::map<std::string, std::array<int, 3>> known;
  for (const auto & organ : itk::AbdominalPhantomImageSource::GetOrgans())
    known[organ.name] = organ.color;
  std::vector<itk::LabelDescription> descriptions;
  for (size_t i = 0; i < config.organs.size(); ++i)
  {
    const auto & organ = config.organs[i];
    const auto   it = known.find(organ.name);
    const int    hue = static_cast<int>(i * 67 % 255);
    descriptions.push_back({ static_cast<int>(organ.label),
                             organ.name,
                             it != known.end() ? it->second : std::array<int, 3>{ hue, 255 - hue, (hue * 3) % 255 } });
  }
  return descriptions;
}

/** A 2D model's picture (issue 19): the core's picture stages (agcl::SegmentPicture); the label
 *  map as a palette PNG in PASCAL VOC's colours, with the picture's grid; the organ report as
 *  areas in pixels and, from the file's spacing, mm^2. No post-processing (a class may have
 *  several objects). Returns the number of query patches. */
int64_t
SegmentPictureFile(const std::string &    input,
                   itk::AGCLModelObject & model,
                   const SegmentOptions & options,
                   const fs::path &       target,
                   const fs::path &       organsFile,
                   const fs::path &       coarseFile)
{
  itk::PictureFile file;
  try
  {
    file = itk::ReadPicture(input, "picture", static_cast<unsigned int>(model.GetConfig().image_channels));
  }
  catch (const itk::ExceptionObject & e)
  {
    throw InputError(e.GetDescription());
  }
  const agcl::ModelConfig & config = model.GetConfig();
  agcl::PictureSegmentation result;
  try
  {
    result = agcl::SegmentPicture(
      model.GetModel(), file.picture, agcl::ParseDevice(options.device), 0.25, static_cast<int64_t>(options.batchSize));
  }
  catch (const std::exception & e)
  {
    throw itk::ExceptionObject(__FILE__, __LINE__, e.what(), ITK_LOCATION);
  }
  using PictureLabels = itk::Image<unsigned char, 2>;
  auto toImage = [&](const at::Tensor & labels) {
    auto image = PictureLabels::New();
    image->CopyInformation(file.geometry);
    image->SetRegions(file.geometry->GetLargestPossibleRegion());
    image->Allocate();
    std::copy_n(labels.contiguous().data_ptr<uint8_t>(), labels.numel(), image->GetBufferPointer());
    return image;
  };
  auto writePalette = [&](const PictureLabels * image, const fs::path & path) {
    auto png = itk::PNGImageIO::New();
    png->SetWritePalette(true);
    png->SetColorPalette(VocPalette());
    itk::WriteImageAtomically(image, path, png);
  };
  writePalette(toImage(result.labels), target);
  const auto   spacing = file.geometry->GetSpacing();
  const double pixelArea = spacing[0] * spacing[1];
  std::string  csv = "organ,label,pixels,area_mm2\n";
  for (const auto & organ : config.organs)
  {
    const int64_t pixels = result.labels.eq(organ.label).sum().item<int64_t>();
    csv += organ.name + "," + std::to_string(organ.label) + "," + std::to_string(pixels) + "," +
           Fixed(static_cast<double>(pixels) * pixelArea, 3) + "\n";
  }
  WriteTextAtomically(organsFile, csv);
  std::error_code ignored;
  if (options.saveCoarse)
    writePalette(toImage(result.coarse), coarseFile);
  else
    fs::remove(coarseFile, ignored);
  return result.patches;
}

int
RunSegment(const SegmentOptions & options)
{
  const auto [shardIndex, shardCount] = ParseShard(options.shard);
  try
  {
    agcl::ParseDevice(options.device);
  }
  catch (const std::exception & e)
  {
    throw InputError(std::string("--device: ") + e.what());
  }
  try
  {
    agcl::ParsePrecision(options.precision, agcl::ParseDevice(options.device).type());
  }
  catch (const std::exception & e)
  {
    throw InputError(std::string("--precision: ") + e.what());
  }
  if (options.batchSize == 0 || options.slab == 0)
  {
    throw InputError("--batch-size and --slab: expected at least 1");
  }
  std::vector<std::string>           inputs = options.inputs;
  std::map<std::string, std::string> referenceOf; // --oracle-attention: image -> its label map
  if (options.oracleAttention && (options.manifest.empty() || !options.inputs.empty()))
  {
    throw InputError("--oracle-attention: expected --manifest (with a label column) and no other inputs");
  }
  if (!options.manifest.empty())
  {
    for (const auto & row : ReadManifest(options.manifest,
                                         options.oracleAttention ? std::vector<std::string>{ "image", "label" }
                                                                 : std::vector<std::string>{ "image" },
                                         options.split))
    {
      inputs.push_back(row.image);
      if (options.oracleAttention)
      {
        if (row.label.empty())
          throw InputError("--oracle-attention: manifest '" + options.manifest + "' has no label map for '" +
                           row.image + "'");
        referenceOf[row.image] = row.label;
      }
    }
  }
  if (inputs.empty())
  {
    throw InputError("no input: give volumes (files or DICOM directories) or --manifest");
  }
  std::set<std::string> names;
  for (const auto & input : inputs)
  {
    if (!names.insert(VolumeName(input)).second)
    {
      throw InputError("two inputs would write the same output '" + VolumeName(input) + ".nii.gz' (e.g. '" + input +
                       "'): give them distinct names");
    }
  }

  auto model = itk::AGCLModelObject::New();
  try
  {
    model->Load(options.model);
  }
  catch (const itk::ExceptionObject & e)
  {
    throw InputError(std::string("--model: ") + e.GetDescription());
  }

  const fs::path  out = options.out;
  std::error_code error;
  fs::create_directories(out, error);
  if (error || !fs::is_directory(out))
  {
    throw InputError("--out '" + options.out + "': cannot create the folder");
  }
  const agcl::ModelConfig & config = model->GetConfig();
  const bool                pictures = config.image_dimensions == 2;
  if (pictures && options.precision != "float32")
    throw InputError("--precision " + options.precision + ": a 2D model (pictures) runs in float32 only");
  if (pictures && (options.saveAttention || options.oracleAttention))
    throw InputError(std::string(options.saveAttention ? "--save-attention" : "--oracle-attention") +
                     ": not available for a 2D model (pictures)");
  if (options.saveAttention && config.organs.size() > 32)
  {
    throw InputError("--save-attention: the model has " + std::to_string(config.organs.size()) +
                     " organs; the attention file holds at most 32 (one bit each)");
  }
  nlohmann::json settings = { { "tool", "agcl segment" },
                              { "version", agcl::Version() },
                              { "model", fs::absolute(options.model).string() },
                              { "model_config", config.ToJson() },
                              { "device", options.device },
                              { "batch_size", options.batchSize },
                              { "slab_slices", options.slab },
                              { "post_processing", !options.noPostProcessing },
                              { "attention", options.oracleAttention ? "reference labels (oracle)" : "coarse network" },
                              { "shard", options.shard },
                              { "inputs", inputs } };
  if (options.precision != "float32") // recorded only when set: older settings files stay comparable
    settings["precision"] = options.precision;
  if (pictures) // a picture is one slab, never post-processed (a class may hold several objects)
  {
    settings["slab_slices"] = nullptr;
    settings["post_processing"] = false;
  }
  // Shards writing into one folder each keep their own settings file (the same input list and
  // model, another shard): settings.json for one machine, settings.shard-I-of-N.json otherwise.
  const fs::path settingsFile = out / (shardCount > 1 ? "settings.shard-" + std::to_string(shardIndex) + "-of-" +
                                                          std::to_string(shardCount) + ".json"
                                                      : std::string("settings.json"));
  // Plausibility warnings per volume (also on stderr and in each <name>.organs.csv); a resumed
  // run keeps those of the volumes it skips.
  nlohmann::json warnings = nlohmann::json::object();
  if (options.skipExisting && fs::exists(settingsFile))
  {
    // Finishing an interrupted run: its outputs and the new ones must come from the same settings.
    nlohmann::json earlier;
    try
    {
      earlier = agcl::ReadJsonFile(settingsFile.string());
    }
    catch (const std::invalid_argument & e)
    {
      throw InputError(std::string("--skip-existing: settings ") + e.what());
    }
    for (const char * key : { "model", "model_config", "post_processing", "attention" })
      if (!earlier.is_object() || earlier.value(key, nlohmann::json()) != settings.at(key))
        throw InputError("--skip-existing: '" + settingsFile.string() + "' records another '" + key +
                         "' than this run's; its outputs would mix two runs: choose another --out");
    if (earlier.contains("warnings") && earlier["warnings"].is_object())
      warnings = earlier["warnings"];
  }
  settings["warnings"] = warnings;
  WriteTextAtomically(settingsFile, settings.dump(2) + "\n");
  itk::WriteLabelDescriptions(
    out, Descriptions(config), "agcl segment, labels of " + fs::path(options.model).filename().string());

  int badInputs = 0, failures = 0, done = 0, skipped = 0;
  for (size_t i = 0; i < inputs.size(); ++i)
  {
    if (i % shardCount != shardIndex)
      continue;
    const std::string & input = inputs[i];
    const std::string   extension = pictures ? ".png" : ".nii.gz";
    const fs::path      target = out / (VolumeName(input) + extension);
    const auto          start = std::chrono::steady_clock::now();
    if (options.skipExisting && fs::exists(target) &&
        (!options.saveCoarse || fs::exists(out / (VolumeName(input) + ".coarse" + extension))) &&
        (!options.saveAttention || fs::exists(out / (VolumeName(input) + ".attention.nii.gz"))) &&
        fs::exists(out / (VolumeName(input) + ".organs.csv")))
    {
      ++skipped; // written whole by an earlier run (every output is written atomically)
      std::cout << "exists, skipped: " << target.string() << std::endl;
      continue;
    }
    try
    {
      if (pictures)
      {
        const int64_t patches = SegmentPictureFile(input,
                                                   *model,
                                                   options,
                                                   target,
                                                   out / (VolumeName(input) + ".organs.csv"),
                                                   out / (VolumeName(input) + ".coarse.png"));
        ++done;
        std::cout << "segmented " << input << " -> " << target.string() << " (" << patches << " patches, "
                  << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() << " s)"
                  << std::endl;
        continue;
      }
      const CTImage::Pointer ct = ReadImage<CTImage>(input, "image"); // a file or a DICOM folder
      const auto             size = ct->GetLargestPossibleRegion().GetSize();
      if (size[0] < 2 || size[1] < 2 || size[2] < 2)
      {
        std::ostringstream os;
        os << "'" << input << "' has size " << size << ": a 2D image or an empty one; expected a 3D CT volume";
        throw InputError(os.str());
      }
      try
      {
        itk::VerifyFiniteImage(ct.GetPointer(), "the volume");
        itk::VerifyImageGeometry(ct.GetPointer(), "the volume");
      }
      catch (const itk::ExceptionObject & e)
      {
        throw InputError("'" + input + "': " + e.GetDescription());
      }
      auto segment = itk::AGCLSegmentationFilter<CTImage, LabelImage>::New();
      segment->SetInput(ct);
      segment->SetModel(model);
      segment->SetDevice(options.device);
      segment->SetBatchSize(options.batchSize);
      segment->SetPrecision(options.precision);
      segment->SetSlabThickness(options.slab);
      segment->SetPostProcessing(!options.noPostProcessing);
      segment->SetKeepCoarseOutputs(options.saveCoarse || options.saveAttention);
      LabelImage::Pointer reference;
      if (options.oracleAttention)
      {
        reference = ReadImage<LabelImage>(referenceOf.at(input), "label map");
        if (reference->GetLargestPossibleRegion() != ct->GetLargestPossibleRegion())
          throw InputError("--oracle-attention: label map '" + referenceOf.at(input) + "' does not cover '" + input +
                           "' voxel for voxel");
        segment->SetCoarseLabelMap(reference);
      }
      segment->Update();
      itk::WriteImageAtomically(segment->GetOutput(), target);
      // The organ report: volumes, mean scores, warnings (the exit code does not change).
      const itk::AGCLOrganReport & report = segment->GetOrganReport();
      WriteTextAtomically(out / (VolumeName(input) + ".organs.csv"), report.ToCsv());
      const std::vector<std::string> lines = report.Warnings();
      for (const auto & line : lines)
        std::cerr << "agcl segment: warning: " << input << ": " << line << std::endl;
      if (!lines.empty() || warnings.contains(VolumeName(input)))
      {
        if (lines.empty())
          warnings.erase(VolumeName(input));
        else
          warnings[VolumeName(input)] = lines;
        settings["warnings"] = warnings;
        WriteTextAtomically(settingsFile, settings.dump(2) + "\n");
      }
      // A coarse/attention file of an earlier run would be read by agcl evaluate as this run's.
      const fs::path  coarseFile = out / (VolumeName(input) + ".coarse.nii.gz");
      const fs::path  attentionFile = out / (VolumeName(input) + ".attention.nii.gz");
      std::error_code ignored;
      if (options.saveCoarse)
        itk::WriteImageAtomically(segment->GetCoarseLabelMapOutput(), coarseFile);
      else
        fs::remove(coarseFile, ignored);
      if (options.saveAttention)
        itk::WriteImageAtomically(AttentionBits(*segment, config).GetPointer(), attentionFile);
      else
        fs::remove(attentionFile, ignored);
      ++done;
      std::cout << "segmented " << input << " -> " << target.string() << " (" << segment->GetNumberOfPatches()
                << " patches, " << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()
                << " s)" << std::endl;
    }
    catch (const InputError & e)
    {
      ++badInputs;
      std::cerr << "agcl segment: skipped: " << e.what() << std::endl;
    }
    catch (const itk::ExceptionObject & e)
    {
      ++failures;
      std::cerr << "agcl segment: failed on '" << input << "': " << e.GetDescription() << std::endl;
    }
  }
  std::cout << "segmented " << done << " of " << inputs.size() << " volume(s) in " << out.string()
            << (skipped > 0 ? " (" + std::to_string(skipped) + " already there, skipped)" : "")
            << (shardCount > 1 ? " (shard " + options.shard + ")" : "") << std::endl;
  if (failures > 0)
    return kRuntimeFailure;
  return badInputs > 0 ? kBadInput : kSuccess;
}
} // namespace

void
RegisterSegment(CLI::App & app, Runner & runner)
{
  auto       options = std::make_shared<SegmentOptions>();
  CLI::App * sub = app.add_subcommand(
    "segment",
    "Segment CT volumes with a model: files ITK reads (NIfTI, NRRD, MetaImage, ...), DICOM series folders, or a "
    "manifest's images. Writes OUT/<name>.nii.gz and OUT/<name>.organs.csv (each organ's volume in mL, voxels, mean "
    "score, warnings) per volume, settings.json (settings.shard-I-of-N.json with --shard) and the label descriptions; "
    "a volume that "
    "cannot be read is reported and skipped (exit code 1), the others are still segmented");
  sub->add_option("--model", options->model, "model bundle (*.agcl)")->required();
  sub->add_option("inputs", options->inputs, "volumes: image files or DICOM series folders");
  sub->add_option(
    "--manifest", options->manifest, "a manifest CSV (subject,image,label,modality,split) to take images from");
  sub->add_option("--split", options->split, "with --manifest: only this split (train, val, test) or all")
    ->check(CLI::IsMember({ "all", "train", "val", "test" }));
  sub->add_option("--out", options->out, "output folder")->required();
  sub->add_option("--device", options->device, "cpu, cuda or cuda:N");
  sub->add_option("--batch-size", options->batchSize, "patches per network batch");
  sub->add_option("--precision",
                  options->precision,
                  "the networks' precision: float32, bfloat16 (autocast, CPU or CUDA) or float16 (autocast, CUDA)");
  sub->add_option("--slab", options->slab, "axial slices per slab (memory vs. overhead)");
  sub->add_option(
    "--shard", options->shard, "i/n: segment only every n-th input from the i-th (n machines split a cohort)");
  sub->add_flag("--skip-existing",
                options->skipExisting,
                "finish an interrupted run: leave volumes whose outputs are already in OUT (each output is written "
                "whole or not at all); refused when OUT/settings.json records another model or settings");
  sub->add_flag("--no-postprocessing", options->noPostProcessing, "keep every connected component, leave holes");
  sub->add_flag("--save-coarse",
                options->saveCoarse,
                "also write OUT/<name>.coarse.nii.gz: the coarse stage's label map in the input's geometry "
                "(nearest neighbour); agcl evaluate then reports the coarse Dice");
  sub->add_flag(
    "--save-attention",
    options->saveAttention,
    "also write OUT/<name>.attention.nii.gz: the organs' attention maps as bits of one uint32 image (bit o = "
    "the model's organ o, in its order); agcl evaluate then reports attention recall and volume");
  sub->add_flag("--oracle-attention",
                options->oracleAttention,
                "diagnosis: attention from the manifest's reference label maps instead of the coarse network (the "
                "fine stage's ceiling); needs --manifest with labels");
  sub->callback([options, &runner] { runner = [options] { return RunSegment(*options); }; });
}

} // namespace agcl::cli
