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

#include "itkSegmentationMetrics.h"

#include "agcl/ModelConfig.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

namespace agcl::cli {

namespace {
namespace fs = std::filesystem;
using LabelImage = itk::Image<unsigned char, 3>;
using Metrics = itk::SegmentationMetrics<LabelImage>;

struct EvaluateOptions
{
  std::string pred;
  std::string manifest;
  std::string split = "test";
  std::string out;
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
      std::ifstream in(settingsFile);
      config = agcl::ModelConfig::FromJson(nlohmann::json::parse(in).at("model_config"));
    }
    catch (const std::exception & e)
    {
      throw InputError("'" + settingsFile.string() + "': " + e.what());
    }
  }
  std::vector<unsigned char> organs;
  for (const auto & organ : config.organs)
    organs.push_back(static_cast<unsigned char>(organ.label));

  std::ostringstream csv;
  csv << "subject,image,modality,organ,label,status,dice,iou,msd_mm,hd_mm,hd95_mm,reference_voxels,predicted_voxels\n";
  std::map<std::string, std::vector<double>>        dice; // organ -> Dice of each subject where defined
  std::map<std::string, std::map<std::string, int>> statusCount;
  int                                               problems = 0, evaluated = 0;
  for (const auto & row : rows)
  {
    const fs::path prediction = fs::path(options.pred) / (VolumeName(row.image) + ".nii.gz");
    try
    {
      const auto reference = ReadImage<LabelImage>(row.label, "label map");
      const auto predicted = ReadImage<LabelImage>(prediction.string(), "prediction");
      const auto metrics = Metrics::Compute(reference, predicted, organs);
      for (size_t o = 0; o < metrics.size(); ++o)
      {
        const auto &      m = metrics[o];
        const std::string name = config.organs[o].name;
        const std::string status = Metrics::StatusName(m.status);
        csv << row.subject << "," << row.image << "," << row.modality << "," << name << "," << int(m.label) << ","
            << status << "," << Number(m.dice) << "," << Number(m.iou) << "," << Number(m.msd) << "," << Number(m.hd)
            << "," << Number(m.hd95) << "," << m.referenceVoxels << "," << m.predictedVoxels << "\n";
        ++statusCount[name][status];
        if (m.dice)
          dice[name].push_back(*m.dice);
      }
      ++evaluated;
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
    "PRED/<image name>.nii.gz) against a manifest's label maps, per subject and organ; writes a CSV and a Markdown "
    "summary. Definitions: Documentation/evaluation.md");
  sub->add_option("--pred", options->pred, "folder of predicted label maps")->required();
  sub->add_option("--manifest", options->manifest, "manifest CSV (subject,image,label,modality,split)")->required();
  sub->add_option("--split", options->split, "which split to evaluate (train, val, test, all)")
    ->check(CLI::IsMember({ "all", "train", "val", "test" }));
  sub->add_option(
    "--out", options->out, "CSV file to write (default PRED/evaluation.csv; the summary goes next to it as .md)");
  sub->callback([options, &runner] { runner = [options] { return RunEvaluate(*options); }; });
}

} // namespace agcl::cli
