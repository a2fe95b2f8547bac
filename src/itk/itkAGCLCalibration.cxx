/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "itkAGCLCalibration.h"

#include "itkAGCLModelStatistics.h"
#include "itkAGCLSegmentationFilter.h"
#include "itkConvertTorchErrors.h"
#include "itkReadVolume.h"

#include "agcl/Manifest.h"
#include "agcl/ModelBundle.h"

#include <filesystem>

namespace itk {

namespace {
// Bad input (a manifest, a model file, too few volumes) as InvalidArgumentError, so that front
// ends can tell it from a failure while segmenting (the CLI's exit code 1 against 2).
[[noreturn]] void
ThrowBadInput(const std::string & description)
{
  throw InvalidArgumentError(__FILE__, __LINE__, description, "itk::CalibrateAGCLModel");
}
} // namespace

nlohmann::json
CalibrateAGCLModel(AGCLModelObject *                                model,
                   const std::string &                              manifestFile,
                   const std::string &                              split,
                   const std::string &                              device,
                   const std::function<void(const std::string &)> & progress,
                   const CalibrationImageReader &                   read)
{
  using CTImage = Image<short, 3>;
  using LabelImage = Image<unsigned char, 3>;
  if (model == nullptr)
    itkGenericExceptionMacro(<< "CalibrateAGCLModel: no model");
  std::vector<agcl::ManifestRow> rows;
  try
  {
    rows = agcl::ReadManifest(manifestFile, { "subject", "image" }, split);
  }
  catch (const std::exception & e)
  {
    ThrowBadInput(e.what());
  }
  if (rows.size() < kMinimumCalibrationVolumes)
    ThrowBadInput("manifest '" + manifestFile + "': " + std::to_string(rows.size()) + " volume(s) in split '" + split +
                  "'; at least " + std::to_string(kMinimumCalibrationVolumes) +
                  " are needed for meaningful organ volume ranges");
  const agcl::ModelConfig &        config = model->GetConfig();
  std::vector<AGCLOrganReport>     reports;
  std::vector<std::vector<double>> histograms;
  for (const auto & row : rows)
  {
    const std::string what = "image of subject '" + row.subject + "'";
    const auto        ct = read ? read(row.image, what) : ReadVolume<CTImage>(row.image, what);
    auto              segment = AGCLSegmentationFilter<CTImage, LabelImage>::New();
    segment->SetInput(ct);
    segment->SetModel(model);
    segment->SetDevice(device);
    segment->Update();
    reports.push_back(segment->GetOrganReport());
    histograms.push_back(WindowedHistogram(ct.GetPointer(), config.window_low, config.window_high));
    if (progress)
      progress(row.image);
  }
  return ConvertTorchErrors("CalibrateAGCLModel", [&] {
    return MakeAGCLStatistics(reports,
                              histograms,
                              config.window_low,
                              config.window_high,
                              "calibration: " + std::to_string(rows.size()) + " volumes of split '" + split + "' of " +
                                std::filesystem::path(manifestFile).filename().string());
  });
}

nlohmann::json
CalibrateAGCLModelFile(const std::string &                              modelFile,
                       const std::string &                              manifestFile,
                       const std::string &                              outFile,
                       const std::string &                              split,
                       const std::string &                              device,
                       const std::function<void(const std::string &)> & progress,
                       const CalibrationImageReader &                   read)
{
  auto model = AGCLModelObject::New();
  try
  {
    model->Load(modelFile);
  }
  catch (const ExceptionObject & e)
  {
    ThrowBadInput(e.GetDescription()); // names the file
  }
  const nlohmann::json statistics = CalibrateAGCLModel(model, manifestFile, split, device, progress, read);
  ConvertTorchErrors("CalibrateAGCLModelFile", [&] {
    agcl::ModelBundle bundle = agcl::ModelBundle::Load(modelFile);
    bundle.config["statistics"] = statistics;
    bundle.Save(outFile); // atomic: temporary file, fsync, rename
  });
  return statistics;
}

size_t
CalibrateTrainedModel(const std::string &                              modelFile,
                      const std::string &                              manifestFile,
                      const std::string &                              device,
                      const std::function<void(const std::string &)> & progress,
                      const CalibrationImageReader &                   read)
{
  size_t validation = 0;
  try
  {
    validation = agcl::ReadManifest(manifestFile, { "subject", "image" }, "val").size();
  }
  catch (const std::exception & e)
  {
    ThrowBadInput(e.what());
  }
  if (validation >= kMinimumCalibrationVolumes)
    CalibrateAGCLModelFile(modelFile, manifestFile, modelFile, "val", device, progress, read);
  return validation;
}

} // namespace itk
