/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkAGCLCalibration_h
#define itkAGCLCalibration_h

#include "itkAGCLModelObject.h"
#include "itkImage.h"

#include <nlohmann/json.hpp>

#include <functional>
#include <string>

namespace itk {

/** A model's own statistics (itkAGCLModelStatistics.h) measured on a manifest's volumes: each
 *  volume of `split` in `manifestFile` (the image column; a file or a DICOM series folder) is
 *  segmented with `model` on `device` (AGCLSegmentationFilter, the model's settings), and its
 *  organ report and windowed intensity histogram go into MakeAGCLStatistics. `progress`, when
 *  given, is called with each image's path after it is segmented; `read`, when given, reads an
 *  image (path, a description of it for messages) instead of ReadVolume (the CLI passes its own
 *  reader, whose errors are its exit code for bad input).
 *
 *  Throws itk::InvalidArgumentError (bad input) naming the manifest when it cannot be read, has
 *  no image column, or has fewer than kMinimumCalibrationVolumes volumes in `split`; an image that
 *  cannot be read or segmented throws (itk::ExceptionObject naming it, or `read`'s own error). */
using CalibrationImageReader =
  std::function<Image<short, 3>::Pointer(const std::string & path, const std::string & what)>;
nlohmann::json
CalibrateAGCLModel(AGCLModelObject *                                model,
                   const std::string &                              manifestFile,
                   const std::string &                              split = "val",
                   const std::string &                              device = "cpu",
                   const std::function<void(const std::string &)> & progress = {},
                   const CalibrationImageReader &                   read = {});

/** CalibrateAGCLModel of the bundle `modelFile`, written with its statistics (the bundle's JSON
 *  "statistics"; weights unchanged) to `outFile` atomically (`outFile` may be `modelFile`).
 *  Returns the statistics. A model file that cannot be loaded is itk::InvalidArgumentError. */
nlohmann::json
CalibrateAGCLModelFile(const std::string &                              modelFile,
                       const std::string &                              manifestFile,
                       const std::string &                              outFile,
                       const std::string &                              split = "val",
                       const std::string &                              device = "cpu",
                       const std::function<void(const std::string &)> & progress = {},
                       const CalibrationImageReader &                   read = {});

/** What `agcl train` and the Python trainer do after a training that ran stage 2: the model
 *  `modelFile` calibrated in place on the manifest's validation volumes (split "val") when there
 *  are at least kMinimumCalibrationVolumes of them (fewer give ranges that are only their
 *  extremes: the model then records no statistics). Returns the number of validation volumes. */
size_t
CalibrateTrainedModel(const std::string &                              modelFile,
                      const std::string &                              manifestFile,
                      const std::string &                              device = "cpu",
                      const std::function<void(const std::string &)> & progress = {},
                      const CalibrationImageReader &                   read = {});

} // namespace itk

#endif
