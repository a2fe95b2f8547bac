/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// agcl calibrate: segments a manifest's validation volumes with a model and records the
// statistics of its own predictions in a copy of the bundle (itkAGCLModelStatistics.h): each
// organ's volume range and the windowed intensity histogram, against which `agcl segment`,
// agcl-slicer and AGCLSegmentationFilter then warn about implausible results.

#include "ReadImage.h"
#include "Subcommands.h"

#include "itkAGCLCalibration.h"

#include <iostream>
#include <memory>

namespace agcl::cli {

namespace {
using CTImage = itk::Image<short, 3>;

struct CalibrateOptions
{
  std::string model, manifest, split = "val", out, device = "cpu";
};

void
CalibrateModel(const std::string & modelFile,
               const std::string & manifest,
               const std::string & split,
               const std::string & out,
               const std::string & device)
{
  nlohmann::json statistics;
  try
  {
    statistics = itk::CalibrateAGCLModelFile(
      modelFile,
      manifest,
      out,
      split,
      device,
      [](const std::string & image) { std::cout << "segmented " << image << std::endl; },
      [](const std::string & path, const std::string & what) { return ReadImage<CTImage>(path, what); });
  }
  catch (const itk::InvalidArgumentError & e) // a bad model file or manifest, too few volumes: exit code 1
  {
    throw InputError(e.GetDescription());
  }
  std::cout << "wrote " << out << " with the statistics of " << statistics["volumes"].get<size_t>()
            << " volumes (intensity threshold " << statistics["intensity"]["threshold_hu"].get<double>() << " HU)"
            << std::endl;
  for (const auto & [label, organ] : statistics["organs"].items())
    std::cout << "  " << organ["name"].get<std::string>() << ": " << organ["p5_ml"].get<double>() << "-"
              << organ["p95_ml"].get<double>() << " mL (p5-p95)" << std::endl;
}

int
RunCalibrate(const CalibrateOptions & options)
{
  CalibrateModel(options.model, options.manifest, options.split, options.out, options.device);
  return kSuccess;
}
} // namespace

void
RegisterCalibrate(CLI::App & app, Runner & runner)
{
  auto       options = std::make_shared<CalibrateOptions>();
  CLI::App * sub = app.add_subcommand(
    "calibrate",
    "Segment a manifest's validation volumes and record the model's own statistics (organ volume ranges, "
    "intensity histogram) in a copy of the model, for plausibility warnings when segmenting");
  sub->add_option("--model", options->model, "model bundle (*.agcl)")->required();
  sub->add_option("--manifest", options->manifest, "manifest CSV (subject,image,...,split)")->required();
  sub->add_option("--split", options->split, "the manifest's split to calibrate on")->capture_default_str();
  sub->add_option("--out", options->out, "the model with statistics (*.agcl; may be --model itself)")->required();
  sub->add_option("--device", options->device, "cpu, cuda or cuda:N")->capture_default_str();
  sub->callback([options, &runner] { runner = [options] { return RunCalibrate(*options); }; });
}

} // namespace agcl::cli
