/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// agcl evaluate: per subject and organ, Dice, IoU and surface distances of the segmentations
// in a folder (as agcl segment writes them) against a manifest's label maps
// (itk::SegmentationMetrics; definitions in Documentation/evaluation.md).

#include "Manifest.h"
#include "OutputFiles.h"
#include "ReadImage.h"
#include "Subcommands.h"

#include "itkCoarseAttentionFilter.h"
#include "itkLabelBoundingBoxes.h"
#include "itkSegmentationConfusionMatrix.h"
#include "itkSegmentationMetrics.h"

#include "agcl/JsonInput.h"
#include "agcl/ModelConfig.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <algorithm>
#include <map>
#include <sstream>

namespace agcl::cli {

namespace {
namespace fs = std::filesystem;
using LabelImage = itk::Image<unsigned char, 3>;
using Metrics = itk::SegmentationMetrics<LabelImage>;

using AttentionImage = itk::Image<uint32_t, 3>;

/** What the coarse stage gave one organ of one volume (agcl segment --save-coarse /
 *  --save-attention), counted voxel by voxel against the reference. */
struct CoarseStageMetrics
{
  std::optional<double> coarseDice;     // Dice of the coarse label map (input geometry)
  std::optional<double> recall;         // |reference ∩ attention| / |reference|
  std::optional<double> attentionRatio; // |attention| / |reference|
  std::optional<double> grownRatio;     // |attention| / |reference grown by 10 mm|
  uint64_t              attentionVoxels = 0;
};

constexpr double kGrownMarginMM = 10.0;

/** The organs' coarse-stage metrics; `coarse` and `attention` may be null (then those stay empty).
 *  `metrics` are the organs' final metrics (their reference voxel counts are reused). */
std::vector<CoarseStageMetrics>
CoarseStage(const LabelImage *                         reference,
            const LabelImage *                         coarse,
            const AttentionImage *                     attention,
            const std::vector<unsigned char> &         organs,
            const std::vector<Metrics::OrganMetrics> & metrics)
{
  const auto   region = reference->GetLargestPossibleRegion();
  const size_t n = region.GetNumberOfPixels();
  auto         sameGrid = [&](const itk::ImageBase<3> * image, const char * what) {
    if (image->GetLargestPossibleRegion() != region)
      throw InputError(std::string("the ") + what + " file does not have the reference's size");
  };
  if (coarse)
    sameGrid(coarse, "coarse");
  if (attention)
    sameGrid(attention, "attention");
  const auto                      boxes = itk::LabelBoundingBoxes(reference, region);
  std::vector<CoarseStageMetrics> result(organs.size());
  for (size_t o = 0; o < organs.size(); ++o)
  {
    const unsigned char * ref = reference->GetBufferPointer();
    const uint64_t        refCount = metrics[o].referenceVoxels;
    if (coarse)
    {
      const unsigned char * c = coarse->GetBufferPointer();
      uint64_t              both = 0, predicted = 0;
      for (size_t v = 0; v < n; ++v)
      {
        predicted += c[v] == organs[o];
        both += c[v] == organs[o] && ref[v] == organs[o];
      }
      if (refCount + predicted > 0)
        result[o].coarseDice = 2.0 * static_cast<double>(both) / static_cast<double>(refCount + predicted);
    }
    if (attention && o < 32)
    {
      const uint32_t * a = attention->GetBufferPointer();
      const uint32_t   bit = uint32_t{ 1 } << o;
      uint64_t         inside = 0, volume = 0;
      for (size_t v = 0; v < n; ++v)
      {
        volume += (a[v] & bit) != 0;
        inside += (a[v] & bit) != 0 && ref[v] == organs[o];
      }
      result[o].attentionVoxels = volume;
      const auto box = boxes.find(organs[o]);
      if (refCount > 0 && box != boxes.end())
      {
        result[o].recall = static_cast<double>(inside) / static_cast<double>(refCount);
        result[o].attentionRatio = static_cast<double>(volume) / static_cast<double>(refCount);
        auto grown = LabelImage::New();
        grown->CopyInformation(reference);
        grown->SetRegions(region);
        grown->Allocate();
        grown->FillBuffer(0);
        itk::CoarseAttentionFilter<LabelImage, LabelImage>::ComputeAttentionMap(
          reference, organs[o], box->second, kGrownMarginMM, grown);
        const auto grownCount = std::count(grown->GetBufferPointer(), grown->GetBufferPointer() + n, 1);
        result[o].grownRatio = static_cast<double>(volume) / static_cast<double>(grownCount);
      }
    }
  }
  return result;
}

double
Median(std::vector<double> values)
{
  std::sort(values.begin(), values.end());
  const size_t m = values.size() / 2;
  return values.size() % 2 ? values[m] : (values[m - 1] + values[m]) / 2.0;
}

struct EvaluateOptions
{
  std::string pred;
  std::string manifest;
  std::string split = "test";
  std::string out;
  std::string metric = "dice";
  unsigned    numClasses = 0; // 0: from the model's settings, else 21 (VOC)
  unsigned    ignoreLabel = 255;
};

std::string
Number(const std::optional<double> & value)
{
  if (!value)
    return "";
  std::ostringstream os;
  os << std::setprecision(6) << *value;
  return os.str();
}

/** The prediction of a manifest row: PRED/<name>.png (a 2D label map, e.g. VOC-style), else
 *  PRED/<name>.nii.gz. */
fs::path
PredictionFile(const std::string & pred, const std::string & image)
{
  const fs::path png = fs::path(pred) / (VolumeName(image) + ".png");
  return fs::exists(png) ? png : fs::path(pred) / (VolumeName(image) + ".nii.gz");
}

/** Runs `work` for one manifest row; bad input (an unreadable or mismatched file) skips the
 *  subject with a message and counts it in `problems` instead of ending the evaluation. */
template <typename Work>
void
EvaluateOrSkip(const ManifestRow & row, int & problems, Work && work)
{
  try
  {
    work();
  }
  catch (const InputError & e)
  {
    ++problems;
    std::cerr << "agcl evaluate: subject " << row.subject << " skipped: " << e.what() << std::endl;
  }
  catch (const itk::ExceptionObject & e)
  {
    ++problems;
    std::cerr << "agcl evaluate: subject " << row.subject << " skipped: " << e.GetDescription() << std::endl;
  }
}

/** agcl evaluate --metric miou: one confusion matrix over every image of the split, IoU per
 *  class and their mean over the classes present, as PASCAL VOC computes it. */
int
RunMeanIoU(const EvaluateOptions & options, const std::vector<ManifestRow> & rows, const agcl::ModelConfig * config)
{
  // The classes: background 0 and the model's labels when its settings are there, else VOC's 21.
  unsigned                 classes = options.numClasses;
  std::vector<std::string> names;
  if (classes == 0 && config)
  {
    for (const auto & organ : config->organs)
      classes = std::max(classes, static_cast<unsigned>(organ.label) + 1);
  }
  if (classes == 0)
    classes = 21;
  if (classes > 256)
    throw InputError("--num-classes " + std::to_string(classes) + ": at most 256 classes (8-bit labels)");
  if (options.ignoreLabel < classes)
  {
    throw InputError("--ignore-label " + std::to_string(options.ignoreLabel) + ": it is one of the " +
                     std::to_string(classes) + " classes 0.." + std::to_string(classes - 1));
  }
  names.assign(classes, "");
  names[0] = "background";
  if (config)
    for (const auto & organ : config->organs)
      if (organ.label < static_cast<int>(classes))
        names[organ.label] = organ.name;
  itk::SegmentationConfusionMatrix<LabelImage> matrix(classes, static_cast<unsigned char>(options.ignoreLabel));
  int                                          problems = 0;
  for (const auto & row : rows)
  {
    const fs::path prediction = PredictionFile(options.pred, row.image);
    EvaluateOrSkip(row, problems, [&] {
      const auto reference = ReadImage<LabelImage>(row.label, "label map");
      const auto predicted = ReadImage<LabelImage>(prediction.string(), "prediction");
      matrix.Accumulate(reference, predicted, row.subject);
    });
  }
  if (matrix.GetNumberOfImages() == 0)
    throw InputError("--pred '" + options.pred + "': no image of split '" + options.split + "' could be evaluated");

  std::ostringstream csv, table;
  csv << "class,name,iou,true_positives,false_positives,false_negatives,reference_pixels,predicted_pixels\n";
  table << "Mean IoU over " << matrix.GetNumberOfImages() << " image(s) of split '" << options.split
        << "' (one confusion matrix over the set; label " << options.ignoreLabel << " ignored, "
        << matrix.GetIgnoredPixels() << " pixels)\n\n| class | name | IoU |\n| --- | --- | --- |\n";
  for (unsigned c = 0; c < classes; ++c)
  {
    const auto iou = matrix.IoU(c);
    csv << c << "," << names[c] << "," << Number(iou) << "," << matrix.TruePositives(c) << ","
        << matrix.PredictedPixels(c) - matrix.TruePositives(c) << ","
        << matrix.ReferencePixels(c) - matrix.TruePositives(c) << "," << matrix.ReferencePixels(c) << ","
        << matrix.PredictedPixels(c) << "\n";
    if (iou)
      table << "| " << c << " | " << names[c] << " | " << std::fixed << std::setprecision(4) << *iou << " |\n";
  }
  const auto mean = matrix.MeanIoU();
  const auto accuracy = matrix.PixelAccuracy();
  csv << "mean,," << Number(mean) << ",,,,,\n";
  table << "\nmean IoU " << (mean ? Number(mean) : std::string("n/a")) << " over the classes present in the "
        << "reference or the prediction; pixel accuracy " << (accuracy ? Number(accuracy) : std::string("n/a")) << "\n";
  const fs::path out = options.out.empty() ? fs::path(options.pred) / "evaluation-miou.csv" : fs::path(options.out);
  WriteTextAtomically(out, csv.str());
  fs::path markdown = out;
  markdown.replace_extension(".md");
  WriteTextAtomically(markdown, table.str());
  std::cout << table.str() << "\nwrote " << out.string() << " and " << markdown.string() << std::endl;
  return problems > 0 ? kBadInput : kSuccess;
}

int
RunEvaluate(const EvaluateOptions & options)
{
  if (!fs::is_directory(options.pred))
  {
    throw InputError("--pred '" + options.pred + "': not a folder");
  }
  const auto rows = ReadManifest(options.manifest, { "subject", "image", "label" }, options.split);
  if (rows.empty())
  {
    throw InputError("manifest '" + options.manifest + "': no rows of split '" + options.split + "'");
  }
  // The organs: those of the model that made the predictions (settings.json of agcl segment),
  // else BTCV's 12.
  agcl::ModelConfig config;
  const fs::path    settingsFile = fs::path(options.pred) / "settings.json";
  if (fs::exists(settingsFile))
  {
    try
    {
      config = agcl::ModelConfig::FromJson(agcl::ReadJsonFile(settingsFile.string()).at("model_config"));
    }
    catch (const std::exception & e)
    {
      throw InputError("'" + settingsFile.string() + "': " + e.what());
    }
  }
  if (options.metric == "miou")
    return RunMeanIoU(options, rows, fs::exists(settingsFile) ? &config : nullptr);
  if (options.numClasses != 0 || options.ignoreLabel != 255)
    throw InputError("--num-classes and --ignore-label belong to --metric miou");

  std::vector<unsigned char> organs;
  for (const auto & organ : config.organs)
    organs.push_back(static_cast<unsigned char>(organ.label));

  std::ostringstream csv;
  csv << "subject,image,modality,organ,label,status,dice,iou,msd_mm,hd_mm,hd95_mm,reference_voxels,predicted_voxels,"
         "coarse_dice,attention_recall,attention_voxels,attention_ratio,attention_vs_grown10mm\n";
  // Per organ over the volumes: coarse Dice, attention recall and attention / (reference + 10 mm).
  std::map<std::string, std::vector<double>>        coarseDice, recall, grownRatio;
  bool                                              anyCoarse = false, anyAttention = false;
  std::map<std::string, std::vector<double>>        dice; // organ -> Dice of each subject where defined
  std::map<std::string, std::map<std::string, int>> statusCount;
  int                                               problems = 0, evaluated = 0;
  for (const auto & row : rows)
  {
    const fs::path prediction = PredictionFile(options.pred, row.image);
    EvaluateOrSkip(row, problems, [&] {
      const auto reference = ReadImage<LabelImage>(row.label, "label map");
      const auto predicted = ReadImage<LabelImage>(prediction.string(), "prediction");
      const auto metrics = Metrics::Compute(reference, predicted, organs);
      // The coarse stage's files, when agcl segment wrote them (--save-coarse, --save-attention).
      const fs::path          base = fs::path(options.pred) / VolumeName(row.image);
      LabelImage::Pointer     coarse;
      AttentionImage::Pointer attention;
      if (fs::exists(base.string() + ".coarse.nii.gz"))
        coarse = ReadImage<LabelImage>(base.string() + ".coarse.nii.gz", "coarse label map");
      if (fs::exists(base.string() + ".attention.nii.gz"))
        attention = ReadImage<AttentionImage>(base.string() + ".attention.nii.gz", "attention maps");
      anyCoarse = anyCoarse || coarse;
      anyAttention = anyAttention || attention;
      const auto stage = CoarseStage(reference, coarse, attention, organs, metrics);
      for (size_t o = 0; o < metrics.size(); ++o)
      {
        const auto &      m = metrics[o];
        const auto &      c = stage[o];
        const std::string name = config.organs[o].name;
        const std::string status = Metrics::StatusName(m.status);
        csv << row.subject << "," << row.image << "," << row.modality << "," << name << "," << int(m.label) << ","
            << status << "," << Number(m.dice) << "," << Number(m.iou) << "," << Number(m.msd) << "," << Number(m.hd)
            << "," << Number(m.hd95) << "," << m.referenceVoxels << "," << m.predictedVoxels << ","
            << Number(c.coarseDice) << "," << Number(c.recall) << ","
            << (attention ? std::to_string(c.attentionVoxels) : std::string()) << "," << Number(c.attentionRatio) << ","
            << Number(c.grownRatio) << "\n";
        ++statusCount[name][status];
        if (m.dice)
          dice[name].push_back(*m.dice);
        if (c.coarseDice)
          coarseDice[name].push_back(*c.coarseDice);
        if (c.recall)
          recall[name].push_back(*c.recall);
        if (c.grownRatio)
          grownRatio[name].push_back(*c.grownRatio);
      }
      ++evaluated;
    });
  }

  // Summary: mean Dice per organ over the subjects where it is defined (not both empty), and
  // the mean over organs; counts of the empty cases.
  std::ostringstream table, header, rule, values;
  header << "| model |";
  rule << "| --- |";
  values << "| " << fs::path(options.pred).filename().string() << " |";
  double sum = 0;
  int    count = 0;
  for (const auto & organ : config.organs)
  {
    header << " " << organ.name << " |";
    rule << " --- |";
    const auto & d = dice[organ.name];
    if (d.empty())
    {
      values << " n/a |";
      continue;
    }
    double mean = 0;
    for (const double v : d)
      mean += v / d.size();
    sum += mean;
    ++count;
    values << " " << std::fixed << std::setprecision(3) << mean << " |";
  }
  header << " mean |";
  rule << " --- |";
  values << " " << (count ? [&] { std::ostringstream os; os << std::fixed << std::setprecision(3) << sum / count; return os.str(); }() : std::string("n/a")) << " |";
  table << "Mean Dice per organ over " << evaluated << " volume(s) of split '" << options.split << "'\n\n"
        << header.str() << "\n"
        << rule.str() << "\n"
        << values.str() << "\n";
  if (anyCoarse || anyAttention)
  {
    // The coarse stage beside the final Dice: what it let through decides what can be segmented.
    table << "\nCoarse stage per organ (from the .coarse/.attention files of agcl segment --save-coarse / "
             "--save-attention):\n\n| measure |";
    for (const auto & organ : config.organs)
      table << " " << organ.name << " |";
    table << "\n| --- |";
    for (size_t i = 0; i < config.organs.size(); ++i)
      table << " --- |";
    auto line = [&](const std::string & what, auto && cell) {
      table << "\n| " << what << " |";
      for (const auto & organ : config.organs)
        table << " " << cell(organ.name) << " |";
    };
    auto fixed = [](double v) {
      std::ostringstream os;
      os << std::fixed << std::setprecision(3) << v;
      return os.str();
    };
    auto meanOf = [&](const std::map<std::string, std::vector<double>> & values, const std::string & organ) {
      const auto it = values.find(organ);
      if (it == values.end() || it->second.empty())
        return std::string("n/a");
      double m = 0;
      for (const double v : it->second)
        m += v / it->second.size();
      return fixed(m);
    };
    line("final Dice (mean)", [&](const std::string & organ) { return meanOf(dice, organ); });
    if (anyCoarse)
      line("coarse Dice (mean)", [&](const std::string & organ) { return meanOf(coarseDice, organ); });
    if (anyAttention)
    {
      line("attention recall (mean)", [&](const std::string & organ) { return meanOf(recall, organ); });
      line("attention recall (min)", [&](const std::string & organ) {
        const auto it = recall.find(organ);
        return it == recall.end() || it->second.empty()
                 ? std::string("n/a")
                 : fixed(*std::min_element(it->second.begin(), it->second.end()));
      });
      line("volumes with recall >= 0.99", [&](const std::string & organ) {
        const auto it = recall.find(organ);
        if (it == recall.end())
          return std::string("n/a");
        const auto good = std::count_if(it->second.begin(), it->second.end(), [](double r) { return r >= 0.99; });
        return std::to_string(good) + "/" + std::to_string(it->second.size());
      });
      line("attention / (reference + 10 mm), median", [&](const std::string & organ) {
        const auto it = grownRatio.find(organ);
        return it == grownRatio.end() || it->second.empty() ? std::string("n/a") : fixed(Median(it->second));
      });
    }
    table << "\n";
  }
  std::ostringstream empties;
  for (const auto & [organ, counts] : statusCount)
    for (const auto & [status, n] : counts)
      if (status != "ok")
        empties << "- " << organ << ": " << n << " " << status << "\n";
  if (!empties.str().empty())
    table << "\nEmpty cases (Dice 0 when one side is empty; excluded when both are):\n" << empties.str();

  const fs::path out = options.out.empty() ? fs::path(options.pred) / "evaluation.csv" : fs::path(options.out);
  WriteTextAtomically(out, csv.str());
  fs::path markdown = out;
  markdown.replace_extension(".md");
  WriteTextAtomically(markdown, table.str());
  std::cout << table.str() << "\nwrote " << out.string() << " and " << markdown.string() << std::endl;
  return problems > 0 ? kBadInput : kSuccess;
}
} // namespace

void
RegisterEvaluate(CLI::App & app, Runner & runner)
{
  auto       options = std::make_shared<EvaluateOptions>();
  CLI::App * sub = app.add_subcommand(
    "evaluate",
    "Dice, IoU and surface distances (MSD, HD, HD95 in mm) of segmentations (as agcl segment names them: "
    "PRED/<image name>.nii.gz, or .png for 2D) against a manifest's label maps, per subject and organ, or with "
    "--metric miou PASCAL VOC's mean IoU over the set; writes a CSV and a Markdown summary. Definitions: "
    "Documentation/evaluation.md");
  sub->add_option("--pred", options->pred, "folder of predicted label maps")->required();
  sub->add_option("--manifest", options->manifest, "manifest CSV (subject,image,label,modality,split)")->required();
  sub->add_option("--split", options->split, "which split to evaluate (train, val, test, all)")
    ->check(CLI::IsMember({ "all", "train", "val", "test" }));
  sub->add_option("--out",
                  options->out,
                  "CSV file to write (default PRED/evaluation.csv, or PRED/evaluation-miou.csv for --metric miou; the "
                  "summary goes next to it as .md)");
  sub
    ->add_option("--metric",
                 options->metric,
                 "dice: per subject and organ (Dice, IoU, surface distances; the default, for 3D); miou: PASCAL VOC's "
                 "mean IoU, one confusion matrix over all images of the split, IoU per class (background included), "
                 "mean over the classes present in the reference or the prediction")
    ->check(CLI::IsMember({ "dice", "miou" }));
  sub
    ->add_option("--num-classes",
                 options->numClasses,
                 "miou: the classes are 0..N-1 (default: background and the model's labels from PRED/settings.json, "
                 "else 21 as PASCAL VOC)")
    ->check(CLI::Range(1, 256));
  sub->add_option("--ignore-label", options->ignoreLabel, "miou: reference label left out of the counts (VOC's void)")
    ->check(CLI::Range(0, 255));
  sub->callback([options, &runner] { runner = [options] { return RunEvaluate(*options); }; });
}

} // namespace agcl::cli
