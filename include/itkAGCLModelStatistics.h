/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkAGCLModelStatistics_h
#define itkAGCLModelStatistics_h

// The statistics a model bundle records of its own predictions on validation volumes, and the
// plausibility checks of a segmentation against them (AGCLSegmentationFilter's organ report).
//
// Recorded (ModelConfig::statistics, by `agcl calibrate` and `agcl train`):
//   organ volumes   each organ's predicted volume on the validation volumes: its 5th and 95th
//                   percentiles (numpy's linear interpolation), min and max;
//   intensities     the mean windowed histogram of the validation CTs: the voxels whose HU lie in
//                   the model's window, in kIntensityBins equal bins, as fractions; and the
//                   largest 1-D Wasserstein distance of a validation volume's histogram to it.
// Checked (CheckAGCLStatistics):
//   an organ's volume below (1 - kVolumeTolerance) x its 5th percentile or above
//   (1 + kVolumeTolerance) x its 95th; an organ with no voxels is "missing" in any case;
//   the input's Wasserstein distance to the mean histogram above kDistanceFactor x the largest
//   validation distance (the threshold, in HU).

#include "itkAGCLOrganReport.h"
#include "itkImage.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace itk {

constexpr unsigned int kIntensityBins = 50;
constexpr double       kVolumeTolerance = 0.5;
constexpr double       kDistanceFactor = 2.0;
/** Fewer validation volumes give percentiles that are only the few volumes' extremes (a
 *  2-volume calibration flagged a test volume of the demo's own model 0.4% above its range). */
constexpr size_t kMinimumCalibrationVolumes = 6;

/** The fractions of `image`'s voxels with low <= value <= high in each of `bins` equal bins
 *  (summing to 1; all 0 when no voxel lies in the window). */
template <typename TImage>
std::vector<double>
WindowedHistogram(const TImage * image, double low, double high, unsigned int bins = kIntensityBins)
{
  std::vector<double> counts(bins, 0.0);
  const auto *        value = image->GetBufferPointer();
  double              total = 0;
  const double        width = (high - low) / bins;
  for (size_t i = 0, n = image->GetBufferedRegion().GetNumberOfPixels(); i < n; ++i)
  {
    const double v = static_cast<double>(value[i]);
    if (!(v >= low && v <= high))
      continue;
    const auto bin = std::min<size_t>(bins - 1, static_cast<size_t>((v - low) / width));
    counts[bin] += 1;
    total += 1;
  }
  for (double & c : counts)
    c = total > 0 ? c / total : 0.0;
  return counts;
}

/** The 1-D Wasserstein (earth mover's) distance between two histograms on the same bins of
 *  width `binWidth`: the sum over bins of |CDF_a - CDF_b| x binWidth (in the bins' unit). */
inline double
WassersteinDistance1D(const std::vector<double> & a, const std::vector<double> & b, double binWidth)
{
  if (a.size() != b.size())
    throw std::invalid_argument("WassersteinDistance1D: histograms of " + std::to_string(a.size()) + " and " +
                                std::to_string(b.size()) + " bins");
  double cdfA = 0, cdfB = 0, distance = 0;
  for (size_t k = 0; k < a.size(); ++k)
  {
    cdfA += a[k];
    cdfB += b[k];
    distance += std::abs(cdfA - cdfB) * binWidth;
  }
  return distance;
}

/** The `q`-th percentile (0..100) of `values`, linearly interpolated between order statistics
 *  (numpy.percentile's default). */
inline double
Percentile(std::vector<double> values, double q)
{
  if (values.empty())
    throw std::invalid_argument("Percentile: no values");
  std::sort(values.begin(), values.end());
  const double position = q / 100.0 * static_cast<double>(values.size() - 1);
  const auto   below = static_cast<size_t>(std::floor(position));
  const size_t above = std::min(values.size() - 1, below + 1);
  return values[below] + (position - static_cast<double>(below)) * (values[above] - values[below]);
}

/** The statistics JSON (ModelConfig::statistics) of a model's predictions on validation
 *  volumes: their organ reports and windowed histograms (window [low, high]). */
inline nlohmann::json
MakeAGCLStatistics(const std::vector<AGCLOrganReport> &     reports,
                   const std::vector<std::vector<double>> & histograms,
                   double                                   low,
                   double                                   high,
                   const std::string &                      source)
{
  if (reports.size() != histograms.size())
    throw std::invalid_argument("MakeAGCLStatistics: expected one report and one histogram per validation volume");
  if (reports.size() < kMinimumCalibrationVolumes)
    throw std::invalid_argument("MakeAGCLStatistics: " + std::to_string(reports.size()) +
                                " validation volumes; at least " + std::to_string(kMinimumCalibrationVolumes) +
                                " are needed for meaningful ranges");
  nlohmann::json organs = nlohmann::json::object();
  for (size_t o = 0; o < reports.front().organs.size(); ++o)
  {
    std::vector<double> volumes;
    for (const auto & report : reports)
      volumes.push_back(report.organs.at(o).volumeML);
    organs[std::to_string(reports.front().organs[o].label)] = {
      { "name", reports.front().organs[o].name },
      { "p5_ml", Percentile(volumes, 5) },
      { "p95_ml", Percentile(volumes, 95) },
      { "min_ml", *std::min_element(volumes.begin(), volumes.end()) },
      { "max_ml", *std::max_element(volumes.begin(), volumes.end()) }
    };
  }
  std::vector<double> mean(histograms.front().size(), 0.0);
  for (const auto & h : histograms)
    for (size_t k = 0; k < mean.size(); ++k)
      mean[k] += h.at(k) / static_cast<double>(histograms.size());
  const double width = (high - low) / static_cast<double>(mean.size());
  double       largest = 0;
  for (const auto & h : histograms)
    largest = std::max(largest, WassersteinDistance1D(h, mean, width));
  return { { "source", source },
           { "volumes", reports.size() },
           { "organs", organs },
           { "volume_rule",
             "warn below (1 - " + std::to_string(kVolumeTolerance) + ") x p5 or above (1 + " +
               std::to_string(kVolumeTolerance) + ") x p95" },
           { "intensity",
             { { "window", { low, high } },
               { "histogram", mean },
               { "largest_validation_distance_hu", largest },
               { "threshold_hu", kDistanceFactor * largest } } } };
}

/** The windowed histogram of `image` as `statistics` records them (its window and bins). */
template <typename TImage>
std::vector<double>
WindowedHistogramFor(const TImage * image, const nlohmann::json & statistics)
{
  try
  {
    const auto & intensity = statistics.at("intensity");
    const auto   window = intensity.at("window").get<std::vector<double>>();
    const auto   bins = static_cast<unsigned int>(intensity.at("histogram").size());
    if (window.size() != 2 || !(window[0] < window[1]) || bins == 0)
      throw std::invalid_argument("a window [low, high] with low < high and a histogram of at least one bin");
    return WindowedHistogram(image, window[0], window[1], bins);
  }
  catch (const std::exception & e) // nlohmann's exceptions derive from std::exception
  {
    itkGenericExceptionMacro(<< "the model's statistics are malformed: " << e.what());
  }
}

/** Checks `report` against `statistics` (ModelConfig::statistics; nothing when empty) with the
 *  input's windowed histogram `histogram` (WindowedHistogram over statistics' window): sets
 *  each organ's warning, the report's intensity distance and volume warnings, and its
 *  `statistics` line. itk::ExceptionObject when the statistics are malformed. */
inline void
CheckAGCLStatistics(AGCLOrganReport & report, const nlohmann::json & statistics, const std::vector<double> & histogram)
{
  if (statistics.empty())
    return;
  try
  {
    const auto & intensity = statistics.at("intensity");
    const auto   window = intensity.at("window").get<std::vector<double>>();
    const auto   reference = intensity.at("histogram").get<std::vector<double>>();
    const double threshold = intensity.at("threshold_hu").get<double>();
    report.intensityDistanceHU = WassersteinDistance1D(
      histogram, reference, (window.at(1) - window.at(0)) / static_cast<double>(reference.size()));
    if (report.intensityDistanceHU > threshold)
    {
      std::ostringstream os;
      os.precision(3);
      os << "intensities far from the training data: windowed histogram at " << report.intensityDistanceHU
         << " HU (1-D Wasserstein) from the validation volumes' mean, threshold " << threshold
         << " HU; is this an abdominal CT in HU?";
      report.volumeWarnings.push_back(os.str());
    }
    for (auto & organ : report.organs)
    {
      const auto found = statistics.at("organs").find(std::to_string(organ.label));
      if (found == statistics.at("organs").end() || organ.voxels == 0)
        continue;
      const double low = (1.0 - kVolumeTolerance) * found->at("p5_ml").get<double>();
      const double high = (1.0 + kVolumeTolerance) * found->at("p95_ml").get<double>();
      if (organ.volumeML < low || organ.volumeML > high)
      {
        std::ostringstream os;
        os.precision(4);
        os << "volume " << organ.volumeML << " mL outside " << low << "-" << high
           << " mL (the validation range p5-p95 widened by " << 100 * kVolumeTolerance << "%)";
        organ.warning = os.str();
      }
    }
    report.statistics = statistics.at("source").get<std::string>();
  }
  catch (const std::exception & e) // nlohmann's exceptions, and a window of fewer than 2 values
  {
    itkGenericExceptionMacro(<< "the model's statistics are malformed: " << e.what());
  }
}

} // namespace itk

#endif
